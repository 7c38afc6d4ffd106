"""Export a run's model as safetensors + model card (docs/design.md §4), loadable by Predictor and Slicer.

Which weights: the paper split exports its single model (trained on the 90 %); cv5
exports ``final/`` — the model trained the same way on ALL cases after the CV — whose
threshold is Youden's J on the pooled out-of-fold predictions (see run.py for why).
The card's metrics are the run's held-out metrics (OOF for cv5) with their CIs: the
best available estimate of how the exported model performs on new patients.
"""

import os
from datetime import datetime, timezone
from pathlib import Path

from LVIPredictorLib import weights
from LVIPredictorLib.vocabulary import sequences
from LVIPredictorLib.errors import InputError, WeightsError
from LVIPredictorLib.models import Ensemble, build_model
from LVIPredictorLib.vocabulary import architectures

from . import atomic, bounds, checkpoints, interchange_formats
from .evaluate import load_metrics
from .run_record import load_run_config

INTENDED_USE = ("Research use: estimate the probability of lymphovascular invasion of a breast cancer from {} "
                "and a VOI. Not a medical device; not for clinical decisions.")
DEMO_WORDS = "demo weights trained on synthetic phantoms, not validated on patients, not for clinical use"

_CARD_METRICS = ("scope", "n", "n_positive", "auc", "auc_ci_delong", "auc_ci_bootstrap", "accuracy", "accuracy_ci",
                 "sensitivity", "sensitivity_ci", "specificity", "specificity_ci", "brier", "calibration_slope",
                 "calibration_intercept", "threshold_rule")


def is_phantom_recipe(recipe):
    """A cohort made by the phantom generator: its cohort.json describes a synthetic phantom cohort."""
    if not recipe:
        return False
    return "phantom" in str(recipe.get("description", "")).lower() or bool(recipe.get("phantom"))


def _recipe_summary(recipe):
    """How the cohort was made (phantoms: generator version and settings, seed, best achievable AUC)."""
    if not recipe:
        return None
    keys = ("description", "generator", "best_auc", "best_auc_note", "n_cases", "n_lvi_positive")
    return {k: recipe[k] for k in keys if k in recipe}


_UNFINISHED = ("did not finish ({} was not trained to the end: killed or still running); re-run the same "
               "`lvi train` command, which resumes it, then export")


def _present(path):
    if not path.exists():
        raise InputError(str(path), "is missing; the run folder is incomplete (re-run the same `lvi train` command)")
    return path


def check_run_finished(run_dir):
    """A run folder that `lvi train` finished: its config and metrics written (the metrics come last)."""
    run_dir = Path(run_dir)
    load_run_config(run_dir)
    if not (run_dir / "metrics.json").exists():
        raise InputError(str(run_dir), _UNFINISHED.format("the run"))


def exported_checkpoint(run_dir, config):
    """The checkpoint of the single exported model (a fold ensemble has none: see load_run_model)."""
    run_dir = Path(run_dir)
    if config["split"] == "paper":
        if not (run_dir / "fold_0" / "result.json").exists():
            raise InputError(str(run_dir), _UNFINISHED.format("its model"))
        return _present(run_dir / "fold_0" / "checkpoint.pt")
    # The missing result says more than the missing checkpoint: most often --no-final-model.
    if not (run_dir / "final" / "result.json").exists():
        raise InputError(str(run_dir), "has no finished final model (trained with --no-final-model, or "
                         "interrupted); re-run `lvi train` without --no-final-model to train it")
    return _present(run_dir / "final" / "checkpoint.pt")


def _exported_model_words(config):
    recipe = config.get("recipe") or {}
    refit = "; the last layer refitted on the training cases' pooled features" if recipe.get("head_refit") else ""
    if config["split"] == "paper":
        return "single model trained on the 90% training split" + refit
    if recipe.get("ensemble"):
        return "the five 5-fold CV models averaged (each trained on 80% of the cases, its epoch chosen on an inner " \
               "validation split of its training fold{})".format(
                   ", its last layer refitted on that fold's cases" if refit else "")
    return "model trained on all cases after 5-fold CV" + refit


