"""Every `lvi ... --help` says the defaults the parser and the recipes really use.

A help text states a literal default as "default VALUE" / "default: VALUE" or "VALUE (default)",
and that VALUE is compared with the parser's default. Defaults the parser leaves to the code
(None: the recipe's epochs, the batch size per network, ...) are compared with where the code
takes them from, or listed below as described in words.
"""

import argparse
import re

import pytest

from lvi_training import commands, recipes
from lvi_training.cli import build_parser
from LVIPredictorLib.vocabulary import architectures

PARSER = build_parser()
COMMANDS = PARSER.commands
DEFAULT_MARK = re.compile(r"^(\S+) \(default\)")
DEFAULT_VALUE = re.compile(r"\bdefault\b:?\s+([^\s;)]+)")
# None in the parser, decided later; their help says in words what decides them.
# preprocess takes train's options (so that its cache matches the run).
TRAINING_COMMANDS = ("train", "table", "preprocess")
DESCRIBED_IN_WORDS = {(command, flag) for command in TRAINING_COMMANDS
                      for flag in ("--cache-dir", "--threads", "--crop-size", "--spacing")} | {
    ("export", "--model-id"), ("export", "--dtype"), ("evaluate", "--dce-phase"), ("fuse", "--model-id"),
    ("validate-cohort", "--sequence")}
COMPUTED = {(command, flag) for command in TRAINING_COMMANDS for flag in ("--epochs", "--batch-size")}


def _help(parser, action):
    return " ".join(parser._get_formatter()._expand_help(action).split())


def _documented_defaults():
    for command, parser in COMMANDS.items():
        for action in parser._actions:
            if not action.option_strings or not action.help or action.help == argparse.SUPPRESS:
                continue
            text = _help(parser, action)
            # A flag's parser default is its off state; "(default)" on one describes a mode, not a value.
            if "default" in text and action.nargs != 0:
                yield command, action, text


@pytest.mark.parametrize("command, action, text", list(_documented_defaults()),
                         ids=lambda v: v.option_strings[0] if isinstance(v, argparse.Action) else None)
def test_a_documented_default_is_the_parsers(command, action, text):
    name = (command, action.option_strings[0])
    mark = DEFAULT_MARK.match(text) or DEFAULT_VALUE.search(text)
    assert mark, "{} {}: says 'default' in no form this test reads: {}".format(command, name[1], text)
    claimed = mark.group(1).rstrip(":,.")
    if action.default is None:
        assert name in DESCRIBED_IN_WORDS | COMPUTED, "{}: a default of None documented as {!r}".format(name, claimed)
        return
    assert claimed.removeprefix("./") == str(action.default), "{}: help says {!r}, parser has {!r}".format(
        name, claimed, action.default)


def test_the_epochs_every_recipe_trains_are_the_ones_the_help_gives():
    for command in ("train", "table"):
        epochs = next(a for a in COMMANDS[command]._actions if a.dest == "epochs")
        stated = dict(re.findall(r"([\w-]+) (\d+)", _help(COMMANDS[command], epochs).split("recipe's:")[1]))
        assert {name: int(n) for name, n in stated.items()} == {n: r.epochs for n, r in recipes.RECIPES.items()}


def test_the_batch_sizes_in_the_help_are_the_ones_a_run_uses():
    batch = next(a for a in COMMANDS["train"]._actions if a.dest == "batch_size")
    stated = {}
    for size, models in re.findall(r"(\d+) for ([\w ]+?)(?=,|\)|$)", _help(COMMANDS["train"], batch)):
        stated.update({model: int(size) for model in models.split(" and ")})
    assert stated == {name: architectures.get(name).paper_batch_size for name in architectures.networks()}


def test_the_train_description_names_the_default_recipe_and_its_epochs():
    text = " ".join(COMMANDS["train"].description.split())
    default = next(a for a in COMMANDS["train"]._actions if a.dest == "recipe").default
    name, epochs, decay = re.search(r"The default recipe is (\S+) \((\d+) epochs, AdamW with weight decay ([\d.e-]+)",
                                    text).groups()
    assert name == default == recipes.DEFAULT_RECIPE
    assert int(epochs) == recipes.get_recipe(default).epochs and float(decay) == recipes.get_recipe(default).weight_decay
    assert int(re.search(r"--recipe paper is the study's \(Adam, (\d+) epochs", text).group(1)) == recipes.PAPER.epochs
    assert "100 epochs" not in text.split("--recipe paper")[0]  # the paper's numbers are not called the defaults


def test_export_help_says_a_default_cv5_run_exports_its_fold_models_averaged():
    assert recipes.get_recipe(recipes.DEFAULT_RECIPE).ensemble
    text = " ".join(COMMANDS["export"].description.split())
    assert "for cv5, the five fold models averaged when the run's recipe has a fold ensemble (the {} default), " \
           "else the model trained on all cases after CV".format(recipes.DEFAULT_RECIPE) in text


@pytest.mark.parametrize("argv, imported", [(["--help"], []), (["validate-cohort", "--help"], ["cmd_validate"]),
                                            (["phantom", "--help"], ["cmd_phantom"])])
def test_help_and_light_commands_import_only_their_own_command_and_no_torch(argv, imported):
    import subprocess
    import sys

    code = ("import sys\nfrom lvi_training.cli import main\ntry:\n    main({!r})\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('lvi_training.cmd_')), 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code.format(argv)], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "{} False".format(["lvi_training." + m for m in imported])
    if argv == ["--help"]:  # every command listed, with the one-line help its own parser has
        for name, parser in COMMANDS.items():
            assert name in done.stdout
        listed = {a.dest: a.help for a in PARSER._subparsers._group_actions[0]._choices_actions}
        assert listed == {name: help_text for name, (_module, help_text) in commands.COMMANDS.items()}
