"""A compact radiomics feature set from the VOI and its peritumoral ring — the LVI literature's baseline.

Most published LVI models are radiomics + logistic regression (AUC 0.76-0.86). This module
computes a small, documented set of such features with SimpleITK and numpy only (pyradiomics
has no wheels for current Pythons), so the baseline runs wherever the CNNs run, Slicer
included. It is the radiomics model's preprocessing: training and prediction both call it
through :func:`preprocessing.prepare_input`, with the :class:`RadiomicsSpec` stored in the
model card.

Per series (features are prefixed ``t2.`` / ``dce.``), on the series' own grid, in mm:

- shape of the VOI (SimpleITK ``LabelShapeStatisticsImageFilter``, voxel-based, no surface
  mesh): ``log_volume`` (voxel count x voxel volume, mm^3: IBSI's volume by voxel counting);
  ``log_max_voxel_centre_distance`` (mm: the largest distance between two VOI voxel centres,
  SimpleITK's Feret diameter; IBSI's maximum 3D diameter is measured between mesh vertices, half a
  voxel further out); ``itk_roundness`` (SimpleITK's roundness: the surface of the sphere of the
  VOI's voxel volume over ITK's surface estimate; not IBSI's mesh-based sphericity);
  ``itk_perimeter_to_volume`` (1/mm: ITK's surface estimate, which it calls perimeter, over the
  voxel volume; not IBSI's mesh surface-to-volume ratio); ``major_to_minor_axis_ratio`` and
  ``minor_to_least_axis_ratio`` (square roots of ratios of the principal moments of the voxel
  centres, SimpleITK's elongation and flatness: sqrt(lambda_major / lambda_minor), the reciprocal of
  IBSI's elongation, and sqrt(lambda_minor / lambda_least), IBSI's elongation over IBSI's flatness);

- first-order statistics of the VOI's intensities relative to the breast background (the
  median of the tissue 5-15 mm outside the VOI; magnitude MR has a true zero, so the ratio is
  meaningful where absolute values are not): ``mean``, ``sd`` (population), ``p10``, ``p90``,
  ``skewness``, ``pearson_kurtosis`` (the fourth standardised moment, IBSI's (excess) kurtosis
  + 3, as pyradiomics computes it), ``entropy`` (of a histogram of ``histogram_bins`` bins over
  the VOI's range, log2);
- texture: a grey-level co-occurrence matrix of the VOI (16 levels over its 1st-99th
  percentile range, the four in-plane neighbour directions — slices are thick — symmetric,
  pooled into one matrix): ``glcm_contrast``, ``glcm_homogeneity`` (IBSI's inverse difference
  moment, sum p / (1 + (i - j)^2)), ``glcm_energy`` (IBSI's angular second moment),
  ``glcm_correlation``, ``glcm_entropy`` (joint entropy, log2);
- the peritumoral ring (0 to ``ring_mm`` outside the VOI), where oedema and vessels show:
  ``ring_mean``, ``ring_p90``, ``ring_sd`` (background-relative) and ``ring_to_voi`` (mean
  ratio); ``rim_to_core``: the VOI's outer 2 mm against its inside (rim enhancement);
- DCE with the dynamic series (``dce_dynamic``): ``wash_in`` = mean (S2 - S1) / S1 and
  ``wash_out`` = mean (S_last - S2) / S2 inside the VOI, from the pre-contrast phase, the
  model's phase and the last phase.

Until they were renamed (``RENAMED``) six of these carried IBSI names whose definitions the
values do not follow. The ones that keep an IBSI name agree with pyradiomics 3.0.1 on the real
breast case in Testing/Data/pyradiomics_breast1 (Testing/Python/test_radiomics_reference.py).

Everything is a pure function of (images, VOIs, spec); bad input gets the same errors as
the CNN path (they share the VOI checks of ``inputs.voi``).
"""

import math
from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from LVIPredictorLib.errors import InputError
from LVIPredictorLib.inputs.voi import agreement, locate_voi
from LVIPredictorLib.preprocessing.spec import PreparedCase

KIND = "radiomics"
GLCM_OFFSETS = ((0, 1), (1, 0), (1, 1), (1, -1))  # (dy, dx): in-plane neighbours
RIM_MM = 2.0

