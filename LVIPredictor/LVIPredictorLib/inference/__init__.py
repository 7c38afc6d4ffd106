"""One model at work: its device, its Predictor (card-driven preprocessing, ensemble, 2D slice
aggregation, the frozen threshold) and its heat-maps."""

from LVIPredictorLib.inference.devices import resolve_device
from LVIPredictorLib.inference.predictor import Prediction, Predictor

__all__ = ["Prediction", "Predictor", "resolve_device"]
