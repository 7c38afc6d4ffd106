#!/usr/bin/env bash
# The GPU run of issue 7: train the paper's six sequence x model combinations for 100 epochs
# on one GPU and print wall time per model, samples/s, the share of time spent producing
# batches / idle, and nvidia-smi utilisation. Budget: <= 8 minutes on one H100/H200.
#
# Needs on the GPU machine: Python 3 with CUDA torch, numpy, scipy and scikit-learn.
# Preferred: carry SimpleITK + pydicom wheels and build the real 457-case cohort there:
#   here:  bash benchmarks/fetch_gpu_wheels.sh        (fills .whl/, ~55 MB; carry ".whl")
#   there: bash benchmarks/gpu_check.sh               (installs .whl/, writes the cohort + cache
#                                                      with all cores, then trains)
# Fallback without wheels: build a smaller cache here and carry it (a cache of fewer cases is
# tiled up to 457, so timings hold but the AUC rests on fewer distinct cases):
#   here:  python benchmarks/gpu_train.py --build-cache benchmarks/.cache/gpu_cohort.npz \
#              --cohort /tmp/lvi-gpu-cohort --cases 96          (carry "benchmarks/.cache")
#
# usage: bash benchmarks/gpu_check.sh [CACHE.npz] [extra gpu_train.py options, e.g. --epochs 1 --device cpu]
# LVI_GPU_CASES (default 457) sets the cohort size built and trained on.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${1:-benchmarks/.cache/gpu_cohort.npz}"
shift || true
PY="${PYTHON:-python3}"
CASES="${LVI_GPU_CASES:-457}"
OUTDIR="${OUT:-benchmarks/.cache}"
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD/LVIPredictor:$PWD/training${PYTHONPATH:+:$PYTHONPATH}"

if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/lvi-site .whl/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/lvi-site"
fi

"$PY" -c 'import sys, torch, numpy; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "numpy", numpy.__version__)'
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
fi

if [ ! -f "$CACHE" ]; then
    if "$PY" -c 'import SimpleITK, pydicom' 2>/dev/null; then
        echo "no cache at $CACHE: building the $CASES-case small phantom cohort and its cache here"
        time "$PY" benchmarks/gpu_train.py --build-cache "$CACHE" --cohort "${LVI_GPU_COHORT:-/tmp/lvi-gpu-cohort}" --cases "$CASES" \
            --workers "$(nproc)"
    else
        echo "no cache at $CACHE and no SimpleITK/pydicom here; build the cache elsewhere (see the top of $0)" >&2
        exit 2
    fi
fi

# Whatever the cohort build took comes out of the 8-minute budget (SECONDS counts from the start).
left=$(( ${LVI_GPU_BUDGET_S:-480} - SECONDS - 5 ))
echo "training budget left: ${left} s"
time timeout "$left" "$PY" benchmarks/gpu_train.py --cache "$CACHE" --cases "$CASES" --epochs 100 \
    --json "$OUTDIR/gpu_train.json" "$@"
