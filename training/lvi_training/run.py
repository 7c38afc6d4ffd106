"""A training run: one folder holding everything needed to trust, repeat and resume it.

    RUN/
      config.json        full configuration, library versions, git commit, command, and the options
                         that reproduce the run (``lvi train --config RUN/config.json --out OTHER``)
      train.log          every epoch of every fold (the console says where it is)
      splits.json        the patient-level folds actually used
      fold_K/checkpoint.pt   last complete epoch (atomic), resumable
      fold_K/history.csv     one row per epoch (loss, AUCs, learning rate, seconds), written as it trains
      fold_K/result.json     frozen training-Youden threshold + train and held-out predictions
      final/...          (cv5 without a fold ensemble) the model trained on ALL cases, the one exported
      learning_curves.png    loss and AUC per epoch of every fold
      tensorboard/fold_K/    TensorBoard events (when the optional tensorboard package is installed)
      predictions.csv, metrics.json, roc.png, calibration.png   (written by evaluate)

Re-running the same command on an incomplete run resumes it (finished folds are kept,
an unfinished fold continues from its checkpoint). A run folder that holds a different
configuration is never touched unless ``--overwrite`` is given.

Thresholds (DESIGN §6: chosen on training data, frozen):
- per fold: Youden's J on that fold's TRAINING-case predictions, frozen before the
  held-out fold is scored; the pooled out-of-fold accuracy/sensitivity/specificity use
  each case's own fold threshold.
- exported cv5 model (``final/``, trained on all cases the same way): its own
  training-set predictions would give an optimistic threshold (the model has seen those
  cases), so it gets Youden's J on the pooled OUT-OF-FOLD predictions — held-out scores
  from models trained the same way, i.e. still training data of the final model, but
  honest. The paper split exports its single model with its training-Youden threshold.
"""

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from LVIPredictorLib.errors import InputError, LVIError
from LVIPredictorLib.inference import resolve_device
from LVIPredictorLib.preprocessing import radiomics
from LVIPredictorLib.vocabulary import architectures
from LVIPredictorLib.vocabulary.sequences import channels

from . import (atomic, cache, checkpoints, distributed, engine, evaluate, head_refit, metrics, radiomics_fit, recipes,
               splits, voi_shape)
from .cohort import Cohort, load_cohort, validate_cohort
from .monitor import RunMonitor
from .progress import notice
from .request import architecture_config, build_spec, resolve_recipe
from .run_record import _identity, identity_digest, record_resume_command, run_config

log = logging.getLogger("lvi_training")

FINAL_FOLD = "final"


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
            old_names = ((previous or {}).get("architecture_config") or {}).get("feature_names")
            if old_names:  # a radiomics run from before its features were renamed (radiomics.RENAMED) resumes
                previous["architecture_config"]["feature_names"] = radiomics.current_names(old_names)
            if previous != identity:
                changed = sorted(k for k in set(identity) | set(previous or {})
                                 if (previous or {}).get(k) != identity.get(k))
                raise InputError(str(run_dir), "holds a run with a different configuration (differs in: {}); "
                                 "refusing to overwrite it — choose another --out or pass --overwrite".format(
                                     ", ".join(changed)))
            return "resume"
    run_dir.mkdir(parents=True, exist_ok=True)
    return "new"




@dataclass
class _Plan:
    """What a request resolves to before anything is read or trained."""

    cohort: Cohort
    recipe: recipes.Recipe
    spec: object          # PreprocessSpec, or RadiomicsSpec for the baseline
    arch: dict
    batch_size: int
    identity: dict
    digest: str


def _plan(req):
    cohort = load_cohort(req.cohort)
    recipe = resolve_recipe(req)
    spec = build_spec(req, recipe)
    arch = architecture_config(req.model, spec, req.sequence, recipe.width)
    batch_size = int(req.batch_size or (architectures.get(req.model).paper_batch_size or 64))
    identity = _identity(req, cohort, spec, arch, batch_size, recipe)
    return _Plan(cohort, recipe, spec, arch, batch_size, identity, identity_digest(identity))


