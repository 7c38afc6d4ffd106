"""slicer_adapter against real MRML nodes (slicer-core): geometry converted once, masks by physical space."""

import numpy as np
import SimpleITK as sitk

from slicer_headless import headless_slicer  # noqa: F401  (pytest fixture)
from synthetic_images import make_grid, mr_image, rotation_z, sphere_mask

BREAST1 = "breast1_image.nrrd"


def _oblique_image():
    grid = make_grid(size=(40, 36, 12), spacing=(0.7, 0.9, 3.0), origin=(-14.0, -17.0, -18.0),
                     direction=rotation_z(0.35))
    return mr_image(grid, centre=(0.0, -2.0, 0.0), radius=6.0)


def test_volume_round_trip_keeps_voxels_and_lps_geometry(headless_slicer):
    from LVIPredictorSlicerLib import mrml_adapter

    image = _oblique_image()
    node = mrml_adapter.addVolumeFromImage(image, "oblique")
    back = mrml_adapter.imageFromVolume(node)
    assert np.array_equal(sitk.GetArrayFromImage(back), sitk.GetArrayFromImage(image))
    assert np.allclose(back.GetOrigin(), image.GetOrigin(), atol=1e-6)
    assert np.allclose(back.GetSpacing(), image.GetSpacing(), atol=1e-6)
    assert np.allclose(back.GetDirection(), image.GetDirection(), atol=1e-6)


def test_volume_loaded_by_slicer_matches_simpleitk_reading(headless_slicer):
    import slicer

    from LVIPredictorSlicerLib import mrml_adapter
    from conftest import TEST_DATA

    path = TEST_DATA / "pyradiomics_breast1" / BREAST1
    node = slicer.util.loadVolume(str(path), {"singleFile": True})
    expected = sitk.ReadImage(str(path))
    got = mrml_adapter.imageFromVolume(node)
    assert np.array_equal(sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(expected))
    assert np.allclose(got.GetOrigin(), expected.GetOrigin(), atol=1e-4)
    assert np.allclose(got.GetDirection(), expected.GetDirection(), atol=1e-6)


def test_volume_under_linear_transform_is_in_world_coordinates(headless_slicer):
    import slicer
    import vtk

    from LVIPredictorSlicerLib import mrml_adapter

    image = _oblique_image()
    node = mrml_adapter.addVolumeFromImage(image, "moved")
    transform = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLinearTransformNode")
    shift = vtk.vtkMatrix4x4()
    shift.SetElement(0, 3, 10.0)  # +10 mm towards Right = -10 mm in LPS x
    transform.SetMatrixTransformToParent(shift)
    node.SetAndObserveTransformNodeID(transform.GetID())
    moved = mrml_adapter.imageFromVolume(node)
    assert np.allclose(np.array(moved.GetOrigin()) - np.array(image.GetOrigin()), (-10.0, 0.0, 0.0), atol=1e-6)


def test_segment_drawn_on_another_grid_is_resampled_onto_the_volume_grid(headless_slicer):
    import slicer

    from LVIPredictorSlicerLib import mrml_adapter

    image = _oblique_image()
    volume = mrml_adapter.addVolumeFromImage(image, "series")
    fine = make_grid(size=(60, 60, 40), spacing=(0.5, 0.5, 1.0), origin=(-15.0, -17.0, -20.0),
                     direction=rotation_z(-0.2))
    drawn = sphere_mask(fine, centre=(0.0, -2.0, 0.0), radius=6.0)
    drawnOn = mrml_adapter.addVolumeFromImage(drawn, "drawn grid")
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    segmentId = mrml_adapter.importMaskIntoSegmentation(drawn, segmentation, drawnOn, "tumour")

    mask = mrml_adapter.maskFromSegment(segmentation, segmentId, volume)
    expected = sitk.Resample(drawn, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    a, b = sitk.GetArrayFromImage(mask) > 0, sitk.GetArrayFromImage(expected) > 0
    dice = 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())
    assert mask.GetSize() == image.GetSize() and np.allclose(mask.GetDirection(), image.GetDirection())
    assert dice > 0.9
    assert mrml_adapter.segmentWasResampled(segmentation, segmentId, volume)
    assert not mrml_adapter.segmentWasResampled(segmentation, segmentId, drawnOn)


def test_missing_segment_is_an_input_error_naming_the_segmentation(headless_slicer):
    import pytest
    import slicer

    from LVIPredictorSlicerLib import mrml_adapter
    from LVIPredictorLib.errors import InputError

    volume = mrml_adapter.addVolumeFromImage(_oblique_image(), "series")
    segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VOI")
    with pytest.raises(InputError, match="VOI"):
        mrml_adapter.maskFromSegment(segmentation, "nope", volume)
