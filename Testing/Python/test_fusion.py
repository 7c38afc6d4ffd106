"""Fused FS-T2WI + DCE input (sequence "t2+dce"): preprocessing, cards, prediction, training and CLI."""

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from LVIPredictorLib import inference, preprocessing, weights
from LVIPredictorLib.errors import InputError, LVIError
from LVIPredictorLib.preprocessing import Channel, crops, default_spec, preprocess, preprocess_channels
from LVIPredictorLib.vocabulary import kinds
from lvi_training.cli import main as lvi
from lvi_training.reference import default_sample_case
from core_cards import fresh_card
from synthetic_images import make_grid, mr_image, sphere_mask
from training_helpers import FAST_2D, blob_cohort, read_rows, write_csv  # noqa: F401 (fixture)

CENTRE, RADIUS = (2.0, -3.0, 0.0), 8.0
SAMPLE = default_sample_case()


def _t2(voi_centre=CENTRE, voi_radius=RADIUS):
    """FS-T2WI-like: thick slices, its own grid."""
    grid = make_grid(size=(90, 90, 14), spacing=(0.7, 0.7, 4.0), origin=(-31.0, -33.0, -27.0))
    return mr_image(grid, centre=CENTRE, radius=RADIUS, seed=1), sphere_mask(grid, voi_centre, voi_radius)


def _dce():
    """DCE-like: thin slices, a grid shifted against T2's."""
    grid = make_grid(size=(80, 80, 40), spacing=(0.8, 0.8, 1.5), origin=(-30.0, -31.0, -29.0))
    return mr_image(grid, centre=CENTRE, radius=RADIUS, seed=2), sphere_mask(grid, CENTRE, RADIUS)


def _channels(t2=None):
    image, mask = t2 or _t2()
    dce, dce_mask = _dce()
    return [Channel(image, mask, "t2.nii", "t2_mask.nii"), Channel(dce, dce_mask, "dce.nii", "dce_mask.nii")]


@pytest.mark.parametrize("model", ["vanilla_cnn_2d", "resnet10_3d"])
def test_fused_channels_lie_on_the_dce_crop_grid_each_normalised_on_its_own(model):
    spec = default_spec(model)
    channels = _channels()
    fused = preprocess_channels(channels, spec, grid_channel=1)
    alone = preprocess(channels[1].image, channels[1].mask, spec)
    assert fused.inputs.shape == alone.inputs.shape[:1] + (2,) + alone.inputs.shape[2:]
    # The DCE channel is exactly what a DCE-only model sees (same grid, same slices, same weights).
    np.testing.assert_array_equal(fused.inputs[:, 1], alone.inputs[:, 0])
    assert fused.slice_indices == alone.slice_indices
    np.testing.assert_array_equal(fused.slice_weights, alone.slice_weights)
    # The T2 channel: T2 resampled in physical space onto that grid, then normalised by itself.
    t2_on_grid = sitk.GetArrayFromImage(sitk.Resample(channels[0].image, fused.crop_reference, sitk.Transform(),
                                                      sitk.sitkLinear, float("nan"), sitk.sitkFloat32))
    expected = crops._normalise(t2_on_grid, sitk.GetArrayViewFromImage(fused.crop_reference), spec, "t2")
    expected = expected[fused.slice_indices] if spec.dims == 2 else expected
    np.testing.assert_allclose(fused.inputs[:, 0] if spec.dims == 2 else fused.inputs[0, 0], expected, atol=1e-5)
    # Both channels show the lesion where the VOI is: the grids really are aligned.
    voi = sitk.GetArrayFromImage(fused.crop_reference).astype(bool)
    voi = voi[fused.slice_indices] if spec.dims == 2 else voi
    for c in range(2):
        values = fused.inputs[:, c] if spec.dims == 2 else fused.inputs[0, c]
        assert values[voi].mean() > values[~voi].mean() + 1.0


def test_vois_that_do_not_overlap_cannot_be_fused():
    t2 = _t2(voi_centre=(2.0, 22.0, 0.0), voi_radius=5.0)  # 25 mm from the DCE VOI: another lesion
    with pytest.raises(InputError, match=r"t2_mask.nii: does not outline the same tumour as dce_mask.nii"):
        preprocess_channels(_channels(t2), default_spec("resnet10_3d"), grid_channel=1)


