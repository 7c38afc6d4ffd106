"""What a run folder records about itself: the identity a resume must match, config.json (the
full configuration, versions, commit, the command and the options that reproduce the run).

``options`` holds the run's ``lvi train`` options by name, every recipe option at its resolved
value; ``lvi train --config RUN/config.json --out OTHER`` reads them back (config_file.py) and
trains the same run again.
"""

import hashlib
import json
import logging
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from LVIPredictorLib.vocabulary.sequences import reads_dce

from . import atomic, logistic_fit, recipes
from .request import RECIPE_OPTIONS, resolve_recipe
from LVIPredictorLib.vocabulary import architectures

log = logging.getLogger("lvi_training")

# Options added later stay out of the identity at these defaults, so older runs still resume.
LATER_OPTION_DEFAULTS = {"slice_loss": "uniform", "voi_shape_aux": 0.0, "head_refit": False}


def _recipe_flags(req):
    """The options that differ from the named recipe, as CLI flags."""
    base = recipes.get_recipe(req.recipe)
    parts = []
    for name in RECIPE_OPTIONS:
        value = getattr(req, name)
        if value is None or value == getattr(base, name):
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + name.replace("_", "-"))
        else:
            parts += [flag if name != "margin_mm" else "--margin", str(value)]
    return parts


def canonical_command(req):
    """The `lvi train` command that reproduces this run, every result-deciding option explicit."""
    parts = ["lvi", "train", "--cohort", str(req.cohort), "--model", req.model, "--sequence", req.sequence,
             "--split", req.split]
    if not architectures.is_radiomics(req.model):
        parts += ["--epochs", str(resolve_recipe(req).epochs)]
    parts += ["--seed", str(req.seed), "--device", req.device]
    if not architectures.is_radiomics(req.model):  # explicit, so the command outlives a change of the default
        parts += ["--recipe", req.recipe]
    parts += _recipe_flags(req)
    if req.batch_size:
        parts += ["--batch-size", str(req.batch_size)]
    if req.pos_weight != "none":
        parts += ["--pos-weight", req.pos_weight]
    if not req.augment:
        parts.append("--no-augment")
    for flag, values in (("--crop-size", req.crop_size), ("--spacing", req.spacing)):
        if values:
            parts += [flag] + [str(v) for v in values]
    if req.n_slices:
        parts += ["--n-slices", str(req.n_slices)]
    if reads_dce(req.sequence):
        parts += ["--dce-phase", str(req.dce_phase)]
    if req.threads:
        parts += ["--threads", str(req.threads)]
    if req.split == "cv5" and not req.final_model:
        parts.append("--no-final-model")
    return " ".join(parts + ["--out", str(req.out)])


def load_run_config(run_dir):
    """A run folder's config.json, or one error naming the folder when it is not an `lvi train` run."""
    from LVIPredictorLib.errors import InputError

    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise InputError(str(run_dir), "is not a run folder written by `lvi train` (no config.json)")
    return atomic.load_json(path)


def file_sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _identity(req, cohort, spec, arch, batch_size, recipe):
    """What determines the result; a run folder resumes only when this matches exactly (the recipe's
    resolved options, not its name, so a recipe whose defaults change later does not resume into
    a different run)."""
    identity = {"cohort_csv_sha256": file_sha256(cohort.csv_path), "model": req.model, "sequence": req.sequence,
                "split": req.split, "epochs": recipe.epochs, "seed": req.seed, "batch_size": batch_size,
                "lr": 1e-3, "lr_decay": 0.9, "lr_decay_every_fraction": 0.1, "pos_weight": req.pos_weight,
                "augment": req.augment, "preprocessing": spec.to_dict(), "architecture_config": arch,
                "dce_phase": req.dce_phase if reads_dce(req.sequence) else None}
    # Not "ensemble": like --no-final-model it decides what is exported, not how the folds train, so a
    # finished fold ensemble re-run with --no-ensemble only adds the final model.
    identity["recipe"] = {k: v for k, v in recipe.to_dict().items() if k not in ("name", "epochs", "ensemble")}
    # Options added later stay out at their default, so a run made before they existed still resumes.
    for name, default in LATER_OPTION_DEFAULTS.items():
        if identity["recipe"].get(name) == default:
            del identity["recipe"][name]
    return identity


def identity_digest(identity):
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()


