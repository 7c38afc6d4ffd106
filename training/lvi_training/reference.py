"""Reference predictions recorded in a model card: the proof that shipped weights reproduce.

At export time the model is run on the shipped sample case twice — with the float32
weights of the training checkpoint and with the stored (float16) weights through the
Predictor — and both probabilities go into the card. The test suite then re-runs the
Predictor on the sample case and demands the stored probability back, and checks that
float16 storage moved the probability by at most 1e-3.
"""

from pathlib import Path

import numpy as np
import torch

from LVIPredictorLib import inference, preprocessing, weights
from LVIPredictorLib.inputs import readers
from LVIPredictorLib.models import late_fusion
from LVIPredictorLib.vocabulary import sequences
from LVIPredictorLib.atomic_files import write_json_atomic

# Sample-case files per sequence (relative to the case folder).
CASE_FILES = {"t2": ("t2.nii.gz", "t2_mask.nii.gz"), "dce": ("dce_phase2.nii.gz", "dce_mask.nii.gz")}
FLOAT16_TOLERANCE = 1e-3


def default_sample_case():
    return Path(weights.models_dir()).parent / "SampleData" / "LVI-Sample-001"


def sample_inputs(case_dir, sequence):
    """({series: image}, {series: mask}) of the sample case for every series ``sequence`` reads."""
    images, masks = {}, {}
    for name in sequences.channels(sequence):
        image_name, mask_name = CASE_FILES[name]
        images[name] = readers.read_image(Path(case_dir) / image_name)
        masks[name] = readers.read_mask(Path(case_dir) / mask_name, reference=images[name])
    return images, masks


def float32_probability(model, card, images, masks):
    names = sequences.channels(card["sequence"])
    channels = [preprocessing.Channel(images[n], masks[n]) for n in names]
    prepared = preprocessing.prepare_input(channels, weights.card_spec(card), names,
                                           grid_channel=names.index(sequences.grid_reference(card["sequence"])))
    with torch.inference_mode():
        logits = model.eval()(torch.from_numpy(prepared.inputs))
    probs = torch.sigmoid(logits.float()).reshape(-1).numpy().astype(np.float64)
    return preprocessing.aggregate_slice_scores(probs, prepared.slice_weights)


def record_reference_prediction(card_path, float32_model, case_dir=None):
    """Add ``reference_prediction`` to the card at ``card_path`` (rewritten atomically)."""
    case_dir = Path(case_dir) if case_dir else default_sample_case()
    card = weights.load_card(card_path)
    images, masks = sample_inputs(case_dir, card["sequence"])
    p32 = float32_probability(float32_model, card, images, masks)
    stored = inference.Predictor(card, device="cpu").predict_case(images, masks)
    if abs(stored.probability - p32) > FLOAT16_TOLERANCE:
        raise RuntimeError("{}: stored {} weights move the sample probability by {:.2e} (> {}); export as "
                           "float32".format(card_path, card.get("weights_dtype"), abs(stored.probability - p32),
                                            FLOAT16_TOLERANCE))
    return _write_reference(card_path, card, case_dir, stored, p32)


def sample_clinical(case_dir):
    """The case's clinical values, from its case.json: {column: value}."""
    from LVIPredictorLib import clinical
    from LVIPredictorLib.errors import InputError

    path = Path(case_dir) / "case.json"
    if not path.is_file():
        raise InputError(str(path), "not found: a combined model's reference prediction reads the case's clinical "
                                    "values from it (as the phantom writes them)")
    return dict(clinical.values_from_case_json(path))


def record_combined_reference(card_path, case_dir=None):
    """Add ``reference_prediction`` to a combined (clinical + imaging) card: its probability on the sample
    case with that case's clinical values, and beside it the regression applied to its imaging model's
    float32-weight probability."""
    from LVIPredictorLib import clinical

    case_dir = Path(case_dir) if case_dir else default_sample_case()
    card = weights.load_card(card_path)
    imaging = card["_imaging_card"]
    images, masks = sample_inputs(case_dir, imaging["sequence"])
    values = sample_clinical(case_dir)
    stored = inference.Predictor(card, device="cpu").predict_case(images, masks, clinical_values=values)
    imaging_reference = imaging.get("reference_prediction") or {}
    if imaging_reference.get("case") != case_dir.name or "probability_float32_weights" not in imaging_reference:
        raise RuntimeError("{}: its imaging card needs a reference prediction on {} (lvi export "
                           "--reference-case)".format(card_path, case_dir.name))
    parsed = clinical.parse_clinical(values, card)
    p32 = clinical.predict(card, parsed, imaging_reference["probability_float32_weights"])["probability"]
    if abs(stored.probability - p32) > FLOAT16_TOLERANCE:
        raise RuntimeError("{}: stored imaging weights move the sample probability by {:.2e} (> {})".format(
            card_path, abs(stored.probability - p32), FLOAT16_TOLERANCE))
    reference = _write_reference(card_path, card, case_dir, stored, p32, clinical_values=values)
    return reference


def _write_reference(card_path, card, case_dir, stored, p32, clinical_values=None):
    names = sequences.channels(card["sequence"])
    card.pop("_card_path", None)
    card.pop("_imaging_card", None)
    card["reference_prediction"] = {
        "case": case_dir.name, "image": " + ".join(CASE_FILES[n][0] for n in names),
        "mask": " + ".join(CASE_FILES[n][1] for n in names), "device": "cpu",
        "probability": stored.probability, "probability_float32_weights": p32,
        "note": "recomputed by the test suite from the stored weights; must match to 1e-5"}
    if stored.member_probabilities:
        card["reference_prediction"]["member_probabilities"] = stored.member_probabilities
    if clinical_values is not None:
        card["reference_prediction"]["clinical"] = clinical_values
    write_json_atomic(card_path, card)
    return card["reference_prediction"]


def record_late_fusion_reference(card_path, case_dir=None):
    """Add ``reference_prediction`` to a late-fusion card: the Predictor's probability on the sample
    case, and beside it the same combination of its members' float32-weight probabilities."""
    case_dir = Path(case_dir) if case_dir else default_sample_case()
    card = weights.load_card(card_path)
    images, masks = sample_inputs(case_dir, card["sequence"])
    stored = inference.Predictor(card, device="cpu").predict_case(images, masks)
    float32 = [(member.get("reference_prediction") or {}) for member in weights.member_cards(card)]
    if any(r.get("case") != case_dir.name or "probability_float32_weights" not in r for r in float32):
        raise RuntimeError("{}: every member card needs a reference prediction on {} (lvi export "
                           "--reference-case)".format(card_path, case_dir.name))
    p32 = late_fusion.combine([r["probability_float32_weights"] for r in float32])
    if abs(stored.probability - p32) > FLOAT16_TOLERANCE:
        raise RuntimeError("{}: stored member weights move the sample probability by {:.2e} (> {})".format(
            card_path, abs(stored.probability - p32), FLOAT16_TOLERANCE))
    return _write_reference(card_path, card, case_dir, stored, p32)
