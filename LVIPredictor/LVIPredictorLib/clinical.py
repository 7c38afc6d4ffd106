"""The optional clinical columns of a cohort, and the clinical / clinical + imaging models that read them.

One place for what the columns mean (DESIGN §4: ``age``, ``tumour_size_mm``, ``mri_aln``,
``peritumoral_edema``, ``her2``, ``ki67``): their unit, type and allowed range, and the rule for a
missing value. Cohort validation, the training code, ``lvi predict --clinical`` and the Slicer
panel read them from here, so a column cannot mean one thing in training and another at prediction.

Missing values: an empty cell (or an absent key) is missing, never zero. A model trained on these
columns fills a missing value with the training cases' median (continuous columns) or most frequent
value (0/1 columns, ties to 0) and adds a 0/1 "missing" indicator per column, so the model can learn
that a value was not recorded; the fill values sit in the model card, chosen on training cases only.

A clinical model card holds a plain logistic regression on those features (and, for a combined
model, the logit of an imaging model's probability): coefficients on the raw values, so prediction
needs no numerical library beyond ``math``. Python 3.9 syntax: the Slicer panel imports this.
"""

import math
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Union

from .errors import InputError, WeightsError


def is_missing(cell):
    # type: (object) -> bool
    """Whether a cell (or --clinical value) says "not recorded": empty, None, NA, NaN or "none"."""
    return cell is None or str(cell).strip().lower() in ("", "na", "nan", "none")


class ClinicalField(object):
    """One clinical column: name, unit, ``binary`` (0/1) or ``continuous`` with an allowed range."""

    def __init__(self, name, unit, kind, low, high, description):
        self.name = name
        self.unit = unit
        self.kind = kind
        self.low = low
        self.high = high
        self.description = description

    def to_dict(self):
        return {"name": self.name, "unit": self.unit, "type": self.kind, "allowed": self.allowed_words(),
                "min": self.low, "max": self.high, "description": self.description}

    def allowed_words(self):
        if self.kind == "binary":
            return "0 or 1"
        return "{:g} to {:g} {}".format(self.low, self.high, self.unit)

    def parse(self, cell, source=None):
        """The value of a cell (str or number) as a float; None when the cell is empty (missing)."""
        if is_missing(cell):
            return None
        text = str(cell).strip()
        try:
            value = float(text)
        except ValueError:
            raise InputError(source, "{} = {!r} is not a number (allowed: {}; leave the cell empty when "
                                     "unknown)".format(self.name, text, self.allowed_words()))
        if not math.isfinite(value) or (self.kind == "binary" and value not in (0.0, 1.0)) or \
                not self.low <= value <= self.high:
            raise InputError(source, "{} = {} is outside the allowed values ({})".format(
                self.name, text, self.allowed_words()))
        return value


FIELDS = OrderedDict((f.name, f) for f in (
    ClinicalField("age", "years", "continuous", 15.0, 110.0, "age at MRI"),
    ClinicalField("tumour_size_mm", "mm", "continuous", 1.0, 200.0, "largest tumour diameter measured on MRI"),
    ClinicalField("mri_aln", "0/1", "binary", 0.0, 1.0, "axillary lymph node reported suspicious on MRI"),
    ClinicalField("peritumoral_edema", "0/1", "binary", 0.0, 1.0, "peritumoral oedema as read on T2"),
    ClinicalField("her2", "0/1", "binary", 0.0, 1.0, "HER2 positive (IHC 3+ or ISH amplified)"),
    ClinicalField("ki67", "%", "continuous", 0.0, 100.0, "Ki-67 index, percent of tumour nuclei"),
))
NAMES = tuple(FIELDS)
MISSING_SUFFIX = "_missing"
IMAGING_FEATURE = "imaging_logit"
MISSING_RULE = ("an empty cell is missing (never zero): filled with the training cases' median (continuous) or most "
                "frequent value (0/1, ties to 0), and a 0/1 missing indicator per column enters the model")
CLINICAL_ARCHITECTURES = ("clinical_lr", "clinical_combined")
_EPS = 1e-6


def cohort_columns(header):
    """The clinical columns present in a cohort's header, in the contract's order."""
    return [name for name in NAMES if name in set(header)]


