"""ONE path from (image, VOI mask, spec) to model input — shared by training and prediction.

Every choice the paper leaves open lives in :class:`PreprocessSpec`, which is saved in each
model card and read back from there at prediction time, so a model always sees inputs
prepared exactly the way it was trained.

Steps (all in physical space, LPS, as SimpleITK uses):

1. Validate the image (3D, scalar, finite) and the mask (3D, integer labels, label rule).
2. If the mask lies on another grid, resample it onto the image grid with nearest
   neighbour — never reshape by array size. Only the part of the image grid that the mask
   can touch is resampled, which gives the same voxels as resampling the whole grid.
3. Build a small crop grid centred on the VOI bounding box: axis-aligned (the canonical
   LPS orientation), at the target spacing, ``crop_size`` voxels. Image (linear) and mask
   (nearest) are resampled straight onto it. Resampling only the crop — instead of the
   whole volume to the target spacing and then cropping — gives the same voxels for a
   fraction of the work (docs/design.md §9).
4. Normalise inside the crop. ``percentile_clip_zscore`` (the paper recipe's): clip to the
   0.5th/99.5th percentiles, then z-score — MR intensities have no absolute scale, and the
   clip keeps a few hot voxels (vessels, fat-suppression failures) from dominating the
   statistics. ``background_ratio``: clip the top 0.5 %, then divide by the median of the
   crop outside the VOI (the breast tissue around the tumour) and subtract 1. Magnitude MR
   has a true zero, so this keeps what the z-score throws away: how bright the tumour is
   relative to its background, i.e. on DCE how much it enhanced.
   ``mask_channel`` adds the VOI as a last input channel, so the network is told where the
   tumour ends instead of having to find it: ``mask_encoding`` ``binary`` (0/1) or
   ``distance`` — the signed distance to the VOI surface in physical space (depth inside
   positive, clipped at +20 mm / -10 mm, divided by 10 mm). A max-pooling network cannot
   count voxels of a 0/1 mask, so it hardly sees size; a distance map carries the depth of
   the tumour (its size) and the shape of its outline in every voxel. ``distance_thickness``
   adds a second VOI channel: the VOI's thickness along z through each in-plane point (mm,
   capped at 80, divided by 20), identical on every slice, so a 2D network sees the tumour's
   cranio-caudal extent, which no single axial slice shows.
5. 3D models take the whole crop. 2D models take the ``n_slices`` axial planes with the
   largest VOI cross-section, on the native slice positions (no interpolation across
   thick T2 slices); their scores are combined into one patient score by
   :func:`aggregate_slice_scores`, the one rule used in training and prediction.
6. Fused inputs (:func:`preprocess_channels`): the same steps per series, each with its own
   VOI; the grid and slices follow one reference series (DCE, see ``sequences``), every image
   is resampled onto it and normalised on its own, and the channels are stacked.

Defaults and why:
- 1 mm in-plane spacing: the common choice for breast DCE/T2 deep-learning work, close to
  the native 0.7-0.9 mm so little detail is lost.
- 5 mm margin around the VOI: published peritumoral sweeps find 3-5 mm margins work best,
  and oedema/vessels next to the tumour are LVI signs, so the context must be in view.
- 64 x 64 mm in-plane field of view (and 64 mm in z for 3D at 2 mm): holds tumours up to
  ~50 mm with the margin (the study's range); the grid is not rescaled to the tumour, so
  size stays visible to the network. A larger VOI is cut at the edges with a warning.
- 2D: the 3 largest cross-sections, area-weighted — one slice is noisy, and more than a
  few brings in tumour edges that carry little signal.
"""

import math
from typing import List, Sequence

import numpy as np
import SimpleITK as sitk

from LVIPredictorLib.errors import InputError
from LVIPredictorLib.inputs.voi import Channel, agreement, locate_voi
from LVIPredictorLib.preprocessing.spec import (DISTANCE_RANGE_MM, DISTANCE_SCALE_MM, THICKNESS_MAX_MM,
                                                THICKNESS_SCALE_MM, PreparedCase, PreprocessSpec)


