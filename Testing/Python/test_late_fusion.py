"""Late fusion as a model: `lvi fuse` builds a card from exported runs (an FS-T2WI and a DCE
model, or several models of one sequence), the Predictor and `lvi predict` run it, and a
replaced member, a run with other folds, a member given twice or a card paired with the wrong
run is refused."""

import csv
import json
import shutil

import numpy as np
import pytest
import SimpleITK as sitk

from core_cards import fresh_card, late_fusion_card
from LVIPredictorLib import inference, weights
from LVIPredictorLib.models import late_fusion
from LVIPredictorLib.errors import LVIError, WeightsError
from lvi_training import evaluate, metrics
from lvi_training.cli import main as lvi
from training_helpers import FAST_2D

RUN = ["--model", "vanilla_cnn_2d", "--recipe", "paper", "--split", "cv5", "--epochs", "2"] + FAST_2D


def _train(cohort, out, sequence, seed=1):
    assert lvi(["train", "--cohort", str(cohort), "--out", str(out), "--sequence", sequence, "--seed", str(seed)]
               + RUN) == 0
    return out


@pytest.fixture(scope="module")
def members(blob_cohort, tmp_path_factory):
    """Two exported cv5 runs on the same folds (same cohort and seed): FS-T2WI and DCE."""
    root = tmp_path_factory.mktemp("late_fusion")
    models = root / "Models"
    out = {}
    for sequence in ("t2", "dce"):
        run = _train(blob_cohort, root / sequence, sequence)
        assert lvi(["export", str(run), "--out", str(models / sequence), "--model-id", "m-" + sequence]) == 0
        out[sequence] = (models / (sequence + ".json"), run)
    return out


def _fuse(members, out, *extra):
    args = ["fuse", "--member", str(members["dce"][0]), str(members["dce"][1]),
            "--member", str(members["t2"][0]), str(members["t2"][1]), "--out", str(out)] + list(extra)
    return lvi(args)


def _holds_the_fused_oof_auc(card, runs):
    _, labels, fused = evaluate.late_fusion(runs)
    assert card["metrics"]["auc"] == pytest.approx(metrics.delong_ci(labels, fused)[0], abs=1e-12)
    return labels, fused


def _first_case(cohort):
    """{sequence: image}, {sequence: mask} of the cohort's first case."""
    row = next(csv.DictReader(open(cohort / "cohort.csv")))
    read = {kind: {s: sitk.ReadImage(str(cohort / row[s + kind])) for s in ("t2", "dce")}
            for kind in ("_image", "_mask")}
    return read["_image"], read["_mask"]


@pytest.fixture(scope="module")
def fused_card(members):
    stem = members["t2"][0].parent / "fused"
    assert _fuse(members, stem, "--model-id", "m-fused") == 0
    return weights.load_card(str(stem) + ".json")


def test_the_card_holds_the_out_of_fold_metrics_of_the_mean_logit(members, fused_card):
    labels, fused = _holds_the_fused_oof_auc(fused_card, [members["t2"][1], members["dce"][1]])
    assert fused_card["metrics"]["n"] == len(labels)
    assert [m["sequence"] for m in fused_card["members"]] == ["t2", "dce"]
    assert fused_card["threshold_method"] == "youden_on_out_of_fold_predictions"
    assert fused_card["threshold"] == pytest.approx(metrics.youden_threshold(labels, 1 / (1 + np.exp(-fused))))


def test_each_fold_threshold_is_chosen_on_that_folds_training_cases_only(members, fused_card):
    """Accuracy at per-fold thresholds recomputed from the training rows of each fold."""
    folds = [evaluate.fold_results(members[s][1]) for s in ("t2", "dce")]
    correct = []
    for t2_fold, dce_fold in zip(*folds):
        train = {r["case_id"]: [r["lvi"], r["probability"]] for r in t2_fold["train"]}
        for r in dce_fold["train"]:
            train[r["case_id"]].append(r["probability"])
        ids = sorted(train)
        threshold = metrics.youden_threshold([train[c][0] for c in ids],
                                             [late_fusion.combine(train[c][1:]) for c in ids])
        dce_test = {r["case_id"]: r["probability"] for r in dce_fold["test"]}
        for r in t2_fold["test"]:
            correct.append(int(late_fusion.combine([r["probability"], dce_test[r["case_id"]]]) >= threshold) == r["lvi"])
    assert fused_card["metrics"]["accuracy"] == pytest.approx(np.mean(correct), abs=1e-12)


