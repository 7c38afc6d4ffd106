"""The phantom's best AUC per model input: what each input renders, proved on null and strong cohorts."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer

from lvi_training import bounds
from lvi_training.phantom.contrast import TUMOUR_ENHANCEMENT_RANGE, tumour_enhancement
from lvi_training.phantom.signs import (PAPER_INPUTS, SignModel, best_auc, best_auc_by_input, best_auc_for_input,
                                        input_key, sample_signs, visible_signs)

N = 60_000  # draws per bound in these tests (the generator uses 200,000)


def test_a_null_cohort_bounds_every_input_at_one_half():
    assert best_auc_by_input(SignModel(null=True), PAPER_INPUTS + ("dce_phase1", "dce_phase4"), n_draws=N) == {
        key: 0.5 for key in PAPER_INPUTS + ("dce_phase1", "dce_phase4")}


def test_a_strong_cohort_bounds_every_input_near_one():
    strong = best_auc_by_input(SignModel(signal=3.0), n_draws=N)
    default = best_auc_by_input(SignModel(), n_draws=N)
    for key in PAPER_INPUTS:
        assert 0.97 <= strong[key] <= 1.0 and strong[key] > default[key], key


def test_what_an_input_renders_orders_the_bounds():
    b = best_auc_by_input(SignModel(), PAPER_INPUTS + ("dce_phase1",), n_draws=N)
    # One phase cannot tell kep from the enhancement amplitude; the pre-contrast phase shows no enhancement.
    assert b["dce_phase1"] < b["dce_phase2"] < b["dce_dynamic"]
    assert b["t2"] < b["t2+dce_phase2"] < b["t2+dce_dynamic"]
    assert b["dce_phase2"] < b["t2+dce_phase2"]
    # The dynamic and fused-dynamic inputs see every sign: the generator's sequence bounds.
    whole = best_auc(SignModel(), n_draws=N)
    assert b["dce_dynamic"] == whole["dce"] and b["t2+dce_dynamic"] == whole["both"] and b["t2"] == whole["t2"]


def test_the_single_phase_bound_matches_a_classifier_trained_on_what_that_phase_shows():
    """Independent of the bound's own likelihood code: a flexible logistic regression on the
    rendered observables (log enhancement at 1.5 min with the amplitude drawn as the generator
    draws it, and the other visible signs) reaches the claimed bound and not more."""
    model = SignModel()
    rng = np.random.default_rng(11)
    signs = sample_signs(rng, 2 * N, model)
    amplitude = rng.uniform(*TUMOUR_ENHANCEMENT_RANGE, 2 * N)
    enhancement = np.log(tumour_enhancement(1.5, np.maximum(signs["kep"], 0.1), amplitude))
    shown, _ = visible_signs("dce_phase2")
    features = np.column_stack([enhancement] + [signs[name] for name in shown]).astype(float)
    half = N
    spline = make_pipeline(SplineTransformer(n_knots=8, degree=3), LogisticRegression(max_iter=2000))
    fit = spline.fit(features[:half], signs["lvi"][:half])
    independent = roc_auc_score(signs["lvi"][half:], fit.decision_function(features[half:]))
    assert independent == pytest.approx(best_auc_for_input(model, "dce_phase2", n_draws=N), abs=0.012)


def test_input_keys_name_what_a_model_reads():
    assert input_key("t2") == "t2"
    assert input_key("dce", dce_phase=3) == "dce_phase3"
    assert input_key("t2+dce") == "t2+dce_phase2"
    assert input_key("t2+dce", dynamic=True) == "t2+dce_dynamic"
    with pytest.raises(ValueError, match="unknown model input"):
        visible_signs("dwi")


def test_a_card_bound_comes_from_the_cohort_recipe_or_none_for_patients():
    recipe = {"sign_model": SignModel().to_dict(), "best_auc_by_input": {"dce_phase2": 0.8079}}
    assert bounds.for_cohort(recipe, "dce_phase2")["auc"] == 0.8079
    computed = bounds.for_cohort({"sign_model": SignModel(null=True).to_dict()}, "t2")
    assert computed["auc"] == 0.5 and computed["input"] == "t2"
    assert bounds.for_cohort({"description": "hospital export"}, "t2") is None
    assert bounds.for_cohort(None, "t2") is None
