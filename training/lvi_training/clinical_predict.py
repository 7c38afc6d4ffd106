"""The ``lvi predict --clinical`` hook: a combined (clinical + imaging) card runs its imaging model like
any card, then LVIPredictorLib.clinical turns that probability and the clinical values into its own.

Kept apart from cmd_predict.py (two calls there) because prediction is being moved into a library
service; the service can call ``LVIPredictorLib.clinical.predict`` the same way.
"""

import csv
from pathlib import Path

from LVIPredictorLib import clinical, weights
from LVIPredictorLib.errors import InputError

from . import atomic

COMBINED_FILE = "combined.json"


def load_cards(paths, args):
    """The cards to run for ``paths`` (see :func:`load_card`); --clinical without a combined card is refused."""
    cards = [load_card(path, args) for path in paths]
    if getattr(args, "clinical", None) and not any("_combined" in card for card in cards):
        raise InputError("--clinical", "no chosen model is a combined (clinical + imaging) model card; clinical data "
                                       "would not be used")
    return cards


def load_card(path, args):
    """The card to run for ``path``: an imaging card as it is; for a combined card, its imaging model's card
    carrying the combined card (``_combined``), whose clinical values are parsed now so bad ones stop the
    command before any image is read."""
    if not clinical.is_clinical_card_file(path):
        return weights.load_card(path)
    combined, imaging = clinical.load_clinical_card(path)
    if imaging is None:
        raise InputError(str(path), "reads clinical data only; `lvi predict` runs models that read images (use "
                                    "a combined card)")
    if getattr(args, "cohort", None):
        raise InputError(str(path), "a combined model is predicted one case at a time, with --clinical")
    if not getattr(args, "clinical", None):
        raise InputError(str(path), "model {} needs clinical data: --clinical {}".format(
            combined["model_id"], ",".join(n + "=..." for n in clinical.card_fields(combined))))
    imaging = dict(imaging, _combined=combined, _clinical_values=clinical.parse_clinical(
        _clinical_input(args.clinical), combined))
    return imaging


def _clinical_input(value):
    """``--clinical``: NAME=VALUE pairs, or a CSV file holding a header and exactly one row."""
    path = Path(value)
    if value.lower().endswith(".csv"):
        if not path.is_file():
            raise InputError(value, "no such CSV file")
        with open(str(path), newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        if len(rows) != 1:
            raise InputError(value, "holds {} rows; --clinical reads a CSV with a header and exactly one row".format(
                len(rows)))
        return {(k or "").strip(): (v or "").strip() for k, v in rows[0].items()}
    return value


def report_combined(cards, predictions, args):
    """Print each combined card's probability and write them to OUT/combined.json (nothing without one)."""
    if getattr(args, "clinical", None) and not any("_combined" in card for card in cards):
        print("warning: --clinical was not used: no chosen model is a combined (clinical + imaging) model")
    results = []
    by_model = {p.model_id: p for p in predictions}
    for card in cards:
        combined = card.get("_combined")
        if combined is None:
            continue
        prediction = by_model[card["model_id"]]
        result = clinical.predict(combined, card["_clinical_values"], prediction.probability)
        results.append(dict(result, model_id=combined["model_id"], imaging_model_id=prediction.model_id,
                            imaging_probability=prediction.probability, clinical=card["_clinical_values"],
                            imputation_rule=combined["clinical"]["imputation"]["rule"],
                            demo=bool(combined.get("demo"))))
        print("{:<30} {:>11.3f} {:>6} {:>9.3f}   (clinical + {} probability {:.3f})".format(
            combined["model_id"], result["probability"], "LVI+" if result["label"] else "LVI-", result["threshold"],
            prediction.model_id, prediction.probability))
        if result["imputed"]:
            print("  imputed (missing): {}".format(", ".join("{} = {:g}".format(k, v)
                                                             for k, v in result["imputed"].items())))
    if results:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        atomic.save_json({"combined": results}, Path(args.out) / COMBINED_FILE)
