"""Single phantom cases in memory: VOIs, field of view, intensities, visible signs."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.metrics import roc_auc_score

from lvi_training.phantom.acquisition import PRESETS, STORED_MAX
from lvi_training.phantom.case import generate_case
from lvi_training.phantom.signs import SignModel
from phantom_helpers import dice


@pytest.fixture(scope="module")
def cases():
    return [generate_case(21, i, SignModel(), PRESETS["small"], "small") for i in range(6)]


def test_masks_overlap_the_true_tumour(cases):
    scores = [dice(getattr(c, s).mask, getattr(c, s).truth) for c in cases for s in ("t2", "dce")]
    assert min(scores) > 0.6
    assert np.mean(scores) > 0.75


def test_masks_are_not_the_exact_tumour(cases):
    assert any(not np.array_equal(c.dce.mask > 0, c.dce.truth) for c in cases)


def test_tumour_fits_inside_the_small_field_of_view(cases):
    for c in cases:
        for series in (c.t2, c.dce):
            truth = series.truth
            assert truth.any()
            for axis in range(3):
                profile = truth.any(axis=tuple(a for a in range(3) if a != axis))
                assert not profile[0] and not profile[-1]


def test_intensities_use_the_12_bit_range(cases):
    for c in cases:
        for volume in [c.t2.volumes[0], *c.dce.volumes]:
            assert volume.dtype == np.int16
            assert volume.min() >= 0 and volume.max() <= STORED_MAX
            assert volume.max() > 300


def test_tumour_enhances_after_contrast(cases):
    for c in cases:
        pre, early = c.dce.volumes[0].astype(float), c.dce.volumes[1].astype(float)
        assert early[c.dce.truth].mean() > 1.4 * pre[c.dce.truth].mean()


def test_full_preset_uses_clinical_matrices():
    c = generate_case(0, 0, SignModel(), PRESETS["full"], "full")
    assert c.t2.volumes[0].shape == (40, 448, 448)
    assert c.dce.volumes[0].shape == (96, 448, 448)
    assert len(c.dce.volumes) == 4


def test_strong_signal_is_visible_in_dce_phase_2():
    """At --signal 3 simple image features of the VOI on phase 2 alone separate the classes,
    which is what the learning tests rely on."""
    cases = [generate_case(5, i, SignModel(signal=3.0), PRESETS["small"], "small") for i in range(40)]
    features, labels = [], []
    for c in cases:
        voi = c.dce.mask > 0
        phase2 = c.dce.volumes[1].astype(float)
        features.append([np.log(voi.sum()), phase2[voi].mean(), phase2[voi].std()])
        labels.append(c.lvi)
    scores = cross_val_predict(LogisticRegression(max_iter=1000), np.array(features), np.array(labels), cv=5,
                               method="decision_function")
    assert roc_auc_score(labels, scores) > 0.8
