"""Heat-maps: which voxels of the crop raised the LVI logit, placed back on the image grid.

Three attribution methods, each returning one map per input row at input resolution, scaled to
[0, 1] per row:

- ``gradcam``: the feature map of a layer weighted by the mean gradient of the logit per channel,
  ReLU (Selvaraju et al. 2017). The layer is an attribute path of the network (``"layer3"``,
  ``"body.8"``); the registry (``Architecture.heatmap_layers``) lists the candidates of each
  architecture, last layer first.
- ``gradcam++``: the same feature map, each channel weighted by its positive gradients with the
  per-position coefficients of Chattopadhay et al. 2018 (closed form for an exponential score),
  which spreads the map over several instances of the evidence instead of the strongest one.
- ``occlusion``: the drop of the logit when a patch of the image channels is set to 0 (the
  normalised intensity mean), the VOI channel kept, averaged over the patches covering each voxel
  (Zeiler & Fergus 2014). No layer; the patch size is the registry's
  (``Architecture.occlusion_patch``, half-overlapping patches).

Which method and layer a model uses is its card's ``heatmap`` field (chosen per architecture by
the localisation score of ``benchmarks/heatmap_localisation.py``, see docs/heatmaps.md); a card
without one gets Grad-CAM at the registry's last layer, the behaviour before the field existed.
A map never changes the prediction: the logits returned are those of the plain forward pass.
"""

import itertools

import numpy as np
import SimpleITK as sitk
import torch

from LVIPredictorLib.models import Ensemble
from LVIPredictorLib.vocabulary import architectures

GRADCAM = "gradcam"
GRADCAM_PP = "gradcam++"
OCCLUSION = "occlusion"
METHODS = (GRADCAM, GRADCAM_PP, OCCLUSION)
LAYER_METHODS = (GRADCAM, GRADCAM_PP)


def choice(card):
    """(method, layer) a card asks for; older cards get Grad-CAM at the architecture's last layer."""
    entry = card.get("heatmap") or {}
    method = entry.get("method", GRADCAM)
    if method not in METHODS:
        raise ValueError("model {}: unknown heat-map method {!r} (known: {})".format(
            card.get("model_id"), method, ", ".join(METHODS)))
    layer = entry.get("layer")
    if method in LAYER_METHODS and not layer:
        layer = architectures.get(card["architecture"]).heatmap_layer
    return method, (layer if method in LAYER_METHODS else None)


def describe(method, layer):
    """How a figure names the map, e.g. "Grad-CAM++ at layer3"."""
    names = {GRADCAM: "Grad-CAM", GRADCAM_PP: "Grad-CAM++", OCCLUSION: "occlusion sensitivity"}
    return names[method] + (" at {}".format(layer) if layer else "")


def attribution(model, x, architecture, method=GRADCAM, layer=None, image_channels=1):
    """Logits (of the plain forward pass) and maps (N, *spatial) in [0, 1] for input ``x``.

    ``image_channels``: how many leading channels are images (the rest is the VOI, never occluded).
    """
    if method not in METHODS:
        raise ValueError("unknown heat-map method {!r} (known: {})".format(method, ", ".join(METHODS)))
    with torch.inference_mode():
        logits = model(x)
    if method == OCCLUSION:
        patch = architectures.get(architecture).occlusion_patch
        maps = _occlusion(model, x, logits, patch, image_channels)
    else:
        layer = layer or architectures.get(architecture).heatmap_layer
        members = model.members if isinstance(model, Ensemble) else [model]
        # The ensemble's map is its members' mean map on the input as given.
        maps = np.mean([_cam(member, x, layer, method == GRADCAM_PP) for member in members], axis=0)
    return logits, _scaled(maps)


def grad_cam(model, x, architecture):
    """Grad-CAM at the architecture's last layer (the default of :func:`attribution`)."""
    return attribution(model, x, architecture)


def _scaled(maps):
    peak = maps.reshape(maps.shape[0], -1).max(axis=1).clip(min=1e-12)
    return (maps / peak.reshape((-1,) + (1,) * (maps.ndim - 1))).astype(np.float32)


def _cam(model, x, layer, plus_plus):
    captured = {}

    def keep(_module, _inputs, output):
        output.retain_grad()
        captured["features"] = output

    handle = model.get_submodule(layer).register_forward_hook(keep)
    try:
        with torch.enable_grad():
            # An input that asks for gradients: the hooked layer's output needs them even when no
            # parameter lies before it.
            model(x.detach().clone().requires_grad_(True)).sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    a = captured["features"].detach()
    g = captured["features"].grad
    spatial = tuple(range(2, a.dim()))
    if plus_plus:
        # alpha = g^2 / (2 g^2 + sum(A) g^3): the closed form for the score exp(logit), whose
        # higher derivatives are powers of the first (Chattopadhay et al. 2018, eq. 19).
        g2, g3 = g.pow(2), g.pow(3)
        denominator = 2.0 * g2 + a.sum(dim=spatial, keepdim=True) * g3
        alpha = g2 / torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        weights = (alpha * torch.relu(g)).sum(dim=spatial, keepdim=True)
    else:
        weights = g.mean(dim=spatial, keepdim=True)
    cam = torch.relu((weights * a).sum(dim=1, keepdim=True))
    mode = "trilinear" if cam.dim() == 5 else "bilinear"
    cam = torch.nn.functional.interpolate(cam, size=tuple(x.shape[2:]), mode=mode, align_corners=False)
    return cam[:, 0].cpu().numpy()


def _starts(size, patch):
    """Half-overlapping patch starts covering 0..size (the last one flush with the end)."""
    stride = max(1, patch // 2)
    starts = list(range(0, max(size - patch, 0) + 1, stride))
    if starts[-1] + patch < size:
        starts.append(size - patch)
    return starts


def _occlusion(model, x, logits, patch, image_channels, batch_positions=16):
    spatial = tuple(x.shape[2:])
    patch = tuple(min(p, s) for p, s in zip(patch, spatial))
    positions = list(itertools.product(*[_starts(s, p) for s, p in zip(spatial, patch)]))
    drop = np.zeros((x.shape[0],) + spatial, np.float64)
    cover = np.zeros(spatial, np.float64)
    base = logits.float().reshape(-1).cpu().numpy()
    with torch.inference_mode():
        for chunk_start in range(0, len(positions), batch_positions):
            chunk = positions[chunk_start:chunk_start + batch_positions]
            batch = x.repeat(len(chunk), *([1] * (x.dim() - 1)))
            for i, start in enumerate(chunk):
                window = tuple(slice(s, s + p) for s, p in zip(start, patch))
                rows = slice(i * x.shape[0], (i + 1) * x.shape[0])
                batch[(rows, slice(0, image_channels)) + window] = 0.0
            occluded = model(batch).float().reshape(len(chunk), x.shape[0]).cpu().numpy()
            for i, start in enumerate(chunk):
                window = tuple(slice(s, s + p) for s, p in zip(start, patch))
                lost = np.maximum(base - occluded[i], 0.0)
                drop[(slice(None),) + window] += lost.reshape((-1,) + (1,) * len(spatial))
                cover[window] += 1.0
    return drop / np.maximum(cover, 1.0)


def on_image_grid(cams, prepared, image):
    """Place the crop-grid map into physical space and resample it onto the image grid."""
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
