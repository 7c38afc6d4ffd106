"""Results in the scene: the results table, the heat-map overlay, and where nodes sit in the
subject hierarchy (beside the series they belong to, so they are saved with its study)."""

import datetime
from typing import List, Optional

import slicer
import vtk
from slicer.i18n import tr as _

import LVIPredictorLib
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.inference import statements
from LVIPredictorLib.service import record
from LVIPredictorLib.vocabulary import sequences
from LVIPredictorSlicerLib import mrml_adapter


def dicomFiles(volumeNode) -> List[str]:
    """Every file of the DICOM series ``volumeNode`` was loaded from, from Slicer's DICOM database."""
    uids = (volumeNode.GetAttribute("DICOM.instanceUIDs") or "").split()
    database = getattr(slicer, "dicomDatabase", None)
    if not uids or database is None:
        raise InputError(mrml_adapter.nodeSource(volumeNode),
                         "was not loaded from the DICOM database, so its DICOM images are unknown; load the series "
                         "through the DICOM module, or give the files with sourceFiles={'t2'/'dce': folder}.")
    seriesUid = database.instanceValue(uids[0], "0020,000E")
    files = list(database.filesForSeries(seriesUid)) if seriesUid else [database.fileForInstance(u) for u in uids]
    return [f for f in files if f]


def seriesDescription(volumeNode) -> Optional[str]:
    """The DICOM series description when the series came through the DICOM browser, else the node name."""
    if volumeNode is None:
        return None
    shNode = slicer.mrmlScene.GetSubjectHierarchyNode()
    item = shNode.GetItemByDataNode(volumeNode) if shNode else 0
    description = shNode.GetItemAttribute(item, "DICOM.SeriesDescription") if item else ""
    return description or volumeNode.GetName()


def fileBeside(node, volumeNode) -> None:
    """Put ``node`` in the subject hierarchy next to the series (under its study when it has one)."""
    shNode = slicer.mrmlScene.GetSubjectHierarchyNode()
    volumeItem = shNode.GetItemByDataNode(volumeNode)
    parent = shNode.GetItemParent(volumeItem) if volumeItem else shNode.GetSceneItemID()
    nodeItem = shNode.GetItemByDataNode(node)
    if nodeItem:
        shNode.SetItemParent(nodeItem, parent)
    else:
        # Without the GUI's subject hierarchy plugins (headless), nodes get no item on creation.
        shNode.CreateItem(parent, node)


def cardSummary(card: dict) -> str:
    training = card.get("training") or {}
    metrics = card.get("metrics") or {}
    auc = metrics.get("auc")
    aucText = ""
    if isinstance(auc, dict) and "value" in auc:
        aucText = ", AUC {:.2f}".format(auc["value"])
    elif isinstance(auc, (int, float)):
        aucText = ", AUC {:.2f}".format(auc)
    bound = card.get("best_possible_auc") or {}
    if aucText and isinstance(bound.get("auc"), (int, float)):
        aucText += " (best possible for this input {:.2f})".format(bound["auc"])
    return "{id}: {arch} on {seq}{phase}, trained on {n} cases{auc}, threshold {thr:.2f}{demo}".format(
        id=card.get("model_id"), arch=card.get("architecture"), seq=sequences.LABELS.get(card.get("sequence"), "?"),
        phase=" (phase {})".format(card["dce_phase"]) if card.get("sequence") in sequences.ALL
        and sequences.reads_dce(card["sequence"]) and card.get("dce_phase") else "",
        n=training.get("n_cases", "?"), auc=aucText, thr=float(card.get("threshold", 0.5)),
        demo=" — DEMO weights, not for clinical use" if card.get("demo") else "")


# The results table: when and on which series, the prediction's one flat record, then the versions
# that produced it, so a saved scene says how each row came about.
TABLE_COLUMNS = ("time", "volume") + record.COLUMN_NAMES + ("lvipredictor_version", "torch_version",
                                                           "slicer_version")
_NUMERIC_COLUMNS = ("probability", "threshold")


