"""DICOM MR series for a phantom case, with the headers a Siemens 1.5 T Avanto writes.

Everything in the files is a function of (seed, case index): UIDs are name-based
UUIDs of the case, dates and times from the case's own
random stream, so the same seed writes the same bytes on any machine and day.
The DCE series holds every temporal position in one series, as the scanner exports
it; TemporalPositionIdentifier 1 is the pre-contrast acquisition, and each position's time is its
AcquisitionTime (no TriggerTime: the MR Image module allows it only for gated or triggered scans,
and dciodvfy calls it an error otherwise).

The headers pass dciodvfy without errors: AccessionNumber (type 2) is present and empty (no order),
Laterality (type 2C, BREAST is paired) is the side a one-breast field of view lies on.
"""

import os
import uuid

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

# pydicom's generate_uid(prefix=None, entropy_srcs=...) ignores the entropy and returns a
# random UUID, so UIDs are name-based UUIDs (ISO/IEC 9834-8 "2.25." form) of the
# (seed, case, role) tuple instead.
_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/lvipredictor/phantom")


def deterministic_uid(*parts):
    return "2.25.{}".format(uuid.uuid5(_UID_NAMESPACE, "|".join(str(p) for p in parts)).int)


IMPLEMENTATION_UID = deterministic_uid("implementation", 1)
IMPLEMENTATION_NAME = "LVI_PHANTOM_1"

SERIES = {
    "t2": {"SeriesDescription": "t2_tse_fs_tra", "ProtocolName": "t2_tse_fs_tra", "SequenceName": "*tse2d1_15",
           "ScanningSequence": "SE", "SequenceVariant": ["SK", "SP", "OSP"], "ScanOptions": ["FS", "PFP"],
           "MRAcquisitionType": "2D", "RepetitionTime": 4800.0, "EchoTime": 71.0, "FlipAngle": 150.0,
           "EchoTrainLength": 15, "SeriesNumber": 3, "start_seconds": 9 * 3600 + 32 * 60 + 10},
    "dce": {"SeriesDescription": "fl3d_dyn_tra", "ProtocolName": "fl3d_dyn_tra", "SequenceName": "*fl3d1",
            "ScanningSequence": "GR", "SequenceVariant": ["SP", "SS"], "ScanOptions": ["FS"],
            "MRAcquisitionType": "3D", "RepetitionTime": 4.53, "EchoTime": 1.6, "FlipAngle": 10.0,
            "EchoTrainLength": 1, "SeriesNumber": 7, "start_seconds": 9 * 3600 + 40 * 60},
}


def case_uid(case, *parts):
    return deterministic_uid(*case.uid_entropy, *parts)


def _time(seconds):
    h, rest = divmod(int(round(seconds * 1000)), 3600 * 1000)
    m, rest = divmod(rest, 60 * 1000)
    s, ms = divmod(rest, 1000)
    return "{:02d}{:02d}{:02d}.{:03d}000".format(h, m, s, ms)


def _ds_number(value):
    return float("{:.4f}".format(value))


def _laterality(grid):
    """"L" or "R" when the field of view lies on one side of the midline (LPS x = 0; +x is the
    patient's left), else empty: a bilateral acquisition has no single side."""
    ends = [grid.origin[0], grid.origin[0] + grid.spacing[0] * (grid.size[0] - 1)]
    if min(ends) > 0:
        return "L"
    if max(ends) < 0:
        return "R"
    return ""


