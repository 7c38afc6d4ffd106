"""The Slicer panel says what the overview figure says, and shows every member's map."""

import SimpleITK as sitk

from LVIPredictorLib.inference.predictor import HeatMap, Prediction
from slicer_headless import headless_slicer, module_file  # noqa: F401
from synthetic_images import make_grid, mr_image


def _fusion(image, auc_ci):
    maps = [HeatMap(image, "t2", member, "Grad-CAM at layer2") for member in ("m-a", "m-b")]
    return Prediction(probability=0.418, label=1, threshold=0.385, model_id="fusion", architecture="late_fusion",
                      sequence="t2", weights_sha256="0" * 64, device="cpu", heatmaps=maps, auc_ci=auc_ci,
                      member_probabilities={"m-a": 0.5, "m-b": 0.3})


def test_result_lines_carry_the_verdict_sentence_and_the_chance_banner(headless_slicer, module_file):
    from LVIPredictorSlicerLib import scene

    image = sitk.Cast(mr_image(make_grid()), sitk.sitkFloat32)
    lines = scene.resultLines([_fusion(image, (0.44, 0.71))])
    assert lines[0].endswith("fusion: 0.418 is above this model's threshold 0.385: LVI+ (on cpu)")
    assert "AUC 95% CI 0.44-0.71 includes 0.5" in lines[1]
    assert not any("includes 0.5" in line for line in scene.resultLines([_fusion(image, (0.6, 0.8))]))


def test_each_members_map_gets_its_node(headless_slicer, module_file):
    import slicer

    from LVIPredictorSlicerLib import mrml_adapter, scene

    image = sitk.Cast(mr_image(make_grid()), sitk.sitkFloat32)
    volume = mrml_adapter.addVolumeFromImage(image, "T2")
    first = scene.showHeatmap(_fusion(image, None), volume)
    names = [n.GetName() for n in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode")]
    assert "T2 LVI heat-map (m-a, Grad-CAM at layer2)" in names and "T2 LVI heat-map (m-b, Grad-CAM at layer2)" in names
    assert first.GetName().startswith("T2 LVI heat-map (m-a")


def test_the_figures_slice_numbers_are_slicers_own(headless_slicer, module_file):
    """The caption's k is the K of Slicer's IJK (the same voxels) and its S the RAS S of that slice's voxels."""
    import slicer
    import vtk

    from LVIPredictorLib.inputs import readers
    from LVIPredictorLib.outputs import report
    from lvi_training.reference import default_sample_case

    for name in ("t2.nii.gz", "dce_phase2.nii.gz"):
        path = default_sample_case() / name
        node = slicer.util.loadVolume(str(path), {"singleFile": True})
        image = readers.read_image(path)
        ijkToRas = vtk.vtkMatrix4x4()
        node.GetIJKToRASMatrix(ijkToRas)
        voxels = slicer.util.arrayFromVolume(node)
        for k in (0, image.GetSize()[2] // 2, image.GetSize()[2] - 1):
            assert (voxels[k] == sitk.GetArrayViewFromImage(image)[k]).all()
            s = ijkToRas.MultiplyPoint((0, 0, k, 1))[2]
            assert report.slice_caption(image, k) == "slice k={} of 0-{}, S {:.1f} mm".format(
                k, image.GetSize()[2] - 1, s)
