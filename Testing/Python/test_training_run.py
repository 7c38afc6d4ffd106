"""`lvi train` / `evaluate` / `export` on a small cohort: determinism, resume after SIGKILL,
no overwrite, frozen thresholds, a complete run folder, torchrun with 2 processes.

The runs use the real 2D VanillaCNN at 32x32 (FAST_2D) so each takes seconds.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from LVIPredictorLib.inference import Predictor
from lvi_training import checkpoints, evaluate, metrics
from lvi_training.cli import main as lvi
from training_helpers import FAST_2D, FAST_3D, REPO, lvi_command, write_blob_cohort

EPOCHS = 6
# batch 8: several batches per epoch, so a kill lands inside an epoch
# These tests pin the paper's recipe: they check its schedule, its final model and its outputs.
PAPER_RUN = ["--model", "vanilla_cnn_2d", "--sequence", "dce", "--recipe", "paper", "--split", "paper",
             "--epochs", str(EPOCHS),
             "--batch-size", "8", "--seed", "3"] + FAST_2D
CV_RUN = ["--model", "vanilla_cnn_2d", "--sequence", "t2", "--recipe", "paper", "--split", "cv5", "--epochs", "2",
          "--seed", "1"] + FAST_2D
VOLATILE = ("run",)  # the only metrics.json field allowed to differ between two runs


def _train(cohort, out, extra):
    code = lvi(["train", "--cohort", str(cohort), "--out", str(out)] + list(extra))
    assert code == 0
    return json.loads((out / "metrics.json").read_text())


def _stable(m):
    return {k: v for k, v in m.items() if k not in VOLATILE}


@pytest.fixture(scope="module")
def paper_run(blob_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "paper"
    return out, _train(blob_cohort, out, PAPER_RUN)


@pytest.fixture(scope="module")
def cv_run(blob_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "cv"
    return out, _train(blob_cohort, out, CV_RUN)


def test_same_seed_gives_identical_metrics(blob_cohort, paper_run, tmp_path):
    _, first = paper_run
    second = _train(blob_cohort, tmp_path / "again", PAPER_RUN)
    assert _stable(second) == _stable(first)


def test_lr_decays_ten_times_by_0_9_over_the_run(paper_run):
    out, _ = paper_run
    history = json.loads((out / "fold_0" / "result.json").read_text())["history"]
    assert len(history) == EPOCHS
    assert history[-1]["lr"] == pytest.approx(1e-3 * 0.9 ** 10, rel=1e-6)


def test_resume_after_sigkill_mid_epoch_ends_with_the_same_metrics(blob_cohort, paper_run, tmp_path):
    out = tmp_path / "killed"
    command = lvi_command("train", "--cohort", blob_cohort, "--out", out, *PAPER_RUN)
    proc = subprocess.Popen(command, cwd=str(REPO), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = out / "train.log"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if log.exists() and "epoch 2/{}".format(EPOCHS) in log.read_text():
            break
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    checkpoint = checkpoints.load_torch(out / "fold_0" / "checkpoint.pt")  # whole, never torn
    assert 2 <= checkpoint["epoch"] < EPOCHS
    assert not (out / "metrics.json").exists()

    resumed = _train(blob_cohort, out, PAPER_RUN)
    assert "resuming after epoch {}".format(checkpoint["epoch"]) in log.read_text()
    assert _stable(resumed) == _stable(paper_run[1])


def test_a_run_folder_with_another_configuration_is_never_overwritten(blob_cohort, paper_run, capsys):
    out, _ = paper_run
    before = {p.name: p.read_bytes() for p in (out / "fold_0").iterdir()}
    another_seed = [a if a != "3" else "4" for a in PAPER_RUN]
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(out)] + another_seed) == 2
    assert "different configuration (differs in: seed)" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (out / "fold_0").iterdir()} == before


def test_a_folder_that_is_not_a_run_is_refused(blob_cohort, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("my notes")
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(tmp_path)] + PAPER_RUN) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "my notes"


def test_a_tiny_cohort_stops_with_a_clear_error_before_training(tmp_path, capsys):
    write_blob_cohort(tmp_path / "tiny", n=12, seed=9, prevalence=0.25, shape=(8, 24, 24))
    assert lvi(["train", "--cohort", str(tmp_path / "tiny"), "--out", str(tmp_path / "run")] + CV_RUN) == 2
    assert "too few patients for the 'cv5' split: 3 LVI+ and 9 LVI- patients" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_overwrite_replaces_a_run_when_asked(blob_cohort, tmp_path):
    out = tmp_path / "run"
    quick = ["--model", "vanilla_cnn_2d", "--sequence", "dce", "--split", "paper"] + FAST_2D
    _train(blob_cohort, out, quick + ["--epochs", "1"])
    (out / "stale.txt").write_text("from the old run")
    _train(blob_cohort, out, quick + ["--epochs", "2", "--overwrite"])
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "config.json").read_text())["epochs"] == 2


def test_rerunning_a_finished_run_keeps_its_folds(blob_cohort, cv_run):
    out, first = cv_run
    stamp = (out / "fold_0" / "result.json").stat().st_mtime_ns
    again = _train(blob_cohort, out, CV_RUN)
    assert (out / "fold_0" / "result.json").stat().st_mtime_ns == stamp
    assert _stable(again) == _stable(first)


def test_run_folder_holds_config_log_predictions_metrics_and_plots(blob_cohort, cv_run):
    out, m = cv_run
    config = json.loads((out / "config.json").read_text())
    assert {"torch", "numpy", "SimpleITK", "LVIPredictorLib"} <= set(config["library_versions"])
    assert "git_commit" in config and config["command"].startswith("lvi train")
    assert config["preprocessing"]["crop_size"] == [32, 32, 1]
    assert "fold_4 epoch 2/2" in (out / "train.log").read_text()
    with open(out / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and len({r["case_id"] for r in rows}) == 30
    assert all(len(r["slice_probabilities"].split(";")) == 2 for r in rows)  # two slices -> one score
    for name in ("roc.png", "calibration.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for key in ("auc", "auc_ci_delong", "auc_ci_bootstrap", "accuracy", "sensitivity", "specificity", "brier",
                "calibration_slope", "calibration_intercept", "folds", "export_threshold"):
        assert key in m
    assert (out / "final" / "result.json").exists()


def test_thresholds_are_youden_on_training_predictions_frozen_before_held_out_scoring(cv_run):
    out, m = cv_run
    for k in range(5):
        result = json.loads((out / "fold_{}".format(k) / "result.json").read_text())
        y = np.array([r["lvi"] for r in result["train"]])
        p = np.array([r["probability"] for r in result["train"]])
        assert result["threshold"] == pytest.approx(metrics.youden_threshold(y, p))
    with open(out / "predictions.csv") as f:
        for row in csv.DictReader(f):
            assert int(row["predicted"]) == int(float(row["probability"]) >= float(row["threshold"]))


def test_evaluate_reproduces_the_metrics_written_by_train(cv_run, capsys):
    out, m = cv_run
    assert lvi(["evaluate", str(out)]) == 0
    assert "AUC" in capsys.readouterr().out
    assert _stable(json.loads((out / "metrics.json").read_text())) == _stable(m)


def test_out_of_fold_predictions_are_the_held_out_rows_of_predictions_csv(cv_run):
    out, _ = cv_run
    with open(out / "predictions.csv") as f:
        rows = {r["case_id"]: (int(r["lvi"]), float(r["probability"])) for r in csv.DictReader(f)}
    oof = evaluate.out_of_fold_predictions(out)
    assert len(oof) == 30 and set(oof) == set(rows)
    assert all(oof[c][0] == rows[c][0] and abs(oof[c][1] - rows[c][1]) < 1e-6 for c in rows)  # csv keeps 6 decimals


def test_late_fusion_is_the_mean_logit_of_each_run_and_refuses_other_cases(cv_run, tmp_path):
    out, _ = cv_run
    oof = evaluate.out_of_fold_predictions(out)
    case_ids, labels, fused = evaluate.late_fusion([out, out])
    assert case_ids == sorted(oof) and labels.tolist() == [oof[c][0] for c in case_ids]
    assert np.allclose(fused, metrics.logit([oof[c][1] for c in case_ids]))
    with pytest.raises(ValueError, match="at least two runs"):
        evaluate.late_fusion([out])
    with pytest.raises(ValueError, match="not an `lvi train` run folder"):
        evaluate.late_fusion([out, tmp_path])
    other = tmp_path / "fewer"
    other.mkdir()
    split = json.loads((out / "splits.json").read_text())
    dropped = split["folds"][0]["test"][0]
    (other / "splits.json").write_text(json.dumps(split))
    for fold in split["folds"]:
        result = json.loads((out / "fold_{}".format(fold["index"]) / "result.json").read_text())
        (other / "fold_{}".format(fold["index"])).mkdir()
        if fold["index"] == 0:
            result["test"] = [r for r in result["test"] if r["case_id"] != split["case_ids"][dropped]]
        (other / "fold_{}".format(fold["index"]) / "result.json").write_text(json.dumps(result))
    with pytest.raises(ValueError, match="holds other cases"):
        evaluate.late_fusion([out, other])


def test_exported_weights_load_in_predictor_with_the_frozen_threshold(blob_cohort, cv_run, tmp_path):
    out, m = cv_run
    assert lvi(["export", str(out), "--out", str(tmp_path / "model")]) == 0
    predictor = Predictor(str(tmp_path / "model.json"), device="cpu")
    card = predictor.card
    assert card["threshold"] == pytest.approx(m["export_threshold"])
    assert card["threshold_method"] == "youden_on_out_of_fold_predictions"
    assert card["metrics"]["auc_ci_delong"] == m["auc_ci_delong"]
    assert card["training"]["seed"] == 1 and card["demo"] is False
    import SimpleITK as sitk

    rows = list(csv.DictReader(open(blob_cohort / "cohort.csv")))
    image = sitk.ReadImage(str(blob_cohort / rows[0]["t2_image"]))
    mask = sitk.ReadImage(str(blob_cohort / rows[0]["t2_mask"]))
    prediction = predictor.predict(image, mask)
    final = json.loads((out / "final" / "result.json").read_text())
    trained = {r["case_id"]: r["probability"] for r in final["train"]}[rows[0]["case_id"]]
    assert prediction.probability == pytest.approx(trained, abs=2e-3)  # float16 weights, same preprocessing


def test_torchrun_two_gloo_processes_match_one_process(blob_cohort, paper_run, tmp_path):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(29500 + os.getpid() % 1000), "-m", "lvi_training.cli", "train", "--cohort", str(blob_cohort),
               "--out", str(out)] + PAPER_RUN
    result = subprocess.run(command, cwd=str(REPO), capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 2
    single = json.loads((paper_run[0] / "fold_0" / "result.json").read_text())
    double = json.loads((out / "fold_0" / "result.json").read_text())
    p1 = np.array([r["probability"] for r in single["test"] + single["train"]])
    p2 = np.array([r["probability"] for r in double["test"] + double["train"]])
    # Same global batches and augmentation draws; only the dropout masks differ (VanillaCNN has
    # no BatchNorm) and the gradient sum order, so the scores agree closely, not bit for bit.
    assert np.max(np.abs(p1 - p2)) < 0.05
    assert json.loads((out / "metrics.json").read_text())["auc"] == pytest.approx(paper_run[1]["auc"], abs=0.1)


def test_torchrun_trains_with_the_voi_shape_side_task_like_one_process(blob_cohort, tmp_path):
    side = ["--model", "vanilla_cnn_2d", "--sequence", "dce", "--split", "paper", "--epochs", "2", "--seed", "1",
            "--voi-shape-aux", "1.0"] + FAST_2D
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(tmp_path / "one")] + side) == 0
    out = tmp_path / "ddp-side"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(30500 + os.getpid() % 1000), "-m", "lvi_training.cli", "train", "--cohort", str(blob_cohort),
               "--out", str(out)] + side
    result = subprocess.run(command, cwd=str(REPO), capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert json.loads((out / "config.json").read_text())["world_size"] == 2
    single, double = (json.loads((run / "fold_0" / "result.json").read_text()) for run in (tmp_path / "one", out))
    p1, p2 = (np.array([r["probability"] for r in res["test"] + res["train"]]) for res in (single, double))
    # As without the side task (above): the same global batches, other dropout masks.
    assert np.max(np.abs(p1 - p2)) < 0.05


def test_checkpoint_write_that_fails_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "checkpoint.pt"
    checkpoints.save_torch({"epoch": 1, "w": torch.ones(3)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full (simulated by an object that cannot be saved)")

    with pytest.raises(RuntimeError):
        checkpoints.save_torch({"epoch": 2, "w": torch.zeros(3), "bad": Unpicklable()}, path)
    assert checkpoints.load_torch(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_table_trains_every_combination_with_the_radiomics_baseline_beside_the_papers(blob_cohort, tmp_path,
                                                                                     capsys):
    out = tmp_path / "table"
    assert lvi(["table", "--cohort", str(blob_cohort), "--out", str(out), "--recipe", "paper", "--split", "paper",
                "--epochs", "1", "--n-slices", "2", "--fusion"] + FAST_3D) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "== 1/12: DCE 2D VanillaCNN in {} ==".format(out / "dce_vanilla_cnn_2d") in captured.err
    rows = json.loads((out / "table1.json").read_text())["rows"]
    networks = ("2D VanillaCNN", "2D ResNet10", "3D ResNet10", "Radiomics + LR (baseline)")
    assert [(r["sequence"], r["model"]) for r in rows] == [
        (seq, model) for seq in ("DCE", "FS-T2WI", "FS-T2WI + DCE") for model in networks]
    assert rows[2]["paper_auc"] == 0.80 and len(rows[2]["auc_ci_delong"]) == 2
    assert rows[3]["paper_auc"] is None and len(rows[3]["auc_ci_delong"]) == 2
    assert rows[10]["paper_auc"] is None and len(rows[10]["auc_ci_delong"]) == 2
    assert all(r["best_possible_auc"] is None for r in rows)  # not a phantom cohort: no known bound
    assert json.loads((out / "t2+dce_resnet10_3d" / "config.json").read_text())["architecture_config"][
        "in_channels"] == 2
    assert "| DCE | 3D ResNet10 |" in printed and "| FS-T2WI + DCE | 3D ResNet10 |" in printed
    assert "| DCE | Radiomics + LR (baseline) |" in printed
    assert (out / "table1.csv").exists() and (out / "table1.md").exists()


def test_adding_the_final_model_later_updates_the_recorded_command(blob_cohort, tmp_path, capsys):
    out = tmp_path / "cv"
    base = ["--model", "vanilla_cnn_2d", "--sequence", "t2", "--recipe", "paper", "--split", "cv5", "--epochs", "1",
            "--seed", "2"] + FAST_2D
    _train(blob_cohort, out, base + ["--no-final-model"])
    assert "--no-final-model" in json.loads((out / "config.json").read_text())["command"]
    assert lvi(["export", str(out), "--out", str(tmp_path / "m")]) == 2
    assert "has no finished final model" in capsys.readouterr().err

    _train(blob_cohort, out, base)
    config = json.loads((out / "config.json").read_text())
    assert "--no-final-model" not in config["command"]
    assert len(config["commands"]) == 2 and "--no-final-model" in config["commands"][0]
    assert lvi(["export", str(out), "--out", str(tmp_path / "m")]) == 0
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["training"]["command"] == config["command"]
