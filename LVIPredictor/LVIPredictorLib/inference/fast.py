"""A loaded model made cheaper to run on the CPU, with the same results to float tolerance.

Why it is needed: for batch-1 input ATen picks its slow native (im2col) convolution instead of
oneDNN whenever N*C*D*H <= 20480 (a heuristic in ATen's ConvUtils written for 2D images). At the
3D ResNet10's 32x64x64 input that is almost every convolution of the body and the head, in
particular the dilated 4x8x8 layers that dominate its cost, so the 3D forward pass ran ~2.3x
slower than the same arithmetic through oneDNN.

What is done: every ``Conv2d``/``Conv3d`` runs through ``torch.mkldnn_convolution`` (oneDNN) on CPU
float32 input; anything else (CUDA, MPS, other dtypes, non-zero padding modes) takes the module's
own path. Measured with the alternatives, each on its own and interleaved
(``python benchmarks/bench_forward.py --threads 1``; figures in docs/benchmarks.md):
oneDNN made the 3D forward ~2.1-2.3x faster and left the 2D models (batch 3, which ATen already
sends to oneDNN) unchanged. Not applied: BatchNorm folded into the convolutions (no gain, alone or
on top); channels-last memory order, which depends on the architecture (~1.4x for VanillaCNN 2D,
none or a 5-25 % loss for the ResNet10s, and a second copy of the 3D weights while converting) so it
is no rule for any network; TorchScript freezing (~1.3x in 2D, but Grad-CAM needs the eager modules
and a second model copy would raise memory). The Predictor already runs under ``torch.inference_mode``.

The model keeps its modules, parameter names and hooks (Grad-CAM hooks a feature layer and
back-propagates through these convolutions), so :func:`optimize_for_inference` works on any
network built of standard convolutions, whatever its widths.
"""

import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)


class _OneDnnConvolution:
    """Mixin for Conv2d/Conv3d: the oneDNN kernel where it applies, the module's own path elsewhere."""

    def _conv_forward(self, input, weight, bias):
        if (input.device.type == "cpu" and input.dtype == torch.float32 and weight.dtype == torch.float32
                and self.padding_mode == "zeros" and not isinstance(self.padding, str)):
            return torch.mkldnn_convolution(input, weight, bias, self.padding, self.stride, self.dilation,
                                            self.groups)
        return super()._conv_forward(input, weight, bias)


class OneDnnConv2d(_OneDnnConvolution, nn.Conv2d):
    pass


class OneDnnConv3d(_OneDnnConvolution, nn.Conv3d):
    pass


_ONEDNN_CLASSES = {nn.Conv2d: OneDnnConv2d, nn.Conv3d: OneDnnConv3d}


def onednn_available():
    # type: () -> bool
    return bool(hasattr(torch, "mkldnn_convolution") and torch.backends.mkldnn.is_available()
                and torch.backends.mkldnn.enabled)


def optimize_for_inference(model, device="cpu"):
    # type: (nn.Module, str) -> nn.Module
    """Make ``model`` (in eval mode, on ``device``) cheaper to run, in place; returns it.

    Only the CPU is changed: on CUDA/MPS, or in a torch build without oneDNN, the model is left as it was.
    """
    if str(device) != "cpu":
        return model
    if not onednn_available():
        logger.info("oneDNN is not available in this torch build; convolutions keep their default path")
        return model
    for module in model.modules():
        # Swapping the class (not the module) keeps its parameters, state-dict names and hooks.
        faster = _ONEDNN_CLASSES.get(type(module))
        if faster is not None:
            module.__class__ = faster
    return model
