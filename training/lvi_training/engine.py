"""The training loop for one fold, and scoring of cases with a trained model.

Paper defaults (docs/design.md §1): Adam, lr 1e-3, the lr multiplied by 0.9 every 10 % of the
total number of batches (StepLR stepped per batch: 10 decays, final lr ~3.5e-4),
100 epochs, batch 64 for 2D models and 8 for the 3D model.

Choices the paper leaves open, and ours:

- Loss: ``BCEWithLogitsLoss`` on the single logit, WITHOUT class weighting by default
  (``pos_weight="none"``). Sensitivity/specificity come from a Youden threshold chosen on
  training data, which already absorbs the 1:2 imbalance; re-weighting the loss would
  only shift the probabilities away from the observed prevalence and spoil calibration.
  ``pos_weight="balanced"`` (n_neg / n_pos of the training fold) is available.
- Augmentation (on the cached tensors, so it costs microseconds): left-right flip
  (breasts are mirror images), for 3D also a cranio-caudal flip, in-plane shifts of up to
  4 voxels (replicate padding) and an intensity scale of x[0.9, 1.1] plus an offset of
  [-0.1, 0.1] (z-score units) — small, label-preserving changes. No anterior-posterior
  flip: it would put the chest wall on the wrong side. ``strong`` (the small-data recipe)
  adds an in-plane rotation by any angle — the LVI signs are around the tumour and have no
  orientation — and doubles the intensity ranges. Intensity changes never touch the VOI
  channel; rotations move it with the image (nearest neighbour, so it stays 0/1).
- Model selection (``val_cases``): the epoch whose weights are kept is the one with the
  lowest loss on an inner validation split of the TRAINING fold; the held-out fold is never
  looked at. Without it the last epoch is kept (the paper).
- Weight averaging (``ema_decay``, off in the paper's recipe): an exponential moving average of
  the weights after every step; model selection and export then use the averaged weights.
- 2D models train on every selected slice of every training case, each labelled with its
  case's label; a case's score is ``aggregate_slice_scores`` of its slice probabilities
  (the same rule ``Predictor`` uses). ``slice_loss="area"`` weights each slice's loss by the
  same VOI-area share the case score gives it, so small edge slices, which show little of
  the tumour but carry the case's label all the same, count less.
- Side task (``voi_shape_aux``, off by default): a linear head on the features the network's
  last layer reads predicts the case's VOI z-extent and irregularity (``voi_shape``), which
  alone score LVI about as well as the networks on the phantom; the targets come from the
  VOI, not the label. The head is dropped after training.

Data: every input is a resident tensor (the cache, in memory or on the GPU); a batch is a
gather by index, so there is no loader process (``num_workers=0``) and nothing to wait
for (benchmarks/bench_train.py measures the data share of a step: < 1 % on the CPU).
Batches come from ``DistributedSampler`` even in one process, so one process and N
torchrun processes see the same global batches (rank r takes every N-th sample of each).

Determinism and resume: every random draw of an epoch (shuffling, augmentation,
dropout) is seeded from (seed, fold, epoch), and the augmentation of a sample is
indexed by the sample, so an epoch draws the same thing whether it runs after the
previous epoch in the same process, after a resume from a checkpoint, or split over
several processes. A checkpoint (model, optimizer, scheduler, RNG states, history) is
written atomically after each epoch.
"""

import copy
import functools
import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, DistributedSampler

from LVIPredictorLib.models import Ensemble, build_model
from LVIPredictorLib.preprocessing import aggregate_slice_scores

from . import checkpoints, metrics
from .head_refit import last_linear
from .steps import autocast, optimisation_step

log = logging.getLogger("lvi_training")

MAX_SHIFT_VOXELS = 4
INTENSITY_SCALE = 0.1
INTENSITY_OFFSET = 0.1
POS_WEIGHTS = ("none", "balanced")
SLICE_LOSSES = ("uniform", "area")


