"""LVI Predictor: predict lymphovascular invasion of breast cancer from MRI in 3D Slicer.

As in Slicer's scripted-module template: LVIPredictor (metadata), a parameter node, the Widget
(GUI wiring only), the Logic (callable headless; it delegates to LVIPredictorLib.service, the
case-level service ``lvi predict`` uses too) and the self-test (LVIPredictorSlicerLib.self_test).
Slicer-only helpers live in LVIPredictorSlicerLib. torch is imported only when a prediction runs,
so the module loads (and can offer to install torch) in a Slicer without it.
"""

import os
from typing import Annotated, Callable, List, Optional

import qt
import vtk

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleWidget,
)
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLTableNode

from LVIPredictorLib import clinical
from LVIPredictorLib.errors import InputError, LVIError, PredictionCancelled
from LVIPredictorLib.outputs import cohort_export
from LVIPredictorLib.vocabulary import kinds, sequences
from LVIPredictorSlicerLib import case_inputs, clinical_form, dicom_report, mrml_adapter, scene
# DependencyError is what ensure() raises: part of the module's API for scripts.
from LVIPredictorSlicerLib.dependencies import DependencyError, DependencyInstaller  # noqa: F401
from LVIPredictorSlicerLib.resources import resourcesDir
from LVIPredictorSlicerLib.sample_data import registerSampleData
# The self-test (Slicer --testing, "Reload and Test") finds it here by the module's name + "Test".
from LVIPredictorSlicerLib.self_test import LVIPredictorTest  # noqa: F401

# Names shown in the architecture selector -> registry names (None = every model), from the vocabulary.
ARCHITECTURES = dict(kinds.display_choices())


#
# LVIPredictor
#


