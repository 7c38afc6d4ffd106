"""What a case hands the service: one :class:`SeriesInput` per series, however it was read.

The command line reads files and DICOM folders (:func:`series_from_files`); the Slicer module
converts MRML nodes (LVIPredictorSlicerLib). Either way the service sees the same thing: the
image, its VOI, the names errors use, and — for a dynamic DCE series — a way to read any phase,
so that every model reads the phase its card was trained on.
"""

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import SimpleITK as sitk

from LVIPredictorLib.inputs import readers


@dataclass
class SeriesInput:
    """One series of a case and its VOI.

    ``phase``: the DCE phase ``image`` shows (1 = pre-contrast) when known, else None.
    ``read_phase``: for a dynamic series, ``phase -> (image, note or None)``; every phase lies on
    ``image``'s grid, so ``mask`` serves all of them. None for a static image, which is taken
    as it is (a model trained on another phase is then flagged when ``phase`` says so).
    ``notes``: warnings about this input that every result reading it carries.
    ``info``: the reader's ImageInfo (DICOM outputs need it), when read from files.
    """

    sequence: str
    image: sitk.Image
    mask: sitk.Image
    image_source: str = "image"
    mask_source: str = "VOI mask"
    description: Optional[str] = None
    phase: Optional[int] = None
    read_phase: Optional[Callable[[int], Tuple[sitk.Image, Optional[str]]]] = None
    notes: List[str] = field(default_factory=list)
    info: Optional[object] = None
    # What chose ``phase`` when the user did (e.g. "--dce-phase"), named in the phase warning.
    phase_chosen_by: Optional[str] = None
    summary: Optional[str] = None
    selection: List[str] = field(default_factory=list)


def series_from_files(sequence, image_path, mask_path, dce_phase=None, series_uid=None):
    # type: (str, str, str, Optional[int], Optional[str]) -> SeriesInput
    """Read one series (file or DICOM folder) and its VOI mask.

    A dynamic series is read at ``dce_phase`` when given (the phase every model then reads),
    else at the default phase, and other phases are read on demand for models trained on them.
    """
    from LVIPredictorLib.vocabulary import sequences

    first = dce_phase or sequences.DEFAULT_DCE_PHASE
    image, info = readers.read_image_with_info(image_path, dce_phase=first, series_uid=series_uid,
                                               sequence=sequence)
    mask = readers.read_mask(mask_path, reference=image)
    series = SeriesInput(sequence=sequence, image=image, mask=mask, image_source=str(image_path),
                         mask_source=str(mask_path), description=info.series_description, phase=info.phase,
                         info=info, summary=info.summary(), selection=list(info.selection),
                         notes=list(info.warnings), phase_chosen_by="--dce-phase" if dce_phase else None)
    if info.n_phases > 1 and dce_phase is None:
        cache = {first: image}  # type: Dict[int, sitk.Image]

        def read_phase(phase):
            if phase not in cache:
                cache[phase] = readers.read_image_with_info(image_path, dce_phase=phase, series_uid=series_uid,
                                                            sequence=sequence)[0]
            note = None
            if phase != first:
                note = "{} holds the dynamic series ({} phases); the model reads phase {} (1 = pre-contrast)".format(
                    image_path, info.n_phases, phase)
            return cache[phase], note

        series.read_phase = read_phase
    return series
