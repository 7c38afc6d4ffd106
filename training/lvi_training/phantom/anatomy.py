"""Breast anatomy as continuous fields in patient space (LPS, mm), sampled on any grid.

The same anatomy is sampled by the T2 and the DCE grid, so the two series show one
patient seen by two acquisitions rather than two unrelated pictures. Shapes are soft
(signed distance through a sigmoid) so edges carry partial volume at any voxel size;
the fibroglandular texture comes from one random lattice in patient space,
interpolated separably (cheap at clinical matrix sizes).
"""

import numpy as np
from scipy.special import expit as _sigmoid  # logistic without overflow warnings
from scipy.ndimage import gaussian_filter

TISSUES = ("fat", "fibroglandular", "skin", "muscle", "thorax", "lung", "heart")




def _linear_weights(coord, origin, spacing, n):
    f = np.clip((coord - origin) / spacing, 0.0, n - 1.0001)
    i0 = np.floor(f).astype(np.int64)
    return i0, (f - i0).astype(np.float32)


class LatticeField:
    """A smooth random field stored on a coarse lattice; trilinear sampling done one axis at a time."""

    def __init__(self, rng, lo, hi, spacing):
        self.origin = np.asarray(lo, dtype=np.float64)
        self.spacing = float(spacing)
        n = np.ceil((np.asarray(hi) - self.origin) / spacing).astype(int) + 2  # x, y, z
        raw = rng.standard_normal((n[2], n[1], n[0])).astype(np.float32)
        coarse = gaussian_filter(raw, 6.0 / spacing, mode="wrap")  # lobes of glandular tissue
        fine = gaussian_filter(raw[::-1], 1.2 / spacing, mode="wrap")  # strands within them
        field = 0.65 * coarse / coarse.std() + 0.35 * fine / fine.std()
        self.values = (field / field.std()).astype(np.float32)

    def sample(self, x, y, z):
        v = self.values
        ix, wx = _linear_weights(x, self.origin[0], self.spacing, v.shape[2])
        v = v[:, :, ix] * (1 - wx) + v[:, :, ix + 1] * wx
        iy, wy = _linear_weights(y, self.origin[1], self.spacing, v.shape[1])
        v = v[:, iy, :] * (1 - wy)[:, None] + v[:, iy + 1, :] * wy[:, None]
        iz, wz = _linear_weights(z, self.origin[2], self.spacing, v.shape[0])
        return v[iz] * (1 - wz)[:, None, None] + v[iz + 1] * wz[:, None, None]


