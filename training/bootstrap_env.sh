#!/usr/bin/env bash
# Make (or reuse) the project's virtual environment and install LVIPredictor into it.
# Sourced by Testing/run_tests.sh and training/run_demo.sh so both work on a fresh machine
# that has only python3 (>= 3.9, 3.11 tested) and pip.
#
# torch is pinned and installed first: an unpinned torch pulls a multi-GB CUDA build, and
# 2.13.0 (CPU) is what the project is tested with. Set LVI_TORCH_SPEC to choose another.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LVI_VENV:-$repo/.venv}"
extras="${LVI_EXTRAS:-test}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "[lvi] creating virtual environment $venv" >&2
  "$python" -m venv "$venv"
fi
# Reinstall only when the dependency list changed, so repeated runs start in seconds.
stamp="$venv/.lvi-installed-$(cat "$repo/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)-$extras"
if [ ! -f "$stamp" ]; then
  echo "[lvi] installing dependencies into $venv (first run only)" >&2
  # pip's and setuptools' chatter goes to a log, shown only if the install fails.
  log="$venv/lvi-install.log"
  if ! { "$venv/bin/python" -m pip install --upgrade pip &&
         "$venv/bin/python" -m pip install "${LVI_TORCH_SPEC:-torch==2.13.0}" &&
         "$venv/bin/python" -m pip install -e "$repo[$extras]"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "[lvi] installing failed; full log: $log" >&2
    exit 1
  fi
  rm -f "$venv"/.lvi-installed-*
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
