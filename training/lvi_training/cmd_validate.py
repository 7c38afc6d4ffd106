"""``lvi validate-cohort COHORT``: every problem of every row, before anything trains."""

from LVIPredictorLib.errors import LVIError

from LVIPredictorLib.vocabulary.sequences import ALL

from .cache import DEFAULT_WORKERS
from .cohort import format_prevalence, load_cohort, prevalence_table, validate_cohort
from .commands import help_of
from .progress import print_problems


def register(subparsers):
    p = subparsers.add_parser(
        "validate-cohort", help=help_of("validate-cohort"),
        description="Check every row of COHORT/cohort.csv and report ALL problems at once, with the case and "
                    "file: missing or unreadable files, labels not 0/1, duplicate case ids, a patient with "
                    "conflicting labels, empty masks, masks that do not fit their image, and rows without the "
                    "sequence a model needs. Exit code 1 when there are problems.")
    p.add_argument("cohort", help="cohort folder (or its cohort.csv)")
    p.add_argument("--sequence", choices=ALL, action="append",
                   help="require this sequence in every row (repeatable; t2+dce = both); default: each row "
                        "needs at least one")
    p.add_argument("--quick", action="store_true", help="check the CSV and that files exist; do not open images")
    p.add_argument("--quiet", action="store_true",
                   help="no progress line while the images are read (it is shown on a terminal only in any case)")
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                   help="processes reading the images (default %(default)s); the report is the same for any number")
    p.set_defaults(func=run)


def run(args):
    try:
        cohort = load_cohort(args.cohort)
    except LVIError as exc:
        print("error: {}".format(exc))
        return 1
    report = validate_cohort(cohort, sequences=args.sequence, read_images=not args.quick,
                             workers=max(1, args.workers), quiet=args.quiet or args.quick)
    print("cohort {} ({} rows)".format(cohort.csv_path, len(cohort.cases)))
    print(format_prevalence(prevalence_table(cohort)))
    from .clinical_fit import describe_missing
    print("\n".join(describe_missing(cohort)))
    for w in report.warnings:
        print("warning: {}".format(w))
    if report.problems:
        print_problems(report.problems)
        return 1
    print("OK: no problems found")
    return 0
