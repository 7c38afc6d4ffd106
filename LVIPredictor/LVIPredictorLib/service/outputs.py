"""What a predicted case leaves behind: result.json + overview.png, and the DICOM SR and SEG.

Paths are checked before any work (an existing file is refused unless ``overwrite``), so a run
that would end in an error does so before minutes of reading and predicting.
"""

import os
from collections import OrderedDict
from typing import Dict, List, Optional

import SimpleITK as sitk

from LVIPredictorLib.dicom import sr_seg
from LVIPredictorLib.inputs import readers
from LVIPredictorLib.outputs import report
from LVIPredictorLib.service import record
from LVIPredictorLib.vocabulary import sequences

REPORT_FILES = ("result.json", "overview.png")


def dicom_paths(sr_path, seg_path, names, overwrite):
    # type: (Optional[str], Optional[str], List[str], bool) -> Dict
    """{"sr": path or None, "seg": {sequence: path}}; existing files refused unless ``overwrite``."""
    seg = sr_seg.segmentation_paths(seg_path, list(names)) if seg_path else {}
    for path in [sr_path] + list(seg.values()):
        if path is not None:
            sr_seg.refuse_existing(path, overwrite)
    return {"sr": sr_path, "seg": seg}


def dicom_sources(inputs, names, label=None):
    """The DICOM series behind each input (checked before any model runs: the images must be DICOM)."""
    return {name: sr_seg.dicom_source(name, inputs[name].image, inputs[name].mask, inputs[name].info, label=label)
            for name in names}


def write_dicom(predictions, sources, paths, overwrite=False):
    """Write the SEG(s), then the SR that references them; returns a line per file written."""
    written, segmentations = [], {}
    for name, path in paths["seg"].items():
        segmentations[name] = sr_seg.write_segmentation(sources[name], path, overwrite=overwrite)
        written.append("{} (DICOM SEG, {} VOI)".format(path, sequences.LABELS[name]))
    if paths["sr"] is not None:
        sr_seg.write_report(predictions, sources, paths["sr"], segmentations=segmentations, overwrite=overwrite)
        written.append("{} (DICOM SR)".format(paths["sr"]))
    return written


def write_case_report(out_dir, result):
    """result.json and overview.png for one case; returns their paths.

    The overview shows every series the models read (FS-T2WI, then DCE), each with its VOI and
    the heat-maps drawn on it.
    """
    read = {n for p in result.predictions for n in sequences.channels(p.sequence)}
    shown = OrderedDict()
    for name in sequences.SEQUENCES:
        series = result.inputs.get(name)
        if series is None or (read and name not in read):
            continue
        mask = series.mask
        if not readers.same_geometry(mask, series.image):
            mask = sitk.Resample(mask, series.image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        shown[name] = report.ShownSeries(series.image, mask, sequences.LABELS[name],
                                         series.description or os.path.basename(str(series.image_source)))
    payload = record.payload(result, {"read_seconds": result.read_seconds, "shown": list(shown)})
    case = report.case_label_of([s.image_source for s in result.inputs.values()])
    return report.write_report(out_dir, shown, result.predictions, payload, case_label=case)
