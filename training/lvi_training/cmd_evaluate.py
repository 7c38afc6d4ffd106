"""``lvi evaluate RUN`` (recompute a run's metrics) or ``lvi evaluate --model M --cohort C --out DIR``
(score a trained model on a cohort: external validation)."""

from pathlib import Path

from LVIPredictorLib.errors import LVIError
from LVIPredictorLib.service import outputs

from . import external
from .commands import help_of
from .evaluate import evaluate_run, headline


def register(subparsers):
    p = subparsers.add_parser(
        "evaluate", help=help_of("evaluate"),
        description="Two forms. `lvi evaluate RUN` recomputes RUN/metrics.json, predictions.csv, roc.png and "
                    "calibration.png from the frozen fold results (nothing is retrained). `lvi evaluate --model M "
                    "--cohort C --out DIR` scores a bundled model or exported card on every case of cohort C that "
                    "has its sequence(s), through the same path as `lvi predict`, at the card's frozen threshold, "
                    "and writes the same files to DIR: external validation on your own cohort.")
    p.add_argument("run", nargs="?", help="run folder written by `lvi train`")
    p.add_argument("--model", metavar="ID_OR_CARD", help="bundled model id or model card JSON to score on --cohort")
    p.add_argument("--cohort", help="cohort folder (cohort.csv) to score --model on")
    p.add_argument("--out", help="folder for the results of --model on --cohort")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    p.add_argument("--dce-phase", type=int, default=None,
                   help="DCE phase to read from dynamic DICOM series (default: the phase in the model card)")
    p.add_argument("--overwrite", action="store_true", help="replace results already in --out")
    p.set_defaults(func=run)


def run(args):
    external_form = any(v is not None for v in (args.model, args.cohort, args.out))
    if args.run is not None and external_form:
        raise LVIError(args.run, "give either a run folder or --model/--cohort/--out, not both")
    if not external_form:
        if args.run is None:
            raise LVIError(None, "give a run folder, or --model, --cohort and --out")
        print(headline(evaluate_run(args.run)))
        return 0
    missing = [flag for flag, value in (("--model", args.model), ("--cohort", args.cohort), ("--out", args.out))
               if value is None]
    if missing:
        raise LVIError(None, "scoring a model on a cohort needs {}".format(", ".join(missing)))
    # Checked before the cohort is read and scored: a file, read-only folder or full disk is said now.
    outputs.check_output_folder(args.out, external.OUTPUTS, args.overwrite,
                                inputs=[Path(args.cohort) / "cohort.csv"])
    result = external.evaluate_model(args.model, args.cohort, args.out, device=args.device,
                                     dce_phase=args.dce_phase, overwrite=args.overwrite)
    for warning in result["warnings"]:
        print("warning: {}".format(warning))
    print(external.headline(result))
    print("results: {}".format(args.out))
    return 0
