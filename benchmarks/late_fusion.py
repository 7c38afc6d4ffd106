"""Late fusion of finished runs: the mean held-out logit of per-sequence networks.

    python benchmarks/late_fusion.py RUN RUN [RUN ...] [--against RUN [RUN ...]] [--out FILE.json]

Each RUN is a finished `lvi train ... --split cv5` folder on the same cohort (e.g. the DCE
and the FS-T2WI VanillaCNN). Their out-of-fold probabilities are averaged on the logit
scale with equal weights (nothing fitted, so the fused score of a case still comes only from
models that never saw it). Prints each run's AUC, the fused AUC (DeLong 95 % CI) and, with
--against (e.g. the early-fusion t2+dce run, or several runs: their own late fusion), the paired
DeLong difference on the same cases; one RUN with --against compares that run with the other.
The runs may read one sequence or both (an ensemble of architectures, as `lvi fuse` builds).
"""

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "LVIPredictor"), str(REPO / "training")]

import numpy as np  # noqa: E402

from lvi_training import atomic, metrics  # noqa: E402
from LVIPredictorLib.models.late_fusion import mean_logit
from lvi_training.evaluate import aligned_out_of_fold  # noqa: E402


def _row(name, labels, scores, reference=None):
    auc, (lo, hi) = metrics.delong_ci(labels, scores)
    row = {"scores": name, "auc": auc, "auc_ci": [lo, hi]}
    if reference is not None:
        diff, (dlo, dhi), p = metrics.delong_paired(labels, scores, reference)
        row.update(diff=diff, diff_ci=[dlo, dhi], p=p)
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--against", type=Path, nargs="+", default=[],
                        help="a run on the same cases to compare the fusion with (paired); several: their fusion")
    parser.add_argument("--out", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    if len(args.runs) < 2 and not args.against:
        parser.error("late fusion needs at least two runs (one is enough to compare it --against another)")
    shown = args.runs + args.against
    # One read of every run; the --against runs must hold the same cases and labels too.
    _, labels, probabilities = aligned_out_of_fold(shown)
    fused = mean_logit(probabilities[:len(args.runs)])
    reference = mean_logit(probabilities[len(args.runs):]) if args.against else None
    # The compared scores close the table; every other run is shown once above them.
    compared = "late fusion (mean logit)" if len(args.runs) > 1 else str(args.runs[0])
    unique = dict(zip(map(str, shown), probabilities))
    rows = [_row(name, labels, p) for name, p in unique.items() if name != compared]
    if len(args.against) > 1:
        rows.append(_row("late fusion of --against (mean logit)", labels, reference))
    rows.append(_row(compared, labels, fused, reference))
    print("{} cases, {} LVI+, out-of-fold\n".format(len(labels), int(labels.sum())))
    print("| scores | AUC (95 % CI, DeLong) | minus --against (95 % CI), paired DeLong p |\n|---|---|---|")
    for r in rows:
        diff = "—" if "diff" not in r else "{:+.3f} ({:+.3f} to {:+.3f}), p = {:.4f}".format(
            r["diff"], r["diff_ci"][0], r["diff_ci"][1], r["p"])
        print("| {} | {:.3f} ({:.3f}–{:.3f}) | {} |".format(r["scores"], r["auc"], r["auc_ci"][0], r["auc_ci"][1], diff))
    if args.out:
        atomic.save_json(rows, args.out)


if __name__ == "__main__":
    main()
