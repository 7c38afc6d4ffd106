"""Small synthetic MR-like volumes with a spherical 'tumour', for core tests.

Built in physical space so the same lesion can be drawn on any grid (other spacing,
rotation, origin), which is what the geometry tests need.
"""

import numpy as np
import SimpleITK as sitk


def make_grid(size=(80, 80, 20), spacing=(0.8, 0.8, 3.0), origin=(-32.0, -32.0, -30.0), direction=None,
              pixel=sitk.sitkInt16):
    img = sitk.Image([int(s) for s in size], pixel)
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(o) for o in origin])
    if direction is not None:
        img.SetDirection([float(d) for d in np.asarray(direction).ravel()])
    return img


def physical_coordinates(grid):
    """(Z, Y, X, 3) array of LPS coordinates of every voxel centre of ``grid``."""
    size = grid.GetSize()
    k, j, i = np.meshgrid(np.arange(size[2]), np.arange(size[1]), np.arange(size[0]), indexing="ij")
    idx = np.stack([i, j, k], axis=-1).astype(np.float64)
    direction = np.asarray(grid.GetDirection()).reshape(3, 3)
    return np.asarray(grid.GetOrigin()) + (idx * np.asarray(grid.GetSpacing())) @ direction.T


def mr_image(grid=None, centre=(2.0, -3.0, 0.0), radius=8.0, seed=0):
    """A smooth textured 'breast' with a bright lesion of ``radius`` mm at ``centre``."""
    grid = grid or make_grid()
    p = physical_coordinates(grid)
    rng = np.random.default_rng(seed)
    waves = np.zeros(p.shape[:3])
    for _ in range(4):
        k = rng.normal(0, 0.15, size=3)
        waves += np.cos(p @ k + rng.uniform(0, 2 * np.pi))
    r = np.linalg.norm(p - np.asarray(centre), axis=-1)
    values = 300 + 40 * waves + 500 / (1 + np.exp((r - radius) / 0.8))
    out = sitk.GetImageFromArray(np.round(values).astype(np.int16))
    out.CopyInformation(grid)
    return sitk.Cast(out, grid.GetPixelID())


def sphere_mask(grid, centre=(2.0, -3.0, 0.0), radius=8.0, label=1):
    p = physical_coordinates(grid)
    inside = np.linalg.norm(p - np.asarray(centre), axis=-1) <= radius
    out = sitk.GetImageFromArray((inside * label).astype(np.uint8))
    out.CopyInformation(grid)
    return out


def rotation_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