def train_run(req):
    """Train (or resume) a run; returns the metrics dict (rank 0) or None (other ranks)."""
    device = resolve_device(req.device)
    ctx = distributed.setup(device)
    handlers, monitor = [], None
    try:
        torch.set_num_threads(int(req.threads or default_threads(ctx.world_size)))
        _configure_determinism(ctx.device)
        run_dir = Path(req.out)
        plan = _plan(req)
        mode = _check_before_training(req, plan, run_dir, ctx)
        if ctx.is_main:
            handlers = _open_run(req, plan, run_dir, ctx, mode)
        cases = plan.cohort.with_sequence(req.sequence)
        data = _load_inputs(req, plan, cases, ctx)
        jobs = _fold_jobs(req, plan, cases, data.labels, run_dir, ctx)
        if ctx.is_main:
            monitor = RunMonitor(run_dir, [(tag, (run_dir / tag / "result.json").exists()) for tag, _ in jobs],
                                 plan.recipe.epochs, _title(req, plan.recipe, run_dir), quiet=not req.progress)
        settings = _settings(req, plan)
        for tag, fold in jobs:
            _train_one(tag, fold, settings, data, cases, run_dir, ctx, plan, monitor)
        if ctx.is_main:
            monitor.close()
            result = evaluate.evaluate_run(run_dir)
            log.info("done: %s", evaluate.headline(result))
            return result
        return None
    finally:
        if monitor is not None:
            monitor.close()
        for h in handlers:
            log.removeHandler(h)
            h.close()
        ctx.close()


def _check_before_training(req, plan, run_dir, ctx):
    """Rank 0 checks the cohort and the run folder ('new' or 'resume'); every rank stops on a problem."""
    error, mode = None, None
    if ctx.is_main:
        try:
            # Structure only: images are opened once, by the cache, which reports every failing case.
            validate_cohort(plan.cohort, read_images=False).raise_if_problems()
            cases = plan.cohort.with_sequence(req.sequence)
            splits.check_class_sizes(req.split, [c.lvi for c in cases], [c.patient_id for c in cases],
                                     str(plan.cohort.csv_path))
            mode = _prepare_folder(run_dir, plan.identity, req.overwrite)
        except LVIError as exc:
            error = exc
    message = ctx.broadcast(str(error) if error else None)  # every rank stops, not only rank 0
    if error is not None:
        raise error
    if message:
        raise InputError(None, message)
    return mode


def _open_run(req, plan, run_dir, ctx, mode):
    """config.json (new runs), the log and its first lines; returns the log handlers to remove."""
    if mode == "new":  # config first: a folder with config.json is a run, resumable from any later kill
        atomic.save_json(run_config(req, plan.cohort, plan.spec, plan.arch, plan.batch_size, plan.identity, ctx,
                                    plan.recipe), run_dir / "config.json")
    handlers = _attach_log(run_dir)
    if mode == "new":
        log.info("new run %s: %s %s, recipe %s, split %s, %d epochs, seed %d, device %s x%d", run_dir, req.model,
                 req.sequence, plan.recipe.name, req.split, plan.recipe.epochs, req.seed, ctx.device, ctx.world_size)
    else:
        log.info("resuming run %s", run_dir)
        record_resume_command(req, run_dir, plan.recipe, plan.batch_size)
    notice("{} run {}; its log: {}".format("new" if mode == "new" else "resuming", run_dir, run_dir / "train.log"),
           quiet=not req.progress)
    left_out = len(plan.cohort.cases) - len(plan.cohort.with_sequence(req.sequence))
    if left_out:
        log.warning("%d of %d cases have no %s image+mask and are left out", left_out, len(plan.cohort.cases),
                    req.sequence)
    return handlers


def _load_inputs(req, plan, cases, ctx):
    """Every case's preprocessed inputs: rank 0 builds (or verifies) the cache's pack, and every rank
    memory-maps that one file (no per-rank copy)."""
    store = cache.PreparedCache(req.cache_dir or plan.cohort.root / ".lvi_cache")

    def build_cache():
        stack, built = store.stacked(cases, req.sequence, plan.spec, dce_phase=req.dce_phase, workers=req.workers,
                                     quiet=not req.progress)
        log.info("inputs: %d cases, %d preprocessed now, %d from the cache %s", len(cases), built,
                 len(cases) - built, store.root)
        return str(stack.path)

    stack = store.open_stack(distributed.run_on_main(ctx, build_cache, store.root, req.cache_timeout))
    data = stack.case_tensors([c.lvi for c in cases])
    if plan.recipe.voi_shape_aux:
        data.aux_targets = voi_shape.auxiliary_targets(cases, req.sequence)
    return data


