"""Numbers read straight from a VOI mask: its size and the irregularity of its outline.

On the phantom cohort each of them alone scores LVI about as well as the networks do
(``benchmarks/voi_proxies.py``). Training can ask a network to predict two of them from its
own features as a side task (``--voi-shape-aux``): they come from the VOI, never from the
label, so the side task adds no label information, only pressure to encode the outline.
"""

import math

import numpy as np
import SimpleITK as sitk

from LVIPredictorLib.inputs import readers
from LVIPredictorLib.preprocessing import radiomics
from LVIPredictorLib.vocabulary.sequences import grid_reference

NAMES = ("VOI volume", "VOI extent along z", "axial slices the VOI crosses", "VOI irregularity (1 - sphericity)")


def descriptors(mask, source="VOI mask"):
    """(volume mm3, extent along the image's z axis in mm, number of axial slices the VOI crosses,
    1 - sphericity (SimpleITK's roundness, as the radiomics baseline computes it))."""
    stats = radiomics.shape_statistics(mask != 0, source)  # refuses an empty VOI, naming ``source``
    voi = sitk.GetArrayViewFromImage(mask) != 0
    spacing = mask.GetSpacing()
    slices = np.flatnonzero(voi.any(axis=(1, 2)))
    return (float(voi.sum() * np.prod(spacing)), float((slices[-1] - slices[0] + 1) * spacing[2]),
            float(len(slices)), 1.0 - stats.GetRoundness(1))


def auxiliary_targets(cases, sequence):
    """(N, 2) side-task targets per case: log z-extent (mm) and irregularity of the VOI the
    model's grid follows; standardised later on each training fold's cases only."""
    rows = []
    for case in cases:
        path = case.masks[grid_reference(sequence)]
        _, extent, _, irregularity = descriptors(readers.read_mask(path), str(path))
        rows.append((math.log(extent), irregularity))
    return np.asarray(rows, dtype=np.float32)
