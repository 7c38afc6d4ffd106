"""Atomic files: a crash or SIGKILL at any instant leaves the previous complete file.

Every write goes to a temporary file in the destination folder, is flushed to disk,
and is renamed over the destination with ``os.replace`` (atomic on POSIX and Windows
within one file system). Readers therefore see either the old or the new file whole,
and a leftover ``.<name>.*.tmp`` from a kill is never mistaken for a result.
"""

import json
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


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
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; results should be readable like any file
        os.replace(tmp, str(path))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_json(obj, path):
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode("utf-8")))


def save_text(text, path):
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def load_json(path):
    with open(str(path), encoding="utf-8") as f:
        return json.load(f)
