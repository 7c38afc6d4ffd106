"""Training throughput of the engine's step on a warm in-memory cache, and the share spent on data.

    python benchmarks/bench_train.py [--steps 10] [--threads N] [--device cpu|cuda] [--models ...]
                                     [--samples N] [--workers 0 2] [--no-reference] [--json out.json]

Per model at the paper's batch size and default input size (64x64 2D, 32x64x64 3D) it runs
the same pieces ``lvi train`` runs each step — index the resident input tensor with the
sampler's indices, augment (flips, shifts, intensity; lvi_training.engine.augment), then
forward + BCE loss + backward + Adam + StepLR — and times the data part (index + augment)
separately from the compute part. Prints samples/s and the data share of step time; the
data share is what "the loader must never be the bottleneck" is about: there is no
loader process, the batch is a gather from memory.

The reference side (``--reference``, the default; needs ``pip install .[bench]``) feeds the
same network, initialisation, optimiser, loss and step (lvi_training.steps.optimisation_step) the way a
MONAI user would: a list of dict items ``{"image": (C, ...) float32, "label": float}`` in a
``CacheDataset`` whose deterministic head (an edge-replicating ``BorderPadd`` of the shift
margin) is cached, followed by the random tail ``RandFlipd`` (x; and z in 3D),
``RandSpatialCropd`` back to the input size (the same integer in-plane shift of up to
MAX_SHIFT_VOXELS with replicated edges), ``RandScaleIntensityd`` and ``RandShiftIntensityd``
(our ranges), then ``monai.data.DataLoader(batch_size=paper batch, shuffle=True,
drop_last=True)`` with each ``--workers`` count (workers are persistent, so their start-up
is paid once, in the warm-up). The data time is the wait for the loader's next batch plus
turning the collated MetaTensor into a plain tensor on the device, so both sides run the
identical compute. Input on both sides: the same N synthetic preprocessed crops of the
model's input size (random values; no phantom cohort is needed to time a warm cache).

The machines here are shared: compare figures of one run, and prefer --threads 1 when
others are busy (two spinning OpenMP threads can be far slower than one).
"""

import argparse
import json
import time

import torch

from LVIPredictorLib.models import build_model
from LVIPredictorLib.vocabulary import architectures
from lvi_training import engine
from lvi_training.steps import optimisation_step


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


WARMUP_STEPS = 2


def synthetic_crops(name, n_samples):
    """The same N preprocessed crops (and labels) for both sides: (N, 1, *input size) float32 on the CPU."""
    g = torch.Generator().manual_seed(0)
    inputs = torch.randn((n_samples, 1) + tuple(architectures.get(name).input_size), generator=g)
    labels = (torch.rand(n_samples, generator=g) < 0.33).float()
    return inputs, labels


def timed_training(name, next_batch, steps, device):
    """Run ``steps`` (after warm-up) of the engine's step on batches from ``next_batch()``; time data and compute."""
    torch.manual_seed(0)  # the same initial weights on both sides
    model = build_model(name).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, steps // 10), gamma=0.9)
    criterion = torch.nn.BCEWithLogitsLoss()
    batch = architectures.get(name).paper_batch_size
    data_s = compute_s = 0.0
    for step in range(steps + WARMUP_STEPS):
        _sync(device)
        t0 = time.perf_counter()
        x, y = next_batch()
        _sync(device)
        t1 = time.perf_counter()
        optimisation_step(model, criterion, optimizer, scheduler, x, y, device)
        _sync(device)
        t2 = time.perf_counter()
        if step >= WARMUP_STEPS:
            data_s += t1 - t0
            compute_s += t2 - t1
    total = data_s + compute_s
    return {"samples_per_s": steps * batch / total, "ms_per_step": 1000 * total / steps,
            "data_ms_per_step": 1000 * data_s / steps, "data_share": data_s / total}


def bench_model(name, steps, device, n_samples=None):
    batch = architectures.get(name).paper_batch_size
    n_samples = n_samples or batch * 4
    cpu_inputs, cpu_labels = synthetic_crops(name, n_samples)
    inputs, labels = cpu_inputs.to(device), cpu_labels.to(device)  # the warm cache, resident
    params = engine.augmentation_parameters(n_samples, 0)
    g = torch.Generator().manual_seed(1)

    def next_batch():
        idx = torch.randperm(n_samples, generator=g)[:batch]
        return engine.augment(inputs[idx.to(device)], params, idx), labels[idx.to(device)]

    row = {"model": name, "batch_size": batch, "input": list(architectures.get(name).input_size), "steps": steps,
           "samples": n_samples}
    row.update(timed_training(name, next_batch, steps, device))
    return row