def _fold_jobs(req, plan, cases, labels, run_dir, ctx):
    """[(tag, fold)] to train: the split's folds (written to splits.json), then the final model if any."""
    folds = splits.make_splits(req.split, labels, [c.patient_id for c in cases], req.seed,
                               str(plan.cohort.csv_path))
    if ctx.is_main:
        atomic.save_json({"split": req.split, "seed": req.seed, "case_ids": [c.case_id for c in cases],
                          "folds": [f.to_dict() for f in folds]}, run_dir / "splits.json")
    jobs = [("fold_{}".format(f.index), f) for f in folds]
    # Not part of the identity: re-running a finished CV without --no-final-model just adds it.
    # A fold ensemble is the exported model itself, so it needs no final fit.
    if req.split == "cv5" and req.final_model and not plan.recipe.ensemble:
        jobs.append((FINAL_FOLD, splits.all_cases_fold(len(cases))))
    return jobs


def _settings(req, plan):
    recipe = plan.recipe
    return engine.TrainSettings(model=req.model, architecture_config=plan.arch, epochs=recipe.epochs,
                                batch_size=plan.batch_size, pos_weight=req.pos_weight, augment=req.augment,
                                seed=req.seed, weight_decay=recipe.weight_decay, augmentation=recipe.augmentation,
                                image_dropout=recipe.image_dropout, dropout_per_channel=recipe.dropout_per_channel,
                                ema_decay=recipe.ema_decay, slice_loss=recipe.slice_loss,
                                voi_shape_aux=recipe.voi_shape_aux, image_channels=len(channels(req.sequence)))


def _title(req, recipe, run_dir):
    return "{}: {} {}, recipe {}, split {}, seed {}".format(run_dir.name, req.model, req.sequence, recipe.name,
                                                           req.split, req.seed)


def _train_one(tag, fold, settings, data, cases, run_dir, ctx, plan, monitor):
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
    patients = [c.patient_id for c in cases]
    fit_cases, val_cases = fold.train, None
    if plan.recipe.val_fraction > 0:
        fit_cases, val_cases = splits.inner_validation(fold.train, data.labels, patients, plan.recipe.val_fraction,
                                                       engine.derive_seed(settings.seed, tag, "inner-validation"))
    if architectures.is_radiomics(settings.model):
        model, history = radiomics_fit.fit_fold(data, fold.train, patients,
                                                settings.architecture_config["feature_names"], settings.seed)
        if ctx.is_main:
            checkpoints.save_torch({"format": 1, "identity": plan.digest, "epoch": 0, "model": model.state_dict(),
                                    "history": history}, fold_dir / "checkpoint.pt")
    else:
        model, history = engine.train_fold(settings, data, fit_cases, ctx, fold_dir / "checkpoint.pt", tag,
                                           plan.digest, val_cases=val_cases, monitor=monitor)
    if ctx.is_main:
        refits_head = plan.recipe.head_refit and not architectures.is_radiomics(settings.model)
        monitor.note("{}: {}scoring its cases".format(tag, "refitting the last layer, " if refits_head else ""))
        refit = None
        if refits_head:
            refit = _refit_head(model, data, fold.train, patients, settings.seed, ctx.device,
                                fold_dir / "checkpoint.pt")
            log.info("%s: last layer refitted on %d cases' pooled features (C %.3g, inner-CV log-loss %.4f)", tag,
                     refit["cases"], refit["C"], refit["inner_cv_log_loss"])
        _write_fold_result(tag, fold, model, history, refit, val_cases, data, cases, ctx, plan.recipe, result_path)
        monitor.fold_done(tag, history, engine.selected_epoch(history))
    ctx.barrier()


def _write_fold_result(tag, fold, model, history, refit, val_cases, data, cases, ctx, recipe, result_path):
    """Score the fold's training and held-out cases and freeze its threshold in result.json."""
    # The threshold is chosen on every training-fold case, the inner validation ones included.
    train_p, train_slices = engine.score_fold_cases(model, data, fold.train, ctx.device, recipe.tta)
    train_y = data.labels[fold.train]
    threshold = metrics.youden_threshold(train_y, train_p)
    test_p, test_slices = engine.score_fold_cases(model, data, fold.test, ctx.device, recipe.tta)
    atomic.save_json({
        "fold": tag, "threshold": threshold, "threshold_method": "youden_on_training_predictions",
        "train_auc": metrics.auc(train_y, train_p), "epochs": recipe.epochs,
        "selected_epoch": engine.selected_epoch(history), "history": history,
        "inner_validation": [cases[i].case_id for i in val_cases] if val_cases is not None else [],
        "head_refit": refit,
        "train": _rows(cases, fold.train, train_p, train_slices),
        "test": _rows(cases, fold.test, test_p, test_slices)}, result_path)


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
