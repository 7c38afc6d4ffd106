"""Radiologist-style VOI masks: outlined slice by slice on each series' own grid.

A reader outlines what the slice shows, not the true 3D tumour: each slice's outline
is drawn a pixel too tight, about right, or a pixel too generous, and the faint end
slices of a long tumour are sometimes skipped. That makes the VOI overlap the tumour
well (Dice ~0.8) without being it, like real segmentations.
"""

import numpy as np
from scipy.ndimage import binary_dilation, binary_erosion

TUMOUR_LABEL = 1
SECOND_LABEL = 2  # a small adjacent region outlined separately, to exercise the label rule

_IN_PLANE_CROSS = np.zeros((3, 3, 3), bool)
_IN_PLANE_CROSS[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]


def true_tumour(tumour_fraction):
    """The voxels a perfect reader would include: at least half tumour (or the
    brightest voxels of a tumour smaller than one voxel)."""
    return tumour_fraction >= min(0.5, 0.5 * float(tumour_fraction.max()))


def draw_voi(grid, box, tumour_fraction, rng, tumour=None, second_label=False):
    """uint8 label array on ``grid``: 1 = tumour outline, optionally 2 = an adjacent blob."""
    base = true_tumour(tumour_fraction)
    eroded = binary_erosion(base, _IN_PLANE_CROSS)
    dilated = binary_dilation(base, _IN_PLANE_CROSS)
    drawn = base.copy()
    slices = np.flatnonzero(base.any(axis=(1, 2)))
    choice = rng.choice(3, size=len(slices), p=[0.25, 0.45, 0.30])
    for k, c in zip(slices, choice):
        if c == 0 and eroded[k].sum() >= 0.5 * base[k].sum():
            drawn[k] = eroded[k]
        elif c == 2:
            drawn[k] = dilated[k]
    if len(slices) >= 5 and rng.random() < 0.3:
        drawn[slices[0] if rng.random() < 0.5 else slices[-1]] = False
    labels = np.zeros(grid.shape, np.uint8)
    labels[box] = drawn.astype(np.uint8) * TUMOUR_LABEL
    if second_label and tumour is not None:
        _add_second_label(labels, grid, tumour, rng)
    return labels


def _add_second_label(labels, grid, tumour, rng):
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    centre = tumour.centre + direction * (tumour.radius_along(direction[None])[0] + 2.5)
    radius = max(2.5, 2.0 * grid.spacing[0])
    box = grid.index_box(centre - radius, centre + radius)
    x, y, z = grid.box_axes(box)
    inside = ((x - centre[0])[None, None, :] ** 2 + (y - centre[1])[None, :, None] ** 2
              + (z - centre[2])[:, None, None] ** 2) <= radius * radius
    if not inside.any():  # thick slices can miss a small blob; take its nearest slice
        k = int(np.argmin(np.abs(z - centre[2])))
        inside[k] = ((x - centre[0])[None, :] ** 2 + (y - centre[1])[:, None] ** 2) <= radius * radius
    region = labels[box]
    region[inside & (region == 0)] = SECOND_LABEL
