#!/usr/bin/env bash
# Run here (registry access) before the GPU run: put SimpleITK and pydicom wheels for the GPU
# machine's Python (3.12, x86_64 manylinux) into .whl/ (git-ignored, ~55 MB, inside the device
# tool's 64 MiB carry limit). gpu_check.sh installs them there and then builds the real 457-case
# phantom cohort and its cache on the GPU machine's cores, instead of a tiled smaller cache.
#
#   bash benchmarks/fetch_gpu_wheels.sh [PYTHON_VERSION]   (default 3.12), then carry .whl
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-3.12}"
rm -rf .whl
python3 -m pip download --quiet --no-deps --only-binary :all: --python-version "$version" \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --dest .whl \
    "SimpleITK>=2.3" "pydicom>=2.4"
ls -l .whl
du -sh .whl
