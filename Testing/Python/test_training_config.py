"""`lvi train --config FILE`: options from TOML or from a run's own config.json, the command line
winning; a run re-trained from its config.json is the same run, bit for bit on the CPU."""

import json

import pytest
import torch

from LVIPredictorLib.errors import InputError
from lvi_training import checkpoints
from lvi_training.cli import build_parser
from lvi_training.cli import main as lvi
from lvi_training.config_file import expand_argv
from training_helpers import FAST_2D


def parse(argv):
    parser = build_parser()
    return parser.parse_args(expand_argv(parser.commands, argv))


def test_a_toml_file_sets_options_by_name_and_the_command_line_wins(tmp_path):
    config = tmp_path / "train.toml"
    config.write_text('cohort = "cohorts/a"\nmodel = "resnet10_3d"\nsequence = "t2+dce"\nout = "runs/x"\n'
                      'epochs = 7\ncrop_size = [48, 48, 32]\nmask-channel = false\nmargin = 7.5\naugment = false\n'
                      'weight_decay = 0.001\nrecipe = "paper"\n')
    args = parse(["train", "--config", str(config), "--epochs", "9", "--mask-channel"])
    assert (args.cohort, args.model, args.sequence, args.out) == ("cohorts/a", "resnet10_3d", "t2+dce", "runs/x")
    assert args.epochs == 9 and args.mask_channel is True  # typed after the file, so they win
    assert args.crop_size == [48, 48, 32] and args.margin_mm == 7.5 and args.augment is False
    assert args.weight_decay == 0.001 and args.recipe == "paper" and args.config == str(config)


@pytest.mark.parametrize("text, message", [
    ("epoch = 3\n", "unknown option 'epoch' for `lvi train`"),
    ("overwrite = true\n", "unknown option 'overwrite'"),
    ('epochs = "many"\n', "option 'epochs' must be an integer, got 'many'"),
    ("crop_size = [32, 32]\n", "option 'crop_size' must be a list of 3 values"),
    ('split = "cv10"\n', "option 'split' must be one of paper, cv5"),
    ("mask_channel = 1\n", "option 'mask_channel' must be true or false"),
    ("epochs = \n", "is not valid TOML"),
])
def test_a_bad_config_file_is_one_line_naming_the_file(tmp_path, capsys, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    assert lvi(["train", "--config", str(config), "--cohort", "c", "--model", "vanilla_cnn_2d", "--sequence", "t2",
                "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lvi train: error: {}: ".format(config)) and message in err
    assert not (tmp_path / "run").exists()


def test_yaml_is_refused_with_the_reason(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("epochs: 3\n")
    with pytest.raises(InputError, match="YAML is not read"):
        parse(["train", "--config", str(config)])


def test_a_run_config_from_before_options_were_recorded_says_what_to_do(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"identity": {"model": "vanilla_cnn_2d"}, "command": "lvi train --cohort c ..."}))
    with pytest.raises(InputError, match="repeat its command instead: lvi train --cohort c"):
        parse(["train", "--config", str(config)])


# The small-data recipe on the paper split: inner validation, weight average, side task and head refit,
# so every recipe option the config must carry changes the result.
RUN = ["--model", "vanilla_cnn_2d", "--sequence", "dce", "--split", "paper", "--epochs", "2", "--seed", "4",
       "--image-dropout", "0.5"] + FAST_2D


@pytest.fixture(scope="module")
def first_run(blob_cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("config") / "first"
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(out)] + RUN) == 0
    return out


def test_a_run_trained_again_from_its_config_json_is_the_same_run_bit_for_bit(first_run, tmp_path):
    first, second = first_run, tmp_path / "second"
    config = json.loads((first / "config.json").read_text())
    assert config["options"]["image_dropout"] == 0.5 and config["options"]["mask_channel"] is True
    assert "out" not in config["options"]

    assert lvi(["train", "--config", str(first / "config.json"), "--out", str(second)]) == 0
    again = json.loads((second / "config.json").read_text())
    assert again["identity"] == config["identity"] and again["options"] == config["options"]
    metrics = [json.loads((run / "metrics.json").read_text()) for run in (first, second)]
    assert {k: v for k, v in metrics[0].items() if k != "run"} == {k: v for k, v in metrics[1].items() if k != "run"}
    results = [json.loads((run / "fold_0" / "result.json").read_text()) for run in (first, second)]
    for result in results:
        for entry in result["history"]:
            entry.pop("seconds")  # wall-clock time, the one thing allowed to differ
    assert results[0] == results[1]
    weights = [checkpoints.load_torch(run / "fold_0" / "checkpoint.pt") for run in (first, second)]
    for part in ("model", "averaged_model", "refit_head"):
        assert weights[0][part].keys() == weights[1][part].keys()
        assert all(torch.equal(weights[0][part][k], weights[1][part][k]) for k in weights[0][part])


def test_a_run_made_before_runs_recorded_their_options_gains_them_when_its_command_is_repeated(blob_cohort,
                                                                                             first_run):
    config_path = first_run / "config.json"
    config = json.loads(config_path.read_text())
    options = config.pop("options")
    config_path.write_text(json.dumps(config))  # as an older version wrote it: same identity, no options
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(first_run)] + RUN) == 0
    assert json.loads(config_path.read_text())["options"] == options
    assert "fold_0 already complete, kept" in (first_run / "train.log").read_text()
