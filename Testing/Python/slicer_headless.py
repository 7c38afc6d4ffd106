"""A headless Slicer for tests: real MRML from slicer-core, stand-ins for the GUI layer.

slicer-core (PyPI) ships Slicer's MRML classes, module logics and ``slicer.util``,
but not the application: after ``import slicer`` there is no ``slicer.app``,
``slicer.mrmlScene`` or ``slicer.modules``, and the Qt-based Python packages (qt, ctk,
``slicer.ScriptedLoadableModule``, ``slicer.parameterNodeWrapper``, ``slicer.i18n``)
are absent. This module builds the missing application pieces around a real scene so
that the module's Logic and the adapter run against real nodes, and provides the
smallest stand-ins that let ``LVIPredictor.py`` be imported. The stand-ins are used by
tests only; they are never consulted by the product.
"""

import importlib
import os
import sys
import types
import unittest
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULE_DIR = REPO_ROOT / "LVIPredictor"

# vtkSlicerVolumesLogic::AddArchetypeVolume loading options (bit flags in the C++ API).
_LABELMAP, _CENTERED, _SINGLE_FILE, _AUTO_WINDOW_LEVEL, _DISCARD_ORIENTATION = 1, 2, 4, 8, 16


class _Module:
    """What ``slicer.modules.<name>`` offers that the code under test uses: ``logic()``."""

    def __init__(self, logic):
        self._logic = logic

    def logic(self):
        return self._logic


class CoreIOManager:
    """The two calls ``slicer.util.load*`` / ``saveNode`` make on ``slicer.app.coreIOManager()``.

    Reading and writing go through the same module logics and storage nodes the
    desktop application uses, so the traps of real Slicer loading (label values
    becoming segments, numbered files stacking into one volume) are reproduced.
    """

    def __init__(self, scene, volumesLogic, segmentationsLogic):
        self.scene = scene
        self.volumesLogic = volumesLogic
        self.segmentationsLogic = segmentationsLogic

    def fileType(self, filename):
        return "SegmentationFile" if str(filename).endswith(".seg.nrrd") else "VolumeFile"

    def loadNodes(self, fileType, properties, loadedNodes, userMessages=None):
        fileName = str(properties["fileName"])
        name = properties.get("name") or Path(fileName).name.split(".")[0]
        if fileType == "SegmentationFile":
            # As qSlicerSegmentationsReader::load: the "name" property names the node when given.
            node = self.segmentationsLogic.LoadSegmentationFromFile(
                fileName, bool(properties.get("autoOpacities", True)), properties.get("name") or "")
        elif fileType == "VolumeFile":
            options = 0
            for key, flag in (("labelmap", _LABELMAP), ("center", _CENTERED), ("singleFile", _SINGLE_FILE),
                              ("autoWindowLevel", _AUTO_WINDOW_LEVEL), ("discardOrientation", _DISCARD_ORIENTATION)):
                if properties.get(key, key == "autoWindowLevel"):
                    options |= flag
            node = self.volumesLogic.AddArchetypeVolume(fileName, name, options)
        else:
            raise NotImplementedError("headless IO manager cannot load file type " + fileType)
        if node is None:
            return False
        loadedNodes.AddItem(node)
        return True

    def fileWriterFileType(self, node):
        return "SegmentationFile" if node.IsA("vtkMRMLSegmentationNode") else "VolumeFile"

    def saveNodes(self, fileType, properties, userMessages=None):
        node = self.scene.GetNodeByID(properties["nodeID"])
        storage = node.GetStorageNode()
        if storage is None:
            node.AddDefaultStorageNode()
            storage = node.GetStorageNode()
        storage.SetFileName(str(properties["fileName"]))
        return bool(storage.WriteData(node))


class _App:
    """``slicer.app`` as seen by ``slicer.util`` and by the module's Logic."""

    def __init__(self, ioManager, temporaryPath):
        self._io = ioManager
        self.temporaryPath = str(temporaryPath)
        self.commandOptions = types.SimpleNamespace(testingEnabled=True)

    def coreIOManager(self):
        return self._io

    def testingEnabled(self):
        return True

    def processEvents(self):
        pass


