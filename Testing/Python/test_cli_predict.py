"""`lvi predict` and `lvi info`: the headless main job on the shipped sample case with the bundled weights."""

import json

import pytest

from LVIPredictorLib import weights
from LVIPredictorLib.vocabulary import kinds
from lvi_training.cli import main
from lvi_training.reference import default_sample_case

SAMPLE = default_sample_case()


def _reference(model_id):
    entry = next(e for e in weights.bundled_catalog() if e["model_id"] == model_id)
    return weights.load_card(entry["card_path"])["reference_prediction"]["probability"]


def test_predict_all_dce_models_from_the_dicom_series_writes_the_report(tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(["predict", "--sequence", "dce", "--all", "--image", str(SAMPLE / "dicom" / "dce"),
               "--mask", str(SAMPLE / "dce_mask.nii.gz"), "--out", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "phase 2 of 4" in printed and "report: " in printed
    result = json.loads((out / "result.json").read_text())
    assert sorted(p["architecture"] for p in result["predictions"]) == sorted(
        e["architecture"] for e in weights.bundled_catalog() if e["sequence"] == "dce" and not kinds.needs_clinical(e))
    # The bundled combined model is named, with the values it would need, not silently dropped.
    assert "not run: demo-dce-clinical_combined combines clinical data with the images; give them with --clinical " \
           "age=...," in printed
    # Phase 2 read from DICOM is the same image as the NIfTI copy the cards' reference used.
    for p in result["predictions"]:
        # The radiomics ring and background shells are distance thresholds on the series' own grid, which
        # the NIfTI copy stores in float32 (~1e-5 mm off): a voxel at a shell's edge may change sides.
        tolerance = 1e-3 if p["architecture"] == "radiomics_lr" else 1e-5
        assert p["probability"] == pytest.approx(_reference(p["model_id"]), abs=tolerance)
        assert any("not for clinical use" in w for w in p["warnings"])
    assert (out / "overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_with_one_model_card_file(tmp_path, capsys):
    entry = next(e for e in weights.bundled_catalog() if e["sequence"] == "t2" and e["architecture"] == "resnet10_2d")
    rc = main(["predict", "--model", entry["card_path"], "--image", str(SAMPLE / "t2.nii.gz"),
               "--mask", str(SAMPLE / "t2_mask.nii.gz"), "--out", str(tmp_path), "--no-heatmap"])
    assert rc == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert [p["model_id"] for p in result["predictions"]] == [entry["model_id"]]


def test_predict_on_a_missing_mask_is_one_clear_error_line(tmp_path, capsys):
    missing = tmp_path / "nope.nii.gz"
    rc = main(["predict", "--image", str(SAMPLE / "t2.nii.gz"), "--mask", str(missing), "--sequence", "t2",
               "--out", str(tmp_path / "r")])
    assert rc == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "does not exist" in err
    assert not (tmp_path / "r").exists()


def test_predict_refuses_a_card_of_the_other_sequence(tmp_path, capsys):
    entry = next(e for e in weights.bundled_catalog() if e["sequence"] == "dce" and not kinds.needs_clinical(e))
    rc = main(["predict", "--model", entry["card_path"], "--sequence", "t2", "--image", str(SAMPLE / "t2.nii.gz"),
               "--mask", str(SAMPLE / "t2_mask.nii.gz"), "--out", str(tmp_path)])
    assert rc == 2
    assert "is a dce model but --sequence is t2" in capsys.readouterr().err


def test_info_lists_the_bundled_models(capsys):
    assert main(["info"]) == 0
    printed = capsys.readouterr().out
    assert all(e["model_id"] in printed for e in weights.bundled_catalog())


def test_predict_on_one_image_without_its_sequence_asks_for_it(tmp_path, capsys):
    """Running every bundled model on an image of unknown sequence would put T2 models on DCE."""
    rc = main(["predict", "--image", str(SAMPLE / "t2.nii.gz"), "--mask", str(SAMPLE / "t2_mask.nii.gz"),
               "--out", str(tmp_path / "r")])
    assert rc == 2
    assert "say which sequence this image is with --sequence t2 or --sequence dce" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_predict_warns_when_the_dce_phase_read_is_not_the_models(tmp_path):
    rc = main(["predict", "--sequence", "dce", "--model", "demo-dce-vanilla_cnn_2d", "--image",
               str(SAMPLE / "dicom" / "dce"), "--dce-phase", "3", "--mask", str(SAMPLE / "dce_mask.nii.gz"),
               "--out", str(tmp_path), "--no-heatmap"])
    assert rc == 0
    [prediction] = json.loads((tmp_path / "result.json").read_text())["predictions"]
    assert "DCE phase 3 was read (--dce-phase) but model demo-dce-vanilla_cnn_2d was trained on phase 2" in \
        prediction["warnings"][0]


def test_an_earlier_report_is_kept_unless_overwrite_is_given(tmp_path, capsys):
    args = ["predict", "--sequence", "t2", "--model", "demo-t2-vanilla_cnn_2d", "--image", str(SAMPLE / "t2.nii.gz"),
            "--mask", str(SAMPLE / "t2_mask.nii.gz"), "--out", str(tmp_path), "--no-heatmap"]
    assert main(args) == 0
    first = (tmp_path / "result.json").read_bytes()
    assert main(args) == 2
    assert "already holds a report (result.json, overview.png)" in capsys.readouterr().err
    assert (tmp_path / "result.json").read_bytes() == first
    assert main(args + ["--overwrite"]) == 0


def test_info_on_one_model_prints_its_card_and_verifies_its_weights(capsys):
    assert main(["info", "demo-t2+dce-vanilla_cnn_2d"]) == 0
    printed = capsys.readouterr().out
    card = weights.load_card(weights.resolve_card("demo-t2+dce-vanilla_cnn_2d"))
    channels = card["architecture_config"]["in_channels"]  # T2, DCE (+ the VOI with the small-data recipe)
    assert "FS-T2WI + DCE (DCE phase 2" in printed and "{} input channel(s)".format(channels) in printed
    assert "{:.3f}".format(card["metrics"]["auc"]) in printed and card["training"]["command"] in printed
    assert "{} verified".format(card["weights_sha256"]) in printed and "[DEMO weights]" in printed


def test_info_on_a_tampered_model_says_so(tmp_path, capsys):
    import shutil

    card = weights.load_card(weights.resolve_card("demo-dce-vanilla_cnn_2d"))
    shutil.copy(card["_card_path"], tmp_path / "card.json")
    data = bytearray(weights.weights_path_of(card).read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / card["weights_file"]).write_bytes(bytes(data))
    assert main(["info", str(tmp_path / "card.json")]) == 2
    assert "SHA-256 mismatch" in capsys.readouterr().err


def test_clinical_values_unused_or_all_missing_are_refused_not_ignored(tmp_path, capsys):
    rc = main(["predict", "--sequence", "t2", "--all", "--image", str(SAMPLE / "t2.nii.gz"), "--mask",
               str(SAMPLE / "t2_mask.nii.gz"), "--out", str(tmp_path / "r"), "--clinical", "age=61"])
    assert rc == 2 and not (tmp_path / "r").exists()
    assert "no bundled combined (clinical + imaging) model reads FS-T2WI; clinical data would not be used" in \
        capsys.readouterr().err

    rc = main(["predict", "--sequence", "dce", "--all", "--image", str(SAMPLE / "dce_phase2.nii.gz"), "--mask",
               str(SAMPLE / "dce_mask.nii.gz"), "--out", str(tmp_path / "r"), "--clinical", "age=NA,ki67="])
    assert rc == 2 and not (tmp_path / "r").exists()
    assert "--clinical: gives no value (each is empty or NA)" in capsys.readouterr().err
