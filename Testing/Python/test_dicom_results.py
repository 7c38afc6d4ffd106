"""DICOM SR (TID 1500) and SEG written for predictions on the sample case's DICOM series, read back with
pydicom and highdicom: values, codes and every reference checked against the inputs."""

import json

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from LVIPredictorLib import inference, weights
from LVIPredictorLib.dicom import sr_seg
from LVIPredictorLib.inputs import readers
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.vocabulary import kinds
from lvi_training.cli import main
from lvi_training.reference import default_sample_case
from study_factory import FS_T2, write_enhanced_mr

SAMPLE = default_sample_case()
COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
SEGMENTATION = "1.2.840.10008.5.1.4.1.1.66.4"


def _items(ds):
    """Every content item of an SR document, depth first."""
    for item in ds.get("ContentSequence", []):
        yield item
        yield from _items(item)


def _concept(item):
    code = item.ConceptNameCodeSequence[0]
    return code.CodingSchemeDesignator, code.CodeValue


def _numbers(ds):
    return [(_concept(i), float(i.MeasuredValueSequence[0].NumericValue),
             i.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue)
            for i in _items(ds) if i.ValueType == "NUM"]


def _evidence(ds):
    """{series uid: {SOP instance uids}} of the SR's evidence."""
    out = {}
    for study in ds.CurrentRequestedProcedureEvidenceSequence:
        for series in study.ReferencedSeriesSequence:
            out.setdefault(series.SeriesInstanceUID, set()).update(
                item.ReferencedSOPInstanceUID for item in series.ReferencedSOPSequence)
    return out


def _read(sequence):
    image, info = readers.read_image_with_info(SAMPLE / "dicom" / sequence)
    mask = readers.read_mask(SAMPLE / "{}_mask.nii.gz".format(sequence), reference=image)
    return image, mask, info


def _predict(model_id, image, mask):
    entry = next(e for e in weights.bundled_catalog() if e["model_id"] == model_id)
    return inference.Predictor(entry["card_path"], device="cpu").predict(image, mask)


@pytest.fixture(scope="module")
def dce(tmp_path_factory):
    """The sample's DCE series (phase 2 of 4), a prediction, and the SEG + SR written for it."""
    folder = tmp_path_factory.mktemp("dicom-results")
    image, mask, info = _read("dce")
    prediction = _predict("demo-dce-resnet10_2d", image, mask)
    source = sr_seg.dicom_source("dce", image, mask, info)
    seg = sr_seg.write_segmentation(source, folder / "seg.dcm")
    sr_seg.write_report([prediction], {"dce": source}, folder / "sr.dcm", segmentations={"dce": seg})
    return dict(folder=folder, image=image, mask=mask, info=info, prediction=prediction)


def test_report_holds_probability_class_threshold_model_and_weights(dce):
    ds = pydicom.dcmread(dce["folder"] / "sr.dcm")
    prediction = dce["prediction"]
    assert ds.SOPClassUID == COMPREHENSIVE_3D_SR and ds.Modality == "SR"
    assert (ds.CompletionFlag, ds.VerificationFlag, ds.PreliminaryFlag) == ("COMPLETE", "UNVERIFIED", "PRELIMINARY")
    assert ds.ConceptNameCodeSequence[0].CodeValue == "126000"  # Imaging Measurement Report (TID 1500)
    numbers = {concept: (value, unit) for concept, value, unit in _numbers(ds)}
    assert numbers[("99LVIPRED", "LVIPROB")] == (pytest.approx(prediction.probability, abs=1e-6), "1")
    assert numbers[("99LVIPRED", "LVITHR")] == (pytest.approx(prediction.threshold, abs=1e-6), "1")
    voi = np.count_nonzero(sitk.GetArrayViewFromImage(dce["mask"])) * np.prod(dce["image"].GetSpacing())
    assert numbers[("SCT", "118565006")] == (pytest.approx(voi, rel=1e-6), "mm3")
    [evaluation] = [i for i in _items(ds) if i.ValueType == "CODE" and _concept(i) == ("99LVIPRED", "LVI")]
    assert evaluation.ConceptCodeSequence[0].CodeValue == ("52101004" if prediction.label else "272519000")
    texts = [str(i.TextValue) for i in _items(ds) if i.ValueType == "TEXT"]
    assert prediction.model_id in texts
    assert "weights SHA-256 {}".format(prediction.weights_sha256) in texts
    assert "DCE phase 2 of 4 (1 = pre-contrast)" in texts
    assert any("not for clinical use" in t for t in texts)
    assert [s.CodingSchemeDesignator for s in ds.CodingSchemeIdentificationSequence] == ["99LVIPRED"]


