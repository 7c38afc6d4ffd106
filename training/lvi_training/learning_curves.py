"""Per-epoch records of a run: each fold's history as CSV, and the run's learning curves as PNG.

``fold_K/history.csv`` has one row per epoch (the same entries as result.json's ``history``,
but there from the first epoch on, for a spreadsheet or pandas while the run trains).
``learning_curves.png`` draws every fold side by side: training and validation loss on the
left, training and validation AUC on the right, each fold in its own colour, the epoch a fold
kept marked — the picture that shows over- or under-fitting at a glance.
"""

import csv
import io
import math

from . import atomic
from .plots import pyplot

COLUMNS = ("epoch", "loss", "train_auc", "val_loss", "val_auc", "lr", "seconds")


def history_csv(history):
    """The CSV text of one fold's history (empty cells where an epoch has no such value)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for entry in history:
        writer.writerow({k: _cell(entry.get(k)) for k in COLUMNS})
    return buffer.getvalue()


def write_history_csv(history, path):
    atomic.save_text(history_csv(history), path)


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def has_epochs(history):
    """Whether a history is per epoch (a network's) rather than one fit (the radiomics baseline's)."""
    return bool(history) and all("epoch" in h and "loss" in h for h in history)


def plot_learning_curves(histories, path, title, kept_epochs=None):
    """``histories``: {fold tag: history}; ``kept_epochs``: {fold tag: epoch whose weights it kept}."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    kept_epochs = kept_epochs or {}
    fig, (loss_ax, auc_ax) = plt.subplots(1, 2, figsize=(11, 4.6), dpi=110)
    colours = plt.get_cmap("tab10")
    validated = any("val_loss" in h for history in histories.values() for h in history)
    for i, (tag, history) in enumerate(sorted(histories.items())):
        colour = colours(i % 10)
        epochs = [h["epoch"] for h in history]
        for ax, train_key, val_key in ((loss_ax, "loss", "val_loss"), (auc_ax, "train_auc", "val_auc")):
            train = [_nan(h.get(train_key)) for h in history]
            if not validated:  # the paper's recipe: no inner validation split, training curves only
                ax.plot(epochs, train, color=colour, lw=2, label=tag)
                continue
            ax.plot(epochs, train, color=colour, lw=1.2, ls=":", alpha=0.8)
            ax.plot(epochs, [_nan(h.get(val_key)) for h in history], color=colour, lw=2, label=tag)
            kept = kept_epochs.get(tag)
            if kept and 0 < kept <= len(history) and val_key in history[kept - 1]:
                ax.plot([kept], [_nan(history[kept - 1][val_key])], "o", color=colour, ms=7, mec="black")
    loss_ax.set_ylabel("loss (binary cross-entropy)")
    auc_ax.set_ylabel("AUC")
    auc_ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    auc_ax.set_ylim(0.0, 1.02)
    words = "training (dotted), inner validation (solid)" if validated else "training samples (no validation split)"
    for ax, what in ((loss_ax, "loss"), (auc_ax, "AUC")):
        ax.set_xlabel("epoch")
        ax.set_title("{}: {}".format(what, words), fontsize=9)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    # One legend beside the plots, where it hides no curve.
    handles, labels = loss_ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, title="fold\n(o: epoch kept)" if validated else "fold",
               title_fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    fig.savefig(str(path))
    plt.close(fig)


def _nan(value):
    return float("nan") if value is None else float(value)
