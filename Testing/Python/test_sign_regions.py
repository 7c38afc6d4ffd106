"""Phantom sign regions: where each LVI sign sits, written beside a cohort's cases."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from lvi_training.phantom import CohortSpec, write_cohort
from lvi_training.phantom.acquisition import PRESETS
from lvi_training.phantom.case import generate_case
from lvi_training.phantom.sign_regions import SIGN_BITS, SHOWN_ON, sign_regions
from lvi_training.phantom.signs import SignModel


@pytest.fixture(scope="module")
def cases():
    # Seed 11: case 0 has neither oedema nor an adjacent vessel, case 1 has both (checked below).
    return [generate_case(11, i, SignModel(), PRESETS["small"], "small") for i in range(2)]


def test_each_sign_sits_where_the_generator_put_it(cases):
    without, with_both = cases
    assert not without.tumour["oedema"] and not without.tumour["adjacent_vessel"]
    assert with_both.tumour["oedema"] and with_both.tumour["adjacent_vessel"]
    for case in cases:
        t2 = sign_regions(case.lesion, case.t2, "t2")
        dce = sign_regions(case.lesion, case.dce, "dce")
        assert set(t2) == set(SHOWN_ON["t2"]) and set(dce) == set(SHOWN_ON["dce"])
        assert t2["oedema"].any() == case.tumour["oedema"] and not (t2["oedema"] & case.t2.truth).any()
        assert dce["vessel"].any() == case.tumour["adjacent_vessel"]
        assert dce["rim"].any() and not (dce["rim"] & ~case.dce.truth).any()
        assert not (dce["margin"] & ~case.dce.truth).any()
    # The oedema halo is bright on T2: its voxels are far brighter than the rest of the breast.
    t2 = sign_regions(with_both.lesion, with_both.t2, "t2")
    volume = with_both.t2.volumes[0]
    assert np.median(volume[t2["oedema"]]) > 1.5 * np.median(volume[~t2["oedema"] & ~with_both.t2.truth])


def test_a_cohort_writes_one_label_map_per_series_and_describes_it(tmp_path):
    write_cohort(str(tmp_path), CohortSpec(seed=11, n=2, outputs=("nifti",)))
    case = tmp_path / "cases" / "LVI-0002"
    info = json.loads((case / "case.json").read_text())
    assert info["sign_regions"]["bits"] == SIGN_BITS
    for name in ("t2", "dce"):
        labels = sitk.ReadImage(str(case / info["sign_regions"][name]["file"]))
        image = sitk.ReadImage(str(case / ("t2.nii.gz" if name == "t2" else "dce_phase2.nii.gz")))
        assert labels.GetSize() == image.GetSize() and labels.GetOrigin() == image.GetOrigin()
        array = sitk.GetArrayFromImage(labels)
        for sign, voxels in info["sign_regions"][name]["voxels"].items():
            assert int((array & SIGN_BITS[sign] > 0).sum()) == voxels
    assert info["sign_regions"]["t2"]["voxels"]["oedema"] > 0
    assert json.loads((tmp_path / "cohort.json").read_text())["cases"][1]["sign_regions"] == info["sign_regions"]
