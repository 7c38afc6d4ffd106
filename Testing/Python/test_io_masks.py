"""Masks: label values kept, real Slicer/pyradiomics label files, bad masks."""

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from LVIPredictorLib.errors import InputError
from LVIPredictorLib.inputs.readers import mask_labels, read_image, read_mask, same_geometry

BREAST = Path(__file__).resolve().parents[1] / "Data" / "pyradiomics_breast1"
SLICERIO_DATA = Path(slicerio.__file__).resolve().parent / "data"


def _write(tmp_path, name, values, **geometry):
    image = sitk.GetImageFromArray(np.asarray(values))
    image.SetSpacing(geometry.get("spacing", (0.7, 0.7, 2.0)))
    image.SetOrigin(geometry.get("origin", (0.0, 0.0, 0.0)))
    path = tmp_path / name
    sitk.WriteImage(image, str(path))
    return path


def test_breast_label_has_143_voxels_on_the_image_grid():
    image = read_image(BREAST / "breast1_image.nrrd")
    mask = read_mask(BREAST / "breast1_label.nrrd", reference=image)
    assert mask.GetPixelID() == sitk.sitkUInt8
    assert int(sitk.GetArrayViewFromImage(mask).sum()) == 143
    assert mask_labels(mask) == [1]
    assert same_geometry(image, mask)


def test_label_values_are_kept_not_binarised(tmp_path):
    values = np.zeros((3, 4, 5), np.int16)
    values[1, 1, 1], values[2, 2, 2] = 2, 5
    mask = read_mask(_write(tmp_path, "labels.nii.gz", values))
    assert mask_labels(mask) == [2, 5]


def test_float_mask_with_whole_values_is_accepted(tmp_path):
    values = np.zeros((3, 4, 5), np.float32)
    values[1, 1, 1] = 1.0
    assert mask_labels(read_mask(_write(tmp_path, "float.nii.gz", values))) == [1]


def test_mask_with_fractional_values_is_an_error(tmp_path):
    values = np.zeros((3, 4, 5), np.float32)
    values[1, 1, 1] = 0.4
    with pytest.raises(InputError, match="non-integer values"):
        read_mask(_write(tmp_path, "prob.nii.gz", values))


def test_mask_with_labels_above_255_is_an_error(tmp_path):
    values = np.zeros((3, 4, 5), np.int16)
    values[0, 0, 0] = 300
    with pytest.raises(InputError, match="from 0 to 300"):
        read_mask(_write(tmp_path, "big.nrrd", values))


def test_empty_mask_is_an_error_naming_the_file(tmp_path):
    path = _write(tmp_path, "empty.nii.gz", np.zeros((3, 4, 5), np.uint8))
    with pytest.raises(InputError, match="mask is empty") as caught:
        read_mask(path)
    assert caught.value.source == str(path)


def test_mask_within_float32_rounding_gets_the_reference_geometry_exactly(tmp_path):
    reference = read_image(BREAST / "breast1_image.nrrd")
    values = sitk.GetArrayFromImage(read_mask(BREAST / "breast1_label.nrrd"))
    origin = np.array(reference.GetOrigin()) + 2e-5
    path = _write(tmp_path, "itksnap.nii.gz", values, spacing=reference.GetSpacing(), origin=origin)
    mask = read_mask(path, reference=reference)
    assert mask.GetOrigin() == reference.GetOrigin()


def test_mask_on_another_grid_is_left_for_preprocessing_to_resample(tmp_path):
    reference = read_image(BREAST / "breast1_image.nrrd")
    values = np.zeros((10, 10, 10), np.uint8)
    values[5, 5, 5] = 1
    mask = read_mask(_write(tmp_path, "other.nii.gz", values, spacing=(1.0, 1.0, 1.0)), reference=reference)
    assert mask.GetSpacing() == (1.0, 1.0, 1.0)


def test_slicer_segmentation_file_reads_as_labels():
    mask = read_mask(SLICERIO_DATA / "Segmentation.seg.nrrd")
    assert mask.GetSize() == (128, 128, 34)
    assert len(mask_labels(mask)) >= 1


def test_overlapping_slicer_segmentation_is_an_error():
    with pytest.raises(InputError, match="layers \\(overlapping segments\\)"):
        read_mask(SLICERIO_DATA / "SegmentationOverlapping.seg.nrrd")


def test_folder_given_as_mask_is_an_error(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        read_mask(tmp_path)
