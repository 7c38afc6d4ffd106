"""DICOM conformance of the shipped sample series and of the SR and SEG written for it.

``dicom_errors`` runs dciodvfy (dicom3tools: ``apt-get install dicom3tools``) when the binary is on
PATH and returns its ``Error`` lines; without it, it runs a pydicom-level check of the attributes
dciodvfy reported on these files before they were fixed (AccessionNumber type 2, Laterality type 2C
for a paired body part, TriggerTime only on gated or triggered MR) and of the type 1/2 attributes of
the SR and SEG modules that the writers fill. Either way every test runs: none is skipped, and
``test_an_error_line_fails_the_check`` shows the check fails on a file with an error.
"""

import shutil
import subprocess

import highdicom as hd
import pydicom
import pytest
from pydicom.sr._cid_dict import cid_concepts
from pydicom.sr.codedict import codes

from lvi_training.cli import main
from lvi_training.reference import default_sample_case

SAMPLE = default_sample_case()
DCIODVFY = shutil.which("dciodvfy")
_GATING = {"CG", "PPG", "RT"}
_PAIRED = {"BREAST"}
# Type 1 / 2 attributes the SR document and the SEG must carry (the modules the writers fill).
_REQUIRED = {
    "SR": ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality", "CompletionFlag",
           "VerificationFlag", "ContentSequence", "ConceptNameCodeSequence", "AccessionNumber",
           "ReferringPhysicianName", "StudyDate", "StudyTime", "StudyID", "SeriesNumber", "InstanceNumber",
           "Manufacturer", "ContentDate", "ContentTime", "CurrentRequestedProcedureEvidenceSequence"),
    "SEG": ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality", "SegmentSequence",
            "SegmentationType", "FrameOfReferenceUID", "SharedFunctionalGroupsSequence", "AccessionNumber",
            "SeriesNumber", "InstanceNumber", "ContentLabel", "ContentCreatorName", "ReferencedSeriesSequence",
            "Manufacturer", "ManufacturerModelName", "DeviceSerialNumber", "SoftwareVersions"),
    "MR": ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "AccessionNumber",
           "ReferringPhysicianName", "StudyDate", "StudyTime", "StudyID", "FrameOfReferenceUID", "ImageType",
           "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength"),
}


def _pydicom_errors(path):
    ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    errors = ["Error - Missing attribute {}".format(k) for k in _REQUIRED.get(ds.Modality, ()) if k not in ds]
    if ds.Modality == "MR":
        if str(ds.get("BodyPartExamined", "")).upper() in _PAIRED and "Laterality" not in ds \
                and "ImageLaterality" not in ds:
            errors.append("Error - Missing attribute Type 2C Conditional Element=<Laterality>")
        if "TriggerTime" in ds and not _GATING & set(ds.get("ScanOptions", [])):
            errors.append("Error - Attribute present when condition unsatisfied Element=<TriggerTime>")
    return errors


def dicom_errors(path):
    """The error lines of dciodvfy on ``path`` (or of the pydicom-level check without dciodvfy)."""
    if DCIODVFY is None:
        return _pydicom_errors(path)
    run = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """SR + T2 and DCE SEGs for every bundled model on the sample's two DICOM series."""
    out = tmp_path_factory.mktemp("conformance")
    assert main(["predict", "--t2", str(SAMPLE / "dicom" / "t2"), str(SAMPLE / "t2_mask.nii.gz"), "--dce",
                 str(SAMPLE / "dicom" / "dce"), str(SAMPLE / "dce_mask.nii.gz"), "--out", str(out / "r"),
                 "--no-heatmap", "--dicom-sr", str(out / "sr.dcm"), "--dicom-seg", str(out / "voi.dcm")]) == 0
    return out


def test_every_shipped_sample_file_passes():
    files = sorted((SAMPLE / "dicom").rglob("*.dcm"))
    assert len(files) == 192
    failures = {str(f): dicom_errors(f) for f in files}
    assert {f: e for f, e in failures.items() if e} == {}


def test_the_sr_and_both_segs_pass(written):
    for name in ("sr.dcm", "voi-t2.dcm", "voi-dce.dcm"):
        assert dicom_errors(written / name) == [], name


@pytest.mark.parametrize("check", ["as configured", "pydicom-level"])
def test_an_error_line_fails_the_check(tmp_path, check):
    ds = pydicom.dcmread(str(sorted((SAMPLE / "dicom" / "t2").iterdir())[0]))
    del ds.AccessionNumber
    ds.save_as(str(tmp_path / "bad.dcm"))
    errors = dicom_errors(tmp_path / "bad.dcm") if check == "as configured" else _pydicom_errors(tmp_path / "bad.dcm")
    assert any("AccessionNumber" in line for line in errors)


def _items(ds):
    for item in ds.get("ContentSequence", []):
        yield item
        yield from _items(item)


def _code(item):
    return item.CodingSchemeDesignator, item.CodeValue


