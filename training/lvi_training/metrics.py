"""Honest binary-classification statistics (docs/design.md §6).

- AUC with a 95 % CI two ways: DeLong's variance (fast O(n log n) algorithm of Sun & Xu,
  IEEE SPL 2014) and a stratified percentile bootstrap (seeded).
- The decision threshold is chosen by Youden's J on TRAINING predictions and then
  frozen; held-out accuracy / sensitivity / specificity are read at that threshold
  (a case is positive when its probability >= threshold), with Wilson 95 % CIs.
- Brier score, and calibration as in Van Calster et al. (2016): the slope is ``b`` of the
  logistic regression ``y ~ a + b * logit(p)``; the intercept is calibration-in-the-large,
  ``a`` of ``y ~ a + offset(logit(p))``. Perfect calibration: slope 1, intercept 0.
"""

import math

import numpy as np
from scipy.stats import norm, rankdata

Z95 = float(norm.ppf(0.975))
BOOTSTRAP_REPLICATES = 2000
_EPS = 1e-6


def _split(labels, scores):
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    if labels.shape != scores.shape or labels.ndim != 1:
        raise ValueError("labels and scores must be 1-D arrays of the same length")
    if not np.all(np.isin(labels, (0, 1))):
        raise ValueError("labels must be 0 or 1")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinity")
    pos, neg = scores[labels == 1], scores[labels == 0]
    if len(pos) == 0 or len(neg) == 0:
        raise ValueError("AUC needs both classes (got {} positive, {} negative)".format(len(pos), len(neg)))
    return pos, neg


