"""Fitting the radiomics baseline on one training fold: standardise, then L2 logistic regression.

The regularisation strength is chosen by a 5-fold cross-validation INSIDE the training fold
(by patient, stratified, seeded), on log-loss, so nothing is tuned on the held-out fold; the
standardisation (mean, SD) is the training fold's too. lbfgs on a fixed split is
deterministic, so a seed repeats a run exactly.
"""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedGroupKFold

from LVIPredictorLib.models import RadiomicsLogistic

C_GRID = np.logspace(-3, 2, 11)
INNER_FOLDS = 5


def fit_fold(data, train_cases, patients, feature_names, seed):
    """(RadiomicsLogistic in eval mode, history) fitted on ``train_cases`` of ``data`` (CaseTensors)."""
    train_cases = np.asarray(train_cases, dtype=np.int64)
    x = data.inputs[data.samples_of(train_cases)].reshape(len(train_cases), -1).double().numpy()
    y = data.labels[train_cases].astype(int)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0  # a constant feature carries nothing; keep it at zero weight
    z = (x - mean) / scale
    groups = np.asarray(patients).astype(str)[train_cases]
    inner = StratifiedGroupKFold(n_splits=min(INNER_FOLDS, int(np.bincount(y).min())), shuffle=True,
                                 random_state=int(seed % (1 << 31)))
    splits = list(inner.split(z, y, groups=groups))
    losses = [np.mean([_held_out_log_loss(c, z, y, fit_idx, val_idx) for fit_idx, val_idx in splits]) for c in C_GRID]
    best = int(np.argmin(losses))
    fit = LogisticRegression(C=float(C_GRID[best]), max_iter=10000).fit(z, y)
    model = RadiomicsLogistic(feature_names)
    with torch.no_grad():
        model.feature_mean.copy_(torch.from_numpy(mean))
        model.feature_scale.copy_(torch.from_numpy(scale))
        model.linear.weight.copy_(torch.from_numpy(fit.coef_.astype(np.float64)))
        model.linear.bias.copy_(torch.from_numpy(fit.intercept_.astype(np.float64)))
    history = [{"C": float(C_GRID[best]), "inner_cv_log_loss": float(losses[best]),
                "coefficients": {n: float(c) for n, c in zip(feature_names, fit.coef_[0])}}]
    return model.eval(), history


def _held_out_log_loss(c, z, y, fit_idx, val_idx):
    fit = LogisticRegression(C=float(c), max_iter=10000).fit(z[fit_idx], y[fit_idx])
    return log_loss(y[val_idx], fit.predict_proba(z[val_idx])[:, 1], labels=[0, 1])
