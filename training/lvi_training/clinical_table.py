"""Clinical, imaging and combined models side by side, with paired DeLong tests (``lvi table --clinical``).

For each imaging run of the table (cv5), the clinical columns alone (one ``clinical_lr`` run), the
imaging model alone and the combined model (its clinical columns + that run's out-of-fold score) are
compared on the cases all three scored, out-of-fold: AUC with its DeLong CI each, and the paired
DeLong test of each difference (the same cases scored twice, so the correlation between the two
scorings counts; overlapping unpaired CIs say little about a difference).
"""

from pathlib import Path

import numpy as np

from . import atomic, bounds, clinical_fit, metrics
from .evaluate import out_of_fold_predictions

CLINICAL_FOLDER = "clinical_lr"


def combined_folder(imaging_folder):
    return Path(str(imaging_folder) + "+clinical")


def train_clinical_rows(cohort, out_dir, imaging_folders, seed):
    """Train the clinical_lr run and one combined run per imaging run; returns the comparison rows."""
    clinical_dir = Path(out_dir) / CLINICAL_FOLDER
    print("== clinical columns (logistic regression) ==", flush=True)
    clinical_fit.train_clinical_run(cohort, clinical_fit.CLINICAL_LR, clinical_dir, seed=seed, overwrite=True)
    rows = []
    for imaging_dir in imaging_folders:
        print("== {} + clinical columns ==".format(Path(imaging_dir).name), flush=True)
        combined_dir = combined_folder(imaging_dir)
        clinical_fit.train_clinical_run(cohort, clinical_fit.COMBINED, combined_dir, seed=seed,
                                        imaging_run=imaging_dir, overwrite=True)
        rows.append(compare(clinical_dir, imaging_dir, combined_dir))
    return rows


def compare(clinical_dir, imaging_dir, combined_dir):
    """One comparison row: the three models' out-of-fold AUCs on their common cases and paired tests."""
    parts = {"clinical": out_of_fold_predictions(clinical_dir), "imaging": out_of_fold_predictions(imaging_dir),
             "combined": out_of_fold_predictions(combined_dir)}
    common = sorted(set.intersection(*(set(p) for p in parts.values())))
    labels = np.array([parts["imaging"][c][0] for c in common], dtype=int)
    scores = {k: np.array([p[c][1] for c in common]) for k, p in parts.items()}
    row = {"imaging_run": str(imaging_dir), "n": len(common), "n_positive": int(labels.sum())}
    for key, s in scores.items():
        value, ci = metrics.delong_ci(labels, s)
        row[key] = {"auc": value, "auc_ci_delong": list(ci)}
    for a, b in (("combined", "imaging"), ("combined", "clinical"), ("imaging", "clinical")):
        diff, ci, p = metrics.delong_paired(labels, scores[a], scores[b])
        row["{}_vs_{}".format(a, b)] = {"difference": diff, "ci": list(ci), "p": p}
    config = atomic.load_json(Path(imaging_dir) / "config.json")
    recipe = config["cohort"].get("recipe")
    row["imaging"]["label"] = "{} {}".format(config["model"], config["sequence"])
    for key, bound in (("imaging", bounds.for_run(config)),
                       ("clinical", bounds.for_cohort(recipe, bounds.clinical_input())),
                       ("combined", bounds.for_cohort(recipe, bounds.clinical_input(config)))):
        row[key]["best_possible_auc"] = (bound or {}).get("auc")
    return row


def _auc(entry):
    text = "{:.2f} ({:.2f}-{:.2f})".format(entry["auc"], *entry["auc_ci_delong"])
    if entry.get("best_possible_auc") is not None:
        text += " of {:.2f}".format(entry["best_possible_auc"])
    return text


def _diff(entry):
    p = "p < 0.001" if entry["p"] < 0.001 else "p = {:.3f}".format(entry["p"])  # never "p = 0.000"
    return "{:+.3f} ({:+.3f} to {:+.3f}), {}".format(entry["difference"], entry["ci"][0], entry["ci"][1], p)


def markdown(rows):
    lines = ["# Clinical, imaging and combined models (out-of-fold, 5-fold CV by patient)", "",
             "AUC (DeLong 95 % CI; 'of X': the phantom's best possible AUC for that input). Differences: paired "
             "DeLong test on the same cases. Combined = logistic regression on the clinical columns + the imaging "
             "run's out-of-fold logit.", "",
             "| Imaging model | n (LVI+) | clinical alone | imaging alone | combined | combined - imaging "
             "| combined - clinical | imaging - clinical |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| {} | {} ({}) | {} | {} | {} | {} | {} | {} |".format(
            r["imaging"]["label"], r["n"], r["n_positive"], _auc(r["clinical"]), _auc(r["imaging"]),
            _auc(r["combined"]), _diff(r["combined_vs_imaging"]), _diff(r["combined_vs_clinical"]),
            _diff(r["imaging_vs_clinical"])))
    return "\n".join(lines) + "\n"


def write(rows, out_dir):
    text = markdown(rows)
    atomic.save_text(text, Path(out_dir) / "clinical_table.md")
    atomic.save_json({"rows": rows}, Path(out_dir) / "clinical_table.json")
    return text
