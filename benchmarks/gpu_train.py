"""Train the paper's six sequence x model combinations from a preprocessed cohort cache, fast.

Two modes:

    # here (needs SimpleITK): preprocess a cohort once into one .npz of model inputs.
    # A folder without cohort.csv first gets a `small` phantom cohort of --cases cases.
    python benchmarks/gpu_train.py --build-cache benchmarks/.cache/gpu_cohort.npz --cohort DIR [--cases 457]

    # on the GPU machine (needs only torch + numpy; scikit-learn for the holdout AUC)
    python benchmarks/gpu_train.py --cache benchmarks/.cache/gpu_cohort.npz --device cuda [--epochs 100]

Training follows the paper (Adam lr 1e-3 decayed x0.9 every 10 % of the batches, batch 64
for 2D / 8 for 3D, 100 epochs, a 9:1 holdout) with every input resident on the device:
a batch is an index into a device tensor, augmented there (flips, shifts, intensity), so
nothing waits for a loader. bf16 autocast and channels-last on CUDA. Per model it prints
wall time, samples/s, the share of the device timeline spent producing batches (index +
augmentation, plus any wait for the host to issue them), the share the device sat idle
between steps (host launch overhead), and nvidia-smi utilisation samples.

A cache holding fewer cases than --cases is tiled up to it (the split is made over the
original cases so no replica crosses it); that keeps the cache small enough to carry to
another machine (64 MiB travel limit: a 96-case cache is ~40 MB) and the work per epoch that
of the full cohort. The cache stores float16, compressed.
"""

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from LVIPredictorLib.models import build_model, model_dims
from LVIPredictorLib.vocabulary import architectures
from lvi_training.steps import autocast, optimisation_step

SEQUENCES = ("t2", "dce")
MAX_SHIFT = 4


# --- the cache ------------------------------------------------------------------------------

def build_cache(out, cohort_dir, n_cases, workers):
    """Preprocess every case of the cohort for the 2D and the 3D spec; write one .npz."""
    from LVIPredictorLib.preprocessing import default_spec
    from lvi_training.cache import PreparedCache
    from lvi_training.cohort import load_cohort

    cohort_dir = Path(cohort_dir)
    if not (cohort_dir / "cohort.csv").is_file():
        from lvi_training.phantom import CohortSpec, write_cohort

        t0 = time.perf_counter()
        write_cohort(str(cohort_dir), CohortSpec(seed=0, n=n_cases, size="small", outputs=("nifti",)), workers=workers)
        print("wrote a {}-case small phantom cohort to {} in {:.0f} s".format(n_cases, cohort_dir,
                                                                              time.perf_counter() - t0))
    cohort = load_cohort(cohort_dir)
    cases = [c for c in cohort.cases if all(c.has(s) for s in SEQUENCES)][:n_cases]
    arrays = {"labels": np.asarray([c.lvi for c in cases], dtype=np.int8),
              "case_ids": np.asarray([c.case_id for c in cases])}
    cache = PreparedCache(cohort_dir / ".lvi_cache")
    t0 = time.perf_counter()
    for seq in SEQUENCES:
        for dims, spec_of in ((2, "resnet10_2d"), (3, "resnet10_3d")):
            prepared, built = cache.prepare(cases, seq, default_spec(spec_of), workers=workers)
            key = "{}_{}d".format(seq, dims)
            arrays[key] = np.concatenate([p.inputs for p in prepared]).astype(np.float16)
            arrays[key + "_case"] = np.concatenate([np.full(len(p.inputs), i, dtype=np.int32)
                                                    for i, p in enumerate(prepared)])
            print("{}: {} samples {} ({} built)".format(key, len(arrays[key]), arrays[key].shape[1:], built))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, **arrays)
    print("cache of {} cases written to {} ({:.1f} MB) in {:.0f} s".format(
        len(cases), out, Path(out).stat().st_size / 1e6, time.perf_counter() - t0))


def load_cache(path, n_cases, device, seed=0):
    """{(seq, dims): (inputs on device float32, sample->case, train samples, test samples)}, labels."""
    data = np.load(path)
    labels = data["labels"].astype(np.int64)
    n_orig = len(labels)
    copies = max(1, math.ceil(n_cases / n_orig)) if n_cases else 1
    case_of = np.arange(n_orig * copies)[:max(n_cases or n_orig, n_orig)] % n_orig
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_orig)
    test_orig = set(order[: max(1, round(n_orig / 10))].tolist())  # the paper's 9:1 holdout
    out = {}
    for seq in SEQUENCES:
        for dims in (2, 3):
            key = "{}_{}d".format(seq, dims)
            x, owner = data[key], data[key + "_case"]
            per_case = [np.nonzero(owner == i)[0] for i in range(n_orig)]
            rows = np.concatenate([per_case[c] for c in case_of])
            sample_case = np.concatenate([np.full(len(per_case[c]), j) for j, c in enumerate(case_of)])
            is_test = np.asarray([case_of[j] in test_orig for j in sample_case])
            inputs = torch.from_numpy(x[rows].astype(np.float32)).to(device)
            out[(seq, dims)] = dict(inputs=inputs, labels=torch.from_numpy(labels[case_of[sample_case]]).float().to(device),
                                    sample_case=sample_case, train=torch.from_numpy(np.nonzero(~is_test)[0]).to(device),
                                    test=np.nonzero(is_test)[0])
    info = dict(cache_cases=n_orig, cases=len(case_of), tiled=copies > 1, test_cases=len(test_orig) * copies)
    return out, labels[case_of], info


