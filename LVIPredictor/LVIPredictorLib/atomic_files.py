"""Atomic file writes: a crash or kill at any instant leaves the previous complete file.

Every write goes to a temporary file in the destination folder, is flushed to disk and
renamed over the destination with ``os.replace`` (atomic within one file system), so a
reader sees the old file or the new one whole — never half a model card, checkpoint or
cohort.csv. The result keeps the mode of the file it replaces (a new file gets the
usual umask mode, not mkstemp's private 0600).

:class:`StagedFiles` does the same for several files that belong together (a report and its
DICOM SR and SEG): all are written to temporaries first and renamed only when every one was
written, so a run that fails half-way leaves none of its outputs (and no earlier one replaced).
"""

import errno
import json
import os
import stat
import tempfile
from pathlib import Path

from LVIPredictorLib.errors import InputError


def _mode_for(path):
    if path.exists():
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_temporary(path, write):
    """``write(binary_file)`` into a flushed temporary beside ``path``; returns the temporary's path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
    except BaseException as error:
        _remove(tmp)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            # The one disk error a user can act on, said in one line naming the file.
            raise InputError(str(path), "cannot be written: no space left on its disk ({})".format(
                error.strerror)) from error
        raise
    return tmp


def _remove(tmp):
    try:
        os.remove(tmp)
    except OSError:
        pass


def atomic_write(path, write):
    """Call ``write(binary_file)`` on a temporary file, then rename it to ``path``."""
    path = Path(path)
    tmp = _write_temporary(path, write)
    try:
        os.replace(tmp, str(path))
    except BaseException:
        _remove(tmp)
        raise


def write_bytes_atomic(path, data):
    atomic_write(path, lambda f: f.write(data))


def write_json_atomic(path, obj):
    write_bytes_atomic(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


class StagedFiles:
    """Files written now and put in place together.

    Used as a context manager: leaving the block normally renames every temporary to its
    destination; leaving it by an exception removes them, so nothing of the run is left.
    """

    def __init__(self):
        self._staged = []  # (temporary, destination)

    def write_bytes(self, path, data):
        path = Path(path)
        self._staged.append((_write_temporary(path, lambda f: f.write(data)), str(path)))

    def write_json(self, path, obj):
        self.write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))

    def commit(self):
        staged, self._staged = self._staged, []
        for index, (tmp, destination) in enumerate(staged):
            try:
                os.replace(tmp, destination)
            except BaseException:
                for later, _ in staged[index:]:
                    _remove(later)
                raise

    def discard(self):
        staged, self._staged = self._staged, []
        for tmp, _ in staged:
            _remove(tmp)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if kind is None:
            self.commit()
        else:
            self.discard()
        return False
