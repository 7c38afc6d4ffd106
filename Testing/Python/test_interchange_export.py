"""`lvi export --format torchscript|torch_export`: the exported network gives the Predictor's probability to 1e-5.

The file is fed the same prepared input the Predictor builds (preprocessing.prepare_input with the
card's spec). A tiny cv5 run of the small-data recipe exercises the hardest case: a five-fold
ensemble with flip views, float16 weights, the VOI channel. ONNX is checked by
benchmarks/interchange_parity.py (onnx/onnxruntime are optional extras, not test dependencies).
"""

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from core_cards import ensemble_card, fresh_card, late_fusion_card, radiomics_card
from LVIPredictorLib import weights
from LVIPredictorLib.inference import Predictor
from LVIPredictorLib.preprocessing import Channel, aggregate_slice_scores, prepare_input
from lvi_training.cli import main as lvi
from training_helpers import FAST_2D

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def ensemble_run(blob_cohort, tmp_path_factory):
    """The default (small-data) recipe, cv5: its export is the five fold models with flips."""
    out = tmp_path_factory.mktemp("interchange") / "run"
    code = lvi(["train", "--cohort", str(blob_cohort), "--out", str(out), "--model", "vanilla_cnn_2d",
                "--sequence", "dce", "--split", "cv5", "--epochs", "1", "--seed", "0"] + FAST_2D)
    assert code == 0
    return out


def _case(cohort, index, sequence="dce"):
    row = list(csv.DictReader(open(cohort / "cohort.csv")))[index]
    return (sitk.ReadImage(str(cohort / row["{}_image".format(sequence)])),
            sitk.ReadImage(str(cohort / row["{}_mask".format(sequence)])))


def _compare_with_predictor(card_path, image, mask, sequence="dce"):
    """Native probability vs the TorchScript file's on the Predictor's own prepared input."""
    predictor = Predictor(str(card_path), device="cpu")
    native = predictor.predict(image, mask)
    prepared = prepare_input([Channel(image, mask, "image", "VOI mask")], predictor.spec, (sequence,))
    record = {r["format"]: r for r in predictor.card["interchange"]}["torchscript"]
    path = card_path.parent / record["file"]
    assert weights.sha256_of(path) == record["sha256"]
    exported = torch.jit.load(str(path))
    with torch.no_grad():
        rows = exported(torch.from_numpy(prepared.inputs)).numpy()
    assert rows.shape == (prepared.inputs.shape[0],)
    assert abs(aggregate_slice_scores(rows, prepared.slice_weights) - native.probability) <= TOLERANCE
    if "torch_export" in {r["format"] for r in predictor.card["interchange"]}:
        program = torch.export.load(str(card_path.with_name(card_path.name[:-len(".json")] + ".pt2"))).module()
        with torch.no_grad():
            assert program(torch.from_numpy(prepared.inputs)).numpy() == pytest.approx(rows, abs=TOLERANCE)
    return native, rows, exported, prepared


def test_a_trained_fold_ensemble_exports_to_torchscript_with_the_predictors_probability(blob_cohort, ensemble_run,
                                                                                     tmp_path, capsys):
    stem = tmp_path / "model"
    assert lvi(["export", str(ensemble_run), "--out", str(stem), "--format", "torchscript"]) == 0
    assert "model.torchscript.pt" in capsys.readouterr().out
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["ensemble"]["members"] == 5 and card["ensemble"]["tta_flip"] is True
    record = card["interchange"][0]
    assert record["format"] == "torchscript" and record["file"] == "model.torchscript.pt"
    assert record["input"]["shape"] == ["rows", 2, 32, 32] and record["input"]["channels"] == ["DCE", "VOI (distance)"]
    assert card["preprocessing"]["mask_channel"] is True  # the spec the input is made with sits beside it
    for index in (0, 1, 2):
        image, mask = _case(blob_cohort, index)
        native, rows, exported, prepared = _compare_with_predictor(stem.with_suffix(".json"), image, mask)
        assert rows == pytest.approx(native.slice_probabilities, abs=TOLERANCE)
    # A VOI thinner than n_slices gives fewer rows: the traced file takes any number.
    with torch.no_grad():
        one = exported(torch.from_numpy(prepared.inputs[:1])).numpy()
    assert one == pytest.approx(rows[:1], abs=TOLERANCE)


def test_an_existing_card_gets_its_file_beside_it_and_a_3d_network_exports_too(blob_cohort, tmp_path, capsys):
    """Untrained weights give probabilities near 0.5, where a dropped flip view or member would show."""
    ensemble, _ = ensemble_card(tmp_path, members=2)
    assert lvi(["export", str(ensemble), "--format", "torchscript", "--format", "torch_export"]) == 0
    _, rows, _, prepared = _compare_with_predictor(ensemble, *_case(blob_cohort, 3))
    assert rows == pytest.approx(0.5, abs=0.2) and prepared.inputs.shape[0] >= 2
    assert lvi(["export", str(ensemble), "--format", "torchscript"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert lvi(["export", str(ensemble), "--format", "torchscript", "--overwrite"]) == 0
    assert sorted(r["format"] for r in json.loads(ensemble.read_text())["interchange"]) == ["torch_export",
                                                                                           "torchscript"]

    three_d, _ = fresh_card(tmp_path, name="resnet10_3d", dtype="float16")
    assert lvi(["export", str(three_d), "--format", "torchscript", "--format", "torch_export"]) == 0
    native, rows, _, _ = _compare_with_predictor(three_d, *_case(blob_cohort, 4))
    assert rows.shape == (1,) and 0.01 < native.probability < 0.99


def test_models_without_a_network_are_refused_in_one_line_and_nothing_is_written(blob_cohort, tmp_path, capsys):
    radiomics, _ = radiomics_card(tmp_path)
    assert lvi(["export", str(radiomics), "--format", "torchscript"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "radiomics baseline" in err and "no network" in err
    t2, _ = fresh_card(tmp_path, name="vanilla_cnn_2d", sequence="t2")
    dce, _ = fresh_card(tmp_path, name="vanilla_cnn_2d", sequence="dce", seed=1)
    fused = late_fusion_card(tmp_path, t2, dce)
    assert lvi(["export", str(fused), "--format", "torchscript"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "late-fusion" in err and "t2-vanilla_cnn_2d.json" in err
    assert not list(tmp_path.glob("*.torchscript.pt"))

    run = tmp_path / "radiomics_run"
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(run), "--model", "radiomics_lr",
                "--sequence", "dce", "--split", "paper", "--seed", "0"]) == 0
    capsys.readouterr()
    assert lvi(["export", str(run), "--out", str(tmp_path / "r"), "--format", "torchscript"]) == 2
    assert "radiomics baseline" in capsys.readouterr().err
    assert not list(tmp_path.glob("r.*"))


def test_onnx_without_its_optional_packages_is_one_line(tmp_path, monkeypatch, capsys):
    card, _ = fresh_card(tmp_path, name="vanilla_cnn_2d")
    monkeypatch.setitem(__import__("sys").modules, "onnxscript", None)  # as if it were not installed
    assert lvi(["export", str(card), "--format", "onnx"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lvipredictor[onnx]" in err
    assert not list(tmp_path.glob("*.onnx")) and "interchange" not in json.loads(card.read_text())
