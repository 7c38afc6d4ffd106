"""An L2 logistic regression fitted inside one training fold, its strength chosen there too.

Used by the radiomics baseline (on its features) and by the CNNs' case-level head refit (on the
features a network's last layer reads). The features are standardised with the training fold's
mean and SD; the regularisation strength C is chosen by a 5-fold cross-validation INSIDE the
training fold (by patient, stratified, seeded) on log-loss, so nothing is tuned on the held-out
fold. lbfgs on a fixed split is deterministic, so a seed repeats a fit exactly.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedGroupKFold

C_GRID = np.logspace(-3, 2, 11)
INNER_FOLDS = 5


@dataclass
class LogisticFit:
    mean: np.ndarray       # (F,) training-fold feature means
    scale: np.ndarray      # (F,) training-fold feature SDs (1 where a feature is constant)
    coef: np.ndarray       # (F,) coefficients on the standardised features
    intercept: float
    C: float
    inner_cv_log_loss: float

    def raw_weights(self):
        """(weights, bias) acting on the features as they are, standardisation folded in."""
        weights = self.coef / self.scale
        return weights, float(self.intercept - np.sum(self.mean * weights))

    def describe(self):
        return {"C": self.C, "inner_cv_log_loss": self.inner_cv_log_loss}


def fit_l2_logistic(x, y, groups, seed, null_candidate=False):
    """Standardise ``x`` (cases x features), choose C by inner CV by ``groups`` (patients), refit on all.

    ``null_candidate``: also consider the intercept-only model (C = 0: every case gets the training
    prevalence) and keep it when no C beats its inner-CV log-loss. Even the smallest C ranks cases by
    the training classes' mean difference, and on a small cohort without signal that direction is
    anti-correlated with the held-out cases (the held-out case is missing from its own class's mean),
    which drove a clinical model's null-cohort AUC to 0.28 (CI 0.11-0.45) instead of 0.5.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(int)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0  # a constant feature carries nothing; keep it at zero weight
    z = (x - mean) / scale
    inner = StratifiedGroupKFold(n_splits=min(INNER_FOLDS, int(np.bincount(y).min())), shuffle=True,
                                 random_state=int(seed % (1 << 31)))
    splits = list(inner.split(z, y, groups=np.asarray(groups).astype(str)))
    losses = [np.mean([_held_out_log_loss(c, z, y, fit_idx, val_idx) for fit_idx, val_idx in splits]) for c in C_GRID]
    best = int(np.argmin(losses))
    if null_candidate:
        null_loss = float(np.mean([log_loss(y[val_idx], np.full(len(val_idx), y[fit_idx].mean()), labels=[0, 1])
                                   for fit_idx, val_idx in splits]))
        if null_loss <= losses[best]:
            prevalence = float(y.mean())
            return LogisticFit(mean=mean, scale=scale, coef=np.zeros(x.shape[1]),
                               intercept=float(np.log(prevalence / (1.0 - prevalence))), C=0.0,
                               inner_cv_log_loss=null_loss)
    fit = LogisticRegression(C=float(C_GRID[best]), max_iter=10000).fit(z, y)
    return LogisticFit(mean=mean, scale=scale, coef=fit.coef_[0].astype(np.float64),
                       intercept=float(fit.intercept_[0]), C=float(C_GRID[best]),
                       inner_cv_log_loss=float(losses[best]))


def _held_out_log_loss(c, z, y, fit_idx, val_idx):
    fit = LogisticRegression(C=float(c), max_iter=10000).fit(z[fit_idx], y[fit_idx])
    return log_loss(y[val_idx], fit.predict_proba(z[val_idx])[:, 1], labels=[0, 1])
