"""Phantom cohort generation and cache building: a study-sized `small` cohort on 2 cores, one `full` case.

Prints figures and writes JSON; never a timed test. The small cohort is the study's
size (457 cases) written with both outputs (DICOM + NIfTI) by 2 worker processes;
the full case is one clinical-matrix case (T2 448x448x40, DCE 448x448x96 x 4 phases)
generated and written in this process. Then the training cache is built for that cohort
(both sequences, the 2D and the 3D preprocessing spec) with 2 workers, cold, then warm.

    python benchmarks/bench_cohort.py [--n 457] [--workers 2] [--keep DIR] [--json out.json]
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from LVIPredictorLib.preprocessing import default_spec
from lvi_training.cache import PreparedCache
from lvi_training.cohort import load_cohort
from lvi_training.phantom.acquisition import PRESETS
from lvi_training.phantom.case import generate_case
from lvi_training.phantom.cohort import CohortSpec, write_case, write_cohort


def disk_bytes(folder):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)


def count_files(folder):
    return sum(len(files) for _, _, files in os.walk(folder))


def bench_small_cohort(root, n, workers):
    out = os.path.join(root, "small")
    start = time.perf_counter()
    meta = write_cohort(out, CohortSpec(seed=0, n=n, size="small"), workers=workers)
    seconds = time.perf_counter() - start
    cases = os.path.join(out, "cases")
    nifti_only = sum(disk_bytes(os.path.join(cases, c)) - disk_bytes(os.path.join(cases, c, "dicom"))
                     for c in os.listdir(cases))
    return {"n_cases": n, "workers": workers, "seconds": round(seconds, 1),
            "cases_per_second": round(n / seconds, 2), "best_auc": meta["best_auc"],
            "n_lvi_positive": meta["n_lvi_positive"],
            "disk_mb_per_case": round(disk_bytes(cases) / n / 1e6, 2),
            "disk_mb_per_case_nifti_only": round(nifti_only / n / 1e6, 2),
            "files_per_case": round(count_files(cases) / n, 1)}


def bench_cache(root, workers):
    """Cold and warm cache build for the small cohort: every case, both sequences, 2D and 3D specs."""
    cohort = load_cohort(os.path.join(root, "small"))
    store = PreparedCache(os.path.join(root, "cache"))
    rows = []
    for sequence in ("t2", "dce"):
        for model in ("resnet10_2d", "resnet10_3d"):
            timings = []
            for _ in ("cold", "warm"):
                start = time.perf_counter()
                _, built = store.prepare(cohort.cases, sequence, default_spec(model), workers=workers)
                timings.append((time.perf_counter() - start, built))
            n = len(cohort.cases)
            rows.append({"sequence": sequence, "spec": model, "cases": n, "cold_seconds": round(timings[0][0], 1),
                         "cold_cases_per_second": round(n / timings[0][0], 1), "built": timings[0][1],
                         "warm_seconds": round(timings[1][0], 2), "rebuilt_when_warm": timings[1][1]})
    return {"workers": workers, "rows": rows, "cache_mb": round(disk_bytes(os.path.join(root, "cache")) / 1e6, 1)}


def bench_full_case(root):
    spec = CohortSpec(seed=0, n=1, size="full")
    start = time.perf_counter()
    case = generate_case(0, 0, spec.sign_model(), PRESETS["full"], "full")
    generated = time.perf_counter()
    folder = os.path.join(root, "full", "LVI-0001")
    write_case(case, folder, spec, "LVI-0001", "P00001")
    written = time.perf_counter()
    return {"generate_seconds": round(generated - start, 2), "write_seconds": round(written - generated, 2),
            "total_seconds": round(written - start, 2), "disk_mb": round(disk_bytes(folder) / 1e6, 1),
            "t2_matrix": list(PRESETS["full"].t2_size), "dce_matrix": list(PRESETS["full"].dce_size),
            "dce_phases": PRESETS["full"].n_post_contrast + 1}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=457, help="small-cohort size (default: the study's 457)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", default=None, help="write here and keep the output (default: a temp dir, removed)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="bench_cohort_")
    try:
        full = bench_full_case(root)
        print("full case: generate {generate_seconds} s + write {write_seconds} s = {total_seconds} s, "
              "{disk_mb} MB (T2 {t2_matrix}, DCE {dce_matrix} x {dce_phases} phases)".format(**full), flush=True)
        small = bench_small_cohort(root, args.n, args.workers)
        print("small cohort: {n_cases} cases in {seconds} s on {workers} workers ({cases_per_second} cases/s); "
              "{disk_mb_per_case} MB per case ({disk_mb_per_case_nifti_only} MB of it NIfTI + masks, "
              "{files_per_case} files)".format(**small))
        print("best AUC (both/T2/DCE): {both}/{t2}/{dce}".format(**small["best_auc"]), flush=True)
        cache = bench_cache(root, args.workers)
        for row in cache["rows"]:
            print("cache {sequence:<3} {spec:<12}: cold {cold_seconds} s ({cold_cases_per_second} cases/s, {built} "
                  "built), warm {warm_seconds} s ({rebuilt_when_warm} rebuilt)".format(**row))
        print("cache on disk: {} MB".format(cache["cache_mb"]))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    results = {"benchmark": "phantom cohort generation", "cpu_count": os.cpu_count(),
               "python": platform.python_version(), "full_case": full, "small_cohort": small, "cache": cache}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
