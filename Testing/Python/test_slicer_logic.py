"""LVIPredictorLogic on a headless scene: the same answers as the core, results saved in the scene."""

import numpy as np
import pytest
import SimpleITK as sitk

from slicer_headless import (bundled_models, dynamic_series, headless_slicer, models_dir, module_file,  # noqa: F401
                             multi_volume, sample_data)
from synthetic_images import make_grid, mr_image, rotation_z, sphere_mask

CENTRE, RADIUS = (1.0, -2.0, 0.0), 7.0


def _series():
    grid = make_grid(size=(56, 52, 14), spacing=(0.7, 0.8, 3.0), origin=(-19.0, -22.0, -20.0))
    return mr_image(grid, centre=CENTRE, radius=RADIUS)


def _maskOnRotatedFinerGrid():
    grid = make_grid(size=(44, 44, 36), spacing=(0.5, 0.5, 1.0), origin=(-11.0, -13.0, -17.0),
                     direction=rotation_z(0.4))
    return sphere_mask(grid, centre=CENTRE, radius=RADIUS)


@pytest.fixture
def case(headless_slicer, tmp_path):
    """A series loaded by Slicer from NIfTI and a VOI segment stored on another (rotated, finer) grid."""
    import slicer

    from LVIPredictorSlicerLib import mrml_adapter

    image, mask = _series(), _maskOnRotatedFinerGrid()
    sitk.WriteImage(image, str(tmp_path / "t2.nii.gz"))
    volume = slicer.util.loadVolume(str(tmp_path / "t2.nii.gz"), {"singleFile": True})
    drawnOn = mrml_adapter.addVolumeFromImage(mask, "drawing grid")
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
    segmentId = mrml_adapter.importMaskIntoSegmentation(mask, segmentation, drawnOn, "tumour")
    return {"image": sitk.ReadImage(str(tmp_path / "t2.nii.gz")), "mask": mask, "volume": volume,
            "segmentation": segmentation, "segmentId": segmentId}


@pytest.mark.parametrize("modelId", ["t2_vanilla", "t2_resnet3d"])
def test_prediction_matches_simpleitk_side_preprocessing(module_file, bundled_models, case, modelId):
    from LVIPredictorLib import inference

    logic = module_file.LVIPredictorLogic()
    viaSlicer = logic.predict(case["volume"], case["segmentation"], case["segmentId"], model=modelId, device="cpu")
    direct = inference.Predictor(str(bundled_models / (modelId + ".json")), device="cpu").predict(
        case["image"], case["mask"])
    assert viaSlicer.model_id == direct.model_id and viaSlicer.weights_sha256 == direct.weights_sha256
    assert viaSlicer.probability == pytest.approx(direct.probability, abs=1e-3)
    assert viaSlicer.label == int(viaSlicer.probability >= viaSlicer.threshold)
    assert any("resampled" in warning for warning in viaSlicer.warnings)


def test_predict_all_runs_every_bundled_model_of_the_series_sequence(module_file, bundled_models, case):
    logic = module_file.LVIPredictorLogic()
    predictions = logic.predictAll(case["volume"], case["segmentation"], case["segmentId"], sequence="t2", device="cpu")
    assert sorted(p.model_id for p in predictions) == ["t2_resnet3d", "t2_vanilla"]
    assert all(p.sequence == "t2" and 0.0 <= p.probability <= 1.0 for p in predictions)


def test_predict_all_reads_the_sequence_from_the_series_name(module_file, bundled_models, case):
    case["volume"].SetName("ep2d_dyn_vibe_phase2")
    logic = module_file.LVIPredictorLogic()
    predictions = logic.predictAll(case["volume"], case["segmentation"], case["segmentId"], device="cpu")
    assert [p.model_id for p in predictions] == ["dce_vanilla"]


def test_progress_is_reported_in_stages_up_to_completion(module_file, bundled_models, case):
    stages = []
    module_file.LVIPredictorLogic().predict(case["volume"], case["segmentation"], case["segmentId"], "t2_vanilla",
                                            device="cpu", progressCallback=lambda s, f: stages.append((s, f)))
    fractions = [fraction for _, fraction in stages]
    assert len(stages) >= 3 and fractions == sorted(fractions) and fractions[-1] == 1.0