class HeadlessSlicer:
    """A scene with the application logic and the module logics the Logic relies on."""

    def __init__(self, temporaryPath):
        import slicer

        self.scene = slicer.vtkMRMLScene()
        self.appLogic = slicer.vtkSlicerApplicationLogic()
        self.appLogic.SetMRMLScene(self.scene)
        # No Slicer home: colour tables come from code, not from files on disk.
        self.appLogic.SetHomeDirectory(str(temporaryPath))
        self.appLogic.SetShareDirectory(str(temporaryPath))
        colors = self._register("Colors", slicer.vtkSlicerColorLogic)
        self.appLogic.SetColorLogic(colors)
        self.volumes = self._register("Volumes", slicer.vtkSlicerVolumesLogic)
        self.segmentations = self._register("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic)
        self.subjectHierarchy = self._register("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic)
        self.tables = self._register("Tables", slicer.vtkSlicerTablesLogic)
        # Sequences: a dynamic (DCE) series loaded whole is a sequence shown through a browser's proxy node.
        self.sequences = self._register("Sequences", slicer.vtkSlicerSequencesLogic)
        self.app = _App(CoreIOManager(self.scene, self.volumes, self.segmentations), temporaryPath)
        self.modules = types.SimpleNamespace(
            volumes=_Module(self.volumes),
            segmentations=_Module(self.segmentations),
            subjecthierarchy=_Module(self.subjectHierarchy),
            colors=_Module(colors),
            tables=_Module(self.tables),
            sequences=_Module(self.sequences),
        )

    def _register(self, moduleName, logicClass):
        # The application logic must be known before the scene: logics look up
        # shared services (colour nodes, converter rules) when the scene is set,
        # and other logics find them by module name (Volumes asks for "Colors").
        logic = logicClass()
        logic.SetMRMLApplicationLogic(self.appLogic)
        logic.SetMRMLScene(self.scene)
        self.appLogic.SetModuleLogic(moduleName, logic)
        return logic

    def install(self):
        import slicer

        slicer.mrmlScene = self.scene
        slicer.app = self.app
        slicer.modules = self.modules

    def uninstall(self):
        import slicer

        for name in ("mrmlScene", "app", "modules"):
            if hasattr(slicer, name):
                delattr(slicer, name)


# ---------------------------------------------------------------------------
# Stand-ins for the Qt-based packages, so that LVIPredictor.py imports. They carry
# no behaviour the Logic depends on: the Logic must work without them.


def _parameterNodeWrapper(cls):
    return cls


class _ScriptedLoadableModuleLogic:
    def __init__(self, parent=None):
        self.parent = parent


def _standinModules():
    slicerSLM = types.ModuleType("slicer.ScriptedLoadableModule")
    slicerSLM.ScriptedLoadableModule = type("ScriptedLoadableModule", (), {"__init__": lambda self, parent=None: None})
    slicerSLM.ScriptedLoadableModuleWidget = type("ScriptedLoadableModuleWidget", (), {})
    slicerSLM.ScriptedLoadableModuleLogic = _ScriptedLoadableModuleLogic
    # Slicer's ScriptedLoadableModuleTest is a unittest.TestCase whose delayDisplay shows a
    # message in the GUI; headless there is nothing to show.
    slicerSLM.ScriptedLoadableModuleTest = type("ScriptedLoadableModuleTest", (unittest.TestCase,), {
        "delayDisplay": lambda self, message, msec=None: None})

    pnw = types.ModuleType("slicer.parameterNodeWrapper")
    pnw.parameterNodeWrapper = _parameterNodeWrapper
    pnw.WithinRange = lambda low, high: ("WithinRange", low, high)
    pnw.Choice = lambda choices: ("Choice", tuple(choices))
    pnw.Default = lambda value: ("Default", value)

    i18n = types.ModuleType("slicer.i18n")
    i18n.tr = lambda text: text
    i18n.translate = lambda context, text: text

    qt = types.ModuleType("qt")
    qt.QObject = type("QObject", (), {})
    ctk = types.ModuleType("ctk")
    return {
        "slicer.ScriptedLoadableModule": slicerSLM,
        "slicer.parameterNodeWrapper": pnw,
        "slicer.i18n": i18n,
        "qt": qt,
        "ctk": ctk,
    }


def importModuleFile():
    """Import LVIPredictor.py with the stand-ins in place of the absent GUI packages."""
    import slicer

    for name, module in _standinModules().items():
        if name not in sys.modules:
            sys.modules[name] = module
            if name.startswith("slicer."):
                setattr(slicer, name.split(".", 1)[1], module)
    if str(MODULE_DIR) not in sys.path:
        sys.path.insert(0, str(MODULE_DIR))
    return importlib.import_module("LVIPredictor")


@pytest.fixture
def headless_slicer(tmp_path):
    """A fresh headless Slicer (scene, app, modules) for one test."""
    instance = HeadlessSlicer(tmp_path)
    instance.install()
    try:
        yield instance
    finally:
        instance.scene.Clear(1)
        instance.uninstall()


@pytest.fixture(scope="session")
def module_file():
    """The LVIPredictor module file, imported once."""
    return importModuleFile()


@pytest.fixture(scope="session")
def sample_data(module_file):
    """LVIPredictorSlicerLib.sample_data (importable once the module file's stand-ins are in place)."""
    return importlib.import_module("LVIPredictorSlicerLib.sample_data")


# ---------------------------------------------------------------------------
# Model cards: freshly initialised networks saved like real weights, so the Logic runs
# the whole path (card, checksum, preprocessing spec, threshold) without bundled weights.

TEST_MODELS = (("t2_vanilla", "vanilla_cnn_2d", "t2"), ("t2_resnet3d", "resnet10_3d", "t2"),
               ("dce_vanilla", "vanilla_cnn_2d", "dce"), ("fused_vanilla", "vanilla_cnn_2d", "t2+dce"))


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    """A Resources/Models-like folder: four cards + catalog.json (two T2 models, one DCE, one fused)."""
    import json

    import torch

    from LVIPredictorLib import models, preprocessing, weights
    from LVIPredictorLib.vocabulary import sequences

    folder = tmp_path_factory.mktemp("Models")
    entries = []
    for index, (modelId, architecture, sequence) in enumerate(TEST_MODELS):
        torch.manual_seed(index)
        config = dict(models.default_config(architecture), in_channels=len(sequences.channels(sequence)))
        card = {
            "model_id": modelId, "architecture": architecture, "architecture_config": config,
            "sequence": sequence, "dce_phase": 2,
            "preprocessing": preprocessing.default_spec(architecture).to_dict(),
            "threshold": 0.5, "threshold_method": "fixed for tests", "demo": True,
            "training": {"n_cases": 0, "command": "untrained test weights"}, "metrics": {},
        }
        weights.save_model(models.build_model(architecture, **config), card, folder / modelId, dtype="float32")
        entries.append({"model_id": modelId, "architecture": architecture, "sequence": sequence,
                        "card": modelId + ".json", "demo": True})
    (folder / "catalog.json").write_text(json.dumps({"models": entries}), encoding="utf-8")
    return folder


@pytest.fixture
def bundled_models(models_dir, monkeypatch):
    """Makes ``models_dir`` the bundled catalog for one test."""
    monkeypatch.setenv("LVI_MODELS_DIR", str(models_dir))
    return models_dir


def dynamic_series(phases):
    """A dynamic series loaded whole, as the DICOM browser does: a sequence, a browser, a proxy volume."""
    import slicer

    from LVIPredictorSlicerLib import mrml_adapter

    sequence = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSequenceNode", "ep2d_dyn_vibe")
    for index, image in enumerate(phases):
        item = slicer.vtkMRMLScalarVolumeNode()
        mrml_adapter.updateVolumeFromImage(item, image)
        sequence.SetDataNodeAtValue(item, str(index))
    proxy = mrml_adapter.addVolumeFromImage(phases[0], "ep2d_dyn_vibe proxy")
    browser = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode")
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    browser.AddProxyNode(proxy, sequence, False)
    browser.SetSelectedItemNumber(0)
    return proxy, browser


def multi_volume(phases, name="ep2d_dyn_vibe multivolume"):
    """A dynamic series as the legacy MultiVolume import leaves it: one voxel component per
    acquisition and the importer's frame-count attribute. slicer-core has no
    vtkMRMLMultiVolumeNode class; a vector volume node is read the same way by
    ``slicer.util.arrayFromVolume``."""
    import numpy as np
    import SimpleITK as sitk
    import slicer

    from LVIPredictorSlicerLib import mrml_adapter

    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLVectorVolumeNode", name)
    mrml_adapter.updateVolumeFromImage(node, phases[0])  # geometry
    slicer.util.updateVolumeFromArray(node, np.stack([sitk.GetArrayFromImage(p) for p in phases], axis=-1))
    node.SetAttribute("MultiVolume.NumberOfFrames", str(len(phases)))
    return node
