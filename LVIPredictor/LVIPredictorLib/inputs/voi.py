"""The VOI at the input boundary: the label rule, image and mask checks, the mask placed on the
image grid in physical space, and the checks between the VOIs of fused series.

Every model input passes here first — network crops (``preprocessing.crops``) and radiomics
features (``preprocessing.radiomics``) alike — so a bad VOI is refused the same way whatever
model reads it. A mask on another grid is resampled onto the image grid with nearest neighbour,
never reshaped by array size (docs/design.md §5).
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from LVIPredictorLib.errors import InputError
from LVIPredictorLib.inputs.readers import same_geometry

_FLOAT_TYPES = (sitk.sitkFloat32, sitk.sitkFloat64)


def binary_voi(mask_array, label, source=None):
    """The label rule: which voxels of a (multi-)label mask are tumour.

    Returns (binary uint8 array, warnings). Any non-zero voxel counts unless ``label`` is
    given; several labels without a choice are accepted (ITK-SNAP users often paint the
    lesion with more than one label) but reported.
    """
    warnings = []
    if mask_array.dtype.kind == "f":
        if not np.all(np.isfinite(mask_array)):
            raise InputError(source, "the VOI mask contains NaN/Inf values; it is not a label image")
        if np.any(mask_array != np.round(mask_array)):
            raise InputError(source, "the VOI mask has non-integer values; expected a label image "
                                     "(0 = background, 1.. = tumour)")
    if np.any(mask_array < 0):
        raise InputError(source, "the VOI mask has negative labels; expected 0 = background, 1.. = tumour")
    labels = [int(v) for v in np.unique(mask_array) if v != 0]
    if not labels:
        raise InputError(source, "the VOI mask is empty (no tumour voxels)")
    if label is None:
        if len(labels) > 1:
            warnings.append("VOI mask has labels {}; all non-zero labels are used as tumour "
                            "(choose one with the label setting)".format(labels))
        binary = mask_array != 0
    else:
        if label not in labels:
            raise InputError(source, "the VOI mask has no voxels with label {} (labels present: {})".format(
                label, labels or "none"))
        binary = mask_array == label
    return binary.astype(np.uint8), warnings


@dataclass
class Channel:
    """One input channel: an image, its VOI mask, and the names errors and warnings use.

    ``phases``: every temporal position of a dynamic DCE series (``image`` is
    ``phases[phase_index]``), for inputs that read enhancement over time (radiomics kinetics).
    """

    image: sitk.Image
    mask: sitk.Image
    image_source: str = "image"
    mask_source: str = "VOI mask"
    phases: Optional[List[sitk.Image]] = None
    phase_index: int = 1


@dataclass
class LocatedVoi:
    start: Tuple[int, int, int]  # index (x, y, z) of ``box`` in the image
    box: np.ndarray              # binary (Z, Y, X) on the image grid
    lo: np.ndarray               # physical (LPS) bounds, voxel extents included
    hi: np.ndarray
    volume_mm3: float


# VOIs of one tumour drawn on two series: centres further apart than this suggest patient
# motion between the series or a different lesion, worth a look before trusting a fused input.
FUSED_VOI_WARN_MM = 10.0


def voi_agreement(channels, spec, grid_channel=0):
    # type: (Sequence[Channel], PreprocessSpec, int) -> List[str]
    """The checks :func:`preprocess_channels` makes between the channels' VOIs, without building
    the input (cohort validation uses it): InputError when they cannot outline one tumour, else
    the warnings."""
    vois = [locate_voi(ch, spec, [], named=True) for ch in channels]
    return agreement(channels, vois, grid_channel, spec)


def locate_voi(channel, spec, warnings, named):
    """Validate one channel and find its VOI on its own image grid (appends to ``warnings``)."""
    image, mask = channel.image, channel.mask
    _check_image(image, channel.image_source)
    _check_mask_image(mask, channel.mask_source)
    start, box, mask_warnings = _mask_on_image_grid(image, mask, spec.label, channel.image_source,
                                                    channel.mask_source)
    warnings += mask_warnings
    n_voxels = int(box.sum())
    volume = n_voxels * float(np.prod(image.GetSpacing()))
    if volume < spec.min_voi_mm3:
        warnings.append("VOI{} is tiny ({:.0f} mm^3, {} voxels; below {:.0f} mm^3): the prediction is "
                        "unreliable".format(" in " + channel.mask_source if named else "", volume, n_voxels,
                                            spec.min_voi_mm3))
    if _is_oblique(image):
        warnings.append("{} is oblique; it was resampled onto an axis-aligned grid".format(channel.image_source))
    lo, hi = _voi_physical_bounds(image, start, box)
    return LocatedVoi(start=start, box=box, lo=lo, hi=hi, volume_mm3=volume)


def agreement(channels, vois, grid_channel, spec):
    """Every channel's VOI against the grid channel's (see :func:`_same_tumour`); the warnings."""
    warnings = []  # type: List[str]
    for index, (channel, voi) in enumerate(zip(channels, vois)):
        if index != grid_channel:
            warnings += _same_tumour(channels[grid_channel], vois[grid_channel], channel, voi, spec)
    return warnings


def _same_tumour(reference, ref_voi, other, voi, spec):
    """Error when two channels' VOIs cannot be one tumour; a warning when they are far apart."""
    tolerance = spec.margin_mm
    overlap = np.all(voi.lo - tolerance <= ref_voi.hi) and np.all(ref_voi.lo - tolerance <= voi.hi)
    distance = float(np.linalg.norm((voi.lo + voi.hi) / 2.0 - (ref_voi.lo + ref_voi.hi) / 2.0))
    if not overlap:
        raise InputError(other.mask_source, "does not outline the same tumour as {}: the VOIs do not overlap "
                                            "(centres {:.0f} mm apart). Check that both masks belong to this "
                                            "patient's lesion and that the series are registered".format(
                                                reference.mask_source, distance))
    if distance > FUSED_VOI_WARN_MM:
        return ["the VOIs in {} and {} are centred {:.0f} mm apart: patient motion between the series or "
                "a different outline; the crop follows {}".format(other.mask_source, reference.mask_source,
                                                                  distance, reference.mask_source)]
    return []


