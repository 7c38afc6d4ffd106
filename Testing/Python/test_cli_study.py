"""`lvi predict`, `lvi predict --cohort` and `lvi validate-cohort` on a whole study folder: the sample case's
FS-T2WI and 4-phase DCE series with a localizer and a T2 without fat suppression, file names shuffled."""

import csv
import functools
import json
import shutil

import pytest

from dicom_factory import AXIAL, write_mr_series
from LVIPredictorLib import weights
from LVIPredictorLib.vocabulary import kinds
from lvi_training.cli import main
from lvi_training.reference import default_sample_case
from study_factory import LOCALIZER, T2_NO_FAT_SAT, shuffle_names

SAMPLE = default_sample_case()


@functools.lru_cache(maxsize=None)
def _reference(model_id):
    """The model's probability on the sample's own series folders (DICOM: the T2 NIfTI copy's float32
    affine differs by ~1e-6 mm, enough to move a probability by ~3e-4)."""
    from LVIPredictorLib import inference
    from LVIPredictorLib.inputs import readers

    entry = next(e for e in weights.bundled_catalog() if e["model_id"] == model_id)
    predictor = inference.Predictor(entry["card_path"], device="cpu")
    images = {n: readers.read_image(SAMPLE / "dicom" / n) for n in predictor.sequences}
    masks = {n: readers.read_mask(SAMPLE / "{}_mask.nii.gz".format(n), reference=images[n]) for n in predictor.sequences}
    return predictor.predict_case(images, masks).probability


def _study(folder, second_fs_t2=False):
    folder.mkdir()
    for name in ("t2", "dce"):
        for path in (SAMPLE / "dicom" / name).iterdir():
            shutil.copy(path, folder / "{}-{}".format(name, path.name))
    write_mr_series(folder, n_slices=1, orientation=AXIAL, series_number=1, tags=LOCALIZER, prefix="loc")
    write_mr_series(folder, n_slices=4, series_number=5, tags=T2_NO_FAT_SAT, prefix="t2plain")
    if second_fs_t2:
        for path in (SAMPLE / "dicom" / "t2").iterdir():
            shutil.copy(path, folder / "copy-{}".format(path.name))
        _new_series_uid(sorted(folder.glob("copy-*")))
    shuffle_names(folder)
    return folder


def _new_series_uid(paths):
    import pydicom
    from pydicom.uid import generate_uid

    uid = generate_uid()
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.SOPInstanceUID = uid, 33, generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(path)
    return uid


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return _study(tmp_path_factory.mktemp("s") / "study")


