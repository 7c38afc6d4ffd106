"""A training run: one folder holding everything needed to trust, repeat and resume it.

    RUN/
      config.json        full configuration, library versions, git commit, command
      train.log          every epoch of every fold
      splits.json        the patient-level folds actually used
      fold_K/checkpoint.pt   last complete epoch (atomic), resumable
      fold_K/result.json     frozen training-Youden threshold + train and held-out predictions
      final/...          (cv5 only) the model trained on ALL cases, the one that is exported
      predictions.csv, metrics.json, roc.png, calibration.png   (written by evaluate)

Re-running the same command on an incomplete run resumes it (finished folds are kept,
an unfinished fold continues from its checkpoint). A run folder that holds a different
configuration is never touched unless ``--overwrite`` is given.

Thresholds (docs/design.md §6: chosen on training data, frozen):
- per fold: Youden's J on that fold's TRAINING-case predictions, frozen before the
  held-out fold is scored; the pooled out-of-fold accuracy/sensitivity/specificity use
  each case's own fold threshold.
- exported cv5 model (``final/``, trained on all cases the same way): its own
  training-set predictions would give an optimistic threshold (the model has seen those
  cases), so it gets Youden's J on the pooled OUT-OF-FOLD predictions — held-out scores
  from models trained the same way, i.e. still training data of the final model, but
  honest. The paper split exports its single model with its training-Youden threshold.
"""

import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch

from LVIPredictorLib import models
from LVIPredictorLib.preprocessing import radiomics
from LVIPredictorLib.errors import InputError, LVIError
from LVIPredictorLib.inference import resolve_device
from LVIPredictorLib.preprocessing import PreprocessSpec, default_spec
from LVIPredictorLib.preprocessing.radiomics import RadiomicsSpec
from LVIPredictorLib.vocabulary.sequences import channels, reads_dce
from LVIPredictorLib.vocabulary import architectures, sequences

from . import (cache, atomic, checkpoints, distributed, engine, evaluate, head_refit, logistic_fit, metrics, radiomics_fit,
               recipes, splits, voi_shape)
from .cohort import load_cohort, validate_cohort

log = logging.getLogger("lvi_training")

FINAL_FOLD = "final"


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
    dce_phase: int = sequences.DEFAULT_DCE_PHASE
    cache_dir: Optional[str] = None
    workers: int = cache.DEFAULT_WORKERS
    cache_timeout: float = distributed.DEFAULT_CACHE_TIMEOUT_S  # torchrun: seconds ranks wait for rank 0's cache
    threads: Optional[int] = None
    progress: bool = True
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
LATER_OPTION_DEFAULTS = {"slice_loss": "uniform", "voi_shape_aux": 0.0, "head_refit": False}
# Options that shape a network's input or training, meaningless for the radiomics baseline.
CNN_ONLY_OPTIONS = RECIPE_OPTIONS + ("crop_size", "spacing", "n_slices")


def resolve_recipe(req):
    """The recipe with this request's overrides, and its epochs unless the request sets them.

    The radiomics baseline has no epochs or network: its "recipe" is fixed (radiomics_fit.py).
    """
    if req.model == architectures.RADIOMICS_BASELINE:
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
    if req.model != architectures.RADIOMICS_BASELINE:
        parts += ["--epochs", str(resolve_recipe(req).epochs)]
    parts += ["--seed", str(req.seed), "--device", req.device]
    if req.model != architectures.RADIOMICS_BASELINE:  # explicit, so the command outlives a change of the default
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


def build_spec(req, recipe=None):
    if req.model == architectures.RADIOMICS_BASELINE:
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
    if model == architectures.RADIOMICS_BASELINE:
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