def library_versions():
    import scipy
    import SimpleITK
    import sklearn

    import LVIPredictorLib

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "SimpleITK": SimpleITK.Version_VersionString(), "scikit-learn": sklearn.__version__,
            "scipy": scipy.__version__, "LVIPredictorLib": LVIPredictorLib.__version__}


def git_commit():
    """HEAD of the repository holding this code, with '+dirty' when files differ; None outside git."""
    here = str(Path(__file__).resolve().parent)
    try:
        head = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def record_resume_command(req, run_dir, recipe, batch_size):
    """Keep config.json's command and options true when a resume changes what the run holds or how it ran.

    Options outside the identity may differ on a resume (e.g. dropping --no-final-model adds
    the final model that `lvi export` writes; --no-ensemble; --threads): the command and recipe
    cards quote are the latest, and every earlier command is kept in ``commands``. A run made
    before config.json held ``options`` gains them here.
    """
    config_path = run_dir / "config.json"
    config = atomic.load_json(config_path)
    command, options = canonical_command(req), run_options(req, recipe, batch_size)
    if config.get("command") == command and config.get("options") == options:
        return
    if config.get("command") != command:
        config["commands"] = list(config.get("commands") or [config.get("command")]) + [command]
        log.info("command recorded for this resume: %s", command)
    config["command"], config["options"] = command, options
    config["recipe"] = recipe.to_dict()
    atomic.save_json(config, config_path)


def run_options(req, recipe, batch_size):
    """The ``lvi train`` options (by their argparse names) that train this run again: what
    config_file.py reads back from config.json. Every recipe option is given at its resolved
    value, so the run repeats even if a named recipe's defaults change later; where the run goes
    (--out), its cache and its worker count are left to the new command."""
    options = {"cohort": str(Path(req.cohort).resolve()), "model": req.model, "sequence": req.sequence,
               "split": req.split, "seed": req.seed, "device": req.device, "pos_weight": req.pos_weight,
               "augment": req.augment}
    if not architectures.is_radiomics(req.model):
        options.update(recipe=req.recipe, epochs=recipe.epochs, batch_size=batch_size,
                       **{name: getattr(recipe, name) for name in RECIPE_OPTIONS})
        given = {"crop_size": req.crop_size, "spacing": req.spacing, "n_slices": req.n_slices or recipe.slices}
        options.update({k: list(v) if isinstance(v, (list, tuple)) else v for k, v in given.items() if v})
    if reads_dce(req.sequence):
        options["dce_phase"] = req.dce_phase
    if req.threads:
        options["threads"] = req.threads
    if req.split == "cv5":
        options["final_model"] = req.final_model
    return options


def _optimizer_words(req, recipe):
    if architectures.is_radiomics(req.model):
        return {"name": "L2 logistic regression (scikit-learn lbfgs)",
                "regularisation": "C from {} chosen by {}-fold CV on log-loss inside each training fold".format(
                    [round(float(c), 4) for c in logistic_fit.C_GRID], logistic_fit.INNER_FOLDS)}
    return {"name": "AdamW" if recipe.weight_decay else "Adam", "lr": 1e-3, "weight_decay": recipe.weight_decay,
            "schedule": "StepLR per batch, x0.9 every 10% of the total number of batches"}


def run_config(req, cohort, spec, arch, batch_size, identity, ctx, recipe):
    return {"identity": identity,
            "command": canonical_command(req), "options": run_options(req, recipe, batch_size),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "cohort": {"path": str(Path(cohort.root).resolve()), "csv": str(Path(cohort.csv_path).resolve()),
                       "n_cases": len(cohort.with_sequence(req.sequence)), "recipe": cohort.recipe},
            "model": req.model, "sequence": req.sequence, "split": req.split, "epochs": recipe.epochs,
            "seed": req.seed, "batch_size": batch_size, "dce_phase": req.dce_phase,
            "preprocessing": spec.to_dict(), "architecture_config": arch, "recipe": recipe.to_dict(),
            "optimizer": _optimizer_words(req, recipe),
            "loss": "BCEWithLogitsLoss, pos_weight={}".format(req.pos_weight), "augment": req.augment,
            "device": ctx.device, "world_size": ctx.world_size, "threads": torch.get_num_threads(),
            "cache_dir": str(req.cache_dir or cohort.root / ".lvi_cache"),
            "library_versions": library_versions(), "git_commit": git_commit()}
