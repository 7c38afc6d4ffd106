"""LVIPredictorLib: the core shared by the Slicer module and the training tools.

Pure Python (no slicer / Qt imports) and Python 3.9 syntax, because it also runs
inside Slicer's own interpreter.
"""

__version__ = "0.1.0"
