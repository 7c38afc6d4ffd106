"""Export a clinical_lr or combined run as a model card (JSON only: a logistic regression needs no
weights file). The card declares its clinical inputs with units and allowed values and the
imputation rule (LVIPredictorLib.clinical), holds the final model's coefficients and the threshold
(Youden's J on the pooled out-of-fold predictions, the rule of every cv5 export), and a combined
card pins its imaging model's card, which must lie beside it and be the model exported from the
imaging run the combined run read (checked on the weights, as ``lvi fuse`` checks its members).
"""

from datetime import datetime, timezone
from pathlib import Path

from LVIPredictorLib import clinical, weights
from LVIPredictorLib.atomic_files import write_json_atomic
from LVIPredictorLib.errors import InputError, WeightsError

from . import atomic, bounds, clinical_fit
from .evaluate import load_metrics
from .export import _CARD_METRICS, DEMO_WORDS, _recipe_summary, is_phantom_recipe

CARD_ARCHITECTURE = {clinical_fit.CLINICAL_LR: "clinical_lr", clinical_fit.COMBINED: "clinical_combined"}


def build_card(run_dir, out_stem, model_id=None, imaging_card=None):
    run_dir = Path(run_dir)
    config = atomic.load_json(run_dir / "config.json")
    model = config["model"]
    metrics = load_metrics(run_dir)
    section = clinical_fit.as_card_section(clinical_fit.final_model(run_dir))
    recipe = config["cohort"].get("recipe")
    demo = is_phantom_recipe(recipe)
    imaging_entry, imaging_config, sequence, dce_phase = None, None, clinical_fit.CLINICAL_SEQUENCE, None
    if model == clinical_fit.COMBINED:
        if imaging_card is None:
            raise InputError(str(run_dir), "is a combined run: give --imaging-card, the card exported from its "
                                           "imaging run {}".format(config["imaging_run"]["path"]))
        if Path(imaging_card).resolve().parent != Path(str(out_stem) + ".json").resolve().parent:
            raise InputError(str(imaging_card), "must lie in the folder of the combined card ({}): the card names it "
                                                "by file name".format(Path(str(out_stem)).parent))
        from .fusion import _member  # the same card-came-from-this-run check as late fusion's members

        card, imaging_config = _member(imaging_card, config["imaging_run"]["path"])
        imaging_entry = {"card": Path(imaging_card).name, "model_id": card["model_id"],
                         "architecture": card["architecture"], "sequence": card["sequence"],
                         "weights_sha256": card["weights_sha256"]}
        sequence, dce_phase = card["sequence"], int(card.get("dce_phase", 2))
        demo = demo or bool(card.get("demo"))
    elif imaging_card is not None:
        raise InputError(str(imaging_card), "--imaging-card goes with a combined run only")
    inputs = "clinical data ({})".format(", ".join(section["features"][:len(section["inputs"])]))
    if imaging_entry:
        inputs += " and the probability of imaging model {}".format(imaging_entry["model_id"])
    card = {
        "schema_version": weights.CARD_SCHEMA_VERSION,
        "model_id": model_id or Path(str(out_stem)).name,
        "architecture": CARD_ARCHITECTURE[model], "sequence": sequence,
        "clinical": section, "imaging_model": imaging_entry,
        "weights_sha256": clinical.card_digest(section, imaging_entry["weights_sha256"] if imaging_entry else None),
        "threshold": float(metrics["export_threshold"]), "threshold_method": metrics["export_threshold_method"],
        "demo": demo,
        "intended_use": (DEMO_WORDS[0].upper() + DEMO_WORDS[1:] + ". " if demo else "") + (
            "Research use: estimate the probability of lymphovascular invasion of a breast cancer from {}. Not a "
            "medical device; not for clinical decisions.".format(inputs)),
        "training": {"command": config["command"], "seed": config["seed"], "split": config["split"],
                     "n_cases": config["cohort"]["n_cases"], "optimizer": config["optimizer"],
                     "cohort": {"path": config["cohort"]["path"], "csv_sha256": config["identity"]["cohort_csv_sha256"],
                                "recipe": _recipe_summary(recipe)},
                     "imaging_run": config.get("imaging_run"),
                     "exported_model": "logistic regression fitted on all cases after 5-fold CV" + (
                         ", on the imaging run's out-of-fold probabilities" if imaging_entry else ""),
                     "git_commit": config.get("git_commit")},
        "metrics": {k: metrics[k] for k in _CARD_METRICS if k in metrics},
        "best_possible_auc": bounds.for_cohort(recipe, bounds.clinical_input(imaging_config)),
        "library_versions": config.get("library_versions"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if dce_phase is not None:
        card["dce_phase"] = dce_phase
    if demo:
        card["demo_notice"] = DEMO_WORDS
    return card


def export_card(run_dir, out_stem, model_id=None, overwrite=False, imaging_card=None):
    """Write ``<out_stem>.json``; returns its path (loaded back through the library's checks)."""
    card_path = Path(str(out_stem) + ".json")
    if card_path.exists() and not overwrite:
        raise WeightsError(str(card_path), "already exists; refusing to overwrite (pass --overwrite)")
    card = build_card(run_dir, out_stem, model_id, imaging_card)
    card_path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(card_path, card)
    weights.load_clinical_card(card_path)
    return card_path
