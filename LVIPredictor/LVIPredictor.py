"""LVI Predictor: predict lymphovascular invasion of breast cancer from MRI in 3D Slicer.

Four classes, as in Slicer's scripted-module template:
- LVIPredictor: module metadata.
- LVIPredictorWidget: GUI wiring only (the state lives in a parameter node).
- LVIPredictorLogic: all the work, callable from the Python console or headless.
- LVIPredictorTest: the self-test run by ``Slicer --testing``.

The computation is LVIPredictorLib's (shared with the training tools); MRML nodes are
converted to SimpleITK images in exactly one place, LVIPredictorSlicerLib.mrml_adapter.
torch is imported only when a prediction runs, so the module loads (and can offer
to install torch) in a Slicer without it.
"""

import datetime
import importlib
import logging
import os
from pathlib import Path
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
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLTableNode

import LVIPredictorLib
from LVIPredictorLib.outputs import cohort_export
from LVIPredictorLib.vocabulary import sequences
from LVIPredictorSlicerLib import mrml_adapter
from LVIPredictorLib.errors import InputError, LVIError

MODULE_DIR = Path(__file__).resolve().parent


def resourcesDir() -> Path:
    """Resources/ beside the module when installed, one level up in the source tree
    (so "Add module paths" on a checkout works without building)."""
    for candidate in (MODULE_DIR / "Resources", MODULE_DIR.parent / "Resources"):
        if (candidate / "UI").is_dir():
            return candidate
    return MODULE_DIR / "Resources"


# Names shown in the architecture selector -> LVIPredictorLib.models names (None = every model).
ARCHITECTURES = {
    "All matching models": None,
    "VanillaCNN 2D": "vanilla_cnn_2d",
    "ResNet10 2D": "resnet10_2d",
    "ResNet10 3D": "resnet10_3d",
    "Radiomics + LR (baseline)": "radiomics_lr",
    "Late fusion (networks averaged)": "late_fusion",
}
SEQUENCE_NAMES = {"t2": "FS-T2WI", "dce": "DCE"}
# The study's "2nd phase": the first acquisition after contrast, counting the pre-contrast one as 1.
DEFAULT_DCE_PHASE = 2
RESULT_COLUMNS = ("time", "volume", "sequence", "model_id", "architecture", "probability", "label", "threshold",
                  "demo", "device", "weights_sha256", "warnings", "lvipredictor_version", "torch_version",
                  "slicer_version")


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
# Dependencies
#


class PredictionCancelled(Exception):
    """The user pressed Cancel; nothing was added to the scene."""


class DependencyError(RuntimeError):
    """A Python package LVI Predictor needs is missing and was not (or cannot be) installed here."""


