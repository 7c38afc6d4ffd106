"""Predictor: reads spec and threshold from the card, aggregates 2D slices, Grad-CAM on the image grid."""

import json

import numpy as np
import pytest
import torch

from LVIPredictorLib import inference, preprocessing
from LVIPredictorLib.errors import LVIError
from LVIPredictorLib.vocabulary import sequences
from core_cards import fresh_card
from synthetic_images import make_grid, mr_image, sphere_mask


@pytest.fixture(scope="module")
def case():
    grid = make_grid()
    return mr_image(grid), sphere_mask(grid)


@pytest.mark.parametrize("name", ["vanilla_cnn_2d", "resnet10_2d", "resnet10_3d"])
def test_prediction_equals_the_model_on_the_shared_preprocessing(tmp_path, case, name):
    card_path, model = fresh_card(tmp_path, name)
    result = inference.Predictor(card_path, device="cpu").predict(*case)
    prepared = preprocessing.preprocess(case[0], case[1], preprocessing.default_spec(name))
    with torch.no_grad():
        probs = torch.sigmoid(model.eval()(torch.from_numpy(prepared.inputs))).numpy().ravel()
    assert result.probability == pytest.approx(preprocessing.aggregate_slice_scores(probs, prepared.slice_weights),
                                               abs=1e-6)
    assert result.label == int(result.probability >= 0.5)
    assert result.device == "cpu"
    assert set(result.timings) >= {"preprocess", "forward"}


def test_2d_prediction_reports_its_slice_scores(tmp_path, case):
    card_path, _ = fresh_card(tmp_path, "resnet10_2d")
    result = inference.Predictor(card_path, device="cpu").predict(*case)
    assert len(result.slice_probabilities) == 3


def test_prediction_uses_the_cards_preprocessing_not_the_defaults(tmp_path, case):
    card_path, _ = fresh_card(tmp_path, "resnet10_2d")
    card = json.loads(card_path.read_text())
    card["preprocessing"]["n_slices"] = 1
    card_path.write_text(json.dumps(card))
    result = inference.Predictor(card_path, device="cpu").predict(*case)
    assert len(result.slice_probabilities) == 1


def test_threshold_comes_from_the_card(tmp_path, case):
    low, _ = fresh_card(tmp_path / "low", "resnet10_2d", threshold=0.0)
    high, _ = fresh_card(tmp_path / "high", "resnet10_2d", threshold=1.0)
    assert inference.Predictor(low, device="cpu").predict(*case).label == 1
    assert inference.Predictor(high, device="cpu").predict(*case).label == 0


def test_demo_weights_always_carry_the_demo_warning(tmp_path, case):
    card_path, _ = fresh_card(tmp_path, "resnet10_2d")
    result = inference.Predictor(card_path, device="cpu").predict(*case)
    assert result.demo
    assert any("not for clinical use" in w for w in result.warnings)


def test_series_that_looks_like_the_other_sequence_is_flagged(tmp_path, case):
    card_path, _ = fresh_card(tmp_path, "resnet10_2d", sequence="t2")
    result = inference.Predictor(card_path, device="cpu").predict(*case, series_description="fl3d_dyn_tra_p2")
    assert any("looks like DCE" in w for w in result.warnings)
    assert sequences.description_warning("t2_tse_fs_tra", "t2") is None


@pytest.mark.parametrize("name", ["resnet10_2d", "resnet10_3d", "vanilla_cnn_2d"])
def test_grad_cam_heatmap_lies_on_the_input_grid_and_peaks_near_the_voi(tmp_path, case, name):
    card_path, _ = fresh_card(tmp_path, name)
    result = inference.Predictor(card_path, device="cpu").predict(*case, heatmap=True)
    heat = result.heatmap
    assert heat.GetSize() == case[0].GetSize()
    assert heat.GetOrigin() == case[0].GetOrigin()
    import SimpleITK as sitk
    arr = sitk.GetArrayFromImage(heat)
    assert arr.min() >= 0 and 0 < arr.max() <= 1 + 1e-6
    # The heat-map covers only the crop around the VOI, not the whole image.
    mask = sitk.GetArrayFromImage(case[1]) > 0
    assert arr[mask].mean() > arr[~mask].mean()
    # Grad-CAM must not change the probability.
    plain = inference.Predictor(card_path, device="cpu").predict(*case)
    assert result.probability == pytest.approx(plain.probability, abs=1e-6)


def test_requesting_a_missing_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")  # the error path only exists without one
    with pytest.raises(LVIError, match="no CUDA GPU"):
        inference.resolve_device("cuda")


def test_auto_device_falls_back_to_cpu_without_a_gpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert inference.resolve_device("auto") in (expected, "mps")


def test_prediction_dict_is_json_serialisable(tmp_path, case):
    card_path, _ = fresh_card(tmp_path, "resnet10_2d")
    d = inference.Predictor(card_path, device="cpu").predict(*case).to_dict()
    assert json.loads(json.dumps(d))["model_id"] == "test-dce-resnet10_2d"
    assert np.isfinite(d["probability"])
