"""One phantom case in memory: signs -> anatomy + tumour -> T2 and DCE images -> VOIs."""

from dataclasses import dataclass, field

import numpy as np

from . import acquisition, contrast
from .clinical import model_for, sample_clinical
from .anatomy import TISSUES, Anatomy, composite
from .lesion import Tumour
from .signs import sample_signs
from .voi import draw_voi, true_tumour

T2_NOISE = 10.0
DCE_NOISE = 12.0


@dataclass
class Series:
    grid: acquisition.Grid
    volumes: list  # int16 arrays (z, y, x): one for T2, one per temporal position for DCE
    mask: np.ndarray  # uint8 labels
    truth: np.ndarray  # bool: the true tumour on this grid
    times_min: list = field(default_factory=lambda: [0.0])


@dataclass
class PhantomCase:
    index: int
    lvi: int
    age: int
    signs: dict
    tumour: dict
    t2: Series
    dce: Series
    study_date: str
    uid_entropy: list
    clinical: dict = field(default_factory=dict)  # the clinical columns but age (None = missing cell)
    lesion: object = None  # the Tumour, for the regions of its signs (sign_regions.py)


def _small_fov_centre(tumour, protocol, rng):
    half = min(min(s * n for s, n in zip(protocol.t2_spacing, protocol.t2_size)),
               min(s * n for s, n in zip(protocol.dce_spacing, protocol.dce_size))) / 2.0
    slack = max(0.0, half - tumour.max_radius - 7.0)
    return tumour.centre + rng.uniform(-1.0, 1.0, 3) * slack


def _grid_bounds(grids):
    lo = np.min([g.origin for g in grids], axis=0)
    hi = np.max([np.asarray(g.origin) + np.asarray(g.spacing) * (np.asarray(g.size) - 1) for g in grids], axis=0)
    return lo, hi


def _paint(volume, box, weight, value):
    """Blend ``value`` (scalar or array over ``box``) into ``volume`` with ``weight``."""
    sub = volume[box]
    sub += weight * (value - sub)


def _t2_volume(anatomy, tumour, grid, fractions, lesion, rng):
    img = composite(grid, fractions, contrast.T2_SIGNAL)
    box, maps = lesion
    _paint(img, box, maps["oedema"] * (1.0 - maps["tumour"]), contrast.T2_OEDEMA)
    _paint(img, box, maps["tumour"], tumour.t2_signal)
    img = acquisition.slice_profile(img, grid) * acquisition.bias_field(grid, rng)
    return acquisition.to_stored(acquisition.rician(img, T2_NOISE, rng))


def _dce_volumes(anatomy, tumour, grid, fractions, lesion, times, rng):
    bpe = rng.uniform(0.05, 0.35)  # nuisance: background parenchymal enhancement
    bias = acquisition.bias_field(grid, rng)
    box, maps = lesion
    vessels = tumour.render_vessels(grid)
    rim = contrast.rim_profile(maps["depth"], tumour.rim_strength)
    out = []
    for t in times:
        img = composite(grid, fractions, {n: contrast.DCE_PRE[n] * (1.0 + contrast.tissue_enhancement(n, t, bpe))
                                          for n in TISSUES})
        for vbox, vfrac in vessels:
            _paint(img, vbox, vfrac, contrast.DCE_VESSEL_PRE * (1.0 + contrast.vessel_enhancement(t)))
        enhancement = contrast.tumour_enhancement(t, tumour.kep, tumour.enhancement) * rim
        _paint(img, box, maps["tumour"], contrast.DCE_TUMOUR_PRE * (1.0 + enhancement))
        img = acquisition.slice_profile(img, grid) * bias
        out.append(acquisition.to_stored(acquisition.rician(img, DCE_NOISE, rng)))
    return out


def _truth(grid, lesion):
    box, maps = lesion
    full = np.zeros(grid.shape, bool)
    full[box] = true_tumour(maps["tumour"])
    return full


def generate_case(seed, index, model, protocol, size, second_label=False):
    """Make case ``index`` of the cohort with ``seed``: deterministic, independent of other cases.

    The case's streams derive from SeedSequence(seed, spawn_key=(index,)), so a case is the
    same bytes whichever worker makes it, in any order, and whatever the cohort size.
    One stream per part keeps, e.g., the noise from shifting when the anatomy changes.
    """
    # Spawned children are numbered, so the first seven streams are those of the generator before the
    # clinical columns existed: the eighth, for those columns, leaves every image byte unchanged.
    streams = [np.random.Generator(np.random.PCG64(s))
               for s in np.random.SeedSequence(seed, spawn_key=(index,)).spawn(8)]
    rs_signs, rs_anatomy, rs_tumour, rs_t2, rs_dce, rs_voi, rs_meta, rs_clinical = streams
    drawn = sample_signs(rs_signs, 1, model)
    signs = {k: (int(v[0]) if v.dtype.kind == "i" else float(v[0])) for k, v in drawn.items()}

    anatomy = Anatomy(rs_anatomy, tumour_side=1 if rs_anatomy.random() < 0.5 else -1)
    centre = anatomy.tumour_centre(rs_anatomy, 0.5 * np.exp(signs["log_diameter"]))
    tumour = Tumour(rs_tumour, signs, centre)
    if size == "small":
        fov_centre = _small_fov_centre(tumour, protocol, rs_anatomy)
    else:
        fov_centre = np.array([0.0, anatomy.chest_y + 5.0, anatomy.breast_z])
    t2_grid, dce_grid = acquisition.acquisition_grids(protocol, fov_centre, rs_anatomy)
    anatomy.prepare_texture(rs_anatomy, *_grid_bounds([t2_grid, dce_grid]))

    times = [i * protocol.phase_interval_min for i in range(protocol.n_post_contrast + 1)]
    series = {}
    for name, grid in (("t2", t2_grid), ("dce", dce_grid)):
        fractions = anatomy.layers(grid)
        lesion = tumour.render(grid)
        if name == "t2":
            volumes = [_t2_volume(anatomy, tumour, grid, fractions, lesion, rs_t2)]
        else:
            volumes = _dce_volumes(anatomy, tumour, grid, fractions, lesion, times, rs_dce)
        mask = draw_voi(grid, lesion[0], lesion[1]["tumour"], rs_voi, tumour, second_label)
        series[name] = Series(grid=grid, volumes=volumes, mask=mask, truth=_truth(grid, lesion),
                              times_min=times if name == "dce" else [0.0])

    age = int(np.clip(np.rint(rs_meta.normal(57.9, 12.0)), 26, 91))
    year = int(rs_meta.integers(2010, 2022))
    study_date = "{:04d}{:02d}{:02d}".format(year, int(rs_meta.integers(1, 13)), int(rs_meta.integers(1, 29)))
    return PhantomCase(index=index, lvi=signs["lvi"], age=age, signs=signs, tumour=tumour.describe(),
                       t2=series["t2"], dce=series["dce"], study_date=study_date,
                       uid_entropy=[int(seed), int(index)],
                       clinical=sample_clinical(rs_clinical, signs, model_for(model)), lesion=tumour)
