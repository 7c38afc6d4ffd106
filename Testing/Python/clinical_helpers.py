"""Clinical columns for the tiny blob cohort (training_helpers): drawn from each case's label, with
missing cells, so clinical models have something to learn and something to impute."""

import csv
from pathlib import Path

import numpy as np

from training_helpers import read_rows

CLINICAL_FIELDS = ["case_id", "patient_id", "lvi", "t2_image", "t2_mask", "dce_image", "dce_mask", "age",
                   "tumour_size_mm", "mri_aln", "peritumoral_edema", "her2", "ki67"]


def add_clinical_columns(root, seed=0, signal=1.0, missing=0.1):
    """Rewrite ``root/cohort.csv`` with the six clinical columns (``signal`` 0: independent of the label)."""
    rows = read_rows(root)
    rng = np.random.default_rng(seed)
    for row in rows:
        y = int(row["lvi"]) * signal
        row["tumour_size_mm"] = "{:.0f}".format(np.clip(rng.normal(18 + 8 * y, 6), 3, 80))
        row["mri_aln"] = str(int(rng.random() < 0.2 + 0.45 * y))
        row["peritumoral_edema"] = str(int(rng.random() < 0.3 + 0.3 * y))
        row["her2"] = str(int(rng.random() < 0.2))
        row["ki67"] = "{:.0f}".format(np.clip(rng.normal(20 + 15 * y, 12), 0, 100))
        for name in ("tumour_size_mm", "mri_aln", "ki67"):
            if rng.random() < missing:
                row[name] = ""
    write_rows(root, rows)
    return rows


def write_rows(root, rows):
    with open(Path(root) / "cohort.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CLINICAL_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in CLINICAL_FIELDS})