SHAPE = ("log_volume", "log_max_voxel_centre_distance", "itk_roundness", "itk_perimeter_to_volume",
         "major_to_minor_axis_ratio", "minor_to_least_axis_ratio")
FIRST_ORDER = ("mean", "sd", "p10", "p90", "skewness", "pearson_kurtosis", "entropy")
# Names these features had until they were renamed to say what they compute (the values did not
# change): they promised IBSI definitions the values do not follow. A card written with the old
# names still loads, read through this map (``current_names``): refusing it would break models
# whose predictions are exactly what they were.
RENAMED = {"log_max_diameter": "log_max_voxel_centre_distance", "sphericity": "itk_roundness",
           "surface_to_volume": "itk_perimeter_to_volume", "elongation": "major_to_minor_axis_ratio",
           "flatness": "minor_to_least_axis_ratio", "kurtosis": "pearson_kurtosis"}
TEXTURE = ("glcm_contrast", "glcm_homogeneity", "glcm_energy", "glcm_correlation", "glcm_entropy")
RING = ("ring_mean", "ring_p90", "ring_sd", "ring_to_voi", "rim_to_core")
KINETICS = ("wash_in", "wash_out")


@dataclass
class RadiomicsSpec:
    """What decides the features. JSON-serialisable; stored as the card's ``preprocessing``."""

    kind: str = KIND
    ring_mm: float = 5.0
    background_mm: float = 10.0  # thickness of the background shell beyond the ring
    glcm_levels: int = 16
    histogram_bins: int = 32
    dce_dynamic: bool = False
    label: Optional[int] = None
    min_voi_mm3: float = 65.0
    version: int = 1

    @property
    def margin_mm(self):
        """The context around the VOI (how far apart two series' VOIs may lie and still be one tumour)."""
        return self.ring_mm

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError("unknown radiomics fields: {}".format(", ".join(sorted(unknown))))
        spec = cls(**d)
        spec.validate()
        return spec

    def validate(self):
        if self.kind != KIND:
            raise ValueError("radiomics spec kind must be {!r}".format(KIND))
        if not self.ring_mm > 0 or not self.background_mm > 0:
            raise ValueError("ring_mm and background_mm must be positive")
        if self.glcm_levels < 2 or self.histogram_bins < 2:
            raise ValueError("glcm_levels and histogram_bins must be at least 2")


def feature_names(spec, sequence_names):
    # type: (RadiomicsSpec, Sequence[str]) -> List[str]
    """Feature names in vector order for the series ``sequence_names`` (e.g. ("t2", "dce"))."""
    names = []
    for seq in sequence_names:
        own = SHAPE + FIRST_ORDER + TEXTURE + RING
        if seq == "dce" and spec.dce_dynamic:
            own += KINETICS
        names += ["{}.{}".format(seq, n) for n in own]
    return names


def current_names(names):
    # type: (Sequence[str]) -> List[str]
    """``names`` (``<series>.<feature>``) with the features renamed since (``RENAMED``) under their new names."""
    out = []
    for name in names:
        series, _, feature = str(name).rpartition(".")
        out.append("{}.{}".format(series, RENAMED[feature]) if series and feature in RENAMED else name)
    return out


def extract(channels, spec, sequence_names, grid_channel=0):
    """Feature vector of one case: a ``PreparedCase`` with ``inputs`` (1, F) float32.

    ``channels`` are ``inputs.voi.Channel`` objects in ``sequence_names`` order; a DCE
    channel of a ``dce_dynamic`` spec carries its series' phases in ``Channel.phases``.
    """

    warnings = []  # type: List[str]
    vois = [locate_voi(ch, spec, warnings, named=len(channels) > 1) for ch in channels]
    warnings += agreement(channels, vois, grid_channel, spec)
    values = []
    for name, channel, voi in zip(sequence_names, channels, vois):
        values += _series_features(channel, voi, spec, dynamic=(name == "dce" and spec.dce_dynamic))
    vector = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(vector)):
        bad = [n for n, v in zip(feature_names(spec, sequence_names), vector) if not np.isfinite(v)]
        raise InputError(channels[0].image_source, "radiomics features are not finite ({}); the VOI or the image "
                                                   "is degenerate".format(", ".join(bad)))
    return PreparedCase(inputs=vector.astype(np.float32)[np.newaxis], slice_weights=np.ones(1), warnings=warnings,
                        crop_reference=None, slice_indices=[], voi_volume_mm3=vois[grid_channel].volume_mm3,
                        channel_voi_mm3=[v.volume_mm3 for v in vois])


