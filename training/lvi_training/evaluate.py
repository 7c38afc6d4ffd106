"""Metrics of a run from its frozen fold results: predictions.csv, metrics.json, plots.

Nothing is retrained or re-scored here: the fold results hold the held-out
probabilities and each fold's threshold (chosen on its training predictions before the
held-out fold was scored). So ``lvi evaluate RUN`` reproduces ``metrics.json`` exactly.

- paper split: metrics of the 10 % holdout at the training-Youden threshold.
- cv5: pooled out-of-fold metrics (AUC over all OOF probabilities; accuracy, sensitivity,
  specificity with each case's own fold threshold), plus each fold's AUC.
Metrics are per case; 2D models give one score per case by ``aggregate_slice_scores``.
"""

import csv
import io
import tempfile
from pathlib import Path

import numpy as np

from LVIPredictorLib.atomic_files import StagedFiles
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.models.late_fusion import mean_logit

from . import atomic, metrics, plots
from .run_record import load_run_config

def fold_results(run_dir):
    """The frozen result.json of every fold of a finished run, in fold order."""
    if not (run_dir / "splits.json").exists():
        raise InputError(str(run_dir), "is not an `lvi train` run folder (no splits.json)")
    split = atomic.load_json(run_dir / "splits.json")
    results = []
    for fold in split["folds"]:
        path = run_dir / "fold_{}".format(fold["index"]) / "result.json"
        if not path.exists():
            raise InputError(str(run_dir), "is incomplete: {} is missing; re-run the same `lvi train` command to "
                             "resume it".format(path.relative_to(run_dir)))
        result = atomic.load_json(path)
        _check_finite_scores(result, path)
        results.append(result)
    return results


def _check_finite_scores(result, path):
    """A NaN score (a diverged fold) would sort anywhere in an AUC and give no class: refused, naming the case."""
    values = [("threshold", None, result.get("threshold", 0.0))]
    values += [("{} probability".format(part), row.get("case_id"), row.get("probability"))
               for part in ("test", "train") for row in result.get(part) or ()]
    for what, case_id, value in values:
        if not isinstance(value, (int, float)) or not np.isfinite(value):
            raise InputError(str(path), "{}{} is {!r}, not a finite number: this fold's model diverged or its result "
                                        "was edited; re-train the run".format(
                                            what, " of case {}".format(case_id) if case_id else "", value))


def out_of_fold_predictions(run_dir):
    """{case_id: (label, held-out probability)} of a finished run, read from its frozen fold results."""
    return _held_out(fold_results(Path(run_dir)))


def _held_out(results):
    return {row["case_id"]: (int(row["lvi"]), float(row["probability"])) for result in results
            for row in result["test"]}


def aligned_out_of_fold(run_dirs, per_run_results=None):
    """(case ids, labels, held-out probabilities with one row per run) of finished runs on the same cases;
    ``per_run_results``: each run's ``fold_results`` when the caller has read them already."""
    if per_run_results is None:
        parts = [out_of_fold_predictions(r) for r in run_dirs]
    else:
        parts = [_held_out(results) for results in per_run_results]
    case_ids = sorted(parts[0])
    for run_dir, part in zip(run_dirs[1:], parts[1:]):
        if set(part) != set(case_ids):
            raise InputError(str(run_dir), "holds other cases than {} ({} against {}); runs compared case by case "
                             "need the same cohort".format(run_dirs[0], len(part), len(case_ids)))
        wrong = [c for c in case_ids if part[c][0] != parts[0][c][0]]
        if wrong:
            raise InputError(str(run_dir), "gives other labels than {} for {} case(s), e.g. {}".format(
                run_dirs[0], len(wrong), wrong[0]))
    labels = np.array([parts[0][c][0] for c in case_ids], dtype=int)
    return case_ids, labels, np.array([[part[c][1] for c in case_ids] for part in parts], dtype=float)


def late_fusion(run_dirs):
    """(case ids, labels, mean held-out logit) of finished runs on the same cases.

    Equal weights, so nothing is fitted and each case's fused score still comes only from
    models that never saw it: the result is out-of-fold like its parts.
    """
    if len(run_dirs) < 2:
        raise InputError(", ".join(str(r) for r in run_dirs), "late fusion needs at least two runs")
    case_ids, labels, probabilities = aligned_out_of_fold(run_dirs)
    return case_ids, labels, mean_logit(probabilities)


