"""Training recipes: options resolve and are recorded; the small-data recipe's parts do what they say;
a fold ensemble exports, loads and reproduces itself; --no-ensemble later adds only the final model."""

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from LVIPredictorLib import preprocessing
from LVIPredictorLib.inference import Predictor
from lvi_training import augmentation, checkpoints, engine, logistic_fit
from lvi_training.cli import main as lvi
from lvi_training.export import load_run_model
from lvi_training.recipes import PAPER, SMALL_DATA, get_recipe
from lvi_training.request import RunRequest, resolve_recipe
from lvi_training.run_record import canonical_command
from synthetic_images import make_grid, mr_image, sphere_mask
from training_helpers import FAST_2D, REPO

SAMPLE = REPO / "Resources" / "SampleData" / "LVI-Sample-001"

SMALL_RUN = ["--model", "vanilla_cnn_2d", "--sequence", "dce", "--recipe", "small-data", "--split", "cv5",
             "--epochs", "2", "--seed", "1"] + FAST_2D


def test_options_override_one_part_of_a_recipe_and_the_command_says_so():
    req = RunRequest(cohort="c", model="vanilla_cnn_2d", sequence="dce", out="o", recipe="small-data", tta=False,
                     weight_decay=0.001)
    recipe = resolve_recipe(req)
    assert recipe.tta is False and recipe.weight_decay == 0.001 and recipe.mask_channel is True
    assert recipe.epochs == SMALL_DATA.epochs
    command = canonical_command(req)
    assert "--recipe small-data" in command and "--no-tta" in command and "--weight-decay 0.001" in command
    assert get_recipe("paper") == PAPER and PAPER.epochs == 100 and not PAPER.mask_channel
    with pytest.raises(ValueError, match="unknown recipe"):
        get_recipe("magic")
    area = RunRequest(cohort="c", model="vanilla_cnn_2d", sequence="dce", out="o", slice_loss="area")
    assert resolve_recipe(area).slice_loss == "area" and "--slice-loss area" in canonical_command(area)
    assert "--slice-loss" not in command and recipe.slice_loss == "uniform"


def test_an_option_added_later_stays_out_of_the_identity_at_its_default_so_older_runs_resume():
    from types import SimpleNamespace

    from lvi_training.run_record import LATER_OPTION_DEFAULTS, _identity

    cohort = SimpleNamespace(csv_path=SAMPLE / "t2_mask.nii.gz")  # any file: its digest is all that is read
    spec = preprocessing.default_spec("vanilla_cnn_2d")
    assert LATER_OPTION_DEFAULTS == {"slice_loss": "uniform", "voi_shape_aux": 0.0, "head_refit": False}
    for name, other in (("slice_loss", "area"), ("voi_shape_aux", 0.5), ("head_refit", True)):
        identities = {}
        for value in (LATER_OPTION_DEFAULTS[name], other):
            req = RunRequest(cohort="c", model="vanilla_cnn_2d", sequence="dce", out="o", **{name: value})
            identities[value] = _identity(req, cohort, spec, {}, 64, resolve_recipe(req))["recipe"]
        default = identities[LATER_OPTION_DEFAULTS[name]]
        assert name not in default and identities[other][name] == other
        assert {k: v for k, v in identities[other].items() if k != name} == default


def test_network_options_are_refused_for_the_radiomics_baseline():
    from LVIPredictorLib.errors import InputError

    with pytest.raises(InputError, match="--crop-size apply to the CNNs only"):
        resolve_recipe(RunRequest(cohort="c", model="radiomics_lr", sequence="t2", out="o", crop_size=[32, 32, 1]))


def test_the_voi_distance_channel_measures_depth_inside_the_tumour():
    grid = make_grid(size=(64, 64, 40), spacing=(1.0, 1.0, 1.0), origin=(-32.0, -32.0, -20.0))
    spec = preprocessing.PreprocessSpec.from_dict(dict(preprocessing.default_spec("resnet10_3d").to_dict(),
                                                       mask_channel=True, mask_encoding="distance"))
    deepest = []
    for radius in (5.0, 10.0):
        out = preprocessing.preprocess(mr_image(grid), sphere_mask(grid, radius=radius), spec)
        assert out.inputs.shape[1] == 2
        depth = out.inputs[0, 1] * preprocessing.spec.DISTANCE_SCALE_MM
        voi = sitk.GetArrayViewFromImage(out.crop_reference) > 0
        assert np.all(depth[voi] >= -1e-6) and np.all(depth[~voi] < 0)  # the surface voxels are at depth 0
        assert depth.min() == pytest.approx(preprocessing.spec.DISTANCE_RANGE_MM[0])
        deepest.append(float(depth[voi].max()))
    # The depth of the centre grows with the tumour (on the 2 mm z grid it is a few mm under the radius).
    assert 1.5 < deepest[0] < 5.0 < deepest[1] < 10.0


