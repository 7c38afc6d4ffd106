"""Errors that name the offending file and the problem.

Bad input must never turn into a wrong number: every check in the library raises
one of these with the file (or node) and a sentence a radiologist can act on.
"""

from typing import Optional


class LVIError(Exception):
    """Base class of every error this project raises on purpose.

    ``source`` is the file, folder or node the problem is in (may be None when
    the input came from memory); ``problem`` is the sentence without the source.
    """

    def __init__(self, source: Optional[str], problem: str):
        self.source = str(source) if source is not None else None
        self.problem = problem
        message = "{}: {}".format(self.source, problem) if self.source else problem
        super().__init__(message)


class InputError(LVIError, ValueError):
    """An image, mask or cohort entry that cannot be used, and why."""


class WeightsError(LVIError, ValueError):
    """A weights file or model card that is corrupt, tampered with or mismatched."""


class PredictionCancelled(Exception):
    """The user asked to stop between two steps of a prediction; nothing was returned or added."""
