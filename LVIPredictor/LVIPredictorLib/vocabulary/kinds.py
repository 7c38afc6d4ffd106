"""Model kinds: what sort of thing a model card describes, and how each sort behaves.

- ``network``: a pixel network (the study's three, or a registered one) — crops in, a logit
  out, a Grad-CAM heat-map on request, exportable to other runtimes.
- ``radiomics``: the radiomics baseline — a feature vector of the whole VOI in, a logistic
  regression out; no pixels, so no heat-map.
- ``late_fusion``: several trained models, each reading its own series, averaged — no weights
  of its own; its heat-maps are its members'.
- ``clinical_combined``: an imaging model's probability and the case's clinical values in one
  logistic regression (``LVIPredictorLib.clinical``); its heat-map is its imaging model's.

Code asks the kind (``kind_of(card).heatmap``) instead of testing architecture names.
"""

from LVIPredictorLib.vocabulary import architectures

LATE_FUSION = "late_fusion"
# A logistic regression on clinical columns and one imaging model's probability (LVIPredictorLib.clinical).
COMBINED = "clinical_combined"


class ModelKind(object):
    def __init__(self, name, label, heatmap, no_heatmap_reason=None, has_network=True, needs_clinical=False):
        self.name = name
        self.label = label
        self.heatmap = heatmap
        self.no_heatmap_reason = no_heatmap_reason
        self.has_network = has_network  # an nn.Module of its own, stored in a safetensors file
        # Reads the case's clinical values besides its series: run only when they are given, never
        # picked among "every model that fits" a case that has none.
        self.needs_clinical = needs_clinical

    def __repr__(self):
        return "ModelKind({!r})".format(self.name)


KINDS = {
    architectures.NETWORK: ModelKind(architectures.NETWORK, "network", heatmap=True),
    architectures.RADIOMICS: ModelKind(
        architectures.RADIOMICS, "radiomics + logistic regression", heatmap=False,
        no_heatmap_reason="no heat-map for the radiomics model: it reads features of the whole VOI, not pixels"),
    LATE_FUSION: ModelKind(LATE_FUSION, "late fusion (networks averaged)", heatmap=True, has_network=False),
    COMBINED: ModelKind(COMBINED, "clinical + imaging (logistic regression)", heatmap=True, has_network=False,
                        needs_clinical=True),
}


def kind_name(architecture):
    # type: (str) -> str
    if architecture in (LATE_FUSION, COMBINED):
        return architecture
    return architectures.get(architecture).kind


def kind_of(card):
    # type: (dict) -> ModelKind
    """The kind of a model card (by its ``architecture`` field)."""
    return KINDS[kind_name(card.get("architecture"))]


def is_late_fusion(card):
    # type: (dict) -> bool
    return isinstance(card, dict) and card.get("architecture") == LATE_FUSION


def is_combined(card):
    # type: (dict) -> bool
    return isinstance(card, dict) and card.get("architecture") == COMBINED


def needs_clinical(card):
    # type: (dict) -> bool
    """Whether a card (or a catalog entry: it has the card's ``architecture``) reads clinical data."""
    return kind_of(card).needs_clinical


# Names shown where a person picks an architecture (the Slicer panel): the registry's networks and
# baseline, then the late fusion. None = every model that fits the given series.
def display_choices():
    choices = [("All matching models", None)]
    choices += [(a.short_label, a.name) for a in architectures.REGISTRY.values()]
    choices.append(("Late fusion (networks averaged)", LATE_FUSION))
    choices.append(("Clinical + imaging (combined)", COMBINED))
    return choices
