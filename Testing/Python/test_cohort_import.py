"""`lvi import nnunet|monai`: cohort.csv over datasets in the field's formats, checked by validate-cohort."""

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from lvi_training.cli import main as lvi

SHAPE = (8, 24, 24)  # z, y, x
SPACING = (1.0, 1.0, 2.0)


def _volume(path, array):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path))


def _case_arrays(seed):
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(SHAPE)
    voi = (((zz - 4) * 2.0) ** 2 + (yy - 12.0) ** 2 + (xx - 12.0) ** 2 <= 36).astype(np.uint8)
    image = (100 + 10 * rng.normal(size=SHAPE) + 80 * voi).astype(np.float32)
    return image, voi


def _labels_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["case_id", "lvi", "patient_id"])
        writer.writerows(rows)
    return path


def _nnunet(root, cases=("BR_001", "BR_002", "BR_003", "BR_004"), names=None):
    dataset = root / "Dataset501_Breast"
    for i, case in enumerate(cases):
        image, voi = _case_arrays(i)
        _volume(dataset / "imagesTr" / "{}_0000.nii.gz".format(case), image)
        _volume(dataset / "imagesTr" / "{}_0001.nii.gz".format(case), image * 1.5)
        _volume(dataset / "labelsTr" / "{}.nii.gz".format(case), voi)
    meta = {"channel_names": names or {"0": "FS-T2WI", "1": "DCE phase 2"}, "labels": {"background": 0, "tumour": 1},
            "numTraining": len(cases), "file_ending": ".nii.gz"}
    (dataset / "dataset.json").write_text(json.dumps(meta))
    return dataset