def row_problems(row, source):
    """[(column, sentence)] for every clinical cell of ``row`` (a CSV row mapping) that breaks the contract."""
    problems = []
    for name in NAMES:
        if name in row:
            try:
                FIELDS[name].parse(row[name], source)
            except InputError as exc:
                problems.append((name, exc.problem))
    return problems


def parse_row(row, names=NAMES, source=None):
    """{name: float or None} for ``names`` from a mapping (other keys, e.g. a CSV row's case_id, ignored)."""
    return OrderedDict((name, FIELDS[name].parse(row.get(name), source)) for name in names)


def card_fields(card):
    """The clinical columns a clinical model card reads, in its order."""
    section = card.get("clinical") if isinstance(card, dict) else None
    if not section:
        raise WeightsError(_card_source(card), "is not a clinical model card (no 'clinical' section)")
    return [entry["name"] for entry in section["inputs"]]


def _card_source(card):
    return card.get("_card_path", card.get("model_id")) if isinstance(card, dict) else None


def parse_clinical(text_or_mapping, card=None):
    # type: (Union[str, Mapping[str, object], None], Optional[dict]) -> Dict[str, Optional[float]]
    """{name: value or None (missing)} for the columns ``card`` reads (all columns without a card).

    ``text_or_mapping``: ``"age=61,mri_aln=1,ki67="`` (as ``lvi predict --clinical`` takes it; an unknown
    name is refused, an empty value is missing) or a mapping such as a cohort CSV row (keys that are not
    clinical columns are ignored). A value outside its column's allowed range is refused naming the column.
    """
    names = card_fields(card) if card is not None else list(NAMES)
    source = "--clinical" if isinstance(text_or_mapping, str) else _card_source(card)
    if text_or_mapping is None:
        mapping = {}
    elif isinstance(text_or_mapping, str):
        mapping = {}
        for part in [p for p in text_or_mapping.split(",") if p.strip()]:
            if "=" not in part:
                raise InputError(source, "{!r} is not NAME=VALUE (clinical columns: {})".format(
                    part.strip(), ", ".join(NAMES)))
            key, value = (s.strip() for s in part.split("=", 1))
            if key not in FIELDS:
                raise InputError(source, "unknown clinical column {!r}; the columns are {}".format(
                    key, ", ".join(NAMES)))
            if key in mapping:
                raise InputError(source, "{} is given twice".format(key))
            mapping[key] = value
    else:
        mapping = dict(text_or_mapping)
    return parse_row(mapping, names, source)


# --- the features a clinical model reads ------------------------------------------------------


def feature_names(names, with_imaging=False):
    """Value columns, then one missing indicator per column, then the imaging logit (combined models)."""
    return list(names) + [n + MISSING_SUFFIX for n in names] + ([IMAGING_FEATURE] if with_imaging else [])


def imaging_logit(probability):
    p = min(max(float(probability), _EPS), 1.0 - _EPS)
    return math.log(p / (1.0 - p))


def feature_row(values, fill, names, imaging_probability=None):
    """(feature vector, names of the columns that were filled) for one case."""
    filled = [n for n in names if values.get(n) is None]
    row = [float(fill[n]) if values.get(n) is None else float(values[n]) for n in names]
    row += [1.0 if n in filled else 0.0 for n in names]
    if imaging_probability is not None:
        row.append(imaging_logit(imaging_probability))
    return row, filled


def fill_values(columns, names):
    """The imputation fill per column from training cases (``columns``: {name: [value or None, ...]})."""
    fill = OrderedDict()
    for name in names:
        seen = sorted(v for v in columns[name] if v is not None)
        if not seen:
            raise InputError(None, "clinical column {} has no value in the training cases; it cannot be "
                                   "imputed (drop the column or record it)".format(name))
        if FIELDS[name].kind == "binary":
            ones = sum(1 for v in seen if v == 1.0)
            fill[name] = 1.0 if ones > len(seen) - ones else 0.0
        else:
            mid = len(seen) // 2
            fill[name] = seen[mid] if len(seen) % 2 else 0.5 * (seen[mid - 1] + seen[mid])
    return fill


