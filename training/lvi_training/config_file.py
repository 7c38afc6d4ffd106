"""``--config FILE``: a command's options from a file, the command line's own options winning.

The file names options as the command does, without the dashes (``epochs = 40``,
``crop_size = [32, 32, 1]``, ``mask_channel = true``, ``margin = 5.0`` or its field name
``margin_mm``). Read: TOML (``.toml``), and JSON (``.json``) — a flat object of options, or a run's
own ``config.json``, whose ``options`` reproduce that run. YAML is not read (it would need a
dependency TOML does not).

The options become command-line tokens placed before the user's own, and argparse reads them
all: a file value gets the same type and choice checks as a typed one, and a flag typed on the
command line comes later and wins. Values are checked here first so a bad one is reported with
the file's name.
"""

import argparse
import json
import tomllib
from pathlib import Path

from LVIPredictorLib.errors import InputError

FLAG = "--config"
# Decisions for the command line only: a file must never replace a run folder by itself.
NOT_FROM_FILE = ("help", "config", "overwrite")


def expand_argv(commands, argv):
    """``argv`` with the options of its ``--config FILE`` put right after the command's name.

    ``commands``: {command name: its ArgumentParser}. Commands without a --config option, and
    command lines without one, are returned unchanged.
    """
    if not argv or argv[0] not in commands:
        return argv
    parser = commands[argv[0]]
    if not any(FLAG in a.option_strings for a in parser._actions):
        return argv
    path = _config_path(argv[1:])
    if path is None:
        return argv
    return [argv[0]] + options_to_argv(parser, read_options(path), path, argv[0]) + list(argv[1:])


def _config_path(args):
    for i, token in enumerate(args):
        name, _, value = token.partition("=")
        if len(name) >= len("--conf") and FLAG.startswith(name):  # argparse also takes an abbreviation
            return value or (args[i + 1] if i + 1 < len(args) else None)
    return None


def read_options(path):
    """{option: value} from a TOML or JSON file (a run's config.json: its ``options``)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "config file not found")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise InputError(str(path), "a config file is TOML (.toml) or JSON (.json, e.g. a run's config.json); "
                         "YAML is not read")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise InputError(str(path), "is not valid {} ({})".format(suffix[1:].upper(), exc))
    if isinstance(data, dict) and "identity" in data:  # a run folder's config.json
        if "options" not in data:
            raise InputError(str(path), "is the config.json of a run made before runs recorded their options; "
                             "repeat its command instead: {}".format(data.get("command")))
        data = data["options"]
    if not isinstance(data, dict):
        raise InputError(str(path), "must hold option = value pairs at its top level")
    return data


def options_to_argv(parser, options, path, command):
    """Command-line tokens for ``options``, each checked against ``parser``'s option of that name."""
    actions = _actions_by_name(parser)
    tokens = []
    for key, value in options.items():
        action = actions.get(str(key).replace("-", "_"))
        if action is None:
            raise InputError(str(path), "unknown option {!r} for `lvi {}` (it takes: {})".format(
                key, command, ", ".join(sorted({a.dest for a in actions.values()}))))
        tokens += _tokens(action, value, key, path)
    return tokens


def _actions_by_name(parser):
    """Each option by its dest (``margin_mm``) and by its long flag without dashes (``margin``)."""
    actions = {}
    for action in parser._actions:
        if not action.option_strings or action.dest in NOT_FROM_FILE:
            continue
        actions[action.dest] = action
        for flag in action.option_strings:
            if flag.startswith("--") and not flag.startswith("--no-"):
                actions.setdefault(flag[2:].replace("-", "_"), action)
    return actions


def _tokens(action, value, key, path):
    def bad(expected):
        return InputError(str(path), "option {!r} must be {}, got {!r}".format(key, expected, value))

    flag = next((f for f in action.option_strings if f.startswith("--") and not f.startswith("--no-")),
                action.option_strings[0])
    if isinstance(action, argparse.BooleanOptionalAction) or action.nargs == 0:
        if not isinstance(value, bool):
            raise bad("true or false")
        if isinstance(action, argparse.BooleanOptionalAction):
            return [flag if value else "--no-" + flag[2:]]
        # store_true gives its flag for true, store_false (--no-augment) for false; the other is the default.
        return [action.option_strings[0]] if value == action.const else []
    values = value if isinstance(value, list) else [value]
    if isinstance(action.nargs, int) and len(values) != action.nargs:
        raise bad("a list of {} values".format(action.nargs))
    if action.nargs is None and isinstance(value, list):
        raise bad("a single value")
    for v in values:
        if not _fits(action.type, v):
            raise bad({int: "an integer", float: "a number"}.get(action.type, "a string"))
        if action.choices is not None and v not in action.choices:
            raise bad("one of {}".format(", ".join(str(c) for c in action.choices)))
    return [flag] + [str(v) for v in values]


def _fits(kind, value):
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, int)
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, str)
