#!/usr/bin/env bash
# Make (or reuse) the project's virtual environment and install LVIPredictor into it.
# Sourced by Testing/run_tests.sh and training/run_demo.sh so both work on a fresh machine
# that has only python3 (>= 3.9, 3.11 tested) and pip.
#
# torch is pinned and installed first: 2.13.0 is what the project is tested with, and an
# unpinned torch could resolve to another build. Set LVI_TORCH_SPEC to choose another version.
# On Linux, torch from PyPI is the CUDA build, which pulls NVIDIA's libraries (several GB);
# on a machine without an NVIDIA GPU set LVI_TORCH_INDEX=cpu (PyTorch's CPU wheel index,
# https://download.pytorch.org/whl/cpu, ~190 MB) or to any index URL. It applies to the torch
# install only; the default (unset) asks PyPI like every other package.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LVI_VENV:-$repo/.venv}"
extras="${LVI_EXTRAS:-test}"
python="${PYTHON:-python3}"
torch_spec="${LVI_TORCH_SPEC:-torch==2.13.0}"
# An empty array is expanded as ${a[@]+"${a[@]}"}: bash before 4.4 (macOS) calls "${a[@]}" unbound under set -u.
torch_index=()
case "${LVI_TORCH_INDEX:-}" in
  "") ;;
  cpu) torch_index=(--index-url https://download.pytorch.org/whl/cpu) ;;
  *://*) torch_index=(--index-url "$LVI_TORCH_INDEX") ;;
  *) echo "[lvi] LVI_TORCH_INDEX must be 'cpu' or an index URL, not '$LVI_TORCH_INDEX'" >&2; exit 1 ;;
esac
if [ ! -x "$venv/bin/python" ]; then
  echo "[lvi] creating virtual environment $venv" >&2
  "$python" -m venv "$venv"
fi
# Reinstall only when the dependency list or the torch choice changed, so repeated runs start in seconds.
stamp="$venv/.lvi-installed-$(cat "$repo/pyproject.toml" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-16)-$extras"
stamp="$stamp-$(printf '%s %s' "$torch_spec" "${LVI_TORCH_INDEX:-}" | sha256sum | cut -c1-8)"
if [ ! -f "$stamp" ]; then
  # pip's chatter goes to a log, shown only if a step fails; each step says what it does, since
  # the first run downloads several hundred MB and would otherwise sit silent for minutes.
  log="$venv/lvi-install.log"
  : >"$log"
  echo "[lvi] installing into $venv (first run, or the dependencies changed; pip's output: $log)" >&2
  step() {
    local what="$1"; shift
    echo "[lvi] $what" >&2
    if ! "$@" >>"$log" 2>&1; then
      tail -n 40 "$log" >&2
      echo "[lvi] installing failed at: $what; full log: $log" >&2
      exit 1
    fi
  }
  if [ ${#torch_index[@]} -gt 0 ]; then
    torch_note="from ${torch_index[1]}"
  else
    torch_note="pip's default index; from PyPI on Linux that is the CUDA build, several GB:"
    torch_note="$torch_note set LVI_TORCH_INDEX=cpu for the ~190 MB CPU wheel"
  fi
  step "1/3 upgrading pip" "$venv/bin/python" -m pip install --upgrade pip
  step "2/3 installing $torch_spec ($torch_note)" \
    "$venv/bin/python" -m pip install ${torch_index[@]+"${torch_index[@]}"} "$torch_spec"
  step "3/3 installing LVIPredictor and its dependencies (.[${extras}])" \
    "$venv/bin/python" -m pip install -e "$repo[$extras]"
  unset -f step
  rm -f "$venv"/.lvi-installed-*
  touch "$stamp"
  echo "[lvi] installed; later runs reuse $venv" >&2
fi
export PATH="$venv/bin:$PATH"
