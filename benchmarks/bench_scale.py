"""Per-case overheads of the cache and of validation at cohort scale (issue 27, item 4).

    python benchmarks/bench_scale.py --sizes 100 1000 5000 [--workdir DIR] [--keep]
    python benchmarks/bench_scale.py --full-size --sizes 24     # clinical-size phantom cases

For each N it writes a cohort of N small cases (T2 only, 32x32x8 voxels at 1.5x1.5x3 mm,
NIfTI image + mask, the unit tests' blob cohort with file times set a minute back, as an
exported cohort's are) — or, with ``--full-size``, N phantom cases at the clinical matrix
(``lvi phantom --size full --outputs nifti``: T2 448x448x40 and DCE phase 2 448x448x96 with
their VOIs, ~26 MB a case) — and measures, with the default model/recipe (vanilla_cnn_2d, small-data):

- the start-up every command below pays once: ``lvi preprocess --help``;
- cold cache build: ``lvi preprocess --workers 1`` and ``--workers 2`` into empty caches;
- warm start: ``lvi preprocess`` again (the whole command) and, in this process, the step
  ``train`` runs before its first epoch: load cohort.csv + ``PreparedCache.stacked`` (stat of
  every input, the pack verified against its checksum and memory-mapped);
- ``lvi validate-cohort --workers 1`` and ``--workers 2``;
- memory per process when 1 and 2 gloo ranks (torchrun) load the cache as ``train`` does and
  read every sample once in batches of 64, as an epoch does: peak RSS (VmHWM), and at the end
  anonymous memory (RssAnon: what the process holds privately) and file pages (RssFile: the
  pack's pages, shared by the ranks through the page cache). ``old`` rows load the same cases
  the way the previous cache did (every entry read and concatenated in each process).

The per-process ``_load`` mode is this script run under torchrun; it is not meant to be called
by hand. Prints a table of totals and per-case milliseconds.
"""

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "Testing" / "Python"))  # the tests' blob cohort writer

MODEL, SEQUENCE = "vanilla_cnn_2d", "t2"


