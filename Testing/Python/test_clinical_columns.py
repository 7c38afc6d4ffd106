"""The clinical columns' contract (LVIPredictorLib.clinical), their validation in a cohort, and the
phantom generator's clinical columns and bounds."""

import csv

import numpy as np
import pytest

from LVIPredictorLib import clinical
from LVIPredictorLib.errors import InputError
from lvi_training.cohort import load_cohort, validate_cohort
from lvi_training.phantom import clinical as phantom_clinical
from lvi_training.phantom.acquisition import PRESETS
from lvi_training.phantom.case import generate_case
from lvi_training.phantom.signs import SignModel
from clinical_helpers import add_clinical_columns, write_rows
from training_helpers import read_rows, write_blob_cohort


def test_text_and_csv_rows_parse_to_values_with_empty_cells_missing():
    assert clinical.parse_clinical("age=61, mri_aln=1,ki67=,her2=0") == {
        "age": 61.0, "tumour_size_mm": None, "mri_aln": 1.0, "peritumoral_edema": None, "her2": 0.0, "ki67": None}
    row = {"case_id": "c1", "lvi": "1", "tumour_size_mm": "23", "peritumoral_edema": "", "ki67": "35"}
    card = {"clinical": {"inputs": [{"name": "tumour_size_mm"}, {"name": "ki67"}, {"name": "peritumoral_edema"}]}}
    assert clinical.parse_clinical(row, card) == {"tumour_size_mm": 23.0, "ki67": 35.0, "peritumoral_edema": None}


@pytest.mark.parametrize("text, words", [
    ("age=61,mri_aln=2", "mri_aln = 2 is outside the allowed values (0 or 1)"),
    ("ki67=140", "ki67 = 140 is outside the allowed values (0 to 100 %)"),
    ("tumour_size_mm=big", "tumour_size_mm = 'big' is not a number"),
    ("ki-67=20", "unknown clinical column 'ki-67'"),
    ("age=60,age=61", "age is given twice"),
    ("age", "'age' is not NAME=VALUE"),
])
def test_bad_values_are_refused_naming_the_column(text, words):
    with pytest.raises(InputError, match="^--clinical: ") as info:
        clinical.parse_clinical(text)
    assert words in str(info.value)


def _card(with_imaging):
    names = ["tumour_size_mm", "mri_aln"]
    coefficients = [0.05, 1.0, 0.3, 0.2] + ([0.8] if with_imaging else [])
    section = clinical.card_section(names, {"tumour_size_mm": 18.0, "mri_aln": 0.0}, coefficients, -2.0,
                                    with_imaging)
    return {"model_id": "m", "architecture": "clinical_combined" if with_imaging else "clinical_lr",
            "threshold": 0.4, "clinical": section}


def test_a_missing_value_is_filled_by_the_card_rule_and_named_never_zero():
    card = _card(with_imaging=True)
    got = clinical.predict(card, {"tumour_size_mm": None, "mri_aln": 1.0}, imaging_probability=0.7)
    z = -2.0 + 0.05 * 18.0 + 1.0 * 1.0 + 0.3 * 1 + 0.2 * 0 + 0.8 * np.log(0.7 / 0.3)
    assert got["probability"] == pytest.approx(1 / (1 + np.exp(-z)))
    assert got["imputed"] == {"tumour_size_mm": 18.0} and got["label"] == int(got["probability"] >= 0.4)
    zero = clinical.predict(card, {"tumour_size_mm": 0.0 + 1.0, "mri_aln": 1.0}, imaging_probability=0.7)
    assert zero["probability"] != got["probability"]
    with pytest.raises(InputError, match="none was given"):
        clinical.predict(card, {"tumour_size_mm": 20.0, "mri_aln": 1.0})
    with pytest.raises(InputError, match="reads clinical data only"):
        clinical.predict(_card(with_imaging=False), {"tumour_size_mm": 20.0, "mri_aln": 0.0}, 0.5)
    assert "imputation" in card["clinical"] and card["clinical"]["imputation"]["rule"] == clinical.MISSING_RULE
    assert [i["allowed"] for i in card["clinical"]["inputs"]] == ["1 to 200 mm", "0 or 1"]


def test_training_fill_values_are_median_and_mode_and_an_empty_column_is_refused():
    fill = clinical.fill_values({"ki67": [10.0, None, 30.0, 20.0, 50.0], "her2": [1.0, 0.0, 0.0, None]},
                                ["ki67", "her2"])
    assert fill == {"ki67": 25.0, "her2": 0.0}
    with pytest.raises(InputError, match="clinical column ki67 has no value in the training cases"):
        clinical.fill_values({"ki67": [None, None]}, ["ki67"])


def test_validate_cohort_reports_every_bad_clinical_cell_with_its_line(tmp_path):
    write_blob_cohort(tmp_path, n=6, shape=(6, 12, 12))
    rows = add_clinical_columns(tmp_path, missing=0.0)
    rows[1]["ki67"], rows[3]["mri_aln"], rows[4]["age"] = "120", "yes", "7"
    write_rows(tmp_path, rows)
    report = validate_cohort(load_cohort(tmp_path), read_images=False)
    text = [str(p) for p in report.problems]
    assert len(text) == 3
    assert "line 3" in text[0] and "ki67 = 120 is outside the allowed values (0 to 100 %)" in text[0]
    assert "line 5" in text[1] and "mri_aln = 'yes' is not a number" in text[1]
    assert "line 6" in text[2] and "age = 7 is outside" in text[2]