class DependencyInstaller:
    """Checks Resources/requirements.txt and installs what is missing, once, after asking.

    - Requirements are parsed with ``packaging`` (Slicer ships it), so every specifier and
      environment marker counts, not only ``>=``.
    - torch is installed (or upgraded) only through the PyTorch extension's PyTorchUtils, which
      picks the CUDA/CPU build that matches the GPU driver; a plain ``pip install torch`` would
      pick an arbitrary one. Without that extension, or when the installed torch is too old and
      already loaded (a loaded torch cannot be replaced while Slicer runs), a DependencyError says
      what to do instead. After torch is installed a restart is offered.
    - The other packages go through the running Slicer's ``pip_ensure`` (Slicer >= 5.11), else
      ``slicer.util.pip_install``.
    - One confirmation covers everything; after a refusal nothing is asked again this session.
    - ``headless`` and Slicer's --testing never install: they raise with what is missing, so
      a test or a script never changes the Python environment behind the user's back.

    ``confirm(text) -> bool`` and ``offerRestart(text)`` are the two dialogs (Slicer's by
    default). ``searchPath`` is where installed distributions are looked up (``sys.path``
    when None).
    """

    TORCH = "torch"
    REQUESTER = "LVI Predictor"

    def __init__(self, headless: bool = False, requirementsPath: Optional[Path] = None, confirm=None,
                 offerRestart=None, searchPath: Optional[List[str]] = None):
        self.headless = headless
        self.requirementsPath = Path(requirementsPath) if requirementsPath else resourcesDir() / "requirements.txt"
        self.confirm = confirm or (lambda text: slicer.util.confirmOkCancelDisplay(text))
        self.offerRestart = offerRestart or _offerRestart
        self.searchPath = searchPath
        self._declined = False
        self._satisfied = False

    def requirements(self) -> list:
        """The requirements (packaging.requirements.Requirement) that apply to this Python."""
        from packaging.requirements import InvalidRequirement, Requirement

        requirements = []
        lines = self.requirementsPath.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            text = line.split("#", 1)[0].strip()
            if not text or text.startswith("-"):
                continue  # blank, comment, or a pip option such as -r / --index-url
            try:
                requirement = Requirement(text)
            except InvalidRequirement as error:
                raise DependencyError("{}, line {}: not a valid requirement ({})".format(
                    self.requirementsPath, number, error)) from error
            if requirement.marker is None or requirement.marker.evaluate():
                requirements.append(requirement)
        return requirements

    def unmet(self) -> list:
        """(requirement, installed version or None) for every requirement not satisfied."""
        from packaging.version import InvalidVersion

        installed = self._installedVersions()
        unmet = []
        for requirement in self.requirements():
            version = installed.get(_canonicalName(requirement.name))
            try:
                satisfied = version is not None and requirement.specifier.contains(version, prereleases=True)
            except InvalidVersion:
                satisfied = False  # a version pip cannot compare is not known to satisfy anything
            if not satisfied:
                unmet.append((requirement, version))
        return unmet

    def missing(self) -> List[str]:
        """The requirement lines that are absent or not satisfied by the installed version."""
        return [str(requirement) for requirement, _version in self.unmet()]

    def ensure(self) -> None:
        """Return when every requirement is met; otherwise install after asking, or raise DependencyError."""
        if self._satisfied:
            return
        unmet = self.unmet()
        if not unmet:
            self._satisfied = True
            return
        listed = ", ".join(_describeUnmet(requirement, version) for requirement, version in unmet)
        if self.headless or _testingEnabled():
            raise DependencyError(
                "LVI Predictor needs Python packages that are not installed: {}. Nothing is installed in a "
                "headless or --testing run; click Predict LVI in the panel to install them (it asks first)."
                .format(listed))
        torch = [(r, v) for r, v in unmet if _canonicalName(r.name) == self.TORCH]
        others = [(r, v) for r, v in unmet if _canonicalName(r.name) != self.TORCH]
        # Everything that cannot be installed here is refused before anything is asked or installed.
        torchLogic = self._torchInstaller(*torch[0]) if torch else None
        declined = _("Installation declined; LVI Predictor needs: {packages}").format(packages=listed)
        if self._declined:
            raise DependencyError(declined)
        lines = ["• {} — {}".format(_describeUnmet(r, v), _("through the PyTorch extension (PyTorch Utils), which "
                                                             "picks the build that matches your GPU driver"))
                 for r, v in torch]
        lines += ["• {} — {}".format(_describeUnmet(r, v), _("with pip")) for r, v in others]
        if not self.confirm(_("LVI Predictor needs these Python packages. They will be downloaded and installed "
                              "now (this can take several minutes):\n\n{packages}").format(packages="\n".join(lines))):
            self._declined = True
            raise DependencyError(declined)
        if torch:
            requirement = torch[0][0]
            logging.info("LVIPredictor: installing %s through PyTorch Utils", requirement)
            if torchLogic.installTorch(askConfirmation=False, torchVersionRequirement=str(requirement.specifier)) is None:
                raise DependencyError(_("PyTorch ({requirement}) was not installed. Install it in the PyTorch Utils "
                                        "module, restart Slicer and click Predict LVI again.").format(
                    requirement=requirement))
        restart = bool(torch)
        if others:
            byPipEnsure = self._pipInstall([r for r, _v in others])
            # pip_ensure offers a restart itself when it replaced a package that was already loaded.
            restart = restart or (not byPipEnsure and any(v is not None for _r, v in others))
        importlib.invalidate_caches()
        still = self.unmet()
        if still:
            raise DependencyError(_("These Python packages are still missing after installing them: {packages}. "
                                    "See the Python console for pip's output.").format(
                packages=", ".join(_describeUnmet(r, v) for r, v in still)))
        self._satisfied = True
        if restart:
            self.offerRestart(_("Python packages for LVI Predictor were installed ({packages}). Restart Slicer now? "
                                "A restart is recommended so that every module uses the new versions; No continues "
                                "without restarting.").format(packages=", ".join(str(r) for r, _v in unmet)))

    def _torchInstaller(self, requirement, installedVersion):
        """PyTorchUtilsLogic, when it can install (or upgrade to) ``requirement``; else a DependencyError
        saying what to do. A too old torch that is not imported yet can still be upgraded in place."""
        import sys

        modules = getattr(slicer, "modules", None)
        PyTorchUtils = None
        if modules is not None and hasattr(modules, "pytorchutils"):
            try:
                import PyTorchUtils
            except ImportError:
                PyTorchUtils = None
        if PyTorchUtils is None:
            found = "" if installedVersion is None else _(" (torch {version} is installed)").format(
                version=installedVersion)
            raise DependencyError(_(
                "LVI Predictor needs PyTorch ({requirement}){found}, installed through the PyTorch extension, which "
                "picks the build that matches your GPU driver. Install the \"PyTorch\" extension (View → Extensions "
                "Manager), restart Slicer and click Predict LVI again.").format(requirement=requirement, found=found))
        if installedVersion is not None and self.TORCH in sys.modules:
            raise DependencyError(_(
                "torch {version} is installed but LVI Predictor needs {requirement}. A PyTorch that Slicer has loaded "
                "cannot be replaced while Slicer runs: open the PyTorch Utils module, uninstall PyTorch, restart "
                "Slicer, then install it there with the version requirement \"{specifier}\" (or click Predict LVI, "
                "which installs it after asking).").format(
                version=installedVersion, requirement=requirement, specifier=requirement.specifier))
        return PyTorchUtils.PyTorchUtilsLogic()

    def _pipInstall(self, requirements) -> bool:
        """Install ``requirements`` after the confirmation; True when Slicer's pip_ensure did it."""
        pipEnsure = _slicerPipEnsure()
        logging.info("LVIPredictor: installing %s with %s", ", ".join(map(str, requirements)),
                     "pip_ensure" if pipEnsure else "slicer.util.pip_install")
        if pipEnsure is not None:
            # Already confirmed above; pip_ensure still offers a restart when it upgraded a loaded package.
            pipEnsure(list(requirements), prompt_install=False, requester=self.REQUESTER)
            return True
        slicer.util.pip_install([str(requirement) for requirement in requirements])
        return False

    def _installedVersions(self) -> dict:
        """{canonical distribution name: version}; the first one on the search path wins, as for import."""
        from importlib import metadata

        found = {}
        where = {} if self.searchPath is None else {"path": list(self.searchPath)}
        for distribution in metadata.distributions(**where):
            name = distribution.metadata["Name"]
            if name:
                found.setdefault(_canonicalName(name), distribution.version)
        return found


