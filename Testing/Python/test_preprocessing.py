"""The one preprocessing path: geometry, label rule, normalisation, bad input."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from LVIPredictorLib import preprocessing as pp
from LVIPredictorLib.errors import InputError
from synthetic_images import make_grid, mr_image, rotation_z, sphere_mask

SPEC3 = pp.default_spec("resnet10_3d")
SPEC2 = pp.default_spec("resnet10_2d")


@pytest.fixture(scope="module")
def case():
    grid = make_grid()
    return mr_image(grid), sphere_mask(grid)


def test_3d_input_has_the_model_shape_and_is_z_scored(case):
    out = pp.preprocess(case[0], case[1], SPEC3)
    assert out.inputs.shape == (1, 1, 32, 64, 64)
    assert out.inputs.dtype == np.float32
    assert abs(float(out.inputs.mean())) < 1e-4
    assert abs(float(out.inputs.std()) - 1) < 1e-3
    assert out.slice_weights.tolist() == [1.0]


def test_2d_input_takes_the_largest_cross_sections_largest_first(case):
    out = pp.preprocess(case[0], case[1], SPEC2)
    assert out.inputs.shape == (3, 1, 64, 64)
    areas = sitk.GetArrayFromImage(out.crop_reference).reshape(out.crop_reference.GetSize()[2], -1).sum(axis=1)
    chosen = areas[out.slice_indices]
    assert list(chosen) == sorted(areas, reverse=True)[:3]
    assert np.isclose(out.slice_weights.sum(), 1.0)
    assert np.allclose(out.slice_weights, chosen / chosen.sum())


def test_2d_planes_sit_on_native_slices_without_z_interpolation(case):
    image, mask = case
    out = pp.preprocess(image, mask, SPEC2)
    ref = out.crop_reference
    assert ref.GetSpacing()[2] == pytest.approx(image.GetSpacing()[2])
    z_native = (ref.GetOrigin()[2] - image.GetOrigin()[2]) / image.GetSpacing()[2]
    assert z_native == pytest.approx(round(z_native), abs=1e-6)


def test_spec_round_trips_through_json():
    for spec in (SPEC2, SPEC3):
        again = pp.PreprocessSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
        assert again == spec


def test_spec_with_unknown_field_is_rejected():
    d = SPEC3.to_dict()
    d["colour"] = "blue"
    with pytest.raises(ValueError, match="unknown preprocessing fields: colour"):
        pp.PreprocessSpec.from_dict(d)


def test_crop_first_equals_resampling_the_whole_volume_then_cropping(case):
    image, mask = case
    out = pp.preprocess(image, mask, SPEC3)
    ref = out.crop_reference
    # The slow way: the whole volume onto a target-spacing grid that contains the crop grid.
    big = sitk.Image([200, 200, 60], sitk.sitkUInt8)
    big.SetSpacing(ref.GetSpacing())
    shift = np.array([60, 60, 14])
    big.SetOrigin((np.asarray(ref.GetOrigin()) - shift * np.asarray(ref.GetSpacing())).tolist())
    whole = sitk.Resample(image, big, sitk.Transform(), sitk.sitkLinear, float("nan"), sitk.sitkFloat32)
    arr = sitk.GetArrayFromImage(whole)[shift[2]:shift[2] + 32, shift[1]:shift[1] + 64, shift[0]:shift[0] + 64]
    fin = np.isfinite(arr)
    lo, hi = np.percentile(arr[fin], SPEC3.clip_percentiles)
    arr = np.where(fin, np.clip(arr, lo, hi), lo)
    arr = (arr - arr.mean()) / arr.std()
    np.testing.assert_allclose(out.inputs[0, 0], arr, atol=1e-4)


def test_mask_on_another_grid_is_resampled_with_a_warning_and_matches_the_same_grid_case(case):
    image, _ = case
    other = make_grid(size=(90, 90, 40), spacing=(0.6, 0.6, 1.0), origin=(-25.0, -30.0, -20.0),
                      direction=rotation_z(0.3))
    mask_other = sphere_mask(other)
    # The reference: the same mask put onto the image grid by SimpleITK, nearest neighbour.
    mask_same = sitk.Resample(mask_other, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    a = pp.preprocess(image, mask_other, SPEC3, mask_source="voi.nii.gz")
    b = pp.preprocess(image, mask_same, SPEC3)
    assert any("different grid" in w and "voi.nii.gz" in w for w in a.warnings)
    assert not any("different grid" in w for w in b.warnings)
    np.testing.assert_allclose(a.inputs, b.inputs, atol=1e-5)
    assert a.voi_volume_mm3 == pytest.approx(b.voi_volume_mm3)


def test_real_breast_crop_with_its_lesion_label(breast1):
    image, label = breast1
    out = pp.preprocess(image, label, SPEC3)
    assert out.voi_volume_mm3 == pytest.approx(143 * 0.664062 * 0.664062 * 2.1, rel=1e-4)
    assert out.inputs.shape == (1, 1, 32, 64, 64)


def test_empty_mask_is_an_error_naming_the_file(case):
    empty = sitk.Image(case[1].GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(case[1])
    with pytest.raises(InputError, match=r"voi\.nii\.gz: the VOI mask is empty"):
        pp.preprocess(case[0], empty, SPEC3, mask_source="voi.nii.gz")


def test_mask_that_does_not_overlap_the_image_is_an_error(case):
    far = make_grid(origin=(500.0, 500.0, 500.0))
    with pytest.raises(InputError, match=r"far\.nii: the VOI does not overlap"):
        pp.preprocess(case[0], sphere_mask(far, centre=(530.0, 530.0, 520.0)), SPEC3, mask_source="far.nii")


def test_multi_label_mask_uses_every_label_by_default_with_a_warning(case):
    image, mask = case
    arr = sitk.GetArrayFromImage(mask)
    arr[arr > 0] = 1
    zs = np.nonzero(arr)[0]
    arr[zs.max()][arr[zs.max()] > 0] = 2
    two = sitk.GetImageFromArray(arr)
    two.CopyInformation(mask)
    out_all = pp.preprocess(image, two, SPEC3)
    assert any("labels [1, 2]" in w for w in out_all.warnings)
    assert out_all.voi_volume_mm3 == pytest.approx(pp.preprocess(image, mask, SPEC3).voi_volume_mm3)
    spec_label2 = pp.PreprocessSpec.from_dict(dict(SPEC3.to_dict(), label=2))
    out_2 = pp.preprocess(image, two, spec_label2)
    assert out_2.voi_volume_mm3 < out_all.voi_volume_mm3
    spec_label3 = pp.PreprocessSpec.from_dict(dict(SPEC3.to_dict(), label=3))
    with pytest.raises(InputError, match=r"no voxels with label 3 \(labels present: \[1, 2\]\)"):
        pp.preprocess(image, two, spec_label3, mask_source="m.nii")


def test_float_mask_with_fractional_values_is_rejected(case):
    soft = sitk.Cast(case[1], sitk.sitkFloat32) * 0.5
    with pytest.raises(InputError, match="non-integer values"):
        pp.preprocess(case[0], soft, SPEC3, mask_source="prob.nii")


def test_oblique_image_is_resampled_axis_aligned_with_a_warning():
    grid = make_grid(direction=rotation_z(0.4))
    out = pp.preprocess(mr_image(grid), sphere_mask(grid), SPEC3, image_source="oblique.nii")
    assert any("oblique.nii is oblique" in w for w in out.warnings)
    assert out.crop_reference.GetDirection() == (1, 0, 0, 0, 1, 0, 0, 0, 1)


def test_2d_image_where_3d_is_needed_is_an_error(case):
    flat = case[0][:, :, 5]
    with pytest.raises(InputError, match="t2.nii: is a 2D image; a 3D volume is needed"):
        pp.preprocess(flat, case[1], SPEC3, image_source="t2.nii")


def test_single_slice_volume_is_an_error(case):
    one = case[0][:, :, 5:6]
    with pytest.raises(InputError, match="single slice"):
        pp.preprocess(one, case[1], SPEC3, image_source="t2.nii")


def test_nan_voxels_are_an_error(case):
    arr = sitk.GetArrayFromImage(case[0]).astype(np.float32)
    arr[3, 4, 5] = np.nan
    bad = sitk.GetImageFromArray(arr)
    bad.CopyInformation(case[0])
    with pytest.raises(InputError, match="dce.nii: contains 1 NaN/Inf voxels"):
        pp.preprocess(bad, case[1], SPEC3, image_source="dce.nii")


def test_constant_image_is_an_error(case):
    const = sitk.Image(case[0].GetSize(), sitk.sitkInt16) + 100
    const.CopyInformation(case[0])
    with pytest.raises(InputError, match="constant"):
        pp.preprocess(const, case[1], SPEC3, image_source="flat.nii")


def test_tiny_voi_gives_a_warning(case):
    grid = make_grid()
    tiny = sphere_mask(grid, radius=1.5)
    out = pp.preprocess(case[0], tiny, SPEC3)
    assert any("VOI is tiny" in w for w in out.warnings)


def test_voi_larger_than_the_field_of_view_gives_a_warning():
    grid = make_grid(size=(120, 120, 30), spacing=(0.8, 0.8, 3.0), origin=(-48.0, -48.0, -45.0))
    big = sphere_mask(grid, centre=(0, 0, 0), radius=35.0)
    out = pp.preprocess(mr_image(grid, centre=(0, 0, 0), radius=35.0), big, SPEC3)
    assert any("the model sees 64 mm" in w for w in out.warnings)


def test_patient_score_is_the_area_weighted_mean_of_slice_probabilities():
    assert pp.aggregate_slice_scores([0.2, 0.8], [0.75, 0.25]) == pytest.approx(0.35)
    with pytest.raises(ValueError):
        pp.aggregate_slice_scores([0.2, 0.8], [1.0])
