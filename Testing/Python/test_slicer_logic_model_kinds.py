"""The Logic predicts with the radiomics baseline and with fold ensembles on real MRML, like the core."""

import pytest
import SimpleITK as sitk

from LVIPredictorLib import clinical, weights

from core_cards import ensemble_card, radiomics_card
from slicer_headless import headless_slicer, module_file  # noqa: F401
from synthetic_images import make_grid, mr_image, sphere_mask

CENTRE, RADIUS = (1.0, -2.0, 0.0), 7.0


@pytest.fixture
def dce_case(headless_slicer, tmp_path):
    import slicer

    from LVIPredictorSlicerLib import mrml_adapter

    grid = make_grid(size=(50, 48, 30), spacing=(0.8, 0.8, 1.5), origin=(-18.0, -21.0, -21.0))
    image, mask = mr_image(grid, centre=CENTRE, radius=RADIUS, seed=5), sphere_mask(grid, CENTRE, RADIUS)
    sitk.WriteImage(image, str(tmp_path / "dce.nii.gz"))
    volume = slicer.util.loadVolume(str(tmp_path / "dce.nii.gz"), {"singleFile": True})
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
    segmentId = mrml_adapter.importMaskIntoSegmentation(mask, segmentation, volume, "tumour")
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


def test_logic_predicts_with_a_late_fusion_card_like_its_members(module_file, dce_case, tmp_path):
    """Each member reads its own series through the Logic; the card averages their logits."""
    from core_cards import fresh_card, late_fusion_card

    from LVIPredictorLib import inference
    from LVIPredictorLib.models import late_fusion

    t2_card, _ = fresh_card(tmp_path, name="vanilla_cnn_2d", sequence="t2", seed=1)
    dce_card, _ = fresh_card(tmp_path, name="vanilla_cnn_2d", sequence="dce", seed=2)
    card_path = late_fusion_card(tmp_path, t2_card, dce_card)
    logic = module_file.LVIPredictorLogic()
    volumes = {"t2": dce_case["volume"], "dce": dce_case["volume"]}
    (viaSlicer,) = logic.predictCase(volumes, dce_case["segmentation"], dce_case["segmentId"], model=str(card_path),
                                     device="cpu", heatmap=True)
    members = [inference.Predictor(str(c), device="cpu").predict(dce_case["image"], dce_case["mask"])
               for c in (t2_card, dce_card)]
    assert viaSlicer.architecture == "late_fusion" and viaSlicer.sequence == "t2+dce"
    assert viaSlicer.member_probabilities == pytest.approx({m.model_id: m.probability for m in members}, abs=1e-4)
    assert viaSlicer.probability == pytest.approx(late_fusion.combine([m.probability for m in members]), abs=1e-4)
    assert viaSlicer.heatmap is not None and viaSlicer.heatmap_sequence == "dce"
    table = logic.addResultsToTable([viaSlicer], volumeNodes=volumes)
    assert table.GetCellText(0, table.GetColumnIndex("architecture")) == "late_fusion"
    with pytest.raises(module_file.InputError, match="predictCase"):
        logic.predict(dce_case["volume"], dce_case["segmentation"], dce_case["segmentId"], str(card_path), device="cpu")


def test_only_a_combined_card_asks_the_panel_for_clinical_data(module_file):
    logic = module_file.LVIPredictorLogic()
    assert logic.clinicalModels("demo-dce-radiomics_lr") == []
    assert logic.clinicalModels("demo-t2+dce-late_fusion") == []
    [card] = logic.clinicalModels("demo-dce-clinical_combined")
    assert [entry["name"] for entry in card["clinical"]["inputs"]] == list(clinical.NAMES)
    # The bundled catalog: its combined model reads DCE, so a T2-only case is asked for nothing.
    assert [c["model_id"] for c in logic.clinicalModels()] == ["demo-dce-clinical_combined"]
    assert [c["model_id"] for c in logic.clinicalModels(architecture="clinical_combined", given=["dce"])] == [
        "demo-dce-clinical_combined"]
    assert logic.clinicalModels(given=["t2"]) == [] and logic.clinicalModels(architecture="resnet10_2d") == []


def test_the_bundled_combined_model_runs_in_slicer_with_the_case_s_clinical_values(module_file, headless_slicer):
    import slicer

    from LVIPredictorSlicerLib import scene
    from LVIPredictorSlicerLib.sample_data import sampleCase, sampleClinical

    dce, maskPath = sampleCase("dce")
    logic = module_file.LVIPredictorLogic()
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
    segmentId = logic.importMask(maskPath, segmentation, dce)
    card = weights.load_card(weights.resolve_card("demo-dce-clinical_combined"))
    reference = card["reference_prediction"]
    with pytest.raises(module_file.InputError, match=r"needs the case.s clinical data \(none given\): age=..."):
        logic.predictCase({"dce": dce}, segmentation, segmentId, model="demo-dce-clinical_combined", device="cpu")
    (viaSlicer,) = logic.predictCase({"dce": dce}, segmentation, segmentId, model="demo-dce-clinical_combined",
                                     device="cpu", clinical=sampleClinical())
    assert viaSlicer.probability == pytest.approx(reference["probability"], abs=1e-4)
    alone = logic.predict(dce, segmentation, segmentId, "demo-dce-clinical_combined", device="cpu",
                          clinical=sampleClinical())
    assert alone.probability == pytest.approx(viaSlicer.probability, abs=1e-9)
    assert "demo-dce-clinical_combined" not in [p.model_id for p in logic.predictAll(
        dce, segmentation, segmentId, sequence="dce", device="cpu")]
    assert "demo-dce-clinical_combined" in [p.model_id for p in logic.predictAll(
        dce, segmentation, segmentId, sequence="dce", device="cpu", clinical={"age": 52})]
    assert viaSlicer.clinical["values"]["age"] == reference["clinical"]["age"]
    table = logic.addResultsToTable([viaSlicer], volumeNode=dce)
    basedOn = table.GetCellText(0, table.GetColumnIndex("based_on"))
    assert basedOn.startswith("demo-dce-radiomics_lr=0.8") and "; age=52; tumour_size_mm=25;" in basedOn
    lines = scene.resultLines([viaSlicer])
    assert any(line.strip().startswith("imaging model demo-dce-radiomics_lr:") for line in lines)
    assert any("clinical values: age 52" in line for line in lines)
    # "All matching models" runs it only when some clinical value is given.
    everything = logic.predictCase({"dce": dce}, segmentation, segmentId, device="cpu",
                                   clinical={"age": "", "ki67": None})
    assert "demo-dce-clinical_combined" not in [p.model_id for p in everything]
    withAge = logic.predictCase({"dce": dce}, segmentation, segmentId, device="cpu", clinical={"age": 52})
    [combined] = [p for p in withAge if p.model_id == "demo-dce-clinical_combined"]
    assert set(combined.clinical["imputed"]) == set(clinical.NAMES) - {"age"}  # each named in its warnings
    assert any(w.startswith("imputed (missing): tumour_size_mm = ") for w in combined.warnings)
