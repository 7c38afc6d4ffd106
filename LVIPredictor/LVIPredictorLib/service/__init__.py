"""One case, every chosen model: the service the Slicer module and ``lvi predict`` share.

The names below are loaded on first use, so that importing ``service.inputs`` or
``service.record`` (as the Slicer module does when it loads) does not import torch, which the
module installs only on the first Predict.
"""

import importlib

_LAZY = {"CaseResult": "case", "CaseService": "case", "predict_case": "case", "SeriesInput": "inputs",
         "series_from_files": "inputs"}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module("LVIPredictorLib.service." + _LAZY[name]), name)
    raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
