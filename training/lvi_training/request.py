"""What a user asks ``lvi train`` for, and what it resolves to before anything trains: the
recipe with its per-option overrides, the preprocessing spec and the network's configuration."""

from dataclasses import dataclass
from typing import List, Optional

from LVIPredictorLib import models
from LVIPredictorLib.preprocessing import radiomics
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.preprocessing import PreprocessSpec, default_spec
from LVIPredictorLib.preprocessing.radiomics import RadiomicsSpec
from LVIPredictorLib.vocabulary.sequences import channels

from . import cache, distributed, recipes
from LVIPredictorLib.vocabulary import architectures


@dataclass
class RunRequest:
    cohort: str
    model: str
    sequence: str
    out: str
    split: str = "cv5"
    epochs: Optional[int] = None               # None: the recipe's
    seed: int = 0
    device: str = "auto"
    batch_size: Optional[int] = None
    overwrite: bool = False
    final_model: bool = True
    pos_weight: str = "none"
    augment: bool = True
    crop_size: Optional[List[int]] = None      # (x, y, z) voxels, overrides the model's default spec
    spacing: Optional[List[float]] = None      # (x, y, z) mm; for 2D z is ignored (native slices)
    n_slices: Optional[int] = None
    dce_phase: int = 2
    cache_dir: Optional[str] = None
    workers: int = cache.DEFAULT_WORKERS
    cache_timeout: float = distributed.DEFAULT_CACHE_TIMEOUT_S  # torchrun: seconds ranks wait for rank 0's cache
    threads: Optional[int] = None
    progress: bool = True                     # console progress and status lines (False: --quiet)
    recipe: str = recipes.DEFAULT_RECIPE
    # Per-option overrides of the recipe (None: the recipe's value); see recipes.Recipe.
    mask_channel: Optional[bool] = None
    mask_encoding: Optional[str] = None
    margin_mm: Optional[float] = None
    normalization: Optional[str] = None
    width: Optional[float] = None
    weight_decay: Optional[float] = None
    val_fraction: Optional[float] = None
    augmentation: Optional[str] = None
    image_dropout: Optional[float] = None
    dropout_per_channel: Optional[bool] = None
    ema_decay: Optional[float] = None
    slice_loss: Optional[str] = None
    voi_shape_aux: Optional[float] = None
    head_refit: Optional[bool] = None
    ensemble: Optional[bool] = None
    tta: Optional[bool] = None


RECIPE_OPTIONS = ("mask_channel", "mask_encoding", "margin_mm", "normalization", "width", "weight_decay",
                  "val_fraction", "augmentation", "image_dropout", "dropout_per_channel", "ema_decay", "slice_loss",
                  "voi_shape_aux", "head_refit", "ensemble", "tta")
# Options that shape a network's input or training, meaningless for the radiomics baseline.
CNN_ONLY_OPTIONS = RECIPE_OPTIONS + ("crop_size", "spacing", "n_slices")


def resolve_recipe(req):
    """The recipe with this request's overrides, and its epochs unless the request sets them.

    The radiomics baseline has no epochs or network: its "recipe" is fixed (radiomics_fit.py).
    """
    if architectures.is_radiomics(req.model):
        given = [k for k in CNN_ONLY_OPTIONS if getattr(req, k) is not None]
        if given:
            raise InputError(None, "{} apply to the CNNs only, not to {}".format(
                ", ".join("--" + k.replace("_", "-") for k in given), architectures.RADIOMICS_BASELINE))
        return recipes.RADIOMICS
    recipe = recipes.get_recipe(req.recipe, **{k: getattr(req, k) for k in RECIPE_OPTIONS})
    if req.epochs is not None:
        recipe = recipe.with_overrides(epochs=int(req.epochs))
    if recipe.ensemble and req.split != "cv5":
        if req.ensemble:
            raise InputError(None, "a fold ensemble needs --split cv5 (the paper split trains one model)")
        # The recipe's default, not the user's choice: a single split has one model to export.
        recipe = recipe.with_overrides(ensemble=False)
    if not 0.0 <= recipe.val_fraction < 0.5:
        raise InputError(None, "--val-fraction must be in [0, 0.5), got {}".format(recipe.val_fraction))
    if not 0.0 <= recipe.ema_decay < 1.0:
        raise InputError(None, "--ema-decay must be in [0, 1), got {}".format(recipe.ema_decay))
    if recipe.voi_shape_aux < 0.0:
        raise InputError(None, "--voi-shape-aux must be >= 0, got {}".format(recipe.voi_shape_aux))
    return recipe


def build_spec(req, recipe=None):
    if architectures.is_radiomics(req.model):
        return RadiomicsSpec()
    recipe = recipe or resolve_recipe(req)
    spec = default_spec(req.model)
    d = spec.to_dict()
    d.update(margin_mm=float(recipe.margin_mm), mask_channel=bool(recipe.mask_channel),
             mask_encoding=recipe.mask_encoding, normalization=recipe.normalization)
    if req.crop_size:
        d["crop_size"] = [int(v) for v in req.crop_size]
    if req.spacing:
        d["target_spacing"] = [float(v) for v in req.spacing]
        if spec.dims == 2:
            d["target_spacing"][2] = None
    if spec.dims == 2 and (req.n_slices or recipe.slices):
        d["n_slices"] = int(req.n_slices or recipe.slices)
    return PreprocessSpec.from_dict(d)


def architecture_config(model, spec, sequence, width=1.0):
    """The model's configuration for this spec's input size, the sequence's channels and the recipe's
    width; an unusable size is an InputError now, not later."""
    if architectures.is_radiomics(model):
        return {"feature_names": radiomics.feature_names(spec, channels(sequence))}
    config = models.scaled_config(model, width)
    if "input_size" in config:
        config["input_size"] = list(spec.model_input_size())
    config["in_channels"] = spec.input_channels(len(channels(sequence)))
    try:
        models.build_model(model, **config)
    except ValueError as exc:
        raise InputError(None, "{} cannot take crop size {} (x, y, z voxels): {}".format(
            model, list(spec.crop_size), exc))
    return config
