"""What a researcher sees while `lvi train`, `lvi table` and `lvi validate-cohort` work: a progress
line on a terminal (none in a pipe or with --quiet), where the log is, and the per-epoch records of
a run folder (history.csv, learning_curves.png, TensorBoard events when the package is there).

The terminal is a real pseudo-terminal (pty) around a real `lvi` process.
"""

import csv
import io
import json
import os
import pty
import subprocess
import sys

import pytest

from lvi_training import progress
from lvi_training.cli import main as lvi
from training_helpers import FAST_2D, REPO, lvi_command, run_lvi

QUICK = ["--model", "vanilla_cnn_2d", "--sequence", "dce", "--recipe", "paper", "--split", "paper", "--epochs", "2",
         "--batch-size", "8", "--seed", "5"] + FAST_2D
VALIDATED = ["--model", "vanilla_cnn_2d", "--sequence", "t2", "--split", "paper", "--epochs", "3", "--seed", "2"] \
    + FAST_2D


def run_in_terminal(*args, timeout=300):
    """Run `lvi` with stdout and stderr on a pseudo-terminal, as in a shell; returns (exit code, screen text)."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(lvi_command(*args), stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
                            cwd=str(REPO), env=dict(os.environ, COLUMNS="250"))
    os.close(terminal)
    chunks = []
    while True:
        try:
            data = os.read(controller, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(controller)
    return proc.wait(timeout=timeout), b"".join(chunks).decode("utf-8", "replace")


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_line_counts_work_done_now_for_the_time_left_and_is_silent_off_a_terminal():
    screen, pipe = _Terminal(), io.StringIO()
    shown = progress.Progress(10, "preprocessing", "case", stream=screen)
    silent = progress.Progress(10, "preprocessing", "case", stream=pipe)
    quiet = progress.Progress(10, "preprocessing", "case", quiet=True, stream=_Terminal())
    for p in (shown, silent, quiet):
        p.skip(4)  # done by an earlier process: no pace, so no time left yet
    assert "preprocessing 4/10 cases" in shown.line() and "left" not in shown.line()
    for p in (shown, silent, quiet):
        p.advance(2, status="loss 0.5")
        p.close()
    assert "6/10 cases" in shown.line() and "left" in shown.line() and shown.line().endswith("loss 0.5")
    assert screen.getvalue().startswith("\r") and screen.getvalue().endswith("\n")
    assert pipe.getvalue() == "" and quiet.stream.getvalue() == ""


def test_duration_is_short():
    assert [progress.duration(s) for s in (5, 425, 7980)] == ["5s", "7m05s", "2h13m"]


def test_train_on_a_terminal_shows_cache_building_folds_epochs_loss_and_time_left(blob_cohort, tmp_path):
    out = tmp_path / "run"
    code, screen = run_in_terminal("train", "--cohort", blob_cohort, "--out", out, "--cache-dir", tmp_path / "cache",
                                   *QUICK)
    assert code == 0, screen[-3000:]
    assert "new run {}; its log: {}".format(out, out / "train.log") in screen
    assert "preprocessing 30/30 cases" in screen
    assert "fold_0 (1/1) 1/2 epochs" in screen and "left" in screen
    assert "epoch 2/2 loss" in screen and "train-AUC" in screen
    assert "10% patient holdout: AUC" in screen  # the result, after the progress line was ended

    code, quiet = run_in_terminal("train", "--cohort", blob_cohort, "--out", tmp_path / "quiet", "--quiet", *QUICK)
    assert code == 0
    assert "epochs" not in quiet and "train.log" not in quiet and "10% patient holdout: AUC" in quiet


def test_train_in_a_pipe_says_where_the_log_is_and_draws_no_progress(blob_cohort, tmp_path):
    out = tmp_path / "run"
    result = run_lvi("train", "--cohort", blob_cohort, "--out", out, *QUICK)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "new run {}; its log: {}".format(out, out / "train.log")
    assert "\r" not in result.stderr + result.stdout
    assert "fold_0 epoch 2/2" in (out / "train.log").read_text()


def test_validate_cohort_on_a_terminal_counts_the_cases_it_reads(blob_cohort):
    code, screen = run_in_terminal("validate-cohort", blob_cohort)
    assert code == 0 and "reading images 30/30 cases" in screen and "OK: no problems found" in screen
    code, quiet = run_in_terminal("validate-cohort", blob_cohort, "--quiet")
    assert code == 0 and "reading images" not in quiet and "OK: no problems found" in quiet


@pytest.fixture(scope="module")
def validated_run(blob_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("records") / "run"
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(out)] + VALIDATED) == 0
    return out


def test_history_csv_holds_every_epoch_of_result_json(validated_run):
    history = json.loads((validated_run / "fold_0" / "result.json").read_text())["history"]
    with open(validated_run / "fold_0" / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for row, entry in zip(rows, history):
        for key in ("loss", "train_auc", "val_loss", "val_auc", "lr", "seconds"):
            assert float(row[key]) == entry[key]  # repr of a float reads back exactly


def test_learning_curves_png_is_drawn(validated_run):
    assert (validated_run / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tensorboard_events_hold_the_history_or_the_log_says_why_not(validated_run):
    history = json.loads((validated_run / "fold_0" / "result.json").read_text())["history"]
    log = (validated_run / "train.log").read_text()
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:  # the optional extra is not installed here: the log must say so
        assert "TensorBoard events not written: the tensorboard package is not installed" in log
        assert not (validated_run / "tensorboard").exists()
        return
    events = EventAccumulator(str(validated_run / "tensorboard" / "fold_0"))
    events.Reload()
    for tag, key in (("loss/train", "loss"), ("auc/validation", "val_auc"), ("lr", "lr")):
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == [1, 2, 3]
        assert [s.value for s in scalars] == pytest.approx([h[key] for h in history], rel=1e-6)  # stored as float32


def test_without_tensorboard_the_run_trains_the_same_and_its_log_says_so(blob_cohort, validated_run, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as without the package
    out = tmp_path / "no-tb"
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(out)] + VALIDATED) == 0
    assert "the tensorboard package is not installed (pip install 'lvipredictor[tensorboard]')" in \
        (out / "train.log").read_text()
    assert not (out / "tensorboard").exists()
    first, second = (json.loads((run / "metrics.json").read_text()) for run in (validated_run, out))
    assert {k: v for k, v in first.items() if k != "run"} == {k: v for k, v in second.items() if k != "run"}
