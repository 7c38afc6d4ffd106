"""The one result record of a prediction, and its serialisations.

``inference.Prediction`` is the record. :data:`COLUMNS` are its flat fields, in one order, for
every table that lists predictions — the Slicer results table and ``lvi predict --cohort``'s
predictions.csv — and :func:`payload` is the JSON of ``result.json``. The DICOM SR
(``dicom.sr_seg``) reads the same record.
"""

from collections import OrderedDict

def based_on(prediction):
    """What else the probability was computed from, in one cell: each late-fusion member's (or a combined
    model's imaging model's) probability, and a combined model's clinical values (missing = not given)."""
    parts = ["{}={:.6f}".format(model, probability) for model, probability in prediction.member_probabilities.items()]
    if prediction.clinical is not None:
        parts += ["{}={}".format(name, "missing" if value is None else "{:g}".format(value))
                  for name, value in prediction.clinical["values"].items()]
    return "; ".join(parts)


# (column, how a Prediction fills it)
COLUMNS = (
    ("model_id", lambda p: p.model_id),
    ("architecture", lambda p: p.architecture),
    ("sequence", lambda p: p.sequence),
    ("probability", lambda p: "{:.6f}".format(p.probability)),
    ("class", lambda p: "LVI+" if p.label else "LVI-"),
    ("threshold", lambda p: "{:.6f}".format(p.threshold)),
    ("dce_phase", lambda p: "" if p.dce_phase is None else str(p.dce_phase)),
    ("demo", lambda p: "yes" if p.demo else "no"),
    ("device", lambda p: p.device),
    ("weights_sha256", lambda p: p.weights_sha256),
    ("based_on", based_on),
    ("warnings", lambda p: " | ".join(p.warnings)),
)
COLUMN_NAMES = tuple(name for name, _fill in COLUMNS)


def row(prediction):
    """The flat record of one prediction: {column: text}, in :data:`COLUMNS` order."""
    return OrderedDict((name, fill(prediction)) for name, fill in COLUMNS)


def payload(result, extra_inputs=None):
    """``result.json``: what each series was, and every model's full record."""
    inputs = OrderedDict()
    for name, series in result.inputs.items():
        inputs[name] = OrderedDict([("image", series.image_source), ("mask", series.mask_source),
                                    ("image_info", series.summary), ("series_selection", list(series.selection))])
    inputs.update(extra_inputs or {})
    return {"inputs": inputs, "predictions": [p.to_dict() for p in result.predictions]}
