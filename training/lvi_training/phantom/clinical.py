"""The phantom's clinical columns (LVIPredictorLib.clinical), drawn from the case's LVI class and signs.

What each column is, given the case's latent signs (phantom.signs) and its class:

- ``tumour_size_mm``: the tumour's nominal diameter (the ``log_diameter`` sign the images render),
  rounded to 1 mm. So size is not new information for a model that reads the images.
- ``peritumoral_edema``: the ``oedema`` sign as rendered on T2 (a perfect read), in ~46 % of LVI+ vs
  ~31 % of LVI- tumours (signs.py, DESIGN §7), i.e. a single-factor AUC of 0.5 + (0.46 - 0.31) / 2 = 0.575.
- ``mri_aln``, ``her2``, ``ki67``: new latent variables, independent of the image signs given the
  class (no image shows them).
- ``age``: drawn as before (mean 57.9, SD 12, 26-91 years: the study's cohort), independent of LVI.

Effect sizes and their sources. The literature was read through this project's search tool
(2026-12-06), which returned abstracts and excerpts, not every paper's table of patient
characteristics; what each number rests on is said below. For a 0/1 factor with rates p+ and p-
the AUC is 0.5 + (p+ - p-) / 2.

- Peritumoral oedema: 45.9 % (28/61) of LVI+ vs 30.6 % (56/183) of LVI- node-negative invasive
  cancers, propensity-matched on age, grade, size and hormone receptors ("Preoperative MRI features
  associated with lymphovascular invasion in node-negative invasive breast cancer: a propensity-
  matched analysis", J Magn Reson Imaging 2017). The phantom: 46 % vs 31 %.
- HER2: single-factor AUC 0.614 (95 % CI 0.544-0.683) for HER2 positivity in 392 patients (Medicine
  2018, PMC6221560); no group difference (p > 0.05) in a 325-patient MRI study of invasive ductal
  cancers (161 LVI+). The phantom takes a weak association between the two: 27 % vs 17 % HER2+
  (AUC 0.55; ~20 % HER2+ overall, the usual share).
- Ki-67: single-factor AUC 0.596 for high Ki-67 (Medicine 2018, as above); Ki-67 >= 20 % more frequent
  in LVI+ in a 280-patient MRI study (Chin J Med Imaging 2025;33(10):1035). The phantom: truncated normal on
  0-100 %, mean 27 vs 20 %, SD 18 -> AUC ~0.59.
- MRI-reported axillary node: an independent predictor of LVI in every MRI study found (BMC Cancer
  2020, 10.1186/s12885-020-6578-0, n = 301; RSNA 2022 abstract, n = 575; p = 0.002 in the 325-patient
  study); none of the excerpts gave its rates by group. The phantom: 47 % vs 25 % suspicious -> AUC
  0.61, the top of the single-factor range, as nodal status is the factor most often retained.
- Size: tumour > 2 cm, single-factor AUC 0.575 (Medicine 2018). The phantom's size is the rendered
  log-diameter of signs.py (17 vs 22.5 mm, SD 0.45) -> AUC ~0.66 as a continuous value: larger than
  the dichotomised literature figure, and kept because the images are drawn from it.
- Together: HER2 + Ki-67 + size AUC 0.670 (0.607-0.734) (Medicine 2018); the phantom 0.69 (all
  recorded). Clinical + imaging models for LVI on MRI: 0.843 (deep learning + clinical, n = 341,
  Cancer Med 2024, PMC10905682), 0.854 (n = 303, 10.1177/15330338251391862), 0.857 (n = 206), 0.888 / 0.856 / 0.853
  (radiomics score + MRI node status + oedema, n = 366, PMC12397653), up to 0.94-0.95 in two 2025
  studies; their clinical or imaging-feature models alone 0.72-0.76. The phantom: all six columns
  0.735 (with the missing cells), clinical + one DCE phase 0.84, at the low end of that range.
(Monte-Carlo, 200,000 draws, seed 12345; the per-column values: ``single_column_auc``, checked by
Testing/Python/test_clinical_columns.py.) The bounds below (``best_auc_*``) are computed from this
model, so whatever the literature's exact values, the "best possible AUC" printed beside a clinical or
combined model is exact for the phantom.

Missing cells are missing completely at random, at the rates in ``MISSING_RATE``.

``signal`` scales every class difference (in logit space for rates) as it does for the signs, and in
null mode the columns follow a hidden class drawn independently of the reported label, so nothing in
them predicts it (bound 0.5). Everything here is drawn from the case's own clinical stream, separate
from the image streams, so adding these columns left every image byte unchanged.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import ndtr

from .contrast import TUMOUR_ENHANCEMENT_RANGE
from .signs import (PHASE_INTERVAL_MIN, _bernoulli_llr, _gaussian_llr, _llr_of, _scaled_means, _scaled_probabilities,
                    _truncated_normal, auc, sample_signs, single_phase_llr, visible_signs)

COLUMNS = ("tumour_size_mm", "mri_aln", "peritumoral_edema", "her2", "ki67")  # age is written by case.py
MISSING_RATE = {"tumour_size_mm": 0.03, "mri_aln": 0.05, "peritumoral_edema": 0.05, "her2": 0.08, "ki67": 0.10}
KI67_RANGE = (0.0, 100.0)
CLINICAL = "clinical"  # the input key of the clinical columns (joined to an imaging key by "+")
# Which latent sign a clinical column reports (the others are latent variables of their own).
SIGN_OF_COLUMN = {"tumour_size_mm": "log_diameter", "peritumoral_edema": "oedema"}


@dataclass(frozen=True)
class ClinicalModel:
    prevalence: float = 0.33
    signal: float = 1.0
    null: bool = False
    aln_p: tuple = (0.25, 0.47)  # (LVI-, LVI+)
    her2_p: tuple = (0.17, 0.27)
    ki67_mean: tuple = (20.0, 27.0)  # percent
    ki67_sd: float = 18.0

    def to_dict(self):
        return asdict(self)

    def parameters(self):
        s = self.signal
        return {"mri_aln": _scaled_probabilities(self.aln_p, s), "her2": _scaled_probabilities(self.her2_p, s),
                "ki67": _scaled_means(self.ki67_mean, s)}


def sample_clinical(rng, signs, model):
    """The clinical columns of one case ({column: value or None}) from its signs and its own stream ``rng``."""
    par = model.parameters()
    hidden = int(rng.random() < model.prevalence) if model.null else int(signs["lvi"])
    values = {
        "tumour_size_mm": int(round(math.exp(signs["log_diameter"]))),
        "peritumoral_edema": int(signs["oedema"]),
        "mri_aln": int(rng.random() < par["mri_aln"][hidden]),
        "her2": int(rng.random() < par["her2"][hidden]),
        "ki67": int(round(float(_truncated_normal(rng, par["ki67"][hidden], model.ki67_sd, *KI67_RANGE)))),
    }
    missing = rng.random(len(COLUMNS))
    return {name: (None if u < MISSING_RATE[name] else values[name]) for name, u in zip(COLUMNS, missing)}


def _sample_many(rng, signs, model):
    """Monte-Carlo draws of the latent clinical variables and missingness for ``signs`` (many cases)."""
    n = len(signs["lvi"])
    par = model.parameters()
    hidden = (rng.random(n) < model.prevalence).astype(int) if model.null else signs["lvi"]
    u = rng.random(n)
    lo, hi = KI67_RANGE
    ki67_mean = np.where(hidden == 1, par["ki67"][1], par["ki67"][0])
    return {"mri_aln": (rng.random(n) < np.where(hidden == 1, par["mri_aln"][1], par["mri_aln"][0])).astype(int),
            "her2": (u < np.where(hidden == 1, par["her2"][1], par["her2"][0])).astype(int),
            "ki67": _truncated_normal(rng, ki67_mean, model.ki67_sd, lo, hi),
            "observed": {name: rng.random(n) >= MISSING_RATE[name] for name in COLUMNS}}


def clinical_llr(latent, model, n):
    """Summed LLR of mri_aln, her2 and ki67 where observed (zero in null mode)."""
    if model.null:
        return np.zeros(n)
    par = model.parameters()
    total = np.where(latent["observed"]["mri_aln"], _bernoulli_llr(latent["mri_aln"], par["mri_aln"]), 0.0)
    total = total + np.where(latent["observed"]["her2"], _bernoulli_llr(latent["her2"], par["her2"]), 0.0)
    lo, hi = KI67_RANGE
    mass = [ndtr((hi - m) / model.ki67_sd) - ndtr((lo - m) / model.ki67_sd) for m in par["ki67"]]
    ki67 = _gaussian_llr(latent["ki67"], par["ki67"], model.ki67_sd) - math.log(mass[1] / mass[0])
    return total + np.where(latent["observed"]["ki67"], ki67, 0.0)


def best_auc_with_clinical(sign_model, clinical_model, imaging_key=None, n_draws=200_000, seed=12345):
    """AUC of the true posterior given the clinical columns (where observed) and, with ``imaging_key``,
    what that imaging input renders: the bound of a clinical or a clinical + imaging model.

    A sign both reported in a column and rendered by the images counts once; a column's missing cell
    hides its sign only when the images do not show it.
    """

    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0xB357])))
    signs = sample_signs(rng, n_draws, sign_model)
    latent = _sample_many(np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0xC1A1]))), signs,
                          clinical_model)
    shown, phase = visible_signs(imaging_key) if imaging_key else ((), None)
    total = _llr_of(signs, sign_model, shown) if shown else np.zeros(n_draws)
    for column, sign in SIGN_OF_COLUMN.items():
        if sign not in shown:
            total = total + np.where(latent["observed"][column], _llr_of(signs, sign_model, (sign,)), 0.0)
    total = total + clinical_llr(latent, clinical_model, n_draws)
    if phase is not None:
        amplitude = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0xA3F1]))).uniform(
            *TUMOUR_ENHANCEMENT_RANGE, n_draws)
        total = total + single_phase_llr(signs["kep"], amplitude, (phase - 1) * PHASE_INTERVAL_MIN, sign_model)
    return round(auc(total, signs["lvi"]), 4)


def single_column_auc(sign_model, clinical_model, column, n_draws=200_000, seed=12345):
    """The AUC of one clinical column alone (observed cases only), for the docstring's claims and tests."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0xB357])))
    signs = sample_signs(rng, n_draws, sign_model)
    latent = _sample_many(np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 0xC1A1]))), signs,
                          clinical_model)
    if column in SIGN_OF_COLUMN:
        score = signs[SIGN_OF_COLUMN[column]]
    else:
        score = latent[column]
    return round(auc(score, signs["lvi"]), 4)


def clinical_key(imaging_key=None):
    return CLINICAL if not imaging_key else CLINICAL + "+" + imaging_key


def split_key(key):
    """(whether the input includes the clinical columns, the imaging part or None)."""
    parts = key.split("+")
    if parts[0] != CLINICAL:
        return False, key
    return True, "+".join(parts[1:]) or None



def model_for(sign_model):
    """The clinical model that goes with a cohort's sign model (same prevalence, signal and null mode)."""
    return ClinicalModel(prevalence=sign_model.prevalence, signal=sign_model.signal, null=sign_model.null)
