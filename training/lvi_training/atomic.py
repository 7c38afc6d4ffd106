"""Atomic result files for training runs (the mechanism is LVIPredictorLib.atomic_files).

A leftover ``.<name>.*.tmp`` from a kill is never mistaken for a result.
"""

import json

from LVIPredictorLib.atomic_files import atomic_write, write_bytes_atomic, write_json_atomic

def save_json(obj, path):
    write_json_atomic(path, obj)


def save_text(text, path):
    write_bytes_atomic(path, text.encode("utf-8"))


def load_json(path):
    with open(str(path), encoding="utf-8") as f:
        return json.load(f)