# --- one series ----------------------------------------------------------------------------

def _region(image, voi, reach_mm):
    """Index slices (z, y, x) of the VOI box grown by ``reach_mm``, clipped to the image."""
    spacing = image.GetSpacing()
    size = image.GetSize()
    box = voi.box.shape  # (Z, Y, X)
    out = []
    for axis in (2, 1, 0):  # z, y, x
        pad = int(math.ceil(reach_mm / spacing[axis]))
        start = voi.start[axis] - pad
        stop = voi.start[axis] + box[2 - axis] + pad
        out.append(slice(max(start, 0), min(stop, size[axis])))
    return tuple(out)


def _series_features(channel, voi, spec, dynamic):
    image = channel.image
    reach = spec.ring_mm + spec.background_mm
    region = _region(image, voi, reach + 1.0)
    arr = sitk.GetArrayViewFromImage(image)[region].astype(np.float64)
    inside = np.zeros(arr.shape, dtype=np.uint8)
    z0, y0, x0 = (region[0].start, region[1].start, region[2].start)
    zs, ys, xs = voi.box.shape
    oz, oy, ox = voi.start[2] - z0, voi.start[1] - y0, voi.start[0] - x0
    inside[oz:oz + zs, oy:oy + ys, ox:ox + xs] = voi.box
    mask_image = sitk.GetImageFromArray(inside)
    mask_image.SetSpacing(image.GetSpacing())
    # Physical distance to the VOI surface (negative inside), in mm on this grid's spacing.
    distance = sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(mask_image, insideIsPositive=False,
                                                                   squaredDistance=False, useImageSpacing=True))
    tumour = inside.astype(bool)
    ring = (~tumour) & (distance > 0) & (distance <= spec.ring_mm)
    shell = (~tumour) & (distance > spec.ring_mm) & (distance <= reach)
    reference = _background_level(arr, shell, tumour, channel.image_source)
    relative = arr / reference

    features = _shape(mask_image, channel.mask_source)
    features += _first_order(relative[tumour], spec.histogram_bins)
    features += _glcm(np.where(tumour, relative, np.nan), spec.glcm_levels)
    features += _ring(relative, tumour, ring, distance)
    if dynamic:
        features += _kinetics(channel, region, tumour)
    return features


def _background_level(arr, shell, tumour, source):
    values = arr[shell] if shell.any() else arr[~tumour]
    if values.size == 0:
        raise InputError(source, "no tissue around the VOI inside the image: the breast background cannot be measured")
    level = float(np.median(values))
    if not level > 0:
        raise InputError(source, "the tissue around the VOI has a median intensity of {:g}; radiomics needs a magnitude "
                                 "image (positive values)".format(level))
    return level


def shape_statistics(mask_image, source, feret=False):
    """SimpleITK's label shape statistics of a 0/1 VOI (label 1), perimeter included; the
    training side task reads its roundness from here too, so both mean the same number."""
    stats = sitk.LabelShapeStatisticsImageFilter()
    if feret:
        stats.ComputeFeretDiameterOn()
    stats.ComputePerimeterOn()
    stats.Execute(mask_image)
    if not stats.HasLabel(1):
        raise InputError(source, "the VOI mask is empty (no tumour voxels)")
    return stats


def _shape(mask_image, source):
    stats = shape_statistics(mask_image, source, feret=True)
    volume = stats.GetPhysicalSize(1)
    surface = stats.GetPerimeter(1)
    return [math.log(volume), math.log(max(stats.GetFeretDiameter(1), 1e-3)), stats.GetRoundness(1),
            surface / volume, stats.GetElongation(1), stats.GetFlatness(1)]


