#!/usr/bin/env bash
# The whole test suite, from a fresh clone: makes .venv, installs, runs pytest.
# Extra arguments go to pytest (e.g. `bash Testing/run_tests.sh -k preprocessing`).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/training/bootstrap_env.sh"
cd "$repo"
exec python -m pytest Testing/Python --durations=15 "$@"
