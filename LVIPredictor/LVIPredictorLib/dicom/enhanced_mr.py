"""Enhanced (multi-frame) MR DICOM: one file holding every slice — and, for a dynamic series,
every phase — with each frame's geometry and timing in its per-frame functional groups.

Each frame becomes a :class:`~LVIPredictorLib.dicom.headers.SliceHeader` placed by its own
ImagePositionPatient (PlanePositionSequence), with orientation and pixel spacing from its own or
the shared groups, so the frames go through the same geometry checks as single-frame files
(orientation, duplicates, gaps). Phases are told apart by the FrameContentSequence's
TemporalPositionIndex, else by FrameAcquisitionDateTime. Rescale slope/intercept come from the
PixelValueTransformationSequence where present.

Handled: Enhanced MR Image Storage and Legacy Converted Enhanced MR Image Storage (or any image
with per-frame functional groups). A multi-frame file without them cannot place its frames and
is an :class:`InputError`.
"""

from typing import List

import numpy as np
import pydicom

from LVIPredictorLib.dicom.headers import SliceHeader, optional, optional_floats, seconds
from LVIPredictorLib.errors import InputError


def read_dataset(path: str):
    """The whole header of a multi-frame file (its functional groups), without the pixels."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as error:  # pydicom raises many types on damaged headers
        raise InputError(path, "has an unreadable DICOM header ({})".format(error))


def frame_headers(header: SliceHeader, dataset=None) -> List[SliceHeader]:
    """One header per frame of the multi-frame file behind ``header`` (its fast file header);
    ``dataset``: the file's header when already read (:func:`read_dataset`)."""
    path = header.path
    ds = dataset if dataset is not None else read_dataset(path)
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame:
        raise InputError(path, "is a multi-frame image ({} frames) without per-frame functional groups (SOP class "
                               "{}); its frames cannot be placed in space (convert it, e.g. with dcm2niix)".format(
                                   header.n_frames, ds.get("SOPClassUID", "unknown")))
    if len(per_frame) != header.n_frames:
        raise InputError(path, "has {} frames but {} per-frame functional groups".format(header.n_frames,
                                                                                        len(per_frame)))
    shared = (ds.get("SharedFunctionalGroupsSequence") or [None])[0]
    frames = []
    for index, group in enumerate(per_frame):
        where = "{} (frame {})".format(path, index + 1)

        def item(sequence, keyword, frame_group=group):
            """``keyword`` of the frame's macro ``sequence``, else of the shared one."""
            for place in (frame_group, shared):
                if place is None:
                    continue
                items = place.get(sequence)
                if items and keyword in items[0] and items[0].get(keyword) not in (None, ""):
                    return items[0].get(keyword)
            return None

        position = optional_floats(item("PlanePositionSequence", "ImagePositionPatient"), 3)
        orientation = optional_floats(item("PlaneOrientationSequence", "ImageOrientationPatient"), 6)
        if position is None or orientation is None:
            raise InputError(where, "has no ImagePositionPatient / ImageOrientationPatient in its functional "
                                    "groups; the frame cannot be placed in space")
        acquired = item("FrameContentSequence", "FrameAcquisitionDateTime")
        acquired_text = str(acquired)[8:] if acquired else None  # DT YYYYMMDDHHMMSS.F -> time of day
        slope = optional(float, item("PixelValueTransformationSequence", "RescaleSlope"))
        intercept = optional(float, item("PixelValueTransformationSequence", "RescaleIntercept"))
        frames.append(SliceHeader(
            path=path, series_uid=header.series_uid, series_number=header.series_number, rows=header.rows,
            columns=header.columns, n_frames=header.n_frames, position=position, orientation=orientation,
            pixel_spacing=optional_floats(item("PixelMeasuresSequence", "PixelSpacing"), 2) or header.pixel_spacing,
            instance_number=header.instance_number,
            TemporalPositionIdentifier=optional(int, item("FrameContentSequence", "TemporalPositionIndex")),
            TriggerTime=None, AcquisitionNumber=None, AcquisitionTime=seconds(acquired_text),
            acquisition_time_text=acquired_text, sop_instance_uid=header.sop_instance_uid,
            rescale_slope=header.rescale_slope if slope is None else slope,
            rescale_intercept=header.rescale_intercept if intercept is None else intercept,
            pixels=header.pixels, frame=index))
    return frames


def decode_frames(headers: List[SliceHeader]) -> np.ndarray:
    """Pixels of the given frames, (frames, rows, columns), through pydicom's decoders; rescaled
    (as float32) when a frame's slope or intercept is not the identity."""
    decoded = {path: _decoded(path) for path in dict.fromkeys(h.path for h in headers)}
    rescaled = any((h.rescale_slope, h.rescale_intercept) != (1.0, 0.0) for h in headers)
    frames = []
    for header in headers:
        frame = decoded[header.path][header.frame]
        if rescaled:
            frame = frame.astype(np.float64) * header.rescale_slope + header.rescale_intercept
        frames.append(frame)
    volume = np.stack(frames)
    return volume.astype(np.float32) if rescaled else volume


def _decoded(path: str) -> np.ndarray:
    try:
        ds = pydicom.dcmread(path)
    except Exception as error:  # pydicom raises many types on damaged files
        raise InputError(path, "cannot be read ({})".format(error))
    try:
        pixels = ds.pixel_array
    except Exception as error:  # decoders raise many types (missing plugin, corrupt stream)
        syntax = ds.file_meta.get("TransferSyntaxUID", "unknown") if hasattr(ds, "file_meta") else "unknown"
        raise InputError(path, "pixel data cannot be decoded (transfer syntax {}: {})".format(syntax, error))
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim != 3:
        raise InputError(path, "has pixel data of shape {}; a grey-level multi-frame image is "
                               "needed".format(pixels.shape))
    return pixels