def test_vois_far_apart_but_overlapping_give_a_warning():
    t2 = _t2(voi_centre=(14.0, -3.0, 0.0))
    out = preprocess_channels(_channels(t2), default_spec("resnet10_3d"), grid_channel=1)
    assert any("centred 12 mm apart" in w for w in out.warnings)


def test_predictor_of_a_fused_card_needs_both_series_and_feeds_them_in_channel_order(tmp_path):
    card_path, _ = fresh_card(tmp_path, "vanilla_cnn_2d", sequence="t2+dce")
    predictor = inference.Predictor(str(card_path), device="cpu")
    channels = _channels()
    images = {"t2": channels[0].image, "dce": channels[1].image}
    masks = {"t2": channels[0].mask, "dce": channels[1].mask}
    with pytest.raises(LVIError, match=r"reads FS-T2WI \+ DCE fused"):
        predictor.predict(images["dce"], masks["dce"])
    with pytest.raises(LVIError, match="missing: DCE"):
        predictor.predict_case({"t2": images["t2"]}, {"t2": masks["t2"]})
    result = predictor.predict_case(images, masks, heatmap=True)
    assert result.sequence == "t2+dce" and 0.0 <= result.probability <= 1.0
    assert result.heatmap_sequence == "dce" and result.heatmap.GetSize() == images["dce"].GetSize()

    model, card = weights.load_model(str(card_path))
    prepared = preprocess_channels(channels, weights.card_spec(card), grid_channel=1)
    with torch.inference_mode():
        probs = torch.sigmoid(model(torch.from_numpy(prepared.inputs))).reshape(-1).numpy()
    assert result.probability == pytest.approx(preprocessing.aggregate_slice_scores(probs, prepared.slice_weights),
                                               abs=1e-6)


def test_validate_cohort_requires_both_series_for_fusion(blob_cohort, tmp_path, capsys):  # noqa: F811
    rows = read_rows(blob_cohort)
    for row in rows[:2]:
        row["dce_image"] = row["dce_mask"] = ""
    for row in rows:
        for key in ("t2_image", "t2_mask", "dce_image", "dce_mask"):
            if row[key]:
                row[key] = str(blob_cohort / row[key])
    write_csv(tmp_path, rows)
    assert lvi(["validate-cohort", str(tmp_path), "--sequence", "t2+dce", "--quick"]) == 1
    printed = capsys.readouterr().out
    assert printed.count("no dce image+mask, which the requested model needs") == 2
    fused_row = next(line for line in printed.splitlines() if line.startswith("t2+dce"))
    assert fused_row.split()[1] == str(len(rows) - 2)


@pytest.fixture(scope="module")
def fused_run(blob_cohort, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("fused") / "run"
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(out), "--model", "vanilla_cnn_2d",
                "--sequence", "t2+dce", "--recipe", "paper", "--split", "cv5", "--epochs", "2", "--seed", "1"]
               + FAST_2D) == 0
    return out


def test_a_fused_model_trains_exports_and_reproduces_its_training_predictions(blob_cohort, fused_run,  # noqa: F811
                                                                              tmp_path):
    config = json.loads((fused_run / "config.json").read_text())
    assert config["architecture_config"]["in_channels"] == 2
    assert config["identity"]["dce_phase"] == 2
    assert "--sequence t2+dce" in config["command"] and "--dce-phase 2" in config["command"]
    assert lvi(["export", str(fused_run), "--out", str(tmp_path / "fused")]) == 0
    predictor = inference.Predictor(str(tmp_path / "fused.json"), device="cpu")
    assert predictor.card["sequence"] == "t2+dce" and predictor.sequences == ("t2", "dce")
    row = list(csv.DictReader(open(blob_cohort / "cohort.csv")))[0]
    images = {s: sitk.ReadImage(str(blob_cohort / row[s + "_image"])) for s in ("t2", "dce")}
    masks = {s: sitk.ReadImage(str(blob_cohort / row[s + "_mask"])) for s in ("t2", "dce")}
    prediction = predictor.predict_case(images, masks)
    final = json.loads((fused_run / "final" / "result.json").read_text())
    trained = {r["case_id"]: r["probability"] for r in final["train"]}[row["case_id"]]
    assert prediction.probability == pytest.approx(trained, abs=2e-3)  # float16 weights, same preprocessing


