"""The DICOM report of a prediction made in Slicer: the SR (TID 1500) and the SEG of the VOI, written on
each series' own DICOM images (from Slicer's DICOM database, or files given)."""

import logging
import os
from typing import Optional

from LVIPredictorLib.errors import InputError
from LVIPredictorLib.vocabulary import sequences
from LVIPredictorSlicerLib import mrml_adapter, scene


def writeDicomReport(predictions, volumeNodes, segmentationNode, segmentId, reportPath,
                     segmentationPath: Optional[str] = None, sourceFiles: Optional[dict] = None,
                     dcePhase: int = sequences.DEFAULT_DCE_PHASE, overwrite: bool = False,
                     voiAuthor: Optional[str] = None) -> dict:
    """See LVIPredictorLogic.writeDicomReport."""
    from LVIPredictorLib.dicom import sr_seg
    from LVIPredictorLib.inputs import readers
    from LVIPredictorLib.service import outputs

    voiAuthor = sr_seg.check_person_name(voiAuthor or None, "voiAuthor")
    volumeNodes = {name: node for name, node in volumeNodes.items() if node is not None}
    used = sorted({n for p in predictions for n in sequences.channels(p.sequence)})
    missing = [sequences.LABELS[n] for n in used if n not in volumeNodes]
    if missing:
        raise InputError(str(reportPath), "the predictions read {}; pass its volume node in volumeNodes".format(
            " and ".join(missing)))
    files, inputs = {}, set()
    for name in used:
        given = (sourceFiles or {}).get(name)
        if given is not None and not isinstance(given, (list, tuple)):
            files[name] = str(given)  # an image file or a series folder
            inputs.add(str(given))
        else:
            files[name] = list(given) if given is not None else scene.dicomFiles(volumeNodes[name])
            # A series folder would take a SEG written into it as one of its slices: its folders count.
            inputs.update(str(p) for p in files[name])
            inputs.update(os.path.dirname(os.path.abspath(str(p))) for p in files[name])
    paths = outputs.dicom_paths(reportPath, segmentationPath, used, overwrite, inputs=sorted(inputs),
                                option="overwrite=True")
    sources = {}
    for name in used:
        volumeNode = volumeNodes[name]
        if not isinstance(files[name], list):
            image, info = readers.read_image_with_info(files[name], dce_phase=dcePhase, sequence=name)
        else:
            image, info = readers.read_dicom_files_with_info(files[name], source=mrml_adapter.nodeSource(volumeNode),
                                                             dce_phase=dcePhase, sequence=name)
        shown = mrml_adapter.imageFromVolume(volumeNode)
        if not readers.same_geometry(shown, image, tol=1e-3):
            raise InputError(mrml_adapter.nodeSource(volumeNode),
                             "does not lie on the grid of the DICOM series {} ({}); the report must reference the "
                             "images the prediction was made on".format(info.series_uid, info.source))
        mask = mrml_adapter.maskFromSegment(segmentationNode, segmentId, volumeNode, shown)
        sources[name] = sr_seg.dicom_source(name, image, mask, info)
    outputs.write_dicom(predictions, sources, paths, overwrite=overwrite, voi_author=voiAuthor)
    logging.info("LVIPredictor: DICOM SR %s%s", reportPath,
                 "".join(", SEG {}".format(path) for path in paths["seg"].values()))
    return {"sr": str(reportPath), "seg": paths["seg"]}