def _check_image(image, source):
    if image.GetDimension() != 3:
        raise InputError(source, "is a {}D image; a 3D volume is needed".format(image.GetDimension()))
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(source, "has {} components per voxel (vector/RGB image); a scalar MR volume is "
                                 "needed".format(image.GetNumberOfComponentsPerPixel()))
    if min(image.GetSize()) < 2:
        raise InputError(source, "has size {} (a single slice); a 3D volume is needed".format(image.GetSize()))
    if image.GetPixelID() in _FLOAT_TYPES:
        arr = sitk.GetArrayViewFromImage(image)
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise InputError(source, "contains {} NaN/Inf voxels".format(bad))


def _check_mask_image(mask, source):
    if mask.GetDimension() != 3:
        raise InputError(source, "is a {}D image; the VOI mask must be 3D".format(mask.GetDimension()))
    if mask.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(source, "is a vector image; the VOI mask must be a label image")


def _is_oblique(image):
    d = np.abs(np.asarray(image.GetDirection()).reshape(3, 3))
    return bool(np.any((d > 1e-3) & (d < 1 - 1e-3)))


def _nonzero_box(arr):
    """Slices (z, y, x) of the bounding box of non-zero voxels, or None if there are none.

    Projections instead of np.nonzero/np.unique on the whole volume: a 512x512x120 mask is
    31 M voxels and the tumour a few thousand, so everything after this works on the box.
    """
    nonzero = arr != 0
    slices = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(nonzero.any(axis=other))
        if hits.size == 0:
            return None
        slices.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(slices)


