"""Outputs never hurt inputs (issue 26, item 5): a table of hostile --out / --dicom-sr / --dicom-seg
choices for `lvi predict` (and --out of `lvi predict --cohort` and `lvi evaluate`), each with its
required outcome, and after every row a check that nothing outside the run's own outputs changed.

Each row copies the sample case's DCE series and VOI into its own folder (the inputs) and runs the
real command in-process with one bundled model. Refusals must come before any work, in one line
naming the path; a row that succeeds must leave exactly its outputs.
"""

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional

import pydicom
import pytest

from LVIPredictorLib.errors import InputError
from lvi_training.cli import main
from lvi_training.reference import default_sample_case
from training_helpers import FAST_2D, blob_cohort  # noqa: F401 (fixture)

SAMPLE = default_sample_case()
MODEL = "demo-dce-vanilla_cnn_2d"


@dataclass
class Case:
    root: Path  # everything the row may touch lies here
    series: Path  # a copy of the sample's DCE series
    mask: Path
    out: Path  # the report folder (may not exist)

    def predict(self, *extra):
        return ["predict", "--sequence", "dce", "--model", MODEL, "--image", str(self.series), "--mask",
                str(self.mask), "--no-heatmap"] + [str(e) for e in extra]


def _case(tmp_path):
    inputs = tmp_path / "inputs"
    shutil.copytree(SAMPLE / "dicom" / "dce", inputs / "dce")
    shutil.copy(SAMPLE / "dce_mask.nii.gz", inputs / "dce_mask.nii.gz")
    return Case(tmp_path, inputs / "dce", inputs / "dce_mask.nii.gz", tmp_path / "report")


def _snapshot(root: Path):
    """{relative path: content hash, where a link points, or "folder"} of everything under ``root``."""
    found = {}
    for folder, dirs, files in os.walk(str(root)):
        for name in files + dirs:
            path = os.path.join(folder, name)
            key = os.path.relpath(path, str(root))
            if os.path.islink(path):
                found[key] = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                found[key] = "folder"
            else:
                found[key] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return found


def _unwritable_folder(root: Path) -> Path:
    """A folder this process cannot write: permission bits for a normal user; for root (whom they do
    not stop) a sysfs folder, which refuses new files to everyone."""
    if os.geteuid() != 0:
        folder = root / "locked"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    return Path("/sys/kernel")


@dataclass
class Row:
    name: str
    # (case, monkeypatch) -> (argv, files the run may write: relative to case.root)
    setup: Callable
    refused: Optional[List[str]]  # substrings of the one-line error, or None: the run succeeds
    writes: List[str] = field(default_factory=list)
    late: bool = False  # fails after the prediction was made and printed (its outputs must still vanish)


def _seg_over_a_source_slice(c, mp):
    victim = sorted(c.series.iterdir())[0]
    return c.predict("--out", c.out, "--dicom-seg", victim, "--overwrite"), []


def _sr_into_the_series_folder(c, mp):
    return c.predict("--out", c.out, "--dicom-sr", c.series / "sr.dcm"), []


def _sr_over_the_mask(c, mp):
    return c.predict("--out", c.out, "--dicom-sr", c.mask, "--overwrite"), []


def _report_in_the_series_folder(c, mp):
    return c.predict("--out", c.series), []


def _sr_and_seg_the_same(c, mp):
    return c.predict("--out", c.out, "--dicom-sr", c.root / "x.dcm", "--dicom-seg", c.root / "x.dcm"), []


def _sr_is_the_result_json(c, mp):
    return c.predict("--out", c.out, "--dicom-sr", c.out / "result.json"), []


def _sr_through_a_link(c, mp):
    target = c.root / "elsewhere.dcm"
    target.write_bytes(b"someone else's file")
    (c.root / "link.dcm").symlink_to(target)
    return c.predict("--out", c.out, "--dicom-sr", c.root / "link.dcm", "--overwrite"), []


def _result_json_is_a_link(c, mp):
    c.out.mkdir()
    (c.out / "result.json").symlink_to(c.mask)
    return c.predict("--out", c.out, "--overwrite"), []


def _out_is_a_file(c, mp):
    (c.root / "report").write_text("not a folder")
    return c.predict("--out", c.root / "report"), []


def _out_under_a_file(c, mp):
    (c.root / "plain").write_text("not a folder")
    return c.predict("--out", c.root / "plain" / "report"), []


def _out_unwritable(c, mp):
    return c.predict("--out", _unwritable_folder(c.root) / "report"), []


def _out_on_a_full_disk(c, mp):
    real = shutil.disk_usage

    def full(path):
        usage = real(path)
        return type(usage)(usage.total, usage.total, 4096) if str(path).startswith(str(c.root)) else usage

    mp.setattr(shutil, "disk_usage", full)
    return c.predict("--out", c.out), []