def test_predict_t2_from_a_study_folder_picks_the_fs_t2wi_and_says_why(study, tmp_path, capsys):
    rc = main(["predict", "--sequence", "t2", "--image", str(study), "--mask", str(SAMPLE / "t2_mask.nii.gz"),
               "--out", str(tmp_path / "r"), "--no-heatmap"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "series 't2_tse_fs_tra'" in printed and "is the FS-T2WI series" in printed
    assert "fat-suppressed (ScanOptions FS)" in printed
    assert "not taken: series 5 't2_tse_tra'" in printed and "no fat suppression" in printed
    assert "not taken: series 1 'localizer'" in printed
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert result["inputs"]["t2"]["series_selection"][0].startswith("series 3 't2_tse_fs_tra'")
    # The series read out of the study is the sample's FS-T2WI: its probabilities come back.
    for p in result["predictions"]:
        assert p["probability"] == pytest.approx(_reference(p["model_id"]), abs=1e-5)


def test_predict_both_series_from_one_study_folder_runs_every_model(study, tmp_path, capsys):
    rc = main(["predict", "--t2", str(study), str(SAMPLE / "t2_mask.nii.gz"), "--dce", str(study),
               str(SAMPLE / "dce_mask.nii.gz"), "--out", str(tmp_path / "r"), "--no-heatmap"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "is the DCE series" in printed and "phase 2 of 4" in printed
    predictions = json.loads((tmp_path / "r" / "result.json").read_text())["predictions"]
    assert sorted(p["model_id"] for p in predictions) == sorted(
        e["model_id"] for e in weights.bundled_catalog() if not kinds.needs_clinical(e))  # no clinical data given
    for p in predictions:
        assert p["probability"] == pytest.approx(_reference(p["model_id"]), abs=1e-5)


def test_two_fs_t2_series_are_an_error_naming_the_cli_option(tmp_path, capsys):
    study = _study(tmp_path / "study", second_fs_t2=True)
    rc = main(["predict", "--sequence", "t2", "--image", str(study), "--mask", str(SAMPLE / "t2_mask.nii.gz"),
               "--out", str(tmp_path / "r")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "holds 2 FS-T2WI series; choose one with --series-uid" in err
    assert err.count("  --series-uid ") == 2
    assert not (tmp_path / "r").exists()


def _cohort(root, study):
    root.mkdir()
    rows = [{"case_id": "C1", "patient_id": "P1", "lvi": "", "t2_image": str(study),
             "t2_mask": str(SAMPLE / "t2_mask.nii.gz"), "dce_image": str(study),
             "dce_mask": str(SAMPLE / "dce_mask.nii.gz")}]
    with open(root / "cohort.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_cohort_cells_naming_a_study_folder_read_each_sequence_s_series(study, tmp_path, capsys):
    cohort = _cohort(tmp_path / "cohort", study)
    assert main(["validate-cohort", str(cohort), "--sequence", "t2+dce"]) == 1  # the lvi cell is empty
    out = capsys.readouterr().out
    assert "lvi must be 0 or 1" in out and "cannot be read" not in out and "series" not in out.split("problem")[1]
    models = ["demo-t2-vanilla_cnn_2d", "demo-dce-resnet10_2d", "demo-t2+dce-vanilla_cnn_2d"]
    rc = main(["predict", "--cohort", str(cohort), "--out", str(tmp_path / "p")] +
              [arg for m in models for arg in ("--model", m)])
    assert rc == 0
    with open(tmp_path / "p" / "predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["model_id"] for r in rows) == sorted(models)
    for row in rows:
        assert float(row["probability"]) == pytest.approx(_reference(row["model_id"]), abs=1e-5)


def test_validate_cohort_lists_the_candidates_of_an_ambiguous_study_cell(tmp_path, capsys):
    study = _study(tmp_path / "study", second_fs_t2=True)
    cohort = _cohort(tmp_path / "cohort", study)
    assert main(["validate-cohort", str(cohort), "--sequence", "t2"]) == 1
    out = capsys.readouterr().out
    assert "holds 2 FS-T2WI series" in out and out.count("--series-uid ") >= 2
    assert "name the series' own folder" in out


def test_training_cache_reads_each_sequence_s_series_from_a_study_cell(study, tmp_path):
    import numpy as np

    from LVIPredictorLib import preprocessing
    from LVIPredictorLib.inputs import readers
    from LVIPredictorLib.preprocessing import Channel
    from lvi_training.cache import PreparedCache
    from lvi_training.cohort import load_cohort

    cohort = load_cohort(_cohort(tmp_path / "cohort", study))
    spec = preprocessing.default_spec("vanilla_cnn_2d")
    [cached], built = PreparedCache(tmp_path / "cache").prepare(cohort.cases, "t2+dce", spec, workers=1)
    assert built == 1
    channels = []
    for name in ("t2", "dce"):
        image = readers.read_image(SAMPLE / "dicom" / name)
        mask_path = SAMPLE / "{}_mask.nii.gz".format(name)
        channels.append(Channel(image, readers.read_mask(mask_path, reference=image), str(image), str(mask_path)))
    expected = preprocessing.preprocess_channels(channels, spec, grid_channel=1)
    assert np.array_equal(cached.inputs, expected.inputs)
