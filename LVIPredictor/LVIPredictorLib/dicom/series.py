"""DICOM series: folder scanning and grouping by series, choosing the series a sequence needs,
DCE phase splitting and ordering, slice geometry checks, and reading the chosen images' pixels.
Callers go through :mod:`LVIPredictorLib.inputs.readers`, which also documents the DCE phase numbering
(phase 1 = pre-contrast).

Only headers are read to group and order (:mod:`LVIPredictorLib.dicom.headers`, which reads
each file's first bytes; the first file of each series is read in full for the attributes that
choose a series); pixels are read for the chosen phase only (:mod:`LVIPredictorLib.dicom.pixels`).
Enhanced (multi-frame) MR files are split into frames by :mod:`LVIPredictorLib.dicom.enhanced_mr` and
then checked like single-frame files. Choosing among several series by sequence is
:mod:`LVIPredictorLib.dicom.selection`.

What is checked here, each failure an :class:`InputError` naming the file or folder: a folder
without DICOM images; several candidate series (none or several fitting the sequence asked for,
or no sequence given); mixed orientations, duplicated positions or missing slices in a series (a
gap above 1.5x the median slice spacing; smaller unevenness is a warning); a multi-frame image
whose frames cannot be placed; undecodable pixel data.
"""

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from LVIPredictorLib.dicom import enhanced_mr
from LVIPredictorLib.dicom import selection as series_selection
from LVIPredictorLib.dicom.headers import (SeriesAttributes, SliceHeader, looks_like_dicom, read_header,
                                           read_series_attributes)
from LVIPredictorLib.dicom.pixels import itk_reason, read_pixels
from LVIPredictorLib.errors import InputError

__all__ = ["DicomScan", "ImageInfo", "SeriesInfo", "check_phase", "itk_reason", "list_dicom_series",
           "looks_like_dicom", "read_dicom_file", "read_dicom_folder", "read_scan", "scan_dicom_files",
           "scan_dicom_folder"]

logger = logging.getLogger(__name__)

# A gap this many times the median spacing cannot be a rounding effect: slices are missing.
MISSING_SLICE_FACTOR = 1.5
# Scanners round positions to ~0.01 mm; above 1 % of the spacing the grid really is uneven.
UNEVEN_SPACING_RELATIVE = 0.01
# Tags that tell the acquisitions of a dynamic series apart, most explicit first.
PHASE_TAGS = ("TemporalPositionIdentifier", "TriggerTime", "AcquisitionNumber", "AcquisitionTime")
_POSITION_DECIMALS = 2  # mm; repeated positions of a dynamic series match to this precision
_ORIENTATION_TOLERANCE = 1e-4


