"""Where images and masks enter the library: files and DICOM folders in, checked SimpleITK images out.

Formats: NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd), a single DICOM
file, or a folder of DICOM files (searched recursively).

DCE phase numbering (docs/design.md §5): phase 1 is the first acquisition of the dynamic series, i.e. the
pre-contrast one; phase 2 is the second acquisition = the first post-contrast. The paper exports
"the 2nd phase" because the tumour has enhanced by then while the background parenchyma has not
yet, so ``dce_phase=2`` is the default. The phase only matters for dynamic input (a DICOM series
whose slice positions repeat, a folder holding one series per phase, or a 4D file whose 4th axis
is time); a static image such as the FS-T2WI ignores it.

What is checked here, each failure an :class:`InputError` naming the file or folder:
unreadable / truncated files; a 2D image when 3D is required; multi-component (RGB) pixels;
NaN/Inf voxels (read from the NIfTI file itself, as ITK hides them). A constant image is NOT
rejected on reading (a reader should not judge content); :func:`check_image`, which preprocessing
calls, rejects it. DICOM series (grouping, phase selection, missing slices, undecodable pixels)
are handled in :mod:`LVIPredictorLib.dicom.series`; its public names are re-exported here so
callers import every reading name from this module.
"""

import gzip
import logging
import os
import struct
from typing import List, Optional, Tuple

import numpy as np
import SimpleITK as sitk

from LVIPredictorLib.dicom.series import (DicomScan, ImageInfo, SeriesInfo, check_phase, itk_reason,
                                          list_dicom_series, looks_like_dicom, read_dicom_file, read_dicom_folder,
                                          read_scan, scan_dicom_files, scan_dicom_folder)
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.vocabulary.sequences import DEFAULT_DCE_PHASE

__all__ = ["DEFAULT_DCE_PHASE", "IMAGE_FILE_SUFFIXES", "DicomScan", "ImageInfo", "SeriesInfo",
           "check_image", "list_dicom_series", "mask_labels", "read_dicom_files_with_info", "read_image",
           "read_image_with_info", "read_mask", "same_geometry", "scan_dicom_folder"]

logger = logging.getLogger(__name__)

IMAGE_FILE_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


# ----------------------------------------------------------------------------- public API

def read_image(path, *, dce_phase: int = DEFAULT_DCE_PHASE, series_uid: Optional[str] = None,
               require_3d: bool = True, sequence: Optional[str] = None) -> sitk.Image:
    """Read an image file or a DICOM series folder; see :func:`read_image_with_info`."""
    return read_image_with_info(path, dce_phase=dce_phase, series_uid=series_uid,
                                require_3d=require_3d, sequence=sequence)[0]


def read_image_with_info(path, *, dce_phase: int = DEFAULT_DCE_PHASE,
                         series_uid: Optional[str] = None,
                         require_3d: bool = True,
                         sequence: Optional[str] = None) -> Tuple[sitk.Image, ImageInfo]:
    """Read an image and report what was picked.

    ``dce_phase`` (1-based, phase 1 = pre-contrast, default 2 = first post-contrast) is used only
    when the input is dynamic; ``series_uid`` picks one series of a folder holding several;
    ``sequence`` ("t2" or "dce") picks the series of that sequence out of a folder holding a whole
    study (:mod:`LVIPredictorLib.dicom.selection`; ``info.selection`` says why);
    ``require_3d`` (default True) rejects a single slice. A folder whose series share one grid and
    one description (up to numbers) is read as one DCE series exported as a series per phase.
    An enhanced (multi-frame) MR file is read like a series (its frames placed and phased by their
    functional groups). The returned image also carries ``lvi:*`` metadata (source, series
    uid/description, phase).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        image, info = read_dicom_folder(path, dce_phase, series_uid, require_3d, sequence)
    elif not os.path.exists(path):
        raise InputError(path, "does not exist")
    elif _has_image_suffix(path) or not looks_like_dicom(path):
        image, info = _read_image_file(path, dce_phase, require_3d)
    else:
        image, info = read_dicom_file(path, dce_phase, require_3d)
    return _checked(image, info, path, require_3d)


def read_dicom_files_with_info(paths, *, source: str, dce_phase: int = DEFAULT_DCE_PHASE,
                               series_uid: Optional[str] = None, require_3d: bool = True,
                               sequence: Optional[str] = None) -> Tuple[sitk.Image, ImageInfo]:
    """:func:`read_image_with_info` for a list of DICOM files (``source`` names them in messages),
    e.g. the files Slicer's DICOM database holds for a series."""
    scan = scan_dicom_files([os.fspath(p) for p in paths], source)
    image, info = read_scan(scan, dce_phase, series_uid, require_3d, sequence)
    return _checked(image, info, source, require_3d)