def test_the_voi_thickness_channel_gives_every_2d_slice_the_tumours_extent_along_z():
    grid = make_grid(size=(64, 64, 40), spacing=(1.0, 1.0, 2.0), origin=(-32.0, -32.0, -40.0))
    spec = preprocessing.PreprocessSpec.from_dict(dict(preprocessing.default_spec("vanilla_cnn_2d").to_dict(),
                                                       mask_channel=True, mask_encoding="distance_thickness",
                                                       n_slices=15))
    assert spec.input_channels(1) == 3
    centre = []
    for radius in (6.0, 12.0):
        out = preprocessing.preprocess(mr_image(grid), sphere_mask(grid, radius=radius), spec)
        assert out.inputs.shape[1] == 3
        thickness = out.inputs[:, 2] * preprocessing.spec.THICKNESS_SCALE_MM
        assert np.array_equal(thickness, np.broadcast_to(thickness[0], thickness.shape))  # one map per case
        voi = sitk.GetArrayViewFromImage(out.crop_reference) > 0
        assert np.array_equal(thickness[0] > 0, voi.any(axis=0))  # zero off the tumour's footprint
        centre.append(thickness[0].max())
        # Through the centre a sphere is as thick as it is wide (to a slice either way).
        assert abs(centre[-1] - 2 * radius) <= 2 * 2.0
    assert centre[1] > centre[0] + 8.0


def test_image_dropout_blanks_the_image_channels_and_keeps_the_voi_channel():
    x = torch.rand(64, 2, 8, 8) + 1.0
    params = augmentation.augmentation_parameters(64, seed=5, strength="paper", image_dropout=0.5)
    out = augmentation.augment(x, params, torch.arange(64), image_channels=1)
    blanked = params["blank_image"][:, 0]
    assert 10 < int(blanked.sum()) < 54
    assert torch.all(out[blanked, 0] == 0) and torch.all(out[~blanked, 0] != 0)
    # The VOI channel only moves with the image (flips and shifts), it is never blanked or rescaled.
    assert torch.all(out[:, 1] >= 1.0)


def test_per_channel_image_dropout_blanks_each_sequence_on_its_own_draw():
    x = torch.rand(400, 3, 8, 8) + 1.0
    joint = augmentation.augmentation_parameters(400, seed=5, image_dropout=0.5, image_channels=2)["blank_image"]
    assert torch.equal(joint[:, 0], joint[:, 1])
    params = augmentation.augmentation_parameters(400, seed=5, image_dropout=0.5, image_channels=2, per_channel=True)
    blanked = params["blank_image"]
    only_one = blanked[:, 0] != blanked[:, 1]
    assert 150 < int(only_one.sum()) < 250  # about half the samples show exactly one sequence
    out = augmentation.augment(x, params, torch.arange(400), image_channels=2)
    for c in (0, 1):
        assert torch.all(out[blanked[:, c], c] == 0) and torch.all(out[~blanked[:, c], c] != 0)
    assert torch.all(out[:, 2] >= 1.0)


def test_rotations_move_the_voi_channel_with_the_image_and_keep_it_binary():
    x = torch.zeros(4, 2, 16, 16)
    x[:, :, 6:10, 2:14] = 1.0
    params = augmentation.augmentation_parameters(4, seed=1, strength="strong")
    out = augmentation.augment(x, params, torch.arange(4), image_channels=1)
    assert set(torch.unique(out[:, 1]).tolist()) <= {0.0, 1.0}
    assert not torch.equal(out[:, 1], x[:, 1])


