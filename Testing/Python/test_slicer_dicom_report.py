"""LVIPredictorLogic.writeDicomReport on a headless scene: the prediction made in Slicer goes to a DICOM SR,
the segment to a DICOM SEG on the source DICOM series (sample case, 4-phase DCE read at phase 2)."""

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from slicer_headless import bundled_models, headless_slicer, models_dir, module_file  # noqa: F401
from lvi_training.reference import default_sample_case

SAMPLE = default_sample_case()


@pytest.fixture
def dceCase(headless_slicer, module_file, bundled_models):
    import slicer

    volume = slicer.util.loadVolume(str(SAMPLE / "dce_phase2.nii.gz"), {"singleFile": True})
    logic = module_file.LVIPredictorLogic()
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
    segmentId = logic.importMask(SAMPLE / "dce_mask.nii.gz", segmentation, volume)
    predictions = logic.predictCase({"dce": volume}, segmentation, segmentId, model="dce_vanilla", device="cpu")
    return dict(logic=logic, volume=volume, segmentation=segmentation, segmentId=segmentId, predictions=predictions)


def _evidence(ds):
    return {series.SeriesInstanceUID: {i.ReferencedSOPInstanceUID for i in series.ReferencedSOPSequence}
            for study in ds.CurrentRequestedProcedureEvidenceSequence for series in study.ReferencedSeriesSequence}


@pytest.mark.parametrize("asFileList", [False, True])
def test_report_and_seg_reference_the_source_series_and_hold_the_segment(dceCase, tmp_path, asFileList):
    import highdicom as hd

    from LVIPredictorLib.inputs import readers

    folder = SAMPLE / "dicom" / "dce"
    # A list of files is what Slicer's DICOM database gives for a series.
    source = sorted(str(p) for p in folder.iterdir()) if asFileList else folder
    written = dceCase["logic"].writeDicomReport(
        dceCase["predictions"], {"dce": dceCase["volume"]}, dceCase["segmentation"], dceCase["segmentId"],
        tmp_path / "sr.dcm", segmentationPath=str(tmp_path / "seg.dcm"), sourceFiles={"dce": source},
        voiAuthor="Doe^Jane")
    assert written == {"sr": str(tmp_path / "sr.dcm"), "seg": {"dce": str(tmp_path / "seg.dcm")}}
    image, info = readers.read_image_with_info(folder)
    sr, seg = pydicom.dcmread(tmp_path / "sr.dcm"), hd.seg.segread(tmp_path / "seg.dcm")
    assert str(seg.ContentCreatorName) == "Doe^Jane"
    assert [str(i.PersonName) for i in sr.ContentSequence if i.ValueType == "PNAME"] == ["Doe^Jane"]
    assert _evidence(sr) == {info.series_uid: {h.sop_instance_uid for h in info.images},
                             seg.SeriesInstanceUID: {seg.SOPInstanceUID}}
    [prediction] = dceCase["predictions"]
    group = hd.sr.srread(tmp_path / "sr.dcm").content.get_volumetric_roi_measurement_groups()[0]
    [probability] = [m for m in group.get_measurements() if m.name.value == "LVIPROB"]
    assert probability.value == pytest.approx(prediction.probability, abs=1e-6)
    # The segment, imported from the mask file, comes back on the DICOM series' grid.
    pixels = seg.get_pixels_by_source_instance([h.sop_instance_uid for h in info.images], segment_numbers=[1])[..., 0]
    expected = sitk.GetArrayFromImage(readers.read_mask(SAMPLE / "dce_mask.nii.gz", reference=image)) != 0
    assert np.array_equal(pixels.astype(bool), expected)


def test_a_volume_not_loaded_from_dicom_needs_its_source_files(dceCase, tmp_path):
    from LVIPredictorLib.errors import InputError

    with pytest.raises(InputError, match="was not loaded from the DICOM database"):
        dceCase["logic"].writeDicomReport(dceCase["predictions"], {"dce": dceCase["volume"]},
                                          dceCase["segmentation"], dceCase["segmentId"], tmp_path / "sr.dcm")
    assert not (tmp_path / "sr.dcm").exists()


def test_source_files_of_another_series_are_refused(dceCase, tmp_path):
    from LVIPredictorLib.errors import InputError

    with pytest.raises(InputError, match="does not lie on the grid of the DICOM series"):
        dceCase["logic"].writeDicomReport(dceCase["predictions"], {"dce": dceCase["volume"]},
                                          dceCase["segmentation"], dceCase["segmentId"], tmp_path / "sr.dcm",
                                          sourceFiles={"dce": SAMPLE / "dicom" / "t2"})
    assert not (tmp_path / "sr.dcm").exists()


def test_an_existing_report_is_kept_unless_overwrite(dceCase, tmp_path):
    from LVIPredictorLib.errors import InputError

    (tmp_path / "seg.dcm").write_bytes(b"keep me")
    args = (dceCase["predictions"], {"dce": dceCase["volume"]}, dceCase["segmentation"], dceCase["segmentId"],
            tmp_path / "sr.dcm")
    kwargs = dict(segmentationPath=str(tmp_path / "seg.dcm"), sourceFiles={"dce": SAMPLE / "dicom" / "dce"})
    with pytest.raises(InputError, match="already exists"):
        dceCase["logic"].writeDicomReport(*args, **kwargs)
    assert (tmp_path / "seg.dcm").read_bytes() == b"keep me" and not (tmp_path / "sr.dcm").exists()
    dceCase["logic"].writeDicomReport(*args, overwrite=True, **kwargs)
    assert pydicom.dcmread(tmp_path / "seg.dcm").Modality == "SEG"
