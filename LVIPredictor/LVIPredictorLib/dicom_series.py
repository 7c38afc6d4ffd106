"""DICOM series: header scanning, grouping by series, DCE phase splitting and selection, slice
geometry checks, and reading the pixels of the chosen series. Callers go through
:mod:`LVIPredictorLib.io`, which also documents the DCE phase numbering (phase 1 = pre-contrast).

What is checked here, each failure an :class:`InputError` naming the file or folder: a folder
without DICOM images; several candidate series without ``series_uid``; mixed orientations,
duplicated positions or missing slices in a series (a gap above 1.5x the median slice spacing;
smaller unevenness is a warning); enhanced multi-frame DICOM (not supported: its geometry lives in
per-frame groups we do not parse); undecodable pixel data.
"""

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.errors import InvalidDicomError

from LVIPredictorLib.errors import InputError

logger = logging.getLogger(__name__)

# A gap this many times the median spacing cannot be a rounding effect: slices are missing.
MISSING_SLICE_FACTOR = 1.5
# Scanners round positions to ~0.01 mm; above 1 % of the spacing the grid really is uneven.
UNEVEN_SPACING_RELATIVE = 0.01
# Tags that tell the acquisitions of a dynamic series apart, most explicit first.
PHASE_TAGS = ("TemporalPositionIdentifier", "TriggerTime", "AcquisitionTime")
_POSITION_DECIMALS = 2  # mm; repeated positions of a dynamic series match to this precision
_ORIENTATION_TOLERANCE = 1e-4


@dataclass
class _SliceHeader:
    path: str
    series_uid: str
    series_number: Optional[int]
    description: str
    modality: str
    rows: int
    columns: int
    n_frames: int
    position: Optional[Tuple[float, float, float]]
    orientation: Optional[Tuple[float, ...]]
    pixel_spacing: Optional[Tuple[float, float]]
    instance_number: Optional[int]
    TemporalPositionIdentifier: Optional[int]
    TriggerTime: Optional[float]
    AcquisitionTime: Optional[float]
    acquisition_time_text: Optional[str]

    def position_key(self) -> Optional[Tuple[float, ...]]:
        if self.position is None:
            return None
        return tuple(round(v, _POSITION_DECIMALS) for v in self.position)


