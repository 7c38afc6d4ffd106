"""ONE path from (images, VOIs, spec) to model input, shared by training and prediction.

:func:`prepare_input` is that path: network specs crop and normalise (``crops``), radiomics
specs compute the feature vector (``radiomics``); both first pass the VOI checks of
``inputs.voi``. The spec is saved in every model card and read back from there
(:func:`spec_from_dict`), so a model always sees inputs prepared the way it was trained.
"""

from LVIPredictorLib.inputs.voi import Channel, binary_voi, voi_agreement
from LVIPredictorLib.preprocessing import radiomics
from LVIPredictorLib.preprocessing.crops import aggregate_slice_scores, preprocess, preprocess_channels
from LVIPredictorLib.preprocessing.spec import (MASK_ENCODINGS, NORMALIZATIONS, PreparedCase, PreprocessSpec,
                                                default_spec)

__all__ = ["Channel", "MASK_ENCODINGS", "NORMALIZATIONS", "PreparedCase", "PreprocessSpec", "aggregate_slice_scores",
           "binary_voi", "default_spec", "prepare_input", "preprocess", "preprocess_channels", "spec_from_dict",
           "voi_agreement"]


def spec_from_dict(d):
    """The input spec a model card (or cache job) describes: network crops, or radiomics features."""
    if isinstance(d, dict) and d.get("kind") == radiomics.KIND:
        return radiomics.RadiomicsSpec.from_dict(d)
    return PreprocessSpec.from_dict(d)


def prepare_input(channels, spec, sequence_names, grid_channel=0):
    """THE path from images + VOIs to model input, for training and prediction alike."""
    if getattr(spec, "kind", None) == radiomics.KIND:
        return radiomics.extract(channels, spec, sequence_names, grid_channel=grid_channel)
    return preprocess_channels(channels, spec, grid_channel=grid_channel)
