"""What a finished CNN run rests on: its out-of-fold AUC with each image channel blanked.

    python benchmarks/channel_contribution.py RUN [RUN ...] [--cohort COHORT] [--threads 1] [--out FILE.json]

RUN is an `lvi train ... --split cv5` folder of a CNN whose inputs include the VOI channel.
Every fold model re-scores its own held-out cases (so each row is out-of-fold, as in the run's
metrics) under these variants:

- all inputs: as trained (must reproduce the run's own held-out predictions; checked);
- without <sequence>: that image channel set to 0, what image dropout shows in training and
  the background level of either normalisation (fused runs only: one row per sequence);
- VOI only: every image channel set to 0, so only the VOI outline is left.

Each row gives the pooled AUC (DeLong 95 % CI) and its difference from "all inputs" with the
paired DeLong test (the rows score the same cases, so unpaired CIs overlap even where the
difference is clear). A drop says the network uses that channel on unseen cases; a rise says
what it learnt from the channel does not carry over from its training folds.
Prints a Markdown table per run (and writes --out as JSON when given).
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "LVIPredictor"), str(REPO / "training")]

from LVIPredictorLib.models import build_model
from LVIPredictorLib.preprocessing import spec_from_dict
from LVIPredictorLib.vocabulary.sequences import channels
from lvi_training import atomic, cache, engine, metrics  # noqa: E402
from lvi_training.cohort import load_cohort  # noqa: E402
from lvi_training.evaluate import out_of_fold_predictions  # noqa: E402
from lvi_training.export import kept_weights  # noqa: E402

SEQUENCE_WORDS = {"t2": "FS-T2WI", "dce": "DCE"}
# The run's held-out predictions were made by the same code on the same inputs; more than
# float noise means the run, cohort or cache is not the one scored here.
REPRODUCTION_TOLERANCE = 1e-5


def variants(sequence):
    """(name, image channel indices set to 0) for one run's sequence."""
    names = channels(sequence)
    rows = [("all inputs", ())]
    if len(names) > 1:
        rows += [("without " + SEQUENCE_WORDS.get(n, n), (i,)) for i, n in enumerate(names)]
    rows.append(("VOI only", tuple(range(len(names)))))
    return rows


def run_data(run_dir, cohort_override=None):
    """The run's config, folds and the in-memory inputs of its cases, from the training cache."""
    config = atomic.load_json(run_dir / "config.json")
    if config["model"] == "radiomics_lr" or not config["preprocessing"].get("mask_channel"):
        raise SystemExit("{}: needs a CNN run with the VOI channel (VOI only would be an empty input)".format(run_dir))
    split = atomic.load_json(run_dir / "splits.json")
    if split["split"] != "cv5":
        raise SystemExit("{}: needs a --split cv5 run (every case held out once)".format(run_dir))
    cohort = load_cohort(cohort_override or config["cohort"]["path"])
    cases = cohort.with_sequence(config["sequence"])
    if [c.case_id for c in cases] != split["case_ids"]:
        raise SystemExit("{}: the cohort's cases are not the ones this run was trained on".format(run_dir))
    store = cache.PreparedCache(Path(cohort.root) / ".lvi_cache" if cohort_override else config["cache_dir"])
    prepared, _ = store.prepare(cases, config["sequence"], spec_from_dict(config["preprocessing"]),
                                dce_phase=config["dce_phase"], workers=1)
    data = engine.CaseTensors.from_cached(prepared, [c.lvi for c in cases])
    return config, split["folds"], data


def blanked(data, channel_indices):
    if not channel_indices:
        return data
    inputs = data.inputs.clone()
    inputs[:, list(channel_indices)] = 0.0
    return engine.CaseTensors(inputs=inputs, sample_case=data.sample_case, labels=data.labels,
                              slice_weights=data.slice_weights)


def out_of_fold(run_dir, config, folds, data):
    """{variant: pooled held-out probabilities in case order}; checks 'all inputs' against the run."""
    stored = out_of_fold_predictions(run_dir)
    case_ids = atomic.load_json(run_dir / "splits.json")["case_ids"]
    tta = bool((config.get("recipe") or {}).get("tta"))
    rows = variants(config["sequence"])
    views = {name: blanked(data, idx) for name, idx in rows}
    scores = {name: np.full(len(data.labels), np.nan) for name, _ in rows}
    for fold in folds:
        fold_dir = run_dir / "fold_{}".format(fold["index"])
        model = build_model(config["model"], **config["architecture_config"])
        model.load_state_dict(kept_weights(fold_dir / "checkpoint.pt"))
        test = np.asarray(fold["test"], dtype=np.int64)
        for name, view in views.items():
            scores[name][test] = engine.score_fold_cases(model, view, test, "cpu", tta)[0]
        worst = max(abs(scores["all inputs"][i] - stored[case_ids[i]][1]) for i in test.tolist())
        if worst > REPRODUCTION_TOLERANCE:
            raise SystemExit("{}: fold {} re-scored differs from its result.json by {:.2e}".format(
                run_dir, fold["index"], worst))
    return scores


def table(run_dir, config, labels, scores):
    rows = []
    reference = scores["all inputs"]
    for name, s in scores.items():
        auc, (lo, hi) = metrics.delong_ci(labels, s)
        row = {"variant": name, "auc": auc, "auc_ci": [lo, hi]}
        if name != "all inputs":
            diff, (dlo, dhi), p = metrics.delong_paired(labels, s, reference)
            row.update(diff=diff, diff_ci=[dlo, dhi], p=p)
        rows.append(row)
    lines = ["{} — {} on {}, {} cases, out-of-fold".format(run_dir, config["model"], config["sequence"], len(labels)),
             "", "| inputs | AUC (95 % CI, DeLong) | difference from all inputs (95 % CI), paired DeLong p |",
             "|---|---|---|"]
    for r in rows:
        diff = "—" if "diff" not in r else "{:+.3f} ({:+.3f} to {:+.3f}), p = {:.3f}".format(
            r["diff"], r["diff_ci"][0], r["diff_ci"][1], r["p"])
        lines.append("| {} | {:.3f} ({:.3f}–{:.3f}) | {} |".format(r["variant"], r["auc"], r["auc_ci"][0],
                                                                  r["auc_ci"][1], diff))
    return rows, "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--cohort", help="the cohort, when it has moved since training (its own .lvi_cache is used)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = {}
    for run_dir in args.runs:
        config, folds, data = run_data(run_dir, args.cohort)
        scores = out_of_fold(run_dir, config, folds, data)
        rows, text = table(run_dir, config, data.labels, scores)
        report[str(run_dir)] = rows
        print(text + "\n", flush=True)
    if args.out:
        atomic.save_json(report, args.out)


if __name__ == "__main__":
    main()
