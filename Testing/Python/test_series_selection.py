"""A whole study in one folder (localizer, FS-T2WI, T2 without fat saturation, 5-phase DCE, shuffled
file names): the series for each sequence is picked by its DICOM attributes, and the choice is explained."""

import numpy as np
import pytest
import SimpleITK as sitk

from dicom_factory import expected_value
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.inputs.readers import read_image, read_image_with_info
from study_factory import write_study


def _slice_values(image):
    """Value at row 0, column 0 of every slice: 1000 * phase + 10 * slice."""
    return sitk.GetArrayFromImage(image)[:, 0, 0].tolist()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    return folder, write_study(folder)


def test_file_names_say_nothing_about_the_series(study):
    folder, _ = study
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 3 + 4 + 4 + 5 * 6 and all(n.startswith("IM") for n in names)


def test_t2_is_the_fat_suppressed_t2_and_the_reason_is_given(study):
    folder, written = study
    image, info = read_image_with_info(folder, sequence="t2")
    assert info.series_uid == written["fs_t2"].uid
    assert image.GetSize() == (10, 8, 4) and np.allclose(image.GetSpacing(), (0.7, 0.7, 4.0))
    reason = info.selection[0]
    assert "t2_tse_fs_tra" in reason and "TE 71 ms" in reason and "TR 4800 ms" in reason
    assert "fat-suppressed (ScanOptions FS)" in reason and "not dynamic" in reason
    not_taken = "\n".join(info.selection[1:])
    for expected in ("localizer", "t2_tse_tra", "no fat suppression", "fl3d_dyn_tra", "dynamic: 5 phases"):
        assert expected in not_taken


def test_dce_is_the_dynamic_series_and_its_phase_is_the_one_asked_for(study):
    folder, written = study
    image, info = read_image_with_info(folder, sequence="dce")
    assert info.series_uid == written["dce"].uid
    assert (info.phase, info.n_phases, info.phase_rule) == (2, 5, "TemporalPositionIdentifier")
    assert _slice_values(image) == [expected_value(2, k, 0) for k in range(6)]
    assert "dynamic: 5 phases at each of 6 slice positions" in info.selection[0]
    image4 = read_image(folder, sequence="dce", dce_phase=4)
    assert _slice_values(image4) == [expected_value(4, k, 0) for k in range(6)]


def test_without_a_sequence_the_error_lists_every_series_with_its_series_uid_option(study):
    folder, written = study
    with pytest.raises(InputError) as caught:
        read_image(folder)
    message = str(caught.value)
    assert str(folder) in message and "holds 4 image series" in message and "--sequence" in message
    for key in ("fs_t2", "t2", "dce"):
        assert "--series-uid {}".format(written[key].uid) in message
    assert "--series-uid {}".format(written["localizer"][0].uid) in message


def test_series_uid_still_overrides_the_choice(study):
    folder, written = study
    image, info = read_image_with_info(folder, sequence="t2", series_uid=written["t2"].uid)
    assert info.series_uid == written["t2"].uid and info.selection == []


def test_two_fat_suppressed_t2_series_are_an_error_listing_both(tmp_path):
    written = write_study(tmp_path, second_fs_t2=True)
    with pytest.raises(InputError) as caught:
        read_image(tmp_path, sequence="t2")
    message = str(caught.value)
    assert "holds 2 FS-T2WI series; choose one with --series-uid" in message
    for key in ("fs_t2", "fs_t2_b"):
        assert "--series-uid {}".format(written[key].uid) in message
    assert written["t2"].uid not in message  # the T2 without fat suppression is no candidate
    image = read_image(tmp_path, sequence="t2", series_uid=written["fs_t2_b"].uid)
    assert image.GetSize()[2] == 5


def test_the_only_t2_without_fat_suppression_is_taken_with_a_warning(tmp_path):
    written = write_study(tmp_path, fs_t2=False)
    _, info = read_image_with_info(tmp_path, sequence="t2")
    assert info.series_uid == written["t2"].uid
    assert any("no fat suppression" in w and "fat-suppressed" in w for w in info.warnings)


def test_a_study_without_t2_says_which_series_it_saw_and_why_none_fits(tmp_path):
    write_study(tmp_path, fs_t2=False, t2_no_fat_sat=False, diffusion=True)
    with pytest.raises(InputError) as caught:
        read_image(tmp_path, sequence="t2")
    message = str(caught.value)
    assert "holds no FS-T2WI series; it holds:" in message
    assert "'localizer'" in message and "a localizer (ImageType LOCALIZER)" in message
    assert "'ep2d_diff_b50_800_tra'" in message and "diffusion-weighted (b-value 800)" in message
    assert "'fl3d_dyn_tra'" in message and "dynamic: 5 phases" in message


def test_a_study_without_dce_says_so(tmp_path):
    write_study(tmp_path, dce=False)
    with pytest.raises(InputError, match="holds no dynamic \\(DCE\\) series; it holds:"):
        read_image(tmp_path, sequence="dce")


def test_dce_exported_as_one_series_per_phase_is_one_candidate(tmp_path):
    written = write_study(tmp_path, dce_per_series=True, dce_phases=4)
    image, info = read_image_with_info(tmp_path, sequence="dce")
    assert info.series_uid == written["dce"][1].uid and (info.phase, info.n_phases) == (2, 4)
    assert _slice_values(image) == [expected_value(2, k, 0) for k in range(6)]
    assert "4 single-phase series on one grid" in info.selection[0]
    # The T2 series beside them stay out of the DCE group.
    assert read_image_with_info(tmp_path, sequence="t2")[1].series_uid == written["fs_t2"].uid


def test_a_single_series_of_the_other_sequence_is_read_with_a_warning(tmp_path):
    write_study(tmp_path, localizer=False, fs_t2=False, t2_no_fat_sat=False)
    _, info = read_image_with_info(tmp_path, sequence="t2")
    assert any("was read as FS-T2WI but looks dynamic (DCE)" in w for w in info.warnings)
