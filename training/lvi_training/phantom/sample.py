"""The sample case shipped in Resources/SampleData, regenerated bit-for-bit from a fixed seed."""

import hashlib
import os

from .acquisition import PRESETS
from .case import generate_case
from .cohort import CohortSpec, write_case

SAMPLE_SEED = 20240457
SAMPLE_INDEX = 7  # LVI-positive: spiculated, oedema halo, adjacent vessel, strong rim -- a useful demo
SAMPLE_CASE_ID = "LVI-Sample-001"
SAMPLE_COMMAND = "lvi phantom --sample --out Resources/SampleData"


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_lines(root, case_id=SAMPLE_CASE_ID):
    """``sha256sum``-format lines for every file of the case, paths relative to ``root``, sorted."""
    lines = []
    for folder, _, files in os.walk(os.path.join(root, case_id)):
        for name in files:
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            lines.append("{}  {}".format(sha256_of(path), rel))
    return sorted(lines, key=lambda line: line.split("  ", 1)[1])


def write_sample(root):
    """Write the sample case into ``root``/LVI-Sample-001 and ``root``/SHA256SUMS; returns the case info."""
    spec = CohortSpec(seed=SAMPLE_SEED, n=1, size="small", outputs=("dicom", "nifti"))
    case = generate_case(SAMPLE_SEED, SAMPLE_INDEX, spec.sign_model(), PRESETS["small"], "small")
    _, info = write_case(case, os.path.join(root, SAMPLE_CASE_ID), spec, SAMPLE_CASE_ID, "SAMPLE001")
    with open(os.path.join(root, "SHA256SUMS"), "w", newline="\n") as f:
        f.write("\n".join(checksum_lines(root)) + "\n")
    return info
