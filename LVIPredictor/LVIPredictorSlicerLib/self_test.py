"""The module's self-test, run by ``Slicer --testing`` and "Reload and Test" on the shipped sample case.

LVIPredictor.py imports :class:`LVIPredictorTest`, so Slicer finds it under the module's name.
"""

import logging
from typing import Optional

import slicer
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from LVIPredictorSlicerLib.dependencies import DependencyInstaller
from LVIPredictorSlicerLib.sample_data import sampleCase, sampleClinical


def _logic():
    # The Logic lives in the module file, which imports this one: reach it once both are loaded.
    from LVIPredictor import LVIPredictorLogic

    return LVIPredictorLogic()


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
        volume, maskPath = sampleCase("t2")
        logic = _logic()
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
        """Both series, one segment and the case's clinical values: every bundled model runs, the fused
        ones on both series, the combined (clinical + imaging) ones with the clinical values too."""
        self._requirePackages()
        self.delayDisplay(_("Loading both series of the sample case"))
        t2Volume, maskPath = sampleCase("t2")
        dceVolume, _dceMask = sampleCase("dce")
        logic = _logic()
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
        segmentId = logic.importMask(maskPath, segmentation, t2Volume)
        volumes = {"t2": t2Volume, "dce": dceVolume}
        predictions = logic.predictCase(volumes, segmentation, segmentId, clinical=sampleClinical())
        self.assertEqual(sorted(p.model_id for p in predictions),
                         sorted(entry["model_id"] for entry in logic.bundledModels()))
        # Without clinical values a combined model is left out of "every model", not run on imputed values.
        combined = {card["model_id"] for card in logic.clinicalModels()}
        withoutClinical = logic.predictCase(volumes, segmentation, segmentId)
        self.assertEqual(sorted(p.model_id for p in withoutClinical),
                         sorted(p.model_id for p in predictions if p.model_id not in combined))
        for prediction in predictions:
            self.assertTrue(0.0 <= prediction.probability <= 1.0)
        table = logic.addResultsToTable(predictions, volumeNode=dceVolume, volumeNodes=volumes)
        self.assertEqual(table.GetNumberOfRows(), len(predictions))
        self.delayDisplay(_("Test passed"))
