"""Case-level refit of a trained network's last linear layer (``--head-refit``).

A 2D network learns slice by slice, each slice labelled with its case's label, so its last layer
weighs the features for telling single slices apart — yet a case is scored by the area-weighted
mean of its slices. After training, the last layer is refitted for the case: each training-fold
case's slices are run through the network, the features the last layer reads are pooled with the
case score's own area weights, and an L2 logistic regression on those pooled features (C chosen
by 5-fold CV by patient inside the training fold, as for the radiomics baseline:
``logistic_fit``) gives the layer's new weights and bias. The inner validation cases, which the
network never trained on, are part of the fit. A 3D network has one sample per case, so its
features are the case's own.

Nothing else changes: the refitted weights sit in the network's own last layer, so the model's
architecture, its weights file, the prediction path (slice probabilities averaged with the
area weights) and Slicer are as before. The held-out fold is never looked at.

Why it helps (docs/results.md, "Bundled models"): an L2 fit on a few hundred cases is a better-posed
problem than a last layer learnt end to end on slices that all carry their case's label, and
pooling gives it the whole VOI at once. It lifted the 2D networks by 0.004-0.035 out of fold (the
VanillaCNNs most) and left the 3D ones, which have nothing to pool, nearly unchanged. On the fused
VanillaCNN trained without the inner validation split (no training case unseen) it gave nothing.
"""

import numpy as np
import torch

from .logistic_fit import fit_l2_logistic

BATCH = 256


def last_linear(model):
    """(name, module) of the model's last ``nn.Linear``: the layer that turns features into the logit."""
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    if not found:
        raise ValueError("{} has no linear layer to refit".format(type(model).__name__))
    return found[-1]


@torch.inference_mode()
def case_features(model, data, case_indices, device):
    """(cases, features): the inputs of the last linear layer, area-weighted over each case's slices."""
    _, layer = last_linear(model)
    captured = []
    hook = layer.register_forward_pre_hook(lambda module, inputs: captured.append(inputs[0].float().cpu()))
    model.eval()
    case_indices = np.asarray(case_indices, dtype=np.int64)
    samples = data.samples_of(case_indices)
    try:
        for start in range(0, len(samples), BATCH):
            model(data.inputs[samples[start:start + BATCH]].to(device))
    finally:
        hook.remove()
    features = torch.cat(captured).double().numpy()
    owner = data.sample_case[samples].numpy()
    pooled = []
    for case in case_indices:
        weights = np.asarray(data.slice_weights[case], dtype=np.float64)
        pooled.append((features[owner == case] * (weights / weights.sum())[:, None]).sum(axis=0))
    return np.stack(pooled)


def refit_head(model, data, fit_cases, patients, seed, device):
    """Refit the last linear layer of ``model`` in place on ``fit_cases``; returns
    (the new {state-dict key: tensor} of that layer, a description for the fold's result)."""
    name, layer = last_linear(model)
    if layer.out_features != 1:
        raise ValueError("the head refit needs a one-logit last layer, {} has {}".format(name, layer.out_features))
    fit_cases = np.asarray(fit_cases, dtype=np.int64)
    x = case_features(model, data, fit_cases, device)
    fit = fit_l2_logistic(x, data.labels[fit_cases], np.asarray(patients)[fit_cases], seed)
    weights, bias = fit.raw_weights()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weights[None, :]).to(layer.weight))
        layer.bias.copy_(torch.tensor([bias]).to(layer.bias))
    prefix = name + "." if name else ""
    state = {prefix + "weight": layer.weight.detach().cpu().clone(), prefix + "bias": layer.bias.detach().cpu().clone()}
    return state, dict(fit.describe(), layer=name, cases=int(len(fit_cases)), features=int(x.shape[1]))
