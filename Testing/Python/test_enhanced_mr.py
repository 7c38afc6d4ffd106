"""Enhanced (multi-frame) MR DICOM, built in the tests with pydicom and highdicom: frames placed and
phased by their functional groups, through the same geometry checks as single-frame series."""

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import RLELossless, generate_uid

from dicom_factory import expected_value, save_dataset, write_mr_series
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.inputs.readers import read_image, read_image_with_info
from study_factory import FS_T2, write_enhanced_mr, write_study


def _slice_values(image):
    return sitk.GetArrayFromImage(image)[:, 0, 0].tolist()


def test_dynamic_enhanced_file_gives_phase_2_in_slice_order_with_its_geometry(tmp_path):
    path, uid, positions = write_enhanced_mr(tmp_path / "dce.dcm", n_slices=5, n_phases=3, rows=6, columns=7,
                                             pixel_spacing=(0.8, 0.9), slice_spacing=2.0)
    image, info = read_image_with_info(path)
    assert image.GetSize() == (7, 6, 5)
    assert np.allclose(image.GetSpacing(), (0.8, 0.9, 2.0)) and np.allclose(image.GetOrigin(), positions[0])
    assert _slice_values(image) == [expected_value(2, k, 0) for k in range(5)]
    assert sitk.GetArrayFromImage(image)[0, 0, :7].tolist() == [expected_value(2, 0, c) for c in range(7)]
    assert (info.phase, info.n_phases) == (2, 3) and "TemporalPositionIndex" in info.phase_rule
    assert info.series_uid == uid and len(info.images) == 5 and {h.frame for h in info.images} <= set(range(15))
    assert _slice_values(read_image(path, dce_phase=3)) == [expected_value(3, k, 0) for k in range(5)]


def test_enhanced_file_equals_the_single_frame_series_of_the_same_acquisition(tmp_path):
    series = write_mr_series(tmp_path / "single", n_slices=5, rows=6, columns=7, pixel_spacing=(0.8, 0.9),
                             slice_spacing=2.0, origin=(-10.0, -12.0, 4.0), n_phases=3)
    path, _, _ = write_enhanced_mr(tmp_path / "dce.dcm", n_slices=5, n_phases=3, rows=6, columns=7,
                                   pixel_spacing=(0.8, 0.9), slice_spacing=2.0, origin=(-10.0, -12.0, 4.0))
    single, enhanced = read_image(tmp_path / "single"), read_image(path)
    assert np.array_equal(sitk.GetArrayFromImage(single), sitk.GetArrayFromImage(enhanced))
    for get in ("GetOrigin", "GetSpacing", "GetDirection"):
        assert np.allclose(getattr(single, get)(), getattr(enhanced, get)(), atol=1e-6)
    assert series.uid  # written


def test_phases_are_told_apart_by_frame_acquisition_time_without_a_temporal_index(tmp_path):
    path, _, _ = write_enhanced_mr(tmp_path / "dce.dcm", n_phases=4, timing="datetime")
    image, info = read_image_with_info(path)
    assert info.n_phases == 4 and "FrameAcquisitionDateTime" in info.phase_rule
    assert _slice_values(image) == [expected_value(2, k, 0) for k in range(5)]


def test_rle_compressed_enhanced_file_decodes_to_the_same_voxels(tmp_path):
    path, _, _ = write_enhanced_mr(tmp_path / "dce.dcm")
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless)
    save_dataset(ds, tmp_path / "rle.dcm")
    assert np.array_equal(sitk.GetArrayFromImage(read_image(path)),
                          sitk.GetArrayFromImage(read_image(tmp_path / "rle.dcm")))


def test_per_frame_rescale_is_applied(tmp_path):
    path, _, _ = write_enhanced_mr(tmp_path / "dce.dcm", frame_rescale=(0.5, -3.0))
    image = read_image(path)
    assert image.GetPixelID() == sitk.sitkFloat32
    assert _slice_values(image) == [0.5 * expected_value(2, k, 0) - 3.0 for k in range(5)]


def test_a_frame_without_a_position_is_an_error_naming_the_frame(tmp_path):
    path, _, _ = write_enhanced_mr(tmp_path / "dce.dcm", shuffle=False)
    ds = pydicom.dcmread(path)
    del ds.PerFrameFunctionalGroupsSequence[3].PlanePositionSequence
    ds.save_as(path)
    with pytest.raises(InputError) as caught:
        read_image(path)
    assert caught.value.source == "{} (frame 4)".format(path) and "no ImagePositionPatient" in caught.value.problem


def test_a_missing_slice_in_one_phase_of_an_enhanced_file_is_an_error(tmp_path):
    path, _, _ = write_enhanced_mr(tmp_path / "dce.dcm", n_slices=5, n_phases=2, shuffle=False)
    ds = pydicom.dcmread(path)
    # The last frame claims the position of another slice of its phase: phase 2 repeats one and lacks one.
    last = ds.PerFrameFunctionalGroupsSequence[-1].PlanePositionSequence[0]
    last.ImagePositionPatient = list(ds.PerFrameFunctionalGroupsSequence[-2].PlanePositionSequence[0]
                                     .ImagePositionPatient)
    ds.save_as(path)
    with pytest.raises(InputError, match="images per slice position"):
        read_image(path)


def test_highdicom_legacy_converted_enhanced_mr_reads_like_its_source_series(tmp_path):
    from highdicom.legacy import LegacyConvertedEnhancedMRImage

    series = write_mr_series(tmp_path / "single", n_slices=4, rows=6, columns=5, tags=dict(
        FS_T2, StudyTime="100000", SeriesDate="20240101", AccessionNumber="1", ReferringPhysicianName="",
        StudyID="1", PatientBirthDate="19700101", PatientSex="F", PositionReferenceIndicator=""))
    legacy = LegacyConvertedEnhancedMRImage([pydicom.dcmread(p) for p in series.files],
                                            series_instance_uid=generate_uid(), series_number=9,
                                            sop_instance_uid=generate_uid(), instance_number=1)
    legacy.save_as(tmp_path / "legacy.dcm")
    single, converted = read_image(tmp_path / "single"), read_image(tmp_path / "legacy.dcm")
    assert np.array_equal(sitk.GetArrayFromImage(single), sitk.GetArrayFromImage(converted))
    for get in ("GetOrigin", "GetSpacing", "GetDirection"):
        assert np.allclose(getattr(single, get)(), getattr(converted, get)(), atol=1e-6)


def test_an_enhanced_dce_file_in_a_study_folder_is_the_dce_series(tmp_path):
    write_study(tmp_path, dce=False)
    _, uid, _ = write_enhanced_mr(tmp_path / "IM_enhanced", n_slices=5, n_phases=4)
    image, info = read_image_with_info(tmp_path, sequence="dce")
    assert info.series_uid == uid and (info.phase, info.n_phases) == (2, 4)
    assert "dynamic: 4 phases" in info.selection[0] and "20 frames" in info.selection[0]
    assert _slice_values(image) == [expected_value(2, k, 0) for k in range(5)]


def test_an_enhanced_fs_t2_file_is_chosen_by_its_functional_group_attributes(tmp_path):
    write_study(tmp_path, fs_t2=False, dce=True)
    _, uid, _ = write_enhanced_mr(tmp_path / "IM_t2", n_slices=4, n_phases=1, acquisition=dict(
        FS_T2, SeriesDescription="T2W_TSE"))
    _, info = read_image_with_info(tmp_path, sequence="t2")
    assert info.series_uid == uid
    assert "AcquisitionContrast T2" in info.selection[0] and "SpectrallySelectedSuppression FAT" in info.selection[0]
