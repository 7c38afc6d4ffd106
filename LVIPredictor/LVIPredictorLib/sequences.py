"""The MRI inputs a model can be trained on: one sequence, or FS-T2WI and DCE fused as channels.

The study trains on one sequence at a time; its discussion names multi-sequence fusion as
the next step (DESIGN §1-2). A fused model takes one input channel per sequence, in the
order of :func:`channels`, each resampled onto the same crop grid. That grid, and for 2D
models the slice planes, follow the DCE series and its VOI (:data:`GRID_REFERENCE`): DCE
has the thin slices (~1.5 mm against ~4 mm for T2), so T2 is interpolated onto DCE planes
rather than DCE being thinned to T2's.
"""

SEQUENCES = ("t2", "dce")
FUSED = "t2+dce"
ALL = SEQUENCES + (FUSED,)
GRID_REFERENCE = "dce"
LABELS = {"t2": "FS-T2WI", "dce": "DCE", FUSED: "FS-T2WI + DCE"}


def channels(sequence):
    # type: (str) -> tuple
    """The single sequences behind ``sequence``, in input-channel order."""
    if sequence in SEQUENCES:
        return (sequence,)
    if sequence == FUSED:
        return SEQUENCES
    raise ValueError("unknown sequence {!r}; choose one of {}".format(sequence, ", ".join(ALL)))


def grid_reference(sequence):
    # type: (str) -> str
    """The sequence whose image grid and VOI place the crop (itself for a single sequence)."""
    names = channels(sequence)
    return GRID_REFERENCE if GRID_REFERENCE in names else names[0]


def reads_dce(sequence):
    # type: (str) -> bool
    """True when the input includes DCE, i.e. a DCE phase choice applies."""
    return "dce" in channels(sequence)
