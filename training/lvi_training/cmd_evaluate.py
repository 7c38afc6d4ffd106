"""``lvi evaluate RUN``: recompute predictions.csv, metrics.json and the plots of a run."""

from .evaluate import evaluate_run, headline


def register(subparsers):
    p = subparsers.add_parser(
        "evaluate", help="recompute a run's metrics, predictions CSV and plots from its saved fold results",
        description="Recompute RUN/metrics.json, RUN/predictions.csv, RUN/roc.png and RUN/calibration.png from the "
                    "frozen fold results (thresholds chosen on training data; nothing is retrained).")
    p.add_argument("run", help="run folder written by `lvi train`")
    p.set_defaults(func=run)


def run(args):
    result = evaluate_run(args.run)
    print(headline(result))
    return 0
