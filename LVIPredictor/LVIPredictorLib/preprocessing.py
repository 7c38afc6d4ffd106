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
   fraction of the work (DESIGN §9).
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
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from .errors import InputError
from .io import same_geometry

# Models per input dimensionality (the model registry lives in models.py).
_MODEL_DIMS = {"vanilla_cnn_2d": 2, "resnet10_2d": 2, "resnet10_3d": 3}

_FLOAT_TYPES = (sitk.sitkFloat32, sitk.sitkFloat64)
NORMALIZATIONS = ("percentile_clip_zscore", "background_ratio")
MASK_ENCODINGS = ("binary", "distance", "distance_thickness")
DISTANCE_SCALE_MM, DISTANCE_RANGE_MM = 10.0, (-10.0, 20.0)
THICKNESS_SCALE_MM, THICKNESS_MAX_MM = 20.0, 80.0


@dataclass
class PreprocessSpec:
    """Everything that decides what a model sees. JSON-serialisable via :meth:`to_dict`."""

    dims: int = 3
    # (x, y, z) in mm. For 2D, z is None: keep the native slice spacing.
    target_spacing: Tuple[float, float, Optional[float]] = (1.0, 1.0, 2.0)
    # (x, y, z) voxels. For 2D, z is ignored: the slab covers the VOI and n_slices are picked.
    crop_size: Tuple[int, int, int] = (64, 64, 32)
    margin_mm: float = 5.0
    clip_percentiles: Tuple[float, float] = (0.5, 99.5)
    normalization: str = "percentile_clip_zscore"
    n_slices: int = 1
    # The VOI on the crop grid as an extra input channel (after the image channels).
    mask_channel: bool = False
    mask_encoding: str = "binary"
    # None: any non-zero voxel is tumour (ITK-SNAP default). An int: only that label.
    label: Optional[int] = None
    # Below this VOI volume the prediction carries a warning (a 5 mm sphere is 65 mm^3).
    min_voi_mm3: float = 65.0
    version: int = 1

    def to_dict(self):
        d = asdict(self)
        d["target_spacing"] = list(self.target_spacing)
        d["crop_size"] = list(self.crop_size)
        d["clip_percentiles"] = list(self.clip_percentiles)
        return d

    @classmethod
    def from_dict(cls, d):
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError("unknown preprocessing fields: {}".format(", ".join(sorted(unknown))))
        kwargs = dict(d)
        for key in ("target_spacing", "crop_size", "clip_percentiles"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        spec = cls(**kwargs)
        spec.validate()
        return spec

    def validate(self):
        if self.dims not in (2, 3):
            raise ValueError("dims must be 2 or 3, got {!r}".format(self.dims))
        if self.normalization not in NORMALIZATIONS:
            raise ValueError("unknown normalization {!r} (known: {})".format(self.normalization,
                                                                          ", ".join(NORMALIZATIONS)))
        if self.dims == 3 and self.target_spacing[2] is None:
            raise ValueError("3D preprocessing needs a z target spacing")
        if self.n_slices < 1:
            raise ValueError("n_slices must be >= 1")
        if self.mask_encoding not in MASK_ENCODINGS:
            raise ValueError("unknown mask_encoding {!r} (known: {})".format(self.mask_encoding,
                                                                          ", ".join(MASK_ENCODINGS)))

    def input_channels(self, n_images):
        # type: (int) -> int
        """Model input channels for ``n_images`` image channels (one per sequence)."""
        return n_images + (self.voi_channels() if self.mask_channel else 0)

    def voi_channels(self):
        """How many channels the VOI takes when ``mask_channel`` is on."""
        return 2 if self.mask_encoding == "distance_thickness" else 1

    def model_input_size(self):
        """Spatial size in array order: (Y, X) for 2D, (Z, Y, X) for 3D."""
        x, y, z = self.crop_size
        return (y, x) if self.dims == 2 else (z, y, x)


def default_spec(model_name):
    # type: (str) -> PreprocessSpec
    dims = _MODEL_DIMS.get(model_name)
    if dims is None:
        raise ValueError("unknown model {!r}".format(model_name))
    if dims == 2:
        return PreprocessSpec(dims=2, target_spacing=(1.0, 1.0, None), crop_size=(64, 64, 1), n_slices=3)
    return PreprocessSpec(dims=3, target_spacing=(1.0, 1.0, 2.0), crop_size=(64, 64, 32), n_slices=1)


@dataclass
class PreparedCase:
    """Model-ready input for one (image, mask) pair."""

    # 3D: (1, 1, Z, Y, X); 2D: (k, 1, Y, X), one row per selected slice, largest VOI first.
    inputs: np.ndarray
    # One weight per row of ``inputs``, summing to 1 (VOI areas for 2D; [1.0] for 3D).
    slice_weights: np.ndarray
    warnings: List[str] = field(default_factory=list)
    # Geometry of the crop grid (a uint8 mask of the VOI on it), to map heat-maps back.
    crop_reference: Optional[sitk.Image] = None
    # z indices (in crop_reference) of the rows of ``inputs`` (2D); [] for 3D.
    slice_indices: List[int] = field(default_factory=list)
    voi_volume_mm3: float = 0.0


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
                            "(choose one with `lvi predict --label N`, or the Slicer module's label "
                            "setting)".format(labels))
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
class _Voi:
    start: Tuple[int, int, int]  # index (x, y, z) of ``box`` in the image
    box: np.ndarray              # binary (Z, Y, X) on the image grid
    lo: np.ndarray               # physical (LPS) bounds, voxel extents included
    hi: np.ndarray
    volume_mm3: float


