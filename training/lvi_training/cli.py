"""The ``lvi`` command: one entry point, one module per subcommand.

Each module listed in :data:`lvi_training.commands.COMMANDS` exposes ``register(subparsers)``
which adds its sub-parser and sets ``func`` (called with the parsed namespace, returns an exit
code). Only the module of the command being run is imported: the others are listed by name and
one-line help, so ``lvi --help`` and the light commands (validate-cohort, phantom, info, import)
do not wait for torch, and a broken optional command cannot break the others.
"""

import argparse
import importlib
import sys

import LVIPredictorLib

from .commands import COMMANDS


def chosen_command(argv):
    """The command named on a command line (its first word that is not an option), or None."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in COMMANDS else None


def build_parser(command=None):
    """The ``lvi`` parser with ``command``'s full sub-parser (every command's when None); the other
    commands are placeholders that show in ``lvi --help``."""
    parser = argparse.ArgumentParser(
        prog="lvi",
        description="LVIPredictor: predict lymphovascular invasion of breast cancer from MRI, "
        "and train/evaluate the models on your own cohort. `lvi COMMAND --help` describes a command.",
    )
    parser.add_argument("--version", action="version", version="lvi " + LVIPredictorLib.__version__)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(module).register(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
    parser.commands = subparsers.choices  # {name: sub-parser}, for --config (config_file.expand_argv)
    return parser


def main(argv=None):
    from LVIPredictorLib.errors import LVIError

    from .config_file import expand_argv

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(chosen_command(argv) or "")
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
