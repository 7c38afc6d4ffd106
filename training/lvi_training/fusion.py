"""Build a late-fusion model card from exported models and their runs.

The members are two or more models: an FS-T2WI and a DCE network (the card reads both series),
several networks on one sequence (an ensemble of architectures on that series), or networks that
include a fused FS-T2WI + DCE one (the card reads both series).

The card's metrics are out-of-fold like its members': each case's fused score is the mean
logit of the members' held-out predictions (``evaluate.late_fusion``), and each fold's
threshold is Youden's J on the fused scores of that fold's *training* cases, frozen before
its held-out cases are scored. That needs the members' runs to share their folds (the same
cohort and ``--seed``); runs with other folds are refused rather than given a threshold
chosen on cases they held out. The exported threshold is Youden's J on the pooled
out-of-fold fused scores, the rule ``lvi export`` uses for cv5 runs.
"""

import shlex
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from LVIPredictorLib import weights
from LVIPredictorLib.models import late_fusion
from LVIPredictorLib.vocabulary import sequences
from LVIPredictorLib.atomic_files import write_json_atomic
from LVIPredictorLib.errors import InputError, WeightsError
from LVIPredictorLib.vocabulary import kinds

from . import bounds, metrics
from .evaluate import aligned_out_of_fold, fold_results, load_metrics
from .export import _CARD_METRICS, DEMO_WORDS, INTENDED_USE, load_run_model
from .run_record import load_run_config


def _member(card_path, run_dir):
    """(card, run config) of one member, checked to be the model that run exported."""
    card = weights.load_card(card_path)
    if kinds.is_late_fusion(card):
        raise WeightsError(str(card_path), "is a late-fusion model; a member must be a model of its own (fuse "
                                           "its members directly)")
    if kinds.needs_clinical(card):
        raise WeightsError(str(card_path), "is a clinical + imaging model; a late-fusion member reads images only "
                                           "(fuse its imaging model, {})".format(card["imaging_model"]["card"]))
    weights.load_model(card)  # its weights file: present, checksum and tensors as the card says
    config = load_run_config(run_dir)
    if config.get("split") != "cv5":
        raise InputError(str(run_dir), "is a {} run; late fusion needs cv5 runs (out-of-fold predictions of every "
                                       "case)".format(config.get("split")))
    run_metrics = load_metrics(run_dir)
    if (card.get("metrics") or {}).get("auc") != run_metrics.get("auc") or not _same_weights(card, run_dir, config):
        raise InputError(str(card_path), "was not exported from {} (its weights or out-of-fold AUC differ from the "
                                         "run's); give each card with the run it came from".format(run_dir))
    return card, config


def _same_weights(card, run_dir, config):
    """Whether the card stores exactly the model the run exports (at the card's precision).

    The run, not the card, holds the out-of-fold predictions the fused metrics come from, so the
    pairing is checked on the weights themselves rather than on paths that move between machines.
    """
    expected = load_run_model(run_dir, config).state_dict()
    with safe_open(str(weights.weights_path_of(card)), framework="pt") as stored:
        if set(stored.keys()) != set(expected):
            return False
        for name in expected:
            tensor = stored.get_tensor(name)
            if not torch.equal(expected[name].to(tensor.dtype), tensor):
                return False
    return True


def _shared_folds(run_dirs):
    """Each run's fold results, checked to hold the same test cases fold by fold."""
    per_run = [fold_results(Path(r)) for r in run_dirs]
    for run_dir, results in zip(run_dirs[1:], per_run[1:]):
        same = len(results) == len(per_run[0]) and all(
            {row["case_id"] for row in a["test"]} == {row["case_id"] for row in b["test"]}
            for a, b in zip(per_run[0], results))
        if not same:
            raise InputError(str(run_dir), "has other cross-validation folds than {}; late fusion chooses each fold's "
                                           "threshold on that fold's training cases, so the members' runs need the "
                                           "same cohort and --seed".format(run_dirs[0]))
    return per_run


def _fold_thresholds(per_run):
    """{case_id: the threshold of its fold}, Youden's J on the fused scores of the fold's training cases."""
    thresholds = {}
    for folds in zip(*per_run):
        train = [{row["case_id"]: (int(row["lvi"]), float(row["probability"])) for row in fold["train"]}
                 for fold in folds]
        case_ids = sorted(train[0])
        labels = np.array([train[0][c][0] for c in case_ids])
        fused = late_fusion.fused_probability([[part[c][1] for c in case_ids] for part in train])
        threshold = metrics.youden_threshold(labels, fused)
        thresholds.update({row["case_id"]: threshold for row in folds[0]["test"]})
    return thresholds


def out_of_fold_metrics(run_dirs, seed=0):
    """(metrics as `lvi evaluate` reports them, labels, fused probabilities) of the late fusion of
    finished cv5 runs on the same folds; the runs are given in any order."""
    per_run = _shared_folds(run_dirs)
    case_ids, labels, probabilities = aligned_out_of_fold(run_dirs, per_run)
    fused = late_fusion.fused_probability(probabilities)
    fold_threshold = _fold_thresholds(per_run)
    thresholds = np.array([fold_threshold[c] for c in case_ids])
    summary = metrics.summarize(labels, fused, thresholds, seed=seed)
    summary.update({"scope": "pooled out-of-fold (5-fold CV by patient), mean logit of the members' held-out "
                             "predictions",
                    "threshold_rule": "Youden's J on the fused scores of each fold's training predictions, frozen "
                                      "before scoring held-out cases"})
    return summary, labels, fused


