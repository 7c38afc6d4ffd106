"""Acquisition grids and the scanner's imperfections: noise, bias field, slice profile.

Coordinates are DICOM patient coordinates (LPS, mm): x towards the patient's left,
y posterior, z superior. Every grid is axial with an identity direction, as breast
MRI is acquired; arrays are indexed (z, y, x) like SimpleITK's GetArrayFromImage.
"""

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.special import ndtri

STORED_MAX = 4095  # 12 bits stored, as Siemens writes MR magnitude images


@dataclass(frozen=True)
class Grid:
    size: tuple  # (nx, ny, nz)
    spacing: tuple  # (sx, sy, sz) mm; sz is the slice spacing
    origin: tuple  # LPS position of voxel (0, 0, 0)
    slice_thickness: float

    def axes(self):
        """1D LPS coordinates along x, y, z (float32)."""
        return tuple((self.origin[i] + self.spacing[i] * np.arange(self.size[i])).astype(np.float32) for i in range(3))

    @property
    def shape(self):
        return (self.size[2], self.size[1], self.size[0])

    def index_box(self, lo, hi):
        """Slices of the array covering the LPS box [lo, hi], clipped to the grid (z, y, x order)."""
        out = []
        for i in (2, 1, 0):
            a = int(np.floor((lo[i] - self.origin[i]) / self.spacing[i]))
            b = int(np.ceil((hi[i] - self.origin[i]) / self.spacing[i])) + 1
            out.append(slice(min(max(a, 0), self.size[i]), min(max(b, 0), self.size[i])))
        return tuple(out)

    def box_axes(self, box):
        """LPS coordinates (x, y, z) of the voxels inside an index box from ``index_box``."""
        x, y, z = self.axes()
        return x[box[2]], y[box[1]], z[box[0]]

    def to_dict(self):
        return {"size": list(self.size), "spacing": list(self.spacing), "origin": list(self.origin),
                "slice_thickness": self.slice_thickness}


@dataclass(frozen=True)
class Protocol:
    """Matrix and voxel size of the two series for one size preset."""

    t2_size: tuple
    t2_spacing: tuple
    dce_size: tuple
    dce_spacing: tuple
    n_post_contrast: int = 3
    phase_interval_min: float = 1.5


# ``full`` is a bilateral axial exam at clinical matrix sizes; ``small`` keeps the
# clinical voxel sizes but a reduced field of view centred on the tumour, large
# enough for a 50 mm tumour plus margin, so tests and benchmarks stay fast.
PRESETS = {
    "full": Protocol(t2_size=(448, 448, 40), t2_spacing=(0.7, 0.7, 4.0),
                     dce_size=(448, 448, 96), dce_spacing=(0.8, 0.8, 1.5)),
    "small": Protocol(t2_size=(112, 112, 16), t2_spacing=(0.7, 0.7, 4.0),
                      dce_size=(96, 96, 44), dce_spacing=(0.8, 0.8, 1.5)),
}


def make_grid(size, spacing, centre):
    """A grid of ``size`` voxels whose centre lies at ``centre`` (LPS); origins rounded to 0.01 mm
    so the header text and the arrays agree exactly."""
    origin = tuple(round(float(centre[i]) - spacing[i] * (size[i] - 1) / 2.0, 2) for i in range(3))
    return Grid(size=tuple(size), spacing=tuple(spacing), origin=origin, slice_thickness=float(spacing[2]))


def acquisition_grids(protocol, centre, rng):
    """The T2 and DCE grids around ``centre``, each with its own small FOV shift, as when the
    technologist re-plans the dynamic series after the T2."""
    t2_centre = np.asarray(centre) + rng.uniform(-3.0, 3.0, 3)
    dce_centre = np.asarray(centre) + rng.uniform(-3.0, 3.0, 3)
    return (make_grid(protocol.t2_size, protocol.t2_spacing, t2_centre),
            make_grid(protocol.dce_size, protocol.dce_spacing, dce_centre))


def bias_field(grid, rng, strength=0.15):
    """Smooth multiplicative coil sensitivity, separable in x, y, z (cheap at any matrix)."""
    x, y, z = grid.axes()
    terms = []
    for coord in (x, y, z):
        k = rng.uniform(0.5, 1.5) * 2 * np.pi / 300.0
        terms.append((strength * np.cos(k * coord + rng.uniform(0, 2 * np.pi))).astype(np.float32))
    return np.exp(terms[2][:, None, None] + terms[1][None, :, None] + terms[0][None, None, :])


def slice_profile(volume, grid):
    """Partial-volume mixing across the slice profile (a slice is thicker than a pixel)."""
    sigma = 0.4 * grid.slice_thickness / grid.spacing[2]
    return gaussian_filter1d(volume, sigma, axis=0, mode="nearest", truncate=3.0)


# Gaussian noise through a 16-bit quantile table: ~10x faster than rng.standard_normal at
# clinical matrix sizes, indistinguishable in the images (tails cut at 4.4 SD), and it
# draws only integers from the generator, which are bit-identical on every platform.
_GAUSS_TABLE = ndtri((np.arange(65536) + 0.5) / 65536).astype(np.float32)


def gaussian_noise(shape, sigma, rng):
    return (sigma * _GAUSS_TABLE)[rng.integers(0, 65536, size=shape, dtype=np.uint16)]


def rician(signal, sigma, rng):
    """Magnitude of a complex signal with Gaussian noise in both channels."""
    real = signal + gaussian_noise(signal.shape, sigma, rng)
    imag = gaussian_noise(signal.shape, sigma, rng)
    real *= real
    imag *= imag
    real += imag
    return np.sqrt(real, out=real)


def to_stored(volume):
    """Round to the 12-bit stored range; int16 so NIfTI and DICOM hold the same integers."""
    return np.clip(np.rint(volume), 0, STORED_MAX).astype(np.int16)
