"""One case, every chosen model: the service the Slicer module and ``lvi predict`` share."""

from LVIPredictorLib.service.case import CaseResult, CaseService, PredictionCancelled, predict_case
from LVIPredictorLib.service.inputs import SeriesInput, series_from_files

__all__ = ["CaseResult", "CaseService", "PredictionCancelled", "SeriesInput", "predict_case", "series_from_files"]
