"""DICOM series written by the tests themselves: geometry, series choice, DCE phases, gaps."""

import math
import os

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from dicom_factory import expected_value, write_mr_series, write_phase_per_series
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.inputs.readers import list_dicom_series, read_image, read_image_with_info


def _first_column_values(image):
    """Value at row 0, column 0 of every slice: 1000 * phase + 10 * slice."""
    return sitk.GetArrayFromImage(image)[:, 0, 0].tolist()


def test_axial_series_reads_back_with_written_geometry_and_slice_order(tmp_path):
    written = write_mr_series(tmp_path, n_slices=5, pixel_spacing=(0.7, 0.8), slice_spacing=1.5)
    image = read_image(tmp_path)
    assert image.GetSize() == (10, 8, 5)
    assert np.allclose(image.GetOrigin(), written.origin)
    assert np.allclose(image.GetSpacing(), (0.7, 0.8, 1.5))
    assert np.allclose(image.GetDirection(), written.direction)
    assert _first_column_values(image) == [expected_value(1, s, 0) for s in range(5)]


def test_oblique_series_keeps_its_direction_cosines(tmp_path):
    # Double oblique: rotated 20 degrees in-plane and tilted 15 degrees.
    c, s = math.cos(math.radians(20)), math.sin(math.radians(20))
    ct, st = math.cos(math.radians(15)), math.sin(math.radians(15))
    written = write_mr_series(tmp_path, n_slices=4, orientation=(c, s, 0.0, -s * ct, c * ct, st),
                              slice_spacing=2.0)
    image = read_image(tmp_path)
    assert np.allclose(image.GetDirection(), written.direction, atol=1e-6)
    assert np.allclose(image.GetOrigin(), written.origin, atol=1e-4)
    assert np.allclose(image.GetSpacing()[2], 2.0, atol=1e-4)
    # The last voxel plane lands where the last slice was written.
    last = image.TransformIndexToPhysicalPoint((0, 0, 3))
    assert np.allclose(last, written.positions[-1], atol=1e-3)


def test_series_listing_reports_number_description_and_slices(tmp_path):
    write_mr_series(tmp_path, n_slices=3, series_number=7, description="t2_tse_fs_tra", prefix="a")
    series = list_dicom_series(tmp_path)
    assert len(series) == 1
    assert (series[0].number, series[0].description, series[0].modality) == (7, "t2_tse_fs_tra", "MR")
    assert (series[0].n_files, series[0].n_slices, series[0].n_phases) == (3, 3, 1)


