"""`lvi evaluate --model M --cohort C --out DIR`: a trained model scored on a cohort (external validation)."""

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk
from sklearn.metrics import roc_auc_score

from LVIPredictorLib.inference import Predictor
from lvi_training.cli import main as lvi
from training_helpers import FAST_2D, blob_cohort, read_rows, write_blob_cohort, write_csv  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def card(blob_cohort, tmp_path_factory):  # noqa: F811
    folder = tmp_path_factory.mktemp("external")
    run = folder / "run"
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(run), "--model", "vanilla_cnn_2d", "--sequence",
                "t2", "--split", "cv5", "--epochs", "2", "--seed", "4"] + FAST_2D) == 0
    assert lvi(["export", str(run), "--out", str(folder / "model")]) == 0
    return folder / "model.json"


@pytest.fixture(scope="module")
def other_cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("other_cohort")
    write_blob_cohort(root, n=20, seed=5, signal=1.5)
    return root


def _copy_with_an_empty_mask(cohort, folder, blank_labels=False):
    """The cohort's rows (absolute paths) written to ``folder`` with case 3's T2 VOI emptied."""
    rows = read_rows(cohort)
    for row in rows:
        if blank_labels:
            row["lvi"] = ""  # new patients: no pathology yet
        for key in ("t2_image", "t2_mask", "dce_image", "dce_mask"):
            row[key] = str(cohort / row[key]) if row[key] else ""
    sitk.WriteImage(sitk.ReadImage(rows[3]["t2_mask"]) * 0, str(folder / "empty_mask.nii.gz"))
    rows[3]["t2_mask"] = str(folder / "empty_mask.nii.gz")
    (folder / "cohort").mkdir()
    write_csv(folder / "cohort", rows)
    return folder / "cohort", rows