def lvi(*args):
    """Wall time of one ``lvi`` command run as a user would (fresh interpreter, imports included)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "lvi_training.cli"] + [str(a) for a in args],
                          capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0,):
        raise SystemExit("lvi {} failed:\n{}{}".format(" ".join(map(str, args)), done.stdout, done.stderr))
    return elapsed


def write_cohort(root, n, full_size=False):
    if full_size:
        lvi("phantom", "--out", root, "--n", n, "--seed", 27, "--size", "full", "--outputs", "nifti", "--workers", 2)
        images = root / "cases"
    else:
        from training_helpers import write_blob_cohort

        write_blob_cohort(root, n=n, seed=27, shape=(8, 32, 32), sequences=("t2",))
        images = root / "images"
    past = time.time() - 60
    for path in images.rglob("*"):
        os.utime(path, (past, past))


def _request(cohort):
    from lvi_training.request import RunRequest

    return RunRequest(cohort=str(cohort), model=MODEL, sequence=SEQUENCE, out="")


def warm_in_process(cohort, cache_dir):
    from lvi_training.cache import PreparedCache
    from lvi_training.cohort import load_cohort
    from lvi_training.request import build_spec

    start = time.perf_counter()
    loaded = load_cohort(cohort)
    stack, built = PreparedCache(cache_dir).stacked(loaded.with_sequence(SEQUENCE), SEQUENCE,
                                                    build_spec(_request(cohort)), workers=2)
    elapsed = time.perf_counter() - start
    assert built == 0, "warm start rebuilt {} cases".format(built)
    return elapsed, stack.inputs.nbytes


def _memory_status():
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) / 1024.0  # kB -> MiB
    return fields


def load_as_a_rank(cohort, cache_dir, mode, out_dir):
    """Under torchrun: load the cache as ``train`` does (or as the old cache did), read one epoch."""
    import numpy as np
    import torch

    from lvi_training import distributed
    from lvi_training.cache import PreparedCache
    from lvi_training.cohort import load_cohort
    from lvi_training.engine import CaseTensors
    from lvi_training.request import build_spec

    torch.set_num_threads(1)
    ctx = distributed.setup("cpu")
    loaded = load_cohort(cohort)
    cases = loaded.with_sequence(SEQUENCE)
    spec = build_spec(_request(cohort))
    store = PreparedCache(cache_dir)
    labels = [c.lvi for c in cases]
    if mode == "pack":
        path = distributed.run_on_main(ctx, lambda: str(store.stacked(cases, SEQUENCE, spec, workers=1)[0].path),
                                       store.root)
        data = store.open_stack(path).case_tensors(labels)
    else:
        prepared, _ = store.prepare(cases, SEQUENCE, spec, workers=1)
        data = CaseTensors.from_cached(prepared, labels)
        del prepared
    order = torch.from_numpy(np.random.default_rng(ctx.rank).permutation(len(data.inputs)))
    total = 0.0
    for start in range(0, len(order), 64):
        total += float(data.inputs[order[start:start + 64]].sum())
    ctx.barrier()
    result = dict(_memory_status(), rank=ctx.rank, world=ctx.world_size, samples=len(data.inputs),
                  maxrss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, checksum=total)
    Path(out_dir, "rank{}.json".format(ctx.rank)).write_text(json.dumps(result))
    ctx.close()


def memory(cohort, cache_dir, mode, ranks, work):
    out = Path(tempfile.mkdtemp(dir=work))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks),
                           "--master-port", str(port), __file__, "_load", str(cohort), str(cache_dir), mode, str(out)],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit("torchrun failed:\n" + done.stdout + done.stderr)
    rows = [json.loads(p.read_text()) for p in sorted(out.glob("rank*.json"))]
    shutil.rmtree(out)
    return rows


def measure(n, work, build_workers=(1, 2), validate_workers=(1, 2), full_size=False):
    root = work / "n{}{}".format(n, "-full" if full_size else "")
    cohort = root / "cohort"
    start = time.perf_counter()
    write_cohort(cohort, n, full_size)
    print("N={}: cohort written in {:.0f} s".format(n, time.perf_counter() - start), file=sys.stderr, flush=True)
    args = ["--cohort", cohort, "--model", MODEL, "--sequence", SEQUENCE, "--quiet"]
    times = {"`lvi preprocess --help` (interpreter + imports, no work)": lvi("preprocess", "--help")}
    for workers in build_workers:
        times["cold build, {} worker{}".format(workers, "s" if workers > 1 else "")] = lvi(
            "preprocess", *args, "--workers", workers, "--cache-dir", root / "cache{}".format(workers))
        print("N={}: cold build with {} workers done".format(n, workers), file=sys.stderr, flush=True)
    cache_dir = root / "cache{}".format(build_workers[-1])
    times["warm start, `lvi preprocess`"] = lvi("preprocess", *args, "--cache-dir", cache_dir)
    warm, nbytes = warm_in_process(cohort, cache_dir)
    times["warm start, in-process (cohort + cache)"] = warm
    for workers in validate_workers:
        times["validate-cohort, {} worker{}".format(workers, "s" if workers > 1 else "")] = lvi(
            "validate-cohort", cohort, "--workers", workers)
    print("N={}: validation done".format(n), file=sys.stderr, flush=True)
    mem = {(mode, ranks): memory(cohort, cache_dir, mode, ranks, work) for mode in ("pack", "old") for ranks in (1, 2)}
    return {"n": n, "times": times, "pack_mib": nbytes / 2 ** 20, "memory": mem}


def report(results):
    lines = ["| step | " + " | ".join("N={} total s | ms/case".format(r["n"]) for r in results) + " |",
             "|---|" + "---:|---:|" * len(results)]
    for step in dict.fromkeys(step for r in results for step in r["times"]):
        cells = ["{:.1f} | {:.2f}".format(r["times"][step], 1000 * r["times"][step] / r["n"]) if step in r["times"]
                 else "- | -" for r in results]
        lines.append("| {} | {} |".format(step, " | ".join(cells)))
    lines += ["", "| memory per process (MiB) | " + " | ".join(
        "N={} (pack {:.0f} MiB) peak RSS | anon | file".format(r["n"], r["pack_mib"]) for r in results) + " |",
        "|---|" + "---:|---:|---:|" * len(results)]
    for key in results[0]["memory"]:
        cells = []
        for r in results:
            rows = r["memory"][key]
            cells.append("{} | {} | {}".format(*("/".join("{:.0f}".format(row[f]) for row in rows)
                                                 for f in ("VmHWM", "RssAnon", "RssFile"))))
        mode, ranks = key
        lines.append("| {} cache, {} gloo rank{} | {} |".format("memory-mapped pack" if mode == "pack" else "old: in-memory",
                                                               ranks, "s" if ranks > 1 else "", " | ".join(cells)))
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_load":
        return load_as_a_rank(*argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--build-workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts timed for the cold build (default 1 2)")
    parser.add_argument("--validate-workers", type=int, nargs="+", default=[1, 2],
                        help="worker counts timed for validate-cohort (default 1 2)")
    parser.add_argument("--workdir", help="where the cohorts go (default: a temporary folder, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the cohorts and caches")
    parser.add_argument("--full-size", action="store_true",
                        help="phantom cases at the clinical matrix instead of the 32x32x8 blob cases")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="lvi_scale_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        results = []
        for n in args.sizes:
            results.append(measure(n, work, args.build_workers, args.validate_workers, args.full_size))
            print(report(results), flush=True)  # the table so far: a long run leaves figures if stopped
        if args.json:
            Path(args.json).write_text(json.dumps(
                [dict(r, memory={"{} {}".format(*k): v for k, v in r["memory"].items()}) for r in results], indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
