"""The weights shipped in Resources/Models: complete, intact, honest, and reproducible."""

import json

import pytest

from LVIPredictorLib import clinical, inference, models, weights
from LVIPredictorLib.models import late_fusion
from LVIPredictorLib.vocabulary import architectures, kinds
from lvi_training.reference import FLOAT16_TOLERANCE, default_sample_case, sample_clinical, sample_inputs

MODELS_DIR = weights.models_dir()
CATALOG = weights.bundled_catalog(MODELS_DIR)
IDS = [e["model_id"] for e in CATALOG]


def test_catalog_lists_the_papers_table_fused_models_and_the_radiomics_baseline():
    combos = sorted((e["sequence"], e["architecture"]) for e in CATALOG)
    papers = [(s, m) for s in ("t2", "dce") for m in architectures.STUDY_NETWORKS]
    fused = [("t2+dce", "vanilla_cnn_2d"), ("t2+dce", kinds.LATE_FUSION)]
    baseline = [(s, architectures.RADIOMICS_BASELINE) for s in ("t2", "dce", "t2+dce")]
    combined = [("dce", kinds.COMBINED)]  # the DCE radiomics model's probability + the six clinical columns
    assert combos == sorted(papers + fused + baseline + combined)


def test_bundled_weights_fit_the_100_mb_budget():
    # A late-fusion card has no weights of its own: its members' are counted once, as themselves.
    total = sum((MODELS_DIR / e["weights"]).stat().st_size for e in CATALOG if e["weights"])
    assert total <= 100 * 1024 * 1024, total


@pytest.mark.parametrize("entry", CATALOG, ids=IDS)
def test_card_says_everything_needed_to_use_the_weights_honestly(entry):
    card = weights.load_card(entry["card_path"])
    assert card["demo"] is True
    assert "not for clinical use" in card["intended_use"]
    training = card["training"]
    assert training["command"] and training["seed"] is not None
    if kinds.is_late_fusion(card):
        reads = [m["sequence"] for m in weights.member_cards(card)]
        assert late_fusion.fused_sequence(reads) == card["sequence"] and len(reads) >= 2
        assert training["members"] and card["metrics"]["scope"].startswith("pooled out-of-fold")
    elif kinds.is_combined(card):
        # Fitted on its bundled imaging model's own out-of-fold scores, the threshold on out-of-fold predictions.
        assert card["imaging_model"]["card"] == entry["imaging_card"]
        assert card["_imaging_card"]["weights_sha256"] == card["imaging_model"]["weights_sha256"]
        assert card["threshold_method"] == "youden_on_out_of_fold_predictions"
        assert card["clinical"]["imputation"]["rule"] and entry["clinical_inputs"] == list(clinical.NAMES)
    elif card["architecture"] == architectures.RADIOMICS_BASELINE:
        # A few dozen coefficients: float16 would save nothing and cost precision.
        assert card["weights_dtype"] == "float32"
        assert card["preprocessing"]["kind"] == "radiomics"
    else:
        assert card["weights_dtype"] == "float16"
        assert training["epochs"] >= 1
        assert card["preprocessing"]["dims"] == models.model_dims(card["architecture"])
        # The bundled networks are the small-data recipe's fold ensembles.
        assert card["ensemble"]["members"] == 5
    # What the input can show at best, beside what the model reached (issue 11).
    bound = card["best_possible_auc"]["auc"]
    assert 0.5 < bound <= 1.0
    assert card["metrics"]["auc"] <= bound + 0.05
    recipe = training["cohort"]["recipe"]
    # The phantom generator calls the fused reading "both".
    assert 0.5 < recipe["best_auc"][{"t2+dce": "both"}.get(card["sequence"], card["sequence"])] <= 1.0
    assert training["n_cases"] == 457
    metrics = card["metrics"]
    lo, hi = metrics["auc_ci_delong"]
    assert lo <= metrics["auc"] <= hi
    assert 0.0 <= card["threshold"] <= 1.0 and card["threshold_method"]


@pytest.mark.parametrize("entry", CATALOG, ids=IDS)
def test_weights_load_with_a_matching_checksum(entry):
    card = weights.load_card(entry["card_path"])
    assert card["weights_sha256"] == entry["weights_sha256"]
    if kinds.is_late_fusion(card):
        shas = [m["weights_sha256"] for m in weights.member_cards(card)]
        assert card["weights_sha256"] == late_fusion.members_sha256(shas)
        return
    if kinds.is_combined(card):
        assert card["weights_sha256"] == clinical.card_digest(card["clinical"], card["imaging_model"]["weights_sha256"])
        return
    assert weights.sha256_of(weights.weights_path_of(card)) == card["weights_sha256"]
    model, _ = weights.load_model(card)
    assert not model.training


@pytest.mark.parametrize("entry", CATALOG, ids=IDS)
def test_weights_reproduce_the_probability_recorded_in_their_card(entry):
    card = weights.load_card(entry["card_path"])
    reference = card["reference_prediction"]
    images, masks = sample_inputs(default_sample_case(), card["sequence"])
    # A combined card reads the sample case's clinical values (its case.json), recorded beside the probability.
    result = inference.Predictor(card, device="cpu").predict_case(images, masks, clinical_values=reference.get("clinical"))
    assert kinds.needs_clinical(card) == ("clinical" in reference)
    if "clinical" in reference:
        assert reference["clinical"] == sample_clinical(default_sample_case())
    assert result.probability == pytest.approx(reference["probability"], abs=1e-5)
    # float16 storage is allowed only because it moves the probability by < 1e-3.
    assert abs(reference["probability"] - reference["probability_float32_weights"]) <= FLOAT16_TOLERANCE


def test_catalog_is_valid_json_with_relative_card_paths():
    data = json.loads((MODELS_DIR / "catalog.json").read_text())
    assert all("/" not in e["card"] for e in data["models"])


def test_info_markdown_prints_the_readme_table_from_the_cards(capsys):
    from lvi_training.cli import main as lvi

    assert lvi(["info", "--markdown"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 + len(CATALOG)
    for entry, line in zip(CATALOG, lines[2:]):
        card = weights.load_card(entry["card_path"])
        assert "| {} |".format(entry["architecture"]) in line
        assert "{:.3f} (".format(card["metrics"]["auc"]) in line
        assert "| {:.3f} |".format(card["best_possible_auc"]["auc"]) in line
