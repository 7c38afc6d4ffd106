"""The ``lvi`` command: one entry point, one module per subcommand.

Each module listed in COMMAND_MODULES exposes ``register(subparsers)`` which adds
its sub-parser and sets ``func`` (called with the parsed namespace, returns an
exit code). Modules are imported only when the parser is built so ``lvi --help``
stays fast and a broken optional command cannot break the others silently.
"""

import argparse
import importlib
import sys

import LVIPredictorLib

COMMAND_MODULES = (
    "lvi_training.cmd_info",
    "lvi_training.cmd_phantom",
    "lvi_training.cmd_predict",
    "lvi_training.cmd_validate",
    "lvi_training.cmd_import",
    "lvi_training.cmd_preprocess",
    "lvi_training.cmd_train",
    "lvi_training.cmd_evaluate",
    "lvi_training.cmd_table",
    "lvi_training.cmd_export",
    "lvi_training.cmd_fuse",
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="lvi",
        description="LVIPredictor: predict lymphovascular invasion of breast cancer from MRI, "
        "and train/evaluate the models on your own cohort.",
    )
    parser.add_argument("--version", action="version", version="lvi " + LVIPredictorLib.__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    parser.commands = subparsers.choices  # {name: sub-parser}, for --config (config_file.expand_argv)
    return parser


def main(argv=None):
    from LVIPredictorLib.errors import LVIError

    from .config_file import expand_argv

    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = expand_argv(parser.commands, argv)
    except LVIError as error:
        print("lvi {}: error: {}".format(argv[0], error), file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except LVIError as error:
        # Expected problems with the user's input: one clear line, no traceback.
        print("lvi {}: error: {}".format(args.command, error), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
