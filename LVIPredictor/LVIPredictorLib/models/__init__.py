"""The models: the networks (one class per family, parameterised by dimensions), the radiomics
baseline's logistic regression, fold ensembles, and the late fusion of trained models."""

from LVIPredictorLib.models.networks import (BasicBlock, Ensemble, RadiomicsLogistic, ResNet10, VanillaCNN2D,
                                             backbone_parameters, build_ensemble, build_model, count_parameters,
                                             default_config, example_input, input_shape, model_dims,
                                             scaled_config)

__all__ = ["BasicBlock", "Ensemble", "RadiomicsLogistic", "ResNet10", "VanillaCNN2D", "backbone_parameters",
           "build_ensemble", "build_model", "count_parameters", "default_config", "example_input", "input_shape",
           "model_dims", "scaled_config"]
