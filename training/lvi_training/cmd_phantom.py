"""``lvi phantom``: write a synthetic breast-MRI cohort (or the shipped sample case)."""

import sys
import time

from LVIPredictorLib.vocabulary import sequences

from .commands import help_of


def register(subparsers):
    p = subparsers.add_parser(
        "phantom", help=help_of("phantom"),
        description="Write N phantom cases (FS-T2WI + multi-phase DCE, DICOM and/or NIfTI, radiologist-style VOIs) "
        "with cohort.csv and cohort.json (which records the best AUC the generative model allows). "
        "Same seed, same bytes.")
    p.add_argument("--out", required=True, help="output folder (cohort.csv, cohort.json, cases/)")
    p.add_argument("--n", type=int, default=40, help="number of cases (default 40)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", choices=("small", "full"), default="small",
                   help="small: reduced field of view around the tumour (fast); full: clinical matrix")
    p.add_argument("--outputs", default="dicom,nifti",
                   help="comma-separated: dicom, nifti or both (default %(default)s; the CSV points at NIfTI when "
                        "written)")
    p.add_argument("--signal", type=float, default=1.0,
                   help="scales every LVI effect size (1 = literature level, best AUC ~0.82; 3 = easy, ~0.997)")
    p.add_argument("--null", action="store_true", help="labels independent of the images (best AUC 0.5)")
    p.add_argument("--second-label", action="store_true",
                   help="add label 2 (a small adjacent region) to the VOI masks, to exercise the label rule")
    p.add_argument("--dce-phase", type=int, default=sequences.DEFAULT_DCE_PHASE,
                   help="DCE temporal position copied to NIfTI, 1 = pre-contrast (default 2: first post-contrast)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--sample", action="store_true",
                   help="write only the shipped sample case (fixed seed) and its SHA256SUMS into --out")
    p.set_defaults(func=run)


def run(args):
    from lvi_training.phantom import sample
    from lvi_training.phantom.cohort import CohortSpec, write_cohort

    if args.sample:
        info = sample.write_sample(args.out)
        print("wrote sample case {} (lvi={}) and SHA256SUMS to {}".format(info["case_id"], info["lvi"], args.out))
        return 0
    outputs = tuple(o.strip() for o in args.outputs.split(",") if o.strip())
    if args.n < 1:
        print("lvi phantom: --n must be at least 1", file=sys.stderr)
        return 2
    spec = CohortSpec(seed=args.seed, n=args.n, size=args.size, outputs=outputs, signal=args.signal,
                      null=args.null, second_label=args.second_label, dce_phase=args.dce_phase)
    start = time.perf_counter()

    def progress(done, total):
        if done == total or done % max(1, total // 10) == 0:
            print("  {}/{} cases".format(done, total), flush=True)

    try:
        meta = write_cohort(args.out, spec, workers=max(1, args.workers), progress=progress)
    except ValueError as exc:
        print("lvi phantom: {}".format(exc), file=sys.stderr)
        return 2
    auc = meta["best_auc"]
    print("wrote {} cases ({} LVI+) to {} in {:.1f} s".format(meta["n_cases"], meta["n_lvi_positive"], args.out,
                                                               time.perf_counter() - start))
    print("best possible AUC: both {both:.3f}, T2 only {t2:.3f}, DCE only {dce:.3f}".format(**auc))
    print("best possible AUC per model input: {}".format(", ".join(
        "{} {:.3f}".format(k, v) for k, v in meta["best_auc_by_input"].items())))
    return 0
