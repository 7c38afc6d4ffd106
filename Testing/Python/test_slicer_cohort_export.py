"""Export of a Slicer case into a cohort folder: files on each series' grid, rows only ever appended."""

import numpy as np
import pytest
import SimpleITK as sitk

from slicer_headless import dynamic_series, headless_slicer, module_file, multi_volume  # noqa: F401
from synthetic_images import make_grid, mr_image, rotation_z, sphere_mask

CENTRE, RADIUS = (1.0, -2.0, 0.0), 7.0


@pytest.fixture
def twoSeries(headless_slicer):
    import slicer

    from LVIPredictorSlicerLib import mrml_adapter

    t2 = mr_image(make_grid(size=(56, 52, 14), spacing=(0.7, 0.8, 3.0), origin=(-19.0, -22.0, -20.0)),
                  centre=CENTRE, radius=RADIUS)
    dce = mr_image(make_grid(size=(48, 48, 30), spacing=(0.9, 0.9, 1.5), origin=(-20.0, -21.0, -22.0),
                             direction=rotation_z(0.1)), centre=CENTRE, radius=RADIUS, seed=1)
    t2Node = mrml_adapter.addVolumeFromImage(t2, "t2_tse_fs")
    dceNode = mrml_adapter.addVolumeFromImage(dce, "vibe_dyn_phase2")
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
    segmentId = mrml_adapter.importMaskIntoSegmentation(sphere_mask(t2, CENTRE, RADIUS), segmentation, t2Node, "tumour")
    return {"t2": t2, "dce": dce, "t2Node": t2Node, "dceNode": dceNode, "segmentation": segmentation,
            "segmentId": segmentId}


def _export(module_file, case, folder, caseId="case-001", **kwargs):
    return module_file.LVIPredictorLogic().exportCaseToCohort(
        folder, caseId, "patient-9", 1, case["segmentation"], case["segmentId"],
        t2Volume=case["t2Node"], dceVolume=case["dceNode"], **kwargs)


def test_exported_case_reads_back_with_the_series_geometry(module_file, twoSeries, tmp_path):
    row = _export(module_file, twoSeries, tmp_path)
    for sequence in ("t2", "dce"):
        image = sitk.ReadImage(str(tmp_path / row[sequence + "_image"]))
        mask = sitk.ReadImage(str(tmp_path / row[sequence + "_mask"]))
        original = twoSeries[sequence]
        assert np.array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(original))
        for got in (image, mask):
            assert got.GetSize() == original.GetSize()
            assert np.allclose(got.GetOrigin(), original.GetOrigin(), atol=1e-4)
            assert np.allclose(got.GetDirection(), original.GetDirection(), atol=1e-5)
        assert set(np.unique(sitk.GetArrayFromImage(mask))) == {0, 1}


def test_exported_cohort_passes_validate_cohort(module_file, twoSeries, tmp_path):
    from lvi_training import cohort

    _export(module_file, twoSeries, tmp_path)
    report = cohort.validate_cohort(cohort.load_cohort(tmp_path))
    assert report.ok, [str(problem) for problem in report.problems]
    assert [case.lvi for case in report.cohort.cases] == [1]


def test_second_export_appends_without_touching_existing_rows(module_file, twoSeries, tmp_path):
    (tmp_path / "cohort.csv").write_bytes(
        b"case_id,patient_id,lvi,t2_image,t2_mask,dce_image,dce_mask,age\r\nold-1,p1,0,,,,,61\r\n")
    before = (tmp_path / "cohort.csv").read_bytes()
    _export(module_file, twoSeries, tmp_path, clinical={"age": 55})
    after = (tmp_path / "cohort.csv").read_bytes()
    assert after.startswith(before)
    assert after[len(before):].decode().endswith(",55\r\n")


def test_exporting_an_existing_case_id_changes_nothing(module_file, twoSeries, tmp_path):
    from LVIPredictorLib.errors import InputError

    _export(module_file, twoSeries, tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    csv = (tmp_path / "cohort.csv").read_bytes()
    with pytest.raises(InputError, match="case-001"):
        _export(module_file, twoSeries, tmp_path)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "cohort.csv").read_bytes() == csv


def test_unsafe_case_id_is_refused(module_file, twoSeries, tmp_path):
    from LVIPredictorLib.errors import InputError

    with pytest.raises(InputError, match="case ID"):
        _export(module_file, twoSeries, tmp_path, caseId="../escape")
    assert not (tmp_path / "cohort.csv").exists()


@pytest.mark.parametrize("form", ["sequence", "multivolume"])
def test_a_whole_dynamic_series_exports_its_phase_2_not_the_acquisition_on_screen(module_file, twoSeries, tmp_path,
                                                                                  form):
    grid = make_grid(size=(40, 40, 24), spacing=(0.9, 0.9, 1.5), origin=(-17.0, -19.0, -18.0))
    phases = [mr_image(grid, centre=CENTRE, radius=0.5, seed=s) for s in (11, 12, 13)]
    # The sequence's proxy shows acquisition 1 (pre-contrast); a MultiVolume shows no single one.
    node = dynamic_series(phases)[0] if form == "sequence" else multi_volume(phases)
    row = _export(module_file, dict(twoSeries, dceNode=node), tmp_path)
    written = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / row["dce_image"])))
    assert np.array_equal(written, sitk.GetArrayFromImage(phases[1]))
    assert not np.array_equal(written, sitk.GetArrayFromImage(phases[0]))


def test_clinical_values_are_checked_and_a_new_table_gets_every_clinical_column(module_file, twoSeries, tmp_path):
    import csv

    from lvi_training import cohort

    from LVIPredictorLib import clinical
    from LVIPredictorLib.errors import InputError

    for bad, message in (({"ki67": "140"}, "ki67 = 140 is outside the allowed values"),
                         ({"ki-67": "14"}, "unknown clinical column"), ({"her2": "yes"}, "her2 = 'yes' is not")):
        with pytest.raises(InputError, match=message):
            _export(module_file, twoSeries, tmp_path, clinical=bad)
        assert list(tmp_path.iterdir()) == []  # nothing written
    # What the panel's fields give: text, "" for a value not recorded.
    _export(module_file, twoSeries, tmp_path, clinical={"age": "52", "mri_aln": "", "her2": "1", "ki67": " 14 "})
    with open(tmp_path / "cohort.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[7:] == list(clinical.NAMES)
    assert [rows[0][n] for n in clinical.NAMES] == ["52", "", "", "", "1", "14"]
    report = cohort.validate_cohort(cohort.load_cohort(tmp_path))
    assert report.ok, [str(problem) for problem in report.problems]