def test_lvi_predict_runs_a_fused_card_on_the_sample_case_given_both_series(fused_run, tmp_path, capsys):
    card = tmp_path / "fused"
    assert lvi(["export", str(fused_run), "--out", str(card), "--reference-case", str(SAMPLE)]) == 0
    recorded = json.loads((tmp_path / "fused.json").read_text())["reference_prediction"]
    assert recorded["image"] == "t2.nii.gz + dce_phase2.nii.gz"
    out = tmp_path / "report"
    assert lvi(["predict", "--model", str(tmp_path / "fused.json"), "--t2", str(SAMPLE / "t2.nii.gz"),
                str(SAMPLE / "t2_mask.nii.gz"), "--dce", str(SAMPLE / "dicom" / "dce"),
                str(SAMPLE / "dce_mask.nii.gz"), "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    [prediction] = result["predictions"]
    assert prediction["sequence"] == "t2+dce"
    # DCE phase 2 read from the DICOM series is the NIfTI copy the reference was computed on.
    assert prediction["probability"] == pytest.approx(recorded["probability"], abs=1e-5)
    assert result["inputs"]["shown"] == ["t2", "dce"] and (out / "overview.png").is_file()

    capsys.readouterr()
    assert lvi(["predict", "--model", str(tmp_path / "fused.json"), "--image", str(SAMPLE / "t2.nii.gz"),
                "--mask", str(SAMPLE / "t2_mask.nii.gz"), "--sequence", "t2", "--out", str(tmp_path / "r2")]) == 2
    assert "is a t2+dce model but --sequence is t2" in capsys.readouterr().err
    assert lvi(["predict", "--model", str(tmp_path / "fused.json"), "--t2", str(SAMPLE / "t2.nii.gz"),
                str(SAMPLE / "t2_mask.nii.gz"), "--out", str(tmp_path / "r3")]) == 2
    assert "needs DCE as well" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()


def test_lvi_predict_with_both_series_runs_each_bundled_model_on_its_own_series(tmp_path):
    out = tmp_path / "both"
    assert lvi(["predict", "--t2", str(SAMPLE / "t2.nii.gz"), str(SAMPLE / "t2_mask.nii.gz"),
                "--dce", str(SAMPLE / "dce_phase2.nii.gz"), str(SAMPLE / "dce_mask.nii.gz"),
                "--out", str(out), "--no-heatmap"]) == 0
    predictions = json.loads((out / "result.json").read_text())["predictions"]
    catalog = weights.bundled_catalog()
    assert sorted(p["model_id"] for p in predictions) == sorted(
        e["model_id"] for e in catalog if not kinds.needs_clinical(e))  # no clinical data given
    for p in predictions:
        card = weights.load_card(weights.resolve_card(p["model_id"]))
        assert p["probability"] == pytest.approx(card["reference_prediction"]["probability"], abs=1e-5)


def test_validate_cohort_finds_cases_whose_vois_cannot_be_fused(blob_cohort, tmp_path, capsys):  # noqa: F811
    rows = read_rows(blob_cohort)[:8]
    for row in rows:
        for key in ("t2_image", "t2_mask", "dce_image", "dce_mask"):
            row[key] = str(blob_cohort / row[key])
    # Case 2's T2 VOI outlines something in a corner, far from the lesion its DCE VOI outlines.
    mask = sitk.ReadImage(rows[2]["t2_mask"])
    corner = sitk.GetArrayFromImage(mask) * 0
    corner[2:4, 2:5, 2:5] = 1
    moved = sitk.GetImageFromArray(corner)
    moved.CopyInformation(mask)
    sitk.WriteImage(moved, str(tmp_path / "t2_mask_elsewhere.nii.gz"))
    rows[2]["t2_mask"] = str(tmp_path / "t2_mask_elsewhere.nii.gz")
    write_csv(tmp_path, rows)

    assert lvi(["validate-cohort", str(tmp_path)]) == 0  # single-sequence models can still use every row
    printed = capsys.readouterr().out
    assert "a fused t2+dce model cannot use this case" in printed and "case {}".format(rows[2]["case_id"]) in printed
    assert lvi(["validate-cohort", str(tmp_path), "--sequence", "t2+dce"]) == 1
    printed = capsys.readouterr().out
    assert "1 problem(s)" in printed and "t2_mask_elsewhere.nii.gz: does not outline the same tumour" in printed