class Anatomy:
    """One woman's breasts and chest: shape parameters drawn once, sampled on any grid."""

    def __init__(self, rng, tumour_side):
        self.side = tumour_side  # +1 = left breast (LPS +x), -1 = right
        self.breast_x = rng.uniform(82.0, 95.0)
        self.axes = (rng.uniform(55.0, 68.0), rng.uniform(60.0, 100.0), rng.uniform(55.0, 68.0))  # lateral, depth, cranio-caudal
        self.breast_z = rng.uniform(-5.0, 5.0)
        self.chest_y = rng.uniform(35.0, 45.0)
        self.density = rng.uniform(-0.9, 0.6)  # how much of the breast is glandular (BI-RADS a-d)
        self.heart = (rng.uniform(20.0, 40.0), self.chest_y + rng.uniform(70.0, 85.0), rng.uniform(-35.0, -20.0))
        self.texture = None

    def chest_wall_y(self, x):
        return self.chest_y + 0.0035 * x * x

    def breast_centre(self):
        x = self.side * self.breast_x
        return np.array([x, self.chest_wall_y(x), self.breast_z])

    def tumour_centre(self, rng, max_radius):
        """A point in the glandular part of the breast, at least ``max_radius`` mm deep in
        the breast where the breast allows it."""
        ax, ay, az = self.axes
        while True:
            u = rng.uniform(-1, 1, 3)
            if u @ u <= 1.0:
                break
        x = self.side * self.breast_x + 0.45 * ax * u[0]
        depth = ay * (0.25 + 0.35 * abs(u[1]))
        z = self.breast_z + 0.45 * az * u[2]
        return np.array([x, self.chest_wall_y(x) - max(depth, min(max_radius + 5.0, 0.6 * ay)), z])

    def prepare_texture(self, rng, lo, hi):
        """The glandular texture lattice must cover every grid that will be sampled."""
        self.texture = LatticeField(rng, np.asarray(lo) - 5.0, np.asarray(hi) + 5.0, spacing=1.5)

    def layers(self, grid):
        """Tissue fractions on ``grid`` as layers composited back to front (see ``composite``).

        Each layer is (box, cover, fractions): inside ``box`` (a z-y-x slice tuple) the
        layer covers ``cover`` of each voxel with the given tissue fractions. The chest is
        one 2D layer extruded along z; the heart and each breast are 3D layers in their own
        bounding boxes, so a full-matrix case costs a few passes over the volume, not dozens.
        """
        x, y, z = grid.axes()
        edge = 0.5 * min(grid.spacing[0], grid.spacing[1])
        behind = y[:, None] - self.chest_wall_y(x)[None, :]  # (ny, nx) mm posterior of the chest wall
        torso_r = np.sqrt((x[None, :] / 165.0) ** 2 + ((y[:, None] - self.chest_y - 85.0) / 110.0) ** 2)
        torso = _sigmoid((1.0 - torso_r) * 100.0 / edge)
        body = torso * _sigmoid(behind / edge)
        # A thin layer of subcutaneous fat covers the chest between and around the breasts.
        chest_fat = torso * _sigmoid(-behind / edge) * _sigmoid((behind + 8.0) / edge)
        muscle = body * _sigmoid((18.0 - behind) / edge)
        deep = body - muscle
        lung_r = np.minimum(np.hypot((x[None, :] - 75.0) / 55.0, (behind - 80.0) / 60.0),
                            np.hypot((x[None, :] + 75.0) / 55.0, (behind - 80.0) / 60.0))
        lung = deep * _sigmoid((1.0 - lung_r) * 50.0 / edge)
        thorax = deep - lung
        whole = (slice(0, grid.shape[0]), slice(0, grid.shape[1]), slice(0, grid.shape[2]))
        chest = {"fat": chest_fat[None], "muscle": muscle[None], "thorax": thorax[None], "lung": lung[None]}
        layers = [(whole, None, chest)]

        hx, hy, hz = self.heart
        radii = np.array([55.0, 45.0, 50.0])
        hbox = grid.index_box(np.array(self.heart) - radii - 3.0, np.array(self.heart) + radii + 3.0)
        bx, by, bz = grid.box_axes(hbox)
        if len(bx) and len(by) and len(bz):
            heart_r = np.sqrt(((bz - hz) / radii[2])[:, None, None] ** 2 + (((bx - hx) / radii[0]) ** 2)[None, None, :]
                              + ((by - hy) / radii[1])[None, :, None] ** 2)
            heart = thorax[hbox[1], hbox[2]][None] * _sigmoid((1.0 - heart_r) * 45.0 / edge)
            layers.append((hbox, heart, {"heart": heart}))

        ax, ay, az = self.axes
        for side in (-1, 1):
            cx = side * self.breast_x
            wall = self.chest_wall_y(np.array([cx - ax, cx + ax]))
            lo = np.array([cx - ax - 3.0, self.chest_wall_y(cx) - ay - 3.0, self.breast_z - az - 3.0])
            hi = np.array([cx + ax + 3.0, wall.max() + 3.0, self.breast_z + az + 3.0])
            box = grid.index_box(lo, hi)
            bx, by, bz = grid.box_axes(box)
            if not (len(bx) and len(by) and len(bz)):
                continue
            bbehind = behind[box[1], box[2]]
            v = np.maximum(-bbehind, 0.0) / ay
            r = np.sqrt((((bz - self.breast_z) / az) ** 2)[:, None, None] + ((((bx - cx) / ax) ** 2)[None, :] + v * v)[None])
            d = (r - 1.0) * ay  # approx. mm outside the breast surface
            front = _sigmoid(-bbehind / edge)[None]
            outer = _sigmoid(-d / edge) * front
            inner = _sigmoid(-(d + 1.5) / edge) * front
            glandular = inner * _sigmoid((0.8 - r) / 0.06) * _sigmoid((self.texture.sample(bx, by, bz) + self.density) / 0.25)
            layers.append((box, outer, {"skin": outer - inner, "fat": inner - glandular, "fibroglandular": glandular}))
        return layers


def composite(grid, layers, values):
    """Signal on ``grid`` from anatomy ``layers`` and a tissue -> signal mapping (missing = 0)."""
    box, _, fractions = layers[0]
    flat = sum(f * values.get(t, 0.0) for t, f in fractions.items())
    volume = np.empty(grid.shape, np.float32)
    volume[...] = flat
    for box, cover, fractions in layers[1:]:
        sub = volume[box]
        sub *= 1.0 - cover
        for t, f in fractions.items():
            sub += f * values.get(t, 0.0)
    return volume
