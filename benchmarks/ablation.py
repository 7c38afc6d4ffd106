"""The training-recipe ablation: the small-data recipe against the paper's, and with one part changed at a time.

    python benchmarks/ablation.py --cohort COHORT --external EXTERNAL --out DIR \\
        [--model vanilla_cnn_2d] [--sequence dce] [--epochs 30] [--threads 1] [--steps all]

Each row is an ordinary `lvi train` run (5-fold CV by patient, same seed, same folds) under
DIR/<row>/ — resumable, and every number can be re-derived with `lvi evaluate DIR/<row>`.
Every row but the first is the small-data recipe with one part changed (leave-one-out), so a
row's drop from the small-data row is what that part contributes; the first row is the paper's
recipe. AUCs are pooled out-of-fold with DeLong 95 % CIs; the folds' thresholds are chosen on
their training folds.

Averaging the five fold models cannot be measured out-of-fold (each case is held out of one
model only), so the last rows export the small-data recipe twice — as the single model trained on all
cases and as the fold ensemble — and score both on the independently seeded EXTERNAL cohort
(`lvi evaluate --model`), at their frozen out-of-fold thresholds.

The radiomics baseline and the phantom's bound for the input are printed beside the table.
Prints a Markdown table and writes DIR/ablation.json and DIR/ablation.md.
"""

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "LVIPredictor"), str(REPO / "training")]

from LVIPredictorLib.errors import InputError
from lvi_training import atomic, bounds, external, metrics as stats  # noqa: E402
from lvi_training.evaluate import aligned_out_of_fold  # noqa: E402
from lvi_training.export import export_run  # noqa: E402
from lvi_training.run import RunRequest, train_run  # noqa: E402

# (row, what differs from the small-data recipe, RunRequest overrides on top of --recipe small-data).
ROWS = (  # in the order they are worth their CPU time: a partial run measures the first ones
    ("paper", "the paper's recipe instead (Adam, full width, 3 slices, no VOI channel, last epoch)",
     {"recipe": "paper"}),
    ("small-data", "the small-data recipe", {}),
    ("-voi-channel", "without the VOI channel", {"mask_channel": False}),
    ("-image-dropout", "without image dropout", {"image_dropout": 0.0}),
    ("-weight-average", "without the moving average of the weights", {"ema_decay": 0.0}),
    ("-voi-shape-aux", "without the VOI-shape side task", {"voi_shape_aux": 0.0}),
    ("-head-refit", "without the case-level refit of the last layer", {"head_refit": False}),
    ("last-epoch", "last epoch instead of the one chosen on the inner validation split", {"val_fraction": 0.0}),
    ("3-slices", "3 largest cross-sections instead of 15", {"n_slices": 3}),
    ("binary-voi", "VOI channel 0/1 instead of a distance map", {"mask_encoding": "binary"}),
    ("full-width", "full-width network, plain Adam", {"width": 1.0, "weight_decay": 0.0}),
    ("paper-augmentation", "flips, shifts and intensity only (no rotations)", {"augmentation": "paper"}),
    ("background-ratio", "intensities relative to the breast background instead of the z-score",
     {"normalization": "background_ratio"}),
    ("-flip-tta", "without the left-right flip at prediction time", {"tta": False}),
)


def _request(args, name, overrides, **extra):
    base = RunRequest(cohort=args.cohort, model=args.model, sequence=args.sequence, out=str(Path(args.out) / name),
                      split="cv5", epochs=args.epochs, seed=args.seed, device="cpu", threads=args.threads,
                      workers=args.workers, recipe="small-data", final_model=False, progress=False)
    return replace(base, **dict(overrides, **extra))


def _row(name, change, metrics, scope):
    return {"step": name, "change": change, "scope": scope, "run": metrics.get("run"), "n": metrics["n"],
            "auc": metrics["auc"], "auc_ci_delong": metrics["auc_ci_delong"], "accuracy": metrics["accuracy"],
            "sensitivity": metrics["sensitivity"], "specificity": metrics["specificity"]}


