"""The paper's Table 1 (2 sequences x 3 models) re-done with CIs, next to the published numbers.

Each combination is an ordinary run folder under DIR (``DIR/<sequence>_<model>``), so an
interrupted table resumes like any run. The paper's numbers are from its 46-patient
validation set, with no CIs; ours carry DeLong CIs on the AUC and Wilson CIs on the
proportions, which show how little a 46-patient table can rank models. With ``fusion`` the
table gains the fused FS-T2WI + DCE row of each model, which the paper did not have, and for
cv5 runs the late fusion of each network's FS-T2WI and DCE runs (``lvi fuse``'s metrics, no
training of its own).
"""

import csv
import io
from pathlib import Path

from LVIPredictorLib.vocabulary import architectures
from LVIPredictorLib.vocabulary.sequences import FUSED
from LVIPredictorLib.vocabulary.sequences import LABELS as SEQUENCE_LABEL

from . import atomic

SEQUENCE_ORDER = ("dce", "t2")

# (accuracy, sensitivity, specificity, AUC) on the paper's validation set (n = 46).
PAPER_TABLE1 = {
    ("dce", "vanilla_cnn_2d"): (0.74, 0.69, 0.76, 0.76),
    ("dce", "resnet10_2d"): (0.71, 0.66, 0.74, 0.72),
    ("dce", "resnet10_3d"): (0.80, 0.80, 0.73, 0.80),
    ("t2", "vanilla_cnn_2d"): (0.67, 0.67, 0.69, 0.70),
    ("t2", "resnet10_2d"): (0.68, 0.85, 0.59, 0.77),
    ("t2", "resnet10_3d"): (0.74, 0.62, 0.80, 0.69),
}


LATE_FUSION = "late_fusion:"


def late_fusion_model(model):
    """The row key of a network's late fusion (its FS-T2WI and DCE runs averaged)."""
    return LATE_FUSION + model


def model_label(model):
    if model.startswith(LATE_FUSION):
        return "{}, late fusion of the FS-T2WI and DCE runs".format(model_label(model[len(LATE_FUSION):]))
    return architectures.get(model).label


def combinations(fusion=False):
    """(sequence, model) rows: the paper's three networks and the radiomics baseline beside them."""
    order = SEQUENCE_ORDER + ((FUSED,) if fusion else ())
    return [(seq, model) for seq in order for model in architectures.names()]


def run_folder(out_dir, sequence, model):
    return Path(out_dir) / "{}_{}".format(sequence, model)


def table_rows(results, best_possible=None):
    """``results``: {(sequence, model): metrics dict}; returns JSON-ready rows in the paper's order
    (fused rows last; their paper columns are None). ``best_possible``: {(sequence, model): the
    phantom's bound for that model's input (bounds.for_run) or None}."""
    rows = []
    best_possible = best_possible or {}
    late = [(FUSED, late_fusion_model(model)) for model in architectures.STUDY_NETWORKS]
    for seq, model in combinations(fusion=any(key[0] == FUSED for key in results)) + late:
        if (seq, model) not in results:
            continue
        m = results[(seq, model)]
        paper = PAPER_TABLE1.get((seq, model), (None,) * 4)
        bound = best_possible.get((seq, model)) or {}
        rows.append({
            "sequence": SEQUENCE_LABEL[seq], "model": model_label(model), "n": m["n"], "scope": m["scope"],
            "accuracy": m["accuracy"], "accuracy_ci": m["accuracy_ci"],
            "sensitivity": m["sensitivity"], "sensitivity_ci": m["sensitivity_ci"],
            "specificity": m["specificity"], "specificity_ci": m["specificity_ci"],
            "auc": m["auc"], "auc_ci_delong": m["auc_ci_delong"], "auc_ci_bootstrap": m["auc_ci_bootstrap"],
            "brier": m["brier"], "calibration_slope": m["calibration_slope"],
            "best_possible_auc": bound.get("auc"), "best_possible_input": bound.get("input"),
            "paper_accuracy": paper[0], "paper_sensitivity": paper[1], "paper_specificity": paper[2],
            "paper_auc": paper[3]})
    return rows


def _ci(value, ci):
    return "{:.2f} ({:.2f}-{:.2f})".format(value, ci[0], ci[1])


def _bound(row):
    if row.get("best_possible_auc") is None:
        return "—"
    return "{:.3f} ({}; AUC = {:.0f} % of it)".format(row["best_possible_auc"], row["best_possible_input"],
                                                      100.0 * row["auc"] / row["best_possible_auc"])


def _paper(value):
    return "—" if value is None else "{:.2f}".format(value)


def markdown(rows, title):
    lines = ["# {}".format(title), "",
             "Ours: value (95 % CI; DeLong for AUC, Wilson for proportions). Best possible: the phantom "
             "generator's AUC bound for what the model's input shows (— for a patient cohort). Paper: its "
             "46-patient validation set, no CIs.", "",
             "| Sequence | Model | n | Accuracy | Sensitivity | Specificity | AUC | best possible AUC (this input) "
             "| Brier | paper Acc | paper Sens | paper Spec | paper AUC |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} | {:.3f} | {} | {} | {} | {} |".format(
            r["sequence"], r["model"], r["n"], _ci(r["accuracy"], r["accuracy_ci"]),
            _ci(r["sensitivity"], r["sensitivity_ci"]), _ci(r["specificity"], r["specificity_ci"]),
            _ci(r["auc"], r["auc_ci_delong"]), _bound(r), r["brier"], _paper(r["paper_accuracy"]),
            _paper(r["paper_sensitivity"]), _paper(r["paper_specificity"]), _paper(r["paper_auc"])))
    return "\n".join(lines) + "\n"


def write_table(rows, out_dir, title):
    out_dir = Path(out_dir)
    text = markdown(rows, title)
    atomic.save_text(text, out_dir / "table1.md")
    atomic.save_json({"title": title, "rows": rows}, out_dir / "table1.json")
    buffer = io.StringIO()
    flat = [{k: (";".join("{:.4f}".format(x) for x in v) if isinstance(v, list) else v) for k, v in r.items()}
            for r in rows]
    writer = csv.DictWriter(buffer, fieldnames=list(flat[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    atomic.save_text(buffer.getvalue(), out_dir / "table1.csv")
    return text