def _mask_on_image_grid(image, mask, label, image_source, mask_source):
    """The binary VOI on the image grid, restricted to the index box that holds it.

    Returns (start index (x, y, z) of the box, binary array (Z, Y, X) of the box, warnings).
    """
    mask_array = sitk.GetArrayViewFromImage(mask)
    box = _nonzero_box(mask_array)
    if box is None:
        raise InputError(mask_source, "the VOI mask is empty (no tumour voxels)")
    # The label rule runs on the mask's own grid, before any resampling can mix labels.
    binary, warnings = binary_voi(mask_array[box], label, mask_source)
    box_start = (box[2].start, box[1].start, box[0].start)
    if same_geometry(image, mask):
        start = box_start
    else:
        native = sitk.GetImageFromArray(binary)
        native.SetSpacing(mask.GetSpacing())
        native.SetDirection(mask.GetDirection())
        native.SetOrigin(mask.TransformIndexToPhysicalPoint([int(i) for i in box_start]))
        start, size = _mask_box_in_image(image, native, image_source, mask_source)
        sub_grid = sitk.Image([int(s) for s in size], sitk.sitkUInt8)
        sub_grid.SetSpacing(image.GetSpacing())
        sub_grid.SetDirection(image.GetDirection())
        sub_grid.SetOrigin(image.TransformIndexToPhysicalPoint([int(i) for i in start]))
        binary = sitk.GetArrayFromImage(_resample(native, sub_grid, sitk.sitkNearestNeighbor, sitk.sitkUInt8, 0))
        warnings.append("{} was on a different grid from {}; it was resampled onto the image grid "
                        "(nearest neighbour)".format(mask_source, image_source))
        inner = _nonzero_box(binary)
        if inner is None:
            raise InputError(mask_source, "the VOI does not overlap {} (no tumour voxel falls inside the image "
                                          "after resampling onto its grid)".format(image_source))
        binary = binary[inner]
        start = (start[0] + inner[2].start, start[1] + inner[1].start, start[2] + inner[0].start)
    return start, np.ascontiguousarray(binary), warnings


def _mask_box_in_image(image, voi, image_source, mask_source):
    """Index box of the image grid covering ``voi`` (a binary box image on another grid)."""
    nx, ny, nz = voi.GetSize()
    corners = []
    for cx in (-0.5, nx - 0.5):
        for cy in (-0.5, ny - 0.5):
            for cz in (-0.5, nz - 0.5):
                p = voi.TransformContinuousIndexToPhysicalPoint((cx, cy, cz))
                corners.append(image.TransformPhysicalPointToContinuousIndex(p))
    corners = np.asarray(corners)
    size = np.asarray(image.GetSize())
    start = np.maximum(np.floor(corners.min(axis=0)).astype(int) - 1, 0)
    stop = np.minimum(np.ceil(corners.max(axis=0)).astype(int) + 2, size)
    if np.any(stop <= start):
        raise InputError(mask_source, "the VOI does not overlap {}: their physical extents are disjoint "
                                      "(check that the mask belongs to this series)".format(image_source))
    return tuple(int(v) for v in start), tuple(int(v) for v in (stop - start))


def _voi_physical_bounds(image, start, box):
    """Axis-aligned (LPS) physical bounds of the tumour voxels, voxel extents included."""
    zs, ys, xs = box.shape
    corners = []
    for cx in (-0.5, xs - 0.5):
        for cy in (-0.5, ys - 0.5):
            for cz in (-0.5, zs - 0.5):
                idx = (start[0] + cx, start[1] + cy, start[2] + cz)
                corners.append(image.TransformContinuousIndexToPhysicalPoint(idx))
    corners = np.asarray(corners)
    return corners.min(axis=0), corners.max(axis=0)


def _resample(image, reference, interpolator, pixel_type, default):
    return sitk.Resample(image, reference, sitk.Transform(), interpolator, default, pixel_type)