# --- augmentation on the device, whole batch at once ----------------------------------------

def augment(x, generator):
    """Left-right (and for 3D cranio-caudal) flips, in-plane shifts of up to 4 voxels with
    replicate padding, intensity x[0.9, 1.1] + [-0.1, 0.1]: the engine's recipe, vectorised."""
    n, device = x.shape[0], x.device
    view = (n,) + (1,) * (x.dim() - 1)
    rand = torch.rand((n, 4), device=device, generator=generator)
    x = torch.where((rand[:, 0] < 0.5).reshape(view), x.flip(-1), x)
    if x.dim() == 5:
        x = torch.where((rand[:, 1] < 0.5).reshape(view), x.flip(2), x)
    h, w = x.shape[-2], x.shape[-1]
    shift = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (n, 2), device=device, generator=generator)
    pad = (MAX_SHIFT,) * 4 + ((0, 0) if x.dim() == 5 else ())
    padded = F.pad(x, pad, mode="replicate")
    rows = (torch.arange(h, device=device)[None, :] + MAX_SHIFT + shift[:, :1]).reshape((n,) + (1,) * (x.dim() - 3) + (h, 1))
    cols = (torch.arange(w, device=device)[None, :] + MAX_SHIFT + shift[:, 1:]).reshape((n,) + (1,) * (x.dim() - 3) + (1, w))
    rows = rows.expand(padded.shape[:-2] + (h, padded.shape[-1]))
    x = torch.gather(padded, -2, rows)
    x = torch.gather(x, -1, cols.expand(x.shape[:-1] + (w,)))
    scale = (1.0 + (rand[:, 2] * 2 - 1) * 0.1).reshape(view)
    offset = ((rand[:, 3] * 2 - 1) * 0.1).reshape(view)
    return x * scale + offset


# --- timing -----------------------------------------------------------------------------------

class StepClock:
    """Marks on the device timeline (CUDA events) or the host clock (CPU), summed per phase."""

    def __init__(self, device):
        self.cuda = device.startswith("cuda")
        self.marks = []

    def mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def spans_ms(self):
        """(data ms, compute ms) summed over steps; marks come in (start, data ready, step done) triples."""
        if self.cuda:
            torch.cuda.synchronize()
            elapsed = [a.elapsed_time(b) for a, b in zip(self.marks[:-1], self.marks[1:])]
        else:
            elapsed = [1e3 * (b - a) for a, b in zip(self.marks[:-1], self.marks[1:])]
        data = sum(elapsed[0::3])
        compute = sum(elapsed[1::3])
        self.marks = []
        return data, compute


class UtilisationSampler:
    """nvidia-smi utilisation samples every 200 ms while training runs (none without nvidia-smi)."""

    def __init__(self, enabled):
        self.proc = None
        if enabled and shutil.which("nvidia-smi"):
            self.proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                          "--format=csv,noheader,nounits", "-lms", "200"],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def stop(self):
        if self.proc is None:
            return []
        self.proc.terminate()
        out, _ = self.proc.communicate()
        samples = []
        for line in out.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 2 and parts[0].isdigit():
                samples.append((int(parts[0]), int(parts[1])))
        return samples


# --- one model ----------------------------------------------------------------------------------

def train_one(name, seq, block, epochs, device, channels_last, seed=0):
    torch.manual_seed(seed)
    cuda = device.startswith("cuda")
    model = build_model(name).to(device)
    fmt = None
    if channels_last and cuda:
        fmt = torch.channels_last if model_dims(name) == 2 else torch.channels_last_3d
        model = model.to(memory_format=fmt)
    batch = architectures.get(name).paper_batch_size
    train = block["train"]
    n_train = len(train)
    steps_per_epoch = math.ceil(n_train / batch)
    total_steps = epochs * steps_per_epoch
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if cuda else {}))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, round(0.1 * total_steps)), gamma=0.9)
    criterion = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator(device=device).manual_seed(seed)
    inputs, labels = block["inputs"], block["labels"]
    clock = StepClock(device)
    sampler = UtilisationSampler(cuda)
    data_ms = compute_ms = 0.0
    loss_sum = torch.zeros((), device=device)
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = train[torch.randperm(n_train, device=device, generator=generator)]
        for start in range(0, n_train, batch):
            clock.mark()
            idx = order[start:start + batch]
            x = augment(inputs[idx], generator)
            if fmt is not None:
                x = x.contiguous(memory_format=fmt)
            y = labels[idx]
            clock.mark()
            _, loss = optimisation_step(model, criterion, optimizer, scheduler, x, y, device)
            loss_sum += loss.detach()
            clock.mark()
        d, c = clock.spans_ms()  # one sync per epoch, never per step
        data_ms += d
        compute_ms += c
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    util = sampler.stop()
    auc = holdout_auc(model, block, device, fmt)
    busy = (data_ms + compute_ms) / 1e3
    return dict(model=name, sequence=seq, epochs=epochs, batch=batch, train_samples=n_train, steps=total_steps,
                wall_s=wall, samples_per_s=n_train * epochs / wall, ms_per_step=1e3 * wall / total_steps,
                data_share=data_ms / max(data_ms + compute_ms, 1e-9),
                idle_share=max(0.0, 1.0 - busy / wall) if cuda else 0.0,
                mean_loss=float(loss_sum) / total_steps, holdout_auc=auc,
                gpu_util=[u for u, _ in util], gpu_mem_mb=max([m for _, m in util], default=None))