# VOIs of one tumour drawn on two series: centres further apart than this suggest patient
# motion between the series or a different lesion, worth a look before trusting a fused input.
FUSED_VOI_WARN_MM = 10.0


def spec_from_dict(d):
    """The input spec a model card (or cache job) describes: CNN crops, or radiomics features."""
    if isinstance(d, dict) and d.get("kind") == "radiomics":
        from .radiomics import RadiomicsSpec

        return RadiomicsSpec.from_dict(d)
    return PreprocessSpec.from_dict(d)


def prepare_input(channels, spec, sequence_names, grid_channel=0):
    """THE path from images + VOIs to model input, for training and prediction alike.

    CNN specs crop and normalise (:func:`preprocess_channels`); radiomics specs compute the
    feature vector (``radiomics.extract``). Both validate images and VOIs the same way.
    """
    if getattr(spec, "kind", None) == "radiomics":
        from . import radiomics

        return radiomics.extract(channels, spec, sequence_names, grid_channel=grid_channel)
    return preprocess_channels(channels, spec, grid_channel=grid_channel)


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
    vois = [_locate_voi(ch, spec, warnings, named=len(channels) > 1) for ch in channels]
    warnings += _agreement(channels, vois, grid_channel, spec)
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
                        crop_reference=crop_mask, slice_indices=slice_indices, voi_volume_mm3=ref_voi.volume_mm3)


def voi_agreement(channels, spec, grid_channel=0):
    # type: (Sequence[Channel], PreprocessSpec, int) -> List[str]
    """The checks :func:`preprocess_channels` makes between the channels' VOIs, without building
    the input (cohort validation uses it): InputError when they cannot outline one tumour, else
    the warnings."""
    vois = [_locate_voi(ch, spec, [], named=True) for ch in channels]
    return _agreement(channels, vois, grid_channel, spec)


def locate_voi(channel, spec, warnings, named):
    """Validate one channel and find its VOI on its own image grid (the checks every model input makes)."""
    return _locate_voi(channel, spec, warnings, named)


def voi_agreement_of(channels, vois, grid_channel, spec):
    """Warnings (or InputError) from comparing located VOIs, as :func:`preprocess_channels` does."""
    return _agreement(channels, vois, grid_channel, spec)


def _locate_voi(channel, spec, warnings, named):
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
    return _Voi(start=start, box=box, lo=lo, hi=hi, volume_mm3=volume)


def _agreement(channels, vois, grid_channel, spec):
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


# --- validation -----------------------------------------------------------------------

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


# --- mask onto the image grid -----------------------------------------------------------

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


def _binary_mask_image(image, start, box):
    """The binary VOI box as an image on the image grid (a sub-region; its own origin)."""
    out = sitk.GetImageFromArray(box)
    out.SetSpacing(image.GetSpacing())
    out.SetDirection(image.GetDirection())
    out.SetOrigin(image.TransformIndexToPhysicalPoint([int(i) for i in start]))
    return out


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


# --- the crop grid ---------------------------------------------------------------------

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
