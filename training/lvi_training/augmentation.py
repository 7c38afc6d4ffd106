"""Augmentation of the training samples, on the cached tensors (so it costs microseconds): left-right flip
(breasts are mirror images), for 3D also a cranio-caudal flip, in-plane shifts of up to
4 voxels (replicate padding) and an intensity scale of x[0.9, 1.1] plus an offset of
[-0.1, 0.1] (z-score units) — small, label-preserving changes. No anterior-posterior
flip: it would put the chest wall on the wrong side. ``strong`` (the small-data recipe)
adds an in-plane rotation by any angle — the LVI signs are around the tumour and have no
orientation — and doubles the intensity ranges. Intensity changes never touch the VOI
channel; rotations move it with the image (nearest neighbour, so it stays 0/1).

Every draw of an epoch is indexed by the sample and seeded by the caller from (seed, fold, epoch),
so an epoch draws the same whether it runs after a resume or split over several processes.
"""

import math

import torch
import torch.nn.functional as F

MAX_SHIFT_VOXELS = 4
INTENSITY_SCALE = 0.1
INTENSITY_OFFSET = 0.1


def augmentation_parameters(n_samples, seed, strength="paper", image_dropout=0.0, image_channels=1,
                            per_channel=False):
    """Per-sample augmentation draws for one epoch (indexed by sample, so world-size independent).

    ``blank_image`` is (n_samples, image_channels): one draw per sample shared by every image
    channel, or with ``per_channel`` one draw per channel, so a fused model also sees each
    sequence without the other and cannot lean on one of them alone.
    """
    g = torch.Generator().manual_seed(seed)
    draws = torch.rand(n_samples, image_channels if per_channel else 1,
                       generator=torch.Generator().manual_seed(seed ^ 0x5EED))
    blank = (draws < image_dropout).expand(n_samples, image_channels)
    wider = 2.0 if strength == "strong" else 1.0
    params = {"flip_x": torch.rand(n_samples, generator=g) < 0.5,
              "flip_z": torch.rand(n_samples, generator=g) < 0.5,
              "shift": torch.randint(-MAX_SHIFT_VOXELS, MAX_SHIFT_VOXELS + 1, (n_samples, 2), generator=g),
              "scale": 1.0 + (torch.rand(n_samples, generator=g) * 2 - 1) * INTENSITY_SCALE * wider,
              "offset": (torch.rand(n_samples, generator=g) * 2 - 1) * INTENSITY_OFFSET * wider}
    if image_dropout > 0:
        params["blank_image"] = blank
    if strength == "strong":
        params["angle"] = torch.rand(n_samples, generator=g) * (2 * math.pi)
    elif strength != "paper":
        raise ValueError("unknown augmentation {!r}".format(strength))
    return params


def augment(x, params, idx, image_channels=None):
    """Apply the draws of samples ``idx`` to the batch ``x`` (N, C, [Z,] Y, X).

    Channels from ``image_channels`` on (the VOI channel) get the geometric changes only.
    """
    idx = idx.to(params["shift"].device)
    view = (-1,) + (1,) * (x.dim() - 1)
    flip_x = params["flip_x"][idx].to(x.device).reshape(view)
    x = torch.where(flip_x, x.flip(-1), x)
    if x.dim() == 5:
        flip_z = params["flip_z"][idx].to(x.device).reshape(view)
        x = torch.where(flip_z, x.flip(2), x)
    if "angle" in params:
        x = _rotate_in_plane(x, params["angle"][idx].to(x.device), image_channels)
    x = _shift(x, params["shift"][idx].to(x.device))
    scale = params["scale"][idx].to(x.device).reshape(view)
    offset = params["offset"][idx].to(x.device).reshape(view)
    if image_channels is None or image_channels >= x.shape[1]:
        return x * scale + offset
    images = x[:, :image_channels] * scale + offset
    if "blank_image" in params:
        # Modality dropout: some samples show only the VOI, so the network must learn what the outline
        # says instead of memorising cases by their image; 0 is the background level of either normalisation.
        keep = (~params["blank_image"][idx].to(x.device)).to(x.dtype)
        images = images * keep.reshape(keep.shape + (1,) * (x.dim() - 2))
    return torch.cat([images, x[:, image_channels:]], dim=1)


def _rotate_in_plane(x, angles, image_channels):
    """Rotate each sample about the crop centre in the axial plane (3D: every slice alike).

    Images bilinear, the VOI channel nearest neighbour; outside the crop, border values.
    """
    cos, sin = torch.cos(angles), torch.sin(angles)
    zeros = torch.zeros_like(cos)
    if x.dim() == 4:
        theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    else:  # grid_sample's 3D coordinates are (x, y, z): rotate x and y, keep z
        ones = torch.ones_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zeros, zeros], 1), torch.stack([sin, cos, zeros, zeros], 1),
                             torch.stack([zeros, zeros, ones, zeros], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    split = x.shape[1] if image_channels is None else min(image_channels, x.shape[1])
    parts = [F.grid_sample(x[:, :split], grid, mode="bilinear", padding_mode="border", align_corners=False)]
    if split < x.shape[1]:
        parts.append(F.grid_sample(x[:, split:], grid, mode="nearest", padding_mode="border", align_corners=False))
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def _shift(x, shifts):
    """Shift each sample in-plane by its own (dy, dx), replicating edge voxels (one gather, no loop)."""
    m = MAX_SHIFT_VOXELS
    pad = (m, m, m, m) + ((0, 0) if x.dim() == 5 else ())
    padded = F.pad(x, pad, mode="replicate").movedim((-2, -1), (1, 2))  # (N, Y+2m, X+2m, C[, Z])
    n, height, width = x.shape[0], x.shape[-2], x.shape[-1]
    rows = (m + shifts[:, 0])[:, None] + torch.arange(height, device=x.device)[None, :]
    cols = (m + shifts[:, 1])[:, None] + torch.arange(width, device=x.device)[None, :]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].movedim((1, 2), (-2, -1)).contiguous()