def test_predictor_averages_the_members_logits_on_their_own_series(blob_cohort, members, fused_card):
    images, masks = _first_case(blob_cohort)
    predictor = inference.Predictor(fused_card, device="cpu")
    prediction = predictor.predict_case(images, masks, heatmap=True)
    alone = {s: inference.Predictor(str(members[s][0]), device="cpu").predict(images[s], masks[s]).probability
             for s in ("t2", "dce")}
    assert prediction.member_probabilities == pytest.approx({"m-t2": alone["t2"], "m-dce": alone["dce"]}, abs=1e-12)
    assert prediction.probability == pytest.approx(late_fusion.combine([alone["t2"], alone["dce"]]), abs=1e-12)
    assert prediction.label == int(prediction.probability >= fused_card["threshold"])
    assert prediction.heatmap_sequence == "dce" and prediction.heatmap is not None
    # Every member's map on its own series: the T2 member's on the T2 grid, the DCE member's on DCE.
    on = {m.model_id: m for m in prediction.heatmaps}
    assert sorted(on) == ["m-dce", "m-t2"] and on["m-t2"].sequence == "t2"
    assert on["m-t2"].image.GetSize() == images["t2"].GetSize() and on["m-dce"].image.GetSize() == images["dce"].GetSize()
    assert prediction.to_dict()["member_probabilities"] == prediction.member_probabilities
    with pytest.raises(LVIError, match="needs an image and a VOI of FS-T2WI and DCE; missing: DCE"):
        predictor.predict_case({"t2": images["t2"]}, {"t2": masks["t2"]})


def test_lvi_predict_and_info_run_the_card(blob_cohort, members, fused_card, tmp_path, capsys):
    row = next(csv.DictReader(open(blob_cohort / "cohort.csv")))
    pairs = [str(blob_cohort / row[s + k]) for s in ("t2", "dce") for k in ("_image", "_mask")]
    assert lvi(["predict", "--t2", pairs[0], pairs[1], "--dce", pairs[2], pairs[3], "--model",
                fused_card["_card_path"], "--out", str(tmp_path / "report"), "--device", "cpu"]) == 0
    result = json.loads((tmp_path / "report" / "result.json").read_text())
    assert set(result["predictions"][0]["member_probabilities"]) == {"m-t2", "m-dce"}
    assert "late-fusion member" in capsys.readouterr().out
    assert lvi(["info", fused_card["_card_path"]]) == 0
    shown = capsys.readouterr().out
    assert "m-t2 (vanilla_cnn_2d on FS-T2WI)" in shown and "verified" in shown


def test_a_re_exported_member_is_refused_by_name(members, fused_card, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(members["t2"][0].parent, folder)
    other, _ = fresh_card(folder, name="vanilla_cnn_2d", sequence="dce", seed=9)
    shutil.move(str(other), str(folder / "dce.json"))
    with pytest.raises(WeightsError, match="re-exported or replaced"):
        inference.Predictor(str(folder / "fused.json"), device="cpu")
    (folder / "t2.json").unlink()
    with pytest.raises(WeightsError, match="member card .* is missing"):
        inference.Predictor(str(folder / "fused.json"), device="cpu")


def _refused(code, capsys, message):
    assert code == 2
    assert message in capsys.readouterr().err


def test_an_edited_card_and_a_wrong_pairing_are_refused(members, fused_card, tmp_path, capsys):
    card = {k: v for k, v in fused_card.items() if k != "_card_path"}
    card["members"][0]["sequence"] = "dce"
    path = members["t2"][0].parent / "edited.json"
    path.write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="its members read DCE .* but the card says 't2\\+dce'"):
        weights.load_card(path)
    crossed = {"t2": (members["t2"][0], members["dce"][1]), "dce": (members["dce"][0], members["t2"][1])}
    _refused(_fuse(crossed, members["t2"][0].parent / "crossed"), capsys, "was not exported from")
    _refused(_fuse(members, members["t2"][0].parent / "fused"), capsys, "already exists")
    _refused(_fuse(members, tmp_path / "elsewhere"), capsys, "must lie in the folder")


def test_runs_with_other_folds_are_refused(blob_cohort, members, tmp_path, capsys):
    run = _train(blob_cohort, tmp_path / "dce-seed2", "dce", seed=2)
    stem = members["t2"][0].parent / "dce-seed2"
    assert lvi(["export", str(run), "--out", str(stem)]) == 0
    other = dict(members, dce=(str(stem) + ".json", run))
    _refused(_fuse(other, members["t2"][0].parent / "mixed"), capsys, "other cross-validation folds")


def test_a_late_fusion_card_of_untrained_members_loads_and_predicts(tmp_path):
    t2_card, _ = fresh_card(tmp_path, name="vanilla_cnn_2d", sequence="t2", seed=1)
    dce_card, _ = fresh_card(tmp_path, name="vanilla_cnn_2d", sequence="dce", seed=2)
    card = weights.load_card(late_fusion_card(tmp_path, t2_card, dce_card))
    assert [m["sequence"] for m in weights.member_cards(card)] == ["t2", "dce"]
    with pytest.raises(WeightsError, match="no network of its own"):
        weights.load_model(card)


