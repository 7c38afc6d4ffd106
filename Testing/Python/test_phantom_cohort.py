"""Cohorts written by ``lvi phantom``: files, reproducibility, DICOM geometry and headers."""

import csv
import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from lvi_training.cli import main
from phantom_helpers import all_files, grid_of, read_dicom_phase

N_CASES = 3


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("phantom") / "cohort"
    assert main(["phantom", "--out", str(out), "--n", str(N_CASES), "--seed", "11", "--second-label",
                 "--workers", "2"]) == 0
    return out


def _rows(folder):
    with open(folder / "cohort.csv", newline="") as f:
        return list(csv.DictReader(f))


def _case_info(folder, case_id):
    with open(folder / "cases" / case_id / "case.json") as f:
        return json.load(f)


def _expected_geometry(grid):
    return np.array(grid["origin"]), np.array(grid["spacing"]), np.eye(3).ravel()


def test_cli_writes_a_valid_cohort_csv(cohort):
    rows = _rows(cohort)
    assert len(rows) == N_CASES
    assert list(rows[0]) == ["case_id", "patient_id", "lvi", "t2_image", "t2_mask", "dce_image", "dce_mask", "age",
                             "tumour_size_mm", "mri_aln", "peritumoral_edema", "her2", "ki67"]
    for row in rows:
        assert row["lvi"] in ("0", "1")
        assert 26 <= int(row["age"]) <= 91
        assert row["t2_image"].endswith("t2.nii.gz") and row["dce_image"].endswith("dce_phase2.nii.gz")
        for key in ("t2_image", "t2_mask", "dce_image", "dce_mask"):
            assert (cohort / row[key]).is_file(), row[key]


def test_same_seed_gives_the_same_bytes_serial_or_parallel(cohort, tmp_path):
    again = tmp_path / "again"
    assert main(["phantom", "--out", str(again), "--n", str(N_CASES), "--seed", "11", "--second-label",
                 "--workers", "1"]) == 0
    first, second = all_files(cohort), all_files(again)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []


def test_another_seed_gives_other_images(cohort, tmp_path):
    other = tmp_path / "other"
    assert main(["phantom", "--out", str(other), "--n", "1", "--seed", "12", "--outputs", "nifti",
                 "--workers", "1"]) == 0
    a = sitk.GetArrayFromImage(sitk.ReadImage(str(cohort / "cases/LVI-0001/t2.nii.gz")))
    b = sitk.GetArrayFromImage(sitk.ReadImage(str(other / "cases/LVI-0001/t2.nii.gz")))
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_t2_dicom_series_reads_back_with_the_geometry_written(cohort):
    case = _case_info(cohort, "LVI-0001")
    folder = str(cohort / "cases/LVI-0001/dicom/t2")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(folder))
    image = reader.Execute()
    origin, spacing, direction = _expected_geometry(case["t2_grid"])
    got = grid_of(image)
    assert got["size"] == case["t2_grid"]["size"]
    np.testing.assert_allclose(got["origin"], origin, atol=1e-3)
    np.testing.assert_allclose(got["spacing"], spacing, atol=1e-4)
    np.testing.assert_allclose(got["direction"], direction, atol=1e-6)
    nifti = sitk.ReadImage(str(cohort / "cases/LVI-0001/t2.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image).astype(np.int32),
                                  sitk.GetArrayFromImage(nifti).astype(np.int32))


def test_dicom_geometry_tags_match_the_grid_in_pydicom(cohort):
    case = _case_info(cohort, "LVI-0002")
    folder = cohort / "cases/LVI-0002/dicom/t2"
    datasets = sorted((pydicom.dcmread(str(p)) for p in folder.iterdir()), key=lambda d: int(d.InstanceNumber))
    grid = case["t2_grid"]
    assert [float(v) for v in datasets[0].ImagePositionPatient] == pytest.approx(grid["origin"], abs=1e-3)
    assert [float(v) for v in datasets[0].ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
    assert [float(v) for v in datasets[0].PixelSpacing] == pytest.approx([grid["spacing"][1], grid["spacing"][0]])
    assert float(datasets[0].SliceThickness) == pytest.approx(grid["slice_thickness"])
    assert float(datasets[0].SpacingBetweenSlices) == pytest.approx(grid["spacing"][2])
    z = [float(d.ImagePositionPatient[2]) for d in datasets]
    assert np.diff(z) == pytest.approx(np.full(len(z) - 1, grid["spacing"][2]), abs=1e-3)
    assert (datasets[0].Rows, datasets[0].Columns) == (grid["size"][1], grid["size"][0])


def test_dce_phase2_nifti_equals_dicom_temporal_position_2(cohort):
    case = _case_info(cohort, "LVI-0001")
    from_dicom = read_dicom_phase(str(cohort / "cases/LVI-0001/dicom/dce"), 2)
    nifti = sitk.ReadImage(str(cohort / "cases/LVI-0001/dce_phase2.nii.gz"))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(from_dicom).astype(np.int32),
                                  sitk.GetArrayFromImage(nifti).astype(np.int32))
    origin, spacing, direction = _expected_geometry(case["dce_grid"])
    for image in (from_dicom, nifti):
        np.testing.assert_allclose(image.GetOrigin(), origin, atol=1e-3)
        np.testing.assert_allclose(image.GetSpacing(), spacing, atol=1e-4)
        np.testing.assert_allclose(image.GetDirection(), direction, atol=1e-6)


def test_dce_is_one_series_with_temporal_positions_and_times(cohort):
    folder = cohort / "cases/LVI-0001/dicom/dce"
    datasets = [pydicom.dcmread(str(p), stop_before_pixels=True) for p in sorted(folder.iterdir())]
    assert len({d.SeriesInstanceUID for d in datasets}) == 1
    assert len({d.SOPInstanceUID for d in datasets}) == len(datasets)
    assert sorted(int(d.InstanceNumber) for d in datasets) == list(range(1, len(datasets) + 1))
    positions = sorted({int(d.TemporalPositionIdentifier) for d in datasets})
    assert positions == [1, 2, 3, 4]
    assert {int(d.NumberOfTemporalPositions) for d in datasets} == {4}
    by_phase = {int(d.TemporalPositionIdentifier): d for d in datasets}
    # The phases' times are their AcquisitionTimes (TriggerTime belongs to gated scans only: dciodvfy).
    assert not any("TriggerTime" in d for d in datasets)
    times = [by_phase[p].AcquisitionTime for p in positions]
    assert times == sorted(times) and len(set(times)) == 4
    d = datasets[0]
    assert (d.Modality, d.Manufacturer, d.ManufacturerModelName) == ("MR", "SIEMENS", "Avanto")
    assert float(d.MagneticFieldStrength) == 1.5
    assert d.SeriesDescription == "fl3d_dyn_tra"


def test_t2_and_dce_series_share_a_study_but_not_a_grid(cohort):
    t2 = pydicom.dcmread(str(next((cohort / "cases/LVI-0001/dicom/t2").iterdir())), stop_before_pixels=True)
    dce = pydicom.dcmread(str(next((cohort / "cases/LVI-0001/dicom/dce").iterdir())), stop_before_pixels=True)
    assert t2.SeriesDescription == "t2_tse_fs_tra"
    assert t2.StudyInstanceUID == dce.StudyInstanceUID and t2.FrameOfReferenceUID == dce.FrameOfReferenceUID
    assert t2.SeriesInstanceUID != dce.SeriesInstanceUID
    case = _case_info(cohort, "LVI-0001")
    assert case["t2_grid"]["spacing"] != case["dce_grid"]["spacing"]
    assert case["t2_grid"]["origin"] != case["dce_grid"]["origin"]


def test_masks_lie_on_their_own_series_grid_with_a_second_label(cohort):
    for image_name, mask_name in (("t2.nii.gz", "t2_mask.nii.gz"), ("dce_phase2.nii.gz", "dce_mask.nii.gz")):
        image = sitk.ReadImage(str(cohort / "cases/LVI-0001" / image_name))
        mask = sitk.ReadImage(str(cohort / "cases/LVI-0001" / mask_name))
        assert mask.GetPixelID() == sitk.sitkUInt8
        assert grid_of(mask)["size"] == grid_of(image)["size"]
        np.testing.assert_allclose(mask.GetOrigin(), image.GetOrigin())
        np.testing.assert_allclose(mask.GetSpacing(), image.GetSpacing())
        assert set(np.unique(sitk.GetArrayFromImage(mask))) == {0, 1, 2}


def test_cohort_json_records_the_best_auc_and_the_cases(cohort):
    with open(cohort / "cohort.json") as f:
        meta = json.load(f)
    assert set(meta["best_auc"]) == {"t2", "dce", "both"}
    assert 0.80 <= meta["best_auc"]["both"] <= 0.85
    assert meta["generator"]["seed"] == 11 and meta["n_cases"] == N_CASES
    assert [c["case_id"] for c in meta["cases"]] == ["LVI-0001", "LVI-0002", "LVI-0003"]


def test_dicom_only_output_puts_series_folders_in_the_csv(tmp_path):
    out = tmp_path / "dicom_only"
    assert main(["phantom", "--out", str(out), "--n", "1", "--seed", "3", "--outputs", "dicom", "--workers", "1"]) == 0
    row = _rows(out)[0]
    assert row["t2_image"] == "cases/LVI-0001/dicom/t2" and row["dce_image"] == "cases/LVI-0001/dicom/dce"
    assert not (out / "cases/LVI-0001/t2.nii.gz").exists()
    assert (out / row["t2_mask"]).is_file()


def test_null_cohort_records_best_auc_one_half(tmp_path):
    out = tmp_path / "null"
    assert main(["phantom", "--out", str(out), "--n", "1", "--seed", "3", "--outputs", "nifti", "--null",
                 "--workers", "1"]) == 0
    with open(out / "cohort.json") as f:
        assert json.load(f)["best_auc"] == {"t2": 0.5, "dce": 0.5, "both": 0.5}


def test_nifti_phase_is_a_parameter(tmp_path):
    out = tmp_path / "phase3"
    assert main(["phantom", "--out", str(out), "--n", "1", "--seed", "3", "--outputs", "nifti", "--dce-phase", "3",
                 "--workers", "1"]) == 0
    assert _rows(out)[0]["dce_image"] == "cases/LVI-0001/dce_phase3.nii.gz"
    assert (out / "cases/LVI-0001/dce_phase3.nii.gz").is_file()
