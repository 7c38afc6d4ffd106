"""The best AUC a model could reach on a phantom cohort, for the input that model reads.

The phantom generator knows which latent signs drive LVI and which of them each input renders
(``phantom.signs.best_auc_for_input``): a model that reads one DCE phase cannot see kep apart
from the per-case enhancement amplitude, and one that reads FS-T2WI sees no enhancement at
all. Cards and tables put this bound beside the measured AUC, so "0.70" can be read as
"0.70 of a possible 0.76". Cohorts that are not phantoms have no such bound (None).

Clinical inputs (``phantom.clinical``): ``clinical`` is the clinical columns alone, ``clinical+KEY``
the clinical columns with what imaging input KEY renders (a combined model's bound); a cohort
written before the generator had clinical columns has no clinical bound (None).
"""

import functools
import json

from .phantom import clinical as phantom_clinical
from .phantom.signs import SignModel, best_auc_for_input, input_key

from LVIPredictorLib.vocabulary import sequences


def model_input(sequence, dce_phase=2, dynamic=False):
    """The input key (``phantom.signs``) of a model reading ``sequence`` at ``dce_phase``."""
    return input_key(sequence, dce_phase=dce_phase, dynamic=dynamic)


def for_cohort(recipe, key):
    """{"input", "auc", "note"} for a phantom cohort's cohort.json ``recipe``; None otherwise."""
    if not recipe or "sign_model" not in recipe:
        return None
    stored = (recipe.get("best_auc_by_input") or {}).get(key)
    with_clinical, _ = phantom_clinical.split_key(key)
    if with_clinical and "clinical_model" not in recipe:
        return None
    value = stored if stored is not None else _computed(json.dumps(recipe["sign_model"], sort_keys=True), key,
                                                        json.dumps(recipe.get("clinical_model"), sort_keys=True))
    return {"input": key, "auc": value,
            "note": "AUC of the true posterior given the latent signs this input renders (phantom generator); "
                    "no model reading this input can exceed it except by chance"}


def dce_input(config):
    """(DCE phase, whether the whole dynamic series is read) of a run, from its config.json."""
    return sequences.card_phase(config), bool((config.get("preprocessing") or {}).get("dce_dynamic", False))


def for_run(config):
    """The bound for a run's model, from its config.json (None for a non-phantom cohort)."""
    key = model_input(config["sequence"], *dce_input(config))
    return for_cohort(config["cohort"].get("recipe"), key)


def clinical_input(imaging_config=None):
    """The input key of a clinical model, or of a combined one whose imaging run has ``imaging_config``."""
    if imaging_config is None:
        return phantom_clinical.clinical_key()
    return phantom_clinical.clinical_key(model_input(imaging_config["sequence"], *dce_input(imaging_config)))


def _dataclass_from(cls, fields):
    known = set(cls.__dataclass_fields__)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items() if k in known})


@functools.lru_cache(maxsize=64)
def _computed(sign_model_json, key, clinical_model_json="null"):
    model = _dataclass_from(SignModel, json.loads(sign_model_json))
    with_clinical, imaging_key = phantom_clinical.split_key(key)
    if with_clinical:
        clinical_model = _dataclass_from(phantom_clinical.ClinicalModel, json.loads(clinical_model_json))
        return phantom_clinical.best_auc_with_clinical(model, clinical_model, imaging_key)
    return best_auc_for_input(model, key)