@dataclass
class SeriesInfo:
    """One DICOM series found in a folder (from headers only)."""

    uid: str
    number: Optional[int]
    description: str
    modality: str
    files: List[str]
    n_slices: int  # distinct slice positions (frames for a multi-frame file)
    temporal_positions: List[int]
    trigger_times: List[float]
    acquisition_times: List[str]
    _headers: List[_SliceHeader] = field(default_factory=list, repr=False, compare=False)

    @property
    def n_files(self) -> int:
        return len(self.files)

    @property
    def n_phases(self) -> int:
        """Acquisitions per slice position (1 for a static series)."""
        return max(1, self.n_files // max(1, self.n_slices)) if self._is_single_frame() else 1

    def _is_single_frame(self) -> bool:
        return all(h.n_frames <= 1 for h in self._headers)

    def describe(self) -> str:
        text = "series {} '{}' ({}, uid {}): {} files, {} slices".format(
            self.number if self.number is not None else "?", self.description, self.modality,
            self.uid, self.n_files, self.n_slices)
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
    """What :func:`LVIPredictorLib.io.read_image_with_info` read, and how it chose (files and DICOM)."""

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
    by_uid = {}  # type: Dict[str, List[_SliceHeader]]
    ignored = []  # type: List[Tuple[str, str]]
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(root, name)
            try:
                header = read_header(path)
            except InputError as error:
                ignored.append((path, error.problem))
                continue
            by_uid.setdefault(header.series_uid, []).append(header)
    for path, reason in ignored:
        logger.debug("ignored %s: %s", path, reason)
    series = [_series_info(uid, headers) for uid, headers in by_uid.items()]
    series.sort(key=lambda s: (s.number if s.number is not None else 1 << 30, s.uid))
    return DicomScan(folder, series, ignored)


# ----------------------------------------------------------------------------- shared with io

def check_phase(dce_phase: int, n_phases: int, source: str) -> int:
    """The requested 1-based phase, or InputError if the dynamic input has no such phase."""
    if not 1 <= int(dce_phase) <= n_phases:
        raise InputError(source, "DCE phase {} was requested but the dynamic series has {} phases "
                                 "(phase 1 = pre-contrast)".format(dce_phase, n_phases))
    return int(dce_phase)


def itk_reason(error: Exception) -> str:
    """The last non-empty line of an ITK error: the reason (earlier lines locate it in ITK's code)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


# ----------------------------------------------------------------------------- DICOM headers

def looks_like_dicom(path: str) -> bool:
    """True when the file has the DICM preamble (files without a suffix are sniffed this way)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def read_header(path: str) -> _SliceHeader:
    """Header of one DICOM image file; InputError (used as "ignore, because") otherwise."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        raise InputError(path, "is not a DICOM file")
    except Exception as error:  # pydicom raises many types on damaged headers
        raise InputError(path, "has an unreadable DICOM header ({})".format(error))
    if "Rows" not in ds or "Columns" not in ds:
        raise InputError(path, "is a DICOM file without an image ({})".format(
            ds.get("SOPClassUID", "unknown SOP class")))
    if not ds.get("SeriesInstanceUID"):
        raise InputError(path, "is a DICOM image without a SeriesInstanceUID")
    acquisition_text = str(ds.get("AcquisitionTime") or "") or None
    return _SliceHeader(
        path=path,
        series_uid=str(ds.SeriesInstanceUID),
        series_number=_optional(int, ds.get("SeriesNumber")),
        description=str(ds.get("SeriesDescription", "") or ""),
        modality=str(ds.get("Modality", "") or ""),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        n_frames=_optional(int, ds.get("NumberOfFrames")) or 1,
        position=_optional_floats(ds.get("ImagePositionPatient"), 3),
        orientation=_optional_floats(ds.get("ImageOrientationPatient"), 6),
        pixel_spacing=_optional_floats(ds.get("PixelSpacing"), 2),
        instance_number=_optional(int, ds.get("InstanceNumber")),
        TemporalPositionIdentifier=_optional(int, ds.get("TemporalPositionIdentifier")),
        TriggerTime=_optional(float, ds.get("TriggerTime")),
        AcquisitionTime=_seconds(acquisition_text),
        acquisition_time_text=acquisition_text,
    )


def _optional(kind, value):
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        return None


def _optional_floats(value, count: int):
    try:
        numbers = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count else None


def _seconds(tm: Optional[str]) -> Optional[float]:
    """DICOM TM (HHMMSS.FFFFFF, older HH:MM:SS) as seconds since midnight."""
    if not tm:
        return None
    text = tm.replace(":", "").strip()
    try:
        hours = int(text[0:2])
        minutes = int(text[2:4]) if len(text) >= 4 else 0
        seconds = float(text[4:]) if len(text) > 4 else 0.0
    except ValueError:
        return None
    return hours * 3600.0 + minutes * 60.0 + seconds


def _series_info(uid: str, headers: List[_SliceHeader]) -> SeriesInfo:
    first = headers[0]
    positions = {h.position_key() for h in headers}
    n_slices = headers[0].n_frames if len(headers) == 1 else len(positions)
    return SeriesInfo(
        uid=uid, number=first.series_number, description=first.description,
        modality=first.modality, files=[h.path for h in headers], n_slices=n_slices,
        temporal_positions=sorted({h.TemporalPositionIdentifier for h in headers
                                   if h.TemporalPositionIdentifier is not None}),
        trigger_times=sorted({h.TriggerTime for h in headers if h.TriggerTime is not None}),
        acquisition_times=sorted({h.acquisition_time_text for h in headers if h.acquisition_time_text}),
        _headers=list(headers))


# ----------------------------------------------------------------------------- DICOM selection

def read_dicom_folder(folder: str, dce_phase: int, series_uid: Optional[str],
                       require_3d: bool) -> Tuple[sitk.Image, ImageInfo]:
    scan = scan_dicom_folder(folder)
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
                series_uid, _listing(scan.series)))
        return read_dicom_headers(folder, chosen[0]._headers, dce_phase, require_3d, notes)
    if len(scan.series) == 1:
        return read_dicom_headers(folder, scan.series[0]._headers, dce_phase, require_3d, notes)
    if _series_are_phases(scan.series):
        return _read_phase_series(folder, scan.series, dce_phase, require_3d, notes)
    raise InputError(folder, "holds {} image series; pass series_uid to choose one:\n{}".format(
        len(scan.series), _listing(scan.series)))


def _listing(series: Sequence[SeriesInfo]) -> str:
    return "\n".join("  - " + s.describe() for s in series)


def _description_stem(description: str) -> str:
    return re.sub(r"\d+", "#", description.strip().lower())


def _series_are_phases(series: Sequence[SeriesInfo]) -> bool:
    """One series per DCE phase: same slices, same description up to numbers, no repeats within.

    Requiring the same description stem keeps a T1 and a T2 acquired on the same grid apart.
    """
    first = series[0]
    stem = _description_stem(first.description)
    grid = _slice_grid(first._headers)
    for item in series:
        if item.n_phases != 1 or not item._is_single_frame():
            return False
        if _description_stem(item.description) != stem or _slice_grid(item._headers) != grid:
            return False
    return grid is not None


def _slice_grid(headers: Sequence[_SliceHeader]):
    if any(h.position is None or h.orientation is None for h in headers):
        return None
    first = headers[0]
    return (first.rows, first.columns, tuple(round(v, 4) for v in first.orientation),
            frozenset(h.position_key() for h in headers))


def _read_phase_series(folder: str, series: Sequence[SeriesInfo], dce_phase: int,
                       require_3d: bool, notes: List[str]) -> Tuple[sitk.Image, ImageInfo]:
    ordered, rule = _order_by_time(series, lambda s: s._headers)
    if ordered is None:
        ordered = sorted(series, key=lambda s: (_natural_key(s.description), s.number or 0))
        rule = "SeriesDescription, then SeriesNumber"
    phase = check_phase(dce_phase, len(ordered), folder)
    image, info = read_dicom_headers(folder, ordered[phase - 1]._headers, 1, require_3d, notes)
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


def _split_phases(headers: List[_SliceHeader], source: str) -> Tuple[List[List[_SliceHeader]], Optional[str]]:
    """Split a series into its acquisitions when slice positions repeat (a dynamic series)."""
    at_position = {}  # type: Dict[Tuple[float, ...], List[_SliceHeader]]
    for header in headers:
        if header.position is None:
            raise InputError(header.path, "has no ImagePositionPatient; the slice cannot be placed")
        at_position.setdefault(header.position_key(), []).append(header)
    counts = sorted({len(group) for group in at_position.values()})
    if counts == [1]:
        return [headers], None
    if len(counts) > 1:
        raise InputError(source, "series {} holds {} to {} images per slice position: an incomplete "
                                 "dynamic series (missing images in some phase?)".format(
                                     headers[0].series_uid, counts[0], counts[-1]))
    n_phases = counts[0]
    phases = [[] for _ in range(n_phases)]  # type: List[List[_SliceHeader]]
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

def read_dicom_headers(source: str, headers: List[_SliceHeader], dce_phase: int,
                        require_3d: bool, notes: List[str]) -> Tuple[sitk.Image, ImageInfo]:
    first = headers[0]
    if any(h.n_frames > 1 for h in headers):
        raise InputError(first.path, "is an enhanced (multi-frame) DICOM image, which is not "
                                     "supported; convert it to NIfTI (e.g. with dcm2niix)")
    phases, rule = _split_phases(headers, source)
    info = ImageInfo(source=source, kind="dicom", n_slices=0, series_uid=first.series_uid,
                     series_number=first.series_number, series_description=first.description,
                     warnings=list(notes))
    selected = phases[0]
    if len(phases) > 1:
        phase = check_phase(dce_phase, len(phases), source)
        selected = phases[phase - 1]
        info.phase, info.n_phases, info.phase_rule = phase, len(phases), rule
    ordered, spacing_z, normal, warnings = _slice_geometry(selected, source, require_3d)
    info.warnings.extend(warnings)
    info.files = [h.path for h in ordered]
    info.n_slices = len(ordered)
    image = _read_pixels(info.files, source)
    _set_geometry(image, ordered[0], spacing_z, normal)
    return image, info


def _slice_geometry(headers: List[_SliceHeader], source: str, require_3d: bool):
    """Sort slices along the slice normal; reject mixed orientations, duplicates and gaps."""
    first = headers[0]
    for header in headers:
        if header.orientation is None or header.position is None:
            raise InputError(header.path, "lacks ImageOrientationPatient or ImagePositionPatient; "
                                          "the slice cannot be placed in space")
        if not np.allclose(header.orientation, first.orientation, atol=_ORIENTATION_TOLERANCE):
            raise InputError(source, "series {} mixes slice orientations ({} and {}), e.g. a "
                                     "localizer in the series".format(first.series_uid,
                                                                      first.path, header.path))
        if (header.rows, header.columns) != (first.rows, first.columns):
            raise InputError(source, "series {} mixes image sizes ({}x{} in {}, {}x{} in {})".format(
                first.series_uid, first.rows, first.columns, first.path, header.rows,
                header.columns, header.path))
    row, column = np.array(first.orientation[:3]), np.array(first.orientation[3:])
    if not np.allclose([row @ row, column @ column, row @ column], [1.0, 1.0, 0.0], atol=1e-3):
        raise InputError(first.path, "ImageOrientationPatient {} is not orthonormal; the slice "
                                     "geometry is corrupt".format(list(first.orientation)))
    normal = np.cross(row, column)
    distance = {h.path: float(np.dot(normal, h.position)) for h in headers}
    ordered = sorted(headers, key=lambda h: distance[h.path])
    along = np.array([distance[h.path] for h in ordered])
    if len(ordered) < 2:
        if require_3d:
            hint = "; pass the series folder, not one file" if os.path.isfile(source) else ""
            raise InputError(source, "holds a single slice ({}); a 3D volume with several slices "
                                     "is needed{}".format(first.path, hint))
        return ordered, None, normal, []
    steps = np.diff(along)
    if steps.min() < 10 ** -_POSITION_DECIMALS:
        index = int(np.argmin(steps))
        raise InputError(source, "two images lie at the same position {:.2f} mm ({} and {})".format(
            along[index], ordered[index].path, ordered[index + 1].path))
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


def _read_pixels(files: List[str], source: str) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileNames(files)
    try:
        return reader.Execute()
    except RuntimeError as error:
        raise InputError(_first_unreadable(files) or source,
                         "pixel data cannot be decoded (truncated file or unsupported compression: "
                         "{})".format(itk_reason(error)))


def _first_unreadable(files: List[str]) -> Optional[str]:
    """Only on the error path: find which file broke the series read, to name it."""
    for path in files:
        try:
            sitk.ReadImage(path, imageIO="GDCMImageIO")
        except RuntimeError:
            return path
    return None


def _set_geometry(image: sitk.Image, first: _SliceHeader, spacing_z: Optional[float],
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