def test_table_rows_give_the_late_fusion_of_a_networks_two_runs(members, fused_card, tmp_path):
    from LVIPredictorLib.vocabulary.sequences import FUSED
    from lvi_training import table
    from lvi_training.cmd_table import late_fusion_rows

    out = tmp_path / "table"
    results = {}
    for sequence in ("t2", "dce"):
        shutil.copytree(members[sequence][1], table.run_folder(out, sequence, "vanilla_cnn_2d"))
        results[(sequence, "vanilla_cnn_2d")] = evaluate.load_metrics(members[sequence][1])
    best = {}
    late_fusion_rows(out, results, best, seed=1)
    rows = table.table_rows(results, best)
    assert [r["model"] for r in rows][-1] == "2D VanillaCNN, late fusion of the FS-T2WI and DCE runs"
    assert rows[-1]["sequence"] == "FS-T2WI + DCE" and rows[-1]["auc"] == fused_card["metrics"]["auc"]
    assert rows[-1]["accuracy"] == fused_card["metrics"]["accuracy"] and rows[-1]["paper_auc"] is None
    assert (FUSED, table.late_fusion_model("resnet10_2d")) not in results  # no runs of it: no row


def test_models_of_one_sequence_fuse_into_an_ensemble_that_reads_that_series(blob_cohort, members, tmp_path, capsys):
    folder = members["t2"][0].parent
    run = tmp_path / "dce-resnet"
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(run), "--sequence", "dce", "--seed", "1",
                "--model", "resnet10_2d", "--recipe", "paper", "--split", "cv5", "--epochs", "1"] + FAST_2D) == 0
    assert lvi(["export", str(run), "--out", str(folder / "dce-resnet"), "--model-id", "m-dce-resnet"]) == 0
    pair = [("dce", members["dce"]), ("dce", (folder / "dce-resnet.json", run))]
    args = ["fuse"] + [a for _, (card, r) in pair for a in ("--member", str(card), str(r))]
    assert lvi(args + ["--out", str(folder / "dce-ensemble")]) == 0
    card = weights.load_card(folder / "dce-ensemble.json")
    assert card["sequence"] == "dce" and [m["model_id"] for m in card["members"]] == ["m-dce", "m-dce-resnet"]
    _holds_the_fused_oof_auc(card, [members["dce"][1], run])
    assert "the DCE series (read by 2 models" in card["intended_use"]

    images, masks = _first_case(blob_cohort)
    image, mask = images["dce"], masks["dce"]
    prediction = inference.Predictor(card, device="cpu").predict(image, mask, heatmap=True)
    alone = [inference.Predictor(str(c), device="cpu").predict(image, mask).probability for _, (c, _) in pair]
    assert prediction.probability == pytest.approx(late_fusion.combine(alone), abs=1e-12)
    # Each member's map, on the series it read.
    assert [(m.model_id, m.sequence) for m in prediction.heatmaps] == [("m-dce", "dce"), ("m-dce-resnet", "dce")]

    twice = ["fuse"] + ["--member", str(members["dce"][0]), str(members["dce"][1])] * 2
    _refused(lvi(twice + ["--out", str(folder / "twice")]), capsys, "is given twice")
    _refused(lvi(args[:4] + ["--out", str(folder / "alone")]), capsys, "two or more members")


def test_a_fused_network_joins_a_late_fusion_that_reads_both_series(blob_cohort, members, tmp_path):
    folder = members["t2"][0].parent
    run = _train(blob_cohort, tmp_path / "both", "t2+dce")
    assert lvi(["export", str(run), "--out", str(folder / "both"), "--model-id", "m-both"]) == 0
    # Given fused first: the card still lists the DCE member first (FS-T2WI, DCE, fused order).
    args = ["fuse", "--member", str(folder / "both.json"), str(run), "--member", str(members["dce"][0]),
            str(members["dce"][1]), "--out", str(folder / "dce-and-both"), "--model-id", "m-dce-and-both"]
    assert lvi(args) == 0
    card = weights.load_card(folder / "dce-and-both.json")
    assert card["sequence"] == "t2+dce" and [m["sequence"] for m in card["members"]] == ["dce", "t2+dce"]
    _holds_the_fused_oof_auc(card, [members["dce"][1], run])
    assert "read by 2 models" in card["intended_use"]

    images, masks = _first_case(blob_cohort)
    prediction = inference.Predictor(card, device="cpu").predict_case(images, masks, heatmap=True)
    alone = [inference.Predictor(str(members["dce"][0]), device="cpu").predict(images["dce"], masks["dce"]).probability,
             inference.Predictor(str(folder / "both.json"), device="cpu").predict_case(images, masks).probability]
    assert prediction.probability == pytest.approx(late_fusion.combine(alone), abs=1e-12)
    assert prediction.member_probabilities == pytest.approx({"m-dce": alone[0], "m-both": alone[1]}, abs=1e-12)
    # Both members' maps; each lies on the grid its member crops on (DCE for both here).
    assert [(m.model_id, m.sequence) for m in prediction.heatmaps] == [("m-dce", "dce"), ("m-both", "dce")]
    assert all(m.image.GetSize() == images["dce"].GetSize() for m in prediction.heatmaps)
    with pytest.raises(LVIError, match="missing: FS-T2WI"):
        inference.Predictor(card, device="cpu").predict_case({"dce": images["dce"]}, {"dce": masks["dce"]})
