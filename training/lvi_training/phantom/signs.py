"""The generative model of LVI and its imaging signs, and the best AUC each model input allows.

Every case draws its LVI status first, then a handful of latent signs whose
class-conditional distributions overlap. The signs are conditionally independent
given LVI, so the true posterior P(LVI | signs) is a monotone function of the summed
per-sign log-likelihood ratios, and the best AUC any classifier can reach from a
set of visible signs is the AUC of that sum. The images are noisy renderings of the
signs, so a model trained on the images can only approach this bound.

Literature anchors (the defaults at ``signal=1``): peritumoral oedema on T2 in 46 % of
LVI+ vs 31 % of LVI- tumours; kep 0.92 vs 0.81 min^-1 (SD 0.25); an adjacent enhancing
vessel in 82 % vs 68 %. Margin irregularity, rim enhancement and size have no single
published effect size; their shifts are chosen so that both sequences together give a
best AUC near 0.82, the level of the multi-sequence literature.

What a model can reach depends on what its input renders, not only on the sequence
(:func:`best_auc_for_input`): one DCE phase shows the tumour's enhancement at one time,
the product of kep's curve and a per-case amplitude that carries no LVI information, so
kep is only partly readable from it; the ratio of two phases cancels the amplitude, so a
dynamic series (or a subtraction between phases) shows kep itself. The pre-contrast phase
shows no enhancement at all.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from .contrast import KEP_FLOOR, TUMOUR_ENHANCEMENT_RANGE, tumour_enhancement

LOG_DIAMETER_RANGE = (math.log(5.0), math.log(50.0))  # tumours of 5-50 mm


@dataclass(frozen=True)
class SignModel:
    """Class-conditional parameters; ``signal`` scales every LVI+/LVI- difference."""

    prevalence: float = 0.33
    signal: float = 1.0
    null: bool = False  # labels drawn independently of everything the images show
    oedema_p: tuple = (0.31, 0.46)  # (LVI-, LVI+)
    vessel_p: tuple = (0.68, 0.82)
    kep_mean: tuple = (0.81, 0.92)  # min^-1
    kep_sd: float = 0.25
    margin_mean: tuple = (-0.36, 0.36)  # spiculation score, SD 1
    rim_mean: tuple = (-0.33, 0.33)  # rim-enhancement score, SD 1
    log_diameter_mean: tuple = (math.log(17.0), math.log(22.5))
    log_diameter_sd: float = 0.45

    def to_dict(self):
        return asdict(self)


# Which latent signs each sequence shows. Margin and size show on both; oedema is a
# T2 sign; kinetics, rim and the enhancing vessel need contrast.
SEQUENCE_SIGNS = {
    "t2": ("oedema", "margin", "log_diameter"),
    "dce": ("margin", "log_diameter", "kep", "rim", "vessel"),
    "both": ("oedema", "margin", "log_diameter", "kep", "rim", "vessel"),
}


def _scaled_means(pair, signal):
    mid = 0.5 * (pair[0] + pair[1])
    half = 0.5 * (pair[1] - pair[0]) * signal
    return mid - half, mid + half


def _scaled_probabilities(pair, signal):
    """Scale the difference in logit space so any signal keeps probabilities valid."""
    logit = [math.log(p / (1.0 - p)) for p in pair]
    lo, hi = _scaled_means(logit, signal)
    return 1.0 / (1.0 + math.exp(-lo)), 1.0 / (1.0 + math.exp(-hi))


def class_parameters(model):
    """Per-class parameters after applying the signal knob: dict name -> (LVI-, LVI+)."""
    s = model.signal
    return {
        "oedema": _scaled_probabilities(model.oedema_p, s),
        "vessel": _scaled_probabilities(model.vessel_p, s),
        "kep": _scaled_means(model.kep_mean, s),
        "margin": _scaled_means(model.margin_mean, s),
        "rim": _scaled_means(model.rim_mean, s),
        "log_diameter": _scaled_means(model.log_diameter_mean, s),
    }


def _truncated_normal(rng, mean, sd, lo, hi):
    a, b = ndtr((lo - mean) / sd), ndtr((hi - mean) / sd)
    u = a + (b - a) * rng.random(np.shape(mean))
    return mean + sd * ndtri(u)


def sample_signs(rng, n, model):
    """Draw ``n`` cases: returns dict with ``lvi`` (int 0/1) and one array per sign.

    In null mode the signs follow a hidden class drawn like LVI, and the reported
    ``lvi`` is an independent draw, so nothing in the images predicts it.
    """
    par = class_parameters(model)
    hidden = (rng.random(n) < model.prevalence).astype(np.int64)
    lvi = (rng.random(n) < model.prevalence).astype(np.int64) if model.null else hidden

    def pick(name):
        return np.where(hidden == 1, par[name][1], par[name][0])

    lo, hi = LOG_DIAMETER_RANGE
    return {
        "lvi": lvi,
        "oedema": (rng.random(n) < pick("oedema")).astype(np.int64),
        "vessel": (rng.random(n) < pick("vessel")).astype(np.int64),
        "kep": pick("kep") + model.kep_sd * rng.standard_normal(n),
        "margin": pick("margin") + rng.standard_normal(n),
        "rim": pick("rim") + rng.standard_normal(n),
        "log_diameter": _truncated_normal(rng, pick("log_diameter"), model.log_diameter_sd, lo, hi),
    }


def _gaussian_llr(x, means, sd):
    return ((x - means[0]) ** 2 - (x - means[1]) ** 2) / (2.0 * sd * sd)


def _bernoulli_llr(x, probs):
    return np.where(x == 1, math.log(probs[1] / probs[0]), math.log((1 - probs[1]) / (1 - probs[0])))


def log_likelihood_ratio(signs, model, sequence="both"):
    """log P(signs | LVI+) - log P(signs | LVI-) for the signs visible on ``sequence``.

    Zero everywhere in null mode: there the signs carry no information on the label.
    """
    return _llr_of(signs, model, SEQUENCE_SIGNS[sequence])


def _llr_of(signs, model, names):
    n = len(signs["lvi"])
    if model.null:
        return np.zeros(n)
    par = class_parameters(model)
    total = np.zeros(n)
    for name in names:
        x = np.asarray(signs[name], dtype=float)
        if name in ("oedema", "vessel"):
            total += _bernoulli_llr(x, par[name])
        elif name == "log_diameter":
            sd = model.log_diameter_sd
            lo, hi = LOG_DIAMETER_RANGE
            mass = [ndtr((hi - m) / sd) - ndtr((lo - m) / sd) for m in par[name]]
            total += _gaussian_llr(x, par[name], sd) - math.log(mass[1] / mass[0])
        else:
            sd = model.kep_sd if name == "kep" else 1.0
            total += _gaussian_llr(x, par[name], sd)
    return total


def posterior(signs, model, sequence="both"):
    """The true P(LVI = 1 | signs visible on ``sequence``)."""
    prior_logit = math.log(model.prevalence / (1.0 - model.prevalence))
    return 1.0 / (1.0 + np.exp(-(prior_logit + log_likelihood_ratio(signs, model, sequence))))


def auc(scores, labels):
    """Mann-Whitney AUC with ties counted half (exact 0.5 for constant scores)."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores))
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    n_pos, n_neg = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def best_auc(model, n_draws=200_000, seed=12345):
    """Monte-Carlo AUC of the true posterior, per sequence and for both together."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0xB357])))
    signs = sample_signs(rng, n_draws, model)
    return {seq: round(auc(log_likelihood_ratio(signs, model, seq), signs["lvi"]), 4) for seq in SEQUENCE_SIGNS}


# --- the bound per model input -----------------------------------------------------------
#
# An input key names what a model reads: "t2", "dce_phaseK" (one temporal position of the
# dynamic series, 1 = pre-contrast), "dce_dynamic" (several phases, or a subtraction), and
# fused keys joined by "+" (e.g. "t2+dce_phase2"). The bound of an input is the AUC of the
# true posterior given the signs that input renders, so it is an upper bound for any model
# reading those images, and exactly 0.5 in null mode.

PAPER_INPUTS = ("t2", "dce_phase2", "dce_dynamic", "t2+dce_phase2", "t2+dce_dynamic")
_SINGLE_PHASE_SIGNS = ("margin", "log_diameter", "vessel")  # rendered in every phase
_CONTRAST_SIGNS = ("rim",)  # need enhancement: absent from the pre-contrast phase
PHASE_INTERVAL_MIN = 1.5  # both acquisition presets (acquisition.PRESETS)


def input_key(sequence, dce_phase=2, dynamic=False):
    """The input key of a model trained on ``sequence`` ("t2", "dce", "t2+dce")."""
    dce = "dce_dynamic" if dynamic else "dce_phase{}".format(int(dce_phase))
    return "+".join("t2" if part == "t2" else dce for part in sequence.split("+"))


def visible_signs(key):
    """(latent signs the input renders in full, the DCE phase it reads alone or None)."""
    signs, phase = [], None
    for part in key.split("+"):
        if part == "t2":
            signs += SEQUENCE_SIGNS["t2"]
        elif part == "dce_dynamic":
            signs += SEQUENCE_SIGNS["dce"]
        elif part.startswith("dce_phase") and part[len("dce_phase"):].isdigit() and int(part[len("dce_phase"):]) >= 1:
            phase = int(part[len("dce_phase"):])
            signs += _SINGLE_PHASE_SIGNS + (_CONTRAST_SIGNS if phase >= 2 else ())
        else:
            raise ValueError("unknown model input {!r} (t2, dce_phaseK, dce_dynamic, joined by '+')".format(key))
    if phase is not None and "kep" in signs:
        phase = None  # a dynamic part shows kep itself; the single phase adds nothing more
    return tuple(dict.fromkeys(signs)), phase


def _log_curve(t_min, kep):
    """log of the tumour's enhancement at ``t_min`` per unit amplitude, as rendered."""
    return np.log(tumour_enhancement(t_min, np.maximum(kep, KEP_FLOOR), 1.0))