def card_section(names, fill, coefficients, intercept, with_imaging):
    """The card's ``clinical`` section: inputs with units and allowed values, imputation, the fitted model."""
    features = feature_names(names, with_imaging)
    if len(coefficients) != len(features):
        raise ValueError("{} coefficients for {} features".format(len(coefficients), len(features)))
    return {"inputs": [FIELDS[n].to_dict() for n in names],
            "imputation": {"rule": MISSING_RULE, "fill": {n: float(fill[n]) for n in names}},
            "model": "logistic regression on the raw features (standardisation folded into the coefficients)",
            "features": features, "coefficients": [float(c) for c in coefficients], "intercept": float(intercept),
            "imaging_feature": ("logit of the imaging model's probability (clipped to [1e-6, 1 - 1e-6])"
                                if with_imaging else None)}


def predict(card, values, imaging_probability=None):
    """The probability of a clinical (``clinical_lr``) or combined (``clinical_combined``) card for one case.

    ``values``: from :func:`parse_clinical`; missing ones are filled by the card's stated rule and named
    in the result. A combined card needs ``imaging_probability`` (its imaging model's probability for
    the same case). Returns {"probability", "label", "threshold", "imputed", "contributions"}.
    """
    section = card.get("clinical") or {}
    names = card_fields(card)
    with_imaging = IMAGING_FEATURE in section["features"]
    if with_imaging and imaging_probability is None:
        raise InputError(_card_source(card), "model {} combines clinical data with an imaging model's probability; "
                                             "none was given".format(card.get("model_id")))
    if not with_imaging and imaging_probability is not None:
        raise InputError(_card_source(card), "model {} reads clinical data only".format(card.get("model_id")))
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise InputError(_card_source(card), "model {} does not read {}".format(card.get("model_id"),
                                                                                ", ".join(unknown)))
    fill = section["imputation"]["fill"]
    row, filled = feature_row(values, fill, names, imaging_probability if with_imaging else None)
    contributions = OrderedDict((f, c * x) for f, c, x in zip(section["features"], section["coefficients"], row))
    z = section["intercept"] + sum(contributions.values())
    probability = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
    threshold = float(card["threshold"])
    return {"probability": probability, "label": int(probability >= threshold), "threshold": threshold,
            "imputed": {n: fill[n] for n in filled}, "contributions": dict(contributions)}


def resembled(column):
    # type: (str) -> Optional[str]
    """The clinical column a differently spelt one stands for ("Ki-67" -> ki67, "tumor_size_mm" ->
    tumour_size_mm), else None: such a column would be ignored and its values taken as missing."""
    import difflib
    import re

    if column in FIELDS:
        return None
    squeezed = {re.sub(r"[^a-z0-9]", "", name): name for name in NAMES}
    close = difflib.get_close_matches(re.sub(r"[^a-z0-9]", "", str(column).lower()), list(squeezed), n=1, cutoff=0.8)
    return squeezed[close[0]] if close else None


def values_from_case_json(path):
    # type: (object) -> Dict[str, object]
    """The clinical values a case description (a phantom's or the sample case's ``case.json``) records:
    {column: value, None when not recorded}; the phantom keeps ``age`` beside its ``clinical`` block."""
    import json

    with open(str(path), encoding="utf-8") as f:
        description = json.load(f)
    values = dict(description.get("clinical") or {})
    if "age" in description:
        values.setdefault("age", description["age"])
    return OrderedDict((name, values.get(name)) for name in NAMES)


def is_clinical_card(card):
    return isinstance(card, dict) and card.get("architecture") in CLINICAL_ARCHITECTURES


def describe_inputs(card):
    # type: (dict) -> List[str]
    """One line per clinical input of a card, for a panel or ``lvi info``: name, unit, allowed values."""
    return ["{name}: {description} ({allowed})".format(**entry) for entry in card["clinical"]["inputs"]]


def column_values(rows, names):
    # type: (Sequence[Mapping[str, Optional[float]]], Sequence[str]) -> Dict[str, list]
    return {n: [r.get(n) for r in rows] for n in names}


# --- clinical model cards -----------------------------------------------------------------------

def card_digest(section, imaging_sha256=None):
    """A clinical card's identity: the SHA-256 of its fitted section (and of its imaging model's weights)."""
    import hashlib
    import json

    text = json.dumps(section, sort_keys=True) + "\n" + (imaging_sha256 or "")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
