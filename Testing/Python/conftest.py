"""Fixtures shared across the suite. Area-specific fixtures live in their own modules."""

from pathlib import Path

import pytest
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[2]
TEST_DATA = REPO / "Testing" / "Data"


@pytest.fixture(scope="session")
def breast1():
    """The real pyradiomics breast MR crop and its lesion label (Testing/Data/pyradiomics_breast1)."""
    folder = TEST_DATA / "pyradiomics_breast1"
    return sitk.ReadImage(str(folder / "breast1_image.nrrd")), sitk.ReadImage(str(folder / "breast1_label.nrrd"))


# Session fixtures of the training tests (cohorts written once per session).
from training_helpers import blob_cohort, null_phantom_cohort, phantom_cohort  # noqa: E402,F401
