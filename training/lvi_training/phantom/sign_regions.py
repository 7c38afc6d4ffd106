"""Where each LVI sign of a phantom case sits: one label map per series, on that series' grid.

The generator knows the evidence it rendered, so a heat-map can be measured against it
(``benchmarks/heatmap_localisation.py``). Each series gets ``<series>_signs.nii.gz`` (uint8),
one bit per sign so that overlapping signs keep both (a voxel of the rim inside a spicule is
2 + 8 = 10); only the signs a series renders are written on it:

====  ==========  ======  ==========================================================================
bit   sign        series  region
====  ==========  ======  ==========================================================================
1     oedema      t2      the T2 halo where its blend weight is >= 0.1 (its signal then exceeds
                          the fat's by ~70, seven times the noise), outside the tumour; only when
                          the case has oedema
2     rim         dce     the tumour's outer 2 mm (the e-folding depth of the rim enhancement);
                          every case (its strength is ``tumour.rim_strength`` in case.json)
4     vessel      dce     the adjacent enhancing vessel (fraction >= 0.5) within 10 mm of the
                          tumour (the part a crop around the VOI shows); only when present
8     margin      both    the spicules: tumour voxels a 2 mm opening removes (the thin
                          protrusions a smooth outline lacks); every case, empty when smooth
====  ==========  ======  ==========================================================================

Nothing here draws a random number: the regions come from the case's tumour and grids, so the
images of a seed stay the same bytes with or without them.
"""

import json
import os

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import binary_opening, distance_transform_edt

SIGN_BITS = {"oedema": 1, "rim": 2, "vessel": 4, "margin": 8}
SHOWN_ON = {"t2": ("oedema", "margin"), "dce": ("rim", "vessel", "margin")}
OEDEMA_WEIGHT = 0.1
RIM_MM = 2.0
VESSEL_REACH_MM = 10.0
SPICULE_OPENING_MM = 2.0


def _ball(spacing_zyx, radius_mm):
    half = [max(0, int(radius_mm // s)) for s in spacing_zyx]
    z, y, x = np.ogrid[-half[0]:half[0] + 1, -half[1]:half[1] + 1, -half[2]:half[2] + 1]
    return (z * spacing_zyx[0]) ** 2 + (y * spacing_zyx[1]) ** 2 + (x * spacing_zyx[2]) ** 2 <= radius_mm ** 2


def sign_regions(tumour, series, name):
    """{sign: bool array (z, y, x)} for the signs series ``name`` ("t2"/"dce") renders."""
    grid, truth = series.grid, series.truth
    spacing = tuple(grid.spacing[::-1])
    outside_mm = distance_transform_edt(~truth, sampling=spacing)
    inside_mm = distance_transform_edt(truth, sampling=spacing)
    regions = {}
    for sign in SHOWN_ON[name]:
        region = np.zeros(grid.shape, bool)
        if sign == "oedema" and tumour.oedema:
            box, maps = tumour.render(grid)
            region[box] = maps["oedema"] * (1.0 - maps["tumour"]) >= OEDEMA_WEIGHT
            region &= ~truth
        elif sign == "rim":
            region = truth & (inside_mm <= RIM_MM)
        elif sign == "vessel":
            for (box, fraction), vessel in zip(tumour.render_vessels(grid), tumour.vessels):
                if vessel["adjacent"]:
                    region[box] |= fraction >= 0.5
            region &= outside_mm <= VESSEL_REACH_MM
        elif sign == "margin":
            region = truth & ~binary_opening(truth, structure=_ball(spacing, SPICULE_OPENING_MM))
        regions[sign] = region
    return regions


def write_sign_regions(case, folder, info):
    """Write ``<series>_signs.nii.gz`` for T2 and DCE into ``folder``, describe them in ``info``
    (case.json is rewritten with it) and return ``info``."""
    described = {"bits": SIGN_BITS, "note": "one bit per sign; see lvi_training/phantom/sign_regions.py"}
    for name in ("t2", "dce"):
        series = getattr(case, name)
        regions = sign_regions(case.lesion, series, name)
        labels = np.zeros(series.grid.shape, np.uint8)
        for sign, region in regions.items():
            labels[region] |= SIGN_BITS[sign]
        image = sitk.GetImageFromArray(labels)
        image.SetOrigin(series.grid.origin)
        image.SetSpacing(series.grid.spacing)
        file_name = "{}_signs.nii.gz".format(name)
        sitk.WriteImage(image, os.path.join(folder, file_name), True)
        described[name] = {"file": file_name, "voxels": {s: int(r.sum()) for s, r in regions.items()}}
    info["sign_regions"] = described
    with open(os.path.join(folder, "case.json"), "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
    return info