def test_cancel_stops_the_run_before_any_model_runs(module_file, bundled_models, case):
    with pytest.raises(module_file.PredictionCancelled):
        module_file.LVIPredictorLogic().predictAll(case["volume"], case["segmentation"], case["segmentId"],
                                                   sequence="t2", device="cpu", cancelCheck=lambda: True)


def test_results_table_has_one_row_per_run_and_a_subject_hierarchy_item(module_file, bundled_models, case):
    import slicer

    logic = module_file.LVIPredictorLogic()
    predictions = logic.predictAll(case["volume"], case["segmentation"], case["segmentId"], sequence="t2", device="cpu")
    table = logic.addResultsToTable(predictions, volumeNode=case["volume"])
    table = logic.addResultsToTable(predictions[:1], table, volumeNode=case["volume"])
    assert table.GetNumberOfRows() == 3
    assert table.GetCellText(0, table.GetColumnIndex("model_id")) == predictions[0].model_id
    assert float(table.GetCellText(0, table.GetColumnIndex("probability"))) == pytest.approx(
        predictions[0].probability, abs=1e-6)
    assert table.GetCellText(0, table.GetColumnIndex("weights_sha256")) == predictions[0].weights_sha256
    assert "demo" in table.GetCellText(0, table.GetColumnIndex("warnings")).lower()
    shNode = slicer.mrmlScene.GetSubjectHierarchyNode()
    assert shNode.GetItemByDataNode(table) != 0


def test_results_table_is_filed_under_the_study_of_the_series(module_file, bundled_models, case):
    import slicer

    shNode = slicer.mrmlScene.GetSubjectHierarchyNode()
    patient = shNode.CreateSubjectItem(shNode.GetSceneItemID(), "Patient 1")
    study = shNode.CreateStudyItem(patient, "Breast MRI")
    volumeItem = shNode.GetItemByDataNode(case["volume"])
    if volumeItem:
        shNode.SetItemParent(volumeItem, study)
    else:  # headless: no subject hierarchy plugin created the item when the series was loaded
        shNode.CreateItem(study, case["volume"])
    logic = module_file.LVIPredictorLogic()
    prediction = logic.predict(case["volume"], case["segmentation"], case["segmentId"], "t2_vanilla", device="cpu")
    table = logic.addResultsToTable([prediction], volumeNode=case["volume"])
    assert shNode.GetItemParent(shNode.GetItemByDataNode(table)) == study


def test_heatmap_is_shown_as_foreground_on_the_series_grid(module_file, bundled_models, case):
    import slicer

    composite = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSliceCompositeNode")
    logic = module_file.LVIPredictorLogic()
    prediction = logic.predict(case["volume"], case["segmentation"], case["segmentId"], "t2_resnet3d",
                               device="cpu", heatmap=True)
    node = logic.showHeatmap(prediction, case["volume"])
    values = slicer.util.arrayFromVolume(node)
    assert values.shape == slicer.util.arrayFromVolume(case["volume"]).shape
    assert 0.0 <= values.min() and values.max() <= 1.0 + 1e-6
    assert composite.GetForegroundVolumeID() == node.GetID()


def _importTwoLabelMask(module_file, tmp_path, **options):
    """An ITK-SNAP-style file with labels 1 (the lesion) and 2 (its core) imported onto a series:
    (segmentation, segment ID, volume, the mask written)."""
    import slicer

    from LVIPredictorSlicerLib import mrml_adapter

    image = _series()
    volume = mrml_adapter.addVolumeFromImage(image, "t2")
    twoLabels = sphere_mask(image, centre=CENTRE, radius=RADIUS) + sphere_mask(image, centre=CENTRE, radius=3.0)
    sitk.WriteImage(twoLabels, str(tmp_path / "itksnap.nii.gz"))
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
    segmentId = module_file.LVIPredictorLogic().importMask(tmp_path / "itksnap.nii.gz", segmentation, volume,
                                                           **options)
    return segmentation, segmentId, volume, twoLabels