def test_report_references_the_source_images_the_seg_and_its_segment(dce):
    ds = pydicom.dcmread(dce["folder"] / "sr.dcm")
    seg = pydicom.dcmread(dce["folder"] / "seg.dcm")
    info = dce["info"]
    source = pydicom.dcmread(info.files[0], stop_before_pixels=True)
    assert (ds.PatientID, ds.StudyInstanceUID) == (source.PatientID, source.StudyInstanceUID)
    # Evidence: exactly the 44 phase-2 images read, and the SEG.
    phase_2 = {h.sop_instance_uid for h in info.images}
    assert len(phase_2) == 44
    assert _evidence(ds) == {info.series_uid: phase_2, seg.SeriesInstanceUID: {seg.SOPInstanceUID}}
    [image_item] = [i for i in _items(ds) if i.ValueType == "IMAGE"]
    reference = image_item.ReferencedSOPSequence[0]
    assert (reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID,
            reference.ReferencedSegmentNumber) == (SEGMENTATION, seg.SOPInstanceUID, 1)
    assert info.series_uid in [str(i.UID) for i in _items(ds) if i.ValueType == "UIDREF"]
    group = hd.sr.srread(dce["folder"] / "sr.dcm").content.get_volumetric_roi_measurement_groups()[0]
    assert group.referenced_segment is not None


def test_seg_lies_on_the_source_images_and_holds_the_voi(dce):
    seg = hd.seg.segread(dce["folder"] / "seg.dcm")
    info = dce["info"]
    assert seg.SOPClassUID == SEGMENTATION and seg.ReferencedSeriesSequence[0].SeriesInstanceUID == info.series_uid
    assert seg.FrameOfReferenceUID == info.frame_of_reference_uid
    uids = [h.sop_instance_uid for h in info.images]  # slice order of the image the mask lies on
    pixels = seg.get_pixels_by_source_instance(uids, segment_numbers=[1])[..., 0]
    assert np.array_equal(pixels.astype(bool), sitk.GetArrayViewFromImage(dce["mask"]) != 0)
    # Each SEG frame sits where its source image does.
    positions = {h.sop_instance_uid: h.position for h in info.images}
    for frame in seg.PerFrameFunctionalGroupsSequence:
        source_uid = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        assert np.allclose(frame.PlanePositionSequence[0].ImagePositionPatient, positions[source_uid], atol=1e-3)


def test_without_a_seg_the_voi_is_an_ellipsoid_around_it_in_the_series_frame(dce, tmp_path):
    source = sr_seg.dicom_source("dce", dce["image"], dce["mask"], dce["info"])
    sr_seg.write_report([dce["prediction"]], {"dce": source}, tmp_path / "sr.dcm")
    ds = pydicom.dcmread(tmp_path / "sr.dcm")
    [surface] = [i for i in _items(ds) if i.ValueType == "SCOORD3D"]
    assert surface.GraphicType == "ELLIPSOID" and surface.ReferencedFrameOfReferenceUID == \
        dce["info"].frame_of_reference_uid
    ends = np.asarray(surface.GraphicData, dtype=float).reshape(6, 3)
    kji = np.argwhere(sitk.GetArrayViewFromImage(dce["mask"]) != 0)
    centroid = np.mean([dce["image"].TransformIndexToPhysicalPoint([int(v) for v in p[::-1]]) for p in kji], axis=0)
    assert np.allclose(ends.reshape(3, 2, 3).mean(axis=1), centroid, atol=1e-6)
    assert set(_evidence(ds)) == {dce["info"].series_uid}


