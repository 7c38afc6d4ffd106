"""One model at work: its device, its Predictor (card-driven preprocessing, ensemble, 2D slice
aggregation, the frozen threshold), its heat-maps and the sentences that report it.

The names below are loaded on first use, so that the torch-free parts (``inference.statements``,
which the Slicer panel imports when the module loads) do not import torch, which the module installs
only on the first Predict.
"""

import importlib

_LAZY = {"Prediction": "predictor", "Predictor": "predictor", "resolve_device": "devices"}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module("LVIPredictorLib.inference." + _LAZY[name]), name)
    raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
