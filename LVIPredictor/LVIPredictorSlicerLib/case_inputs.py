"""MRML nodes in, the service's SeriesInputs out: what the Logic hands ``LVIPredictorLib.service``.

A DCE volume that shows one acquisition of a whole dynamic series (the DICOM browser loads DCE
that way: a sequence browser or a multi-volume) lets each model read the phase its card was
trained on, whichever acquisition is on screen; the note says so when the two differ.
"""

import logging
from pathlib import Path

from LVIPredictorLib.errors import InputError
from LVIPredictorLib.outputs import cohort_export
from LVIPredictorLib.service.inputs import SeriesInput
from LVIPredictorLib.vocabulary import sequences
from LVIPredictorSlicerLib import mrml_adapter
from LVIPredictorSlicerLib.scene import seriesDescription


def seriesInputs(volumeNodes, segmentationNode, segmentId):
    """{sequence: SeriesInput} for {sequence: volume node}; one segment serves every series (it is
    resampled onto each series' own grid, nearest neighbour, and the result says so)."""
    segmentName = mrml_adapter.segmentSource(segmentationNode, segmentId)
    inputs = {}
    for name, volumeNode in volumeNodes.items():
        readPhase = _phaseReader(volumeNode) if sequences.REGISTRY[name].dynamic else None
        # Every acquisition of a dynamic series shares one grid, so the default phase also places the mask.
        image = readPhase(sequences.DEFAULT_DCE_PHASE)[0] if readPhase else mrml_adapter.imageFromVolume(volumeNode)
        notes = []
        if mrml_adapter.segmentWasResampled(segmentationNode, segmentId, volumeNode):
            notes.append("the VOI was drawn on another grid and was resampled (nearest neighbour) onto the grid of "
                         "'{}'".format(volumeNode.GetName()))
        mask = mrml_adapter.maskFromSegment(segmentationNode, segmentId, volumeNode, image)
        inputs[name] = SeriesInput(
            sequence=name, image=image, mask=mask,
            image_source=mrml_adapter.nodeSource(volumeNode), mask_source=segmentName,
            description=seriesDescription(volumeNode), read_phase=readPhase, notes=notes)
    return inputs


def _phaseReader(volumeNode):
    """``phase -> (image, note)`` for a volume showing one acquisition of a dynamic series; None otherwise
    (an ordinary volume is taken as the phase the user chose)."""
    dynamic = mrml_adapter.dynamicSeries(volumeNode)
    if dynamic is None:
        return None
    seriesName, shown, count = dynamic
    cache = {}

    def readPhase(phase):
        if phase not in cache:
            cache[phase] = mrml_adapter.imageFromDynamicItem(volumeNode, phase)
        note = None
        if shown is None:
            note = ("'{}' holds the whole dynamic series '{}' ({} acquisitions); the model reads phase {} (1 = "
                    "pre-contrast), so acquisition {} was used".format(volumeNode.GetName(), seriesName, count, phase,
                                                                      phase))
        elif shown != phase:
            note = ("'{}' shows acquisition {} of the dynamic series '{}' ({} acquisitions); the model reads phase {} "
                    "(1 = pre-contrast), so acquisition {} was used".format(
                        volumeNode.GetName(), shown, seriesName, count, phase, phase))
        return cache[phase], note

    return readPhase


def dcePhaseImage(volumeNode, phase):
    """(image, note) of ``phase`` when ``volumeNode`` shows a dynamic series, else (None, None)."""
    readPhase = _phaseReader(volumeNode)
    return readPhase(phase) if readPhase else (None, None)


def importMask(path, segmentationNode, referenceVolumeNode, label=None):
    """See LVIPredictorLogic.importMask."""
    import SimpleITK as sitk

    from LVIPredictorLib.inputs import readers, voi

    reference = mrml_adapter.imageFromVolume(referenceVolumeNode)
    mask = readers.read_mask(path, reference=reference)
    binary, warnings = voi.binary_voi(sitk.GetArrayFromImage(mask), label, source=str(path))
    for warning in warnings:
        logging.warning("LVIPredictor: %s: %s", path, warning)
    binaryImage = sitk.GetImageFromArray(binary)
    binaryImage.CopyInformation(mask)
    name = Path(str(path)).name.split(".")[0] + ("" if label is None else " label {}".format(label))
    return mrml_adapter.importMaskIntoSegmentation(binaryImage, segmentationNode, referenceVolumeNode, name)


def exportCase(cohortDir, caseId, patientId, lvi, segmentationNode, segmentId, t2Volume=None, dceVolume=None,
               dceSegmentId=None, clinical=None, dcePhase=sequences.DEFAULT_DCE_PHASE):
    """See LVIPredictorLogic.exportCaseToCohort."""
    series = {}
    for sequence, volume, voiId in (("t2", t2Volume, segmentId), ("dce", dceVolume, dceSegmentId or segmentId)):
        if volume is None:
            continue
        image, note = dcePhaseImage(volume, dcePhase) if sequence == "dce" else (None, None)
        if note:
            logging.warning("LVIPredictor export of case %s: %s", caseId, note)
        if image is None:
            image = mrml_adapter.imageFromVolume(volume)
        series[sequence] = (image, mrml_adapter.maskFromSegment(segmentationNode, voiId, volume, image))
    if not series:
        raise InputError(str(cohortDir), "select the FS-T2WI and/or DCE series to export.")
    return cohort_export.exportCase(cohortDir, caseId, patientId, lvi, series, clinical=clinical)
