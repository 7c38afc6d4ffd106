"""Grad-CAM heat-maps: which pixels of the crop raised the LVI logit, placed back on the image grid.

The layer each architecture's map is read from is the registry's (``Architecture.heatmap_layer``):
the last convolutional feature map, where the network's evidence is still spatial.
"""

import numpy as np
import SimpleITK as sitk
import torch

from LVIPredictorLib.models import Ensemble
from LVIPredictorLib.vocabulary import architectures


def grad_cam(model, x, architecture):
    """Logits and Grad-CAM maps (one per input row, at input resolution, scaled to [0, 1])."""
    if isinstance(model, Ensemble):
        # The ensemble's own output (every member, every view) is the prediction; the map is the
        # members' mean Grad-CAM on the input as given.
        with torch.inference_mode():
            logits = model(x)
        cams = np.mean([grad_cam(member, x, architecture)[1] for member in model.members], axis=0)
        peak = cams.reshape(cams.shape[0], -1).max(axis=1).clip(min=1e-12)
        return logits, cams / peak.reshape((-1,) + (1,) * (cams.ndim - 1))
    captured = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured["features"] = output

    features_module = getattr(model, architectures.get(architecture).heatmap_layer)
    handle = features_module.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(x)
            logits.sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    a = captured["features"]
    g = a.grad
    reduce_dims = tuple(range(2, a.dim()))
    weights = g.mean(dim=reduce_dims, keepdim=True)
    cam = torch.relu((weights * a).sum(dim=1, keepdim=True))
    mode = "trilinear" if cam.dim() == 5 else "bilinear"
    cam = torch.nn.functional.interpolate(cam, size=tuple(x.shape[2:]), mode=mode, align_corners=False)
    flat = cam.reshape(cam.shape[0], -1)
    peak = flat.max(dim=1, keepdim=True).values.clamp_min(1e-12)
    cam = (flat / peak).reshape(cam.shape)
    return logits.detach(), cam[:, 0].detach().cpu().numpy()


def on_image_grid(cams, prepared, image):
    """Place the crop-grid Grad-CAM into physical space and resample it onto the image grid."""
    reference = prepared.crop_reference
    z, y, x = sitk.GetArrayViewFromImage(reference).shape
    volume = np.zeros((z, y, x), dtype=np.float32)
    if prepared.slice_indices:
        for row, k in enumerate(prepared.slice_indices):
            volume[k] = cams[row]
    else:
        volume[:] = cams[0]
    crop = sitk.GetImageFromArray(volume)
    crop.CopyInformation(reference)
    return sitk.Resample(crop, image, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