def _checked(image: sitk.Image, info: ImageInfo, source, require_3d: bool) -> Tuple[sitk.Image, ImageInfo]:
    _check_voxels(image, source, require_3d)
    _tag_image(image, info)
    for message in info.warnings:
        logger.warning("%s: %s", source, message)
    return image, info


def read_mask(path, *, reference: Optional[sitk.Image] = None) -> sitk.Image:
    """Read a label mask as uint8, keeping its label values (no binarisation here).

    With a ``reference`` image on the same grid up to ``same_geometry``'s tolerance, the
    reference's exact geometry is copied onto the mask: NIfTI stores its affine in float32, so an
    ITK-SNAP mask drawn on a DICOM image differs from it by ~1e-5 mm and would otherwise be
    resampled for nothing. A mask on a really different grid is returned as is (preprocessing
    resamples it onto the image grid).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise InputError(path, "is a folder; a mask must be one label image file (NIfTI, NRRD or MHA)")
    if not os.path.exists(path):
        raise InputError(path, "does not exist")
    mask = _sitk_read(path)
    if mask.GetDimension() == 4:
        raise InputError(path, "is a 4D image; a mask must be a 3D label image")
    if mask.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(path, "holds {} layers (overlapping segments); a mask must give one label "
                               "per voxel, e.g. export a labelmap".format(mask.GetNumberOfComponentsPerPixel()))
    _check_voxels(mask, path, require_3d=True)
    values = sitk.GetArrayViewFromImage(mask)
    if not np.issubdtype(values.dtype, np.integer) and not np.array_equal(values, np.round(values)):
        raise InputError(path, "holds non-integer values; a label mask holds whole numbers "
                               "(is this an image rather than a mask?)")
    low, high = float(values.min()), float(values.max())
    if low < 0 or high > 255:
        raise InputError(path, "holds label values from {:g} to {:g}; labels must lie in 0..255"
                         .format(low, high))
    if high == 0:
        raise InputError(path, "holds no labelled voxel (the mask is empty)")
    mask = sitk.Cast(mask, sitk.sitkUInt8)
    if reference is not None and same_geometry(mask, reference):
        mask.CopyInformation(reference)
    return mask


def mask_labels(mask: sitk.Image) -> List[int]:
    """Sorted non-zero label values present in ``mask`` (0 = background is left out)."""
    values = np.unique(sitk.GetArrayViewFromImage(mask))
    return [int(v) for v in values if v != 0]


def same_geometry(a: sitk.Image, b: sitk.Image, tol: float = 1e-4) -> bool:
    """True when size, origin, spacing and direction agree (absolute ``tol``, mm / cosines)."""
    if a.GetDimension() != b.GetDimension() or a.GetSize() != b.GetSize():
        return False
    return all(np.allclose(x, y, rtol=0.0, atol=tol) for x, y in (
        (a.GetOrigin(), b.GetOrigin()), (a.GetSpacing(), b.GetSpacing()),
        (a.GetDirection(), b.GetDirection())))


def check_image(image: sitk.Image, source=None, *, require_3d: bool = True) -> None:
    """Reject an image that cannot give a meaningful prediction: the reading checks plus a
    constant image (all voxels equal: nothing to normalise, nothing to see)."""
    _check_voxels(image, source, require_3d)
    values = sitk.GetArrayViewFromImage(image)
    if values.min() == values.max():
        raise InputError(source, "is a constant image (every voxel is {:g})".format(float(values.flat[0])))


# ----------------------------------------------------------------------------- files

def _has_image_suffix(path: str) -> bool:
    return path.lower().endswith(IMAGE_FILE_SUFFIXES)


def _sitk_read(path: str) -> sitk.Image:
    try:
        return sitk.ReadImage(path)
    except RuntimeError as error:
        raise InputError(path, "cannot be read as an image ({})".format(itk_reason(error)))


def _read_image_file(path: str, dce_phase: int, require_3d: bool) -> Tuple[sitk.Image, ImageInfo]:
    image = _sitk_read(path)
    if path.lower().endswith((".nii", ".nii.gz")):
        bad = _nifti_non_finite_count(path)
        if bad:
            raise InputError(path, "holds {} NaN or infinite voxel(s) (ITK would silently read them "
                                   "as 0)".format(bad))
    info = ImageInfo(source=path, kind="file", n_slices=0, files=[path])
    if image.GetDimension() == 4:
        # dcm2niix writes a DCE series as one 4D NIfTI with time on the 4th axis.
        n_phases = image.GetSize()[3]
        phase = check_phase(dce_phase, n_phases, path)
        size = list(image.GetSize()[:3]) + [0]
        image = sitk.Extract(image, size, [0, 0, 0, phase - 1])
        info.phase, info.n_phases, info.phase_rule = phase, n_phases, "4th axis of the file"
        info.warnings.append("4D image read as a dynamic series: volume {} of {} along the 4th "
                             "axis was taken as DCE phase {}".format(phase, n_phases, phase))
    if image.GetDimension() >= 3:
        info.n_slices = image.GetSize()[2]
    return image, info


# NIfTI float datatypes: code -> numpy type. ITK < 6 replaces NaN/Inf by 0 while reading NIfTI
# (ITK pull request 6683), so the on-disk voxels are checked here.
_NIFTI_FLOAT_TYPES = {16: "f4", 64: "f8"}
_SCAN_BLOCK_VOXELS = 1 << 20


def _nifti_non_finite_count(path: str) -> Optional[int]:
    """Non-finite voxels stored in a float NIfTI-1/2 file; None if not float or not parsable."""
    opener = gzip.open if path.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            header = handle.read(540)
            for order in "<>":
                size = struct.unpack(order + "i", header[:4])[0]
                if size == 348:
                    dims = struct.unpack(order + "8h", header[40:56])
                    code = struct.unpack(order + "h", header[70:72])[0]
                    offset = int(struct.unpack(order + "f", header[108:112])[0])
                    break
                if size == 540:
                    code = struct.unpack(order + "h", header[12:14])[0]
                    dims = struct.unpack(order + "8q", header[16:80])
                    offset = int(struct.unpack(order + "q", header[168:176])[0])
                    break
            else:
                return None
            if code not in _NIFTI_FLOAT_TYPES:
                return None
            count = int(np.prod([max(1, d) for d in dims[1:1 + dims[0]]]))
            dtype = np.dtype(order + _NIFTI_FLOAT_TYPES[code])
            handle.seek(offset)
            # In blocks: the whole file beside the image just read doubled a prediction's peak memory.
            bad, left = 0, count
            while left:
                n = min(left, _SCAN_BLOCK_VOXELS)
                block = handle.read(n * dtype.itemsize)
                if len(block) < n * dtype.itemsize:
                    return None  # truncated: ITK's own reading reports that
                bad += _non_finite_count(np.frombuffer(block, dtype=dtype))
                left -= n
    except (OSError, EOFError, struct.error, ValueError):
        return None
    return bad


def _non_finite_count(values: np.ndarray) -> int:
    """NaN/Inf voxels of an array, slab by slab along its first axis (a whole-volume boolean copy is
    1 byte per voxel)."""
    slab = max(1, _SCAN_BLOCK_VOXELS // max(1, values[0].size)) if values.ndim > 1 else _SCAN_BLOCK_VOXELS
    return sum(int(block.size - np.count_nonzero(np.isfinite(block)))
               for block in (values[i:i + slab] for i in range(0, values.shape[0], slab)))


def _check_voxels(image: sitk.Image, source, require_3d: bool) -> None:
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(source, "has {} components per voxel (colour or vector image); a "
                                 "grey-level MR image is needed".format(image.GetNumberOfComponentsPerPixel()))
    if require_3d and (image.GetDimension() < 3 or image.GetSize()[2] < 2):
        raise InputError(source, "is a 2D image (size {}); a 3D volume with several slices is "
                                 "needed".format("x".join(str(s) for s in image.GetSize())))
    values = sitk.GetArrayViewFromImage(image)
    if np.issubdtype(values.dtype, np.floating):
        bad = _non_finite_count(values)
        if bad:
            raise InputError(source, "holds {} NaN or infinite voxel(s)".format(bad))


def _tag_image(image: sitk.Image, info: ImageInfo) -> None:
    entries = {"lvi:source": info.source, "lvi:series_uid": info.series_uid,
               "lvi:series_description": info.series_description,
               "lvi:dce_phase": info.phase, "lvi:phase_rule": info.phase_rule}
    for key, value in entries.items():
        if value is not None:
            image.SetMetaData(key, str(value))
