"""Preprocessed model inputs cached on disk, so epochs and re-runs never re-read NIfTI/DICOM.

An entry's key is a SHA-256 over: the preprocessing spec, the sequence and DCE phase,
the CONTENT hashes of the images and masks (not their names or times; two of each for a
fused input), and the source of the core's preprocessing and reading code. A changed
spec, a re-exported file, or a change in the preprocessing code all give new keys, so a
stale entry is never read.

Content hashes are computed once per file: ``index.json`` maps a file's (path, size,
mtime_ns, inode) to its hash, so a warm run recognises unchanged inputs with one ``stat``
each instead of reading them (a DICOM folder is recognised by the stats of all its files).
As git does for its index, a file modified less than ``_RACY_S`` before it was hashed is
not recorded, since a second edit within the same timestamp tick could go unseen.

Each entry is ``<key>.npy`` (the crop, float32) and ``<key>.json`` (slice weights,
warnings, VOI volume and a checksum of both files). An entry that fails to load or whose
checksum disagrees (torn write, disk corruption, an edit by hand) is reported in the log,
deleted and rebuilt. Writes go to a temporary file in the same folder and are renamed
into place, so a crash leaves either the old state or a complete entry.

Training reads a *pack*: every case of the run stacked into one ``packs/../<key>.npy``
keyed by the entry keys in order, verified once per run and memory-mapped, so every rank
and data-loading process shares the operating system's one copy of the pages instead of
holding its own. Entries written by the first cache format (``.npz``) are not read; a
one-line warning says so and the cases are rebuilt in this format.
"""

import hashlib
import io
import json
import logging
import os
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from LVIPredictorLib.errors import InputError
from LVIPredictorLib.preprocessing import Channel, prepare_input, spec_from_dict
from LVIPredictorLib.vocabulary.sequences import channels, grid_reference, reads_dce

from . import sources
from .atomic import atomic_write, save_json
from .pool import ordered_map
from .progress import Progress

log = logging.getLogger("lvi_training.cache")

DEFAULT_WORKERS = 2
_FORMAT_VERSION = 2
_RACY_S = 2.0
INDEX_NAME = "index.json"


@dataclass
class CachedCase:
    """What training needs from ``PreparedCase`` (the crop geometry is not kept)."""

    inputs: np.ndarray        # 3D: (1, C, Z, Y, X); 2D: (k, C, Y, X); C channels (2 when fused)
    slice_weights: np.ndarray  # (k,)
    warnings: List[str]
    voi_volume_mm3: float


@dataclass
class Stack:
    """Every case of a run, stacked along the sample axis and memory-mapped from a pack file."""

    path: Path
    inputs: np.ndarray         # (S, C, ...) float32, np.memmap
    counts: List[int]          # samples per case, in case order
    slice_weights: List[np.ndarray]
    warnings: List[List[str]]
    voi_volume_mm3: List[float]

    def case_tensors(self, labels):
        """The training tensors, backed by the shared pages of the pack (no copy of the inputs)."""
        import torch

        from .engine import CaseTensors

        owner = np.repeat(np.arange(len(self.counts), dtype=np.int64), self.counts)
        return CaseTensors(inputs=torch.from_numpy(self.inputs), sample_case=torch.from_numpy(owner),
                           labels=np.asarray(labels, dtype=int),
                           slice_weights=[np.asarray(w, dtype=float) for w in self.slice_weights])


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


def stat_key(path):
    """What identifies a file's version without reading it: absolute path, size, mtime (ns), inode.

    Returns (key, newest mtime in seconds); a folder (DICOM series) is keyed by all its files.
    """
    path = os.path.abspath(str(path))
    st = os.stat(path)
    if not stat.S_ISDIR(st.st_mode):
        return json.dumps([path, st.st_size, st.st_mtime_ns, st.st_ino]), st.st_mtime
    listing, newest = [], 0.0
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            s = os.stat(full)
            listing.append([os.path.relpath(full, path), s.st_size, s.st_mtime_ns, s.st_ino])
            newest = max(newest, s.st_mtime)
    return json.dumps([path, hashlib.sha256(json.dumps(listing).encode("utf-8")).hexdigest()]), newest