@dataclass
class SeriesInfo:
    """One DICOM series found in a folder (from headers only)."""

    uid: str
    number: Optional[int]
    description: str
    modality: str
    files: List[str]
    n_slices: int  # distinct slice positions
    temporal_positions: List[int]
    trigger_times: List[float]
    acquisition_times: List[str]
    attributes: SeriesAttributes = field(default_factory=SeriesAttributes, repr=False, compare=False)
    # One per image: per file, or per frame of a multi-frame file.
    _headers: List[SliceHeader] = field(default_factory=list, repr=False, compare=False)

    @property
    def n_files(self) -> int:
        return len(self.files)

    @property
    def n_images(self) -> int:
        return len(self._headers)

    @property
    def n_phases(self) -> int:
        """Acquisitions per slice position (1 for a static series, or one of several orientations)."""
        orientations = {h.orientation for h in self._headers}
        if len(orientations) > 1:
            return 1
        return max(1, self.n_images // max(1, self.n_slices))

    def describe(self, uid: bool = True) -> str:
        text = "series {} '{}' ({}{}): {} files, {} slices".format(
            self.number if self.number is not None else "?", self.description, self.modality,
            ", uid " + self.uid if uid else "", self.n_files, self.n_slices)
        if self.n_images != self.n_files:
            text += ", {} frames".format(self.n_images)
        if self.n_phases > 1:
            text += ", {} phases".format(self.n_phases)
        if len(self.temporal_positions) > 1:
            text += ", temporal positions {}".format(self.temporal_positions)
        return text


@dataclass
class DicomScan:
    """Everything :func:`scan_dicom_folder` saw: image series, and files it ignored with why."""

    folder: str
    series: List[SeriesInfo]
    ignored: List[Tuple[str, str]]


@dataclass
class ImageInfo:
    """What :func:`LVIPredictorLib.inputs.readers.read_image_with_info` read, and how it chose (files and DICOM)."""

    source: str
    kind: str  # "file" or "dicom"
    n_slices: int
    series_uid: Optional[str] = None
    series_number: Optional[int] = None
    series_description: Optional[str] = None
    phase: Optional[int] = None  # 1-based, 1 = pre-contrast; None for a static image
    n_phases: int = 1
    phase_rule: Optional[str] = None  # the tag or axis the phase was told apart by
    files: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    # Why this series was taken out of a folder holding several, then one line per series left.
    selection: List[str] = field(default_factory=list)
    # The images read, in slice order (DICOM only): file, SOP instance UID and frame (multi-frame).
    images: List[SliceHeader] = field(default_factory=list, repr=False)
    study_uid: Optional[str] = None
    frame_of_reference_uid: Optional[str] = None

    def summary(self) -> str:
        parts = [self.source]
        if self.series_description is not None:
            parts.append("series '{}' (uid {})".format(self.series_description, self.series_uid))
        parts.append("{} slices".format(self.n_slices))
        if self.phase is not None:
            parts.append("phase {} of {} (told apart by {})".format(self.phase, self.n_phases, self.phase_rule))
        return ", ".join(parts)


# ----------------------------------------------------------------------------- folder scanning

def list_dicom_series(folder) -> List[SeriesInfo]:
    """The image series in ``folder`` (recursive), read from headers only."""
    return scan_dicom_folder(folder).series


def scan_dicom_folder(folder) -> DicomScan:
    """Group the DICOM image files under ``folder`` by series; list what was ignored and why."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise InputError(folder, "is not a folder")
    paths = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        paths.extend(os.path.join(root, name) for name in sorted(names))
    return scan_dicom_files(paths, folder)


def scan_dicom_files(paths: Sequence[str], source: str) -> DicomScan:
    """Group the DICOM image files among ``paths`` by series (``source`` names them in messages)."""
    by_uid = {}  # type: Dict[str, List[SliceHeader]]
    ignored = []  # type: List[Tuple[str, str]]
    for path in paths:
        try:
            header = read_header(os.fspath(path))
        except InputError as error:
            ignored.append((os.fspath(path), error.problem))
            continue
        by_uid.setdefault(header.series_uid, []).append(header)
    for path, reason in ignored:
        logger.debug("ignored %s: %s", path, reason)
    series = [_series_info(uid, headers) for uid, headers in by_uid.items()]
    series.sort(key=lambda s: (s.number if s.number is not None else 1 << 30, s.uid))
    return DicomScan(source, series, ignored)


def _series_info(uid: str, file_headers: List[SliceHeader]) -> SeriesInfo:
    first = file_headers[0]
    # A multi-frame file's full header is read once, for its attributes and its frames.
    first_dataset = enhanced_mr.read_dataset(first.path) if first.n_frames > 1 else None
    attributes = read_series_attributes(first.path, first_dataset)
    headers = []
    for header in file_headers:
        if header.n_frames > 1:
            headers.extend(enhanced_mr.frame_headers(header, first_dataset if header is first else None))
        else:
            headers.append(header)
    positions = {h.position_key() for h in headers}
    return SeriesInfo(
        uid=uid, number=first.series_number, description=attributes.description,
        modality=attributes.modality, files=[h.path for h in file_headers], n_slices=len(positions),
        temporal_positions=sorted({h.TemporalPositionIdentifier for h in headers
                                   if h.TemporalPositionIdentifier is not None}),
        trigger_times=sorted({h.TriggerTime for h in headers if h.TriggerTime is not None}),
        acquisition_times=sorted({h.acquisition_time_text for h in headers if h.acquisition_time_text}),
        attributes=attributes, _headers=headers)


# ----------------------------------------------------------------------------- shared with io

def check_phase(dce_phase: int, n_phases: int, source: str) -> int:
    """The requested 1-based phase, or InputError if the dynamic input has no such phase."""
    if not 1 <= int(dce_phase) <= n_phases:
        raise InputError(source, "DCE phase {} was requested but the dynamic series has {} phases "
                                 "(phase 1 = pre-contrast)".format(dce_phase, n_phases))
    return int(dce_phase)


# ----------------------------------------------------------------------------- DICOM selection

def read_dicom_file(path: str, dce_phase: int, require_3d: bool) -> Tuple[sitk.Image, ImageInfo]:
    """One DICOM file: a single slice (an error when 3D is required) or an enhanced multi-frame volume."""
    header = read_header(path)
    return read_series(path, _series_info(header.series_uid, [header]), dce_phase, require_3d, [])


def read_dicom_folder(folder: str, dce_phase: int, series_uid: Optional[str], require_3d: bool,
                      sequence: Optional[str] = None) -> Tuple[sitk.Image, ImageInfo]:
    """The series of ``folder`` that ``series_uid`` names, the only one, or the one that fits
    ``sequence`` ("t2" or "dce"; see :mod:`LVIPredictorLib.dicom.selection`)."""
    return read_scan(scan_dicom_folder(folder), dce_phase, series_uid, require_3d, sequence)


def read_scan(scan: DicomScan, dce_phase: int, series_uid: Optional[str], require_3d: bool,
              sequence: Optional[str] = None) -> Tuple[sitk.Image, ImageInfo]:
    """:func:`read_dicom_folder` on files already scanned (e.g. a list from Slicer's DICOM database)."""
    folder = scan.folder
    notes = []
    if scan.ignored:
        notes.append("ignored {} file(s) that are not DICOM images, e.g. {}: {}".format(
            len(scan.ignored), os.path.basename(scan.ignored[0][0]), scan.ignored[0][1]))
    if not scan.series:
        raise InputError(folder, "holds no DICOM images ({} file(s) looked at)".format(len(scan.ignored)))
    if series_uid is not None:
        chosen = [s for s in scan.series if s.uid == str(series_uid)]
        if not chosen:
            raise InputError(folder, "holds no series with uid {}; it holds:\n{}".format(
                series_uid, series_selection.listing(scan.series)))
        return read_series(folder, chosen[0], dce_phase, require_3d, notes)
    if len(scan.series) == 1:
        only = scan.series[0]
        warning = series_selection.sequence_warning(only, sequence) if sequence in ("t2", "dce") else None
        return read_series(folder, only, dce_phase, require_3d, notes + ([warning] if warning else []))
    if sequence not in ("t2", "dce") and series_selection.series_are_phases(scan.series):
        return _read_phase_series(folder, scan.series, dce_phase, require_3d, notes)
    if sequence not in ("t2", "dce"):
        raise InputError(folder, "holds {} image series; say which sequence you want (--sequence t2 or dce) or {}:"
                                 "\n{}".format(len(scan.series), series_selection.CHOOSE_WITH,
                                               series_selection.listing(scan.series)))
    chosen = series_selection.choose(scan.series, sequence, folder)
    if chosen.warning:
        notes.append(chosen.warning)
    if len(chosen.series) > 1:
        image, info = _read_phase_series(folder, chosen.series, dce_phase, require_3d, notes)
    else:
        image, info = read_series(folder, chosen.series[0], dce_phase, require_3d, notes)
    info.selection = [chosen.reason] + ["not taken: " + other for other in chosen.others]
    return image, info


def _read_phase_series(folder: str, series: Sequence[SeriesInfo], dce_phase: int,
                       require_3d: bool, notes: List[str]) -> Tuple[sitk.Image, ImageInfo]:
    ordered, rule = _order_by_time(series, lambda s: s._headers)
    if ordered is None:
        ordered = sorted(series, key=lambda s: (_natural_key(s.description), s.number or 0))
        rule = "SeriesDescription, then SeriesNumber"
    phase = check_phase(dce_phase, len(ordered), folder)
    image, info = read_series(folder, ordered[phase - 1], 1, require_3d, notes)
    info.phase, info.n_phases, info.phase_rule = phase, len(ordered), "series order by " + rule
    info.warnings.append("folder holds {} series of one dynamic acquisition; took {} as phase {}"
                         .format(len(ordered), ordered[phase - 1].describe(), phase))
    return image, info


def _natural_key(text: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _order_by_time(groups, headers_of):
    """Order groups (series, or images at one position) by the first PHASE_TAGS tag present in
    every image that gives each group a distinct earliest value; (None, None) if none does."""
    for tag in PHASE_TAGS:
        keys = []
        for group in groups:
            values = [getattr(h, tag) for h in headers_of(group)]
            if any(v is None for v in values):
                break
            keys.append(min(values))
        else:
            if len(set(keys)) == len(keys):
                order = sorted(range(len(keys)), key=lambda i: keys[i])
                return [groups[i] for i in order], tag
    return None, None


def _split_phases(headers: List[SliceHeader], source: str) -> Tuple[List[List[SliceHeader]], Optional[str]]:
    """Split a series into its acquisitions when slice positions repeat (a dynamic series)."""
    at_position = {}  # type: Dict[Tuple[float, ...], List[SliceHeader]]
    for header in headers:
        if header.position is None:
            raise InputError(header.where, "has no ImagePositionPatient; the slice cannot be placed")
        at_position.setdefault(header.position_key(), []).append(header)
    counts = sorted({len(group) for group in at_position.values()})
    if counts == [1]:
        return [headers], None
    if len(counts) > 1:
        raise InputError(source, "series {} holds {} to {} images per slice position: an incomplete "
                                 "dynamic series (missing images in some phase?)".format(
                                     headers[0].series_uid, counts[0], counts[-1]))
    n_phases = counts[0]
    phases = [[] for _ in range(n_phases)]  # type: List[List[SliceHeader]]
    rule = None
    for group in at_position.values():
        ordered, tag = _order_by_time([[h] for h in group], lambda g: g)
        if ordered is None:
            raise InputError(source, "series {} holds {} images at each slice position but none of "
                                     "{} tells them apart".format(headers[0].series_uid, n_phases,
                                                                  ", ".join(PHASE_TAGS)))
        # The tag chosen can differ between positions only if tags are missing on some files;
        # report the least explicit one used.
        if rule is None or PHASE_TAGS.index(tag) > PHASE_TAGS.index(rule):
            rule = tag
        for index, single in enumerate(ordered):
            phases[index].append(single[0])
    return phases, rule


# ----------------------------------------------------------------------------- DICOM geometry + pixels

def read_series(source: str, series: SeriesInfo, dce_phase: int, require_3d: bool,
                notes: List[str]) -> Tuple[sitk.Image, ImageInfo]:
    """Split ``series`` into phases (a dynamic series), check the chosen phase's geometry, read its pixels."""
    headers = series._headers
    first = headers[0]
    phases, rule = _split_phases(headers, source)
    if rule == "TemporalPositionIdentifier" and any(h.frame is not None for h in headers):
        rule = "TemporalPositionIndex (per-frame functional groups)"
    elif rule == "AcquisitionTime" and any(h.frame is not None for h in headers):
        rule = "FrameAcquisitionDateTime (per-frame functional groups)"
    info = ImageInfo(source=source, kind="dicom", n_slices=0, series_uid=first.series_uid,
                     series_number=first.series_number, series_description=series.description,
                     warnings=list(notes), study_uid=series.attributes.study_uid or None,
                     frame_of_reference_uid=series.attributes.frame_of_reference_uid or None)
    selected = phases[0]
    if len(phases) > 1:
        phase = check_phase(dce_phase, len(phases), source)
        selected = phases[phase - 1]
        info.phase, info.n_phases, info.phase_rule = phase, len(phases), rule
    ordered, spacing_z, normal, warnings = _slice_geometry(selected, source, require_3d)
    info.warnings.extend(warnings)
    info.files = list(dict.fromkeys(h.path for h in ordered))
    info.images = list(ordered)
    info.n_slices = len(ordered)
    image = read_pixels(ordered, source)
    _set_geometry(image, ordered[0], spacing_z, normal)
    return image, info


def _slice_geometry(headers: List[SliceHeader], source: str, require_3d: bool):
    """Sort slices along the slice normal; reject mixed orientations, duplicates and gaps."""
    first = headers[0]
    for header in headers:
        if header.orientation is None or header.position is None:
            raise InputError(header.where, "lacks ImageOrientationPatient or ImagePositionPatient; "
                                          "the slice cannot be placed in space")
        if not np.allclose(header.orientation, first.orientation, atol=_ORIENTATION_TOLERANCE):
            raise InputError(source, "series {} mixes slice orientations ({} and {}), e.g. a "
                                     "localizer in the series".format(first.series_uid,
                                                                      first.where, header.where))
        if (header.rows, header.columns) != (first.rows, first.columns):
            raise InputError(source, "series {} mixes image sizes ({}x{} in {}, {}x{} in {})".format(
                first.series_uid, first.rows, first.columns, first.where, header.rows,
                header.columns, header.where))
    row, column = np.array(first.orientation[:3]), np.array(first.orientation[3:])
    if not np.allclose([row @ row, column @ column, row @ column], [1.0, 1.0, 0.0], atol=1e-3):
        raise InputError(first.where, "ImageOrientationPatient {} is not orthonormal; the slice "
                                     "geometry is corrupt".format(list(first.orientation)))
    normal = np.cross(row, column)
    ordered = sorted(headers, key=lambda h: float(np.dot(normal, h.position)))
    along = np.array([float(np.dot(normal, h.position)) for h in ordered])
    if len(ordered) < 2:
        if require_3d:
            hint = "; pass the series folder, not one file" if os.path.isfile(source) else ""
            raise InputError(source, "holds a single slice ({}); a 3D volume with several slices "
                                     "is needed{}".format(first.where, hint))
        return ordered, None, normal, []
    steps = np.diff(along)
    if steps.min() < 10 ** -_POSITION_DECIMALS:
        index = int(np.argmin(steps))
        raise InputError(source, "two images lie at the same position {:.2f} mm ({} and {})".format(
            along[index], ordered[index].where, ordered[index + 1].where))
    median = float(np.median(steps))
    worst = int(np.argmax(steps))
    if steps[worst] > MISSING_SLICE_FACTOR * median:
        raise InputError(source, "missing slices between positions {:.2f} and {:.2f} mm along the "
                                 "slice normal: a gap of {:.2f} mm where slices are {:.2f} mm apart"
                         .format(along[worst], along[worst + 1], steps[worst], median))
    warnings = []
    if np.abs(steps - median).max() > max(UNEVEN_SPACING_RELATIVE * median, 1e-3):
        warnings.append("uneven slice spacing ({:.3f} to {:.3f} mm); the mean {:.3f} mm is used"
                        .format(steps.min(), steps.max(), steps.mean()))
    return ordered, float(steps.mean()), normal, warnings


def _set_geometry(image: sitk.Image, first: SliceHeader, spacing_z: Optional[float],
                  normal: np.ndarray) -> None:
    """Geometry from our own header reading, so the spacing is the one we checked."""
    row, column = first.orientation[:3], first.orientation[3:]
    spacing = list(image.GetSpacing())
    if first.pixel_spacing is not None:
        # PixelSpacing is (between rows, between columns) = (y, x).
        spacing[0], spacing[1] = first.pixel_spacing[1], first.pixel_spacing[0]
    if spacing_z is not None:
        spacing[2] = spacing_z
    image.SetSpacing(spacing)
    image.SetOrigin(first.position)
    image.SetDirection([row[0], column[0], normal[0],
                        row[1], column[1], normal[1],
                        row[2], column[2], normal[2]])