def default_threads(world_size):
    """All cores for one process; an equal share each under torchrun (no oversubscription).

    Set explicitly (and recorded in config.json) because CPU results can differ in the last
    bits with the thread count, and because on a machine shared with other work two
    spinning OpenMP threads were measured 5-10x slower than one (``--threads 1`` then).
    """
    return max(1, (os.cpu_count() or 1) // max(1, world_size))


def _configure_determinism(device):
    if device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    # warn_only: a few CUDA kernels have no deterministic version; the CPU path has them all.
    torch.use_deterministic_algorithms(True, warn_only=True)


def _attach_log(run_dir):
    """Every epoch into RUN/train.log (appended on resume); warnings also on the console."""
    handler = logging.FileHandler(str(run_dir / "train.log"), encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    console = logging.StreamHandler()
    console.setLevel(logging.WARNING)
    console.setFormatter(logging.Formatter("warning: %(message)s"))
    log.addHandler(handler)
    log.addHandler(console)
    log.setLevel(logging.INFO)
    return [handler, console]


def _prepare_folder(run_dir, identity, overwrite):
    """'new' | 'resume'; raises when the folder holds something else and overwrite is off."""
    config_path = run_dir / "config.json"
    if run_dir.exists() and any(run_dir.iterdir()):
        if overwrite:
            shutil.rmtree(str(run_dir))
        elif not config_path.exists():
            raise InputError(str(run_dir), "exists and is not a run folder; choose another --out (or --overwrite)")
        else:
            previous = atomic.load_json(config_path).get("identity")
            if previous != identity:
                changed = sorted(k for k in set(identity) | set(previous or {})
                                 if (previous or {}).get(k) != identity.get(k))
                raise InputError(str(run_dir), "holds a run with a different configuration (differs in: {}); "
                                 "refusing to overwrite it — choose another --out or pass --overwrite".format(
                                     ", ".join(changed)))
            return "resume"
    run_dir.mkdir(parents=True, exist_ok=True)
    return "new"


def train_run(req):
    """Train (or resume) a run; returns the metrics dict (rank 0) or None (other ranks)."""
    device = resolve_device(req.device)
    ctx = distributed.setup(device)
    handlers = []
    try:
        torch.set_num_threads(int(req.threads or default_threads(ctx.world_size)))
        _configure_determinism(ctx.device)
        run_dir = Path(req.out)
        cohort = load_cohort(req.cohort)
        recipe = resolve_recipe(req)
        spec = build_spec(req, recipe)
        arch = architecture_config(req.model, spec, req.sequence, recipe.width)
        batch_size = int(req.batch_size or (architectures.get(req.model).paper_batch_size or 64))
        identity = _identity(req, cohort, spec, arch, batch_size, recipe)
        digest = identity_digest(identity)

        error, mode = None, None
        if ctx.is_main:
            try:
                # Structure only: images are opened once, by the cache, which reports every failing case.
                validate_cohort(cohort, read_images=False).raise_if_problems()
                cases = cohort.with_sequence(req.sequence)
                splits.check_class_sizes(req.split, [c.lvi for c in cases], [c.patient_id for c in cases],
                                         str(cohort.csv_path))
                mode = _prepare_folder(run_dir, identity, req.overwrite)
            except LVIError as exc:
                error = exc
        message = ctx.broadcast(str(error) if error else None)  # every rank stops, not only rank 0
        if error is not None:
            raise error
        if message:
            raise InputError(None, message)
        if ctx.is_main:
            if mode == "new":  # config first: a folder with config.json is a run, resumable from any later kill
                atomic.save_json(_config(req, cohort, spec, arch, batch_size, identity, ctx, recipe),
                                 run_dir / "config.json")
            handlers = _attach_log(run_dir)
            if mode == "new":
                log.info("new run %s: %s %s, recipe %s, split %s, %d epochs, seed %d, device %s x%d", run_dir,
                         req.model, req.sequence, recipe.name, req.split, recipe.epochs, req.seed, ctx.device,
                         ctx.world_size)
            else:
                log.info("resuming run %s", run_dir)
                _record_resume_command(req, run_dir, recipe)
            left_out = len(cohort.cases) - len(cohort.with_sequence(req.sequence))
            if left_out:
                log.warning("%d of %d cases have no %s image+mask and are left out", left_out, len(cohort.cases),
                            req.sequence)

        cases = cohort.with_sequence(req.sequence)
        store = cache.PreparedCache(req.cache_dir or cohort.root / ".lvi_cache")

        def build_cache():
            stack, built = store.stacked(cases, req.sequence, spec, dce_phase=req.dce_phase, workers=req.workers,
                                         quiet=not req.progress)
            log.info("inputs: %d cases, %d preprocessed now, %d from the cache %s", len(cases), built,
                     len(cases) - built, store.root)
            return str(stack.path)

        # Rank 0 builds (or verifies) the pack; every rank memory-maps the same file.
        stack = store.open_stack(distributed.run_on_main(ctx, build_cache, store.root, req.cache_timeout))
        labels = [c.lvi for c in cases]
        data = stack.case_tensors(labels)
        if recipe.voi_shape_aux:
            data.aux_targets = voi_shape.auxiliary_targets(cases, req.sequence)
        folds = splits.make_splits(req.split, labels, [c.patient_id for c in cases], req.seed, str(cohort.csv_path))
        if ctx.is_main:
            atomic.save_json({"split": req.split, "seed": req.seed, "case_ids": [c.case_id for c in cases],
                                   "folds": [f.to_dict() for f in folds]}, run_dir / "splits.json")
        settings = engine.TrainSettings(model=req.model, architecture_config=arch, epochs=recipe.epochs,
                                        batch_size=batch_size, pos_weight=req.pos_weight, augment=req.augment,
                                        seed=req.seed, weight_decay=recipe.weight_decay,
                                        augmentation=recipe.augmentation, image_dropout=recipe.image_dropout,
                                        dropout_per_channel=recipe.dropout_per_channel, ema_decay=recipe.ema_decay,
                                        slice_loss=recipe.slice_loss, voi_shape_aux=recipe.voi_shape_aux,
                                        image_channels=len(channels(req.sequence)))
        jobs = [("fold_{}".format(f.index), f) for f in folds]
        # Not part of the identity: re-running a finished CV without --no-final-model just adds it.
        # A fold ensemble is the exported model itself, so it needs no final fit.
        if req.split == "cv5" and req.final_model and not recipe.ensemble:
            jobs.append((FINAL_FOLD, splits.all_cases_fold(len(cases))))
        patients = [c.patient_id for c in cases]
        for tag, fold in jobs:
            _train_one(tag, fold, settings, data, cases, run_dir, ctx, digest, req.progress, recipe, patients)
        if ctx.is_main:
            result = evaluate.evaluate_run(run_dir)
            log.info("done: %s", evaluate.headline(result))
            return result
        return None
    finally:
        for h in handlers:
            log.removeHandler(h)
            h.close()
        ctx.close()


def _record_resume_command(req, run_dir, recipe):
    """Keep config.json's command true when a resume changes what the run holds or how it ran.

    Options outside the identity may differ on a resume (e.g. dropping --no-final-model adds
    the final model that `lvi export` writes; --no-ensemble; --threads): the command and recipe
    cards quote are the latest, and every earlier command is kept in ``commands``.
    """
    config_path = run_dir / "config.json"
    config = atomic.load_json(config_path)
    command = canonical_command(req)
    if config.get("command") == command:
        return
    config["commands"] = list(config.get("commands") or [config.get("command")]) + [command]
    config["command"] = command
    config["recipe"] = recipe.to_dict()
    atomic.save_json(config, config_path)
    log.info("command recorded for this resume: %s", command)


def _train_one(tag, fold, settings, data, cases, run_dir, ctx, digest, progress, recipe, patients):
    fold_dir = run_dir / tag
    result_path = fold_dir / "result.json"
    done = ctx.broadcast(result_path.exists() if ctx.is_main else None)
    if done:
        if ctx.is_main:
            log.info("%s already complete, kept", tag)
        return
    if ctx.is_main:
        fold_dir.mkdir(parents=True, exist_ok=True)
    ctx.barrier()
    fit_cases, val_cases = fold.train, None
    if recipe.val_fraction > 0:
        fit_cases, val_cases = splits.inner_validation(fold.train, data.labels, patients, recipe.val_fraction,
                                                       engine.derive_seed(settings.seed, tag, "inner-validation"))
    if settings.model == architectures.RADIOMICS_BASELINE:
        model, history = radiomics_fit.fit_fold(data, fold.train, patients,
                                                settings.architecture_config["feature_names"], settings.seed)
        if ctx.is_main:
            checkpoints.save_torch({"format": 1, "identity": digest, "epoch": 0, "model": model.state_dict(),
                                    "history": history}, fold_dir / "checkpoint.pt")
    else:
        model, history = engine.train_fold(settings, data, fit_cases, ctx, fold_dir / "checkpoint.pt", tag, digest,
                                           progress=progress, val_cases=val_cases)
    refit = None
    if ctx.is_main and recipe.head_refit and settings.model != architectures.RADIOMICS_BASELINE:
        refit = _refit_head(model, data, fold.train, patients, settings.seed, ctx.device, fold_dir / "checkpoint.pt")
        log.info("%s: last layer refitted on %d cases' pooled features (C %.3g, inner-CV log-loss %.4f)", tag,
                 refit["cases"], refit["C"], refit["inner_cv_log_loss"])
    if ctx.is_main:
        # The threshold is chosen on every training-fold case, the inner validation ones included.
        train_p, train_slices = engine.score_fold_cases(model, data, fold.train, ctx.device, recipe.tta)
        train_y = data.labels[fold.train]
        threshold = metrics.youden_threshold(train_y, train_p)
        test_p, test_slices = engine.score_fold_cases(model, data, fold.test, ctx.device, recipe.tta)
        atomic.save_json({
            "fold": tag, "threshold": threshold, "threshold_method": "youden_on_training_predictions",
            "train_auc": metrics.auc(train_y, train_p), "epochs": settings.epochs,
            "selected_epoch": engine.selected_epoch(history), "history": history,
            "inner_validation": [cases[i].case_id for i in val_cases] if val_cases is not None else [],
            "head_refit": refit,
            "train": _rows(cases, fold.train, train_p, train_slices),
            "test": _rows(cases, fold.test, test_p, test_slices)}, result_path)
    ctx.barrier()


def _refit_head(model, data, fit_cases, patients, seed, device, checkpoint_path):
    """Refit the trained model's last layer on every training-fold case (inner validation ones included)
    and keep the new layer in the fold's checkpoint, where export reads the fold's weights from."""
    layer, described = head_refit.refit_head(model, data, fit_cases, patients, seed, device)
    state = checkpoints.load_torch(checkpoint_path)
    state["refit_head"] = layer
    checkpoints.save_torch(state, checkpoint_path)
    return described


def _rows(cases, indices, probs, slice_probs):
    return [{"case_id": cases[i].case_id, "patient_id": cases[i].patient_id, "lvi": int(cases[i].lvi),
             "probability": float(p), "slice_probabilities": [float(s) for s in sp]}
            for i, p, sp in zip(indices, probs, slice_probs)]


def _optimizer_words(req, recipe):
    if req.model == architectures.RADIOMICS_BASELINE:
        return {"name": "L2 logistic regression (scikit-learn lbfgs)",
                "regularisation": "C from {} chosen by {}-fold CV on log-loss inside each training fold".format(
                    [round(float(c), 4) for c in logistic_fit.C_GRID], logistic_fit.INNER_FOLDS)}
    return {"name": "AdamW" if recipe.weight_decay else "Adam", "lr": 1e-3, "weight_decay": recipe.weight_decay,
            "schedule": "StepLR per batch, x0.9 every 10% of the total number of batches"}


def _config(req, cohort, spec, arch, batch_size, identity, ctx, recipe):
    return {"identity": identity,
            "command": canonical_command(req),
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