def _rows(cohort):
    with open(cohort / "cohort.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_an_nnunet_dataset_becomes_a_valid_cohort_without_copying(tmp_path, capsys):
    dataset = _nnunet(tmp_path)
    labels = _labels_csv(tmp_path / "labels.csv", [("BR_001", 1, "P1"), ("BR_002", 1, "P1"), ("BR_003", 0, ""),
                                                   ("BR_004", 1, "P4"), ("BR_999", 1, "")])
    cohort = tmp_path / "cohort"
    assert lvi(["import", "nnunet", str(dataset), "--labels", str(labels), "--out", str(cohort)]) == 0
    out = capsys.readouterr().out
    assert "4 cases, 3 LVI+" in out and "BR_999" in out  # a labelled case not in the dataset is a note
    rows = _rows(cohort)
    assert [r["case_id"] for r in rows] == ["BR_001", "BR_002", "BR_003", "BR_004"]
    assert rows[0] == {"case_id": "BR_001", "patient_id": "P1", "lvi": "1",
                       "t2_image": "../Dataset501_Breast/imagesTr/BR_001_0000.nii.gz",
                       "t2_mask": "../Dataset501_Breast/labelsTr/BR_001.nii.gz",
                       "dce_image": "../Dataset501_Breast/imagesTr/BR_001_0001.nii.gz",
                       "dce_mask": "../Dataset501_Breast/labelsTr/BR_001.nii.gz"}
    assert rows[2]["patient_id"] == "BR_003"  # no patient id: the case is its own patient
    assert sorted(p.name for p in cohort.iterdir()) == ["cohort.csv"]
    assert lvi(["validate-cohort", str(cohort), "--sequence", "t2+dce"]) == 0
    assert "OK: no problems found" in capsys.readouterr().out

    # --channel overrides the names: here the first channel read as DCE, the second not imported.
    assert lvi(["import", "nnunet", str(dataset), "--labels", str(labels), "--out", str(cohort)]) == 2
    assert "cohort.csv: already exists" in capsys.readouterr().err
    assert lvi(["import", "nnunet", str(dataset), "--labels", str(labels), "--out", str(cohort), "--channel", "dce=0",
                "--overwrite"]) == 0
    rows = _rows(cohort)
    assert rows[0]["dce_image"].endswith("BR_001_0000.nii.gz") and rows[0]["t2_image"] == ""
    assert "1 (DCE phase 2) not imported" in capsys.readouterr().out
    assert lvi(["validate-cohort", str(cohort), "--sequence", "dce"]) == 0


def test_every_problem_of_an_nnunet_import_is_reported_at_once_and_nothing_written(tmp_path, capsys):
    dataset = _nnunet(tmp_path)
    (dataset / "imagesTr" / "BR_002_0001.nii.gz").unlink()
    (dataset / "labelsTr" / "BR_003.nii.gz").unlink()
    labels = _labels_csv(tmp_path / "labels.csv", [("BR_001", 1, ""), ("BR_002", "yes", ""), ("BR_003", 0, "")])
    cohort = tmp_path / "cohort"
    assert lvi(["import", "nnunet", str(dataset), "--labels", str(labels), "--out", str(cohort)]) == 1
    out = capsys.readouterr().out
    assert "4 problem(s); nothing written" in out
    assert "case BR_002 / {}: DCE channel file missing".format(dataset / "imagesTr" / "BR_002_0001.nii.gz") in out
    assert "case BR_003 / {}: label (VOI) file missing".format(dataset / "labelsTr" / "BR_003.nii.gz") in out
    assert "case BR_004 / {}: case has no row in the labels CSV".format(labels) in out
    assert "case BR_002 / {}: line 3: lvi must be 0 or 1, got 'yes'".format(labels) in out
    assert not cohort.exists()


def test_channel_names_that_do_not_say_the_series_ask_for_channel(tmp_path, capsys):
    dataset = _nnunet(tmp_path, names={"0": "MR", "1": "T1 post-contrast T2-matched"})
    labels = _labels_csv(tmp_path / "labels.csv", [(c, 0, "") for c in ("BR_001", "BR_002", "BR_003", "BR_004")])
    assert lvi(["import", "nnunet", str(dataset), "--labels", str(labels), "--out", str(tmp_path / "c")]) == 1
    out = capsys.readouterr().out
    assert "channel 0 is named 'MR', which says neither FS-T2WI nor DCE" in out
    assert "channel 1 is named 'T1 post-contrast T2-matched', which says both" in out and "--channel" in out
    assert lvi(["import", "nnunet", str(dataset), "--labels", str(labels), "--out", str(tmp_path / "c"),
                "--channel", "t2=0", "--channel", "dce=1"]) == 0
    assert lvi(["import", "nnunet", str(dataset), "--labels", str(labels), "--out", str(tmp_path / "d"),
                "--channel", "t2=7"]) == 2
    assert "has no channel 7" in capsys.readouterr().err


def _monai_files(root, cases=3):
    for i in range(cases):
        image, voi = _case_arrays(10 + i)
        _volume(root / "data" / "c{}_t2.nii.gz".format(i), image)
        _volume(root / "data" / "c{}_dce.nii.gz".format(i), image * 2)
        _volume(root / "data" / "c{}_voi.nii.gz".format(i), voi)


def test_a_monai_datalist_becomes_a_valid_cohort(tmp_path, capsys):
    _monai_files(tmp_path)
    both = {"training": [{"case_id": "c{}".format(i), "patient_id": "p{}".format(i // 2), "lvi": i // 2,
                          "t2_image": "data/c{}_t2.nii.gz".format(i), "t2_label": "data/c{}_voi.nii.gz".format(i),
                          "dce_image": "data/c{}_dce.nii.gz".format(i), "dce_mask": "data/c{}_voi.nii.gz".format(i)}
                         for i in range(3)],
            "validation": [{"image": "data/c0_dce.nii.gz", "label": "data/c0_voi.nii.gz"}]}
    (tmp_path / "datalist.json").write_text(json.dumps(both))
    cohort = tmp_path / "cohort"
    assert lvi(["import", "monai", str(tmp_path / "datalist.json"), "--out", str(cohort)]) == 0
    rows = _rows(cohort)
    assert [(r["case_id"], r["patient_id"], r["lvi"]) for r in rows] == [("c0", "p0", "0"), ("c1", "p0", "0"),
                                                                        ("c2", "p1", "1")]
    assert rows[1]["t2_image"] == "../data/c1_t2.nii.gz" and rows[1]["dce_mask"] == "../data/c1_voi.nii.gz"
    assert lvi(["validate-cohort", str(cohort), "--sequence", "t2+dce"]) == 0

    # One series per entry under "image"/"label": which one is said on the command line; labels from a CSV.
    single = {"training": [{"image": "data/c{}_dce.nii.gz".format(i), "label": "data/c{}_voi.nii.gz".format(i)}
                           for i in range(3)]}
    (tmp_path / "single.json").write_text(json.dumps(single))
    labels = _labels_csv(tmp_path / "labels.csv", [("c0_dce", 1, ""), ("c1_dce", 0, ""), ("c2_dce", 0, "")])
    assert lvi(["import", "monai", str(tmp_path / "single.json"), "--labels", str(labels), "--out",
                str(tmp_path / "single")]) == 2
    assert "--image-sequence" in capsys.readouterr().err
    assert lvi(["import", "monai", str(tmp_path / "single.json"), "--labels", str(labels), "--image-sequence", "dce",
                "--out", str(tmp_path / "single")]) == 0
    rows = _rows(tmp_path / "single")
    assert [(r["case_id"], r["lvi"], r["t2_image"]) for r in rows] == [("c0_dce", "1", ""), ("c1_dce", "0", ""),
                                                                      ("c2_dce", "0", "")]
    assert lvi(["validate-cohort", str(tmp_path / "single"), "--sequence", "dce"]) == 0


def test_every_problem_of_a_monai_import_is_reported_at_once(tmp_path, capsys):
    _monai_files(tmp_path)
    entries = [{"case_id": "c0", "lvi": 1, "dce_image": "data/c0_dce.nii.gz", "dce_label": "data/missing.nii.gz"},
               {"case_id": "c1", "dce_image": "data/c1_dce.nii.gz", "dce_label": "data/c1_voi.nii.gz"},
               {"case_id": "c1", "lvi": 0, "dce_image": "data/c1_dce.nii.gz", "dce_label": "data/c1_voi.nii.gz"},
               {"case_id": "c2", "lvi": "maybe", "t2_image": "data/c2_t2.nii.gz"}]
    (tmp_path / "datalist.json").write_text(json.dumps({"training": entries}))
    assert lvi(["import", "monai", str(tmp_path / "datalist.json"), "--out", str(tmp_path / "cohort")]) == 1
    out = capsys.readouterr().out
    assert "4 problem(s); nothing written" in out
    assert "case c0 / {}: label (VOI) file missing".format(tmp_path / "data" / "missing.nii.gz") in out
    assert "training entry 1: no lvi label (0/1); add \"lvi\" or give --labels" in out
    assert "training entry 2: case id used twice" in out
    assert "training entry 3: FS-T2WI has an image but no label" in out
    assert not (tmp_path / "cohort").exists()


@pytest.mark.parametrize("option", ["t2", "flair=0", "t2=x"])
def test_a_malformed_channel_option_is_one_line(tmp_path, capsys, option):
    dataset = _nnunet(tmp_path, cases=("A",))
    labels = _labels_csv(tmp_path / "labels.csv", [("A", 0, "")])
    assert lvi(["import", "nnunet", str(dataset), "--labels", str(labels), "--out", str(tmp_path / "c"),
                "--channel", option]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "SERIES=INDEX" in err
