"""The reference side of the benchmarks: the same job done the way MONAI users do it.

A MONAI dictionary-transform chain (LoadImaged, EnsureChannelFirstd, Orientationd,
Spacingd to the model's spacing, CropForegroundd around the VOI with the same margin,
NormalizeIntensityd, ResizeWithPadOrCropd to the model's input size) feeding MONAI's
``resnet10`` built with the same settings as ours (one input channel, one logit, and a
stride-2 first convolution: MONAI's default stride 1 costs 7.8x our FLOPs, docs/design.md §9).

MONAI is a benchmark-only extra (``pip install .[bench]``); nothing in LVIPredictorLib or
lvi_training imports this module. MONAI has no plain "vanilla CNN", so the reference for
``vanilla_cnn_2d`` feeds our own VanillaCNN from the MONAI chain: only the pipeline differs.
A 2D model takes the one axial slice with the largest VOI area after the chain (the usual
MONAI recipe), where ours takes the three largest, area-weighted.
"""

import logging
import math
import warnings

import numpy as np
import SimpleITK as sitk
import torch

warnings.filterwarnings("ignore", module=r"monai\..*")
warnings.filterwarnings("ignore", message=r".*nvImageCodec.*")
# MONAI logs that an optional GPU DICOM decoder is missing on every import; it reads no DICOM here.
logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)

from monai.data import MetaTensor  # noqa: E402
from monai.networks.nets import resnet10  # noqa: E402
from monai.transforms import (  # noqa: E402
    CropForegroundd,
    EnsureChannelFirstd,
    LoadImaged,
    NormalizeIntensityd,
    Orientationd,
    ResizeWithPadOrCropd,
    Spacingd,
)

from LVIPredictorLib import models

KEYS = ("image", "label")


def reference_network(model_name):
    """MONAI's resnet10 for our ResNet10 models (stride-2 stem, as ours); our VanillaCNN otherwise."""
    if model_name == "vanilla_cnn_2d":
        return models.build_model(model_name).eval()
    return resnet10(spatial_dims=models.model_dims(model_name), n_input_channels=1, num_classes=1,
                    conv1_t_stride=2).eval()


def _lps_to_ras_affine(image):
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(image.GetSpacing())[None, :]
    affine[:3, 3] = image.GetOrigin()
    affine[:2] *= -1.0  # LPS (ITK) -> RAS (NIfTI / MONAI)
    return affine


def _meta_tensor(image, dtype):
    # sitk arrays are (z, y, x); MONAI wants (x, y, z) like nibabel gives it.
    array = np.ascontiguousarray(sitk.GetArrayFromImage(image).transpose(2, 1, 0).astype(dtype))
    return MetaTensor(torch.from_numpy(array), affine=torch.as_tensor(_lps_to_ras_affine(image)),
                      meta={"space": "RAS"})


class ReferencePipeline:
    """MONAI chain for one PreprocessSpec (our spacing, margin and input size)."""

    def __init__(self, spec):
        self.dims = spec.dims
        sx, sy, sz = spec.target_spacing
        # Spacingd keeps an axis's native spacing where pixdim is not positive (2D: native z).
        pixdim = (sx, sy, sz if sz else -1.0)
        margin = [int(math.ceil(spec.margin_mm / sx)), int(math.ceil(spec.margin_mm / sy)),
                  int(math.ceil(spec.margin_mm / sz)) if sz else 1]
        cx, cy, cz = spec.crop_size
        size = (cx, cy, cz) if spec.dims == 3 else (cx, cy, -1)
        keys = list(KEYS)
        self._load = LoadImaged(keys, image_only=True)
        self._channel = EnsureChannelFirstd(keys, channel_dim="no_channel")
        self.steps = [
            Orientationd(keys, axcodes="RAS"),
            Spacingd(keys, pixdim=pixdim, mode=("bilinear", "nearest")),
            CropForegroundd(keys, source_key="label", margin=margin, allow_smaller=True),
            NormalizeIntensityd(keys="image"),
            ResizeWithPadOrCropd(keys, spatial_size=size),
        ]

    def read(self, image_path, mask_path):
        return self._channel(self._load({"image": str(image_path), "label": str(mask_path)}))

    def from_memory(self, image, mask):
        """What a MONAI user does with images already in memory (e.g. in Slicer)."""
        return self._channel({"image": _meta_tensor(image, np.float32), "label": _meta_tensor(mask, np.uint8)})

    def preprocess(self, data):
        """Model input (N, 1, ...) as float32: the whole crop (3D) or the largest-VOI slice (2D)."""
        d = dict(data)
        for step in self.steps:
            d = step(d)
        image = d["image"].as_tensor().float()
        if self.dims == 3:
            return image[None]
        # (1, x, y, z): the axial slice (last axis) with the most VOI voxels.
        k = int(torch.argmax((d["label"].as_tensor() > 0).sum(dim=(0, 1, 2))))
        return image[..., k][None]
