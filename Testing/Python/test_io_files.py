"""Image files (NRRD, NIfTI, MHA): the real pyradiomics breast crop, and bad files."""

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from LVIPredictorLib.errors import InputError
from LVIPredictorLib.inputs.readers import check_image, read_image, read_image_with_info, same_geometry

BREAST = Path(__file__).resolve().parents[1] / "Data" / "pyradiomics_breast1"


def _volume(values, spacing=(0.7, 0.7, 2.0)):
    image = sitk.GetImageFromArray(np.asarray(values))
    image.SetSpacing(spacing)
    return image


def test_breast_nrrd_reads_with_its_real_spacing():
    image, info = read_image_with_info(BREAST / "breast1_image.nrrd")
    assert image.GetSize() == (45, 120, 21)
    assert np.allclose(image.GetSpacing(), (0.664, 0.664, 2.1), atol=1e-3)
    assert (info.kind, info.n_slices, info.phase) == ("file", 21, None)
    assert image.GetMetaData("lvi:source").endswith("breast1_image.nrrd")


def test_breast_image_survives_a_nifti_round_trip(tmp_path):
    image = read_image(BREAST / "breast1_image.nrrd")
    sitk.WriteImage(image, str(tmp_path / "breast.nii.gz"))
    again = read_image(tmp_path / "breast.nii.gz")
    assert same_geometry(image, again)
    assert np.array_equal(sitk.GetArrayViewFromImage(image), sitk.GetArrayViewFromImage(again))


@pytest.mark.parametrize("dtype, bad, name", [(np.float32, np.nan, "nan.nii.gz"),
                                               (np.float64, -np.inf, "inf.nii")])
def test_non_finite_voxel_in_nifti_is_an_error_although_itk_reads_it_as_zero(tmp_path, dtype, bad, name):
    values = np.ones((3, 4, 5), dtype)
    values[1, 2, 3] = bad
    path = tmp_path / name
    sitk.WriteImage(_volume(values), str(path))
    with pytest.raises(InputError, match="1 NaN or infinite voxel") as caught:
        read_image(path)
    assert caught.value.source == str(path)


def test_infinite_voxel_in_mha_is_an_error(tmp_path):
    values = np.ones((3, 4, 5), np.float64)
    values[0, 0, 0] = np.inf
    sitk.WriteImage(_volume(values), str(tmp_path / "inf.mha"))
    with pytest.raises(InputError, match="NaN or infinite"):
        read_image(tmp_path / "inf.mha")


def test_2d_image_is_an_error_when_3d_is_needed(tmp_path):
    sitk.WriteImage(sitk.GetImageFromArray(np.arange(20, dtype=np.int16).reshape(4, 5)),
                    str(tmp_path / "slice.nrrd"))
    with pytest.raises(InputError, match="is a 2D image"):
        read_image(tmp_path / "slice.nrrd")


def test_4d_nifti_is_read_as_dce_phases_along_the_4th_axis(tmp_path):
    phases = np.stack([np.full((3, 4, 5), 100 * (p + 1), np.int16) for p in range(4)])
    phases[:, 0, 0, 0] = 0  # not constant
    path = tmp_path / "dce.nii.gz"
    sitk.WriteImage(sitk.JoinSeries([sitk.GetImageFromArray(v) for v in phases]), str(path))
    image, info = read_image_with_info(path)
    assert image.GetDimension() == 3 and image.GetSize() == (5, 4, 3)
    assert (info.phase, info.n_phases, info.phase_rule) == (2, 4, "4th axis of the file")
    assert sitk.GetArrayViewFromImage(image)[1, 1, 1] == 200
    with pytest.raises(InputError, match="phase 6 was requested"):
        read_image(path, dce_phase=6)


def test_corrupt_nifti_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "broken.nii.gz"
    path.write_bytes(b"\x1f\x8b this is not a gzip stream")
    with pytest.raises(InputError, match="cannot be read as an image") as caught:
        read_image(path)
    assert caught.value.source == str(path)


def test_truncated_nrrd_is_an_error_naming_the_file(tmp_path):
    data = (BREAST / "breast1_image.nrrd").read_bytes()
    path = tmp_path / "cut.nrrd"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as caught:
        read_image(path)
    assert caught.value.source == str(path)


def test_missing_path_is_an_error():
    with pytest.raises(InputError, match="does not exist"):
        read_image("/no/such/image.nii.gz")


def test_colour_image_is_an_error(tmp_path):
    rgb = sitk.GetImageFromArray(np.zeros((3, 4, 5, 3), np.uint8), isVector=True)
    sitk.WriteImage(rgb, str(tmp_path / "rgb.nrrd"))
    with pytest.raises(InputError, match="3 components per voxel"):
        read_image(tmp_path / "rgb.nrrd")


def test_check_image_rejects_a_constant_image():
    with pytest.raises(InputError, match="constant image \\(every voxel is 7\\)"):
        check_image(_volume(np.full((3, 4, 5), 7, np.int16)), "node T2")


def test_check_image_accepts_the_real_breast_image():
    check_image(read_image(BREAST / "breast1_image.nrrd"), "breast1")


def test_same_geometry_sees_spacing_and_direction_changes():
    image = _volume(np.zeros((3, 4, 5), np.int16))
    moved = _volume(np.zeros((3, 4, 5), np.int16))
    assert same_geometry(image, moved)
    moved.SetOrigin((0.0, 0.0, 5e-5))
    assert same_geometry(image, moved)
    moved.SetSpacing((0.7, 0.7, 2.1))
    assert not same_geometry(image, moved)
    turned = _volume(np.zeros((3, 4, 5), np.int16))
    turned.SetDirection((0, 1, 0, 1, 0, 0, 0, 0, 1))
    assert not same_geometry(image, turned)