def run_ablation(args):
    wanted = None if args.rows == "all" else set(args.rows.split(","))
    unknown = (wanted or set()) - {r[0] for r in ROWS} - {"external", "radiomics"}
    if unknown:
        raise SystemExit("unknown rows: {}".format(", ".join(sorted(unknown))))
    rows = []
    for name, change, overrides in ROWS:
        if wanted is not None and name not in wanted:
            continue
        start = time.perf_counter()
        metrics = train_run(_request(args, name, overrides))
        print("{:<20} OOF AUC {:.3f} ({:.3f}-{:.3f})  [{:.0f} s]".format(name, metrics["auc"],
                                                                        *metrics["auc_ci_delong"],
                                                                        time.perf_counter() - start), flush=True)
        rows.append(_row(name, change, metrics, "out-of-fold, {} cases".format(metrics["n"])))
    recipe_run = _request(args, "small-data", {})
    if args.external and (wanted is None or "external" in wanted):
        rows += _external_rows(args, recipe_run)
    radiomics = None
    if wanted is None or "radiomics" in wanted:
        metrics = train_run(RunRequest(cohort=args.cohort, model="radiomics_lr", sequence=args.sequence,
                                       out=str(Path(args.out) / "radiomics"), split="cv5", seed=args.seed,
                                       device="cpu", threads=args.threads, workers=args.workers, final_model=False,
                                       progress=False))
        radiomics = _row("radiomics_lr", "radiomics + logistic regression baseline (same folds)", metrics,
                         "out-of-fold, {} cases".format(metrics["n"]))
    _paired_with_recipe(rows + ([radiomics] if radiomics else []))
    config = Path(recipe_run.out) / "config.json"
    bound = bounds.for_run(atomic.load_json(config)) if config.exists() else None
    return rows, radiomics, bound


def _paired_with_recipe(rows):
    """Each out-of-fold row's AUC minus the small-data row's, by the paired DeLong test: the rows
    score the same cases, so their overlapping unpaired CIs understate how well a difference is known."""
    reference = next((r for r in rows if r["step"] == "small-data" and r["run"]), None)
    if reference is None:
        return
    for r in rows:
        if r is reference or not r["run"] or not r["scope"].startswith("out-of-fold"):
            continue
        try:
            _, labels, (ref, ours) = aligned_out_of_fold([reference["run"], r["run"]])
        except InputError:  # not the same cases: no paired difference to give
            continue
        diff, ci, p = stats.delong_paired(labels, ours, ref)
        r["paired_vs_small_data"] = {"diff": diff, "diff_ci": list(ci), "p": p}


def _external_rows(args, req):
    """The last CV row exported as one final model and as the fold ensemble, scored on --external."""
    out = []
    for name, change, extra in (("final-model", "one model trained on all cases, scored on the external cohort",
                                 {"final_model": True, "ensemble": False}),
                                ("fold-ensemble", "the five fold models averaged, scored on the external cohort",
                                 {"ensemble": True})):
        run_dir = Path(args.out) / "{}-{}".format(Path(req.out).name, name)
        if not run_dir.exists():  # the same folds: only the final fit is new
            shutil.copytree(req.out, str(run_dir), ignore=shutil.ignore_patterns("train.log"))
        train_run(replace(req, out=str(run_dir), **extra))
        stem = Path(args.out) / "models" / name
        _, card_path = export_run(str(run_dir), str(stem), model_id=name, overwrite=True)
        result = external.evaluate_model(str(card_path), args.external, str(Path(args.out) / "external" / name),
                                         device="cpu", overwrite=True)
        print("{:<18} external AUC {:.3f} ({:.3f}-{:.3f})".format(name, result["auc"], *result["auc_ci_delong"]),
              flush=True)
        out.append(_row(name, change, result, "external, {} cases".format(result["n"])))
    return out


def markdown(rows, radiomics, bound, args):
    lines = ["Ablation: {} on {} ({} epochs, seed {}); cohort {}".format(args.model, args.sequence, args.epochs,
                                                                       args.seed, args.cohort), "",
             "| row | what differs | scope | AUC (95 % CI, DeLong) | minus small-data (95 % CI), paired DeLong p "
             "| accuracy | sensitivity | specificity |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows + ([radiomics] if radiomics else []):
        paired = r.get("paired_vs_small_data")
        diff = "—" if not paired else "{:+.3f} ({:+.3f} to {:+.3f}), {}".format(
            paired["diff"], paired["diff_ci"][0], paired["diff_ci"][1],
            "p < 0.001" if paired["p"] < 0.001 else "p = {:.3f}".format(paired["p"]))
        lines.append("| {step} | {change} | {scope} | {auc:.3f} ({lo:.3f}-{hi:.3f}) | {diff} | {accuracy:.2f} | "
                     "{sensitivity:.2f} | {specificity:.2f} |".format(lo=r["auc_ci_delong"][0], hi=r["auc_ci_delong"][1],
                                                                       diff=diff, **r))
    if bound:
        lines += ["", "Best possible AUC for this input ({input}): {auc:.3f}".format(**bound)]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cohort", required=True)
    parser.add_argument("--external", help="an independently seeded cohort for the ensemble rows")
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default="vanilla_cnn_2d")
    parser.add_argument("--sequence", default="dce")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rows", default="all", help="comma-separated row names (the ROWS above, 'external', "
                                                      "'radiomics'), or all")
    args = parser.parse_args(argv)
    rows, radiomics, bound = run_ablation(args)
    text = markdown(rows, radiomics, bound, args)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "ablation.md").write_text(text)
    (Path(args.out) / "ablation.json").write_text(json.dumps({"rows": rows, "radiomics": radiomics, "bound": bound,
                                                              "args": vars(args)}, indent=1))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
