"""The panel's "Clinical data" section, without Qt: which fields it shows, what it says, what it reads.

The .ui file holds one row per clinical column of the cohort contract (``LVIPredictorLib.clinical``):
a ``clinicalField_<column>`` line edit for a continuous column, a combo box ("not recorded", "0 (no)",
"1 (yes)") for a 0/1 column, and its ``clinicalLabel_<column>``. The Widget shows the rows the
chosen combined card(s) read and hands :func:`values` to the Logic; the card's own rule fills a
value left "not recorded", and the result names it: nothing becomes zero silently.
"""

from collections import OrderedDict
from typing import Dict, Optional, Sequence

from LVIPredictorLib import clinical

# The binary fields' combo-box items, in .ui order -> the value handed to the Logic ("" = missing).
BINARY_CHOICES = (("not recorded", ""), ("0 (no)", "0"), ("1 (yes)", "1"))


def fieldName(column: str) -> str:
    return "clinicalField_" + column


def labelName(column: str) -> str:
    return "clinicalLabel_" + column


def isBinary(column: str) -> bool:
    return clinical.FIELDS[column].kind == "binary"


def inputs(cards: Sequence[dict]) -> "OrderedDict[str, dict]":
    """{column: the card's declaration (unit, allowed values, description)}, in the cards' order."""
    out = OrderedDict()  # type: OrderedDict[str, dict]
    for card in cards:
        for entry in card["clinical"]["inputs"]:
            out.setdefault(entry["name"], entry)
    return out


def toolTip(entry: dict) -> str:
    return "{} ({}). Leave it {} when it was not recorded.".format(
        entry["description"], entry["allowed"], "'not recorded'" if entry.get("type") == "binary" else "empty")


def introText(cards: Sequence[dict], required: bool) -> str:
    """The section's first line: which model reads the values, and what an empty field means."""
    if not cards:
        return ""
    names = ", ".join(card["model_id"] for card in cards)
    rule = cards[0]["clinical"]["imputation"]["rule"]
    if required:
        use = "{} combines these values with the images; give at least one.".format(names)
    else:
        use = ("With at least one value, {} (clinical + imaging) runs too; with none, only the imaging "
               "models run.".format(names))
    return "{} A value not recorded is missing: {}. The result names every value filled in.".format(use, rule)


def values(texts: Dict[str, str], choices: Dict[str, int]) -> "OrderedDict[str, Optional[str]]":
    """What the shown fields hold, as the Logic's ``clinical`` mapping: line-edit ``texts`` and
    combo-box ``choices`` (item index) by column; "" is missing. Checking the values is the
    library's job (``clinical.parse_clinical``), so the panel and ``lvi predict`` refuse the same."""
    out = OrderedDict()  # type: OrderedDict[str, Optional[str]]
    for column in clinical.NAMES:
        if column in choices:
            out[column] = BINARY_CHOICES[choices[column]][1]
        elif column in texts:
            out[column] = texts[column].strip()
    return out
