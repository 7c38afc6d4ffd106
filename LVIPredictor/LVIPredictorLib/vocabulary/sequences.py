"""The MRI series a model can read: one registry entry per sequence, fused inputs named by "+".

The study trains on one sequence at a time; its discussion names multi-sequence fusion as the
next step (docs/design.md §1). A fused model takes one input channel per sequence, in the order
of :func:`channels`, each resampled onto the same crop grid. That grid, and for 2D models the
slice planes, follow the DCE series and its VOI (:data:`GRID_REFERENCE`): DCE has the thin
slices (~1.5 mm against ~4 mm for T2), so T2 is interpolated onto DCE planes rather than DCE
being thinned to T2's.

Adding a sequence (DWI, the literature's next input) is one :class:`Sequence` entry in
:data:`REGISTRY`: the CLI's per-series options, the cohort's ``<name>_image``/``<name>_mask``
columns, labels and series-description hints all read it.
"""

from collections import OrderedDict
from typing import Optional, Tuple

# The study's "2nd phase" of the dynamic series: the first acquisition after contrast, counting
# the pre-contrast one as phase 1 (docs/design.md §5). The one place this default is written.
DEFAULT_DCE_PHASE = 2


class Sequence(object):
    """One MRI sequence: its short name (cohort columns, CLI, cards), its label for people,
    words that betray it in a DICOM SeriesDescription, and whether it is a dynamic series whose
    phase a model must choose (then ``default_phase`` is that choice)."""

    def __init__(self, name, label, description_hints, dynamic=False, default_phase=None):
        # type: (str, str, Tuple[str, ...], bool, Optional[int]) -> None
        self.name = name
        self.label = label
        self.description_hints = tuple(description_hints)
        self.dynamic = dynamic
        self.default_phase = default_phase

    def __repr__(self):
        return "Sequence({!r})".format(self.name)


REGISTRY = OrderedDict((s.name, s) for s in (
    # Siemens/GE/Philips habits in SeriesDescription.
    Sequence("t2", "FS-T2WI", ("t2", "stir", "tirm", "tse", "fse")),
    Sequence("dce", "DCE", ("dyn", "vibe", "fl3d", "t1", "dce", "thrive", "lava", "vibrant", "sub"),
             dynamic=True, default_phase=DEFAULT_DCE_PHASE),
))

SEPARATOR = "+"
SEQUENCES = tuple(REGISTRY)
FUSED = SEPARATOR.join(SEQUENCES)  # "t2+dce": every registered series as input channels
ALL = SEQUENCES + (FUSED,)
GRID_REFERENCE = "dce"
LABELS = dict([(name, s.label) for name, s in REGISTRY.items()] + [(FUSED, " + ".join(
    s.label for s in REGISTRY.values()))])


def channels(sequence):
    # type: (str) -> tuple
    """The single sequences behind ``sequence``, in input-channel order."""
    names = tuple(str(sequence).split(SEPARATOR)) if sequence else ()
    if names and all(n in REGISTRY for n in names) and len(set(names)) == len(names):
        return names
    raise ValueError("unknown sequence {!r}; choose one of {}".format(sequence, ", ".join(ALL)))


def label(sequence):
    # type: (str) -> str
    return " + ".join(REGISTRY[n].label for n in channels(sequence))


def grid_reference(sequence):
    # type: (str) -> str
    """The sequence whose image grid and VOI place the crop (itself for a single sequence)."""
    names = channels(sequence)
    return GRID_REFERENCE if GRID_REFERENCE in names else names[0]


def dynamic_channels(sequence):
    # type: (str) -> tuple
    """The dynamic series among ``sequence``'s channels (those whose phase a model chooses)."""
    return tuple(n for n in channels(sequence) if REGISTRY[n].dynamic)


def reads_dce(sequence):
    # type: (str) -> bool
    """True when the input includes DCE, i.e. a DCE phase choice applies."""
    return "dce" in channels(sequence)


def card_phase(card):
    # type: (dict) -> int
    """The DCE phase a model card was trained on (older cards without the field: the default)."""
    return int(card.get("dce_phase") or DEFAULT_DCE_PHASE)


def description_warning(series_description, sequence):
    # type: (Optional[str], str) -> Optional[str]
    """A warning when a series description looks like another sequence than ``sequence``."""
    if not series_description:
        return None
    text = series_description.lower()
    own = REGISTRY[sequence]
    if any(w in text for w in own.description_hints):
        return None
    looks_like = [s for s in REGISTRY.values() if s.name != sequence and any(w in text for w in s.description_hints)]
    if looks_like:
        return "series '{}' looks like {} but this model was trained on {}".format(
            series_description, " or ".join(s.label for s in looks_like), own.label)
    return None


def guess_from_description(series_description):
    # type: (Optional[str]) -> Optional[str]
    """The one sequence a description points at unambiguously, else None."""
    text = (series_description or "").lower()
    hits = [s.name for s in REGISTRY.values() if any(w in text for w in s.description_hints)]
    return hits[0] if len(hits) == 1 else None
