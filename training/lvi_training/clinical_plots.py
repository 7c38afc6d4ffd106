"""A combined model's nomogram and decision curve (PNG).

Nomogram: one points scale per predictor (0-100 points for the predictor whose range moves the
logit most), a total-points scale and the probability it gives; drawn for a case whose values are
all recorded (a missing value adds its indicator's points instead: the card states the rule).

Decision curve (Vickers & Elkin 2006): net benefit = TP/n - FP/n x pt/(1 - pt) over threshold
probabilities pt, from out-of-fold predictions, against treating all and treating none.
"""

import numpy as np

from LVIPredictorLib import clinical

from .plots import pyplot

MIN_LABEL_GAP = 5.0  # points between two tick labels of one predictor
IMAGING_TICKS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.95)


def _axis_values(name):
    field = clinical.FIELDS[name]
    if field.kind == "binary":
        return [0.0, 1.0]
    if name == "age":
        return [30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
    if name == "tumour_size_mm":
        return [5.0, 10.0, 20.0, 30.0, 40.0, 50.0]
    return [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]


def nomogram(model, path, title):
    """``model``: a fitted clinical model (clinical_fit.fit); one row per predictor."""
    plt = pyplot()
    names, coefficients = model["names"], dict(zip(clinical.feature_names(model["names"], model["with_imaging"]),
                                                   model["coefficients"]))
    rows = []  # (label, [(tick value text, logit contribution)])
    for name in names:
        field = clinical.FIELDS[name]
        values = _axis_values(name)
        label = "{} ({})".format(name, field.unit)
        rows.append((label, [("{:g}".format(v), coefficients[name] * v) for v in values]))
    if model["with_imaging"]:
        rows.append(("imaging model probability", [("{:g}".format(p), coefficients[clinical.IMAGING_FEATURE] *
                                                     clinical.imaging_logit(p)) for p in IMAGING_TICKS]))
    spans = [max(c for _, c in ticks) - min(c for _, c in ticks) for _, ticks in rows]
    per_point = max(spans) / 100.0 if max(spans) > 0 else 1.0
    fig, ax = plt.subplots(figsize=(8.5, 0.55 * (len(rows) + 4) + 0.8), dpi=120)
    y = len(rows) + 2
    ax.plot([0, 100], [y, y], color="black", lw=1)
    for p in range(0, 101, 10):
        ax.plot([p, p], [y, y + 0.15], color="black", lw=1)
        ax.text(p, y + 0.25, str(p), ha="center", va="bottom", fontsize=7)
    ax.text(-3, y, "Points", ha="right", va="center", fontsize=8, weight="bold")
    lowest = 0.0
    for i, (label, ticks) in enumerate(rows):
        yy = y - 1 - i
        low = min(c for _, c in ticks)
        lowest += low
        xs = [(c - low) / per_point for _, c in ticks]
        ax.plot([min(xs), max(xs)], [yy, yy], color="tab:blue", lw=1.5)
        labelled = []
        for (text, _), x in sorted(zip(ticks, xs), key=lambda item: item[1]):
            ax.plot([x, x], [yy, yy + 0.12], color="tab:blue", lw=1)
            # A predictor that moves the logit little has its ticks close together: label every one
            # that has room, always the two ends.
            if not labelled or x - labelled[-1] >= MIN_LABEL_GAP:
                labelled.append(x)
                ax.text(x, yy - 0.18, text, ha="center", va="top", fontsize=7)
        ends = sorted(zip(xs, [t for t, _ in ticks]))
        if labelled[-1] != ends[-1][0]:
            ax.text(ends[-1][0] + 1.5, yy, ends[-1][1], ha="left", va="center", fontsize=7)
        ax.text(-3, yy, label, ha="right", va="center", fontsize=8)
    # Total points -> probability, for cases with every value recorded (indicators 0).
    intercept = model["intercept"] + lowest
    total_max = sum(max((c - min(cc for _, cc in t)) / per_point for _, c in t) for _, t in rows)
    yt, yp = 0.0, -1.0
    probabilities = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    scale = 100.0 / total_max if total_max > 0 else 1.0  # the total axis drawn on the same 0-100 width
    ax.plot([0, 100], [yt, yt], color="black", lw=1)
    for t in np.linspace(0, total_max, 6):
        ax.plot([t * scale] * 2, [yt, yt + 0.12], color="black", lw=1)
        ax.text(t * scale, yt + 0.2, "{:.0f}".format(t), ha="center", va="bottom", fontsize=7)
    ax.text(-3, yt, "Total points", ha="right", va="center", fontsize=8, weight="bold")
    shown = []
    for p in probabilities:
        total = (np.log(p / (1 - p)) - intercept) / per_point
        if 0 <= total <= total_max:
            shown.append(total * scale)
            ax.plot([total * scale] * 2, [yp, yp + 0.12], color="tab:red", lw=1)
            ax.text(total * scale, yp - 0.18, "{:g}".format(p), ha="center", va="top", fontsize=7)
    if shown:
        ax.plot([min(shown), max(shown)], [yp, yp], color="tab:red", lw=1.5)
    ax.text(-3, yp, "Probability of LVI", ha="right", va="center", fontsize=8, weight="bold")
    ax.set_xlim(-45, 105)
    ax.set_ylim(yp - 1.0, y + 1.0)
    ax.axis("off")
    ax.set_title(title + "\n(for a case with every value recorded; a missing value is filled as the model card "
                         "states)", fontsize=9)
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)


def net_benefit(labels, probabilities, thresholds):
    labels = np.asarray(labels, dtype=int)
    probabilities = np.asarray(probabilities, dtype=float)
    n = len(labels)
    out = []
    for pt in thresholds:
        treated = probabilities >= pt
        tp = np.sum(treated & (labels == 1)) / n
        fp = np.sum(treated & (labels == 0)) / n
        out.append(tp - fp * pt / (1.0 - pt))
    return np.array(out)


def decision_curve(labels, scored, path, title):
    """``scored``: {curve label: out-of-fold probabilities of the same cases}."""
    plt = pyplot()
    labels = np.asarray(labels, dtype=int)
    thresholds = np.linspace(0.01, 0.8, 80)
    prevalence = labels.mean()
    fig, ax = plt.subplots(figsize=(6.0, 4.5), dpi=120)
    treat_all = prevalence - (1 - prevalence) * thresholds / (1 - thresholds)
    ax.plot(thresholds, treat_all, color="grey", lw=1, ls="--", label="treat all as LVI+")
    ax.plot(thresholds, np.zeros_like(thresholds), color="black", lw=1, label="treat none")
    for name, probabilities in scored.items():
        ax.plot(thresholds, net_benefit(labels, probabilities, thresholds), lw=2, label=name)
    ax.set_xlim(0, 0.8)
    ax.set_ylim(-0.05, max(0.05, prevalence * 1.1))
    ax.set_xlabel("threshold probability (LVI+ above it)")
    ax.set_ylabel("net benefit (per patient)")
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(str(path))
    plt.close(fig)
