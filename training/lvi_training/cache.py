"""Preprocessed model inputs cached on disk, so epochs and re-runs never re-read NIfTI/DICOM.

An entry's key is a SHA-256 over: the preprocessing spec, the sequence and DCE phase,
the CONTENT hashes of the images and masks (not their names or times; two of each for a
fused input), and the source of the core's preprocessing and reading code. A changed
spec, a re-exported file, or a change in the preprocessing code all give new keys, so a
stale entry is never read.

Each entry is one ``.npz`` holding the arrays, a JSON header and a checksum of both.
An entry that fails to load or whose checksum disagrees (torn write, disk corruption,
an edit by hand) is reported in the log, deleted and rebuilt. Writes go to a temporary
file in the same folder and are renamed into place, so a crash leaves either the old
state or a complete entry. Misses are built by worker processes (2 by default).
"""

import hashlib
import json
import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import List, Optional

import numpy as np

from LVIPredictorLib.errors import InputError
from LVIPredictorLib.preprocessing import Channel, prepare_input, spec_from_dict
from LVIPredictorLib.vocabulary.sequences import channels, grid_reference, reads_dce

from . import sources
from .atomic import atomic_write

log = logging.getLogger("lvi_training.cache")

DEFAULT_WORKERS = 2
_FORMAT_VERSION = 1



@dataclass
class CachedCase:
    """What training needs from ``PreparedCase`` (the crop geometry is not kept)."""

    inputs: np.ndarray        # 3D: (1, C, Z, Y, X); 2D: (k, C, Y, X); C channels (2 when fused)
    slice_weights: np.ndarray  # (k,)
    warnings: List[str]
    voi_volume_mm3: float


@dataclass
class _Job:
    case_id: str
    sequence: str
    images: List[str]  # one per channel, in sequences.channels() order
    masks: List[str]
    spec: dict
    dce_phase: Optional[int]
    path: str


def code_fingerprint():
    """Hash of the core's reading + preprocessing source: a code change invalidates the cache."""
    import LVIPredictorLib

    root = Path(LVIPredictorLib.__file__).parent
    files = sorted(p for package in ("dicom", "inputs", "preprocessing") for p in (root / package).glob("*.py"))
    digest = hashlib.sha256()
    for path in files + [root / "vocabulary" / "sequences.py"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def entry_key(spec_dict, sequence, dce_phase, image_hashes, mask_hashes, code_hash):
    payload = json.dumps({"format": _FORMAT_VERSION, "spec": spec_dict, "sequence": sequence,
                          "dce_phase": dce_phase if reads_dce(sequence) else None, "images": list(image_hashes),
                          "masks": list(mask_hashes), "code": code_hash}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class PreparedCache:
    """A folder of cache entries (default: ``<cohort>/.lvi_cache``)."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, key):
        return self.root / key[:2] / (key + ".npz")

    def load(self, key):
        """The cached case, or None when absent or corrupt (a corrupt entry is removed)."""
        path = self.path_of(key)
        if not path.exists():
            return None
        try:
            return read_entry(path)
        except Exception as exc:  # any failure to read back means the entry cannot be trusted
            log.warning("cache entry %s is corrupt (%s); rebuilding it", path, exc)
            path.unlink()
            return None

    def prepare(self, cases, sequence, spec, dce_phase=2, workers=DEFAULT_WORKERS):
        """Cached inputs for ``cases`` (cohort rows with this sequence), building misses.

        Returns (list of CachedCase in the order of ``cases``, number of entries built).
        All preprocessing errors are collected and raised together as one InputError.
        """
        spec_dict = spec.to_dict()
        code = code_fingerprint()
        keys, jobs = [], []
        names = channels(sequence)
        for case in cases:
            images = [str(case.images[s]) for s in names]
            masks = [str(case.masks[s]) for s in names]
            key = entry_key(spec_dict, sequence, dce_phase, [sources.content_hash(p) for p in images],
                            [sources.content_hash(p) for p in masks], code)
            keys.append(key)
            if self.load(key) is None:
                jobs.append(_Job(case.case_id, sequence, images, masks, spec_dict,
                                 dce_phase if reads_dce(sequence) else None, str(self.path_of(key))))
        errors = _run_jobs(jobs, workers)
        if errors:
            raise InputError(None, "preprocessing failed for {} case(s):\n  {}".format(len(errors), "\n  ".join(errors)))
        prepared = []
        for key in keys:
            entry = self.load(key)
            if entry is None:
                raise RuntimeError("cache entry {} vanished or was corrupted right after being built".format(key))
            prepared.append(entry)
        return prepared, len(jobs)


def _run_jobs(jobs, workers):
    if not jobs:
        return []
    if workers <= 1 or len(jobs) == 1:
        results = [_build(job) for job in jobs]
    else:
        # spawn, not fork: the parent may already hold torch/OpenMP threads, which fork breaks.
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=get_context("spawn"),
                                 initializer=_worker_init) as pool:
            results = list(pool.map(_build, jobs))
    return [r for r in results if r]


def _worker_init():
    import SimpleITK as sitk

    # Each worker gets one core; SimpleITK would otherwise start a thread per core in each.
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def _build(job):
    """Preprocess one case and write its entry; returns an error line or ''."""
    try:
        names = channels(job.sequence)
        inputs = []
        for name, image_path, mask_path in zip(names, job.images, job.masks):
            image = sources.read_image(image_path, dce_phase=job.dce_phase if name == "dce" else None,
                                       sequence=name)
            inputs.append(Channel(image, sources.read_mask(mask_path, reference=image), image_path, mask_path))
        prepared = prepare_input(inputs, spec_from_dict(job.spec), names,
                                 grid_channel=names.index(grid_reference(job.sequence)))
    except InputError as exc:
        return "case {}: {}".format(job.case_id, exc)
    write_entry(job.path, CachedCase(inputs=prepared.inputs, slice_weights=np.asarray(prepared.slice_weights),
                                     warnings=list(prepared.warnings),
                                     voi_volume_mm3=float(prepared.voi_volume_mm3)))
    return ""


def _checksum(inputs, weights, header):
    digest = hashlib.sha256()
    for part in (np.ascontiguousarray(inputs).tobytes(), np.ascontiguousarray(weights).tobytes(), header.encode("utf-8"),
                 str(inputs.shape).encode(), str(inputs.dtype).encode()):
        digest.update(part)
    return digest.hexdigest()


def write_entry(path, case):
    inputs = np.ascontiguousarray(case.inputs, dtype=np.float32)
    weights = np.ascontiguousarray(case.slice_weights, dtype=np.float64)
    header = json.dumps({"warnings": case.warnings, "voi_volume_mm3": case.voi_volume_mm3})
    atomic_write(path, lambda f: np.savez(f, inputs=inputs, slice_weights=weights, header=np.array(header),
                                          checksum=np.array(_checksum(inputs, weights, header))))


def read_entry(path):
    with np.load(str(path), allow_pickle=False) as data:
        inputs = data["inputs"]
        weights = data["slice_weights"]
        header = str(data["header"])
        stored = str(data["checksum"])
    if _checksum(inputs, weights, header) != stored:
        raise ValueError("checksum mismatch")
    meta = json.loads(header)
    return CachedCase(inputs=inputs, slice_weights=weights, warnings=list(meta["warnings"]),
                      voi_volume_mm3=float(meta["voi_volume_mm3"]))