def _placements(pos, neg):
    """DeLong's structural components by midranks: (AUC, per-positive, per-negative placements)."""
    m, n = len(pos), len(neg)
    tx = rankdata(pos)
    ty = rankdata(neg)
    tz = rankdata(np.concatenate([pos, neg]))
    auc = (tz[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    v01 = (tz[:m] - tx) / n          # per positive: share of negatives it outranks
    v10 = 1.0 - (tz[m:] - ty) / m    # per negative: share of positives that outrank it
    return float(auc), v01, v10


def delong(labels, scores):
    """(AUC, variance of the AUC) by DeLong's method, fast midrank algorithm."""
    pos, neg = _split(labels, scores)
    auc, v01, v10 = _placements(pos, neg)
    m, n = len(v01), len(v10)
    sx = np.var(v01, ddof=1) if m > 1 else 0.0
    sy = np.var(v10, ddof=1) if n > 1 else 0.0
    return auc, float(sx / m + sy / n)


def delong_paired(labels, scores_a, scores_b, z=Z95):
    """AUC(a) - AUC(b) for two scorings of the SAME cases: the difference, its 95 % CI and the
    two-sided p-value of DeLong's test (DeLong et al. 1988), which counts the correlation
    between the two scorings; unpaired CIs that overlap say little about such a difference."""
    labels = np.asarray(labels, dtype=int)
    pos_a, neg_a = _split(labels, scores_a)
    pos_b, neg_b = _split(labels, scores_b)
    auc_a, x_a, y_a = _placements(pos_a, neg_a)
    auc_b, x_b, y_b = _placements(pos_b, neg_b)
    m, n = len(x_a), len(y_a)
    if m < 2 or n < 2:
        raise ValueError("the paired DeLong test needs at least 2 cases of each class")
    sx = np.cov(np.vstack([x_a, x_b]))
    sy = np.cov(np.vstack([y_a, y_b]))
    var = (sx[0, 0] + sx[1, 1] - 2 * sx[0, 1]) / m + (sy[0, 0] + sy[1, 1] - 2 * sy[0, 1]) / n
    diff = auc_a - auc_b
    sd = math.sqrt(max(var, 0.0))
    p = 2.0 * float(norm.sf(abs(diff) / sd)) if sd > 0 else (1.0 if diff == 0 else 0.0)
    return diff, (diff - z * sd, diff + z * sd), p


def auc(labels, scores):
    return delong(labels, scores)[0]


def delong_ci(labels, scores, z=Z95):
    """AUC and its 95 % CI (normal approximation on DeLong's variance, clipped to [0, 1])."""
    value, var = delong(labels, scores)
    half = z * math.sqrt(max(var, 0.0))
    return value, (max(0.0, value - half), min(1.0, value + half))


def bootstrap_ci(labels, scores, seed=0, replicates=BOOTSTRAP_REPLICATES, level=0.95):
    """Percentile CI of the AUC, resampling positives and negatives separately (stratified).

    Vectorised: with ``W[i, j]`` = 1, 0.5, 0 for positive i above / tied with / below
    negative j, a replicate's AUC is ``cp @ W @ cn / (m n)`` for its resampling counts.
    """
    pos, neg = _split(labels, scores)
    m, n = len(pos), len(neg)
    wins = (pos[:, None] > neg[None, :]).astype(float) + 0.5 * (pos[:, None] == neg[None, :])
    rng = np.random.default_rng(seed)
    cp = _counts(rng.integers(0, m, size=(replicates, m)), m)
    cn = _counts(rng.integers(0, n, size=(replicates, n)), n)
    aucs = np.einsum("bi,ij,bj->b", cp, wins, cn) / (m * n)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(aucs, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _counts(draws, size):
    out = np.zeros((draws.shape[0], size))
    rows = np.repeat(np.arange(draws.shape[0]), draws.shape[1])
    np.add.at(out, (rows, draws.ravel()), 1.0)
    return out


def youden_threshold(labels, scores):
    """Threshold maximising sensitivity + specificity - 1 on these (training) scores.

    Candidates are the midpoints between consecutive distinct scores (plus one below the
    lowest and one above the highest), so a perfectly separated training set gets the
    middle of the gap rather than a threshold glued to one training case. Ties in J are
    broken by taking the middle candidate among the maxima.
    """
    pos, neg = _split(labels, scores)
    values = np.unique(np.concatenate([pos, neg]))
    candidates = np.concatenate([[values[0] - 1e-3], (values[:-1] + values[1:]) / 2.0, [values[-1] + 1e-3]])
    sens = (pos[None, :] >= candidates[:, None]).mean(axis=1)
    spec = (neg[None, :] < candidates[:, None]).mean(axis=1)
    j = sens + spec - 1.0
    best = np.flatnonzero(j >= j.max() - 1e-12)
    return float(candidates[best[len(best) // 2]])


def confusion(labels, scores, threshold):
    """Accuracy, sensitivity, specificity at ``threshold`` (scalar, or one per case)."""
    labels = np.asarray(labels, dtype=int)
    predicted = (np.asarray(scores, dtype=float) >= np.asarray(threshold, dtype=float)).astype(int)
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    tn = int(np.sum((predicted == 0) & (labels == 0)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    return {"accuracy": (tp + tn) / len(labels), "accuracy_ci": wilson_ci(tp + tn, len(labels)),
            "sensitivity": tp / (tp + fn) if tp + fn else float("nan"), "sensitivity_ci": wilson_ci(tp, tp + fn),
            "specificity": tn / (tn + fp) if tn + fp else float("nan"), "specificity_ci": wilson_ci(tn, tn + fp),
            "tp": tp, "tn": tn, "fp": fp, "fn": fn}


def wilson_ci(successes, total, z=Z95):
    """95 % Wilson score interval of a proportion (sound at small n and near 0 or 1)."""
    if total == 0:
        return [float("nan"), float("nan")]
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return [max(0.0, centre - half), min(1.0, centre + half)]


def brier(labels, probabilities):
    labels = np.asarray(labels, dtype=float)
    return float(np.mean((np.asarray(probabilities, dtype=float) - labels) ** 2))


def logit(p):
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1.0 - _EPS)
    return np.log(p / (1.0 - p))


def _logistic_fit(x, y, offset, iterations=100):
    """Newton-Raphson for y ~ Bernoulli(sigmoid(X @ beta + offset)); returns (beta, converged)."""
    beta = np.zeros(x.shape[1])
    for _ in range(iterations):
        eta = x @ beta + offset
        p = 1.0 / (1.0 + np.exp(-eta))
        w = np.clip(p * (1.0 - p), 1e-12, None)
        hessian = x.T @ (x * w[:, None]) + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, x.T @ (y - p))
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            return beta, True
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 1e3:
            return beta, False  # separation: the maximum likelihood estimate does not exist
    return beta, False


def calibration(labels, probabilities):
    """Calibration slope and intercept (see module docstring) and whether both fits converged."""
    y = np.asarray(labels, dtype=float)
    lp = logit(probabilities)
    ones = np.ones((len(y), 1))
    (a_joint, slope), ok_slope = _logistic_fit(np.hstack([ones, lp[:, None]]), y, np.zeros(len(y)))
    (intercept,), ok_intercept = _logistic_fit(ones, y, lp)
    return {"calibration_slope": float(slope), "calibration_intercept": float(intercept),
            "calibration_converged": bool(ok_slope and ok_intercept)}


def summarize(labels, probabilities, threshold, seed=0):
    """Everything reported for one set of held-out predictions, JSON-ready."""
    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    value, (d_lo, d_hi) = delong_ci(labels, probabilities)
    b_lo, b_hi = bootstrap_ci(labels, probabilities, seed=seed)
    out = {"n": int(len(labels)), "n_positive": int(labels.sum()), "n_negative": int((1 - labels).sum()),
           "auc": value, "auc_ci_delong": [d_lo, d_hi], "auc_ci_bootstrap": [b_lo, b_hi],
           "bootstrap_replicates": BOOTSTRAP_REPLICATES, "brier": brier(labels, probabilities)}
    out.update(confusion(labels, probabilities, threshold))
    out.update(calibration(labels, probabilities))
    return out