def test_folder_with_two_series_is_an_error_listing_both(tmp_path):
    t2 = write_mr_series(tmp_path, n_slices=3, series_number=3, description="t2_tse_fs_tra", prefix="a")
    dce = write_mr_series(tmp_path, n_slices=3, series_number=9, description="fl3d_dyn", prefix="b")
    with pytest.raises(InputError) as caught:
        read_image(tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message and "series_uid" in message
    for written, description in ((t2, "t2_tse_fs_tra"), (dce, "fl3d_dyn")):
        assert written.uid in message and description in message


def test_series_uid_picks_one_series_out_of_several(tmp_path):
    write_mr_series(tmp_path, n_slices=3, series_number=3, description="t2_tse_fs_tra", prefix="a")
    wanted = write_mr_series(tmp_path, n_slices=4, series_number=9, description="t1_vibe", prefix="b")
    image, info = read_image_with_info(tmp_path, series_uid=wanted.uid)
    assert image.GetSize()[2] == 4
    assert (info.series_uid, info.series_description) == (wanted.uid, "t1_vibe")
    assert image.GetMetaData("lvi:series_description") == "t1_vibe"


def test_unknown_series_uid_is_an_error(tmp_path):
    write_mr_series(tmp_path, n_slices=3)
    with pytest.raises(InputError, match="no series with uid 1.2.3"):
        read_image(tmp_path, series_uid="1.2.3")


def test_dce_series_gives_phase_2_by_temporal_position_identifier(tmp_path):
    write_mr_series(tmp_path, n_slices=4, n_phases=3, description="fl3d_dyn")
    image, info = read_image_with_info(tmp_path)
    assert (info.phase, info.n_phases, info.phase_rule) == (2, 3, "TemporalPositionIdentifier")
    assert _first_column_values(image) == [expected_value(2, s, 0) for s in range(4)]
    assert list_dicom_series(tmp_path)[0].temporal_positions == [1, 2, 3]


def test_dce_series_without_identifier_is_split_by_trigger_time(tmp_path):
    write_mr_series(tmp_path, n_slices=4, n_phases=3, phase_tags=("TriggerTime", "AcquisitionTime"))
    image, info = read_image_with_info(tmp_path)
    assert (info.phase, info.phase_rule) == (2, "TriggerTime")
    assert _first_column_values(image) == [expected_value(2, s, 0) for s in range(4)]


def test_dce_series_with_only_per_slice_acquisition_times_is_split_by_them(tmp_path):
    write_mr_series(tmp_path, n_slices=4, n_phases=3, phase_tags=("AcquisitionTime",))
    image, info = read_image_with_info(tmp_path, dce_phase=3)
    assert (info.phase, info.phase_rule) == (3, "AcquisitionTime")
    assert _first_column_values(image) == [expected_value(3, s, 0) for s in range(4)]


def test_phase_1_is_the_pre_contrast_acquisition(tmp_path):
    write_mr_series(tmp_path, n_slices=3, n_phases=2)
    image = read_image(tmp_path, dce_phase=1)
    assert _first_column_values(image) == [expected_value(1, s, 0) for s in range(3)]
    assert image.GetMetaData("lvi:dce_phase") == "1"


def test_dce_phase_beyond_the_series_is_an_error(tmp_path):
    write_mr_series(tmp_path, n_slices=3, n_phases=2)
    with pytest.raises(InputError, match="phase 5 was requested but the dynamic series has 2 phases"):
        read_image(tmp_path, dce_phase=5)


def test_dynamic_images_without_any_time_tag_are_an_error(tmp_path):
    write_mr_series(tmp_path, n_slices=3, n_phases=2, phase_tags=())
    with pytest.raises(InputError, match="none of TemporalPositionIdentifier"):
        read_image(tmp_path)


def test_dynamic_series_missing_an_image_in_one_phase_is_an_error(tmp_path):
    written = write_mr_series(tmp_path, n_slices=3, n_phases=2)
    os.remove(written.files[0])
    with pytest.raises(InputError, match="incomplete dynamic series"):
        read_image(tmp_path)


def test_folder_with_one_series_per_phase_gives_phase_2(tmp_path):
    written = write_phase_per_series(tmp_path, n_phases=3, n_slices=4)
    image, info = read_image_with_info(tmp_path)
    assert (info.phase, info.n_phases) == (2, 3)
    assert info.phase_rule == "series order by TemporalPositionIdentifier"
    assert info.series_uid == written[1].uid
    assert _first_column_values(image) == [expected_value(2, s, 0) for s in range(4)]


def test_missing_slice_is_an_error_naming_the_gap(tmp_path):
    write_mr_series(tmp_path, n_slices=6, slice_spacing=1.5, skip_slices=(3,), origin=(0, 0, 0))
    with pytest.raises(InputError, match=r"missing slices between positions 3\.00 and 6\.00 mm"):
        read_image(tmp_path)


def test_slightly_uneven_spacing_is_a_warning_and_uses_the_mean(tmp_path):
    write_mr_series(tmp_path, n_slices=4, slice_offsets=(0.0, 1.5, 3.1, 4.5))
    image, info = read_image_with_info(tmp_path)
    assert any("uneven slice spacing" in w for w in info.warnings)
    assert image.GetSpacing()[2] == pytest.approx(1.5)


def test_single_slice_series_is_an_error_when_3d_is_needed(tmp_path):
    write_mr_series(tmp_path, n_slices=1)
    with pytest.raises(InputError, match="single slice"):
        read_image(tmp_path)


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(InputError, match="holds no DICOM images"):
        read_image(tmp_path)


def test_folder_of_non_dicom_files_is_an_error_and_lists_them_as_ignored(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(InputError, match=r"holds no DICOM images \(1 file"):
        read_image(tmp_path)


def test_stray_non_dicom_file_is_ignored_with_a_warning(tmp_path):
    write_mr_series(tmp_path, n_slices=3)
    (tmp_path / "DICOMDIR.txt").write_text("index")
    image, info = read_image_with_info(tmp_path)
    assert image.GetSize()[2] == 3
    assert any("ignored 1 file" in w for w in info.warnings)


def test_series_in_nested_folders_are_found(tmp_path):
    write_mr_series(tmp_path / "patient" / "study" / "series", n_slices=3)
    assert read_image(tmp_path).GetSize()[2] == 3


def test_mixed_orientations_in_one_series_is_an_error(tmp_path):
    written = write_mr_series(tmp_path, n_slices=3, prefix="a")
    write_mr_series(tmp_path, n_slices=1, series_uid=written.uid, orientation=(0, 1, 0, 0, 0, -1),
                    origin=(5, 0, 0), prefix="localizer")
    with pytest.raises(InputError, match="mixes slice orientations"):
        read_image(tmp_path)


def test_non_orthonormal_orientation_is_an_error(tmp_path):
    write_mr_series(tmp_path, n_slices=3, orientation=(1.0, 0.0, 0.0, 0.0, 0.9, 0.3))
    with pytest.raises(InputError, match="not orthonormal"):
        read_image(tmp_path)


def test_a_rescale_that_starts_on_the_second_slice_is_applied_per_slice_in_float(tmp_path):
    """GDCM's series reader takes the output type from the first file: with the identity rescale there
    and a fractional slope from the second slice on, the rescaled values came back truncated."""
    written = write_mr_series(tmp_path, n_slices=3, shuffle=False)
    slopes, intercepts = [1.0, 0.25, 0.5], [0.0, 0.5, -3.0]
    for path, slope, intercept in zip(written.files, slopes, intercepts):
        ds = pydicom.dcmread(path)
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.save_as(path)
    image, _ = read_image_with_info(str(tmp_path))
    got = sitk.GetArrayFromImage(image)
    stored = np.stack([pydicom.dcmread(p).pixel_array for p in written.files]).astype(np.float64)
    expected = stored * np.asarray(slopes)[:, None, None] + np.asarray(intercepts)[:, None, None]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    assert not np.allclose(got[1], np.round(got[1]))  # fractional values kept