def test_a_card_scored_on_another_cohort_gives_run_style_results_at_its_frozen_threshold(card, other_cohort,
                                                                                          tmp_path, capsys):
    out = tmp_path / "ext"
    assert lvi(["evaluate", "--model", str(card), "--cohort", str(other_cohort), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "AUC" in printed and "warning" not in printed
    m = json.loads((out / "metrics.json").read_text())
    threshold = json.loads(card.read_text())["threshold"]
    assert m["n"] == 20 and m["threshold"] == threshold and m["warnings"] == []
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert len(rows) == 20 and all(float(r["threshold"]) == pytest.approx(threshold, abs=1e-6) for r in rows)
    y = [int(r["lvi"]) for r in rows]
    p = [float(r["probability"]) for r in rows]
    assert m["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-9)
    assert m["sensitivity"] == pytest.approx(np.mean([pi >= threshold for pi, yi in zip(p, y) if yi == 1]))
    # Each number is what `predict` gives for that case.
    first = read_rows(other_cohort)[0]
    image = sitk.ReadImage(str(other_cohort / first["t2_image"]))
    direct = Predictor(str(card), device="cpu").predict(image, sitk.ReadImage(str(other_cohort / first["t2_mask"])))
    assert float(rows[0]["probability"]) == pytest.approx(direct.probability, abs=1e-6)
    assert (out / "roc.png").is_file() and (out / "calibration.png").is_file()

    assert lvi(["evaluate", "--model", str(card), "--cohort", str(other_cohort), "--out", str(out)]) == 2
    assert "already holds metrics.json" in capsys.readouterr().err


def test_the_four_result_files_are_written_together_or_not_at_all(card, other_cohort, tmp_path, monkeypatch,
                                                                     capsys):
    from lvi_training import plots

    out = tmp_path / "ext"
    assert lvi(["evaluate", "--model", str(card), "--cohort", str(other_cohort), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == sorted(["metrics.json", "predictions.csv", "roc.png", "calibration.png"])

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plots, "calibration_plot", full_disk)  # after predictions.csv and roc.png were drawn
    with pytest.raises(OSError, match="No space left"):
        lvi(["evaluate", "--model", str(card), "--cohort", str(other_cohort), "--out", str(out), "--overwrite"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the earlier results, whole
    with pytest.raises(OSError, match="No space left"):
        lvi(["evaluate", "--model", str(card), "--cohort", str(other_cohort), "--out", str(tmp_path / "new")])
    assert not (tmp_path / "new").exists() or list((tmp_path / "new").iterdir()) == []


def test_scoring_a_model_on_its_own_training_cohort_says_so(card, blob_cohort, tmp_path, capsys):  # noqa: F811
    assert lvi(["evaluate", "--model", str(card), "--cohort", str(blob_cohort), "--out", str(tmp_path)]) == 0
    assert "this is the cohort the model was trained on" in capsys.readouterr().out


def test_a_case_that_cannot_be_scored_stops_the_evaluation_and_names_the_case(card, other_cohort, tmp_path, capsys):
    folder, rows = _copy_with_an_empty_mask(other_cohort, tmp_path)
    out = tmp_path / "ext"
    assert lvi(["evaluate", "--model", str(card), "--cohort", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "1 case(s) could not be scored" in err and "case {}".format(rows[3]["case_id"]) in err
    assert "empty_mask.nii.gz: holds no labelled voxel (the mask is empty)" in err
    assert not out.exists()


def test_a_fused_bundled_model_leaves_out_cases_without_both_series(other_cohort, tmp_path, capsys):
    rows = read_rows(other_cohort)
    for row in rows:
        for key in ("t2_image", "t2_mask", "dce_image", "dce_mask"):
            row[key] = str(other_cohort / row[key])
    rows[0]["dce_image"] = rows[0]["dce_mask"] = ""
    (tmp_path / "cohort").mkdir()
    write_csv(tmp_path / "cohort", rows)
    out = tmp_path / "ext"
    assert lvi(["evaluate", "--model", "demo-t2+dce-vanilla_cnn_2d", "--cohort", str(tmp_path / "cohort"),
                "--out", str(out)]) == 0
    assert "1 of 20 cases have no FS-T2WI + DCE image+mask and were left out" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["n"] == 19 and m["sequence"] == "t2+dce" and m["dce_phase"] == 2


def test_the_two_forms_do_not_mix(card, tmp_path, capsys):
    assert lvi(["evaluate", str(tmp_path), "--model", str(card)]) == 2
    assert "not both" in capsys.readouterr().err
    assert lvi(["evaluate", "--model", str(card), "--out", str(tmp_path)]) == 2
    assert "needs --cohort" in capsys.readouterr().err


def test_predicting_a_whole_cohort_without_labels_lists_every_case_and_every_failure(card, other_cohort, tmp_path,
                                                                                      capsys):
    folder, rows = _copy_with_an_empty_mask(other_cohort, tmp_path, blank_labels=True)
    out = tmp_path / "batch"
    args = ["predict", "--cohort", str(folder), "--model", str(card), "--out", str(out)]
    assert lvi(args) == 1  # one case failed; the others are still predicted
    printed = capsys.readouterr().out
    assert "19 prediction(s) for 19 case(s) with 1 model(s)" in printed
    predicted = list(csv.DictReader(open(out / "predictions.csv")))
    assert [r["case_id"] for r in predicted] == [r["case_id"] for i, r in enumerate(rows) if i != 3]
    failed = list(csv.DictReader(open(out / "errors.csv")))
    assert [f["case_id"] for f in failed] == [rows[3]["case_id"]] and "the mask is empty" in failed[0]["error"]
    image = sitk.ReadImage(rows[0]["t2_image"])
    direct = Predictor(str(card), device="cpu").predict(image, sitk.ReadImage(rows[0]["t2_mask"]))
    assert float(predicted[0]["probability"]) == pytest.approx(direct.probability, abs=1e-6)
    assert predicted[0]["class"] == ("LVI+" if direct.label else "LVI-")

    assert lvi(args) == 2
    assert "already holds predictions.csv, errors.csv" in capsys.readouterr().err
