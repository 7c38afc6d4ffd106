"""Where a model runs: the device (CUDA, then Apple MPS, then the CPU) and, on the CPU, how many
threads torch may use."""

import torch

from LVIPredictorLib.errors import LVIError


def resolve_device(device="auto"):
    # type: (str) -> str
    """'auto' picks CUDA, then Apple MPS, then the CPU. Asking for a missing device is an error."""
    device = (device or "auto").lower()
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LVIError(None, "device {!r} was requested but torch sees no CUDA GPU (torch {} {})".format(
            device, torch.__version__, "CPU build" if torch.version.cuda is None else "CUDA " + torch.version.cuda))
    if device == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise LVIError(None, "device 'mps' was requested but is not available")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise LVIError(None, "unknown device {!r}; use auto, cpu, cuda or mps".format(device))
    return device
