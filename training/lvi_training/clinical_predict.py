"""``lvi predict --clinical``: the case's clinical values for combined (clinical + imaging) cards.

The combined card itself runs in the prediction service like any card (LVIPredictorLib.service,
model kind ``clinical_combined``); this module only reads what the command line gives and checks
that it goes with the chosen cards, before any image is read.
"""

import csv
from pathlib import Path

from LVIPredictorLib import clinical
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.service.case import clinical_given
from LVIPredictorLib.vocabulary import kinds, sequences


def check_cards(cards, args):
    """Refuse --clinical without a combined card or with --cohort (whose cases bring their own values),
    and a combined card without --clinical; parse the values now so that a bad one stops the command
    before any image is read."""
    combined = [card for card in cards if kinds.is_combined(card)]
    if getattr(args, "clinical", None) and not combined:
        raise InputError("--clinical", "no chosen model is a combined (clinical + imaging) model card; clinical data "
                                       "would not be used")
    if getattr(args, "cohort", None):
        if getattr(args, "clinical", None):
            raise InputError("--clinical", "with --cohort each case's clinical values come from the cohort's columns "
                                           "({})".format(", ".join(clinical.NAMES)))
        return
    for card in combined:
        values = clinical_input(getattr(args, "clinical", None))
        clinical.parse_clinical(values, card)  # a value outside its range is named before "none given"
        if not clinical_given(values):
            raise InputError(card["_card_path"], "model {} needs clinical data (none given): --clinical {}".format(
                card["model_id"], ",".join(n + "=..." for n in clinical.card_fields(card))))


def unread_columns(values, source="--clinical"):
    """Columns of a ``--clinical`` CSV row that are neither clinical columns nor a cohort's own (case_id,
    image paths, ...), to be named in a note. One that looks like a clinical column ("Ki-67", "tumor_size_mm")
    is refused instead: its value would otherwise be replaced by the card's fill value."""
    if not isinstance(values, dict):
        return []
    other = [k for k in values if k and k not in clinical.FIELDS and k not in sequences.COHORT_COLUMNS]
    for column in other:
        meant = clinical.resembled(column)
        if meant:
            raise InputError(source, "column {!r} looks like the clinical column {}: name it exactly so (its value "
                                     "would not be read)".format(column, meant))
    return other


def clinical_input(value):
    """``--clinical``: NAME=VALUE pairs, or a CSV file holding a header and exactly one row."""
    if value is None:
        return None
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
