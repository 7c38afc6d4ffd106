"""The tumour, its peritumoral oedema and the vessels around it, rendered from the latent signs.

Each latent sign (see ``signs.py``) maps monotonically onto something a radiologist
sees: the margin score onto the number and length of spicules, the rim score onto how
much brighter the enhancing rim is than the core, ``kep`` onto the wash-in/wash-out
curve, ``oedema`` onto a bright T2 halo, ``vessel`` onto an enhancing vessel touching
the tumour. Nuisance features that carry no LVI information (tumour position, T2
brightness, enhancement amplitude, a vessel elsewhere) vary in every case.
"""

import math

import numpy as np
from scipy.special import expit as _sigmoid  # logistic without overflow warnings

from .contrast import KEP_FLOOR, TUMOUR_ENHANCEMENT_RANGE


def _unit_vectors(rng, n):
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


MAX_SPICULE = 0.70  # spicule length as a fraction of the core radius, at the strongest margin score
HALO_MM = 10.0  # how far the oedema and the VOI jitter reach beyond the tumour


class Tumour:
    def __init__(self, rng, signs, centre):
        self.centre = np.asarray(centre, dtype=np.float64)
        self.diameter = float(math.exp(signs["log_diameter"]))
        margin = float(signs["margin"])
        self.spicule_amplitude = 0.05 + (MAX_SPICULE - 0.05) * float(_sigmoid(1.6 * margin))
        n_spicules = 3 + int(round(7 * float(_sigmoid(1.6 * margin))))
        self.spicule_dirs = _unit_vectors(rng, n_spicules)
        self.spicule_kappa = rng.uniform(50.0, 100.0, n_spicules)
        self.irregularity = 0.03 + 0.09 * float(_sigmoid(1.6 * margin))
        self.lobe_dirs = _unit_vectors(rng, 6)
        self.lobe_phase = rng.uniform(0, 2 * np.pi, 6)
        self.lobulation = rng.uniform(0.04, 0.10)
        # Largest extent = the nominal diameter, so size means what a radiologist measures.
        self.core_radius = 0.5 * self.diameter / (1.0 + self.lobulation + self.irregularity + MAX_SPICULE)
        self.rim_strength = float(_sigmoid(1.5 * float(signs["rim"])))
        self.kep = max(float(signs["kep"]), KEP_FLOOR)
        self.enhancement = rng.uniform(*TUMOUR_ENHANCEMENT_RANGE)  # nuisance: peak relative enhancement
        self.t2_signal = rng.uniform(330.0, 450.0)  # nuisance
        self.oedema = bool(signs["oedema"])
        self.oedema_thickness = rng.uniform(2.0, 4.0)
        self.vessels = [self._vessel(rng, adjacent=False)]
        if signs["vessel"]:
            self.vessels.append(self._vessel(rng, adjacent=True))

    @property
    def max_radius(self):
        return 0.5 * self.diameter

    def _surface_point(self, direction):
        return self.centre + direction * self.radius_along(direction[None])[0]

    def _vessel(self, rng, adjacent):
        """A curved vessel of ~1.2 mm radius: touching the tumour surface when ``adjacent``,
        otherwise passing 12-25 mm away from it."""
        d = _unit_vectors(rng, 1)[0]
        start = self._surface_point(d) + d * (0.8 if adjacent else rng.uniform(12.0, 25.0))
        tangent = np.cross(d, _unit_vectors(rng, 1)[0])
        tangent /= np.linalg.norm(tangent)
        length = rng.uniform(30.0, 45.0)
        bend = _unit_vectors(rng, 1)[0] * rng.uniform(4.0, 10.0)
        t = np.linspace(-0.5, 0.5, 9)[:, None]
        points = start + tangent * length * t + bend * (1 - 4 * t * t) * 0.5 + d * (4.0 * t * t) * length * 0.2
        return {"points": points, "radius": rng.uniform(1.0, 1.5), "adjacent": adjacent}

    def radius_along(self, directions):
        """Tumour radius (mm) along unit ``directions`` (n, 3)."""
        dots = directions @ self.lobe_dirs.T
        lobes = np.cos(3.0 * dots[:, :3] + self.lobe_phase[:3]).mean(axis=1)
        rough = np.cos(9.0 * dots[:, 3:] + self.lobe_phase[3:]).mean(axis=1)
        spikes = np.exp(self.spicule_kappa * (directions @ self.spicule_dirs.T - 1.0)).max(axis=1)
        return self.core_radius * (1.0 + self.lobulation * lobes + self.irregularity * rough
                                   + self.spicule_amplitude * spikes)

    def render(self, grid):
        """Tumour maps on the part of ``grid`` around it.

        Returns (box, maps): ``box`` is a (z, y, x) tuple of slices into the grid's array;
        maps holds ``tumour`` (fraction), ``depth`` (mm inside the surface, for the rim),
        ``oedema`` (halo weight outside the tumour, 0 when the sign is absent).
        """
        reach = self.max_radius + HALO_MM
        box = grid.index_box(self.centre - reach, self.centre + reach)
        x, y, z = grid.box_axes(box)
        dx = (x - self.centre[0])[None, None, :]
        dy = (y - self.centre[1])[None, :, None]
        dz = (z - self.centre[2])[:, None, None]
        shape = (len(z), len(y), len(x))
        dist = np.sqrt(dx * dx + dy * dy + dz * dz).astype(np.float32)
        safe = np.maximum(dist, 1e-3)
        dirs = np.stack(np.broadcast_arrays(dx / safe, dy / safe, dz / safe), axis=-1).reshape(-1, 3)
        radius = self.radius_along(dirs).reshape(shape).astype(np.float32)
        outside = dist - radius  # radial distance to the surface, mm (negative inside)
        edge = 0.5 * min(grid.spacing[0], grid.spacing[1])
        maps = {
            "tumour": _sigmoid(-outside / edge),
            "depth": np.maximum(-outside, 0.0),
            "oedema": np.zeros(shape, np.float32),
        }
        if self.oedema:
            # Fades out well inside the box so the halo never shows the box's edge.
            maps["oedema"] = (np.exp(-np.maximum(outside, 0.0) / self.oedema_thickness)
                              * _sigmoid(outside / edge) * _sigmoid(HALO_MM - 3.0 - outside) * 0.8).astype(np.float32)
        return box, maps

    def render_vessels(self, grid):
        """Vessel fractions on ``grid``: a list of (box, fraction), one per vessel."""
        edge = 0.5 * min(grid.spacing[0], grid.spacing[1])
        out = []
        for vessel in self.vessels:
            pts = vessel["points"]
            box = grid.index_box(pts.min(axis=0) - 3.0, pts.max(axis=0) + 3.0)
            x, y, z = grid.box_axes(box)
            shape = (len(z), len(y), len(x))
            if 0 in shape:
                continue
            px, py, pz = x[None, None, :], y[None, :, None], z[:, None, None]
            best = np.full(shape, np.inf, np.float32)
            for a, b in zip(pts[:-1].astype(np.float32), pts[1:].astype(np.float32)):
                ab = b - a
                t = np.clip(((px - a[0]) * ab[0] + (py - a[1]) * ab[1] + (pz - a[2]) * ab[2]) / float(ab @ ab), 0.0, 1.0)
                d2 = (px - a[0] - t * ab[0]) ** 2 + (py - a[1] - t * ab[1]) ** 2 + (pz - a[2] - t * ab[2]) ** 2
                best = np.minimum(best, d2)
            out.append((box, _sigmoid((vessel["radius"] - np.sqrt(best)) / edge)))
        return out

    def describe(self):
        return {"centre_mm": [round(float(c), 2) for c in self.centre], "diameter_mm": round(self.diameter, 2),
                "spicule_amplitude": round(self.spicule_amplitude, 3), "rim_strength": round(self.rim_strength, 3),
                "kep_per_min": round(self.kep, 3), "oedema": self.oedema,
                "adjacent_vessel": any(v["adjacent"] for v in self.vessels)}
