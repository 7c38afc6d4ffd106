"""How far the VOI's size alone goes: the AUC of the VOI's volume, its extent along z and its
number of axial slices, next to the out-of-fold AUC of finished runs on the same cases.

    python benchmarks/size_proxies.py --cohort COHORT --sequence dce [--run RUN ...] [--out FILE.json]

Each proxy is a number read straight from the VOI mask (nothing is fitted, so the AUC is as
honest as an out-of-fold one) with its DeLong 95 % CI. For each RUN (an `lvi train --split cv5`
folder on the same cohort) it prints the run's AUC, the paired DeLong difference from the best
proxy, and the rank correlation of the run's held-out scores with that proxy: a network whose
scores track the VOI's size closely, and which does not beat it, has learnt little beyond size.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "LVIPredictor"), str(REPO / "training")]

from LVIPredictorLib import io  # noqa: E402
from lvi_training import metrics  # noqa: E402
from lvi_training.cohort import load_cohort  # noqa: E402
from lvi_training.evaluate import out_of_fold_predictions  # noqa: E402


def proxies(mask):
    """(volume mm3, extent along the image's z axis in mm, number of axial slices the VOI crosses)."""
    voi = sitk.GetArrayViewFromImage(mask) != 0
    if not voi.any():
        raise ValueError("empty VOI")
    spacing = mask.GetSpacing()
    slices = np.flatnonzero(voi.any(axis=(1, 2)))
    return (float(voi.sum() * np.prod(spacing)), float((slices[-1] - slices[0] + 1) * spacing[2]),
            float(len(slices)))


NAMES = ("VOI volume", "VOI extent along z", "axial slices the VOI crosses")


def _rank(x):
    return np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(float)


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
    values = np.array([proxies(io.read_mask(c.masks[args.sequence])) for c in cases])
    result = {"cohort": str(args.cohort), "sequence": args.sequence, "n": len(ids), "proxies": {}, "runs": {}}
    print("| {} ({} cases) | AUC (95 % CI, DeLong) |".format(args.sequence, len(ids)))
    print("|---|---|")
    for name, column in zip(NAMES, values.T):
        auc, (lo, hi) = metrics.delong_ci(labels, column)
        result["proxies"][name] = {"auc": auc, "ci": [lo, hi]}
        print("| {} | {:.3f} ({:.3f}–{:.3f}) |".format(name, auc, lo, hi))
    best = max(result["proxies"], key=lambda k: result["proxies"][k]["auc"])
    proxy = values[:, NAMES.index(best)]
    for run in args.run:
        held_out = out_of_fold_predictions(run)
        if set(held_out) != set(ids):
            raise SystemExit("{}: holds other cases than the cohort's {} cases".format(run, args.sequence))
        scores = np.array([held_out[c][1] for c in ids])
        auc, _ = metrics.delong_ci(labels, scores)
        diff, ci, p = metrics.delong_paired(labels, scores, proxy)
        rho = float(np.corrcoef(_rank(scores), _rank(proxy))[0, 1])
        result["runs"][run] = {"auc": auc, "minus_best_proxy": diff, "diff_ci": list(ci), "p": p,
                               "spearman_with_best_proxy": rho}
        print("| {} | {:.3f}; minus {}: {:+.3f} ({:+.3f} to {:+.3f}), paired DeLong p = {:.3f}; Spearman "
              "with it {:.2f} |".format(run, auc, best, diff, ci[0], ci[1], p, rho))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