def test_imported_mask_with_two_labels_becomes_one_segment(module_file, headless_slicer, tmp_path):
    import slicer

    segmentation, segmentId, volume, twoLabels = _importTwoLabelMask(module_file, tmp_path)
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 1
    voxels = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentId, volume)
    assert np.array_equal(voxels > 0, sitk.GetArrayFromImage(twoLabels) > 0)


def test_imported_mask_keeps_only_the_chosen_label(module_file, headless_slicer, tmp_path):
    import slicer

    segmentation, segmentId, volume, twoLabels = _importTwoLabelMask(module_file, tmp_path, label=2)
    voxels = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentId, volume)
    assert np.array_equal(voxels > 0, sitk.GetArrayFromImage(twoLabels) == 2)
    assert segmentation.GetNodeReference(slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole()) \
        is not None or segmentation.GetSegmentation().GetConversionParameter("Reference image geometry")


def test_unknown_model_is_an_error_listing_the_bundled_ones(module_file, bundled_models, case):
    from LVIPredictorLib.errors import WeightsError

    with pytest.raises(WeightsError, match="t2_vanilla"):
        module_file.LVIPredictorLogic().predict(case["volume"], case["segmentation"], case["segmentId"], "nope")


def test_sample_case_predicts_like_the_core_from_its_files(module_file, sample_data, bundled_models, headless_slicer):
    """The self-test's path on the shipped sample case: Slicer loading + mask import = core on the files."""
    import slicer

    from LVIPredictorLib import inference
    from LVIPredictorLib.inputs import readers

    volume, maskPath = sample_data.sampleCase("t2")
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
    logic = module_file.LVIPredictorLogic()
    segmentId = logic.importMask(maskPath, segmentation, volume)
    viaSlicer = logic.predict(volume, segmentation, segmentId, "t2_resnet3d", device="cpu")
    image = readers.read_image(str(maskPath.parent / sample_data.SAMPLE_CASE_FILES["t2"][0]))
    direct = inference.Predictor(str(bundled_models / "t2_resnet3d.json"), device="cpu").predict(
        image, readers.read_mask(maskPath, reference=image))
    assert viaSlicer.probability == pytest.approx(direct.probability, abs=1e-4)
    assert not any("resampled" in warning for warning in viaSlicer.warnings)


def _dceSeries():
    grid = make_grid(size=(50, 48, 30), spacing=(0.8, 0.8, 1.5), origin=(-18.0, -21.0, -21.0))
    return mr_image(grid, centre=CENTRE, radius=RADIUS, seed=5)


def test_predict_case_runs_single_and_fused_models_on_both_series(module_file, bundled_models, case, tmp_path):
    """One segment, two series on different grids: each model gets its series; the fused one both."""
    import slicer

    from LVIPredictorLib import inference

    sitk.WriteImage(_dceSeries(), str(tmp_path / "dce.nii.gz"))
    dceVolume = slicer.util.loadVolume(str(tmp_path / "dce.nii.gz"), {"singleFile": True})
    volumes = {"t2": case["volume"], "dce": dceVolume}
    logic = module_file.LVIPredictorLogic()
    predictions = logic.predictCase(volumes, case["segmentation"], case["segmentId"], device="cpu", heatmap=True)
    assert sorted(p.model_id for p in predictions) == ["dce_vanilla", "fused_vanilla", "t2_resnet3d", "t2_vanilla"]
    fused = next(p for p in predictions if p.model_id == "fused_vanilla")
    direct = inference.Predictor(str(bundled_models / "fused_vanilla.json"), device="cpu").predict_case(
        {"t2": case["image"], "dce": sitk.ReadImage(str(tmp_path / "dce.nii.gz"))},
        {"t2": case["mask"], "dce": case["mask"]})
    assert fused.probability == pytest.approx(direct.probability, abs=1e-3)
    assert fused.heatmap_sequence == "dce"
    assert sum("resampled" in w for w in fused.warnings) == 2  # the segment was drawn on neither grid

    table = logic.addResultsToTable(predictions, volumeNode=case["volume"], volumeNodes=volumes)
    rows = {table.GetCellText(r, table.GetColumnIndex("model_id")): table.GetCellText(r, table.GetColumnIndex("volume"))
            for r in range(table.GetNumberOfRows())}
    assert rows["fused_vanilla"] == "{} + {}".format(case["volume"].GetName(), dceVolume.GetName())
    assert rows["dce_vanilla"] == dceVolume.GetName()

    with pytest.raises(module_file.InputError, match="predictCase"):
        logic.predict(dceVolume, case["segmentation"], case["segmentId"], "fused_vanilla", device="cpu")
    onlyT2 = logic.predictCase({"t2": case["volume"], "dce": None}, case["segmentation"], case["segmentId"],
                               device="cpu")
    assert sorted(p.model_id for p in onlyT2) == ["t2_resnet3d", "t2_vanilla"]