class LVIPredictor(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = _("LVI Predictor")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Quantification")]
        self.parent.dependencies = []
        self.parent.contributors = ["LVIPredictor contributors"]
        self.parent.helpText = _(
            "Predicts lymphovascular invasion (LVI) of a breast cancer from a fat-suppressed T2-weighted "
            "and/or the 2nd-phase DCE MRI series and a tumour VOI, with the 2D/3D networks of the "
            "reference study. Research use only: bundled weights are demo weights trained on synthetic "
            "phantoms and must not be used for clinical decisions.")
        self.parent.acknowledgementText = _(
            "Implements the models of a retrospective single-centre study (Guangzhou Red Cross Hospital). "
            "Built on 3D Slicer, SimpleITK and PyTorch.")
        # Sample Data lists the shipped case once the application, and with it the SampleData module, has started.
        slicer.app.connect("startupCompleted()", registerSampleData)


#
# Parameter node
#


@parameterNodeWrapper
class LVIPredictorParameterNode:
    """What the panel shows; saved with the scene."""

    t2Volume: vtkMRMLScalarVolumeNode
    dceVolume: vtkMRMLScalarVolumeNode
    architecture: Annotated[str, Choice(list(ARCHITECTURES))] = "All matching models"
    # A researcher's own model card; empty means the bundled catalog.
    modelCard: str = ""
    device: Annotated[str, Choice(["auto", "cpu", "cuda"])] = "auto"
    heatmap: bool = False
    resultTable: vtkMRMLTableNode


#
# LVIPredictorWidget
#


class LVIPredictorWidget(ScriptedLoadableModuleWidget, slicer.util.VTKObservationMixin):
    """Wires the .ui file to the parameter node and the Logic; holds no computation."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        slicer.util.VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._running = False
        self._cancelRequested = False
        self._dependencies = DependencyInstaller()
        self._lastRun = None  # (predictions, volumes, segmentation, segment id) for the DICOM report
        self._clinicalColumns = []  # the clinical fields shown, as the chosen model(s) read them

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(str(resourcesDir() / "UI" / "LVIPredictor.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LVIPredictorLogic()

        editorNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentEditorNode", "LVIPredictorSegmentEditor")
        editorNode.SetHideFromEditors(True)
        self.ui.segmentEditorWidget.setMRMLSegmentEditorNode(editorNode)
        self.addObserver(editorNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

        self.ui.modelCardPathLineEdit.filters = qt.QDir.Files
        self.ui.modelCardPathLineEdit.nameFilters = [_("Model card (*.json)")]
        # A path edit has no parameter-node binding for str in Slicer 5.8, so it is wired here.
        self.ui.modelCardPathLineEdit.connect("currentPathChanged(QString)", self._onModelCardChanged)
        self.ui.predictButton.connect("clicked(bool)", self.onPredictButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.importMaskButton.connect("clicked(bool)", self.onImportMaskButton)
        self.ui.exportCaseButton.connect("clicked(bool)", self.onExportCaseButton)
        self.ui.saveDicomReportButton.connect("clicked(bool)", self.onSaveDicomReportButton)
        self.ui.showHeatmapOnT2Button.connect("clicked(bool)", lambda: self._focusSeries("t2"))
        self.ui.showHeatmapOnDceButton.connect("clicked(bool)", lambda: self._focusSeries("dce"))
        self.ui.progressBar.hide()
        self.ui.cancelButton.hide()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterChanged)

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, parameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterChanged)
        self._parameterNode = parameterNode
        if self._parameterNode:
            # Widgets carry SlicerParameterName in the .ui file, so this binds them all.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterChanged)
            self._onParameterChanged()

    def _onModelCardChanged(self, path: str) -> None:
        if self._parameterNode:
            self._parameterNode.modelCard = path

    def _onParameterChanged(self, caller=None, event=None) -> None:
        if self.ui.modelCardPathLineEdit.currentPath != self._parameterNode.modelCard:
            self.ui.modelCardPathLineEdit.currentPath = self._parameterNode.modelCard
        self._showModelSummary()
        self._checkCanApply()

    def _voi(self):
        return self.ui.segmentEditorWidget.segmentationNode(), self.ui.segmentEditorWidget.currentSegmentID()

    def _checkCanApply(self, caller=None, event=None) -> None:
        """Keep the buttons honest: enabled only when they can work, tooltip says why not."""
        p = self._parameterNode
        segmentation, segmentId = self._voi()
        reason = None
        if p is None:
            reason = _("Loading")
        elif not p.t2Volume and not p.dceVolume:
            reason = _("Select the FS-T2WI and/or DCE series")
        elif not segmentation or not segmentId:
            reason = _("Draw or import the tumour VOI and select its segment")
        elif self._running:
            reason = _("A prediction is running")
        self.ui.predictButton.enabled = reason is None
        self.ui.predictButton.toolTip = reason or _(
            "Predict LVI with the selected model(s): each series with its sequence's models, and both series "
            "with the fused FS-T2WI + DCE models")
        self.ui.exportCaseButton.enabled = reason is None
        self.ui.importMaskButton.enabled = p is not None and bool(p.t2Volume or p.dceVolume) and not self._running

    def _showModelSummary(self) -> None:
        p = self._parameterNode
        if p is None:
            return
        clinicalCards = []
        try:
            self.ui.modelSummaryLabel.text = self.logic.describeModels(
                p.modelCard or None, ARCHITECTURES[p.architecture])
            clinicalCards = self.logic.clinicalModels(p.modelCard or None, ARCHITECTURES[p.architecture],
                                                      given=[name for name, _volume in self._selectedSeries()])
        except LVIError as error:
            self.ui.modelSummaryLabel.text = str(error)
        except ImportError:
            # Reading cards needs torch (weights.py); it is installed on the first Predict.
            self.ui.modelSummaryLabel.text = _("PyTorch is not installed yet; it will be offered on the first Predict.")
        self._showClinicalFields(clinicalCards)

    def _showClinicalFields(self, cards) -> None:
        """The Clinical data section shows the fields the combined card(s) that can run read, and only then."""
        p = self._parameterNode
        entries = clinical_form.inputs(cards)
        self._clinicalColumns = list(entries)
        self.ui.clinicalCollapsibleButton.setVisible(bool(entries))
        required = bool(p.modelCard) or ARCHITECTURES[p.architecture] == kinds.COMBINED
        self.ui.clinicalInputsLabel.text = clinical_form.introText(cards, required)
        for column in clinical.NAMES:
            field = getattr(self.ui, clinical_form.fieldName(column))
            getattr(self.ui, clinical_form.labelName(column)).setVisible(column in entries)
            field.setVisible(column in entries)
            if column in entries:
                field.toolTip = clinical_form.toolTip(entries[column])

    def _clinicalValues(self):
        """The shown fields' values for the Logic (None when the section is not shown)."""
        if not self._clinicalColumns:
            return None
        fields = {column: getattr(self.ui, clinical_form.fieldName(column)) for column in self._clinicalColumns}
        return clinical_form.values(
            texts={c: f.text for c, f in fields.items() if not clinical_form.isBinary(c)},
            choices={c: f.currentIndex for c, f in fields.items() if clinical_form.isBinary(c)})

    def _selectedSeries(self):
        p = self._parameterNode
        return [(sequence, volume) for sequence, volume in (("t2", p.t2Volume), ("dce", p.dceVolume)) if volume]

    def _setRunning(self, running: bool) -> None:
        self._running = running
        self._cancelRequested = False
        self.ui.progressBar.setVisible(running)
        self.ui.cancelButton.setVisible(running)
        self.ui.progressBar.value = 0
        self._checkCanApply()

    def _onProgress(self, stage: str, fraction: float) -> None:
        self.ui.progressBar.format = "{}  %p%".format(stage)
        self.ui.progressBar.value = int(round(100 * fraction))
        slicer.app.processEvents()  # lets Cancel be pressed and the bar repaint

    def onCancelButton(self) -> None:
        self._cancelRequested = True

    def onPredictButton(self) -> None:
        p = self._parameterNode
        segmentation, segmentId = self._voi()
        with slicer.util.tryWithErrorDisplay(_("LVI prediction failed."), waitCursor=True):
            self._dependencies.ensure()
            self._setRunning(True)
            try:
                volumes = dict(self._selectedSeries())
                predictions = self.logic.predictCase(
                    volumes, segmentation, segmentId, model=p.modelCard or None,
                    architecture=ARCHITECTURES[p.architecture], device=p.device, heatmap=p.heatmap,
                    progressCallback=self._onProgress, cancelCheck=lambda: self._cancelRequested,
                    clinical=self._clinicalValues())
                # The table is filed beside the first series (one study holds both).
                p.resultTable = self.logic.addResultsToTable(
                    predictions, p.resultTable, volumeNode=next(iter(volumes.values()), None), volumeNodes=volumes)
                self._showResults(predictions, volumes)
                self._lastRun = (predictions, volumes, segmentation, segmentId) if predictions else None
                self.ui.saveDicomReportButton.enabled = self._lastRun is not None
            except PredictionCancelled:
                self.ui.resultsLabel.text = _("Cancelled.")
            finally:
                self._setRunning(False)

    def _showResults(self, predictions, volumes) -> None:
        lines = scene.resultLines(predictions)
        self.ui.resultsLabel.text = "\n".join(lines) or _("No model matches the selected series.")
        self._heatmaps = {}
        for prediction in predictions:
            for heat in prediction.heatmaps:  # a late fusion's members each have theirs, on their own series
                if heat.sequence not in self._heatmaps:
                    self._heatmaps[heat.sequence] = (prediction, volumes[heat.sequence])
        self.ui.showHeatmapOnT2Button.enabled = "t2" in self._heatmaps
        self.ui.showHeatmapOnDceButton.enabled = "dce" in self._heatmaps
        if self._heatmaps:
            self._focusSeries(next(iter(self._heatmaps)))

    def _focusSeries(self, sequence: str) -> None:
        prediction, volume = self._heatmaps[sequence]
        self.logic.showHeatmap(prediction, volume, sequence)

    def onSaveDicomReportButton(self) -> None:
        path = qt.QFileDialog.getSaveFileName(slicer.util.mainWindow(), _("Save the prediction as a DICOM SR"), "",
                                              _("DICOM (*.dcm)"))
        if not path or self._lastRun is None:
            return
        predictions, volumes, segmentation, segmentId = self._lastRun
        # Empty (or Cancel): the report says the VOI's author is unknown.
        author = qt.QInputDialog.getText(slicer.util.mainWindow(), _("Who drew the tumour VOI?"),
                                         _("Name as Family^Given (leave empty if unknown):"))
        stem = path[:-4] if path.lower().endswith(".dcm") else path
        with slicer.util.tryWithErrorDisplay(_("Could not write the DICOM report."), waitCursor=True):
            written = self.logic.writeDicomReport(predictions, volumes, segmentation, segmentId, path,
                                                  segmentationPath=stem + "-seg.dcm", voiAuthor=author or None)
            slicer.util.infoDisplay(_("Written:\n{files}").format(
                files="\n".join([written["sr"]] + list(written["seg"].values()))))

    def onImportMaskButton(self) -> None:
        p = self._parameterNode
        path = qt.QFileDialog.getOpenFileName(slicer.util.mainWindow(), _("Import tumour mask"), "",
                                              _("Label images (*.nii *.nii.gz *.nrrd *.mha)"))
        if not path:
            return
        reference = p.t2Volume or p.dceVolume
        with slicer.util.tryWithErrorDisplay(_("Could not import the mask."), waitCursor=True):
            segmentation = self.ui.segmentEditorWidget.segmentationNode()
            if segmentation is None:
                segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", _("Tumour VOI"))
                segmentation.CreateDefaultDisplayNodes()
                self.ui.segmentEditorWidget.setSegmentationNode(segmentation)
            label = self.ui.maskLabelSpinBox.value or None
            segmentId = self.logic.importMask(path, segmentation, reference, label=label)
            self.ui.segmentEditorWidget.setCurrentSegmentID(segmentId)

    def onExportCaseButton(self) -> None:
        p = self._parameterNode
        cohortDir = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), _("Cohort folder"))
        if not cohortDir:
            return
        segmentation, segmentId = self._voi()
        with slicer.util.tryWithErrorDisplay(_("Could not export the case."), waitCursor=True):
            row = self.logic.exportCaseToCohort(
                cohortDir, self.ui.caseIdLineEdit.text, self.ui.patientIdLineEdit.text,
                1 if self.ui.lviPositiveRadioButton.checked else 0,
                segmentationNode=segmentation, segmentId=segmentId, t2Volume=p.t2Volume, dceVolume=p.dceVolume,
                clinical=self._clinicalValues())
            slicer.util.infoDisplay(_("Case {case} was added to {csv}.").format(
                case=row["case_id"], csv=os.path.join(cohortDir, cohort_export.COHORT_CSV)))