def _canonicalName(name: str) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(name)


def _describeUnmet(requirement, installedVersion) -> str:
    if installedVersion is None:
        return str(requirement)
    return "{} ({} is installed)".format(requirement, installedVersion)


def _testingEnabled() -> bool:
    app = getattr(slicer, "app", None)
    return app is not None and bool(app.testingEnabled())


def _slicerPipEnsure():
    """Slicer's own check-and-install, or None before Slicer 5.11 (its module is ``slicer.packaging``;
    some 5.11 development builds call it ``slicer.pydeps``)."""
    for name in ("slicer.packaging", "slicer.pydeps"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "pip_ensure"):
            return module.pip_ensure
    return None


def _offerRestart(text: str) -> None:
    if slicer.util.confirmYesNoDisplay(text):
        slicer.util.restart()


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
        try:
            self.ui.modelSummaryLabel.text = self.logic.describeModels(
                p.modelCard or None, ARCHITECTURES[p.architecture])
        except LVIError as error:
            self.ui.modelSummaryLabel.text = str(error)
        except ImportError:
            # Reading cards needs torch (weights.py); it is installed on the first Predict.
            self.ui.modelSummaryLabel.text = _("PyTorch is not installed yet; it will be offered on the first Predict.")

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
                    progressCallback=self._onProgress, cancelCheck=lambda: self._cancelRequested)
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
        lines = []
        for prediction in predictions:
            lines.append(_("{sequence} · {model}: probability {probability:.2f} → {label} (threshold {threshold:.2f}) "
                           "on {device}").format(
                sequence=sequences.LABELS.get(prediction.sequence, prediction.sequence), model=prediction.model_id,
                probability=prediction.probability, label="LVI+" if prediction.label else "LVI−",
                threshold=prediction.threshold, device=prediction.device))
            lines.extend(_("    member {model}: probability {probability:.2f}").format(model=member, probability=p)
                         for member, p in prediction.member_probabilities.items())
            lines.extend("    ⚠ " + warning for warning in prediction.warnings)
        self.ui.resultsLabel.text = "\n".join(lines) or _("No model matches the selected series.")
        self._heatmaps = {}
        for prediction in predictions:
            shownOn = prediction.heatmap_sequence
            if prediction.heatmap is not None and shownOn not in self._heatmaps:
                self._heatmaps[shownOn] = (prediction, volumes[shownOn])
        self.ui.showHeatmapOnT2Button.enabled = "t2" in self._heatmaps
        self.ui.showHeatmapOnDceButton.enabled = "dce" in self._heatmaps
        if self._heatmaps:
            self._focusSeries(next(iter(self._heatmaps)))

    def _focusSeries(self, sequence: str) -> None:
        prediction, volume = self._heatmaps[sequence]
        self.logic.showHeatmap(prediction, volume)

    def onSaveDicomReportButton(self) -> None:
        path = qt.QFileDialog.getSaveFileName(slicer.util.mainWindow(), _("Save the prediction as a DICOM SR"), "",
                                              _("DICOM (*.dcm)"))
        if not path or self._lastRun is None:
            return
        predictions, volumes, segmentation, segmentId = self._lastRun
        stem = path[:-4] if path.lower().endswith(".dcm") else path
        with slicer.util.tryWithErrorDisplay(_("Could not write the DICOM report."), waitCursor=True):
            written = self.logic.writeDicomReport(predictions, volumes, segmentation, segmentId, path,
                                                  segmentationPath=stem + "-seg.dcm")
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
                segmentationNode=segmentation, segmentId=segmentId, t2Volume=p.t2Volume, dceVolume=p.dceVolume)
            slicer.util.infoDisplay(_("Case {case} was added to {csv}.").format(
                case=row["case_id"], csv=os.path.join(cohortDir, cohort_export.COHORT_CSV)))


#
# LVIPredictorLogic
#


