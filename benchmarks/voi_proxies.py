"""How far the VOI's outline alone goes: the AUC of the VOI's volume, its extent along z, its
number of axial slices and its irregularity (1 - sphericity), next to the out-of-fold AUC of
finished runs on the same cases.

    python benchmarks/voi_proxies.py --cohort COHORT --sequence dce [--run RUN ...] [--out FILE.json]

Each proxy is a number read straight from the VOI mask (nothing is fitted, so the AUC is as
honest as an out-of-fold one) with its DeLong 95 % CI. For each RUN (an `lvi train --split cv5`
folder on the same cohort) it prints the run's AUC and, for each proxy, the paired DeLong
difference from it and the rank correlation of the run's held-out scores with it: a network whose
scores track a proxy closely, and which does not beat it, has learnt little beyond it.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "LVIPredictor"), str(REPO / "training")]

from LVIPredictorLib.inputs import readers
from lvi_training import metrics  # noqa: E402
from lvi_training.cohort import load_cohort  # noqa: E402
from lvi_training.evaluate import out_of_fold_predictions  # noqa: E402
from lvi_training.voi_shape import NAMES, descriptors  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--sequence", choices=("t2", "dce"), required=True)
    ap.add_argument("--run", nargs="*", default=[])
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    cases = load_cohort(args.cohort).with_sequence(args.sequence)
    ids = [c.case_id for c in cases]
    labels = np.array([c.lvi for c in cases], dtype=int)
    values = np.array([descriptors(readers.read_mask(c.masks[args.sequence]), str(c.masks[args.sequence])) for c in cases])
    result = {"cohort": str(args.cohort), "sequence": args.sequence, "n": len(ids), "proxies": {}, "runs": {}}
    print("| {} ({} cases) | AUC (95 % CI, DeLong) |".format(args.sequence, len(ids)))
    print("|---|---|")
    for name, column in zip(NAMES, values.T):
        auc, (lo, hi) = metrics.delong_ci(labels, column)
        result["proxies"][name] = {"auc": auc, "ci": [lo, hi]}
        print("| {} | {:.3f} ({:.3f}–{:.3f}) |".format(name, auc, lo, hi))
    for run in args.run:
        held_out = out_of_fold_predictions(run)
        if set(held_out) != set(ids):
            raise SystemExit("{}: holds other cases than the cohort's {} cases".format(run, args.sequence))
        scores = np.array([held_out[c][1] for c in ids])
        auc, (lo, hi) = metrics.delong_ci(labels, scores)
        result["runs"][run] = {"auc": auc, "ci": [lo, hi], "against": {}}
        print("| {} | {:.3f} ({:.3f}–{:.3f}) |".format(run, auc, lo, hi))
        for name, proxy in zip(NAMES, values.T):
            diff, ci, p = metrics.delong_paired(labels, scores, proxy)
            rho = float(spearmanr(scores, proxy)[0])  # tied ranks averaged: slice counts tie often
            result["runs"][run]["against"][name] = {"minus_proxy": diff, "diff_ci": list(ci), "p": p,
                                                    "spearman": rho}
            print("| ... minus {} | {:+.3f} ({:+.3f} to {:+.3f}), paired DeLong p = {:.3f}; Spearman {:.2f} |".format(
                name, diff, ci[0], ci[1], p, rho))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
