"""The radiomics baseline's features: what they measure, that they are the one input path, and bad input."""

import math

import numpy as np
import pytest
import SimpleITK as sitk

from LVIPredictorLib import preprocessing
from LVIPredictorLib.preprocessing import radiomics
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.preprocessing import Channel, prepare_input
from synthetic_images import make_grid, mr_image, physical_coordinates, sphere_mask

SPEC = radiomics.RadiomicsSpec()
ISO = make_grid(size=(64, 64, 64), spacing=(1.0, 1.0, 1.0), origin=(-32.0, -32.0, -32.0))


def _features(image, mask, spec=SPEC, names=("dce",)):
    prepared = prepare_input([Channel(image, mask, "img.nii", "voi.nii")], spec, names)
    return dict(zip(radiomics.feature_names(spec, names), prepared.inputs[0].astype(float))), prepared


def _with_halo(brightness):
    """The iso lesion with a 3 mm shell of ``brightness`` around it (oedema-like), on a flat background."""
    r = np.linalg.norm(physical_coordinates(ISO) - np.array([2.0, -3.0, 0.0]), axis=-1)
    values = np.where(r <= 8.0, 700.0, np.where(r <= 11.0, brightness, 300.0))
    out = sitk.GetImageFromArray(values.astype(np.float32))
    out.CopyInformation(ISO)
    return out


def test_shape_features_measure_a_sphere():
    f, prepared = _features(mr_image(ISO), sphere_mask(ISO))
    assert prepared.inputs.shape == (1, len(radiomics.feature_names(SPEC, ("dce",))))
    assert math.exp(f["dce.log_volume"]) == pytest.approx(4 / 3 * math.pi * 8 ** 3, rel=0.05)
    assert math.exp(f["dce.log_max_voxel_centre_distance"]) == pytest.approx(16.0, abs=1.5)
    assert f["dce.itk_roundness"] > 0.85 and f["dce.major_to_minor_axis_ratio"] == pytest.approx(1.0, abs=0.1)
    assert prepared.voi_volume_mm3 == pytest.approx(math.exp(f["dce.log_volume"]), rel=0.01)


def test_intensities_are_relative_to_the_breast_background():
    """Doubling every intensity (another scanner gain) leaves every feature unchanged."""
    image = mr_image(ISO)
    doubled = sitk.Cast(image, sitk.sitkFloat32) * 2.0
    a, _ = _features(image, sphere_mask(ISO))
    b, _ = _features(doubled, sphere_mask(ISO))
    for name in a:
        assert b[name] == pytest.approx(a[name], rel=1e-4, abs=1e-6), name
    assert a["dce.mean"] > 1.5  # the bright lesion against its background


def test_a_bright_peritumoral_halo_shows_in_the_ring_features():
    plain, _ = _features(_with_halo(300.0), sphere_mask(ISO))
    oedema, _ = _features(_with_halo(900.0), sphere_mask(ISO))
    assert oedema["dce.ring_mean"] > plain["dce.ring_mean"] + 0.5
    assert oedema["dce.ring_to_voi"] > plain["dce.ring_to_voi"]
    assert plain["dce.glcm_homogeneity"] == pytest.approx(1.0)  # a uniform VOI has no texture


def test_a_spiculated_outline_is_less_spherical_than_a_round_one():
    p = physical_coordinates(ISO) - np.array([2.0, -3.0, 0.0])
    r = np.linalg.norm(p, axis=-1)
    theta = np.arctan2(p[..., 1], p[..., 0])
    spiky = (r <= 8.0 + 4.0 * np.clip(np.cos(7 * theta), 0, None) ** 8).astype(np.uint8)
    mask = sitk.GetImageFromArray(spiky)
    mask.CopyInformation(ISO)
    round_, _ = _features(mr_image(ISO), sphere_mask(ISO))
    spiculated, _ = _features(mr_image(ISO), mask)
    assert spiculated["dce.itk_roundness"] < round_["dce.itk_roundness"] - 0.05
    assert spiculated["dce.itk_perimeter_to_volume"] > round_["dce.itk_perimeter_to_volume"]


def test_anisotropic_thick_slices_and_a_mask_on_another_grid():
    thick = make_grid()  # 0.8 x 0.8 x 3 mm
    image = mr_image(thick)
    f, prepared = _features(image, sphere_mask(ISO))  # VOI drawn on the iso grid
    assert math.exp(f["dce.log_volume"]) == pytest.approx(4 / 3 * math.pi * 8 ** 3, rel=0.2)
    assert any("resampled onto the image grid" in w for w in prepared.warnings)


def test_fused_features_are_both_series_in_channel_order():
    names = radiomics.feature_names(SPEC, ("t2", "dce"))
    assert names[0].startswith("t2.") and names[-1].startswith("dce.")
    image = mr_image(ISO)
    prepared = prepare_input([Channel(image, sphere_mask(ISO)), Channel(image, sphere_mask(ISO))], SPEC,
                             ("t2", "dce"), grid_channel=1)
    assert prepared.inputs.shape == (1, len(names))
    assert np.array_equal(prepared.inputs[0, :len(names) // 2], prepared.inputs[0, len(names) // 2:])


def test_bad_input_is_refused_with_the_file_named():
    image = mr_image(ISO)
    empty = sitk.Image(ISO.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(ISO)
    with pytest.raises(InputError, match="voi.nii.*empty"):
        _features(image, empty)
    nan = sitk.Cast(image, sitk.sitkFloat32)
    nan[10, 10, 10] = float("nan")
    with pytest.raises(InputError, match="img.nii.*NaN"):
        _features(nan, sphere_mask(ISO))
    negative = sitk.Cast(image, sitk.sitkFloat32) - 10000.0
    with pytest.raises(InputError, match="magnitude image"):
        _features(negative, sphere_mask(ISO))


def test_the_kinetics_need_the_dynamic_series():
    spec = radiomics.RadiomicsSpec(dce_dynamic=True)
    image = mr_image(ISO)
    with pytest.raises(InputError, match="whole dynamic DCE series"):
        prepare_input([Channel(image, sphere_mask(ISO), "dce.nii")], spec, ("dce",))
    phases = [sitk.Cast(image, sitk.sitkFloat32) * s for s in (1.0, 1.5, 1.3)]
    prepared = prepare_input([Channel(phases[1], sphere_mask(ISO), phases=phases, phase_index=1)], spec, ("dce",))
    f = dict(zip(radiomics.feature_names(spec, ("dce",)), prepared.inputs[0].astype(float)))
    assert f["dce.wash_in"] == pytest.approx(0.5, abs=1e-4)
    assert f["dce.wash_out"] == pytest.approx(1.3 / 1.5 - 1.0, abs=1e-4)


def test_the_spec_round_trips_and_rejects_unknown_fields():
    again = preprocessing.spec_from_dict(SPEC.to_dict())
    assert isinstance(again, radiomics.RadiomicsSpec) and again == SPEC
    with pytest.raises(ValueError, match="unknown radiomics fields"):
        preprocessing.spec_from_dict(dict(SPEC.to_dict(), colour=1))