def build_card(run_dir, model_id=None):
    run_dir = Path(run_dir)
    config = atomic.load_json(run_dir / "config.json")
    m = load_metrics(run_dir)
    recipe = config["cohort"].get("recipe")
    demo = is_phantom_recipe(recipe)
    training = {"command": config["command"], "seed": config["seed"], "split": config["split"],
                "epochs": config["epochs"], "batch_size": config["batch_size"], "optimizer": config["optimizer"],
                "loss": config["loss"], "augment": config["augment"], "n_cases": config["cohort"]["n_cases"],
                "cohort": {"path": config["cohort"]["path"], "csv_sha256": config["identity"]["cohort_csv_sha256"],
                           "recipe": _recipe_summary(recipe)},
                "recipe": config.get("recipe") or {"name": "paper"},
                "exported_model": _exported_model_words(config),
                "git_commit": config.get("git_commit"), "device": config.get("device"),
                "world_size": config.get("world_size")}
    names = sequences.channels(config["sequence"])
    intended_use = INTENDED_USE.format("one MRI sequence ({})".format(sequences.LABELS[names[0]]) if len(names) == 1
                                       else "two MRI sequences ({}) read together".format(
                                           " and ".join(sequences.LABELS[n] for n in names)))
    card = {"model_id": model_id or "{}_{}_{}".format(config["model"], config["sequence"], config["split"]),
            "architecture": config["model"], "architecture_config": config["architecture_config"],
            "sequence": config["sequence"], "dce_phase": sequences.card_phase(config),
            "preprocessing": config["preprocessing"],
            "threshold": float(m["export_threshold"]), "threshold_method": m["export_threshold_method"],
            "demo": demo,
            "intended_use": (DEMO_WORDS[0].upper() + DEMO_WORDS[1:] + ". " if demo else "") + intended_use,
            "training": training, "metrics": {k: m[k] for k in _CARD_METRICS if k in m},
            "best_possible_auc": bounds.for_run(config),
            "library_versions": config["library_versions"],
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    ensemble = _ensemble_of(dict(config, _run_dir=str(run_dir)))
    if ensemble:
        card["ensemble"] = ensemble
    if demo:
        card["demo_notice"] = DEMO_WORDS
    measured = architectures.get(config["model"]).measured_heatmap
    if measured:  # the method measured to point at the evidence (docs/heatmaps.md), not the coarse default
        card["heatmap"] = dict(measured)
    return card, config


def kept_weights(checkpoint_path):
    """The weights a fold kept: the epoch chosen on its inner validation split, else the last epoch
    (its moving average of the weights when the run kept one), with the last layer refitted on the
    cases when the run did that (``head_refit``)."""
    state = checkpoints.load_torch(checkpoint_path)
    best = state.get("best")
    kept = dict(best["model"] if best else state.get("averaged_model", state["model"]))
    kept.update(state.get("refit_head") or {})
    return kept


def _ensemble_of(config):
    recipe = config.get("recipe") or {}
    if recipe.get("ensemble"):
        n = len(atomic.load_json(Path(config["_run_dir"]) / "splits.json")["folds"])
        return {"members": n, "tta_flip": bool(recipe.get("tta")), "combine": "mean probability",
                "members_are": "the {} cross-validation fold models".format(n)}
    if recipe.get("tta"):
        return {"members": 1, "tta_flip": True, "combine": "mean probability", "members_are": "the exported model"}
    return None


def load_run_model(run_dir, config=None):
    """The float32 model a run exports (one network, or the fold ensemble), in eval mode."""
    run_dir = Path(run_dir)
    config = dict(config or atomic.load_json(run_dir / "config.json"), _run_dir=str(run_dir))
    ensemble = _ensemble_of(config)
    if ensemble and ensemble["members"] > 1:
        members = []
        for index in range(ensemble["members"]):
            fold_dir = run_dir / "fold_{}".format(index)
            if not (fold_dir / "result.json").exists():
                raise InputError(str(run_dir), "fold {} is unfinished; re-run the same `lvi train` command".format(index))
            member = build_model(config["model"], **config["architecture_config"])
            member.load_state_dict(kept_weights(fold_dir / "checkpoint.pt"))
            members.append(member)
        return Ensemble(members, tta_flip=ensemble["tta_flip"]).eval()
    model = build_model(config["model"], **config["architecture_config"])
    model.load_state_dict(kept_weights(exported_checkpoint(run_dir, config)))
    if ensemble:
        model = Ensemble([model], tta_flip=True)
    return model.eval()


def _earlier_export(out_stem, want_reference):
    """What ``out_stem`` already holds: None, "partial" (an export killed before its end) or "complete".

    The weights are written first and the card last (the card holds the weights' SHA-256; with a
    reference case, its reference prediction is added after), so a card that is missing, unreadable,
    names other weights or lacks the asked-for reference prediction marks an export that never
    finished: nothing loads it, and exporting again replaces it.
    """
    weights_path = Path(str(out_stem) + ".safetensors")
    card_path = Path(str(out_stem) + ".json")
    if not weights_path.exists() and not card_path.exists():
        return None
    if not weights_path.exists() or not card_path.exists():
        return "partial"
    try:
        card = atomic.load_json(card_path)
        matches = card.get("weights_sha256") == weights.sha256_of(weights_path)
    except (ValueError, UnicodeDecodeError, AttributeError, OSError):
        return "partial"
    if not matches or (want_reference and "reference_prediction" not in card):
        return "partial"
    return "complete"


def _check_earlier_export(out_stem, overwrite, want_reference):
    """Whether the files at ``out_stem`` are to be replaced; a complete export is refused without
    --overwrite (a partial one is replaced: it is the leftover of a killed export)."""
    found = _earlier_export(out_stem, want_reference)
    if found == "complete" and not overwrite:
        raise InputError(str(out_stem) + ".json", "already holds a complete export; choose another --out or pass "
                                                  "--overwrite to replace it")
    return overwrite or found == "partial"


def export_run(run_dir, out_stem, model_id=None, overwrite=False, dtype=None, reference_case=None,
               formats=(), imaging_card=None):
    """Write ``<out_stem>.safetensors`` + ``<out_stem>.json``; returns both paths.

    ``dtype`` None: float16 for the networks, float32 for the radiomics baseline (its
    standardisation constants need the precision, and it is tiny). With ``reference_case`` (a
    sample case folder) the card also records the model's probability on it, from the stored
    and from the float32 weights (see reference.py). ``formats`` ("torchscript", "onnx"): the
    network also in those files beside the card, recorded in it (interchange_formats.py).
    """
    from . import clinical_export, clinical_fit

    if atomic.load_json(Path(run_dir) / "config.json").get("model") in clinical_fit.MODELS:
        # A logistic regression on clinical columns: a card, no weights file (clinical_export.py).
        if reference_case is not None and imaging_card is None:
            raise InputError(str(run_dir), "--reference-case needs a combined (clinical + imaging) run: a "
                                           "clinical-only card reads no images")
        if reference_case is None:
            return None, clinical_export.export_card(run_dir, out_stem, model_id, overwrite, imaging_card)
        # The reference is recorded in a staged card that replaces the destination only when complete: a
        # failure leaves neither a card without its reference nor the loss of a card being overwritten.
        from .reference import record_combined_reference

        final = Path(str(out_stem) + ".json")
        if final.exists() and not overwrite:
            raise WeightsError(str(final), "already exists; refusing to overwrite (pass --overwrite)")
        staged = final.parent / (".partial-" + final.stem)
        card_path = clinical_export.export_card(run_dir, staged, model_id or final.stem, True, imaging_card)
        try:
            record_combined_reference(card_path, reference_case)
        except Exception:
            card_path.unlink()
            raise
        os.replace(str(card_path), str(final))
        return None, final
    if imaging_card is not None:
        raise InputError(str(imaging_card), "--imaging-card goes with a combined (clinical + imaging) run only")
    check_run_finished(run_dir)
    replace = _check_earlier_export(out_stem, overwrite, reference_case is not None)
    card, config = build_card(run_dir, model_id)
    if formats:  # refused before anything is written
        interchange_formats.refuse_without_network(card, str(run_dir))
        for fmt in formats:
            path = interchange_formats.interchange_path(Path(str(out_stem) + ".json"), fmt)
            if path.exists() and not overwrite:
                raise WeightsError(str(path), "already exists; refusing to overwrite (pass --overwrite)")
    if dtype is None:
        dtype = "float32" if architectures.is_radiomics(config["model"]) else "float16"
    model = load_run_model(run_dir, config)
    weights_path, card_path = weights.save_model(model, card, out_stem, dtype=dtype, overwrite=replace)
    if reference_case is not None:
        from .reference import record_reference_prediction
        record_reference_prediction(card_path, model, reference_case)
    if formats:
        interchange_formats.export_card(card_path, formats, overwrite=overwrite)
    return weights_path, card_path
