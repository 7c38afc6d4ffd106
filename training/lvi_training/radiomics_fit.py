"""Fitting the radiomics baseline on one training fold: standardise, then L2 logistic regression
(``logistic_fit``: C chosen by 5-fold CV by patient inside the training fold, on log-loss)."""

import numpy as np
import torch

from LVIPredictorLib.models import RadiomicsLogistic

from .logistic_fit import fit_l2_logistic


def fit_fold(data, train_cases, patients, feature_names, seed):
    """(RadiomicsLogistic in eval mode, history) fitted on ``train_cases`` of ``data`` (CaseTensors)."""
    train_cases = np.asarray(train_cases, dtype=np.int64)
    x = data.inputs[data.samples_of(train_cases)].reshape(len(train_cases), -1).double().numpy()
    fit = fit_l2_logistic(x, data.labels[train_cases], np.asarray(patients)[train_cases], seed)
    model = RadiomicsLogistic(feature_names)
    with torch.no_grad():
        model.feature_mean.copy_(torch.from_numpy(fit.mean))
        model.feature_scale.copy_(torch.from_numpy(fit.scale))
        model.linear.weight.copy_(torch.from_numpy(fit.coef[None, :]))
        model.linear.bias.copy_(torch.tensor([fit.intercept], dtype=torch.float64))
    history = [dict(fit.describe(), coefficients={n: float(c) for n, c in zip(feature_names, fit.coef)})]
    return model.eval(), history