def test_module_self_test_passes_on_the_sample_case_with_the_bundled_models(module_file, headless_slicer):
    """What `Slicer --testing` runs (the GUI's delayDisplay is a no-op here)."""
    module_file.LVIPredictorTest("runTest").runTest()


def test_a_whole_dynamic_series_gives_the_model_its_phase_not_the_one_on_screen(module_file, headless_slicer, case):
    from LVIPredictorLib import inference

    card = str(module_file.resourcesDir() / "Models" / "dce-vanilla_cnn_2d.json")  # trained: tells phases apart
    grid = make_grid(size=(50, 48, 30), spacing=(0.8, 0.8, 1.5), origin=(-18.0, -21.0, -21.0))
    phases = [mr_image(grid, centre=CENTRE, radius=0.5, seed=7),  # pre-contrast: no enhancing lesion
              mr_image(grid, centre=CENTRE, radius=RADIUS, seed=5), mr_image(grid, centre=CENTRE, radius=RADIUS, seed=6)]
    proxy, browser = dynamic_series(phases)
    logic = module_file.LVIPredictorLogic()
    shownPhase1 = logic.predict(proxy, case["segmentation"], case["segmentId"], card, device="cpu")
    predictor = inference.Predictor(card, device="cpu")
    direct = [predictor.predict(image, case["mask"]).probability for image in phases]
    assert abs(direct[0] - direct[1]) > 0.01  # the test can tell the phases apart
    assert shownPhase1.probability == pytest.approx(direct[1], abs=1e-4)
    assert any("shows acquisition 1 of the dynamic series 'ep2d_dyn_vibe' (3 acquisitions); the model reads phase 2"
               in w for w in shownPhase1.warnings)

    browser.SetSelectedItemNumber(1)
    shownPhase2 = logic.predict(proxy, case["segmentation"], case["segmentId"], card, device="cpu")
    assert shownPhase2.probability == pytest.approx(direct[1], abs=1e-4)
    assert not any("dynamic series" in w for w in shownPhase2.warnings)


def test_a_multivolume_dce_gives_the_model_its_phase_and_says_so(module_file, headless_slicer, case):
    from LVIPredictorLib import inference

    card = str(module_file.resourcesDir() / "Models" / "dce-vanilla_cnn_2d.json")
    grid = make_grid(size=(50, 48, 30), spacing=(0.8, 0.8, 1.5), origin=(-18.0, -21.0, -21.0))
    phases = [mr_image(grid, centre=CENTRE, radius=0.5, seed=7), mr_image(grid, centre=CENTRE, radius=RADIUS, seed=5)]
    node = multi_volume(phases)
    prediction = module_file.LVIPredictorLogic().predict(node, case["segmentation"], case["segmentId"], card,
                                                         device="cpu")
    direct = [inference.Predictor(card, device="cpu").predict(p, case["mask"]).probability for p in phases]
    assert abs(direct[0] - direct[1]) > 0.01
    assert prediction.probability == pytest.approx(direct[1], abs=1e-4)
    assert any("holds the whole dynamic series" in w and "acquisition 2 was used" in w for w in prediction.warnings)
