"""One prediction service: the Slicer Logic (real MRML, headless) and `lvi predict` give the same
record for the same case, field by field, with the bundled weights on the shipped sample case."""

import json

import pytest

from lvi_training.cli import main
from lvi_training.reference import default_sample_case
from slicer_headless import headless_slicer, module_file  # noqa: F401

SAMPLE = default_sample_case()
# What differs by nature between two runs: wall-clock timings. Everything else must agree.
RUN_SPECIFIC = {"timings"}


@pytest.mark.parametrize("sequence, image, mask", [("t2", "t2.nii.gz", "t2_mask.nii.gz"),
                                                   ("dce", "dce_phase2.nii.gz", "dce_mask.nii.gz")])
def test_slicer_logic_and_lvi_predict_give_the_same_record(module_file, headless_slicer, tmp_path, sequence, image,
                                                           mask):
    import slicer

    volume = slicer.util.loadVolume(str(SAMPLE / image), {"singleFile": True})
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
    logic = module_file.LVIPredictorLogic()
    segmentId = logic.importMask(str(SAMPLE / mask), segmentation, volume)
    viaSlicer = [p.to_dict() for p in logic.predictAll(volume, segmentation, segmentId, sequence=sequence,
                                                       device="cpu")]

    assert main(["predict", "--sequence", sequence, "--image", str(SAMPLE / image), "--mask", str(SAMPLE / mask),
                 "--device", "cpu", "--no-heatmap", "--out", str(tmp_path / "cli")]) == 0
    viaCli = json.loads((tmp_path / "cli" / "result.json").read_text())["predictions"]

    assert [p["model_id"] for p in viaSlicer] == [p["model_id"] for p in viaCli] and len(viaCli) >= 4
    for slicerRecord, cliRecord in zip(viaSlicer, viaCli):
        assert set(slicerRecord) == set(cliRecord)
        for field in sorted(set(cliRecord) - RUN_SPECIFIC):
            if field in ("probability", "slice_probabilities"):
                assert slicerRecord[field] == pytest.approx(cliRecord[field], abs=1e-5), field
            else:
                assert slicerRecord[field] == cliRecord[field], (cliRecord["model_id"], field)