def test_sr_follows_tid_1500_observers_algorithm_and_context_groups(written):
    ds = pydicom.dcmread(str(written / "sr.dcm"))
    top = {_code(i.ConceptNameCodeSequence[0]): i for i in ds.ContentSequence}
    # The procedure comes from CID 100.
    procedure = top[("DCM", "121058")].ConceptCodeSequence[0]
    assert procedure.CodeValue == codes.LN.MRIUnspecifiedBodyRegion.value
    assert "MRIUnspecifiedBodyRegion" in cid_concepts[100]["LN"]
    # TID 1001: a person observer (who drew the VOI: unknown here) and the device.
    observer_types = [i.ConceptCodeSequence[0].CodeValue for i in ds.ContentSequence
                      if _code(i.ConceptNameCodeSequence[0]) == ("DCM", "121005")]
    assert observer_types == ["121006", "121007"]
    assert str(top[("DCM", "121008")].PersonName) == "Unknown^"
    groups = hd.sr.srread(str(written / "sr.dcm")).content.get_volumetric_roi_measurement_groups()
    assert groups
    for group in groups:
        # The group (its VOI drawn by a person) has no algorithm; each model measurement has it (TID 4019).
        direct = [_code(i.ConceptNameCodeSequence[0]) for i in group[0].ContentSequence]
        assert ("DCM", "111001") not in direct
        probability = next(m for m in group.get_measurements() if m.name.value == "LVIPROB")
        algorithm = [c for c in probability[0].ContentSequence if _code(c.ConceptNameCodeSequence[0]) ==
                     ("DCM", "111001")]
        assert len(algorithm) == 1 and str(algorithm[0].TextValue).startswith("demo-")
        [site] = [i for i in group[0].ContentSequence if _code(i.ConceptNameCodeSequence[0]) == ("SCT", "363698007")]
        assert site.ConceptCodeSequence[0].CodeValue == codes.SCT.Breast.value
        [side] = [i for i in site.ContentSequence if _code(i.ConceptNameCodeSequence[0]) == ("SCT", "272741003")]
        assert side.ConceptCodeSequence[0].CodeValue == codes.SCT.Left.value


def test_segs_have_their_own_series_laterality_and_creator(written):
    t2, dce = (pydicom.dcmread(str(written / "voi-{}.dcm".format(n))) for n in ("t2", "dce"))
    assert t2.SeriesNumber != dce.SeriesNumber and t2.SeriesDescription != dce.SeriesDescription
    source = pydicom.dcmread(str(sorted((SAMPLE / "dicom" / "t2").iterdir())[0]), stop_before_pixels=True)
    assert source.Laterality == "L"
    for seg in (t2, dce):
        assert "ContentCreatorName" in seg  # type 2: empty, the VOI's author is not known on the command line
        region = seg.SegmentSequence[0].AnatomicRegionSequence[0]
        assert region.CodeValue == codes.SCT.Breast.value
        assert region.AnatomicRegionModifierSequence[0].CodeValue == codes.SCT.Left.value


def test_a_known_voi_author_is_the_seg_creator_and_the_sr_person_observer(tmp_path):
    from LVIPredictorLib import inference, weights
    from LVIPredictorLib.dicom import sr_seg
    from LVIPredictorLib.inputs import readers

    image, info = readers.read_image_with_info(SAMPLE / "dicom" / "t2")
    mask = readers.read_mask(SAMPLE / "t2_mask.nii.gz", reference=image)
    entry = next(e for e in weights.bundled_catalog() if e["model_id"] == "demo-t2-vanilla_cnn_2d")
    prediction = inference.Predictor(entry["card_path"], device="cpu").predict(image, mask)
    source = sr_seg.dicom_source("t2", image, mask, info)
    seg = sr_seg.write_segmentation(source, tmp_path / "seg.dcm", voi_author="Doe^Jane")
    sr_seg.write_report([prediction], {"t2": source}, tmp_path / "sr.dcm", segmentations={"t2": seg},
                        voi_author="Doe^Jane")
    assert str(pydicom.dcmread(str(tmp_path / "seg.dcm")).ContentCreatorName) == "Doe^Jane"
    names = [str(i.PersonName) for i in pydicom.dcmread(str(tmp_path / "sr.dcm")).ContentSequence
             if i.ValueType == "PNAME"]
    assert names == ["Doe^Jane"]
    for name in ("seg.dcm", "sr.dcm"):
        assert dicom_errors(tmp_path / name) == [], name


def test_lvi_predict_names_the_voi_author_given_on_the_command_line(tmp_path, capsys):
    args = ["predict", "--t2", str(SAMPLE / "dicom" / "t2"), str(SAMPLE / "t2_mask.nii.gz"), "--model",
            "demo-t2-radiomics_lr", "--out", str(tmp_path / "r"), "--dicom-sr", str(tmp_path / "sr.dcm"),
            "--dicom-seg", str(tmp_path / "seg.dcm")]
    assert main(args + ["--voi-author", " Doe^Jane "]) == 0
    assert str(pydicom.dcmread(str(tmp_path / "seg.dcm")).ContentCreatorName) == "Doe^Jane"
    names = [str(i.PersonName) for i in pydicom.dcmread(str(tmp_path / "sr.dcm")).ContentSequence
             if i.ValueType == "PNAME"]
    assert names == ["Doe^Jane"]
    capsys.readouterr()
    # A name no DICOM PN can hold is refused before anything is read or written.
    assert main(args[:-4] + ["--dicom-sr", str(tmp_path / "sr2.dcm"), "--voi-author", "Doe\\Jane"]) == 2
    assert "is not a DICOM person name" in capsys.readouterr().err and not (tmp_path / "sr2.dcm").exists()
    assert main(args[:-4] + ["--voi-author", "Doe^Jane"]) == 2  # no DICOM output to put it in
    assert "give --dicom-sr and/or --dicom-seg as well" in capsys.readouterr().err
