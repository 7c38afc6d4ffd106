"""Statistics of lvi_training.metrics against definitions and independent implementations."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from lvi_training import metrics


def _scores(n=80, seed=0, shift=1.0, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    y[:2] = [0, 1]
    s = rng.normal(size=n) + shift * y
    if ties:
        s = np.round(s, 1)
    return y, s


def _delong_variance_by_definition(y, s):
    """O(m n) DeLong: structural components straight from the Mann-Whitney kernel."""
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    return np.var(v10, ddof=1) / len(pos) + np.var(v01, ddof=1) / len(neg)


@pytest.mark.parametrize("ties", [False, True])
def test_delong_auc_equals_sklearn_auc(ties):
    y, s = _scores(ties=ties)
    assert metrics.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
def test_fast_delong_variance_equals_the_quadratic_definition(ties):
    y, s = _scores(n=120, seed=3, ties=ties)
    _, var = metrics.delong(y, s)
    assert var == pytest.approx(_delong_variance_by_definition(y, s), rel=1e-10)


def test_delong_ci_brackets_auc_and_narrows_with_more_cases():
    y_small, s_small = _scores(n=46, seed=1)
    y_big, s_big = _scores(n=460, seed=1)
    auc_small, (lo_s, hi_s) = metrics.delong_ci(y_small, s_small)
    auc_big, (lo_b, hi_b) = metrics.delong_ci(y_big, s_big)
    assert lo_s <= auc_small <= hi_s and lo_b <= auc_big <= hi_b
    assert (hi_b - lo_b) < (hi_s - lo_s) / 2


def test_bootstrap_ci_is_seeded_and_agrees_with_delong():
    y, s = _scores(n=200, seed=5)
    first = metrics.bootstrap_ci(y, s, seed=7)
    assert metrics.bootstrap_ci(y, s, seed=7) == first
    _, (lo, hi) = metrics.delong_ci(y, s)
    assert abs(first[0] - lo) < 0.03 and abs(first[1] - hi) < 0.03


def _paired_sd_by_definition(y, a, b):
    """O(m n) paired DeLong: the covariance of the two scorings' structural components."""
    comps = []
    for s in (a, b):
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        comps.append((psi.mean(axis=1), psi.mean(axis=0)))
    (xa, ya), (xb, yb) = comps
    var = np.var(xa - xb, ddof=1) / len(xa) + np.var(ya - yb, ddof=1) / len(ya)
    return np.sqrt(var)


def _two_scorings(n=300, seed=2, extra_noise=1.5):
    y, s = _scores(n=n, seed=seed, shift=1.2)
    rng = np.random.default_rng(seed + 100)
    return y, s, s + rng.normal(scale=extra_noise, size=n)  # b: a's signal under more noise


def test_paired_delong_of_a_scoring_with_itself_is_zero_with_p_one():
    y, s = _scores(n=120, seed=4)
    diff, (lo, hi), p = metrics.delong_paired(y, s, s)
    assert (diff, lo, hi, p) == (0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize("ties", [False, True])
def test_paired_delong_sd_equals_the_quadratic_definition(ties):
    y, a, b = _two_scorings(n=150, seed=6)
    if ties:
        a, b = np.round(a, 1), np.round(b, 1)
    diff, (lo, hi), _ = metrics.delong_paired(y, a, b)
    assert diff == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert (hi - lo) / (2 * metrics.Z95) == pytest.approx(_paired_sd_by_definition(y, a, b), rel=1e-10)


def test_paired_delong_finds_a_real_difference_and_agrees_with_a_paired_bootstrap():
    y, a, b = _two_scorings()
    diff, (lo, hi), p = metrics.delong_paired(y, a, b)
    assert diff > 0 and lo > 0 and p < 0.01
    swapped, (lo_s, hi_s), p_s = metrics.delong_paired(y, b, a)
    assert swapped == pytest.approx(-diff) and (lo_s, hi_s) == pytest.approx((-hi, -lo)) and p_s == pytest.approx(p)
    rng = np.random.default_rng(0)
    boot = []
    for _ in range(400):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            boot.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    assert (hi - lo) / (2 * metrics.Z95) == pytest.approx(np.std(boot), rel=0.2)


def test_paired_delong_of_equally_good_scorings_is_not_significant():
    y, s = _scores(n=300, seed=8, shift=1.0)
    rng = np.random.default_rng(9)
    a, b = s + rng.normal(size=300), s + rng.normal(size=300)  # the same signal, independent noise
    _, (lo, hi), p = metrics.delong_paired(y, a, b)
    assert lo < 0 < hi and p > 0.05


def test_paired_delong_needs_two_cases_of_each_class():
    with pytest.raises(ValueError, match="at least 2"):
        metrics.delong_paired([0, 0, 1], [0.1, 0.2, 0.9], [0.2, 0.1, 0.8])


def test_youden_threshold_maximises_j_over_every_cut():
    y, s = _scores(n=150, seed=11, ties=True)
    t = metrics.youden_threshold(y, s)
    def j(cut):
        c = metrics.confusion(y, s, cut)
        return c["sensitivity"] + c["specificity"] - 1
    best = max(j(cut) for cut in np.unique(s))
    assert j(t) == pytest.approx(best)


def test_youden_threshold_of_separated_scores_is_the_middle_of_the_gap():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.9])
    assert metrics.youden_threshold(y, s) == pytest.approx(0.5)


def test_confusion_uses_one_threshold_per_case_when_given():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.6, 0.4, 0.5, 0.2])
    c = metrics.confusion(y, p, np.array([0.5, 0.3, 0.6, 0.1]))
    assert (c["tp"], c["fn"], c["tn"], c["fp"]) == (2, 0, 1, 1)
    assert c["accuracy"] == 0.75


def test_wilson_interval_matches_the_published_example():
    # Newcombe (1998), example 81/263: 0.2553 to 0.3662
    lo, hi = metrics.wilson_ci(81, 263)
    assert lo == pytest.approx(0.2553, abs=1e-4) and hi == pytest.approx(0.3662, abs=1e-4)


def test_brier_score_by_hand():
    assert metrics.brier([1, 0], [0.8, 0.4]) == pytest.approx((0.04 + 0.16) / 2)


def test_calibration_of_calibrated_probabilities_is_slope_one_intercept_zero():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, size=20000)
    y = (rng.random(p.size) < p).astype(int)
    c = metrics.calibration(y, p)
    assert c["calibration_converged"]
    assert c["calibration_slope"] == pytest.approx(1.0, abs=0.05)
    assert c["calibration_intercept"] == pytest.approx(0.0, abs=0.05)


def test_calibration_slope_of_overconfident_probabilities_is_below_one():
    rng = np.random.default_rng(1)
    true_logit = rng.normal(0, 1.5, size=20000)
    y = (rng.random(true_logit.size) < 1 / (1 + np.exp(-true_logit))).astype(int)
    overconfident = 1 / (1 + np.exp(-2 * true_logit))
    assert metrics.calibration(y, overconfident)["calibration_slope"] == pytest.approx(0.5, abs=0.05)


def test_auc_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        metrics.auc([1, 1, 1], [0.1, 0.2, 0.3])
