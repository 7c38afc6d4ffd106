"""What a reader is told about one prediction, in words: the figure and the Slicer panel say the same.

- :func:`verdict`: the probability against the model's own frozen threshold in one sentence, so
  "0.418, LVI+" never reads as a contradiction of a 0.5 cut-off the reader assumed.
- :func:`chance_banner`: a warning when the model's own out-of-fold AUC confidence interval
  (the card's ``metrics``) includes 0.5: nothing shows it does better than a coin.
- :func:`basis`: what else the probability rests on: each late-fusion member's probability, or a
  combined model's imaging probability and the clinical values it read (missing ones and their fill).
"""

from typing import List, Optional, Sequence, Tuple


def verdict(probability, threshold, label):
    # type: (float, float, int) -> str
    """E.g. "0.418 is above this model's threshold 0.385: LVI+"."""
    if probability > threshold:
        relation = "above"
    elif probability == threshold:
        relation = "at"
    else:
        relation = "below"
    return "{:.3f} is {} this model's threshold {:.3f}: {}".format(
        probability, relation, threshold, "LVI+" if label else "LVI-")


def chance_banner(model_id, auc_ci):
    # type: (str, Optional[Sequence[float]]) -> Optional[str]
    """The warning for a model whose own AUC CI includes 0.5, else None."""
    if auc_ci is None or not auc_ci[0] <= 0.5 <= auc_ci[1]:
        return None
    return ("{}: its own out-of-fold AUC 95% CI {:.2f}-{:.2f} includes 0.5, so it has not been shown to "
            "predict LVI better than chance; do not rely on this result").format(model_id, auc_ci[0], auc_ci[1])


def member_role(prediction):
    # type: (object) -> str
    """What the models under ``member_probabilities`` are to the prediction: a combined model's imaging
    model, else a late fusion's members."""
    return "imaging model" if getattr(prediction, "clinical", None) is not None else "member"


def clinical_words(prediction):
    # type: (object) -> List[Tuple[str, str]]
    """[(column, its value in words)] of a combined prediction's clinical values ([] otherwise); a value
    not given says what the card's rule filled in."""
    clinical = getattr(prediction, "clinical", None)
    if clinical is None:
        return []
    imputed = clinical.get("imputed") or {}
    return [(name, "not recorded, filled with {:g}".format(imputed[name]) if name in imputed
             else "{:g}".format(value)) for name, value in clinical["values"].items()]


def basis(prediction):
    # type: (object) -> List[str]
    """Lines under a verdict: the models and values the probability was computed from."""
    lines = ["{} {}: {:.3f}".format(member_role(prediction), member, probability)
             for member, probability in prediction.member_probabilities.items()]
    words = clinical_words(prediction)
    if words:
        lines.append("clinical values: " + ", ".join("{} {}".format(name, text) for name, text in words))
    return lines