def monai_loader(name, n_samples, workers):
    """The reference input pipeline: CacheDataset (padding cached) + random transforms + MONAI DataLoader."""
    from monai import transforms as mt
    from monai.data import CacheDataset, DataLoader

    inputs, labels = synthetic_crops(name, n_samples)
    items = [{"image": inputs[i].numpy(), "label": float(labels[i])} for i in range(n_samples)]
    size = architectures.get(name).input_size
    m = engine.MAX_SHIFT_VOXELS
    three_d = len(size) == 3
    flip_axes = (2, 0) if three_d else (1,)  # spatial axes of (Z, Y, X) / (Y, X): x, and z in 3D, like ours
    transform = mt.Compose(
        [mt.EnsureTyped(keys="image", dtype=torch.float32),
         mt.BorderPadd(keys="image", spatial_border=(0, m, m) if three_d else (m, m), mode="edge")]
        + [mt.RandFlipd(keys="image", prob=0.5, spatial_axis=axis) for axis in flip_axes]
        + [mt.RandSpatialCropd(keys="image", roi_size=size, random_center=True, random_size=False),
           mt.RandScaleIntensityd(keys="image", factors=engine.INTENSITY_SCALE, prob=1.0),
           mt.RandShiftIntensityd(keys="image", offsets=engine.INTENSITY_OFFSET, prob=1.0)])
    transform.set_random_state(seed=0)
    dataset = CacheDataset(items, transform=transform, cache_rate=1.0, progress=False)
    return DataLoader(dataset, batch_size=architectures.get(name).paper_batch_size, shuffle=True, drop_last=True,
                      num_workers=workers, persistent_workers=workers > 0)


def bench_reference(name, steps, device, n_samples, workers):
    loader = monai_loader(name, n_samples, workers)
    state = {"it": iter(loader)}

    def next_batch():
        try:
            batch = next(state["it"])
        except StopIteration:  # a new epoch: reshuffle, as a MONAI training loop does
            state["it"] = iter(loader)
            batch = next(state["it"])
        x = batch["image"].as_tensor().to(device)
        return x, batch["label"].float().to(device)

    return timed_training(name, next_batch, steps, device)


def bench_references(row, steps, device, workers_list):
    """One reference entry per worker count, with ours/theirs samples/s; a configuration that fails is noted."""
    entries = []
    for workers in workers_list:
        entry = {"workers": workers}
        try:
            entry.update(bench_reference(row["model"], steps, device, row["samples"], workers))
            entry["ours_over_reference"] = row["samples_per_s"] / entry["samples_per_s"]
        except Exception as exc:  # e.g. no fork/shared memory for worker processes here
            entry["error"] = "{}: {}".format(type(exc).__name__, exc)
        entries.append(entry)
    return entries


def monai_version():
    try:
        import monai
    except ImportError:
        return None
    return monai.__version__


def print_table(rows):
    print("{:<16} {:>5} {:>14} {:>8} {:<10} {:>10} {:>10} {:>11} {:>10}".format(
        "model", "batch", "input", "samples", "side", "samples/s", "ms/step", "data share", "ours/ref"))
    for r in rows:
        sides = [("ours", r, None)]
        for ref in r.get("reference", []):
            sides.append(("monai w={}".format(ref["workers"]), ref, ref.get("ours_over_reference")))
        for label, fig, ratio in sides:
            head = "{:<16} {:>5} {:>14} {:>8}".format(r["model"], r["batch_size"], "x".join(str(v) for v in r["input"]),
                                                     r["samples"])
            if "error" in fig:
                print("{} {:<10} failed: {}".format(head, label, fig["error"]))
                continue
            print("{} {:<10} {:>10.1f} {:>10.1f} {:>10.2%} {:>10}".format(
                head, label, fig["samples_per_s"], fig["ms_per_step"], fig["data_share"],
                "" if ratio is None else "{:.2f}x".format(ratio)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", nargs="+", default=list(architectures.STUDY_NETWORKS), choices=architectures.STUDY_NETWORKS)
    parser.add_argument("--samples", type=int, default=None,
                        help="synthetic crops per model, the same on both sides (default: 4 paper batches)")
    parser.add_argument("--reference", action=argparse.BooleanOptionalAction, default=True,
                        help="also time the MONAI CacheDataset + DataLoader side (default: on)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="DataLoader num_workers values for the reference side")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    monai = monai_version() if args.reference else None
    if args.reference and monai is None:
        print("MONAI is not installed: skipping the reference side (pip install -e .[bench] to compare)")
    rows = []
    for name in args.models:
        row = bench_model(name, args.steps, args.device, args.samples)
        if monai:
            row["reference"] = bench_references(row, args.steps, args.device, args.workers)
        rows.append(row)
    print("device {}, torch threads {}, {} timed steps per model, {}".format(
        args.device, torch.get_num_threads(), args.steps,
        "reference: MONAI {} CacheDataset + DataLoader".format(monai) if monai else "no reference"))
    print_table(rows)
    result = {"device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "monai": monai, "input": "synthetic preprocessed crops of each model's input size", "rows": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
