"""Atomic file writes: a crash or kill at any instant leaves the previous complete file.

Every write goes to a temporary file in the destination folder, is flushed to disk and
renamed over the destination with ``os.replace`` (atomic within one file system), so a
reader sees the old file or the new one whole — never half a model card, checkpoint or
cohort.csv. The result keeps the mode of the file it replaces (a new file gets the
usual umask mode, not mkstemp's private 0600).
"""

import json
import os
import stat
import tempfile
from pathlib import Path


def _mode_for(path):
    if path.exists():
        return stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path, write):
    """Call ``write(binary_file)`` on a temporary file, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, str(path))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_bytes_atomic(path, data):
    atomic_write(path, lambda f: f.write(data))


def write_json_atomic(path, obj):
    write_bytes_atomic(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))
