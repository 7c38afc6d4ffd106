"""validate-cohort: every problem of every row at once, with the case and the file."""

import numpy as np
import SimpleITK as sitk

from lvi_training.cohort import load_cohort, prevalence_table, validate_cohort
from lvi_training.cli import main as lvi
from training_helpers import read_rows, write_blob_cohort, write_csv


def _broken_cohort(root):
    """A 10-case cohort with one defect per row (rows 0 and 1 stay valid)."""
    write_blob_cohort(root, n=10, seed=4, shape=(8, 24, 24))
    rows = read_rows(root)
    rows[2]["dce_image"] = "images/missing.nii.gz"                     # missing file
    rows[3]["lvi"] = "2"                                              # label not 0/1
    rows[4]["case_id"] = rows[0]["case_id"]                           # duplicate case id
    rows[5]["patient_id"] = rows[6]["patient_id"]                     # same patient ...
    rows[5]["lvi"], rows[6]["lvi"] = "0", "1"                         # ... conflicting labels
    empty = sitk.Image(24, 24, 8, sitk.sitkUInt8)
    empty.SetSpacing((1.5, 1.5, 3.0))
    sitk.WriteImage(empty, str(root / rows[7]["t2_mask"]))            # empty mask
    far = sitk.ReadImage(str(root / rows[8]["dce_mask"]))
    far.SetOrigin((500.0, 0.0, 0.0))
    sitk.WriteImage(far, str(root / rows[8]["dce_mask"]))             # mask nowhere near its image
    (root / rows[9]["t2_image"]).write_bytes(b"not an image at all")  # unreadable image
    rows[1]["dce_image"], rows[1]["dce_mask"] = "", ""                # no DCE for a DCE model
    write_csv(root, rows)
    return rows


def test_valid_cohort_has_no_problems_and_a_prevalence_table(tmp_path):
    write_blob_cohort(tmp_path, n=10, seed=1, shape=(8, 24, 24), prevalence=0.3)
    cohort = load_cohort(tmp_path)
    report = validate_cohort(cohort, sequences=["t2", "dce"])
    assert report.ok, [str(p) for p in report.problems]
    table = {r["subset"]: r for r in prevalence_table(cohort)}
    assert (table["all"]["cases"], table["all"]["lvi_pos"], table["all"]["lvi_neg"]) == (10, 3, 7)
    assert table["dce"]["prevalence"] == 0.3


def test_every_problem_is_reported_at_once_with_case_and_file(tmp_path):
    rows = _broken_cohort(tmp_path)
    report = validate_cohort(load_cohort(tmp_path), sequences=["dce"])
    text = "\n".join(str(p) for p in report.problems)
    expected = [
        (rows[2]["case_id"], "missing.nii.gz", "file not found"),
        (rows[3]["case_id"], "cohort.csv line 5", "lvi must be 0 or 1"),
        (rows[0]["case_id"], "cohort.csv line 6", "duplicate case_id"),
        (None, "cohort.csv", "patient {} has conflicting labels".format(rows[6]["patient_id"])),
        (rows[7]["case_id"], rows[7]["t2_mask"], "no labelled voxel"),
        (rows[8]["case_id"], rows[8]["dce_mask"], "does not overlap"),
        (rows[9]["case_id"], rows[9]["t2_image"], "cannot be read"),
        (rows[1]["case_id"], "cohort.csv line 3", "no dce image+mask"),
    ]
    for case_id, file_part, message in expected:
        hits = [p for p in report.problems if message in p.message or message in str(p)]
        assert hits, "missing problem {!r} in:\n{}".format(message, text)
        assert any(file_part in str(p) and (case_id is None or "case {}".format(case_id) in str(p)) for p in hits), text
    assert len(report.problems) == len(expected)


def test_mask_on_a_slightly_different_grid_is_a_warning_not_an_error(tmp_path):
    write_blob_cohort(tmp_path, n=4, seed=2, shape=(8, 24, 24), sequences=("t2",))
    rows = read_rows(tmp_path)
    mask = sitk.ReadImage(str(tmp_path / rows[0]["t2_mask"]))
    shifted = sitk.Resample(mask, [30, 30, 10], sitk.Transform(), sitk.sitkNearestNeighbor, (-1.0, -1.0, -1.0),
                            (1.2, 1.2, 2.5), mask.GetDirection(), 0, sitk.sitkUInt8)
    assert np.any(sitk.GetArrayViewFromImage(shifted))
    sitk.WriteImage(shifted, str(tmp_path / rows[0]["t2_mask"]))
    report = validate_cohort(load_cohort(tmp_path), sequences=["t2"])
    assert report.ok, [str(p) for p in report.problems]
    assert any("different grid" in w.message and rows[0]["case_id"] in str(w) for w in report.warnings)


def test_validate_cohort_command_lists_all_problems_and_fails(tmp_path, capsys):
    _broken_cohort(tmp_path)
    assert lvi(["validate-cohort", str(tmp_path), "--sequence", "dce"]) == 1
    out = capsys.readouterr().out
    assert "8 problem(s)" in out
    assert "prevalence" in out


def test_validate_cohort_command_passes_a_clean_cohort(tmp_path, capsys):
    write_blob_cohort(tmp_path, n=6, seed=3, shape=(8, 24, 24))
    assert lvi(["validate-cohort", str(tmp_path)]) == 0
    assert "OK: no problems found" in capsys.readouterr().out