def test_one_report_for_every_model_on_both_series(tmp_path, capsys):
    out = tmp_path / "case"
    rc = main(["predict", "--t2", str(SAMPLE / "dicom" / "t2"), str(SAMPLE / "t2_mask.nii.gz"), "--dce",
               str(SAMPLE / "dicom" / "dce"), str(SAMPLE / "dce_mask.nii.gz"), "--out", str(out / "r"),
               "--no-heatmap", "--dicom-sr", str(out / "sr.dcm"), "--dicom-seg", str(out / "voi.dcm")])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "voi-t2.dcm (DICOM SEG, FS-T2WI VOI)" in printed and "sr.dcm (DICOM SR)" in printed
    predictions = json.loads((out / "r" / "result.json").read_text())["predictions"]
    ds = pydicom.dcmread(out / "sr.dcm")
    groups = hd.sr.srread(out / "sr.dcm").content.get_volumetric_roi_measurement_groups()
    assert len(groups) == len(predictions) == len([e for e in weights.bundled_catalog() if not kinds.needs_clinical(e)])
    probabilities = sorted(v for concept, v, _ in _numbers(ds) if concept == ("99LVIPRED", "LVIPROB"))
    assert probabilities == pytest.approx(sorted(p["probability"] for p in predictions), abs=1e-6)
    # The late-fusion group names each member and what it said on its own.
    [fused] = [p for p in predictions if p["architecture"] == "late_fusion"]
    texts = {str(i.TextValue) for i in _items(ds) if i.ValueType == "TEXT"}
    [entry] = [e for e in weights.bundled_catalog() if e["architecture"] == "late_fusion"]
    assert len(fused["member_probabilities"]) == len(entry["members"]) >= 2
    for model_id, probability in fused["member_probabilities"].items():
        assert "member {} probability {:.6f}".format(model_id, probability) in texts
        assert probability == pytest.approx(next(p["probability"] for p in predictions if p["model_id"] == model_id))
    segs = {name: pydicom.dcmread(out / "voi-{}.dcm".format(name)) for name in ("t2", "dce")}
    evidence = _evidence(ds)
    for name, seg in segs.items():
        series_uid = seg.ReferencedSeriesSequence[0].SeriesInstanceUID
        assert series_uid == readers.read_image_with_info(SAMPLE / "dicom" / name)[1].series_uid
        assert seg.SOPInstanceUID in evidence[seg.SeriesInstanceUID]
    # Each group's segment is the VOI on its model's grid: the fused model's is on DCE, as its crop.
    referenced = [str(g.referenced_segment[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID) for g in groups]
    n_t2 = sum(e["sequence"] == "t2" for e in weights.bundled_catalog())
    assert referenced.count(segs["t2"].SOPInstanceUID) == n_t2
    assert referenced.count(segs["dce"].SOPInstanceUID) == len(groups) - n_t2


def test_a_nifti_image_cannot_get_a_dicom_report_and_nothing_is_written(tmp_path, capsys):
    rc = main(["predict", "--sequence", "t2", "--image", str(SAMPLE / "t2.nii.gz"), "--mask",
               str(SAMPLE / "t2_mask.nii.gz"), "--out", str(tmp_path / "r"), "--dicom-sr", str(tmp_path / "sr.dcm")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "t2.nii.gz: is not a DICOM series; a DICOM SR or SEG must reference the DICOM images" in err
    assert not (tmp_path / "sr.dcm").exists() and not (tmp_path / "r").exists()


def test_an_existing_output_file_is_kept_unless_overwrite_is_given(tmp_path, capsys):
    existing = tmp_path / "sr.dcm"
    existing.write_bytes(b"an earlier report")
    args = ["predict", "--sequence", "dce", "--model", "demo-dce-vanilla_cnn_2d", "--image",
            str(SAMPLE / "dicom" / "dce"), "--mask", str(SAMPLE / "dce_mask.nii.gz"), "--out", str(tmp_path / "r"),
            "--no-heatmap", "--dicom-sr", str(existing)]
    assert main(args) == 2
    assert "sr.dcm: already exists; choose another file or pass --overwrite" in capsys.readouterr().err
    assert existing.read_bytes() == b"an earlier report" and not (tmp_path / "r").exists()
    assert main(args + ["--overwrite"]) == 0
    assert pydicom.dcmread(existing).SOPClassUID == COMPREHENSIVE_3D_SR
    with pytest.raises(InputError, match="already exists"):
        sr_seg.write_segmentation(None, existing)


def test_cohort_mode_refuses_dicom_outputs(tmp_path, capsys):
    assert main(["predict", "--cohort", str(tmp_path), "--dicom-sr", str(tmp_path / "sr.dcm")]) == 2
    assert "do not go with --cohort" in capsys.readouterr().err


def test_seg_on_a_static_enhanced_image_maps_to_its_frames(tmp_path):
    path, _, _ = write_enhanced_mr(tmp_path / "t2.dcm", n_slices=5, n_phases=1, rows=8, columns=8,
                                   acquisition=FS_T2)
    image, info = readers.read_image_with_info(path)
    voxels = np.zeros(sitk.GetArrayViewFromImage(image).shape, np.uint8)
    voxels[1:4, 2:5, 3:6] = 1
    mask = sitk.GetImageFromArray(voxels)
    mask.CopyInformation(image)
    source = sr_seg.dicom_source("t2", image, mask, info)
    sr_seg.write_segmentation(source, tmp_path / "seg.dcm")
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    frames = [h.frame + 1 for h in info.images]  # the file's frames in slice order (shuffled in the file)
    pixels = seg.get_pixels_by_source_frame(info.images[0].sop_instance_uid, frames, segment_numbers=[1])[..., 0]
    assert np.array_equal(pixels.astype(bool), voxels.astype(bool))


def test_seg_on_one_phase_of_a_dynamic_enhanced_image_is_refused_clearly(tmp_path):
    path, _, _ = write_enhanced_mr(tmp_path / "dce.dcm", n_slices=5, n_phases=3)
    image, info = readers.read_image_with_info(path)
    mask = sitk.Cast(image > 2010, sitk.sitkUInt8)
    source = sr_seg.dicom_source("dce", image, mask, info)
    with pytest.raises(InputError, match="one phase of a dynamic enhanced \\(multi-frame\\) image is not supported"):
        sr_seg.write_segmentation(source, tmp_path / "seg.dcm")
    assert not (tmp_path / "seg.dcm").exists()


def test_a_combined_model_s_report_records_its_imaging_probability_and_the_clinical_values(tmp_path):
    out = tmp_path / "case"
    assert main(["predict", "--dce", str(SAMPLE / "dicom" / "dce"), str(SAMPLE / "dce_mask.nii.gz"), "--model",
                 "demo-dce-clinical_combined", "--clinical", "age=52,tumour_size_mm=25,mri_aln=0,her2=",
                 "--out", str(out / "r"), "--dicom-sr", str(out / "sr.dcm")]) == 0
    [prediction] = json.loads((out / "r" / "result.json").read_text())["predictions"]
    texts = {str(i.TextValue) for i in _items(pydicom.dcmread(out / "sr.dcm")) if i.ValueType == "TEXT"}
    [(imaging_id, imaging_p)] = prediction["member_probabilities"].items()
    assert "imaging model {} probability {:.6f}".format(imaging_id, imaging_p) in texts
    assert {"clinical age 52", "clinical tumour_size_mm 25", "clinical mri_aln 0"} <= texts
    imputed = prediction["clinical"]["imputed"]
    assert set(imputed) == {"peritumoral_edema", "her2", "ki67"}
    assert "clinical her2 not recorded, filled with {:g}".format(imputed["her2"]) in texts