def single_phase_llr(kep, amplitude, t_min, model):
    """LLR of what one phase shows of kep: y = log(amplitude x curve(kep, t)), amplitude unseen.

    p(y | class) = integral over kep of N(kep; class mean, sd) * p_log_amplitude(y - log curve),
    a 1D integral done on a grid (the curve is not monotone in kep for very fast wash-out, so
    no change of variables); the LLR is interpolated at each case's y.
    """
    kep = np.asarray(kep, dtype=float)
    if model.null or t_min <= 0:
        return np.zeros(kep.shape)
    y = np.log(np.asarray(amplitude, dtype=float)) + _log_curve(t_min, kep)
    lo, hi = (math.log(v) for v in TUMOUR_ENHANCEMENT_RANGE)
    means, sd = class_parameters(model)["kep"], model.kep_sd
    k = np.linspace(min(means) - 8 * sd, max(means) + 8 * sd, 6001)
    curve = _log_curve(t_min, k)
    y_grid = np.linspace(min(y.min(), curve.min() + lo), max(y.max(), curve.max() + hi), 1501)
    log_density = []
    for mean in means:
        w = np.exp(-0.5 * ((k - mean) / sd) ** 2)
        density = np.zeros(len(y_grid))
        for start in range(0, len(y_grid), 250):  # chunks keep the (y, kep) matrix small
            u = y_grid[start:start + 250, None] - curve[None, :]
            box = np.where((u >= lo) & (u <= hi), np.exp(u), 0.0)  # density of log(uniform amplitude)
            density[start:start + 250] = box @ w
        log_density.append(np.log(np.maximum(density / w.sum(), 1e-300)))
    return np.interp(y, y_grid, log_density[1] - log_density[0])


def best_auc_for_input(model, key, n_draws=200_000, seed=12345, phase_interval_min=PHASE_INTERVAL_MIN):
    """Monte-Carlo AUC of the true posterior given what input ``key`` renders (see module doc)."""
    signs_shown, phase = visible_signs(key)
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0xB357])))
    signs = sample_signs(rng, n_draws, model)
    total = _llr_of(signs, model, signs_shown)
    if phase is not None:
        amplitude = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0xA3F1]))).uniform(
            *TUMOUR_ENHANCEMENT_RANGE, n_draws)
        total = total + single_phase_llr(signs["kep"], amplitude, (phase - 1) * phase_interval_min, model)
    return round(auc(total, signs["lvi"]), 4)


def best_auc_by_input(model, keys=PAPER_INPUTS, **kwargs):
    return {key: best_auc_for_input(model, key, **kwargs) for key in keys}
