"""The training-recipe ablation: from the paper's recipe to small-data, one change at a time, with CIs.

    python benchmarks/ablation.py --cohort COHORT --external EXTERNAL --out DIR \\
        [--model vanilla_cnn_2d] [--sequence dce] [--epochs 30] [--threads 1] [--steps all]

Each row is an ordinary `lvi train` run (5-fold CV by patient, same seed, same folds) under
DIR/<step>/ — resumable, and every number can be re-derived with `lvi evaluate DIR/<step>`.
Rows add one change to the row above (the table's "change" column). AUCs are pooled
out-of-fold with DeLong 95 % CIs; the folds' thresholds are chosen on their training folds.

Averaging the five fold models cannot be measured out-of-fold (each case is held out of one
model only), so the last rows export the last CV row twice — as the single model trained on all
cases and as the fold ensemble — and score both on the independently seeded EXTERNAL cohort
(`lvi evaluate --model`), at their frozen out-of-fold thresholds.

The radiomics baseline and the phantom's bound for the input are printed beside the table.
Prints a Markdown table and writes DIR/ablation.json and DIR/ablation.md.
"""

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "LVIPredictor"), str(REPO / "training")]

from lvi_training import atomic, bounds, external  # noqa: E402
from lvi_training.export import export_run  # noqa: E402
from lvi_training.run import RunRequest, train_run  # noqa: E402

# (step name, what changes, RunRequest overrides) — cumulative: each step keeps the ones above.
STEPS = (
    ("paper", "the paper's recipe (Adam, full width, last epoch)", {}),
    ("narrow", "quarter-width network + AdamW weight decay 1e-2", {"width": 0.25, "weight_decay": 1e-2}),
    ("voi-channel", "+ the VOI as an input channel", {"mask_channel": True}),
    ("background-ratio", "+ intensities relative to the breast background (keeps enhancement)",
     {"normalization": "background_ratio"}),
    ("inner-validation", "+ epoch chosen on an inner validation split of each training fold", {"val_fraction": 0.2}),
    ("rotations", "+ in-plane rotations, wider intensity augmentation", {"augmentation": "strong"}),
    ("flip-tta", "+ left-right flip averaged at prediction time", {"tta": True}),
)


def _request(args, name, overrides, **extra):
    base = RunRequest(cohort=args.cohort, model=args.model, sequence=args.sequence, out=str(Path(args.out) / name),
                      split="cv5", epochs=args.epochs, seed=args.seed, device="cpu", threads=args.threads,
                      workers=args.workers, recipe="paper", final_model=False, progress=False)
    return replace(base, **dict(overrides, **extra))


def _row(name, change, metrics, scope):
    return {"step": name, "change": change, "scope": scope, "n": metrics["n"], "auc": metrics["auc"],
            "auc_ci_delong": metrics["auc_ci_delong"], "accuracy": metrics["accuracy"],
            "sensitivity": metrics["sensitivity"], "specificity": metrics["specificity"]}


def run_ablation(args):
    rows, overrides = [], {}
    chosen = STEPS if args.steps == "all" else [s for s in STEPS if s[0] in args.steps.split(",")]
    last_request = None
    for name, change, step in STEPS:
        overrides = dict(overrides, **step)
        if (name, change, step) not in chosen:
            continue
        start = time.perf_counter()
        req = _request(args, name, overrides)
        metrics = train_run(req)
        print("{:<18} OOF AUC {:.3f} ({:.3f}-{:.3f})  [{:.0f} s]".format(name, metrics["auc"],
                                                                        *metrics["auc_ci_delong"],
                                                                        time.perf_counter() - start), flush=True)
        rows.append(_row(name, change, metrics, "out-of-fold, {} cases".format(metrics["n"])))
        last_request = req
    if args.external and last_request is not None:
        rows += _external_rows(args, last_request)
    radiomics = train_run(RunRequest(cohort=args.cohort, model="radiomics_lr", sequence=args.sequence,
                                     out=str(Path(args.out) / "radiomics"), split="cv5", seed=args.seed, device="cpu",
                                     threads=args.threads, workers=args.workers, final_model=False, progress=False))
    bound = bounds.for_run(atomic.load_json(Path(last_request.out) / "config.json")) if last_request else None
    return rows, _row("radiomics_lr", "radiomics + logistic regression baseline (same folds)", radiomics,
                      "out-of-fold, {} cases".format(radiomics["n"])), bound


def _external_rows(args, req):
    """The last CV row exported as one final model and as the fold ensemble, scored on --external."""
    out = []
    for name, change, extra in (("final-model", "one model trained on all cases, scored on the external cohort",
                                 {"final_model": True, "ensemble": False}),
                                ("fold-ensemble", "the five fold models averaged, scored on the external cohort",
                                 {"ensemble": True})):
        run_dir = Path(args.out) / "{}-{}".format(Path(req.out).name, name)
        trained = replace(req, out=str(run_dir), **extra)
        train_run(trained)
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
             "| step | change | scope | AUC (95 % CI, DeLong) | accuracy | sensitivity | specificity |",
             "|---|---|---|---|---|---|---|"]
    for r in rows + [radiomics]:
        lines.append("| {step} | {change} | {scope} | {auc:.3f} ({lo:.3f}-{hi:.3f}) | {accuracy:.2f} | "
                     "{sensitivity:.2f} | {specificity:.2f} |".format(lo=r["auc_ci_delong"][0], hi=r["auc_ci_delong"][1],
                                                                       **r))
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
    parser.add_argument("--steps", default="all", help="comma-separated step names, or all")
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
