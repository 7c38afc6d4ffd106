"""Write small, valid MR DICOM series for tests (pydicom only, no network, no fixtures).

``write_mr_series`` writes one series, optionally dynamic (several phases at each slice
position), with the geometry given in physical LPS millimetres. Voxel values encode where they
came from so a test can check which phase and which slice a reader returned:

    value(phase, slice, row, column) = 1000 * phase + 10 * slice + column % 10

with ``phase`` 1-based (1 = pre-contrast) and ``slice`` the index along the slice normal.
"""

import datetime
import os
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
PHASE_TAGS = ("TemporalPositionIdentifier", "TriggerTime", "AcquisitionTime")


@dataclass
class WrittenSeries:
    """What was written, to compare a reader's result against."""

    uid: str
    files: List[str]
    origin: Tuple[float, float, float]  # position of the first slice along the normal
    spacing: Tuple[float, float, float]  # x, y, nominal slice spacing
    direction: Tuple[float, ...]  # 3x3 row-major, columns = row dir, column dir, normal
    positions: List[Tuple[float, float, float]] = field(default_factory=list)


def expected_value(phase: int, slice_index: int, column: int) -> int:
    return 1000 * phase + 10 * slice_index + column % 10


def write_mr_series(folder, *, n_slices: int = 4, rows: int = 8, columns: int = 10,
                    pixel_spacing: Tuple[float, float] = (0.7, 0.8),
                    slice_spacing: float = 1.5,
                    origin: Sequence[float] = (-20.0, -30.0, 10.0),
                    orientation: Sequence[float] = AXIAL,
                    skip_slices: Sequence[int] = (),
                    slice_offsets: Optional[Sequence[float]] = None,
                    n_phases: int = 1,
                    phase_tags: Sequence[str] = PHASE_TAGS,
                    series_uid: Optional[str] = None,
                    series_number: int = 1,
                    description: str = "t2_tse_fs_tra",
                    phase_offset: Optional[int] = None,
                    shuffle: bool = True,
                    prefix: str = "img",
                    tags: Optional[dict] = None,
                    study_uid: str = "1.2.826.0.1.3680043.8.498.1") -> WrittenSeries:
    """Write a series of ``n_slices`` (times ``n_phases``) single-frame MR images.

    ``pixel_spacing`` is (x, y) mm; ``slice_offsets`` (mm along the normal) override the evenly
    spaced positions; ``skip_slices`` leaves those slice indices out (a missing-slice series).
    ``phase_tags`` lists which temporal tags to write on dynamic images; ``phase_offset`` (not None)
    makes even a one-phase series dynamic, its phases numbered from ``phase_offset + 1`` (for a
    folder holding one series per phase). ``tags`` (keyword -> value) are set on every image (the
    acquisition attributes a series is chosen by). Files are written in a
    shuffled order with shuffled names, so a reader must sort by geometry, not by name.
    """
    os.makedirs(folder, exist_ok=True)
    series_uid = series_uid or generate_uid()
    frame_uid = "1.2.826.0.1.3680043.8.498.2"
    # DICOM decimal strings hold 16 characters: round first so what is written is what we expect.
    orientation = [round(float(v), 8) for v in orientation]
    row_dir, col_dir = np.array(orientation[:3], float), np.array(orientation[3:], float)
    normal = np.cross(row_dir, col_dir)
    offsets = list(slice_offsets) if slice_offsets is not None else [
        i * slice_spacing for i in range(n_slices)]
    start = np.array(origin, float)
    positions = [tuple(round(float(v), 4) for v in start + d * normal) for d in offsets]
    jobs = [(p, s) for p in range(1, n_phases + 1) for s in range(len(offsets)) if s not in skip_slices]
    order = np.random.default_rng(len(jobs)).permutation(len(jobs)) if shuffle else range(len(jobs))
    files = []
    for file_index, job_index in enumerate(order):
        phase, slice_index = jobs[job_index]
        ds = _mr_dataset(rows, columns, pixel_spacing, orientation, positions[slice_index])
        ds.StudyInstanceUID, ds.FrameOfReferenceUID = study_uid, frame_uid
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = series_uid, series_number, description
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = (phase - 1) * len(offsets) + slice_index + 1
        for keyword, value in (tags or {}).items():
            setattr(ds, keyword, value)
        global_phase = phase + (phase_offset or 0)
        if n_phases > 1 or phase_offset is not None:
            _set_phase_tags(ds, global_phase, slice_index, phase_tags)
        pixels = np.fromfunction(lambda r, c: expected_value(global_phase, slice_index, c),
                                 (rows, columns), dtype=int).astype(np.uint16)
        ds.PixelData = pixels.tobytes()
        path = os.path.join(folder, "{}_{:04d}.dcm".format(prefix, file_index))
        save_dataset(ds, path)
        files.append(path)
    direction = (row_dir[0], col_dir[0], normal[0], row_dir[1], col_dir[1], normal[1],
                 row_dir[2], col_dir[2], normal[2])
    return WrittenSeries(series_uid, files, positions[0],
                         (pixel_spacing[0], pixel_spacing[1], slice_spacing),
                         tuple(float(v) for v in direction), positions)


def write_phase_per_series(folder, *, n_phases: int = 3, description: str = "fl3d_dyn",
                           **kwargs) -> List[WrittenSeries]:
    """A DCE acquisition exported as one series per phase (Siemens-style), same grid each."""
    return [write_mr_series(folder, n_phases=1, phase_offset=p, series_number=10 + p,
                            description=description, prefix="s{}".format(p), **kwargs)
            for p in range(n_phases)]


def _set_phase_tags(ds: Dataset, phase: int, slice_index: int, tags: Sequence[str]) -> None:
    if "TemporalPositionIdentifier" in tags:
        ds.TemporalPositionIdentifier = phase
    if "TriggerTime" in tags:
        ds.TriggerTime = 60000.0 * (phase - 1)  # ms, one minute per phase
    if "AcquisitionTime" in tags:
        # 2D acquisitions time each slice: slices of one phase differ by 0.5 s.
        moment = datetime.datetime(2024, 1, 1, 10, 0, 0) + datetime.timedelta(
            seconds=60 * (phase - 1) + 0.5 * slice_index)
        ds.AcquisitionTime = moment.strftime("%H%M%S.%f")


def _mr_dataset(rows: int, columns: int, pixel_spacing, orientation, position) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.Modality = "MR"
    ds.Manufacturer = "SIEMENS"
    ds.MagneticFieldStrength = 1.5
    ds.PatientName, ds.PatientID = "Test^Phantom", "TEST0001"
    ds.StudyDate = "20240101"
    ds.Rows, ds.Columns = rows, columns
    ds.PixelSpacing = [pixel_spacing[1], pixel_spacing[0]]  # DICOM order: row spacing (y), column spacing (x)
    ds.SliceThickness = 1.5
    ds.ImageOrientationPatient = [float(v) for v in orientation]
    ds.ImagePositionPatient = [float(v) for v in position]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    return ds


def save_dataset(ds: Dataset, path) -> None:
    """Write ``ds`` as a DICOM file with pydicom 3 or 2.x (the tests run with either)."""
    path = str(path)
    ds.preamble = getattr(ds, "preamble", None) or b"\0" * 128
    try:
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
    except TypeError:  # pydicom < 3: the encoding follows the transfer syntax
        syntax = ds.file_meta.TransferSyntaxUID
        ds.is_little_endian, ds.is_implicit_VR = syntax.is_little_endian, syntax.is_implicit_VR
        pydicom.dcmwrite(path, ds, write_like_original=False)