@dataclass
class TrainSettings:
    model: str
    architecture_config: dict
    epochs: int
    batch_size: int
    lr: float = 1e-3
    lr_decay: float = 0.9
    lr_decay_every_fraction: float = 0.1
    pos_weight: str = "none"
    augment: bool = True
    seed: int = 0
    weight_decay: float = 0.0
    augmentation: str = "paper"
    image_channels: Optional[int] = None  # channels intensity augmentation applies to (None: all)
    image_dropout: float = 0.0  # share of training samples whose image channels are blanked (VOI channel kept)
    dropout_per_channel: bool = False  # multi-image inputs: blank each image channel on its own draw
    ema_decay: float = 0.0  # per-step exponential moving average of the weights; 0 = off
    slice_loss: str = "uniform"  # 2D: "area" weights each slice's loss by its share of the case's VOI area
    voi_shape_aux: float = 0.0  # weight of the side task: predict the VOI's z-extent and irregularity

    def to_dict(self):
        return dict(self.__dict__)


@dataclass
class CaseTensors:
    """Every case's model inputs stacked as samples (one per slice for 2D), kept in memory."""

    inputs: torch.Tensor          # (S, C, ...) float32
    sample_case: torch.Tensor     # (S,) case index of each sample
    labels: np.ndarray            # (N,) case labels 0/1
    slice_weights: List[np.ndarray] = field(default_factory=list)
    aux_targets: Optional[np.ndarray] = None  # (N, k) per-case side-task targets (voi_shape), or None

    @classmethod
    def from_cached(cls, cached_cases, labels):
        arrays = [c.inputs for c in cached_cases]
        owner = np.concatenate([np.full(len(a), i) for i, a in enumerate(arrays)])
        return cls(inputs=torch.from_numpy(np.concatenate(arrays).astype(np.float32)),
                   sample_case=torch.from_numpy(owner.astype(np.int64)),
                   labels=np.asarray(labels, dtype=int),
                   slice_weights=[np.asarray(c.slice_weights, dtype=float) for c in cached_cases])

    def area_weights(self):
        """(S,) per-sample loss weights: each slice's share of its case's VOI area (the weights
        ``aggregate_slice_scores`` predicts with), times the case's slice count, so a case keeps
        the total weight it has with uniform weights and only its edge slices count less."""
        return torch.from_numpy(np.concatenate([w / w.sum() * len(w) for w in self.slice_weights]).astype(np.float32))

    def samples_of(self, case_indices):
        wanted = torch.zeros(len(self.labels), dtype=torch.bool)
        wanted[torch.as_tensor(np.asarray(case_indices, dtype=np.int64))] = True
        return torch.nonzero(wanted[self.sample_case]).reshape(-1)

    @property
    def spatial_dims(self):
        return self.inputs.dim() - 2