def _sr_exists(c, mp):
    (c.root / "sr.dcm").write_bytes(b"an earlier report")
    return c.predict("--out", c.out, "--dicom-sr", c.root / "sr.dcm"), []


def _sr_fails_after_the_seg(c, mp):
    from LVIPredictorLib.dicom import sr_seg

    def broken(*args, **kwargs):
        raise InputError(str(c.root / "sr.dcm"), "the DICOM SR cannot be made (injected fault)")

    mp.setattr(sr_seg, "write_report", broken)
    return c.predict("--out", c.out, "--dicom-seg", c.root / "voi.dcm", "--dicom-sr", c.root / "sr.dcm"), []


def _all_outputs_distinct(c, mp):
    argv = c.predict("--out", c.out, "--dicom-seg", c.root / "dicom-out" / "voi.dcm", "--dicom-sr",
                     c.root / "dicom-out" / "sr.dcm")
    return argv, ["report", "report/result.json", "report/overview.png", "dicom-out", "dicom-out/voi.dcm",
                  "dicom-out/sr.dcm"]


def _cohort_out_is_a_file(c, mp):
    (c.root / "predictions").write_text("not a folder")
    return ["predict", "--cohort", str(c.root / "inputs"), "--out", str(c.root / "predictions")], []


def _evaluate_out_is_a_file(c, mp):
    (c.root / "evaluation").write_text("not a folder")
    return ["evaluate", "--model", MODEL, "--cohort", str(c.root / "inputs"), "--out",
            str(c.root / "evaluation")], []


