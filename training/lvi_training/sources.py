"""Where training reads image files from disk, and how it fingerprints them.

Reading goes through ``LVIPredictorLib.inputs.readers`` (the same reader the Slicer module and
``Predictor`` use) so a cohort is read exactly as a single case would be at prediction
time. The content hash is what keys the preprocessing cache: it changes when a file's
bytes change, not when it is touched or copied.
"""

import hashlib
import os
from pathlib import Path

_CHUNK = 1 << 20


def read_image(path, dce_phase=None, sequence=None):
    """Read an image file or DICOM series folder (``dce_phase`` picks the dynamic phase; ``sequence``,
    "t2" or "dce", the series of that sequence when the folder holds a whole study)."""
    from LVIPredictorLib.inputs import readers

    if dce_phase is None:
        return readers.read_image(str(path), sequence=sequence)
    return readers.read_image(str(path), dce_phase=int(dce_phase), sequence=sequence)


def read_mask(path, reference=None):
    """Read a VOI mask; on the reference's grid (to float precision) it takes its exact geometry."""
    from LVIPredictorLib.inputs import readers

    return readers.read_mask(str(path), reference=reference)


def content_hash(path):
    """SHA-256 over a file's bytes, or over every file of a folder (names + bytes, sorted).

    A DICOM series folder is hashed whole, so renaming or editing any slice changes the key.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                full = Path(root) / name
                digest.update(str(full.relative_to(path)).encode("utf-8") + b"\0")
                _update_with_file(digest, full)
    else:
        _update_with_file(digest, path)
    return digest.hexdigest()


def _update_with_file(digest, path):
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