def test_a_small_data_run_exports_its_fold_ensemble_and_reproduces_it(blob_cohort, tmp_path):
    run = tmp_path / "small"
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(run)] + SMALL_RUN) == 0
    assert not (run / "final").exists()  # the ensemble is the exported model: no final fit
    results = [json.loads((run / "fold_{}".format(i) / "result.json").read_text()) for i in range(5)]
    assert all(r["inner_validation"] and 1 <= r["selected_epoch"] <= 2 for r in results)
    assert all(set(r["inner_validation"]).isdisjoint(t["case_id"] for t in r["test"]) for r in results)
    # The last layer was refitted on each training fold's cases, and that refitted layer is what exports.
    assert all(r["head_refit"]["C"] in logistic_fit.C_GRID and r["head_refit"]["cases"] == len(r["train"])
               for r in results)
    state = checkpoints.load_torch(run / "fold_0" / "checkpoint.pt")
    member = load_run_model(run).members[0].state_dict()
    for key, refitted in state["refit_head"].items():
        assert torch.equal(member[key], refitted) and not torch.equal(state["best"]["model"][key], refitted)
    stem = tmp_path / "ens"
    assert lvi(["export", str(run), "--out", str(stem), "--reference-case", str(SAMPLE)]) == 0
    card = json.loads((stem.with_suffix(".json")).read_text())
    assert card["ensemble"]["members"] == 5 and card["ensemble"]["tta_flip"] is True
    assert card["preprocessing"]["mask_channel"] is True and card["architecture_config"]["in_channels"] == 2
    assert card["training"]["recipe"]["name"] == "small-data"
    predictor = Predictor(str(stem.with_suffix(".json")), device="cpu")
    assert len(predictor.model.members) == 5
    reference = card["reference_prediction"]  # float16 ensemble through the Predictor vs the float32 one
    assert reference["probability"] == pytest.approx(reference["probability_float32_weights"], abs=1e-3)

    # Re-run with --no-ensemble: the five folds are kept, only the final model is trained.
    before = {i: (run / "fold_{}".format(i) / "result.json").read_bytes() for i in range(5)}
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(run), "--no-ensemble"] + SMALL_RUN) == 0
    assert (run / "final" / "result.json").exists()
    assert all((run / "fold_{}".format(i) / "result.json").read_bytes() == before[i] for i in range(5))
    config = json.loads((run / "config.json").read_text())
    assert "--no-ensemble" in config["command"] and config["recipe"]["ensemble"] is False


def test_a_single_split_turns_the_recipes_fold_ensemble_off_but_refuses_an_asked_for_one():
    from LVIPredictorLib.errors import InputError

    req = RunRequest(cohort="c", model="vanilla_cnn_2d", sequence="dce", out="o", split="paper")
    assert SMALL_DATA.ensemble and resolve_recipe(req).ensemble is False
    with pytest.raises(InputError, match="needs --split cv5"):
        resolve_recipe(RunRequest(cohort="c", model="vanilla_cnn_2d", sequence="dce", out="o", split="paper",
                                  ensemble=True))


def test_the_weight_average_moves_towards_the_current_weights_by_one_minus_decay():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    average = engine.WeightAverage(model, decay=0.9)
    before = {k: v.clone() for k, v in average.model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.train()(torch.randn(8, 3))  # moves the BatchNorm statistics and its batch counter
    average.update(model)
    now = model.state_dict()
    for key, value in average.model.state_dict().items():
        if value.dtype.is_floating_point:
            assert torch.allclose(value, 0.9 * before[key] + 0.1 * now[key])
        else:
            assert torch.equal(value, now[key])
    assert not any(p.requires_grad for p in average.model.parameters())
    with pytest.raises(ValueError, match="decay"):
        engine.WeightAverage(model, decay=1.0)


def test_a_run_with_a_weight_average_selects_and_exports_the_averaged_weights(blob_cohort, tmp_path):
    from lvi_training import checkpoints
    from lvi_training.export import kept_weights

    run = tmp_path / "ema"
    options = ["--model", "vanilla_cnn_2d", "--sequence", "dce", "--split", "paper", "--epochs", "2", "--seed", "1",
               "--ema-decay", "0.5"] + FAST_2D
    assert lvi(["train", "--cohort", str(blob_cohort), "--out", str(run)] + options) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"]["ema_decay"] == 0.5 and "--ema-decay 0.5" in config["command"]
    state = checkpoints.load_torch(run / "fold_0" / "checkpoint.pt")
    kept = kept_weights(run / "fold_0" / "checkpoint.pt")
    averaged = state["best"]["model"] if state["best"] else state["averaged_model"]
    refitted = state["refit_head"]  # the recipe's head refit replaces the last layer after selection
    assert all(torch.equal(kept[k], refitted[k] if k in refitted else averaged[k]) for k in kept)
    assert any(not torch.equal(state["averaged_model"][k], state["model"][k]) for k in kept)