ROWS = [
    Row("--dicom-seg names a slice of the input series", _seg_over_a_source_slice, ["lies in the input folder"]),
    Row("--dicom-sr inside the input series folder", _sr_into_the_series_folder, ["lies in the input folder"]),
    Row("--dicom-sr is the input mask (with --overwrite)", _sr_over_the_mask, ["is an input of this run"]),
    Row("--out is the input series folder", _report_in_the_series_folder, ["lies in the input folder"]),
    Row("--dicom-sr and --dicom-seg the same file", _sr_and_seg_the_same, ["x.dcm", "is named for both"]),
    Row("--dicom-sr is the report's result.json", _sr_is_the_result_json, ["result.json", "is named for both"]),
    Row("--dicom-sr is a symbolic link (with --overwrite)", _sr_through_a_link, ["link.dcm", "symbolic link"]),
    Row("result.json in --out is a symbolic link", _result_json_is_a_link, ["result.json", "symbolic link"]),
    Row("--out is a file", _out_is_a_file, ["report", "is a file, not a folder"]),
    Row("--out lies under a file", _out_under_a_file, ["plain", "is a file, not a folder"]),
    Row("--out cannot be written", _out_unwritable, ["report", "cannot be written"]),
    Row("--out on a full disk", _out_on_a_full_disk, ["report", "MB free"]),
    Row("--dicom-sr exists, no --overwrite", _sr_exists, ["sr.dcm", "already exists", "pass --overwrite to"]),
    Row("the SR fails after the SEG was made", _sr_fails_after_the_seg, ["injected fault"], late=True),
    Row("every output distinct and outside the inputs", _all_outputs_distinct, None),
    Row("lvi predict --cohort: --out is a file", _cohort_out_is_a_file, ["predictions", "is a file, not a folder"]),
    Row("lvi evaluate: --out is a file", _evaluate_out_is_a_file, ["evaluation", "is a file, not a folder"]),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_hostile_output(row, tmp_path, capsys, monkeypatch):
    case = _case(tmp_path)
    argv, writes = row.setup(case, monkeypatch)
    before = _snapshot(tmp_path)
    rc = main(argv)
    captured = capsys.readouterr()
    after = _snapshot(tmp_path)
    if row.refused is None:
        assert rc == 0, captured.err
        new = sorted(set(after) - set(before))
        assert new == sorted(writes)
        assert pydicom.dcmread(str(tmp_path / "dicom-out" / "sr.dcm")).Modality == "SR"
    else:
        assert rc == 2, captured.out + captured.err
        [line] = captured.err.strip().splitlines()  # one line, no traceback
        for words in row.refused:
            assert words in line, line
        assert "overwrite=True" not in line  # the command line's spelling, not the Python API's
        if not row.late:  # refused before any work: nothing was predicted
            assert "probability" not in captured.out and "LVI+" not in captured.out and "LVI-" not in captured.out
    # Nothing outside the run's own outputs changed: the inputs above all.
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed == set(writes)


def test_the_slicer_path_gets_the_same_checks_in_its_own_words(tmp_path):
    """writeDicomReport calls service.outputs.dicom_paths with its source files and folders and its
    own spelling of "replace"; the checks are the same."""
    from LVIPredictorLib.service import outputs

    case = _case(tmp_path)
    files = sorted(str(p) for p in case.series.iterdir())
    inputs = files + [str(case.series)]
    with pytest.raises(InputError, match="outputs never replace inputs"):
        outputs.dicom_paths(str(tmp_path / "sr.dcm"), files[0], ["dce"], True, inputs=inputs, option="overwrite=True")
    with pytest.raises(InputError, match="lies in the input folder"):
        outputs.dicom_paths(str(case.series / "sr.dcm"), None, ["dce"], True, inputs=inputs, option="overwrite=True")
    (tmp_path / "sr.dcm").write_bytes(b"earlier")
    with pytest.raises(InputError, match=r"pass overwrite=True to replace it"):
        outputs.dicom_paths(str(tmp_path / "sr.dcm"), None, ["dce"], False, inputs=inputs, option="overwrite=True")


# ----------------------------------------------------------------------------- lvi export after a kill

@pytest.fixture(scope="module")
def tiny_run(blob_cohort, tmp_path_factory):  # noqa: F811
    run = tmp_path_factory.mktemp("export") / "run"
    assert main(["train", "--cohort", str(blob_cohort), "--out", str(run), "--model", "vanilla_cnn_2d", "--sequence",
                 "t2", "--split", "paper", "--epochs", "1", "--seed", "3"] + FAST_2D) == 0
    return run


def _leave_weights_only(stem):
    Path(str(stem) + ".json").unlink()  # killed after the weights, before the card


def _leave_other_weights(stem):
    Path(str(stem) + ".safetensors").write_bytes(b"half a file")  # killed while writing the next weights


def _leave_card_only(stem):
    Path(str(stem) + ".safetensors").unlink()


@pytest.mark.parametrize("leftover", [_leave_weights_only, _leave_other_weights, _leave_card_only],
                         ids=["weights without card", "card naming other weights", "card without weights"])
def test_export_after_a_kill_replaces_the_partial_export(tiny_run, tmp_path, capsys, leftover):
    from LVIPredictorLib import weights

    stem = tmp_path / "model"
    assert main(["export", str(tiny_run), "--out", str(stem)]) == 0
    complete = Path(str(stem) + ".safetensors").read_bytes()
    leftover(stem)
    assert main(["export", str(tiny_run), "--out", str(stem)]) == 0, capsys.readouterr().err
    card = weights.load_card(str(stem) + ".json")
    assert card["weights_sha256"] == weights.sha256_of(str(stem) + ".safetensors")
    assert Path(str(stem) + ".safetensors").read_bytes() == complete  # the same export, whole


def test_a_complete_export_is_kept_unless_overwrite(tiny_run, tmp_path, capsys):
    stem = tmp_path / "model"
    assert main(["export", str(tiny_run), "--out", str(stem)]) == 0
    before = Path(str(stem) + ".json").read_bytes()
    capsys.readouterr()
    assert main(["export", str(tiny_run), "--out", str(stem)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "model.json: already holds a complete export" in line and "pass --overwrite" in line
    assert "overwrite=True" not in line
    assert Path(str(stem) + ".json").read_bytes() == before
    assert main(["export", str(tiny_run), "--out", str(stem), "--overwrite"]) == 0


@pytest.mark.parametrize("cut", ["metrics.json", "fold_0/result.json", "fold_0/checkpoint.pt"])
def test_export_of_a_run_killed_while_training_is_refused_in_one_line(tiny_run, tmp_path, capsys, cut):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / cut).unlink()
    assert main(["export", str(run), "--out", str(tmp_path / "model")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert str(run) in line and ("did not finish" in line or "is missing" in line)
    assert not list(tmp_path.glob("model.*"))


def test_a_disk_that_fills_during_the_writes_leaves_no_output_and_no_temporary(tmp_path, monkeypatch):
    """The up-front free-space check is an estimate; ENOSPC at write is the backstop (injected at the
    second file's flush to disk, where a full disk reports it)."""
    from LVIPredictorLib.atomic_files import StagedFiles

    (tmp_path / "old.json").write_text("an earlier result")
    calls = []
    real_fsync = os.fsync

    def fsync(fd):
        calls.append(fd)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(InputError, match=r"b\.json: cannot be written: no space left on its disk"):
        with StagedFiles() as files:
            files.write_json(tmp_path / "a.json", {"a": 1})
            files.write_bytes(tmp_path / "b.json", b"{}")
            files.write_bytes(tmp_path / "old.json", b"replaced")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]
    assert (tmp_path / "old.json").read_text() == "an earlier result"