class FileIndex:
    """``index.json``: stat key -> content hash. Losing it (or a record) only costs re-hashing."""

    def __init__(self, path):
        self.path = Path(path)
        self.hashes = self._read()
        self._added = {}

    def _read(self):
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cache index %s is unreadable (%s); inputs are hashed again", self.path, exc)
            return {}
        if not isinstance(data, dict) or data.get("format") != _FORMAT_VERSION:
            return {}
        return dict(data.get("files", {}))

    def content_hashes(self, paths, workers=DEFAULT_WORKERS, quiet=True):
        """{path: content hash} for ``paths``, reading only the files whose stat key is new."""
        keys, unknown = {}, []
        for p in dict.fromkeys(str(p) for p in paths):
            keys[p] = stat_key(p)
            if keys[p][0] not in self.hashes:
                unknown.append(p)
        if unknown:
            progress = Progress(len(unknown), "hashing inputs", "file", quiet=quiet)
            # Threads suffice: file reads and SHA-256 over large buffers release the GIL.
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                for p, digest in zip(unknown, pool.map(sources.content_hash, unknown)):
                    key, mtime = keys[p]
                    if time.time() - mtime > _RACY_S:
                        self._added[key] = digest
                    self.hashes[key] = digest
                    progress.advance()
            progress.close()
        return {p: self.hashes[k] for p, (k, _) in keys.items()}

    def save(self):
        if not self._added:
            return
        merged = self._read()  # another process may have recorded files since we read it
        merged.update(self._added)
        save_json({"format": _FORMAT_VERSION, "files": merged}, self.path)
        self._added = {}


class PreparedCache:
    """A folder of cache entries (default: ``<cohort>/.lvi_cache``)."""

    def __init__(self, root):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_of(self, key):
        return self.root / key[:2] / (key + ".npy")

    def pack_path(self, keys):
        pack = hashlib.sha256(json.dumps({"format": _FORMAT_VERSION, "entries": list(keys)}).encode()).hexdigest()
        return self.root / "packs" / pack[:2] / (pack + ".npy")

    def load(self, key):
        """The cached case, or None when absent or corrupt (a corrupt entry is removed)."""
        path = self.path_of(key)
        if not path.with_suffix(".json").exists():
            return None
        try:
            return read_entry(path)
        except Exception as exc:  # any failure to read back means the entry cannot be trusted
            log.warning("cache entry %s is corrupt (%s); rebuilding it", path, exc)
            _remove(path)
            return None

    def keys(self, cases, sequence, spec, dce_phase=2, workers=DEFAULT_WORKERS, quiet=True):
        """Entry keys of ``cases``; files already in the index are recognised by their stat alone."""
        self._warn_old_format()
        spec_dict, code, names = spec.to_dict(), code_fingerprint(), channels(sequence)
        index = FileIndex(self.root / INDEX_NAME)
        paths = [[str(case.images[s]) for s in names] + [str(case.masks[s]) for s in names] for case in cases]
        hashes = index.content_hashes([p for row in paths for p in row], workers=workers, quiet=quiet)
        index.save()
        return [entry_key(spec_dict, sequence, dce_phase, [hashes[p] for p in row[:len(names)]],
                          [hashes[p] for p in row[len(names):]], code) for row in paths]

    def prepare(self, cases, sequence, spec, dce_phase=2, workers=DEFAULT_WORKERS, quiet=True):
        """Cached inputs for ``cases`` (cohort rows with this sequence), building misses.

        Returns (list of CachedCase in the order of ``cases``, number of entries built).
        All preprocessing errors are collected and raised together as one InputError.
        ``progress(n)``, when given, makes the progress.Progress that counts the n misses built.
        """
        keys = self.keys(cases, sequence, spec, dce_phase, workers, quiet)
        built = self._build_missing(cases, keys, sequence, spec, dce_phase, workers, quiet)
        return [self._load_built(key) for key in keys], built

    def stacked(self, cases, sequence, spec, dce_phase=2, workers=DEFAULT_WORKERS, quiet=True):
        """(Stack of ``cases``, number of entries built): the pack when it is whole, else built."""
        keys = self.keys(cases, sequence, spec, dce_phase, workers, quiet)
        path = self.pack_path(keys)
        if path.with_suffix(".json").exists():
            try:
                return self.open_stack(path, keys=keys, verify=True), 0
            except Exception as exc:  # as for an entry: unreadable means rebuilt, never trusted
                log.warning("cache pack %s is corrupt (%s); rebuilding it", path, exc)
                _remove(path)
        built = self._build_missing(cases, keys, sequence, spec, dce_phase, workers, quiet)
        self._write_pack(keys, path, quiet)
        return self.open_stack(path, keys=keys), built

    def open_stack(self, path, keys=None, verify=False):
        """The pack at ``path`` memory-mapped; ``verify`` re-reads it against its checksum.

        Copy-on-write mapping: every process reads the same page-cache pages, and an in-place
        write by training code would change only its own copy, never the cache.
        """
        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if keys is not None and meta["keys"] != list(keys):
            raise ValueError("pack holds other entries")
        if verify and sources.content_hash(path) != meta["checksum"]:
            raise ValueError("checksum mismatch")
        inputs = np.load(str(path), mmap_mode="c", allow_pickle=False)
        if inputs.shape[0] != sum(meta["counts"]):
            raise ValueError("pack has {} samples, its index {}".format(inputs.shape[0], sum(meta["counts"])))
        return Stack(path=path, inputs=inputs, counts=list(meta["counts"]),
                     slice_weights=[np.asarray(w, dtype=np.float64) for w in meta["slice_weights"]],
                     warnings=meta["warnings"], voi_volume_mm3=meta["voi_volume_mm3"])

    def _warn_old_format(self):
        old = next(self.root.glob("[0-9a-f][0-9a-f]/*.npz"), None)
        if old is not None:
            log.warning("cache %s holds entries of an older lvi (*.npz, e.g. %s); they are not read, the cases are "
                        "preprocessed again (delete the .npz files to free the space)", self.root, old.name)

    def _build_missing(self, cases, keys, sequence, spec, dce_phase, workers, quiet):
        spec_dict, names = spec.to_dict(), channels(sequence)
        jobs = [_Job(case.case_id, sequence, [str(case.images[s]) for s in names],
                     [str(case.masks[s]) for s in names], spec_dict, dce_phase if reads_dce(sequence) else None,
                     str(self.path_of(key)))
                for case, key in zip(cases, keys) if not self._valid(key)]
        errors = [e for e in ordered_map(_build, jobs, workers, "preprocessing", quiet=quiet) if e]
        if errors:
            raise InputError(None, "preprocessing failed for {} case(s):\n  {}".format(len(errors), "\n  ".join(errors)))
        return len(jobs)

    def _valid(self, key):
        return self.load(key) is not None

    def _load_built(self, key):
        entry = self.load(key)
        if entry is None:
            raise RuntimeError("cache entry {} vanished or was corrupted right after being built".format(key))
        return entry

    def _write_pack(self, keys, path, quiet):
        """Stack the entries into one .npy written in place through a memory map (one case in memory
        at a time), then record its checksum; the .json beside it marks the pack complete."""
        metas = [_read_meta(self.path_of(k)) for k in keys]
        shapes = [tuple(m["shape"]) for m in metas]
        if len({s[1:] for s in shapes}) > 1:
            raise RuntimeError("cache entries of one spec have different sample shapes: {}".format(sorted(set(shapes))))
        counts = [s[0] for s in shapes]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".{}.{}.tmp".format(path.name, os.getpid()))
        out = np.lib.format.open_memmap(str(tmp), mode="w+", dtype=np.float32,
                                        shape=(sum(counts),) + (shapes[0][1:] if shapes else ()))
        progress = Progress(len(keys), "stacking", "case", quiet=quiet)
        start = 0
        for key, n in zip(keys, counts):
            out[start:start + n] = self._load_built(key).inputs
            start += n
            progress.advance()
        progress.close()
        out.flush()
        del out
        checksum = sources.content_hash(tmp)
        os.replace(tmp, path)
        save_json({"format": _FORMAT_VERSION, "keys": list(keys), "counts": counts, "checksum": checksum,
                   "slice_weights": [m["slice_weights"] for m in metas], "warnings": [m["warnings"] for m in metas],
                   "voi_volume_mm3": [m["voi_volume_mm3"] for m in metas]}, path.with_suffix(".json"))


