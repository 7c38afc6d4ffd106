"""The overview figure and the panel's sentences: verdict, chance banner, orientation, slice numbering."""

import numpy as np
import pytest
import SimpleITK as sitk

from LVIPredictorLib.inference.predictor import HeatMap, Prediction, auc_interval
from LVIPredictorLib.inference import statements
from LVIPredictorLib.outputs import report


def test_the_probability_is_read_against_the_models_own_threshold():
    assert statements.verdict(0.418, 0.385, 1) == "0.418 is above this model's threshold 0.385: LVI+"
    assert statements.verdict(0.2, 0.385, 0) == "0.200 is below this model's threshold 0.385: LVI-"
    assert statements.verdict(0.385, 0.385, 1) == "0.385 is at this model's threshold 0.385: LVI+"


def test_a_banner_only_when_the_models_own_auc_ci_includes_one_half():
    assert auc_interval({"metrics": {"auc_ci_delong": [0.46, 0.71], "auc_ci_bootstrap": [0.6, 0.7]}}) == (0.46, 0.71)
    assert auc_interval({"metrics": {"auc": 0.7}}) is None
    assert "0.46-0.71 includes 0.5" in statements.chance_banner("m", (0.46, 0.71))
    assert statements.chance_banner("m", (0.52, 0.71)) is None and statements.chance_banner("m", None) is None


def _image(direction=(1, 0, 0, 0, 1, 0, 0, 0, 1)):
    image = sitk.Image(40, 30, 6, sitk.sitkFloat32)
    image.SetSpacing((0.8, 0.8, 3.0))
    image.SetOrigin((-10.0, 5.0, -7.5))
    image.SetDirection(direction)
    return image


def test_orientation_letters_follow_the_direction_cosines():
    # Identity LPS: +i is the patient's left, +j posterior, drawn as Slicer's axial view (R left, A top).
    assert report.screen_letters(_image()) == {"right": "L", "left": "R", "bottom": "P", "top": "A"}
    # Columns running towards the patient's right and rows anterior (RAS-stored axes) swap both pairs.
    assert report.screen_letters(_image((-1, 0, 0, 0, -1, 0, 0, 0, 1))) == {
        "right": "R", "left": "L", "bottom": "A", "top": "P"}
    # A coronal series: rows run inferior.
    assert report.screen_letters(_image((1, 0, 0, 0, 0, 1, 0, -1, 0)))["bottom"] == "I"


def test_slice_caption_counts_as_slicer_does():
    assert report.slice_caption(_image(), 2) == "slice k=2 of 0-5, S -1.5 mm"


def _prediction(model_id, sequence, heat_on, demo=True, auc_ci=(0.45, 0.7)):
    return Prediction(probability=0.418, label=1, threshold=0.385, model_id=model_id, architecture="resnet10_2d",
                      sequence=sequence, weights_sha256="0" * 64, device="cpu", demo=demo, auc_ci=auc_ci,
                      heatmaps=[HeatMap(image, name, model_id, "Grad-CAM at layer3") for name, image in heat_on])


def test_the_figure_shows_every_series_and_every_map(tmp_path):
    series = {}
    for name, label in (("t2", "FS-T2WI"), ("dce", "DCE")):
        image = _image()
        image[20, 15, 3] = 1.0
        mask = sitk.Image(image.GetSize(), sitk.sitkUInt8)
        mask.CopyInformation(image)
        for dx in range(-3, 4):
            mask[20 + dx, 15, 3] = 1
        series[name] = report.ShownSeries(image, mask, label, name + ".nii.gz")
    heat = sitk.Image(series["dce"].image.GetSize(), sitk.sitkFloat32)
    heat.CopyInformation(series["dce"].image)
    fused = _prediction("fusion", "t2+dce", [("t2", heat), ("dce", heat)])
    _, png = report.write_report(tmp_path, series, [fused], {"predictions": []}, case_label="case-7")
    figure = sitk.GetArrayFromImage(sitk.ReadImage(str(png)))
    assert figure.shape[0] > 400 and figure.shape[1] > 700  # two rows, an image and a map each, a colour bar
    lines, banners, demo = report.footer_lines([fused])
    assert lines == ["fusion: 0.418 is above this model's threshold 0.385: LVI+"]
    assert len(banners) == 1 and demo.startswith("DEMO weights")
    assert report.footer_lines([_prediction("ok", "t2", [], demo=False, auc_ci=(0.6, 0.8))])[1:] == ([], None)
    assert fused.to_dict()["heatmaps"] == [{"model_id": "fusion", "sequence": s, "method": "Grad-CAM at layer3"}
                                           for s in ("t2", "dce")]
    assert report._maps_by_series([fused], ["t2", "dce"]) == {"t2": [(fused, fused.heatmaps[0])],
                                                            "dce": [(fused, fused.heatmaps[1])]}


def test_case_label_is_the_common_folder_of_the_images():
    assert report.case_label_of(["/data/cases/LVI-9/t2.nii.gz", "/data/cases/LVI-9/dicom/dce"]) == "cases/LVI-9"
