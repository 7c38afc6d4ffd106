#!/usr/bin/env bash
# The GPU run of issue 7: train the paper's six sequence x model combinations for 100 epochs
# on one GPU and print wall time per model, samples/s, the share of time spent producing
# batches / idle, and nvidia-smi utilisation. Budget: <= 8 minutes on one H100/H200.
#
# Needs on the GPU machine: Python 3 with CUDA torch and numpy (scikit-learn for the AUC).
# It consumes a cohort cache built elsewhere (SimpleITK is not needed there):
#   here:  python benchmarks/gpu_train.py --build-cache benchmarks/.cache/gpu_cohort.npz \
#              --cohort /tmp/lvi-gpu-cohort --cases 96
#   then carry benchmarks/.cache (git-ignored) and run:  bash benchmarks/gpu_check.sh
# A cache of fewer than 457 cases is tiled up to 457 (see gpu_train.py). Without a cache,
# and with SimpleITK + pydicom importable (e.g. wheels carried in .whl/), it builds the full
# 457-case small phantom cohort and its cache on the machine first.
#
# usage: bash benchmarks/gpu_check.sh [CACHE.npz] [extra gpu_train.py options, e.g. --epochs 1 --device cpu]
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${1:-benchmarks/.cache/gpu_cohort.npz}"
shift || true
PY="${PYTHON:-python3}"
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
        echo "no cache at $CACHE: building the 457-case small phantom cohort and its cache here"
        time "$PY" benchmarks/gpu_train.py --build-cache "$CACHE" --cohort /tmp/lvi-gpu-cohort --cases 457 \
            --workers "$(nproc)"
    else
        echo "no cache at $CACHE and no SimpleITK/pydicom here; build the cache elsewhere (see the top of $0)" >&2
        exit 2
    fi
fi

# 470 s leaves the cohort build and start-up inside the 8-minute budget.
time timeout 470 "$PY" benchmarks/gpu_train.py --cache "$CACHE" --cases 457 --epochs 100 \
    --json "$OUTDIR/gpu_train.json" "$@"
