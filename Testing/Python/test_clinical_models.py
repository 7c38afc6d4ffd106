"""Clinical and combined (clinical + imaging) models: training, leakage refused, export, prediction,
and the null cohort.

The imaging model is the radiomics baseline (seconds to train) on the tiny blob cohort with
clinical columns drawn from the label (clinical_helpers); the null test uses the null phantom cohort.
"""

import csv
import json
import shutil

import numpy as np
import pytest

from LVIPredictorLib import clinical, inference, weights
from LVIPredictorLib.errors import InputError, WeightsError
from LVIPredictorLib.inputs import readers
from lvi_training import clinical_fit, clinical_table
from lvi_training.cli import main as lvi
from clinical_helpers import add_clinical_columns
from training_helpers import write_blob_cohort


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("clinical_cohort")
    write_blob_cohort(root, n=30, seed=0, signal=1.0)
    add_clinical_columns(root, seed=1, signal=1.0, missing=0.15)
    return root


@pytest.fixture(scope="module")
def imaging_run(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("imaging") / "dce_radiomics"
    assert lvi(["train", "--cohort", str(cohort), "--model", "radiomics_lr", "--sequence", "dce", "--out", str(out),
                "--threads", "1"]) == 0
    return out


@pytest.fixture(scope="module")
def combined_run(cohort, imaging_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("combined") / "combined"
    assert lvi(["train", "--cohort", str(cohort), "--model", "combined", "--imaging-run", str(imaging_run),
                "--out", str(out)]) == 0
    return out


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


def test_clinical_lr_trains_on_the_clinical_columns_with_the_cv_protocol(cohort, tmp_path):
    out = tmp_path / "clinical"
    assert lvi(["train", "--cohort", str(cohort), "--model", "clinical_lr", "--out", str(out)]) == 0
    m = _metrics(out)
    assert m["n"] == 30 and m["auc"] > 0.7 and m["auc_ci_delong"][0] < m["auc"]
    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and {r["fold"] for r in rows} == {"fold_{}".format(k) for k in range(5)}
    for k in range(5):
        fold = json.loads((out / "fold_{}".format(k) / "result.json").read_text())
        # The fill values come from the fold's training cases only.
        test_ids = {r["case_id"] for r in fold["test"]}
        assert not test_ids & {r["case_id"] for r in fold["train"]}
        assert fold["threshold_method"] == "youden_on_training_predictions"
        assert set(fold["model"]["fill"]) == set(clinical.NAMES)


def test_the_combined_model_reads_each_case_s_out_of_fold_imaging_score(imaging_run, combined_run):
    oof, _ = clinical_fit.verified_out_of_fold(imaging_run)
    splits = json.loads((combined_run / "splits.json").read_text())
    imaging_splits = json.loads((imaging_run / "splits.json").read_text())
    assert [sorted(np.array(imaging_splits["case_ids"])[f["test"]]) for f in imaging_splits["folds"]] == \
        [sorted(np.array(splits["case_ids"])[f["test"]]) for f in splits["folds"]]
    final = clinical_fit.final_model(combined_run)
    assert final["with_imaging"] and len(final["coefficients"]) == 2 * len(clinical.NAMES) + 1
    for name in ("nomogram.png", "decision_curve.png", "predictions.csv", "metrics.json"):
        assert (combined_run / name).stat().st_size > 1000 or name == "metrics.json"
    assert _metrics(combined_run)["n"] == len(oof)


def _copy_with(imaging_run, tmp_path, edit):
    copy = tmp_path / "tampered"
    shutil.copytree(str(imaging_run), str(copy))
    path = copy / "predictions.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    edit(copy, rows)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return copy


def test_in_fold_training_scores_in_place_of_out_of_fold_ones_are_caught(cohort, imaging_run, tmp_path):
    def in_fold(copy, rows):
        # The leak a careless stacker makes: each case scored by a model that trained on it.
        final = json.loads((copy / "final" / "result.json").read_text())
        by_case = {r["case_id"]: r["probability"] for r in final["train"]}
        rows[4]["probability"] = "{:.6f}".format(by_case[rows[4]["case_id"]])

    leaky = _copy_with(imaging_run, tmp_path, in_fold)
    with pytest.raises(InputError, match="an in-fold, training-set score|its fold's held-out score is"):
        clinical_fit.train_clinical_run(cohort, clinical_fit.COMBINED, tmp_path / "c", imaging_run=leaky)
    assert lvi(["train", "--cohort", str(cohort), "--model", "combined", "--imaging-run", str(leaky),
                "--out", str(tmp_path / "c")]) == 2


def test_a_fold_s_own_training_score_is_named_as_in_fold(imaging_run, tmp_path):
    def from_fold_training(copy, rows):
        fold = json.loads((copy / "fold_0" / "result.json").read_text())
        train = {r["case_id"]: r["probability"] for r in fold["train"]}
        row = next(r for r in rows if r["case_id"] in train)
        row["probability"] = "{:.6f}".format(train[row["case_id"]])

    leaky = _copy_with(imaging_run, tmp_path, from_fold_training)
    with pytest.raises(InputError, match=r"\(the value is an in-fold, training-set score\)"):
        clinical_fit.verified_out_of_fold(leaky)


def test_runs_without_out_of_fold_scores_for_every_case_are_refused(imaging_run, tmp_path):
    def drop_a_case(copy, rows):
        rows.pop()

    with pytest.raises(InputError, match="lacks the out-of-fold score of 1 case"):
        clinical_fit.verified_out_of_fold(_copy_with(imaging_run, tmp_path / "a", drop_a_case))

    def paper_split(copy, rows):
        config = json.loads((copy / "config.json").read_text())
        (copy / "config.json").write_text(json.dumps(dict(config, split="paper")))

    with pytest.raises(InputError, match="is a paper run: its predictions are not out-of-fold for every case"):
        clinical_fit.verified_out_of_fold(_copy_with(imaging_run, tmp_path / "b", paper_split))


def test_a_missing_clinical_column_in_every_training_case_is_refused_naming_it(cohort, tmp_path):
    root = tmp_path / "empty_column"
    shutil.copytree(str(cohort), str(root))
    with open(root / "cohort.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["her2"] = ""
    from clinical_helpers import write_rows
    write_rows(root, rows)
    with pytest.raises(InputError, match="clinical column her2 has no value in the training cases"):
        clinical_fit.train_clinical_run(root, clinical_fit.CLINICAL_LR, tmp_path / "run")


def test_the_exported_card_declares_its_inputs_and_lvi_predict_takes_them(cohort, imaging_run, combined_run,
                                                                         tmp_path, capsys):
    models = tmp_path / "models"
    assert lvi(["export", str(imaging_run), "--out", str(models / "dce_radiomics")]) == 0
    assert lvi(["export", str(combined_run), "--out", str(models / "combined"),
                "--imaging-card", str(models / "dce_radiomics.json")]) == 0
    card = json.loads((models / "combined.json").read_text())
    assert [i["name"] for i in card["clinical"]["inputs"]] == list(clinical.NAMES)
    assert card["clinical"]["inputs"][5]["unit"] == "%" and card["clinical"]["inputs"][2]["allowed"] == "0 or 1"
    assert card["clinical"]["imputation"]["rule"] == clinical.MISSING_RULE
    assert card["threshold_method"] == "youden_on_out_of_fold_predictions"
    assert card["imaging_model"]["card"] == "dce_radiomics.json"

    image, mask = cohort / "images" / "case003_dce.nii.gz", cohort / "images" / "case003_dce_mask.nii.gz"
    report = tmp_path / "report"
    assert lvi(["predict", "--dce", str(image), str(mask), "--model", str(models / "combined.json"), "--clinical",
                "age=61,tumour_size_mm=25,mri_aln=1,peritumoral_edema=,her2=0", "--out", str(report),
                "--no-heatmap"]) == 0
    # The combined card runs in the prediction service: its record is in result.json like any model's.
    [got] = json.loads((report / "result.json").read_text())["predictions"]
    assert got["model_id"] == card["model_id"] and got["architecture"] == "clinical_combined"
    imaging_p = got["member_probabilities"][card["imaging_model"]["model_id"]]
    values = clinical.parse_clinical("age=61,tumour_size_mm=25,mri_aln=1,her2=0", card)
    expected = clinical.predict(card, values, imaging_p)
    assert got["probability"] == pytest.approx(expected["probability"])
    assert got["label"] == expected["label"] and got["threshold"] == pytest.approx(expected["threshold"])
    imputed = next(w for w in got["warnings"] if w.startswith("imputed (missing): "))
    assert set(expected["imputed"]) == {"peritumoral_edema", "ki67"}
    assert all(name in imputed for name in expected["imputed"]) and "age" not in imputed
    assert "imputed (missing): peritumoral_edema" in capsys.readouterr().out

    assert lvi(["predict", "--dce", str(image), str(mask), "--model", str(models / "combined.json"), "--out",
                str(tmp_path / "r2"), "--no-heatmap"]) == 2  # no --clinical: refused, naming the fields
    capsys.readouterr()
    assert lvi(["predict", "--dce", str(image), str(mask), "--model", str(models / "combined.json"), "--clinical",
                "age=,her2=", "--out", str(tmp_path / "r3"), "--no-heatmap"]) == 2  # all missing: not all imputed
    assert "needs clinical data (none given): --clinical age=...," in capsys.readouterr().err
    assert not (tmp_path / "r3").exists()
    card["clinical"]["coefficients"][0] += 1.0
    (models / "combined.json").write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="does not match its SHA-256"):
        weights.load_clinical_card(models / "combined.json")


def test_the_table_compares_clinical_imaging_and_combined_with_paired_delong(cohort, imaging_run, combined_run,
                                                                            tmp_path):
    clinical_dir = tmp_path / "clinical"
    clinical_fit.train_clinical_run(cohort, clinical_fit.CLINICAL_LR, clinical_dir)
    row = clinical_table.compare(clinical_dir, imaging_run, combined_run)
    assert row["n"] == 30
    for key in ("combined_vs_imaging", "combined_vs_clinical", "imaging_vs_clinical"):
        assert 0.0 <= row[key]["p"] <= 1.0 and row[key]["ci"][0] <= row[key]["difference"] <= row[key]["ci"][1]
    assert row["combined"]["auc"] == pytest.approx(_metrics(combined_run)["auc"])
    assert "| radiomics_lr dce | 30 (" in clinical_table.markdown([row])


def test_the_null_cohort_ci_covers_one_half_for_the_clinical_and_combined_models(null_phantom_cohort, tmp_path):
    imaging = tmp_path / "null_radiomics"
    assert lvi(["train", "--cohort", str(null_phantom_cohort), "--model", "radiomics_lr", "--sequence", "t2",
                "--out", str(imaging), "--threads", "1"]) == 0
    for model, extra in (("clinical_lr", []), ("combined", ["--imaging-run", str(imaging)])):
        out = tmp_path / model
        assert lvi(["train", "--cohort", str(null_phantom_cohort), "--model", model, "--out", str(out)] + extra) == 0
        m = _metrics(out)
        lo, hi = m["auc_ci_delong"]
        assert lo <= 0.5 <= hi, "{}: null cohort AUC {:.3f} CI {:.3f}-{:.3f} excludes 0.5".format(
            model, m["auc"], lo, hi)


def test_a_cohort_is_predicted_and_evaluated_with_each_case_s_own_clinical_columns(cohort, imaging_run,
                                                                                  combined_run, tmp_path, capsys):
    models = tmp_path / "models"
    assert lvi(["export", str(imaging_run), "--out", str(models / "dce_radiomics")]) == 0
    assert lvi(["export", str(combined_run), "--out", str(models / "combined"),
                "--imaging-card", str(models / "dce_radiomics.json")]) == 0
    card = weights.load_card(models / "combined.json")
    assert lvi(["predict", "--cohort", str(cohort), "--model", str(models / "combined.json"), "--model",
                str(models / "dce_radiomics.json"), "--out", str(tmp_path / "p")]) == 0
    with open(tmp_path / "p" / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(cohort / "cohort.csv", newline="") as f:
        columns = {row["case_id"]: row for row in csv.DictReader(f)}
    imaging_id = weights.load_card(models / "dce_radiomics.json")["model_id"]
    imaging = {r["case_id"]: float(r["probability"]) for r in rows if r["model_id"] == imaging_id}
    combined = {r["case_id"]: float(r["probability"]) for r in rows if r["model_id"] == card["model_id"]}
    assert len(combined) == len(columns) == 30
    predictor = inference.Predictor(str(models / "dce_radiomics.json"), device="cpu")
    for case_id, probability in combined.items():
        row = columns[case_id]
        image = readers.read_image(cohort / row["dce_image"])
        imaging_p = predictor.predict(image, readers.read_mask(cohort / row["dce_mask"], reference=image)).probability
        assert imaging[case_id] == pytest.approx(imaging_p, abs=1e-6)  # predictions.csv holds 6 decimals
        values = clinical.parse_clinical(row, card)
        expected = clinical.predict(card, values, imaging_p)
        assert probability == pytest.approx(expected["probability"], abs=1e-6)
    # The table says what each combined probability rests on: the imaging probability and the values read.
    based_on = next(r["based_on"] for r in rows if r["model_id"] == card["model_id"] and r["case_id"] == case_id)
    assert based_on.startswith("{}=".format(imaging_id))
    assert all("; {}={}".format(n, "missing" if v is None else "{:g}".format(v)) in based_on
               for n, v in values.items())

    capsys.readouterr()
    assert lvi(["predict", "--cohort", str(cohort), "--model", str(models / "combined.json"), "--clinical", "age=50",
                "--out", str(tmp_path / "q")]) == 2
    assert "with --cohort each case's clinical values come from the cohort's columns" in capsys.readouterr().err

    assert lvi(["evaluate", "--model", str(models / "combined.json"), "--cohort", str(cohort), "--out",
                str(tmp_path / "e")]) == 0
    from sklearn.metrics import roc_auc_score

    labels = [int(columns[c]["lvi"]) for c in combined]
    assert _metrics(tmp_path / "e")["auc"] == pytest.approx(roc_auc_score(labels, list(combined.values())))


def test_a_combined_card_records_its_sample_case_reference_or_is_not_written(imaging_run, combined_run, tmp_path,
                                                                            capsys):
    from lvi_training.reference import default_sample_case

    sample = default_sample_case()
    models = tmp_path / "models"
    assert lvi(["export", str(imaging_run), "--out", str(models / "dce_radiomics"), "--reference-case",
                str(sample)]) == 0
    combined = ["export", str(combined_run), "--out", str(models / "combined"), "--imaging-card",
                str(models / "dce_radiomics.json"), "--reference-case"]
    assert lvi(combined + [str(sample)]) == 0
    card = json.loads((models / "combined.json").read_text())
    reference = card["reference_prediction"]
    assert reference["clinical"]["age"] == 52 and reference["case"] == sample.name
    assert card["model_id"] == "combined"
    # A case folder without its clinical values (no case.json): the export fails and the card already
    # there is kept whole, with no staged file left beside it.
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("dce_phase2.nii.gz", "dce_mask.nii.gz"):
        shutil.copy(sample / name, bare / name)
    before = (models / "combined.json").read_bytes()
    assert lvi(combined + [str(bare), "--overwrite"]) == 2
    assert "case.json: not found: a combined model's reference prediction reads" in capsys.readouterr().err
    assert (models / "combined.json").read_bytes() == before
    assert sorted(p.name for p in models.iterdir()) == ["combined.json", "dce_radiomics.json",
                                                        "dce_radiomics.safetensors"]


def test_a_combined_card_is_no_late_fusion_member(imaging_run, combined_run, tmp_path, capsys):
    models = tmp_path / "models"
    assert lvi(["export", str(imaging_run), "--out", str(models / "dce_radiomics")]) == 0
    assert lvi(["export", str(combined_run), "--out", str(models / "combined"),
                "--imaging-card", str(models / "dce_radiomics.json")]) == 0
    capsys.readouterr()
    assert lvi(["fuse", "--member", str(models / "combined.json"), str(combined_run), "--member",
                str(models / "dce_radiomics.json"), str(imaging_run), "--out", str(models / "fused")]) == 2
    assert "is a clinical + imaging model; a late-fusion member reads images only (fuse its imaging model, " \
           "dce_radiomics.json)" in capsys.readouterr().err
    assert not (models / "fused.json").exists()