def evaluate_run(run_dir):
    """Compute and write the run's metrics; returns the metrics dict."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    results = fold_results(run_dir)
    rows = []
    for result in results:
        for row in result["test"]:
            rows.append(dict(row, fold=result["fold"], threshold=result["threshold"]))
    labels = np.array([r["lvi"] for r in rows], dtype=int)
    probs = np.array([r["probability"] for r in rows], dtype=float)
    thresholds = np.array([r["threshold"] for r in rows], dtype=float)
    seed = int(config.get("seed", 0))

    out = {"run": str(run_dir), "model": config["model"], "sequence": config["sequence"],
           "split": config["split"], "epochs": config["epochs"], "seed": seed,
           "scope": "10% patient holdout" if config["split"] == "paper" else "pooled out-of-fold (5-fold CV by patient)",
           "threshold_rule": "Youden's J on each fold's training predictions, frozen before scoring held-out cases"}
    out.update(metrics.summarize(labels, probs, thresholds, seed=seed))
    if config["split"] == "paper":
        out["threshold"] = float(results[0]["threshold"])
        out["export_threshold"] = out["threshold"]
        out["export_threshold_method"] = "youden_on_training_predictions"
    else:
        out["folds"] = [_fold_summary(r) for r in results]
        out["export_threshold"] = metrics.youden_threshold(labels, probs)
        out["export_threshold_method"] = "youden_on_out_of_fold_predictions"
    write_results(rows, out, run_dir, "{} {} ({})".format(config["model"], config["sequence"], out["scope"]))
    return out


RESULT_FILES = ("metrics.json", "predictions.csv", "roc.png", "calibration.png")


def write_results(rows, out, folder, title):
    """predictions.csv, roc.png, calibration.png and metrics.json (``out``) into ``folder``, all four or
    none: they are drawn in a scratch folder first and renamed into place together, so a failure (a
    full disk, a plot that cannot be drawn) leaves no metrics beside stale or missing figures.

    ``rows``: one dict per case with case_id, patient_id, lvi, fold, probability, threshold
    and slice_probabilities.
    """
    folder = Path(folder)
    labels = np.array([r["lvi"] for r in rows], dtype=int)
    probs = np.array([r["probability"] for r in rows], dtype=float)
    thresholds = np.array([r["threshold"] for r in rows], dtype=float)
    for r in rows:
        r["predicted"] = int(r["probability"] >= r["threshold"])
    with tempfile.TemporaryDirectory(prefix="lvi-results-") as scratch, StagedFiles() as files:
        scratch = Path(scratch)
        _write_predictions(rows, scratch / "predictions.csv")
        plots.roc_plot(labels, probs, scratch / "roc.png", title, threshold=thresholds,
                       auc_text="AUC {:.3f} (DeLong 95% CI {:.3f}-{:.3f})".format(out["auc"], *out["auc_ci_delong"]))
        plots.calibration_plot(labels, probs, scratch / "calibration.png", title,
                               slope_text="slope {:.2f}, intercept {:.2f}".format(out["calibration_slope"],
                                                                              out["calibration_intercept"]))
        atomic.save_json(out, scratch / "metrics.json")
        for name in RESULT_FILES:
            files.write_bytes(folder / name, (scratch / name).read_bytes())


def _fold_summary(result):
    y = np.array([r["lvi"] for r in result["test"]], dtype=int)
    p = np.array([r["probability"] for r in result["test"]], dtype=float)
    summary = {"fold": result["fold"], "n": int(len(y)), "threshold": result["threshold"],
               "train_auc": result.get("train_auc")}
    if len(np.unique(y)) == 2:
        summary["auc"], summary["auc_ci_delong"] = metrics.delong_ci(y, p)
    summary.update({k: v for k, v in metrics.confusion(y, p, result["threshold"]).items()
                    if k in ("accuracy", "sensitivity", "specificity")})
    return summary


def _write_predictions(rows, path):
    fields = ["case_id", "patient_id", "lvi", "fold", "probability", "threshold", "predicted", "slice_probabilities"]
    lines = []
    for r in rows:
        lines.append([r["case_id"], r["patient_id"], r["lvi"], r["fold"], "{:.6f}".format(r["probability"]),
                      "{:.6f}".format(r["threshold"]), r["predicted"],
                      ";".join("{:.6f}".format(s) for s in r["slice_probabilities"])])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    writer.writerows(lines)
    atomic.save_text(buffer.getvalue(), path)


def headline(m):
    return ("{model} {sequence} {scope}: AUC {auc:.3f} (DeLong {d[0]:.3f}-{d[1]:.3f}; bootstrap {b[0]:.3f}-{b[1]:.3f}), "
            "accuracy {accuracy:.3f}, sensitivity {sensitivity:.3f}, specificity {specificity:.3f}, "
            "Brier {brier:.3f}, calibration slope {calibration_slope:.2f} intercept {calibration_intercept:.2f}, "
            "n={n}").format(d=m["auc_ci_delong"], b=m["auc_ci_bootstrap"], **m)


def load_metrics(run_dir):
    return atomic.load_json(Path(run_dir) / "metrics.json")
