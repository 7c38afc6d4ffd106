"""Atomic result files for training runs (the mechanism is LVIPredictorLib.atomic_files).

A leftover ``.<name>.*.tmp`` from a kill is never mistaken for a result.
"""

import json
from pathlib import Path

from LVIPredictorLib.atomic_files import atomic_write, write_bytes_atomic, write_json_atomic
from LVIPredictorLib.errors import InputError

def save_json(obj, path):
    write_json_atomic(path, obj)


def save_text(text, path):
    write_bytes_atomic(path, text.encode("utf-8"))


def refuse_to_overwrite(folder, names, overwrite, describe="{}"):
    """InputError when ``folder`` already holds any of the result files ``names`` and ``overwrite``
    is off: earlier results are never replaced silently. ``describe`` words the files found."""
    existing = [name for name in names if (Path(folder) / name).exists()]
    if existing and not overwrite:
        raise InputError(str(folder), "already holds {}; choose another --out or pass --overwrite".format(
            describe.format(", ".join(existing))))


def load_json(path):
    with open(str(path), encoding="utf-8") as f:
        return json.load(f)