def _base_dataset(case, name, series, patient_id):
    info = SERIES[name]
    grid = series.grid
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"]
    ds.SOPClassUID = MRImageStorage
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = case.study_date
    ds.StudyTime = _time(SERIES["t2"]["start_seconds"] - 300)
    ds.SeriesTime = _time(info["start_seconds"])
    ds.Modality = "MR"
    ds.Manufacturer = "SIEMENS"
    ds.InstitutionName = "LVIPredictor phantom"
    ds.ReferringPhysicianName = ""
    ds.AccessionNumber = ""
    ds.StationName = "PHANTOM"
    ds.StudyDescription = "MR MAMMA BDS"
    ds.SeriesDescription = info["SeriesDescription"]
    ds.ManufacturerModelName = "Avanto"
    ds.PatientName = "Phantom^{}".format(patient_id)
    ds.PatientID = patient_id
    ds.PatientBirthDate = "{:04d}0101".format(int(case.study_date[:4]) - case.age)
    ds.PatientSex = "F"
    ds.PatientAge = "{:03d}Y".format(case.age)
    ds.BodyPartExamined = "BREAST"
    ds.Laterality = _laterality(grid)
    ds.ScanningSequence = info["ScanningSequence"]
    ds.SequenceVariant = info["SequenceVariant"]
    ds.ScanOptions = info["ScanOptions"]
    ds.MRAcquisitionType = info["MRAcquisitionType"]
    ds.SequenceName = info["SequenceName"]
    ds.SliceThickness = _ds_number(grid.slice_thickness)
    ds.RepetitionTime = info["RepetitionTime"]
    ds.EchoTime = info["EchoTime"]
    ds.NumberOfAverages = 1
    ds.ImagingFrequency = 63.676
    ds.ImagedNucleus = "1H"
    ds.MagneticFieldStrength = 1.5
    ds.SpacingBetweenSlices = _ds_number(grid.spacing[2])
    ds.EchoTrainLength = info["EchoTrainLength"]
    ds.SoftwareVersions = "syngo MR B17"
    ds.ProtocolName = info["ProtocolName"]
    ds.TransmitCoilName = "Body"
    ds.ReceiveCoilName = "BreastMatrix"
    ds.FlipAngle = info["FlipAngle"]
    ds.PatientPosition = "HFP"  # prone, head first: the breast-coil position
    ds.StudyInstanceUID = case_uid(case, "study")
    ds.SeriesInstanceUID = case_uid(case, "series", name)
    ds.StudyID = "1"
    ds.SeriesNumber = info["SeriesNumber"]
    ds.FrameOfReferenceUID = case_uid(case, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = grid.size[1]
    ds.Columns = grid.size[0]
    ds.PixelSpacing = [_ds_number(grid.spacing[1]), _ds_number(grid.spacing[0])]  # row spacing (y), column spacing (x)
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = 400 if name == "t2" else 500
    ds.WindowWidth = 900 if name == "t2" else 1200
    return ds


def write_series(case, name, series, folder, patient_id):
    """Write one DICOM file per slice (and per temporal position for DCE) into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    grid = series.grid
    ds = _base_dataset(case, name, series, patient_id)
    n_slices = grid.size[2]
    n_phases = len(series.volumes)
    if name == "dce":
        ds.NumberOfTemporalPositions = n_phases
    start = SERIES[name]["start_seconds"]
    written = []
    for phase, (volume, t_min) in enumerate(zip(series.volumes, series.times_min)):
        pixels = volume.astype("<u2")  # values are 0..4095, so int16 -> uint16 is exact
        seconds = start + 60.0 * t_min
        if name == "dce":
            ds.TemporalPositionIdentifier = phase + 1
        ds.AcquisitionNumber = phase + 1
        ds.AcquisitionTime = ds.ContentTime = _time(seconds)
        for k in range(n_slices):
            instance = phase * n_slices + k + 1
            z = grid.origin[2] + grid.spacing[2] * k
            ds.SOPInstanceUID = case_uid(case, "instance", name, instance)
            ds.InstanceNumber = instance
            ds.ImagePositionPatient = [_ds_number(grid.origin[0]), _ds_number(grid.origin[1]), _ds_number(z)]
            ds.SliceLocation = _ds_number(z)
            ds.PixelData = pixels[k].tobytes()
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MRImageStorage
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            meta.ImplementationClassUID = IMPLEMENTATION_UID
            meta.ImplementationVersionName = IMPLEMENTATION_NAME
            ds.file_meta = meta
            path = os.path.join(folder, "IM{:05d}.dcm".format(instance))
            pydicom.dcmwrite(path, ds, enforce_file_format=True)
            written.append(path)
    return written

