"""What a researcher watches while a run trains, written by rank 0 as each epoch ends:

- the console line (progress.Progress): fold, epoch, loss, validation AUC, time left for the run;
- ``fold_K/history.csv``, every epoch so far;
- TensorBoard event files under ``RUN/tensorboard/fold_K`` (``tensorboard --logdir RUN/tensorboard``)
  when the optional ``tensorboard`` package is installed (``pip install 'lvipredictor[tensorboard]'``);
  train.log says so when it is not;
- ``learning_curves.png``, redrawn when a fold ends and at most once a minute in between.

None of it feeds back into training: the checkpoint and result.json stay the record a run
resumes from, so the same run with or without TensorBoard trains the same weights.
"""

import logging
import math
import time

from . import atomic
from .learning_curves import has_epochs, plot_learning_curves, write_history_csv
from .progress import Progress

log = logging.getLogger("lvi_training")

REDRAW_SECONDS = 60.0
TENSORBOARD_DIR = "tensorboard"
CURVES_PNG = "learning_curves.png"


def summary_writer_class():
    """torch's SummaryWriter, or None when the tensorboard package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # torch.utils.tensorboard needs the separate tensorboard package
        return None
    return SummaryWriter


class RunMonitor:
    """``jobs``: [(fold tag, done already)] in training order; ``epochs``: per fold (0: the radiomics
    baseline, which fits in one step, so progress counts folds)."""

    def __init__(self, run_dir, jobs, epochs, title, quiet=False):
        self.run_dir = run_dir
        self.epochs = int(epochs)
        self.title = title
        self.histories, self.kept = {}, {}
        for tag, done in jobs:
            if done:
                result = atomic.load_json(run_dir / tag / "result.json")
                self.histories[tag], self.kept[tag] = result.get("history") or [], result.get("selected_epoch")
        per_fold = self.epochs or 1
        self.progress = Progress(per_fold * len(jobs), "training", "epoch" if self.epochs else "fold", quiet)
        self.progress.skip(per_fold * sum(1 for _, done in jobs if done))
        self._writer_class = summary_writer_class() if self.epochs else None
        if self.epochs and self._writer_class is None:
            log.info("TensorBoard events not written: the tensorboard package is not installed "
                     "(pip install 'lvipredictor[tensorboard]'); per-epoch metrics are in fold_K/history.csv")
        self._writer = None
        self._drawn = time.monotonic()
        self._jobs = [tag for tag, _ in jobs]

    def fold_started(self, tag, history):
        """A fold begins, or resumes with ``history`` (its finished epochs)."""
        self.histories[tag] = list(history)
        self.progress.skip(len(history))
        self.progress.describe(label="{} ({}/{})".format(tag, self._jobs.index(tag) + 1, len(self._jobs)))
        if self._writer_class is not None:
            # purge_step: epochs after the checkpoint that a killed run had already logged are hidden.
            self._writer = self._writer_class(str(self.run_dir / TENSORBOARD_DIR / tag),
                                              purge_step=len(history) + 1)

    def epoch_done(self, tag, entry, history):
        self.histories[tag] = list(history)
        write_history_csv(history, self.run_dir / tag / "history.csv")
        if self._writer is not None:
            for name, key in (("loss/train", "loss"), ("loss/validation", "val_loss"), ("auc/train", "train_auc"),
                              ("auc/validation", "val_auc"), ("lr", "lr")):
                if key in entry and not math.isnan(entry[key]):
                    self._writer.add_scalar(name, entry[key], entry["epoch"])
            self._writer.flush()
        self.progress.advance(1, status=epoch_status(entry, self.epochs))
        if time.monotonic() - self._drawn >= REDRAW_SECONDS:
            self.draw()

    def note(self, status):
        """What the run does between epochs (refitting a head, scoring a fold)."""
        self.progress.describe(status=status)

    def fold_done(self, tag, history, kept_epoch):
        """A fold's final history (also the radiomics baseline's single fit)."""
        self.histories[tag] = list(history)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if not self.epochs:
            self.progress.advance(1)
        self.kept[tag] = kept_epoch
        self.draw()

    def draw(self):
        curves = {tag: h for tag, h in self.histories.items() if has_epochs(h)}
        if curves:
            plot_learning_curves(curves, self.run_dir / CURVES_PNG, self.title, self.kept)
        self._drawn = time.monotonic()

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.progress.close()


def epoch_status(entry, epochs):
    """'epoch 12/40 loss 0.612 val-AUC 0.71' (train-AUC when the recipe has no validation split)."""
    words = "epoch {}/{} loss {:.3f}".format(entry["epoch"], epochs, entry["loss"])
    if "val_auc" in entry:
        return words + " val-AUC {:.3f}".format(entry["val_auc"])
    return words + " train-AUC {:.3f}".format(entry["train_auc"])