def _first_order(values, bins):
    mean = float(values.mean())
    sd = float(values.std())
    p10, p90 = np.percentile(values, (10, 90))
    centred = values - mean
    skewness = float(np.mean(centred ** 3) / sd ** 3) if sd > 0 else 0.0
    kurtosis = float(np.mean(centred ** 4) / sd ** 4) if sd > 0 else 0.0
    lo, hi = float(values.min()), float(values.max())
    if hi > lo:
        counts, _ = np.histogram(values, bins=bins, range=(lo, hi))
        p = counts[counts > 0] / values.size
        entropy = float(-np.sum(p * np.log2(p)))
    else:
        entropy = 0.0
    return [mean, sd, float(p10), float(p90), skewness, kurtosis, entropy]


def _glcm(values, levels):
    """Texture of the VOI (NaN outside it): pooled symmetric in-plane co-occurrence matrix."""
    finite = values[np.isfinite(values)]
    lo, hi = np.percentile(finite, (1, 99))
    q = np.full(values.shape, -1, dtype=np.int64)
    inside = np.isfinite(values)
    scaled = (values[inside] - lo) / (hi - lo) * levels if hi > lo else np.zeros(int(inside.sum()))
    q[inside] = np.clip(np.floor(scaled), 0, levels - 1).astype(np.int64)
    counts = np.zeros(levels * levels, dtype=np.float64)
    _, ny, nx = q.shape
    for dy, dx in GLCM_OFFSETS:
        a = q[:, max(0, -dy):ny - max(0, dy), max(0, -dx):nx - max(0, dx)]
        b = q[:, max(0, dy):ny - max(0, -dy), max(0, dx):nx - max(0, -dx)]
        valid = (a >= 0) & (b >= 0)
        counts += np.bincount(a[valid] * levels + b[valid], minlength=levels * levels)
    matrix = counts.reshape(levels, levels)
    matrix = matrix + matrix.T
    total = matrix.sum()
    if total == 0:  # a VOI without two neighbouring voxels in any slice: no texture to measure
        return [0.0, 1.0, 1.0, 0.0, 0.0]
    p = matrix / total
    i, j = np.indices(p.shape)
    contrast = float(np.sum(p * (i - j) ** 2))
    homogeneity = float(np.sum(p / (1.0 + (i - j) ** 2)))
    energy = float(np.sum(p * p))
    mu = float(np.sum(i * p))
    var = float(np.sum(p * (i - mu) ** 2))
    correlation = float(np.sum(p * (i - mu) * (j - mu)) / var) if var > 0 else 1.0
    nz = p[p > 0]
    entropy = float(-np.sum(nz * np.log2(nz)))
    return [contrast, homogeneity, energy, correlation, entropy]


def _ring(relative, tumour, ring, distance):
    voi_mean = float(relative[tumour].mean())
    if ring.any():
        values = relative[ring]
        ring_mean, ring_p90, ring_sd = float(values.mean()), float(np.percentile(values, 90)), float(values.std())
    else:  # the VOI fills the image out to its edge: no ring to measure, report the VOI itself
        ring_mean, ring_p90, ring_sd = voi_mean, voi_mean, 0.0
    rim = tumour & (distance >= -RIM_MM)
    core = tumour & (distance < -RIM_MM)
    rim_to_core = float(relative[rim].mean() / relative[core].mean()) if core.any() and rim.any() else 1.0
    return [ring_mean, ring_p90, ring_sd, ring_mean / voi_mean if voi_mean else 0.0, rim_to_core]


def _kinetics(channel, region, tumour):
    phases = channel.phases
    if not phases or len(phases) < 3:
        raise InputError(channel.image_source, "this radiomics model needs the whole dynamic DCE series (pre-contrast, "
                                               "the model's phase and a later one); got {} phase(s)".format(
                                                   len(phases or [])))
    means = []
    for index in (0, channel.phase_index, len(phases) - 1):
        phase = phases[index]
        if phase.GetSize() != channel.image.GetSize():
            raise InputError(channel.image_source, "the dynamic series' phases differ in size")
        means.append(float(sitk.GetArrayViewFromImage(phase)[region].astype(np.float64)[tumour].mean()))
    pre, chosen, last = means
    if not pre > 0 or not chosen > 0:
        raise InputError(channel.image_source, "non-positive signal in the VOI of the dynamic series")
    return [(chosen - pre) / pre, (last - chosen) / chosen]
