"""The preprocessing cache: keyed by spec + file content, corrupt entries rebuilt, one preprocessing path."""

import numpy as np
import pytest
import SimpleITK as sitk

from LVIPredictorLib.errors import InputError
from LVIPredictorLib.preprocessing import PreprocessSpec, default_spec, preprocess
from lvi_training.cache import PreparedCache
from lvi_training.cohort import load_cohort
from training_helpers import read_rows, write_blob_cohort

SMALL_3D = PreprocessSpec(dims=3, target_spacing=(2.0, 2.0, 2.0), crop_size=(32, 32, 32))


@pytest.fixture()
def cohort(tmp_path):
    write_blob_cohort(tmp_path / "cohort", n=4, seed=6, shape=(8, 24, 24))
    return load_cohort(tmp_path / "cohort")


def _entries(store):
    return sorted(store.root.glob("*/*.npy"))


def test_second_prepare_reads_everything_from_the_cache(cohort, tmp_path):
    store = PreparedCache(tmp_path / "cache")
    first, built = store.prepare(cohort.cases, "t2", SMALL_3D, workers=2)
    again, rebuilt = store.prepare(cohort.cases, "t2", SMALL_3D, workers=2)
    assert (built, rebuilt) == (4, 0)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.inputs, b.inputs)


def test_cached_inputs_are_exactly_what_preprocess_gives(cohort, tmp_path):
    store = PreparedCache(tmp_path / "cache")
    spec = default_spec("vanilla_cnn_2d")
    (cached,), _ = store.prepare(cohort.cases[:1], "dce", spec, workers=1)
    case = cohort.cases[0]
    image = sitk.ReadImage(str(case.images["dce"]))
    direct = preprocess(image, sitk.ReadImage(str(case.masks["dce"])), spec)
    np.testing.assert_array_equal(cached.inputs, direct.inputs)
    np.testing.assert_allclose(cached.slice_weights, direct.slice_weights)


def test_a_changed_spec_never_reads_the_old_entries(cohort, tmp_path):
    store = PreparedCache(tmp_path / "cache")
    store.prepare(cohort.cases, "t2", SMALL_3D, workers=1)
    other = PreprocessSpec.from_dict(dict(SMALL_3D.to_dict(), margin_mm=8.0))
    _, built = store.prepare(cohort.cases, "t2", other, workers=1)
    assert built == 4
    assert len(_entries(store)) == 8


def test_a_changed_image_file_rebuilds_only_that_case(cohort, tmp_path):
    store = PreparedCache(tmp_path / "cache")
    before, _ = store.prepare(cohort.cases, "t2", SMALL_3D, workers=1)
    path = cohort.cases[2].images["t2"]
    image = sitk.ReadImage(str(path))
    sitk.WriteImage(sitk.InvertIntensity(image, 500.0), str(path))
    after, built = store.prepare(cohort.cases, "t2", SMALL_3D, workers=1)
    assert built == 1
    assert not np.array_equal(before[2].inputs, after[2].inputs)
    np.testing.assert_array_equal(before[0].inputs, after[0].inputs)


@pytest.mark.parametrize("damage", ["flip_bytes", "truncate"])
def test_a_corrupt_entry_is_detected_and_rebuilt(cohort, tmp_path, damage):
    store = PreparedCache(tmp_path / "cache")
    original, _ = store.prepare(cohort.cases, "t2", SMALL_3D, workers=1)
    entry = _entries(store)[0]
    data = bytearray(entry.read_bytes())
    if damage == "flip_bytes":
        middle = len(data) // 2
        data[middle:middle + 16] = bytes(255 - b for b in data[middle:middle + 16])
    else:
        data = data[: len(data) // 3]
    entry.write_bytes(bytes(data))
    again, built = store.prepare(cohort.cases, "t2", SMALL_3D, workers=1)
    assert built == 1
    for a, b in zip(original, again):
        np.testing.assert_array_equal(a.inputs, b.inputs)


def test_preprocessing_errors_of_all_cases_are_reported_together(cohort, tmp_path):
    for case in cohort.cases[:2]:
        mask = sitk.ReadImage(str(case.masks["t2"]))
        mask.SetOrigin((900.0, 900.0, 900.0))
        sitk.WriteImage(mask, str(case.masks["t2"]))
    with pytest.raises(InputError) as info:
        PreparedCache(tmp_path / "cache").prepare(cohort.cases, "t2", SMALL_3D, workers=2)
    message = str(info.value)
    assert "2 case(s)" in message
    assert all(c.case_id in message for c in cohort.cases[:2])


def test_rows_with_dicom_folders_are_hashed_by_content(tmp_path):
    from lvi_training.sources import content_hash

    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "a.dcm").write_bytes(b"one")
    (folder / "b.dcm").write_bytes(b"two")
    first = content_hash(folder)
    (folder / "b.dcm").write_bytes(b"TWO")
    assert content_hash(folder) != first
    (folder / "b.dcm").write_bytes(b"two")
    assert content_hash(folder) == first
    assert read_rows  # helper module imported for the shared cohort writer
