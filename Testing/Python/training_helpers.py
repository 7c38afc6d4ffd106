"""Small cohorts and a runner for the training tests (imported by test_training_*.py).

``write_blob_cohort`` writes a tiny NIfTI cohort in the cohort format (docs/design.md §4): a noisy
volume with one spherical lesion per case whose brightness depends on the label by
``signal`` (0 = labels independent of the images). It is cheap enough for unit tests;
the learning and null tests use the phantom generator's cohorts instead.
"""

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

REPO = Path(__file__).resolve().parents[2]


def _write(array, path, spacing, origin=(0.0, 0.0, 0.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))


def write_blob_cohort(root, n=30, seed=0, signal=1.5, prevalence=0.4, shape=(12, 36, 36), spacing=(1.5, 1.5, 3.0),
                      sequences=("t2", "dce")):
    """Write ``root/cohort.csv`` + images/masks; returns the labels."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_pos = int(round(n * prevalence))
    labels = np.array([1] * n_pos + [0] * (n - n_pos))
    rng.shuffle(labels)
    zz, yy, xx = np.indices(shape)
    centre = np.array(shape) / 2.0
    rows = []
    for i, label in enumerate(labels):
        case = "case{:03d}".format(i)
        row = {"case_id": case, "patient_id": "p{:03d}".format(i), "lvi": int(label), "age": 50 + i % 30}
        radius_mm = rng.uniform(5.0, 9.0)
        shift = rng.uniform(-2, 2, size=3)
        dist = np.sqrt(((zz - centre[0] - shift[0]) * spacing[2]) ** 2 + ((yy - centre[1] - shift[1]) * spacing[1]) ** 2
                       + ((xx - centre[2] - shift[2]) * spacing[0]) ** 2)
        mask = (dist <= radius_mm).astype(np.uint8)
        for seq in sequences:
            contrast = 1.0 + signal * (label - 0.5) + rng.normal(0, 0.25)
            image = 100.0 + 20.0 * rng.normal(size=shape) + 60.0 * contrast * mask
            image_path = root / "images" / "{}_{}.nii.gz".format(case, seq)
            mask_path = root / "images" / "{}_{}_mask.nii.gz".format(case, seq)
            _write(image.astype(np.float32), image_path, spacing)
            _write(mask, mask_path, spacing)
            row["{}_image".format(seq)] = os.path.relpath(image_path, root)
            row["{}_mask".format(seq)] = os.path.relpath(mask_path, root)
        rows.append(row)
    write_csv(root, rows)
    return labels


def write_csv(root, rows):
    fields = ["case_id", "patient_id", "lvi", "t2_image", "t2_mask", "dce_image", "dce_mask", "age"]
    with open(Path(root) / "cohort.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in fields})


def read_rows(root):
    with open(Path(root) / "cohort.csv", newline="") as f:
        return list(csv.DictReader(f))


# Small inputs for the real models: VanillaCNN needs >= 32 px (5 pools), the 3D head >= 32 voxels per axis.
# One torch thread: on a shared 2-core CI machine two spinning OpenMP threads per process
# were measured 5-10x slower than one (and torchrun tests run two processes anyway).
FAST_2D = ["--crop-size", "32", "32", "1", "--spacing", "2", "2", "2", "--n-slices", "2", "--threads", "1"]
FAST_3D = ["--crop-size", "32", "32", "32", "--spacing", "2", "2", "2", "--threads", "1"]


def lvi_command(*args):
    return [sys.executable, "-m", "lvi_training.cli"] + [str(a) for a in args]


def run_lvi(*args, timeout=600, env=None):
    """Run ``lvi`` in a subprocess (as a user would); returns the CompletedProcess."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run(lvi_command(*args), capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=str(REPO))


# --- session-scoped fixtures (import them by name into a test module) -----------------

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def blob_cohort(tmp_path_factory):
    """30 cases (12 LVI+), both sequences, strong signal: for the engine/run tests."""
    root = tmp_path_factory.mktemp("blob_cohort")
    write_blob_cohort(root, n=30, seed=0, signal=1.5)
    return root


@pytest.fixture(scope="session")
def phantom_cohort(tmp_path_factory):
    """Phantom generator cohort, 40 cases, strong signal (--signal 4: known best DCE AUC 0.9998)."""
    from lvi_training.phantom.cohort import CohortSpec, write_cohort

    root = tmp_path_factory.mktemp("phantom_strong")
    write_cohort(str(root), CohortSpec(seed=1, n=40, size="small", outputs=("nifti",), signal=4.0), workers=2)
    return root


@pytest.fixture(scope="session")
def null_phantom_cohort(tmp_path_factory):
    """Phantom cohort whose labels are independent of the images (best AUC 0.5)."""
    from lvi_training.phantom.cohort import CohortSpec, write_cohort

    root = tmp_path_factory.mktemp("phantom_null")
    write_cohort(str(root), CohortSpec(seed=2, n=40, size="small", outputs=("nifti",), null=True), workers=2)
    return root