def holdout_auc(model, block, device, fmt):
    """AUC over held-out cases (2D: slice probabilities averaged per case); None without scikit-learn."""
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:
        return None
    model.eval()
    test = block["test"]
    probs = []
    with torch.inference_mode(), autocast(device):
        for start in range(0, len(test), 256):
            x = block["inputs"][torch.as_tensor(test[start:start + 256], device=device)]
            if fmt is not None:
                x = x.contiguous(memory_format=fmt)
            probs.append(torch.sigmoid(model(x).float()).reshape(-1).cpu().numpy())
    p = np.concatenate(probs)
    owner = block["sample_case"][test]
    y = block["labels"].cpu().numpy()[test]
    cases = np.unique(owner)
    case_p = np.asarray([p[owner == c].mean() for c in cases])
    case_y = np.asarray([y[owner == c][0] for c in cases])
    if len(np.unique(case_y)) < 2:
        return None
    return float(roc_auc_score(case_y, case_p))


def summarise(util):
    if not util:
        return "n/a"
    u = np.asarray(util)
    return "{} samples: median {:.0f} %, p10 {:.0f} %, max {:.0f} %".format(len(u), np.median(u),
                                                                         np.percentile(u, 10), u.max())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-cache", metavar="OUT.npz", help="preprocess --cohort into OUT.npz and exit")
    parser.add_argument("--cohort", help="cohort folder for --build-cache (a small phantom cohort is written "
                                         "there first when it holds no cohort.csv)")
    parser.add_argument("--cache", help="the .npz written by --build-cache")
    parser.add_argument("--cases", type=int, default=457, help="cohort size (a smaller cache is tiled up to it)")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default=",".join(architectures.STUDY_NETWORKS))
    parser.add_argument("--sequences", default=",".join(SEQUENCES))
    parser.add_argument("--channels-last", choices=("on", "off"), default="on")
    parser.add_argument("--workers", type=int, default=2, help="processes for --build-cache")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.build_cache:
        if not args.cohort:
            parser.error("--build-cache needs --cohort")
        build_cache(args.build_cache, args.cohort, args.cases, args.workers)
        return 0
    if not args.cache:
        parser.error("give --cache (or --build-cache)")
    device = args.device
    if device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        name = torch.cuda.get_device_name()
    else:
        name = "CPU, {} threads".format(torch.get_num_threads())
    t0 = time.perf_counter()
    blocks, _, info = load_cache(args.cache, args.cases, device)
    print("torch {} on {}; cache {} cases{} -> {} cases, {} held out; loaded to the device in {:.1f} s".format(
        torch.__version__, name, info["cache_cases"], " (tiled)" if info["tiled"] else "", info["cases"],
        info["test_cases"], time.perf_counter() - t0))
    results = []
    head = "{:<15}{:<5}{:>8}{:>7}{:>10}{:>11}{:>10}{:>9}{:>9}{:>9}".format(
        "model", "seq", "samples", "steps", "wall s", "samples/s", "ms/step", "data %", "idle %", "AUC")
    print(head)
    print("-" * len(head))
    total = time.perf_counter()
    for seq in args.sequences.split(","):
        for model_name in args.models.split(","):
            r = train_one(model_name, seq, blocks[(seq, model_dims(model_name))], args.epochs, device,
                          args.channels_last == "on")
            results.append(r)
            print("{:<15}{:<5}{:>8}{:>7}{:>10.1f}{:>11.0f}{:>10.2f}{:>9.1f}{:>9.1f}{:>9}".format(
                model_name, seq, r["train_samples"], r["steps"], r["wall_s"], r["samples_per_s"], r["ms_per_step"],
                100 * r["data_share"], 100 * r["idle_share"],
                "-" if r["holdout_auc"] is None else "{:.3f}".format(r["holdout_auc"])))
            print("    GPU utilisation: {}; peak memory used {} MB".format(summarise(r["gpu_util"]), r["gpu_mem_mb"]))
    elapsed = time.perf_counter() - total
    print("{} model(s) trained in {:.1f} s on {}".format(len(results), elapsed, name))
    if info["tiled"]:
        print("note: the cache was tiled, so the holdout AUC reflects {} distinct cases only".format(
            info["cache_cases"]))
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "torch": torch.__version__, "info": info,
                                               "total_s": elapsed, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