def addResultsToTable(predictions, tableNode=None, volumeNode=None, volumeNodes=None):
    """Append one row per prediction to ``tableNode`` (created when None) and file the table in the
    subject hierarchy under the series' study, so it is saved with the scene.

    ``volumeNodes`` ({sequence: node}) names each row's series when several were used.
    """
    import torch

    if tableNode is None:
        tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", "LVI predictions")
    table = tableNode.GetTable()
    for name in TABLE_COLUMNS:
        if table.GetColumnByName(name) is None:
            column = vtk.vtkDoubleArray() if name in _NUMERIC_COLUMNS else vtk.vtkStringArray()
            column.SetName(name)
            column.SetNumberOfTuples(table.GetNumberOfRows())
            table.AddColumn(column)
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    slicerVersion = getattr(getattr(slicer, "app", None), "applicationVersion", "") or ""
    for prediction in predictions:
        used = [(volumeNodes or {}).get(n) for n in sequences.channels(prediction.sequence)]
        series = [node for node in used if node is not None] or ([volumeNode] if volumeNode else [])
        values = dict(record.row(prediction), time=now, volume=" + ".join(node.GetName() for node in series),
                      lvipredictor_version=LVIPredictorLib.__version__, torch_version=torch.__version__,
                      slicer_version=str(slicerVersion))
        row = tableNode.AddEmptyRow()
        for name, value in values.items():
            tableNode.SetCellText(row, tableNode.GetColumnIndex(name), str(value))
    tableNode.Modified()
    if volumeNode is not None:
        fileBeside(tableNode, volumeNode)
    return tableNode


def showHeatmap(prediction, volumeNode, sequence=None):
    """The prediction's heat-maps on the series ``sequence`` (default: that of its first map) as volume
    nodes beside ``volumeNode``; the first is shown as the foreground. A late fusion has one map per
    member: each gets its node (named after the member), so every member's evidence can be shown."""
    if not prediction.heatmaps:
        raise InputError(prediction.model_id, "was run without heatmap=True; there is no heat-map to show.")
    sequence = sequence or prediction.heatmap_sequence
    nodes = []
    for heat in [m for m in prediction.heatmaps if m.sequence == sequence]:
        name = "{} LVI heat-map ({}, {})".format(volumeNode.GetName(), heat.model_id, heat.method)
        heatmapNode = slicer.mrmlScene.GetFirstNodeByName(name)
        if heatmapNode is None:
            heatmapNode = mrml_adapter.addVolumeFromImage(heat.image, name)
        else:
            mrml_adapter.updateVolumeFromImage(heatmapNode, heat.image)
        display = heatmapNode.GetDisplayNode()
        colorNode = slicer.mrmlScene.GetNodeByID("vtkMRMLColorTableNodeRainbow")
        if colorNode is not None:
            display.SetAndObserveColorNodeID(colorNode.GetID())
        display.SetAutoWindowLevel(False)
        display.SetWindowLevelMinMax(0.0, 1.0)
        fileBeside(heatmapNode, volumeNode)
        nodes.append(heatmapNode)
    if not nodes:
        raise InputError(prediction.model_id, "has no heat-map on the {} series.".format(
            sequences.LABELS.get(sequence, sequence)))
    slicer.util.setSliceViewerLayers(background=volumeNode, foreground=nodes[0], foregroundOpacity=0.4)
    return nodes[0]


def resultLines(predictions):
    """What the panel shows for each prediction: the overview figure's facts (the probability against
    the model's threshold in one sentence, the chance banner), what it rests on (late-fusion members, a
    combined model's imaging probability and clinical values), its warnings."""
    lines = []
    for prediction in predictions:
        lines.append(_("{sequence} · {model}: {verdict} (on {device})").format(
            sequence=sequences.LABELS.get(prediction.sequence, prediction.sequence), model=prediction.model_id,
            verdict=statements.verdict(prediction.probability, prediction.threshold, prediction.label),
            device=prediction.device))
        banner = statements.chance_banner(prediction.model_id, prediction.auc_ci)
        if banner:
            lines.append("    ⚠ " + banner)
        lines.extend("    " + line for line in statements.basis(prediction))
        lines.extend("    ⚠ " + warning for warning in prediction.warnings if warning != banner)
    return lines