def _remove(path):
    for p in (Path(path).with_suffix(".json"), Path(path)):
        try:
            p.unlink()
        except FileNotFoundError:
            pass


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


def _checksum(npy_bytes, meta):
    """Over the array file and every other field of the entry, so an edit of either is caught."""
    fields = {k: v for k, v in meta.items() if k != "checksum"}
    digest = hashlib.sha256(npy_bytes)
    digest.update(json.dumps(fields, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def write_entry(path, case):
    """``path`` (.npy) then its .json: the .json is written last and marks the entry complete."""
    path = Path(path)
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(case.inputs, dtype=np.float32), allow_pickle=False)
    data = buffer.getvalue()
    meta = {"format": _FORMAT_VERSION, "shape": list(case.inputs.shape),
            # JSON floats round-trip float64 exactly (repr), so the weights read back bit for bit.
            "slice_weights": [float(w) for w in np.asarray(case.slice_weights, dtype=np.float64)],
            "warnings": list(case.warnings), "voi_volume_mm3": float(case.voi_volume_mm3)}
    meta["checksum"] = _checksum(data, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(data))
    save_json(meta, path.with_suffix(".json"))


def _read_meta(path):
    return json.loads(Path(path).with_suffix(".json").read_text(encoding="utf-8"))


def read_entry(path):
    meta = _read_meta(path)
    data = Path(path).read_bytes()
    if _checksum(data, meta) != meta["checksum"]:
        raise ValueError("checksum mismatch")
    inputs = np.load(io.BytesIO(data), allow_pickle=False)
    return CachedCase(inputs=inputs, slice_weights=np.asarray(meta["slice_weights"], dtype=np.float64),
                      warnings=list(meta["warnings"]), voi_volume_mm3=float(meta["voi_volume_mm3"]))