#
# LVIPredictorLogic
#


class LVIPredictorLogic(ScriptedLoadableModuleLogic):
    """Everything the panel does, callable without it:

        logic = slicer.util.getModuleLogic("LVIPredictor")   # or LVIPredictorLogic()
        prediction = logic.predict(volumeNode, segmentationNode, segmentId, model="demo-dce-resnet10_3d")

    The work is LVIPredictorLib.service's (the same as ``lvi predict``): this class turns MRML
    nodes into the service's inputs and its results into scene nodes. Never opens a dialog.
    Progress is reported through ``progressCallback(stage, fraction)``; ``cancelCheck()``
    returning True stops between steps with PredictionCancelled.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._services = {}

    def getParameterNode(self):
        return LVIPredictorParameterNode(super().getParameterNode())

    # --- models -------------------------------------------------------------------

    @staticmethod
    def bundledModels(sequence: Optional[str] = None, architecture: Optional[str] = None) -> List[dict]:
        """Catalog entries of the bundled weights, optionally for one sequence/architecture."""
        from LVIPredictorLib import weights

        return [entry for entry in weights.bundled_catalog()
                if (sequence is None or entry.get("sequence") == sequence)
                and (architecture is None or entry.get("architecture") == architecture)]

    def describeModels(self, model=None, architecture: Optional[str] = None) -> str:
        """A short summary of the card(s) a prediction would use, for the panel."""
        from LVIPredictorLib import weights
        from LVIPredictorLib.service import case

        cards = [case.card_of(model)] if model else [
            weights.load_card(entry["card_path"]) for entry in self.bundledModels(architecture=architecture)]
        if not cards:
            return _("No bundled models are installed; choose a model card file.")
        return "\n".join(scene.cardSummary(card) for card in cards)

    def clinicalModels(self, model=None, architecture: Optional[str] = None, given=None) -> List[dict]:
        """The combined (clinical + imaging) cards a prediction with this choice could run: ``model``'s
        when it is one, else the bundled ones of ``architecture`` (None = all) that read the ``given``
        series (default: both). Their ``clinical["inputs"]`` name the fields the panel asks for."""
        from LVIPredictorLib import weights
        from LVIPredictorLib.service import case

        if model:
            card = case.card_of(model)
            return [card] if kinds.needs_clinical(card) else []
        given = list(given or sequences.SEQUENCES)
        return [weights.load_card(entry["card_path"]) for entry in self.bundledModels(architecture=architecture)
                if kinds.needs_clinical(entry) and case.fits(entry, given)]

    def _service(self, device: str):
        """One service per device: it keeps each model loaded (loading and checksumming is the slow part)."""
        from LVIPredictorLib.service import CaseService

        if device not in self._services:
            self._services[device] = CaseService(device=device)
        return self._services[device]

    # --- prediction ---------------------------------------------------------------

    def predict(self, volumeNode, segmentationNode, segmentId, model, device: str = "auto", heatmap: bool = False,
                progressCallback: Optional[Callable[[str, float], None]] = None,
                cancelCheck: Optional[Callable[[], bool]] = None, clinical=None):
        """One model on one series; returns LVIPredictorLib.inference.Prediction.

        ``model``: a bundled model id, a model card path, or a card dict. A fused (t2+dce)
        model needs both series: use :meth:`predictCase`. ``clinical``: the case's clinical values,
        which a combined (clinical + imaging) model reads.
        """
        from LVIPredictorLib.service import case

        card = case.card_of(model)
        names = sequences.channels(card["sequence"])
        if len(names) > 1:
            raise InputError(mrml_adapter.nodeSource(volumeNode),
                             "model {} reads FS-T2WI and DCE together; call predictCase({{'t2': t2Volume, "
                             "'dce': dceVolume}}, ...) with both series.".format(card["model_id"]))
        return self._run({names[0]: volumeNode}, segmentationNode, segmentId, [card], device, heatmap,
                         progressCallback, cancelCheck, clinical)[0]

    def predictCase(self, volumeNodes, segmentationNode, segmentId, model=None, architecture: Optional[str] = None,
                    device: str = "auto", heatmap: bool = False, progressCallback=None, cancelCheck=None,
                    clinical=None) -> list:
        """Every bundled model that the given series allow — each single-sequence model on its
        series, and the fused (t2+dce) models when both are given — or just ``model``.

        ``volumeNodes``: {"t2": node, "dce": node} (either may be missing or None). One
        segment serves both series: it is resampled onto each series' grid. ``clinical``: the case's
        clinical values ({"age": 61, ...}) for a combined (clinical + imaging) model card.
        """
        volumeNodes = {name: node for name, node in volumeNodes.items() if node is not None}
        unknown = sorted(set(volumeNodes) - set(sequences.SEQUENCES))
        if unknown or not volumeNodes:
            raise InputError(None, "volumeNodes must map 't2' and/or 'dce' to volume nodes (got {})".format(
                ", ".join(unknown) or "none"))
        # A researcher's card trained on another sequence is not run on these series.
        # Bundled combined models run only when clinical values are given (explicitly chosen ones refuse
        # to run without them, naming the fields).
        cards, _refused = self._service(device).choose(list(volumeNodes), [model] if model else None,
                                                       architecture=architecture, clinical=clinical)
        if not cards and not model:
            raise InputError(mrml_adapter.nodeSource(next(iter(volumeNodes.values()))),
                             "no bundled model{} reads {}; choose a model card file.".format(
                                 " with architecture " + architecture if architecture else "",
                                 " or ".join(sequences.LABELS[n] for n in volumeNodes)))
        return self._run(volumeNodes, segmentationNode, segmentId, cards, device, heatmap,
                         progressCallback, cancelCheck, clinical)

    def predictAll(self, volumeNode, segmentationNode, segmentId, sequence: Optional[str] = None, model=None,
                   architecture: Optional[str] = None, device: str = "auto", heatmap: bool = False,
                   progressCallback=None, cancelCheck=None, clinical=None) -> list:
        """Every bundled model for the volume's sequence (or just ``model`` when given); the bundled
        combined (clinical + imaging) models only when ``clinical`` holds a value.

        ``sequence`` ("t2" or "dce") is what the series is; None reads it from the
        volume (attribute ``LVIPredictor.Sequence``, else its name / series description).
        """
        sequence = sequence or (None if model else self.sequenceOf(volumeNode))
        if model:
            from LVIPredictorLib.service import case

            card = case.card_of(model)
            # A researcher's card trained on one sequence is not run on the other series.
            if sequence is not None and card.get("sequence") != sequence:
                return []
            return [self.predict(volumeNode, segmentationNode, segmentId, card, device=device, heatmap=heatmap,
                                 progressCallback=progressCallback, cancelCheck=cancelCheck, clinical=clinical)]
        cards, _refused = self._service(device).choose([sequence], architecture=architecture, sequence=sequence,
                                                       clinical=clinical)
        if not cards:
            raise InputError(mrml_adapter.nodeSource(volumeNode),
                             "no bundled {} model{} is installed; choose a model card file.".format(
                                 sequences.LABELS.get(sequence, sequence),
                                 " with architecture " + architecture if architecture else ""))
        return self._run({sequence: volumeNode}, segmentationNode, segmentId, cards, device, heatmap,
                         progressCallback, cancelCheck, clinical)

    def _run(self, volumeNodes, segmentationNode, segmentId, cards, device, heatmap, progressCallback, cancelCheck,
             clinical=None):
        if not cards:
            return []
        if cancelCheck is not None and cancelCheck():
            raise PredictionCancelled(_("Reading series and VOI"))
        if progressCallback is not None:
            progressCallback(_("Reading series and VOI"), 0.0)
        inputs = case_inputs.seriesInputs(volumeNodes, segmentationNode, segmentId)
        result = self._service(device).predict(inputs, cards, heatmap=heatmap, progress=progressCallback,
                                               cancel=cancelCheck, clinical=clinical)
        return result.predictions

    @staticmethod
    def sequenceOf(volumeNode) -> str:
        """"t2" or "dce" for a series, from what the user set or what the series is called."""
        tagged = volumeNode.GetAttribute("LVIPredictor.Sequence") if volumeNode else None
        if tagged in sequences.SEQUENCES:
            return tagged
        guessed = sequences.guess_from_description(scene.seriesDescription(volumeNode))
        if guessed is not None:
            return guessed
        raise InputError(mrml_adapter.nodeSource(volumeNode),
                         "cannot tell whether this series is FS-T2WI or DCE; pass sequence='t2' or 'dce'.")

    # --- results ------------------------------------------------------------------

    @staticmethod
    def addResultsToTable(predictions, tableNode=None, volumeNode=None, volumeNodes=None):
        """Append one row per prediction (the service's record) to ``tableNode`` (created when None),
        filed under the series' study so it is saved with the scene."""
        return scene.addResultsToTable(predictions, tableNode, volumeNode, volumeNodes)

    def writeDicomReport(self, predictions, volumeNodes, segmentationNode, segmentId, reportPath,
                         segmentationPath: Optional[str] = None, sourceFiles: Optional[dict] = None,
                         dcePhase: int = sequences.DEFAULT_DCE_PHASE, overwrite: bool = False,
                         voiAuthor: Optional[str] = None) -> dict:
        """Write ``predictions`` (from predict/predictCase/predictAll on ``volumeNodes``) as a DICOM SR
        (TID 1500 measurement report) and, with ``segmentationPath``, the segment as a DICOM SEG on each
        series' own DICOM images (two series: ``<stem>-t2.dcm`` and ``<stem>-dce.dcm``).

        ``volumeNodes``: {"t2": node, "dce": node}. The DICOM images of each series are
        ``sourceFiles[sequence]`` (a folder or a list of files) when given, else the files Slicer's DICOM
        database holds for the series the volume was loaded from (its ``DICOM.instanceUIDs``); a dynamic
        series is read at ``dcePhase``. ``voiAuthor``: who drew the VOI, a DICOM person name ("Doe^Jane"),
        recorded as the SR's person observer and the SEG's creator (unknown when not given). Nothing is
        overwritten unless ``overwrite``. Returns {"sr": path, "seg": {sequence: path}}.
        """
        return dicom_report.writeDicomReport(predictions, volumeNodes, segmentationNode, segmentId, reportPath,
                                             segmentationPath, sourceFiles, dcePhase, overwrite, voiAuthor)

    @staticmethod
    def showHeatmap(prediction, volumeNode, sequence=None):
        """The prediction's heat-maps on ``sequence`` as volume nodes, the first shown over ``volumeNode``."""
        return scene.showHeatmap(prediction, volumeNode, sequence)

    # --- masks and cohort export --------------------------------------------------

    def importMask(self, path, segmentationNode, referenceVolumeNode, label: Optional[int] = None) -> str:
        """Load an ITK-SNAP/NRRD label mask as ONE segment on the reference series' grid.

        The core's label rule decides which voxels are tumour (any non-zero label unless
        ``label`` is given), so a mask with labels 1 and 2 becomes one VOI — not the two
        segments Slicer's own loader would make. Returns the new segment's ID.
        """
        return case_inputs.importMask(path, segmentationNode, referenceVolumeNode, label)

    def exportCaseToCohort(self, cohortDir, caseId, patientId, lvi, segmentationNode, segmentId,
                           t2Volume=None, dceVolume=None, dceSegmentId=None, clinical=None,
                           dcePhase: int = sequences.DEFAULT_DCE_PHASE) -> dict:
        """Write the series, the VOI (on each series' grid) and the label into a cohort folder.

        The same segment serves both series unless ``dceSegmentId`` is given. A DCE volume that
        shows one acquisition of a whole dynamic series is exported as phase ``dcePhase`` of it
        (the cohort holds one DCE phase per case), whichever acquisition is on screen. ``clinical``:
        the case's clinical values ({"age": 61, ...}; empty ones are left empty), checked against
        their columns; a new cohort.csv gets all six clinical columns. Returns the row appended.
        """
        return case_inputs.exportCase(cohortDir, caseId, patientId, lvi, segmentationNode, segmentId, t2Volume,
                                      dceVolume, dceSegmentId, clinical, dcePhase)
