"""``lvi evaluate RUN``: recompute predictions.csv, metrics.json and the plots of a run."""

import sys

from LVIPredictorLib.errors import LVIError

from .evaluate import evaluate_run, headline


def register(subparsers):
    p = subparsers.add_parser(
        "evaluate", help="recompute a run's metrics, predictions CSV and plots from its saved fold results",
        description="Recompute RUN/metrics.json, RUN/predictions.csv, RUN/roc.png and RUN/calibration.png from the "
                    "frozen fold results (thresholds chosen on training data; nothing is retrained).")
    p.add_argument("run", help="run folder written by `lvi train`")
    p.set_defaults(func=run)


def run(args):
    try:
        result = evaluate_run(args.run)
    except LVIError as exc:
        print("error: {}".format(exc), file=sys.stderr)
        return 2
    print(headline(result))
    return 0