def test_validate_cohort_refuses_a_column_spelt_like_a_clinical_one(tmp_path):
    write_blob_cohort(tmp_path, n=4, shape=(6, 12, 12))
    rows = add_clinical_columns(tmp_path, missing=0.0)
    for row in rows:
        row["Ki-67"], row["notes"] = row.pop("ki67"), "x"
    with open(tmp_path / "cohort.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    report = validate_cohort(load_cohort(tmp_path), read_images=False)
    assert [str(p) for p in report.problems] == [
        "{}: column 'Ki-67' looks like the clinical column ki67: name it exactly so (as it is, its values are not "
        "read)".format(tmp_path / "cohort.csv")]


def _image_bytes(case):
    parts = [v.tobytes() for series in (case.t2, case.dce) for v in series.volumes + [series.mask]]
    return parts + [repr((case.lvi, case.age, case.study_date, sorted(case.signs.items()))).encode()]


@pytest.mark.parametrize("null", [False, True])
def test_the_clinical_columns_leave_every_image_byte_of_a_phantom_case_unchanged(monkeypatch, null):
    """The columns come from a stream of their own: the case without drawing them is the same bytes
    (and spawning an eighth stream leaves the first seven as they were)."""
    import lvi_training.phantom.case as case_module

    with_columns = generate_case(5, 0, SignModel(null=null), PRESETS["small"], "small")
    assert set(with_columns.clinical) == set(phantom_clinical.COLUMNS)
    monkeypatch.setattr(case_module, "sample_clinical", lambda rng, signs, model: {})
    without = generate_case(5, 0, SignModel(null=null), PRESETS["small"], "small")
    assert without.clinical == {} and _image_bytes(without) == _image_bytes(with_columns)
    seven = np.random.SeedSequence(5, spawn_key=(0,)).spawn(7)
    eight = np.random.SeedSequence(5, spawn_key=(0,)).spawn(8)
    assert [s.generate_state(4).tolist() for s in seven] == [s.generate_state(4).tolist() for s in eight[:7]]


def test_the_phantom_columns_follow_the_signs_they_report():
    model = SignModel()
    cases = [generate_case(3, i, model, PRESETS["small"], "small") for i in range(3)]
    for case in cases:
        size, oedema = case.clinical["tumour_size_mm"], case.clinical["peritumoral_edema"]
        assert size is None or size == round(np.exp(case.signs["log_diameter"]))
        assert oedema is None or oedema == case.signs["oedema"]


N = 60_000


def test_the_clinical_bounds_are_one_half_on_a_null_cohort_and_add_up_otherwise():
    null = SignModel(null=True)
    assert phantom_clinical.best_auc_with_clinical(null, phantom_clinical.model_for(null), "dce_phase2",
                                                   n_draws=N) == 0.5
    model = SignModel()
    cm = phantom_clinical.model_for(model)
    alone = phantom_clinical.best_auc_with_clinical(model, cm, None, n_draws=N)
    dce = phantom_clinical.best_auc_with_clinical(model, cm, "dce_phase2", n_draws=N)
    from lvi_training.phantom.signs import best_auc_for_input
    assert 0.6 < alone < best_auc_for_input(model, "dce_phase2", n_draws=N) < dce < 0.95


@pytest.mark.parametrize("column, auc", [("peritumoral_edema", 0.575), ("mri_aln", 0.61), ("her2", 0.55),
                                         ("ki67", 0.59)])
def test_each_column_alone_has_the_auc_its_docstring_states(column, auc):
    model = SignModel()
    got = phantom_clinical.single_column_auc(model, phantom_clinical.model_for(model), column, n_draws=N)
    assert got == pytest.approx(auc, abs=0.012)


def test_a_phantom_cohort_writes_the_columns_with_some_cells_missing(tmp_path):
    from lvi_training.phantom.cohort import CohortSpec, write_cohort

    meta = write_cohort(str(tmp_path), CohortSpec(seed=4, n=2, outputs=("nifti",)))
    rows = read_rows(tmp_path)
    assert list(rows[0])[7:] == ["age"] + list(phantom_clinical.COLUMNS)
    assert validate_cohort(load_cohort(tmp_path), read_images=False).ok
    assert "clinical" in meta["best_auc_by_input"] and "clinical+dce_phase2" in meta["best_auc_by_input"]
    assert meta["clinical_model"]["aln_p"] == [0.25, 0.47] or meta["clinical_model"]["aln_p"] == (0.25, 0.47)


def test_clinical_data_can_come_from_a_one_row_csv(tmp_path):
    from lvi_training.clinical_predict import clinical_input as _clinical_input

    path = tmp_path / "row.csv"
    path.write_text("case_id,age,mri_aln,ki67\nX1,70,0,\n")
    assert clinical.parse_clinical(_clinical_input(str(path)))["age"] == 70.0
    assert clinical.parse_clinical(_clinical_input(str(path)))["ki67"] is None
    from lvi_training.clinical_predict import unread_columns

    assert unread_columns(_clinical_input(str(path))) == []  # case_id is a cohort column, not a typo
    path.write_text("case_id,age,bmi\nX1,70,24\n")  # another column: named in a note, not read
    assert unread_columns(_clinical_input(str(path))) == ["bmi"]
    for misspelt, meant in (("Ki-67", "ki67"), ("Her2", "her2"), ("tumor_size_mm", "tumour_size_mm"),
                            ("Peritumoral Edema", "peritumoral_edema")):
        path.write_text("case_id,age,{}\nX1,70,1\n".format(misspelt))
        with pytest.raises(InputError, match="column '{}' looks like the clinical column {}".format(misspelt, meant)):
            unread_columns(_clinical_input(str(path)))
    assert unread_columns("age=70") == []
    path.write_text("case_id,age\nX1,70\nX2,71\n")
    with pytest.raises(InputError, match="holds 2 rows; --clinical reads a CSV with a header and exactly one row"):
        _clinical_input(str(path))
