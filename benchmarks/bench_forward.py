"""Forward-pass cost of each model with each CPU inference option of ``fast_inference``, separately
and together, at the Predictor's input shapes (2D: the 3 largest VOI slices; 3D: one crop).

Prints figures, never a timed test. Configurations run interleaved (round-robin), so load from
other work on the machine hits them alike; the table gives medians. ``bn-fold`` is BatchNorm folded
into the convolutions by ``torch.fx.experimental.optimization.fuse`` and ``channels_last`` the
channels-last(-3d) memory order for weights and input: alternatives measured here, not used.

    python benchmarks/bench_forward.py [--threads 1] [--rounds 15]
"""

import argparse
import copy
import statistics
import sys
import time

import torch
from torch import nn

from LVIPredictorLib import models, preprocessing
from LVIPredictorLib.inference import fast
from LVIPredictorLib.vocabulary import architectures

# What each configuration applies, in order: "bn-fold" and "channels_last" are the alternatives
# measured here and not used by fast_inference; "onednn" is fast.optimize_for_inference.
CONFIGS = {
    "default": (),
    "bn-fold": ("bn-fold",),
    "channels_last": ("channels_last",),
    "onednn (used)": ("onednn",),
    "onednn+channels_last": ("onednn", "channels_last"),
    "bn-fold+onednn": ("bn-fold", "onednn"),
}


def trained_looking(name):
    """Fresh weights with non-trivial BatchNorm statistics (a fresh BN is an identity, hiding fold errors)."""
    torch.manual_seed(0)
    model = models.build_model(name).eval()
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d)):
            module.running_mean.uniform_(-0.3, 0.3)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return model


def configured(model, steps):
    """A copy of ``model`` with ``steps`` applied, and the input conversion it needs."""
    model = copy.deepcopy(model)
    convert = None
    for step in steps:
        if step == "bn-fold":
            from torch.fx.experimental.optimization import fuse

            model = fuse(model)
        elif step == "onednn":
            model = fast.optimize_for_inference(model, "cpu")
        elif step == "channels_last":
            dims = 3 if any(isinstance(m, nn.Conv3d) for m in model.modules()) else 2
            fmt = torch.channels_last_3d if dims == 3 else torch.channels_last
            model = model.to(memory_format=fmt)
            convert = fmt
    return model, convert


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("torch {} on {} thread(s), oneDNN available: {}; median of {} interleaved rounds\n".format(
        torch.__version__, args.threads, fast.onednn_available(), args.rounds))
    print("{:<16}{:<30}{:>10}{:>10}{:>14}".format("model", "options", "ms", "speed-up", "max |diff|"))
    for name in architectures.STUDY_NETWORKS:
        spec = preprocessing.default_spec(name)
        rows = spec.n_slices if models.model_dims(name) == 2 else 1
        x = torch.randn(models.input_shape(name, batch_size=rows), generator=torch.Generator().manual_seed(1))
        base = trained_looking(name)
        variants = {label: configured(base, steps) for label, steps in CONFIGS.items()}
        inputs = {label: x if fmt is None else x.contiguous(memory_format=fmt) for label, (_, fmt) in variants.items()}
        times = {label: [] for label in variants}
        with torch.inference_mode():
            reference = base(x)
            # Also the warm-up run of each configuration.
            diffs = {label: float((m(inputs[label]) - reference).abs().max()) for label, (m, _) in variants.items()}
            for _ in range(args.rounds):
                for label, (m, _) in variants.items():
                    t0 = time.perf_counter()
                    m(inputs[label])
                    times[label].append(time.perf_counter() - t0)
        default = statistics.median(times["default"])
        for label in variants:
            ms = statistics.median(times[label])
            print("{:<16}{:<30}{:>10.1f}{:>9.2f}x{:>14.1e}".format(name, label, 1e3 * ms, default / ms, diffs[label]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
