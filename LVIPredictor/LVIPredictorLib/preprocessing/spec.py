"""What decides what a model sees (:class:`PreprocessSpec`, saved in every model card) and what
preprocessing hands the model (:class:`PreparedCase`)."""

from dataclasses import asdict, dataclass, field
from typing import List, Optional, Tuple

import numpy as np
import SimpleITK as sitk

from LVIPredictorLib.vocabulary import architectures

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
    """The crop a network gets when the CLI asks for nothing else (the recipes override parts)."""
    architecture = architectures.get(model_name)
    if not architecture.is_network:
        raise ValueError("{} reads features, not crops; it has no default crop spec".format(model_name))
    if architecture.dims == 2:
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
    # Each channel's VOI volume on its own series (a fused input has one VOI per series).
    channel_voi_mm3: List[float] = field(default_factory=list)