def aggregate_slice_scores(probabilities, slice_weights):
    # type: (Sequence[float], Sequence[float]) -> float
    """Patient-level probability of a 2D model: the VOI-area-weighted mean of slice probabilities.

    Averaging probabilities (not logits) keeps one over-confident edge slice from deciding
    the case; area weights let the slices that show most of the tumour count most.
    """
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    w = np.asarray(slice_weights, dtype=np.float64).reshape(-1)
    if p.size == 0 or p.shape != w.shape:
        raise ValueError("need one weight per slice probability")
    return float(np.sum(p * w) / np.sum(w))


def preprocess(image, mask, spec, image_source=None, mask_source=None):
    # type: (sitk.Image, sitk.Image, PreprocessSpec, Optional[str], Optional[str]) -> PreparedCase
    """Turn one image and its VOI mask into model input. Raises InputError on bad input."""
    return preprocess_channels([Channel(image, mask, image_source or "image", mask_source or "VOI mask")], spec)


def preprocess_channels(channels, spec, grid_channel=0):
    # type: (Sequence[Channel], PreprocessSpec, int) -> PreparedCase
    """Several co-located series (e.g. FS-T2WI and DCE, each with its own VOI) as input channels.

    The crop grid, the 2D slice choice and ``crop_reference`` follow ``channels[grid_channel]``
    (image and VOI); every image is resampled onto that grid and normalised on its own, since
    MR intensities of different sequences share no scale. Each VOI is checked on its own series,
    and VOIs that do not overlap are an error: they cannot outline the same tumour.
    """
    spec.validate()
    if not channels:
        raise ValueError("need at least one channel")
    warnings = []  # type: List[str]
    vois = [locate_voi(ch, spec, warnings, named=len(channels) > 1) for ch in channels]
    warnings += agreement(channels, vois, grid_channel, spec)
    reference, ref_voi = channels[grid_channel], vois[grid_channel]

    grid, fov_warnings = _crop_grid(reference.image, ref_voi.lo, ref_voi.hi, spec)
    warnings += fov_warnings
    binary_full = _binary_mask_image(reference.image, ref_voi.start, ref_voi.box)
    crop_mask = _resample(binary_full, grid, sitk.sitkNearestNeighbor, sitk.sitkUInt8, 0)
    msk = sitk.GetArrayViewFromImage(crop_mask)
    planes = [_normalise(sitk.GetArrayFromImage(_resample(ch.image, grid, sitk.sitkLinear, sitk.sitkFloat32,
                                                          float("nan"))), msk, spec, ch.image_source)
              for ch in channels]
    if spec.mask_channel:
        planes.extend(_mask_planes(crop_mask, spec))
    img = np.stack(planes)  # (C, Z, Y, X)

    if spec.dims == 3:
        inputs = img[np.newaxis].astype(np.float32, copy=False)
        weights = np.ones(1, dtype=np.float64)
        slice_indices = []  # type: List[int]
    else:
        areas = msk.reshape(msk.shape[0], -1).sum(axis=1).astype(np.float64)
        order = np.argsort(-areas, kind="stable")
        chosen = [int(i) for i in order[:spec.n_slices] if areas[i] > 0]
        if not chosen:
            raise InputError(reference.mask_source, "the VOI does not cross any axial slice of the crop")
        inputs = img[:, chosen].transpose(1, 0, 2, 3).astype(np.float32, copy=False)
        weights = areas[chosen] / areas[chosen].sum()
        slice_indices = chosen
    return PreparedCase(inputs=np.ascontiguousarray(inputs), slice_weights=weights, warnings=warnings,
                        crop_reference=crop_mask, slice_indices=slice_indices, voi_volume_mm3=ref_voi.volume_mm3,
                        channel_voi_mm3=[v.volume_mm3 for v in vois])


def _binary_mask_image(image, start, box):
    """The binary VOI box as an image on the image grid (a sub-region; its own origin)."""
    out = sitk.GetImageFromArray(box)
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(image.GetDirection())
    out.SetOrigin(image.TransformIndexToPhysicalPoint([int(i) for i in start]))
    return out


def _native_axis_along(image, axis):
    """Index axis of ``image`` most aligned with physical ``axis`` (0=x, 1=y, 2=z)."""
    d = np.asarray(image.GetDirection()).reshape(3, 3)
    return int(np.argmax(np.abs(d[axis, :])))


