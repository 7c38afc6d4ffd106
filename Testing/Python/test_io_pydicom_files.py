"""Real scanner DICOM files shipped in pydicom and pydicom-data (no network needed)."""

import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.data import get_testdata_file

from dicom_factory import write_mr_series
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.inputs.readers import list_dicom_series, read_image, read_image_with_info

# Every transfer syntax of the same 64x64 Siemens slice, all lossless: each must decode to the
# same voxels (JPEG-LS is decoded by GDCM inside SimpleITK even where pydicom has no plugin).
MR_SMALL_VARIANTS = ("MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
                     "MR_small_expb.dcm", "MR_small_padded.dcm", "MR_small_RLE.dcm",
                     "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm")


@pytest.fixture(scope="module")
def mr_small_voxels():
    return pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array


@pytest.mark.parametrize("name", MR_SMALL_VARIANTS)
def test_mr_small_decodes_identically_in_every_transfer_syntax(name, mr_small_voxels):
    image = read_image(get_testdata_file(name), require_3d=False)
    assert image.GetSize() == (64, 64, 1)
    assert np.allclose(image.GetSpacing()[:2], (0.3125, 0.3125))
    assert np.array_equal(sitk.GetArrayFromImage(image)[0], mr_small_voxels)


def test_single_real_slice_is_an_error_when_3d_is_needed():
    path = get_testdata_file("MR_small.dcm")
    with pytest.raises(InputError, match="single slice") as caught:
        read_image(path)
    assert path in str(caught.value)


def test_truncated_real_file_is_an_error_naming_it():
    path = get_testdata_file("MR_truncated.dcm")
    with pytest.raises(InputError, match="cannot be decoded") as caught:
        read_image(path, require_3d=False)
    assert caught.value.source == path


def test_truncated_slice_inside_a_series_is_named(tmp_path):
    written = write_mr_series(tmp_path, n_slices=4, rows=16, columns=16)
    broken = written.files[2]
    with open(broken, "rb") as handle:
        data = handle.read()
    with open(broken, "wb") as handle:
        handle.write(data[:-100])
    with pytest.raises(InputError, match="cannot be decoded") as caught:
        read_image(tmp_path)
    assert caught.value.source == broken


def test_pydicom_data_siemens_slice_keeps_its_header_geometry():
    path = get_testdata_file("MR-SIEMENS-DICOM-WithOverlays.dcm")
    header = pydicom.dcmread(path, stop_before_pixels=True)
    image, info = read_image_with_info(path, require_3d=False)
    assert image.GetSize() == (header.Columns, header.Rows, 1)
    assert np.allclose(image.GetOrigin(), [float(v) for v in header.ImagePositionPatient])
    assert np.allclose(image.GetSpacing()[:2], [float(v) for v in header.PixelSpacing][::-1])
    assert info.series_uid == header.SeriesInstanceUID


def test_pydicom_data_lossless_jpeg2000_matches_uncompressed():
    reference = read_image(get_testdata_file("MR2_UNCR.dcm"), require_3d=False)
    compressed = read_image(get_testdata_file("MR2_J2KR.dcm"), require_3d=False)
    assert reference.GetSize() == (1024, 1024, 1)
    assert np.array_equal(sitk.GetArrayViewFromImage(reference), sitk.GetArrayViewFromImage(compressed))


def test_multiframe_file_without_functional_groups_is_an_error_suggesting_conversion():
    # pydicom's emri_small.dcm is an Enhanced MR file stripped of its per-frame groups.
    with pytest.raises(InputError, match="10 frames\\) without per-frame functional groups.*dcm2niix"):
        read_image(get_testdata_file("emri_small.dcm"))


def test_folder_of_unrelated_real_slices_lists_each_series(tmp_path):
    for name in ("MR_small.dcm", "MR2_UNCR.dcm"):
        shutil.copy(get_testdata_file(name), tmp_path / name)
    series = list_dicom_series(tmp_path)
    assert sorted(s.n_files for s in series) == [1, 1]
    with pytest.raises(InputError, match="holds 2 image series; say which sequence.*--series-uid"):
        read_image(tmp_path)
