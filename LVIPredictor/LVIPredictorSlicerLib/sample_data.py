"""The shipped sample case: where it is, how Sample Data lists it, and how the self-test loads it."""

from pathlib import Path

import slicer

from LVIPredictorSlicerLib.resources import resourcesDir


SAMPLE_CASE_ID = "LVI-Sample-001"


# The sample case's NIfTI files (its README documents them; DICOM copies are in dicom/).
SAMPLE_CASE_FILES = {"t2": ("t2.nii.gz", "t2_mask.nii.gz"), "dce": ("dce_phase2.nii.gz", "dce_mask.nii.gz")}


# What Sample Data → LVI sample loads: (file of the case, node name, Slicer file type). One VOI serves
# both series (the Logic maps it onto each grid); the names tell the sequences apart (sequenceOf).
SAMPLE_DATA_FILES = (
    ("t2.nii.gz", SAMPLE_CASE_ID + " FS-T2WI", "VolumeFile"),
    ("dce_phase2.nii.gz", SAMPLE_CASE_ID + " DCE phase 2", "VolumeFile"),
    ("t2_mask.nii.gz", SAMPLE_CASE_ID + " VOI", "SegmentationFile"),
)


def sampleCaseDir() -> Path:
    return resourcesDir() / "SampleData" / SAMPLE_CASE_ID


def sampleDataSource() -> dict:
    """Keyword arguments of ``SampleData.SampleDataLogic.registerCustomSampleDataSource`` for the shipped case.

    The URIs are file:// URIs of the files inside the extension: SampleData copies them into its
    cache and checks each against the SHA-256 in Resources/SampleData/SHA256SUMS; nothing is downloaded.
    """
    caseDir = sampleCaseDir()
    sums = {}
    for line in (caseDir.parent / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, _sep, name = line.partition("  ")
        sums[name.strip()] = digest
    files = [caseDir / name for name, _node, _type in SAMPLE_DATA_FILES]
    return {
        "category": "LVI Predictor",
        "sampleName": "LVI sample",
        "thumbnailFileName": str(resourcesDir() / "Icons" / "LVIPredictor.png"),
        "uris": [path.as_uri() for path in files],
        # Prefixed, because SampleData's cache folder is shared by every module.
        "fileNames": ["{}_{}".format(SAMPLE_CASE_ID, path.name) for path in files],
        "nodeNames": [node for _name, node, _type in SAMPLE_DATA_FILES],
        "loadFileType": [fileType for _name, _node, fileType in SAMPLE_DATA_FILES],
        "checksums": ["SHA256:" + sums["{}/{}".format(SAMPLE_CASE_ID, path.name)] for path in files],
        # Slicer would otherwise stack files with numbered names ("..._t2", "..._phase2") into one volume.
        "loadFileProperties": {"singleFile": True},
    }


def registerSampleData() -> None:
    import SampleData

    SampleData.SampleDataLogic.registerCustomSampleDataSource(**sampleDataSource())


def sampleCase(sequence: str):
    """(volume node, mask path) of one series of the shipped sample case."""
    caseDir = sampleCaseDir()
    imageName, maskName = SAMPLE_CASE_FILES[sequence]
    # singleFile: Slicer would otherwise stack files with numbered names into one volume.
    volume = slicer.util.loadVolume(str(caseDir / imageName), {"singleFile": True})
    return volume, caseDir / maskName


def sampleClinical() -> dict:
    """The sample case's clinical values (its case.json), as a combined model's ``clinical`` argument."""
    from LVIPredictorLib import clinical

    return dict(clinical.values_from_case_json(sampleCaseDir() / "case.json"))