class LVIPredictorLogic(ScriptedLoadableModuleLogic):
    """Everything the panel does, callable without it:

        logic = slicer.util.getModuleLogic("LVIPredictor")   # or LVIPredictorLogic()
        prediction = logic.predict(volumeNode, segmentationNode, segmentId, model="resnet10_3d_dce")

    Never opens a dialog. Progress is reported through ``progressCallback(stage,
    fraction)``; ``cancelCheck()`` returning True stops between steps with
    PredictionCancelled.
    """

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._predictors = {}

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

        cards = [weights.load_card(weights.resolve_card(model))] if model else [
            weights.load_card(entry["card_path"]) for entry in self.bundledModels(architecture=architecture)]
        if not cards:
            return _("No bundled models are installed; choose a model card file.")
        return "\n".join(_cardSummary(card) for card in cards)

    def _predictor(self, model, device: str):
        """Predictors are cached: loading and checksumming weights is the slow part."""
        from LVIPredictorLib import inference

        card = self._card(model)
        # The checksum is part of the key: a card re-exported in place is a new model.
        key = (card.get("_card_path"), card["weights_sha256"], device)
        if key not in self._predictors:
            self._predictors[key] = inference.Predictor(card, device=device)
        return self._predictors[key]

    # --- prediction ---------------------------------------------------------------

    def _card(self, model) -> dict:
        from LVIPredictorLib import weights

        return model if isinstance(model, dict) else weights.load_card(weights.resolve_card(model))

    def predict(self, volumeNode, segmentationNode, segmentId, model, device: str = "auto", heatmap: bool = False,
                progressCallback: Optional[Callable[[str, float], None]] = None,
                cancelCheck: Optional[Callable[[], bool]] = None):
        """One model on one series; returns LVIPredictorLib.inference.Prediction.

        ``model``: a bundled model id, a model card path, or a card dict. A fused (t2+dce)
        model needs both series: use :meth:`predictCase`.
        """
        card = self._card(model)
        names = sequences.channels(card["sequence"])
        if len(names) > 1:
            raise InputError(mrml_adapter.nodeSource(volumeNode),
                             "model {} reads FS-T2WI and DCE together; call predictCase({{'t2': t2Volume, "
                             "'dce': dceVolume}}, ...) with both series.".format(card["model_id"]))
        return self._run({names[0]: volumeNode}, segmentationNode, segmentId, [card], device, heatmap,
                         progressCallback, cancelCheck)[0]

    def predictCase(self, volumeNodes, segmentationNode, segmentId, model=None, architecture: Optional[str] = None,
                    device: str = "auto", heatmap: bool = False, progressCallback=None, cancelCheck=None) -> list:
        """Every bundled model that the given series allow — each single-sequence model on its
        series, and the fused (t2+dce) models when both are given — or just ``model``.

        ``volumeNodes``: {"t2": node, "dce": node} (either may be missing or None). One
        segment serves both series: it is resampled onto each series' grid.
        """
        volumeNodes = {name: node for name, node in volumeNodes.items() if node is not None}
        unknown = sorted(set(volumeNodes) - set(sequences.SEQUENCES))
        if unknown or not volumeNodes:
            raise InputError(None, "volumeNodes must map 't2' and/or 'dce' to volume nodes (got {})".format(
                ", ".join(unknown) or "none"))
        if model:
            cards = [self._card(model)]
            needed = sequences.channels(cards[0]["sequence"])
            if not set(needed) <= set(volumeNodes):
                # A researcher's card trained on another sequence is not run on these series.
                return []
        else:
            cards = [entry["card_path"] for entry in self.bundledModels(architecture=architecture)
                     if set(sequences.channels(entry["sequence"])) <= set(volumeNodes)]
            if not cards:
                raise InputError(mrml_adapter.nodeSource(next(iter(volumeNodes.values()))),
                                 "no bundled model{} reads {}; choose a model card file.".format(
                                     " with architecture " + architecture if architecture else "",
                                     " or ".join(sequences.LABELS[n] for n in volumeNodes)))
        return self._run(volumeNodes, segmentationNode, segmentId, cards, device, heatmap,
                         progressCallback, cancelCheck)

    def predictAll(self, volumeNode, segmentationNode, segmentId, sequence: Optional[str] = None, model=None,
                   architecture: Optional[str] = None, device: str = "auto", heatmap: bool = False,
                   progressCallback=None, cancelCheck=None) -> list:
        """Every bundled model for the volume's sequence (or just ``model`` when given).

        ``sequence`` ("t2" or "dce") is what the series is; None reads it from the
        volume (attribute ``LVIPredictor.Sequence``, else its name / series description).
        """
        if model:
            card = self._card(model)
            # A researcher's card trained on one sequence is not run on the other series.
            if sequence is not None and card.get("sequence") != sequence:
                return []
            return [self.predict(volumeNode, segmentationNode, segmentId, card, device=device, heatmap=heatmap,
                                 progressCallback=progressCallback, cancelCheck=cancelCheck)]
        sequence = sequence or self.sequenceOf(volumeNode)
        models = [entry["card_path"] for entry in self.bundledModels(sequence, architecture)]
        if not models:
            raise InputError(mrml_adapter.nodeSource(volumeNode),
                             "no bundled {} model{} is installed; choose a model card file.".format(
                                 SEQUENCE_NAMES.get(sequence, sequence),
                                 " with architecture " + architecture if architecture else ""))
        return self._run({sequence: volumeNode}, segmentationNode, segmentId, models, device, heatmap,
                         progressCallback, cancelCheck)

    def _run(self, volumeNodes, segmentationNode, segmentId, models, device, heatmap, progressCallback, cancelCheck):
        if not models:
            return []
        def step(stage, fraction):
            if cancelCheck is not None and cancelCheck():
                raise PredictionCancelled(stage)
            if progressCallback is not None:
                progressCallback(stage, fraction)

        step(_("Reading series and VOI"), 0.0)
        images, masks, resampled = {}, {}, {}
        phaseCache = {}
        for name, volumeNode in volumeNodes.items():
            # A whole dynamic series: each model gets its own phase below, read once per phase; every
            # acquisition shares one grid, so the default phase's read also places the mask.
            phaseImage = self._dcePhase(volumeNode, DEFAULT_DCE_PHASE, phaseCache)[0] if name == "dce" else None
            images[name] = None if phaseImage is not None else mrml_adapter.imageFromVolume(volumeNode)
            masks[name] = mrml_adapter.maskFromSegment(segmentationNode, segmentId, volumeNode,
                                                         phaseImage if phaseImage is not None else images[name])
            resampled[name] = mrml_adapter.segmentWasResampled(segmentationNode, segmentId, volumeNode)
        segmentName = mrml_adapter.segmentSource(segmentationNode, segmentId)
        predictions = []
        for index, model in enumerate(models):
            share = 0.1 + 0.9 * index / len(models)
            step(_("Loading model {n}/{total}").format(n=index + 1, total=len(models)), share)
            predictor = self._predictor(model, device)
            step(_("Predicting with {model}").format(model=predictor.model_id), share + 0.3 / len(models))
            used = predictor.sequences
            modelImages, phaseNote = dict(images), None
            if "dce" in used:
                phaseImage, phaseNote = self._dcePhase(
                    volumeNodes["dce"], int(predictor.card.get("dce_phase", DEFAULT_DCE_PHASE)), phaseCache)
                if phaseImage is not None:
                    modelImages["dce"] = phaseImage
            prediction = predictor.predict_case(
                modelImages, masks, heatmap=heatmap,
                image_sources={n: mrml_adapter.nodeSource(volumeNodes[n]) for n in used},
                mask_sources={n: segmentName for n in used},
                series_descriptions={n: _seriesDescription(volumeNodes[n]) for n in used})
            if phaseNote:
                prediction.warnings.insert(0, phaseNote)
            for name in reversed(used):
                if resampled[name]:
                    prediction.warnings.insert(0, "the VOI was drawn on another grid and was resampled (nearest "
                                                  "neighbour) onto the grid of '{}'".format(volumeNodes[name].GetName()))
            logging.info("LVIPredictor: %s on %s with %s (weights %s) on %s: probability %.3f, label %d, %s",
                         predictor.model_id, " + ".join("'{}'".format(volumeNodes[n].GetName()) for n in used),
                         predictor.card["architecture"], prediction.weights_sha256[:12], prediction.device,
                         prediction.probability, prediction.label, "; ".join(prediction.warnings) or "no warnings")
            predictions.append(prediction)
        step(_("Done"), 1.0)
        return predictions

    @staticmethod
    def _dcePhase(volumeNode, phase: int, cache: dict):
        """(image, warning) of the DCE phase a model reads when ``volumeNode`` shows one
        acquisition of a whole dynamic series (the DICOM browser loads DCE that way); (None,
        None) for an ordinary volume, which is taken as the phase the user chose."""
        dynamic = mrml_adapter.dynamicSeries(volumeNode)
        if dynamic is None:
            return None, None
        seriesName, shown, count = dynamic
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

    @staticmethod
    def sequenceOf(volumeNode) -> str:
        """"t2" or "dce" for a series, from what the user set or what the series is called."""
        tagged = volumeNode.GetAttribute("LVIPredictor.Sequence") if volumeNode else None
        if tagged in SEQUENCE_NAMES:
            return tagged
        from LVIPredictorLib import inference

        # The core warns when a description looks like the *other* sequence; a warning
        # for exactly one of the two is an unambiguous answer.
        text = _seriesDescription(volumeNode) or ""
        other = {"t2": "dce", "dce": "t2"}
        looksLike = [other[sequence] for sequence in SEQUENCE_NAMES if sequences.description_warning(text, sequence)]
        if len(looksLike) == 1:
            return looksLike[0]
        raise InputError(mrml_adapter.nodeSource(volumeNode),
                         "cannot tell whether this series is FS-T2WI or DCE; pass sequence='t2' or 'dce'.")

    # --- results ------------------------------------------------------------------

    def addResultsToTable(self, predictions, tableNode=None, volumeNode=None, volumeNodes=None):
        """Append one row per prediction to ``tableNode`` (created when None) and file the
        table in the subject hierarchy under the series' study, so it is saved with the scene.

        ``volumeNodes`` ({sequence: node}) names each row's series when several were used.
        """
        import torch

        if tableNode is None:
            tableNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLTableNode", _("LVI predictions"))
        table = tableNode.GetTable()
        for name in RESULT_COLUMNS:
            if table.GetColumnByName(name) is None:
                column = vtk.vtkDoubleArray() if name in ("probability", "threshold") else vtk.vtkStringArray()
                column.SetName(name)
                column.SetNumberOfTuples(table.GetNumberOfRows())
                table.AddColumn(column)
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        slicerVersion = getattr(getattr(slicer, "app", None), "applicationVersion", "") or ""
        for prediction in predictions:
            used = [(volumeNodes or {}).get(n) for n in sequences.channels(prediction.sequence)]
            series = [node for node in used if node is not None] or ([volumeNode] if volumeNode else [])
            values = {
                "time": now, "volume": " + ".join(node.GetName() for node in series), "sequence": prediction.sequence,
                "model_id": prediction.model_id, "architecture": prediction.architecture,
                "probability": "{:.6f}".format(prediction.probability), "label": "LVI+" if prediction.label else "LVI-",
                "threshold": "{:.6f}".format(prediction.threshold), "demo": "yes" if prediction.demo else "no",
                "device": prediction.device, "weights_sha256": prediction.weights_sha256,
                "warnings": " | ".join(prediction.warnings), "lvipredictor_version": LVIPredictorLib.__version__,
                "torch_version": torch.__version__, "slicer_version": str(slicerVersion),
            }
            row = tableNode.AddEmptyRow()
            for name, value in values.items():
                tableNode.SetCellText(row, tableNode.GetColumnIndex(name), str(value))
        tableNode.Modified()
        if volumeNode is not None:
            _fileBeside(tableNode, volumeNode)
        return tableNode

    def writeDicomReport(self, predictions, volumeNodes, segmentationNode, segmentId, reportPath,
                         segmentationPath: Optional[str] = None, sourceFiles: Optional[dict] = None,
                         dcePhase: int = DEFAULT_DCE_PHASE, overwrite: bool = False) -> dict:
        """Write ``predictions`` (from predict/predictCase/predictAll on ``volumeNodes``) as a DICOM SR
        (TID 1500 measurement report) and, with ``segmentationPath``, the segment as a DICOM SEG on each
        series' own DICOM images (two series: ``<stem>-t2.dcm`` and ``<stem>-dce.dcm``).

        ``volumeNodes``: {"t2": node, "dce": node}. The DICOM images of each series are
        ``sourceFiles[sequence]`` (a folder or a list of files) when given, else the files Slicer's DICOM
        database holds for the series the volume was loaded from (its ``DICOM.instanceUIDs``); a dynamic
        series is read at ``dcePhase``. Nothing is overwritten unless ``overwrite``. Returns
        {"sr": path, "seg": {sequence: path}}.
        """
        from LVIPredictorLib.dicom import sr_seg
        from LVIPredictorLib.inputs import readers

        volumeNodes = {name: node for name, node in volumeNodes.items() if node is not None}
        used = sorted({n for p in predictions for n in sequences.channels(p.sequence)})
        missing = [sequences.LABELS[n] for n in used if n not in volumeNodes]
        if missing:
            raise InputError(str(reportPath), "the predictions read {}; pass its volume node in volumeNodes".format(
                " and ".join(missing)))
        segPaths = sr_seg.segmentation_paths(segmentationPath, used) if segmentationPath else {}
        for path in [reportPath] + list(segPaths.values()):
            sr_seg.refuse_existing(path, overwrite)
        sources = {}
        for name in used:
            volumeNode = volumeNodes[name]
            given = (sourceFiles or {}).get(name)
            if given is not None and not isinstance(given, (list, tuple)):
                image, info = readers.read_image_with_info(given, dce_phase=dcePhase, sequence=name)
            else:
                files = list(given) if given is not None else _dicomFiles(volumeNode)
                image, info = readers.read_dicom_files_with_info(files, source=mrml_adapter.nodeSource(volumeNode),
                                                            dce_phase=dcePhase, sequence=name)
            shown = mrml_adapter.imageFromVolume(volumeNode)
            if not readers.same_geometry(shown, image, tol=1e-3):
                raise InputError(mrml_adapter.nodeSource(volumeNode),
                                 "does not lie on the grid of the DICOM series {} ({}); the report must reference the "
                                 "images the prediction was made on".format(info.series_uid, info.source))
            mask = mrml_adapter.maskFromSegment(segmentationNode, segmentId, volumeNode, shown)
            sources[name] = sr_seg.dicom_source(name, image, mask, info)
        segmentations = {name: sr_seg.write_segmentation(sources[name], path, overwrite=overwrite)
                         for name, path in segPaths.items()}
        sr_seg.write_report(predictions, sources, reportPath, segmentations=segmentations, overwrite=overwrite)
        logging.info("LVIPredictor: DICOM SR %s%s", reportPath,
                     "".join(", SEG {}".format(path) for path in segPaths.values()))
        return {"sr": str(reportPath), "seg": segPaths}

    def showHeatmap(self, prediction, volumeNode):
        """The prediction's Grad-CAM as a volume node shown as the foreground over ``volumeNode``."""
        if prediction.heatmap is None:
            raise InputError(prediction.model_id, "was run without heatmap=True; there is no heat-map to show.")
        name = "{} LVI heat-map ({})".format(volumeNode.GetName(), prediction.model_id)
        heatmapNode = slicer.mrmlScene.GetFirstNodeByName(name)
        if heatmapNode is None:
            heatmapNode = mrml_adapter.addVolumeFromImage(prediction.heatmap, name)
        else:
            mrml_adapter.updateVolumeFromImage(heatmapNode, prediction.heatmap)
        display = heatmapNode.GetDisplayNode()
        colorNode = slicer.mrmlScene.GetNodeByID("vtkMRMLColorTableNodeRainbow")
        if colorNode is not None:
            display.SetAndObserveColorNodeID(colorNode.GetID())
        display.SetAutoWindowLevel(False)
        display.SetWindowLevelMinMax(0.0, 1.0)
        _fileBeside(heatmapNode, volumeNode)
        slicer.util.setSliceViewerLayers(background=volumeNode, foreground=heatmapNode, foregroundOpacity=0.4)
        return heatmapNode

    # --- masks and cohort export --------------------------------------------------

    def importMask(self, path, segmentationNode, referenceVolumeNode, label: Optional[int] = None) -> str:
        """Load an ITK-SNAP/NRRD label mask as ONE segment on the reference series' grid.

        The core's label rule decides which voxels are tumour (any non-zero label unless
        ``label`` is given), so a mask with labels 1 and 2 becomes one VOI — not the two
        segments Slicer's own loader would make. Returns the new segment's ID.
        """
        from LVIPredictorLib import preprocessing
        from LVIPredictorLib.inputs import readers

        reference = mrml_adapter.imageFromVolume(referenceVolumeNode)
        mask = readers.read_mask(path, reference=reference)
        binary, warnings = preprocessing.binary_voi(_asArray(mask), label, source=str(path))
        for warning in warnings:
            logging.warning("LVIPredictor: %s: %s", path, warning)
        binaryImage = _imageLike(binary, mask)
        name = Path(str(path)).name.split(".")[0] + ("" if label is None else " label {}".format(label))
        return mrml_adapter.importMaskIntoSegmentation(binaryImage, segmentationNode, referenceVolumeNode, name)

    def exportCaseToCohort(self, cohortDir, caseId, patientId, lvi, segmentationNode, segmentId,
                           t2Volume=None, dceVolume=None, dceSegmentId=None, clinical=None,
                           dcePhase: int = DEFAULT_DCE_PHASE) -> dict:
        """Write the series, the VOI (on each series' grid) and the label into a cohort folder.

        The same segment serves both series unless ``dceSegmentId`` is given. A DCE volume that
        shows one acquisition of a whole dynamic series is exported as phase ``dcePhase`` of it
        (the cohort holds one DCE phase per case), whichever acquisition is on screen. Returns
        the row appended to cohort.csv.
        """
        series = {}
        for sequence, volume, voi in (("t2", t2Volume, segmentId), ("dce", dceVolume, dceSegmentId or segmentId)):
            if volume is None:
                continue
            image, note = self._dcePhase(volume, dcePhase, {}) if sequence == "dce" else (None, None)
            if note:
                logging.warning("LVIPredictor export of case %s: %s", caseId, note)
            if image is None:
                image = mrml_adapter.imageFromVolume(volume)
            series[sequence] = (image, mrml_adapter.maskFromSegment(segmentationNode, voi, volume, image))
        if not series:
            raise InputError(str(cohortDir), "select the FS-T2WI and/or DCE series to export.")
        return cohort_export.exportCase(cohortDir, caseId, patientId, lvi, series, clinical=clinical)


