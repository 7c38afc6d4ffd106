"""The Logic predicts with the radiomics baseline and with fold ensembles on real MRML, like the core."""

import pytest
import SimpleITK as sitk

from core_cards import ensemble_card, radiomics_card
from slicer_headless import headless_slicer, module_file  # noqa: F401
from synthetic_images import make_grid, mr_image, sphere_mask

CENTRE, RADIUS = (1.0, -2.0, 0.0), 7.0


@pytest.fixture
def dce_case(headless_slicer, tmp_path):
    import slicer

    from LVIPredictorLib import slicer_adapter

    grid = make_grid(size=(50, 48, 30), spacing=(0.8, 0.8, 1.5), origin=(-18.0, -21.0, -21.0))
    image, mask = mr_image(grid, centre=CENTRE, radius=RADIUS, seed=5), sphere_mask(grid, CENTRE, RADIUS)
    sitk.WriteImage(image, str(tmp_path / "dce.nii.gz"))
    volume = slicer.util.loadVolume(str(tmp_path / "dce.nii.gz"), {"singleFile": True})
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
    segmentId = slicer_adapter.importMaskIntoSegmentation(mask, segmentation, volume, "tumour")
    return {"image": sitk.ReadImage(str(tmp_path / "dce.nii.gz")), "mask": mask, "volume": volume,
            "segmentation": segmentation, "segmentId": segmentId}


@pytest.mark.parametrize("make_card", [radiomics_card, ensemble_card], ids=["radiomics", "ensemble"])
def test_logic_prediction_equals_the_core_prediction(module_file, dce_case, tmp_path, make_card):
    from LVIPredictorLib import inference

    card_path, _ = make_card(tmp_path)
    logic = module_file.LVIPredictorLogic()
    viaSlicer = logic.predict(dce_case["volume"], dce_case["segmentation"], dce_case["segmentId"],
                              model=str(card_path), device="cpu", heatmap=True)
    direct = inference.Predictor(str(card_path), device="cpu").predict(dce_case["image"], dce_case["mask"])
    assert viaSlicer.probability == pytest.approx(direct.probability, abs=1e-4)
    assert viaSlicer.weights_sha256 == direct.weights_sha256
    table = logic.addResultsToTable([viaSlicer], volumeNode=dce_case["volume"])
    assert table.GetCellText(0, table.GetColumnIndex("architecture")) == viaSlicer.architecture
    if make_card is radiomics_card:
        assert viaSlicer.heatmap is None
    else:
        assert viaSlicer.heatmap is not None