def _crop_grid(image, lo, hi, spec):
    warnings = []
    centre = (lo + hi) / 2.0
    extent = hi - lo
    sx, sy, sz = spec.target_spacing
    nx, ny, nz = spec.crop_size
    if spec.dims == 2:
        z_axis = _native_axis_along(image, 2)
        sz = float(image.GetSpacing()[z_axis])
        nz = max(1, int(math.ceil((extent[2] + 2 * spec.margin_mm) / sz)))
        # Put the planes on native slice centres so thick T2 slices are not interpolated.
        idx = image.TransformPhysicalPointToContinuousIndex(centre.tolist())
        snapped = list(idx)
        snapped[z_axis] = round(idx[z_axis])
        centre[2] = image.TransformContinuousIndexToPhysicalPoint(snapped)[2]
        if nz % 2 == 0:
            nz += 1
    spacing = np.asarray([sx, sy, sz], dtype=float)
    size = np.asarray([nx, ny, nz], dtype=int)
    fov = spacing * size
    needed = extent + 2 * spec.margin_mm
    axes = "xyz" if spec.dims == 3 else "xy"
    for i, name in enumerate(axes):
        if needed[i] > fov[i] + 1e-6:
            warnings.append("VOI with margin spans {:.0f} mm along {} but the model sees {:.0f} mm; the crop is "
                            "centred on the VOI and its edges are cut".format(needed[i], name, fov[i]))
    origin = centre - (size - 1) / 2.0 * spacing
    grid = sitk.Image([int(v) for v in size], sitk.sitkUInt8)
    grid.SetSpacing(spacing.tolist())
    grid.SetOrigin(origin.tolist())
    grid.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return grid, warnings


def _resample(image, reference, interpolator, pixel_type, default):
    return sitk.Resample(image, reference, sitk.Transform(), interpolator, default, pixel_type)


def _mask_planes(crop_mask, spec):
    if spec.mask_encoding == "binary":
        return [sitk.GetArrayFromImage(crop_mask).astype(np.float32)]
    depth = -sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(crop_mask, insideIsPositive=False,
                                                                 squaredDistance=False, useImageSpacing=True))
    planes = [(np.clip(depth, *DISTANCE_RANGE_MM) / DISTANCE_SCALE_MM).astype(np.float32)]
    if spec.mask_encoding == "distance_thickness":
        # The crop spans the whole VOI along z, so this is the tumour's full cranio-caudal thickness
        # through each in-plane point, the same on every slice of the case.
        voi = sitk.GetArrayViewFromImage(crop_mask) != 0
        thickness = voi.sum(axis=0) * crop_mask.GetSpacing()[2]
        plane = np.minimum(thickness, THICKNESS_MAX_MM) / THICKNESS_SCALE_MM
        planes.append(np.broadcast_to(plane, voi.shape).astype(np.float32))
    return planes


def _normalise(img, voi, spec, source):
    """One channel on the crop grid (NaN where the crop hangs over the image edge); ``voi`` is
    the VOI on the same grid."""
    inside = np.isfinite(img)
    if not inside.any():
        raise InputError(source, "the crop around the VOI lies entirely outside the image")
    values = img[inside]
    lo, hi = np.percentile(values, spec.clip_percentiles)
    if not hi > lo:
        raise InputError(source, "the image is constant around the VOI (all voxels {:g}); it carries no "
                                 "information".format(float(lo)))
    if spec.normalization == "background_ratio":
        return _background_ratio(img, inside, voi, hi, source)
    # Outside the image (crop hanging over the edge) becomes the low percentile: background.
    img = np.where(inside, np.clip(img, lo, hi), lo).astype(np.float32)
    mean = float(img.mean())
    std = float(img.std())
    return (img - mean) / std


def _background_ratio(img, inside, voi, hi, source):
    background = inside & (voi == 0)
    reference = float(np.median(img[background] if background.any() else img[inside]))
    if not reference > 0:
        raise InputError(source, "the tissue around the VOI has a median intensity of {:g}; background-ratio "
                                 "normalisation needs a magnitude image (positive values)".format(reference))
    # Outside the image becomes 0 (no signal), i.e. -1 after the ratio.
    img = np.where(inside, np.clip(img, 0.0, hi), 0.0).astype(np.float32)
    return img / np.float32(reference) - np.float32(1.0)
