"""Reference feature values for breast1 from pyradiomics, an implementation independent of ours.

Writes ``reference_features.json`` beside this file. Run it with pyradiomics in its own
environment (pyradiomics is neither a runtime nor a test dependency of LVIPredictor):

    python -m venv /tmp/pyrad
    /tmp/pyrad/bin/pip install numpy SimpleITK setuptools wheel versioneer
    /tmp/pyrad/bin/pip install --no-build-isolation pyradiomics==3.0.1
    /tmp/pyrad/bin/python Testing/Data/pyradiomics_breast1/make_reference_features.py

Settings chosen to match LVIPredictorLib/radiomics.py as closely as pyradiomics allows:

- shape: pyradiomics' 3D shape class on the label as given (no resampling);
- first order: on the raw intensities inside the label, ``binCount`` 32 for the entropy (our
  ``histogram_bins``; both bin the VOI's min..max range). Ours are divided by the breast
  background level, so only scale-free quantities can be compared: skewness, kurtosis, entropy
  and ratios such as sd / mean;
- GLCM: our grey levels are 16 bins over the VOI's 1st..99th percentile (floored, clipped), a
  rule pyradiomics has no setting for. The script applies that rule itself and gives pyradiomics
  the level image (``binWidth`` 1, so each level is its own bin); pyradiomics then builds the
  matrix and computes the features: in-plane neighbours only (``force2D``, dimension 0 = the
  slice axis), distance 1, symmetric, the four directions' matrices summed into one
  (``weightingNorm: no_weighting``), as ours pools them.
"""

import json
import logging
from pathlib import Path

import numpy as np
import radiomics
import SimpleITK as sitk
from radiomics import featureextractor

HERE = Path(__file__).resolve().parent
GLCM_LEVELS = 16
SHAPE = ("VoxelVolume", "MeshVolume", "SurfaceArea", "SurfaceVolumeRatio", "Sphericity", "Maximum3DDiameter",
         "Elongation", "Flatness", "MajorAxisLength", "MinorAxisLength", "LeastAxisLength")
FIRST_ORDER = ("Mean", "StandardDeviation", "10Percentile", "90Percentile", "Skewness", "Kurtosis", "Entropy")
GLCM = ("Contrast", "Idm", "JointEnergy", "Correlation", "JointEntropy")


def _extract(image, mask, settings, feature_class, names):
    extractor = featureextractor.RadiomicsFeatureExtractor(**settings)
    extractor.disableAllFeatures()
    extractor.enableFeaturesByName(**{feature_class: list(names)})
    result = extractor.execute(image, mask)
    return {name: float(result["original_{}_{}".format(feature_class, name)]) for name in names}


def _glcm_levels(image, mask):
    """Our grey-level rule (radiomics._glcm) applied to the raw image: levels 1..16 inside the VOI."""
    values = sitk.GetArrayFromImage(image).astype(np.float64)
    inside = sitk.GetArrayFromImage(mask) > 0
    lo, hi = np.percentile(values[inside], (1, 99))
    levels = np.clip(np.floor((values - lo) / (hi - lo) * GLCM_LEVELS), 0, GLCM_LEVELS - 1) + 1
    out = sitk.GetImageFromArray(levels.astype(np.float32))
    out.CopyInformation(image)
    return out


def main():
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    image = sitk.ReadImage(str(HERE / "breast1_image.nrrd"))
    mask = sitk.ReadImage(str(HERE / "breast1_label.nrrd"))
    common = {"label": 1, "additionalInfo": False}
    first_order_settings = dict(common, binCount=32)
    glcm_settings = dict(common, binWidth=1, force2D=True, force2Ddimension=0, distances=[1],
                         symmetricalGLCM=True, weightingNorm="no_weighting")
    reference = {
        "what": "pyradiomics feature values on breast1_image.nrrd / breast1_label.nrrd (label 1)",
        "produced_by": {"pyradiomics": radiomics.__version__, "SimpleITK": sitk.Version.VersionString(),
                        "numpy": np.__version__,
                        "command": "/tmp/pyrad/bin/python Testing/Data/pyradiomics_breast1/make_reference_features.py",
                        "environment": "python -m venv /tmp/pyrad; /tmp/pyrad/bin/pip install numpy SimpleITK "
                                       "setuptools wheel versioneer; /tmp/pyrad/bin/pip install "
                                       "--no-build-isolation pyradiomics==3.0.1"},
        "settings": {"shape": common, "firstorder": first_order_settings,
                     "glcm": dict(glcm_settings, grey_levels="16 bins over the VOI's 1st..99th percentile, floored "
                                                             "and clipped (LVIPredictor's rule, applied by this "
                                                             "script), given to pyradiomics as levels 1..16")},
        "shape": _extract(image, mask, common, "shape", SHAPE),
        "firstorder": _extract(image, mask, first_order_settings, "firstorder", FIRST_ORDER),
        "glcm": _extract(_glcm_levels(image, mask), mask, glcm_settings, "glcm", GLCM),
    }
    out = HERE / "reference_features.json"
    out.write_text(json.dumps(reference, indent=2) + "\n")
    print("wrote {}".format(out))


if __name__ == "__main__":
    main()
