"""Training throughput of the engine's step on a warm in-memory cache, and the share spent on data.

    python benchmarks/bench_train.py [--steps 10] [--threads N] [--device cpu|cuda] [--models ...] [--json out.json]

Per model at the paper's batch size and default input size (64x64 2D, 32x64x64 3D) it runs
the same pieces ``lvi train`` runs each step — index the resident input tensor with the
sampler's indices, augment (flips, shifts, intensity; lvi_training.engine.augment), then
forward + BCE loss + backward + Adam + StepLR — and times the data part (index + augment)
separately from the compute part. Prints samples/s and the data share of step time; the
data share is what "the loader must never be the bottleneck" is about: there is no
loader process, the batch is a gather from memory.

The machines here are shared: compare figures of one run, and prefer --threads 1 when
others are busy (two spinning OpenMP threads can be far slower than one).
"""

import argparse
import json
import time

import torch

from LVIPredictorLib.models import DEFAULT_INPUT_SIZE, MODEL_NAMES, PAPER_BATCH_SIZE, build_model
from lvi_training import engine


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench_model(name, steps, device, n_samples=None):
    batch = PAPER_BATCH_SIZE[name]
    size = DEFAULT_INPUT_SIZE[name]
    n_samples = n_samples or batch * 4
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn((n_samples, 1) + tuple(size), generator=g).to(device)  # the warm cache, resident
    labels = (torch.rand(n_samples, generator=g) < 0.33).float().to(device)
    model = build_model(name).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, steps // 10), gamma=0.9)
    criterion = torch.nn.BCEWithLogitsLoss()
    params = engine.augmentation_parameters(n_samples, 0)
    data_s = compute_s = 0.0
    for step in range(steps + 2):  # two warm-up steps
        _sync(device)
        t0 = time.perf_counter()
        idx = torch.randperm(n_samples, generator=g)[:batch]
        x = engine.augment(inputs[idx.to(device)], params, idx)
        y = labels[idx.to(device)]
        _sync(device)
        t1 = time.perf_counter()
        engine.optimisation_step(model, criterion, optimizer, scheduler, x, y, device)
        _sync(device)
        t2 = time.perf_counter()
        if step >= 2:
            data_s += t1 - t0
            compute_s += t2 - t1
    total = data_s + compute_s
    return {"model": name, "batch_size": batch, "input": list(size), "steps": steps,
            "samples_per_s": steps * batch / total, "ms_per_step": 1000 * total / steps,
            "data_ms_per_step": 1000 * data_s / steps, "data_share": data_s / total}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [bench_model(name, args.steps, args.device) for name in args.models]
    print("device {}, torch threads {}, {} timed steps per model".format(args.device, torch.get_num_threads(),
                                                                          args.steps))
    print("{:<16} {:>5} {:>14} {:>10} {:>10} {:>12}".format("model", "batch", "input", "samples/s", "ms/step",
                                                            "data share"))
    for r in rows:
        print("{model:<16} {batch_size:>5} {inp:>14} {samples_per_s:>10.1f} {ms_per_step:>10.1f} {share:>11.2%}".format(
            inp="x".join(str(v) for v in r["input"]), share=r["data_share"], **r))
    result = {"device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__, "rows": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