def derive_seed(*parts):
    """A 63-bit seed from any parts, stable across processes and Python versions."""
    digest = hashlib.sha256(repr(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def augmentation_parameters(n_samples, seed, strength="paper", image_dropout=0.0, image_channels=1,
                            per_channel=False):
    """Per-sample augmentation draws for one epoch (indexed by sample, so world-size independent).

    ``blank_image`` is (n_samples, image_channels): one draw per sample shared by every image
    channel, or with ``per_channel`` one draw per channel, so a fused model also sees each
    sequence without the other and cannot lean on one of them alone.
    """
    g = torch.Generator().manual_seed(seed)
    draws = torch.rand(n_samples, image_channels if per_channel else 1,
                       generator=torch.Generator().manual_seed(seed ^ 0x5EED))
    blank = (draws < image_dropout).expand(n_samples, image_channels)
    wider = 2.0 if strength == "strong" else 1.0
    params = {"flip_x": torch.rand(n_samples, generator=g) < 0.5,
              "flip_z": torch.rand(n_samples, generator=g) < 0.5,
              "shift": torch.randint(-MAX_SHIFT_VOXELS, MAX_SHIFT_VOXELS + 1, (n_samples, 2), generator=g),
              "scale": 1.0 + (torch.rand(n_samples, generator=g) * 2 - 1) * INTENSITY_SCALE * wider,
              "offset": (torch.rand(n_samples, generator=g) * 2 - 1) * INTENSITY_OFFSET * wider}
    if image_dropout > 0:
        params["blank_image"] = blank
    if strength == "strong":
        params["angle"] = torch.rand(n_samples, generator=g) * (2 * math.pi)
    elif strength != "paper":
        raise ValueError("unknown augmentation {!r}".format(strength))
    return params


def augment(x, params, idx, image_channels=None):
    """Apply the draws of samples ``idx`` to the batch ``x`` (N, C, [Z,] Y, X).

    Channels from ``image_channels`` on (the VOI channel) get the geometric changes only.
    """
    idx = idx.to(params["shift"].device)
    view = (-1,) + (1,) * (x.dim() - 1)
    flip_x = params["flip_x"][idx].to(x.device).reshape(view)
    x = torch.where(flip_x, x.flip(-1), x)
    if x.dim() == 5:
        flip_z = params["flip_z"][idx].to(x.device).reshape(view)
        x = torch.where(flip_z, x.flip(2), x)
    if "angle" in params:
        x = _rotate_in_plane(x, params["angle"][idx].to(x.device), image_channels)
    x = _shift(x, params["shift"][idx].to(x.device))
    scale = params["scale"][idx].to(x.device).reshape(view)
    offset = params["offset"][idx].to(x.device).reshape(view)
    if image_channels is None or image_channels >= x.shape[1]:
        return x * scale + offset
    images = x[:, :image_channels] * scale + offset
    if "blank_image" in params:
        # Modality dropout: some samples show only the VOI, so the network must learn what the outline
        # says instead of memorising cases by their image; 0 is the background level of either normalisation.
        keep = (~params["blank_image"][idx].to(x.device)).to(x.dtype)
        images = images * keep.reshape(keep.shape + (1,) * (x.dim() - 2))
    return torch.cat([images, x[:, image_channels:]], dim=1)


def _rotate_in_plane(x, angles, image_channels):
    """Rotate each sample about the crop centre in the axial plane (3D: every slice alike).

    Images bilinear, the VOI channel nearest neighbour; outside the crop, border values.
    """
    cos, sin = torch.cos(angles), torch.sin(angles)
    zeros = torch.zeros_like(cos)
    if x.dim() == 4:
        theta = torch.stack([torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1)
    else:  # grid_sample's 3D coordinates are (x, y, z): rotate x and y, keep z
        ones = torch.ones_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zeros, zeros], 1), torch.stack([sin, cos, zeros, zeros], 1),
                             torch.stack([zeros, zeros, ones, zeros], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    split = x.shape[1] if image_channels is None else min(image_channels, x.shape[1])
    parts = [F.grid_sample(x[:, :split], grid, mode="bilinear", padding_mode="border", align_corners=False)]
    if split < x.shape[1]:
        parts.append(F.grid_sample(x[:, split:], grid, mode="nearest", padding_mode="border", align_corners=False))
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


def _shift(x, shifts):
    """Shift each sample in-plane by its own (dy, dx), replicating edge voxels (one gather, no loop)."""
    m = MAX_SHIFT_VOXELS
    pad = (m, m, m, m) + ((0, 0) if x.dim() == 5 else ())
    padded = F.pad(x, pad, mode="replicate").movedim((-2, -1), (1, 2))  # (N, Y+2m, X+2m, C[, Z])
    n, height, width = x.shape[0], x.shape[-2], x.shape[-1]
    rows = (m + shifts[:, 0])[:, None] + torch.arange(height, device=x.device)[None, :]
    cols = (m + shifts[:, 1])[:, None] + torch.arange(width, device=x.device)[None, :]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].movedim((1, 2), (-2, -1)).contiguous()


def make_model(settings, device):
    torch.manual_seed(derive_seed(settings.seed, "init"))
    return build_model(settings.model, **settings.architecture_config).to(device)


def sync_batchnorm(model, ctx):
    """Under torchrun on CUDA, BatchNorm statistics over the whole global batch, not each rank's share.

    The 3D model trains at batch 8: on 4 GPUs each rank would normalise over 2 samples, a
    different (noisier) model from the one a single process trains. gloo has no
    SyncBatchNorm, so CPU ranks keep per-rank statistics. Parameter and buffer names are
    unchanged, so checkpoints and exported weights are the same either way.
    """
    if ctx.distributed and ctx.device.startswith("cuda") and any(
            isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


class _Indices(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def train_fold(settings, data, train_cases, ctx, checkpoint_path, fold_tag, identity, progress=True,
               val_cases=None):
    """Train one model on ``train_cases``; resumes from ``checkpoint_path`` when it exists.

    With ``val_cases`` (an inner validation split of the training fold, not trained on) the
    weights of the epoch with the lowest validation loss are returned, else the last epoch's.
    Returns (model (unwrapped, eval mode), history list). Every rank calls this; rank 0 writes.
    """
    device = ctx.device
    model = sync_batchnorm(make_model(settings, device), ctx)
    samples = data.samples_of(train_cases)
    labels = torch.from_numpy(data.labels[data.sample_case.numpy()]).float()
    inputs = data.inputs.to(device)
    labels_dev = labels.to(device)
    per_rank_batch = max(1, min(settings.batch_size, len(samples)) // ctx.world_size)
    sampler = DistributedSampler(_Indices(len(samples)), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True,
                                 seed=derive_seed(settings.seed, fold_tag, "shuffle") % (1 << 31), drop_last=False)
    loader = DataLoader(_Indices(len(samples)), batch_size=per_rank_batch, sampler=sampler, num_workers=0,
                        drop_last=False)
    total_batches = settings.epochs * len(loader)
    step_size = max(1, int(round(settings.lr_decay_every_fraction * total_batches)))
    side = (_VoiShapeTask(model, data, train_cases, settings, device, ctx.world_size) if settings.voi_shape_aux
            else None)
    trained = list(model.parameters()) + (list(side.head.parameters()) if side is not None else [])
    if settings.weight_decay:
        optimizer = torch.optim.AdamW(trained, lr=settings.lr, weight_decay=settings.weight_decay)
    else:
        optimizer = torch.optim.Adam(trained, lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=settings.lr_decay)
    if settings.slice_loss not in SLICE_LOSSES:
        raise ValueError("slice_loss must be one of {}, got {!r}".format(SLICE_LOSSES, settings.slice_loss))
    weighted = settings.slice_loss == "area"
    criterion = torch.nn.BCEWithLogitsLoss(pos_weight=_pos_weight(settings.pos_weight, labels[samples], device),
                                           reduction="none" if weighted else "mean")
    sample_weights = data.area_weights().to(device) if weighted else None

    start_epoch, history, best = 0, [], None
    averaged = WeightAverage(model, settings.ema_decay) if settings.ema_decay else None
    if side is not None:
        side.attach()  # after the average's copy of the model, which must not carry the hook
    if checkpoint_path.exists():
        state = checkpoints.load_torch(checkpoint_path)
        if state.get("identity") != identity:
            raise RuntimeError("{} belongs to another configuration; remove it or use --overwrite".format(checkpoint_path))
        model.load_state_dict(state["model"])
        if side is not None:
            side.head.load_state_dict(state["side_head"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        checkpoints.set_rng_state(state["rng"])
        start_epoch, history, best = int(state["epoch"]), list(state["history"]), state.get("best")
        if averaged is not None:
            averaged.model.load_state_dict(state["averaged_model"])
        if ctx.is_main:
            log.info("%s: resuming after epoch %d/%d from %s", fold_tag, start_epoch, settings.epochs, checkpoint_path)

    wrapped = model
    if ctx.distributed:
        wrapped = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[torch.cuda.current_device()] if device.startswith("cuda") else None)

    bar = _epoch_bar(settings.epochs, start_epoch, fold_tag, progress and ctx.is_main)
    for epoch in range(start_epoch, settings.epochs):
        t0 = time.perf_counter()
        torch.manual_seed(derive_seed(settings.seed, fold_tag, epoch, "torch", ctx.rank))  # dropout
        sampler.set_epoch(epoch)
        params = {k: v.to(device) for k, v in augmentation_parameters(
            len(data.inputs), derive_seed(settings.seed, fold_tag, epoch, "augment"), settings.augmentation,
            settings.image_dropout, settings.image_channels or 1, settings.dropout_per_channel).items()}
        wrapped.train()
        loss_sum = torch.zeros(2, dtype=torch.float64)
        seen_logits, seen_labels = [], []
        for positions in loader:
            idx = samples[positions]
            x = inputs[idx.to(device)]
            if settings.augment:
                x = augment(x, params, idx, settings.image_channels)
            y = labels_dev[idx.to(device)]
            weight = sample_weights[idx.to(device)] if weighted else None
            side_loss = side.loss_for(data.sample_case[idx]) if side is not None else None
            logits, loss = optimisation_step(wrapped, criterion, optimizer, scheduler, x, y, device, weight, side_loss)
            if averaged is not None:
                averaged.update(model)
            loss_sum += torch.tensor([float(loss.detach()) * len(idx), len(idx)], dtype=torch.float64)
            seen_logits.append(logits.detach().float().cpu())
            seen_labels.append(y.cpu())
        if ctx.distributed:
            torch.distributed.all_reduce(loss_sum)
        entry = {"epoch": epoch + 1, "loss": float(loss_sum[0] / loss_sum[1]),
                 "train_auc": _safe_auc(torch.cat(seen_labels).numpy(), torch.cat(seen_logits).numpy()),
                 "lr": float(scheduler.get_last_lr()[0])}
        kept = model if averaged is None else averaged.model  # the weights this epoch would return
        if val_cases is not None and len(val_cases):
            # Every rank scores the same cases, so every rank keeps the same best epoch.
            entry.update(_validation(kept, data, val_cases, device))
            if best is None or entry["val_loss"] < best["val_loss"]:
                best = {"epoch": epoch + 1, "val_loss": entry["val_loss"],
                        "model": {k: v.detach().clone().cpu() for k, v in kept.state_dict().items()}}
        entry["seconds"] = round(time.perf_counter() - t0, 3)
        history.append(entry)
        if ctx.is_main:
            state = {"format": 1, "identity": identity, "epoch": epoch + 1, "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "rng": checkpoints.rng_state(), "history": history, "best": best}
            if averaged is not None:
                state["averaged_model"] = averaged.model.state_dict()
            if side is not None:
                state["side_head"] = side.head.state_dict()
            checkpoints.save_torch(state, checkpoint_path)
            log.info("%s epoch %d/%d loss %.4f train-AUC %.3f%s lr %.2e (%.1fs)", fold_tag, epoch + 1,
                     settings.epochs, entry["loss"], entry["train_auc"],
                     " val-loss {:.4f} val-AUC {:.3f}".format(entry["val_loss"], entry["val_auc"])
                     if "val_loss" in entry else "", entry["lr"], entry["seconds"])
            if bar is not None:
                bar.set_postfix(loss="{:.3f}".format(entry["loss"]), auc="{:.3f}".format(entry["train_auc"]))
                bar.update(1)
    if bar is not None:
        bar.close()
    ctx.barrier()
    if best is not None:
        model.load_state_dict(best["model"])
        if ctx.is_main:
            log.info("%s: kept epoch %d (lowest validation loss %.4f)", fold_tag, best["epoch"], best["val_loss"])
    elif averaged is not None:
        model.load_state_dict(averaged.model.state_dict())
    if side is not None:
        side.remove()
    model.eval()
    return model, history


class _VoiShapeTask:
    """Side task: a linear head on the input of the network's last linear layer predicts the
    case's VOI descriptors (``data.aux_targets``, standardised on the training cases only);
    its mean squared error, times ``settings.voi_shape_aux``, joins the loss. The head is not
    part of the model, so nothing of it is selected, averaged or exported."""

    def __init__(self, model, data, train_cases, settings, device, world_size=1):
        if data.aux_targets is None:
            raise ValueError("voi_shape_aux needs the cases' VOI descriptors (CaseTensors.aux_targets)")
        _, last = last_linear(model)
        targets = torch.as_tensor(data.aux_targets, dtype=torch.float32)
        train = targets[torch.as_tensor(np.asarray(train_cases, dtype=np.int64))]
        self.targets = ((targets - train.mean(0)) / train.std(0).clamp_min(1e-6)).to(device)
        torch.manual_seed(derive_seed(settings.seed, "side-head"))
        self.head = torch.nn.Linear(last.in_features, targets.shape[1]).to(device)
        if world_size > 1:
            # DistributedDataParallel averages the model's gradients but not the head's, which lies
            # outside it; averaging them here keeps every rank's head (same seed) the same head.
            for parameter in self.head.parameters():
                parameter.register_hook(functools.partial(_mean_over_ranks, world_size=world_size))
        self.weight = float(settings.voi_shape_aux)
        self._features = None
        self._last = last
        self._hook = None

    def attach(self):
        self._hook = self._last.register_forward_pre_hook(self._keep)

    def _keep(self, module, inputs):
        self._features = inputs[0]

    def loss_for(self, cases):
        def side_loss():
            predicted = self.head(self._features.float())
            return self.weight * torch.nn.functional.mse_loss(predicted, self.targets[cases.to(predicted.device)])
        return side_loss

    def remove(self):
        if self._hook is not None:
            self._hook.remove()


def _mean_over_ranks(gradient, world_size):
    gradient = gradient.clone()
    torch.distributed.all_reduce(gradient)
    return gradient / world_size


class WeightAverage:
    """An exponential moving average of a model's weights, updated after every optimiser step.

    On a few hundred cases one epoch's weights depend much on the last batches; the average
    over the last ~1/(1 - decay) steps is a smoother model to select and keep (the BatchNorm
    statistics are averaged with the weights, as timm's ModelEmaV2 does).
    """

    def __init__(self, model, decay):
        if not 0.0 < decay < 1.0:
            raise ValueError("the weight-average decay must lie in (0, 1), got {}".format(decay))
        self.decay = float(decay)
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model):
        for avg, cur in zip(self.model.state_dict().values(), model.state_dict().values()):
            if avg.dtype.is_floating_point:
                avg.lerp_(cur.detach(), 1.0 - self.decay)
            else:
                avg.copy_(cur)


def selected_epoch(history):
    """The epoch whose weights a fold kept: lowest validation loss, else the last."""
    scored = [h for h in history if "val_loss" in h]
    if not scored:
        return history[-1].get("epoch", 0) if history else 0
    return min(scored, key=lambda h: h["val_loss"])["epoch"]


def _validation(model, data, val_cases, device):
    was_training = model.training
    probs, _ = predict_cases(model, data, val_cases, device)
    model.train(was_training)
    y = data.labels[np.asarray(val_cases, dtype=np.int64)].astype(float)
    p = np.clip(probs, 1e-7, 1 - 1e-7)
    loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    return {"val_loss": loss, "val_auc": _safe_auc(y.astype(int), probs)}


def _epoch_bar(epochs, start, desc, enabled):
    if not enabled:
        return None
    from tqdm import tqdm

    # disable=None: a bar on a terminal, nothing in pipes/CI logs (the log file has every epoch).
    return tqdm(total=epochs, initial=start, desc=desc, unit="epoch", disable=None, leave=True)


def _pos_weight(rule, train_labels, device):
    if rule == "none":
        return None
    if rule == "balanced":
        pos = float(train_labels.sum())
        neg = float(len(train_labels) - pos)
        return torch.tensor(neg / max(pos, 1.0), device=device)
    raise ValueError("pos_weight must be one of {}".format(", ".join(POS_WEIGHTS)))


def _safe_auc(labels, scores):
    if len(np.unique(labels)) < 2:
        return float("nan")
    return metrics.auc(labels.astype(int), scores.astype(float))


def predict_cases(model, data, case_indices, device, batch_size=32):
    """Per-case probabilities (2D: aggregated over slices) and each case's slice probabilities."""
    model.eval()
    case_indices = np.asarray(case_indices, dtype=np.int64)
    samples = data.samples_of(case_indices)
    probs = []
    with torch.inference_mode():
        for start in range(0, len(samples), batch_size):
            x = data.inputs[samples[start:start + batch_size]].to(device)
            with autocast(device):
                logits = model(x).reshape(-1)
            probs.append(torch.sigmoid(logits.float()).double().cpu())
    sample_probs = torch.cat(probs).numpy() if probs else np.zeros(0)
    owner = data.sample_case[samples].numpy()
    case_probs, slice_probs = [], []
    for case in case_indices:
        p = sample_probs[owner == case]
        slice_probs.append(p.tolist())
        case_probs.append(aggregate_slice_scores(p, data.slice_weights[case]))
    return np.asarray(case_probs), slice_probs


def score_fold_cases(model, data, case_indices, device, tta):
    """:func:`predict_cases` as a trained fold model scores its cases, with the recipe's flip TTA.

    One place for it, so the benchmarks that re-score a run's fold models reproduce its
    ``result.json`` (batch size only changes speed: 3D inputs are 32x larger per sample).
    """
    scorer = Ensemble([model], tta_flip=True) if tta else model
    return predict_cases(scorer, data, case_indices, device, 64 if data.spatial_dims == 2 else 16)


def batches_per_epoch(n_samples, batch_size, world_size=1):
    per_rank_batch = max(1, min(batch_size, n_samples) // world_size)
    return math.ceil(math.ceil(n_samples / world_size) / per_rank_batch)
