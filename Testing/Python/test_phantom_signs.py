"""The generative model of LVI signs and the best AUC it claims."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from lvi_training.phantom.signs import SEQUENCE_SIGNS, SignModel, best_auc, sample_signs


def _independent_auc(model, sequence, n=80_000, seed=7):
    """Fit a logistic regression on half of freshly drawn latent signs, score the other half.

    With conditionally independent Gaussian/Bernoulli signs the true log-posterior is
    linear in them, so this estimate converges to the best AUC without using the
    generator's own likelihood code.
    """
    signs = sample_signs(np.random.default_rng(seed), n, model)
    features = np.column_stack([signs[name] for name in SEQUENCE_SIGNS[sequence]]).astype(float)
    labels = signs["lvi"]
    half = n // 2
    fit = LogisticRegression(max_iter=1000).fit(features[:half], labels[:half])
    return roc_auc_score(labels[half:], fit.decision_function(features[half:]))


@pytest.mark.parametrize("sequence", ["t2", "dce", "both"])
def test_claimed_best_auc_matches_a_logistic_regression_on_latent_signs(sequence):
    model = SignModel()
    assert _independent_auc(model, sequence) == pytest.approx(best_auc(model)[sequence], abs=0.012)


def test_default_best_auc_is_at_the_literature_level():
    auc = best_auc(SignModel())
    assert 0.80 <= auc["both"] <= 0.85
    assert auc["t2"] < auc["both"] and auc["dce"] < auc["both"]


def test_strong_signal_gives_a_high_best_auc():
    model = SignModel(signal=3.0)
    assert best_auc(model)["dce"] >= 0.95
    assert _independent_auc(model, "dce") == pytest.approx(best_auc(model)["dce"], abs=0.01)


def test_null_mode_gives_best_auc_one_half():
    model = SignModel(null=True)
    assert best_auc(model) == {"t2": 0.5, "dce": 0.5, "both": 0.5}
    assert _independent_auc(model, "both") == pytest.approx(0.5, abs=0.02)


def test_prevalence_is_about_one_third():
    signs = sample_signs(np.random.default_rng(3), 50_000, SignModel())
    assert signs["lvi"].mean() == pytest.approx(0.33, abs=0.01)


def test_literature_rates_of_oedema_and_vessel_hold_at_default_signal():
    signs = sample_signs(np.random.default_rng(4), 200_000, SignModel())
    pos, neg = signs["lvi"] == 1, signs["lvi"] == 0
    assert signs["oedema"][pos].mean() == pytest.approx(0.46, abs=0.01)
    assert signs["oedema"][neg].mean() == pytest.approx(0.31, abs=0.01)
    assert signs["vessel"][pos].mean() == pytest.approx(0.82, abs=0.01)
    assert signs["vessel"][neg].mean() == pytest.approx(0.68, abs=0.01)
    assert signs["kep"][pos].mean() == pytest.approx(0.92, abs=0.01)
    assert signs["kep"][neg].mean() == pytest.approx(0.81, abs=0.01)


def test_tumour_diameters_stay_between_5_and_50_mm():
    signs = sample_signs(np.random.default_rng(5), 100_000, SignModel(signal=3.0))
    diameter = np.exp(signs["log_diameter"])
    assert diameter.min() >= 5.0 and diameter.max() <= 50.0
