"""ROC and calibration plots as PNG (matplotlib, Agg backend: works without a display)."""

import numpy as np


def pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def roc_plot(labels, probabilities, path, title, auc_text=None, threshold=None):
    """ROC curve with the chance diagonal, and the operating point at ``threshold`` if given."""
    from sklearn.metrics import roc_curve

    plt = pyplot()
    fpr, tpr, _ = roc_curve(labels, probabilities)
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.plot(fpr, tpr, lw=2, label=auc_text or "ROC")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    if threshold is not None:
        labels = np.asarray(labels)
        predicted = np.asarray(probabilities) >= np.asarray(threshold)
        sens = predicted[labels == 1].mean()
        spec = 1 - predicted[labels == 0].mean()
        ax.plot([1 - spec], [sens], "o", color="black", label="frozen threshold")
    _finish(plt, fig, ax, path, title, "1 - specificity", "sensitivity", 1.02, "lower right")


def calibration_plot(labels, probabilities, path, title, bins=5, slope_text=None):
    """Observed LVI+ rate per quantile bin of predicted probability, against the diagonal."""
    plt = pyplot()
    labels = np.asarray(labels, dtype=float)
    probabilities = np.asarray(probabilities, dtype=float)
    order = np.argsort(probabilities, kind="stable")
    groups = [g for g in np.array_split(order, min(bins, len(order))) if len(g)]
    mean_p = [probabilities[g].mean() for g in groups]
    observed = [labels[g].mean() for g in groups]
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="perfect")
    ax.plot(mean_p, observed, "o-", lw=2, label=slope_text or "observed")
    _finish(plt, fig, ax, path, title, "predicted probability (bin mean)", "observed LVI+ fraction", 1.0, "upper left")


def _finish(plt, fig, ax, path, title, xlabel, ylabel, ymax, legend_loc):
    """Axes on [0, 1] x [0, ymax], labels, title and legend; write the PNG and free the figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, ymax)
    ax.set_title(title, fontsize=9)
    ax.legend(loc=legend_loc, fontsize=8)
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)