def best_possible(configs):
    """The phantom's bound for the input the members read together, or None off the phantom."""
    reads = late_fusion.fused_sequence(c["sequence"] for c in configs)
    dce = next((c for c in configs if sequences.reads_dce(c["sequence"])), configs[0])
    return bounds.for_run(dict(dce, sequence=reads))


def _dce_input(configs, sources):
    """Refuse DCE members that read different DCE inputs: the fused card reads one DCE series."""
    seen = {}
    for config, source in zip(configs, sources):
        if sequences.reads_dce(config["sequence"]):
            seen.setdefault(bounds.dce_input(config), source)
    if len(seen) > 1:
        raise InputError(", ".join(str(s) for s in seen.values()), "the DCE members read different DCE inputs "
                         "(phase, dynamic series): {}; a late-fusion model reads one DCE series, so fuse members "
                         "trained on the same --dce-phase".format(
                             ", ".join("phase {}{}".format(p, ", all phases" if d else "") for p, d in seen)))


def build_card(members, model_id, command):
    """The late-fusion card of ``members`` [(card path, run folder), ...] (not yet written)."""
    if len(members) < 2:
        raise InputError(", ".join(str(c) for c, _ in members) or None,
                         "late fusion needs two or more members (--member CARD RUN, given {})".format(len(members)))
    loaded = [_member(card_path, run_dir) + (run_dir,) for card_path, run_dir in members]
    digests = [card["weights_sha256"] for card, _, _ in loaded]
    for (card_path, _), digest in zip(members, digests):
        if digests.count(digest) > 1:
            raise InputError(str(card_path), "is given twice (the same weights); each member must be another model")
    # FS-T2WI, DCE, then fused members; sort is stable, so the given order within one.
    loaded.sort(key=lambda member: sequences.ALL.index(member[0]["sequence"]))
    cards, configs, run_dirs = (list(column) for column in zip(*loaded))
    _dce_input(configs, [c["_card_path"] for c in cards])
    reads = late_fusion.fused_sequence(card["sequence"] for card in cards)
    seed = int(configs[0].get("seed", 0))
    summary, labels, fused = out_of_fold_metrics(run_dirs, seed)
    dce_phase = next((sequences.card_phase(card) for card in cards if sequences.reads_dce(card["sequence"])),
                     sequences.DEFAULT_DCE_PHASE)
    demo = any(card.get("demo") for card in cards)
    member_entries = [{"card": Path(card["_card_path"]).name, "sequence": card["sequence"],
                       "model_id": card["model_id"], "architecture": card["architecture"],
                       "weights_sha256": card["weights_sha256"]} for card in cards]
    card = {
        "schema_version": weights.CARD_SCHEMA_VERSION, "model_id": model_id, "architecture": kinds.LATE_FUSION,
        "sequence": reads, "dce_phase": dce_phase, "members": member_entries,
        "combine": late_fusion.COMBINE,
        "weights_sha256": late_fusion.members_sha256([m["weights_sha256"] for m in member_entries]),
        "threshold": metrics.youden_threshold(labels, fused), "threshold_method": "youden_on_out_of_fold_predictions",
        "demo": demo,
        "intended_use": (DEMO_WORDS[0].upper() + DEMO_WORDS[1:] + ". " if demo else "") + INTENDED_USE.format(
            _input_words(cards, reads)),
        "training": {"command": command, "seed": seed, "split": "cv5", "n_cases": len(labels),
                     "members": [{"model_id": c["model_id"], "run": str(r), "command": cfg["command"]}
                                 for c, r, cfg in zip(cards, run_dirs, configs)],
                     "cohort": cards[0]["training"].get("cohort"),
                     "exported_model": "the members' exported models, their logits averaged"},
        "metrics": {k: summary[k] for k in _CARD_METRICS if k in summary},
        "best_possible_auc": best_possible(configs),
        "library_versions": configs[0].get("library_versions"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if demo:
        card["demo_notice"] = DEMO_WORDS
    return card


def _input_words(cards, reads):
    if reads == sequences.FUSED and [card["sequence"] for card in cards] == list(sequences.SEQUENCES):
        return "two MRI sequences ({}, each read by its own model)".format(
            " and ".join(sequences.LABELS[n] for n in sequences.SEQUENCES))
    if reads == sequences.FUSED:
        return "two MRI sequences ({}, read by {} models, their logits averaged)".format(
            " and ".join(sequences.LABELS[n] for n in sequences.SEQUENCES), len(cards))
    return "the {} series (read by {} models, their logits averaged)".format(sequences.LABELS[reads], len(cards))


def write_card(members, out_stem, model_id=None, overwrite=False, reference_case=None, command=None):
    """Write ``<out_stem>.json``, a late-fusion card whose member cards lie in the same folder."""
    card_path = Path(str(out_stem) + ".json")
    for card_path_of_member, _ in members:
        if Path(card_path_of_member).resolve().parent != card_path.resolve().parent:
            raise InputError(str(card_path_of_member), "must lie in the folder of the late-fusion card ({}): the card "
                                                       "names its members by file name".format(card_path.parent))
    if card_path.exists() and not overwrite:
        raise WeightsError(str(card_path), "already exists; refusing to overwrite (pass --overwrite)")
    command = command or "lvi fuse " + " ".join("--member {} {}".format(shlex.quote(str(c)), shlex.quote(str(r)))
                                                 for c, r in members) + " --out " + shlex.quote(str(out_stem))
    card = build_card(members, model_id or card_path.stem, command)
    write_json_atomic(card_path, card)
    weights.member_cards(weights.load_card(card_path))  # the card just written must load, members and pins included
    if reference_case is not None:
        from .reference import record_late_fusion_reference
        record_late_fusion_reference(card_path, reference_case)
    return card_path