def _asArray(image):
    import SimpleITK as sitk

    return sitk.GetArrayFromImage(image)


def _imageLike(array, reference):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    return image


def _dicomFiles(volumeNode) -> List[str]:
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


def _seriesDescription(volumeNode) -> Optional[str]:
    """The DICOM series description when the series came through the DICOM browser, else the node name."""
    if volumeNode is None:
        return None
    shNode = slicer.mrmlScene.GetSubjectHierarchyNode()
    item = shNode.GetItemByDataNode(volumeNode) if shNode else 0
    description = shNode.GetItemAttribute(item, "DICOM.SeriesDescription") if item else ""
    return description or volumeNode.GetName()


def _fileBeside(node, volumeNode) -> None:
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


def _cardSummary(card: dict) -> str:
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


#
# LVIPredictorTest
#


class LVIPredictorTest(ScriptedLoadableModuleTest):
    """Self-test for a real Slicer (``Slicer --testing``) on the shipped sample case.

    Where the Python packages the module installs on first use (torch, safetensors) are absent,
    as on a build machine, each test is skipped with a message saying so: --testing never
    installs anything.
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        reason = self._skipReason()
        if reason:
            # "Reload and Test" calls runTest outside unittest's runner, where a SkipTest would show as an error.
            logging.warning(reason)
            self.delayDisplay(reason)
            return
        self.setUp()
        self.test_PredictSampleCaseWithEveryBundledModel()
        self.setUp()
        self.test_PredictSampleCaseWithBothSeries()

    @staticmethod
    def _skipReason() -> Optional[str]:
        missing = DependencyInstaller(headless=True).missing()
        if not missing:
            return None
        return ("LVI Predictor self-test skipped: Python packages not installed: {}. The panel installs them on "
                "the first Predict LVI, after asking; a --testing run never installs.".format(", ".join(missing)))

    def _requirePackages(self):
        reason = self._skipReason()
        if reason:
            self.skipTest(reason)

    def test_PredictSampleCaseWithEveryBundledModel(self):
        self._requirePackages()
        self.delayDisplay(_("Loading the sample case"))
        volume, maskPath = _sampleCase("t2")
        logic = LVIPredictorLogic()
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
        segmentId = logic.importMask(maskPath, segmentation, volume)

        self.delayDisplay(_("Predicting"))
        predictions = logic.predictAll(volume, segmentation, segmentId, sequence="t2", heatmap=True)
        self.assertTrue(predictions, "no bundled FS-T2WI model")
        for prediction in predictions:
            self.assertTrue(0.0 <= prediction.probability <= 1.0)
            self.assertEqual(prediction.label, int(prediction.probability >= prediction.threshold))
        table = logic.addResultsToTable(predictions, volumeNode=volume)
        self.assertEqual(table.GetNumberOfRows(), len(predictions))
        # The radiomics baseline reads features of the whole VOI and has no heat-map.
        withHeatmap = [p for p in predictions if p.heatmap is not None]
        self.assertTrue(withHeatmap, "no bundled FS-T2WI network gave a heat-map")
        heatmap = logic.showHeatmap(withHeatmap[0], volume)
        self.assertEqual(slicer.util.arrayFromVolume(heatmap).shape, slicer.util.arrayFromVolume(volume).shape)
        self.delayDisplay(_("Test passed"))

    def test_PredictSampleCaseWithBothSeries(self):
        """Both series and one segment: every bundled model runs, the fused ones on both."""
        self._requirePackages()
        self.delayDisplay(_("Loading both series of the sample case"))
        t2Volume, maskPath = _sampleCase("t2")
        dceVolume, _dceMask = _sampleCase("dce")
        logic = LVIPredictorLogic()
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
        segmentId = logic.importMask(maskPath, segmentation, t2Volume)
        volumes = {"t2": t2Volume, "dce": dceVolume}
        predictions = logic.predictCase(volumes, segmentation, segmentId)
        self.assertEqual(sorted(p.model_id for p in predictions),
                         sorted(entry["model_id"] for entry in logic.bundledModels()))
        for prediction in predictions:
            self.assertTrue(0.0 <= prediction.probability <= 1.0)
        table = logic.addResultsToTable(predictions, volumeNode=dceVolume, volumeNodes=volumes)
        self.assertEqual(table.GetNumberOfRows(), len(predictions))
        self.delayDisplay(_("Test passed"))


SAMPLE_CASE_ID = "LVI-Sample-001"
# The sample case's NIfTI files (its README documents them; DICOM copies are in dicom/).
SAMPLE_CASE_FILES = {"t2": ("t2.nii.gz", "t2_mask.nii.gz"), "dce": ("dce_phase2.nii.gz", "dce_mask.nii.gz")}
# What Sample Data → LVI sample loads: (file of the case, node name, Slicer file type). One VOI serves
# both series (the Logic maps it onto each grid); the names tell the sequences apart (sequenceOf).
SAMPLE_DATA_FILES = (
    ("t2.nii.gz", SAMPLE_CASE_ID + " FS-T2WI", "VolumeFile"),
    ("dce_phase2.nii.gz", SAMPLE_CASE_ID + " DCE phase 2", "VolumeFile"),
    ("t2_mask.nii.gz", SAMPLE_CASE_ID + " VOI", "SegmentationFile"),
)


def sampleCaseDir() -> Path:
    return resourcesDir() / "SampleData" / SAMPLE_CASE_ID


def sampleDataSource() -> dict:
    """Keyword arguments of ``SampleData.SampleDataLogic.registerCustomSampleDataSource`` for the shipped case.

    The URIs are file:// URIs of the files inside the extension: SampleData copies them into its
    cache and checks each against the SHA-256 in Resources/SampleData/SHA256SUMS; nothing is downloaded.
    """
    caseDir = sampleCaseDir()
    sums = {}
    for line in (caseDir.parent / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, _sep, name = line.partition("  ")
        sums[name.strip()] = digest
    files = [caseDir / name for name, _node, _type in SAMPLE_DATA_FILES]
    return {
        "category": "LVI Predictor",
        "sampleName": "LVI sample",
        "thumbnailFileName": str(resourcesDir() / "Icons" / "LVIPredictor.png"),
        "uris": [path.as_uri() for path in files],
        # Prefixed, because SampleData's cache folder is shared by every module.
        "fileNames": ["{}_{}".format(SAMPLE_CASE_ID, path.name) for path in files],
        "nodeNames": [node for _name, node, _type in SAMPLE_DATA_FILES],
        "loadFileType": [fileType for _name, _node, fileType in SAMPLE_DATA_FILES],
        "checksums": ["SHA256:" + sums["{}/{}".format(SAMPLE_CASE_ID, path.name)] for path in files],
        # Slicer would otherwise stack files with numbered names ("..._t2", "..._phase2") into one volume.
        "loadFileProperties": {"singleFile": True},
    }


def registerSampleData() -> None:
    import SampleData

    SampleData.SampleDataLogic.registerCustomSampleDataSource(**sampleDataSource())


def _sampleCase(sequence: str):
    """(volume node, mask path) of one series of the shipped sample case."""
    caseDir = sampleCaseDir()
    imageName, maskName = SAMPLE_CASE_FILES[sequence]
    # singleFile: Slicer would otherwise stack files with numbered names into one volume.
    volume = slicer.util.loadVolume(str(caseDir / imageName), {"singleFile": True})
    return volume, caseDir / maskName
