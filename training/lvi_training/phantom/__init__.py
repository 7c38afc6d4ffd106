"""Synthetic breast-MRI phantoms with a known best-possible AUC for LVI.

``signs`` holds the generative model (LVI -> latent MRI signs) and its best AUC;
``anatomy``, ``lesion``, ``contrast`` and ``acquisition`` turn signs into T2 and DCE
images; ``voi`` draws the radiologist-style masks; ``dicom_writer`` and ``cohort``
write cases and cohorts; ``sample`` makes the shipped sample case.
"""

from .cohort import CohortSpec, write_case, write_cohort  # noqa: F401
from .signs import SignModel, best_auc  # noqa: F401
