#!/usr/bin/env bash
# Rebuild the bundled demo weights in Resources/Models from scratch, with the project's own
# commands only: a study-sized phantom cohort, then `lvi train` and `lvi export` for the six
# {FS-T2WI, DCE} x {3 models} combinations of the paper's table, plus one fused FS-T2WI + DCE
# model (VanillaCNN 2D, two input channels).
#
#   bash training/train_bundled.sh [WORKDIR]      (WORKDIR holds the cohort and the runs)
#
# CPU budget: 5-fold CV by patient (out-of-fold metrics for all 457 cases, then a final model
# on all of them — six fits per model) with fewer epochs than the paper's 100 — 15 for the 2D
# models, 4 for the 3D model — so that all seven train on a 2-core CPU in about 70 minutes.
# LVI_SPLIT=paper gives the study's 9:1 holdout instead; LVI_EPOCHS_2D / LVI_EPOCHS_3D override.
# The cards record the exact commands.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/training/bootstrap_env.sh"
work="${1:-$repo/.cache/bundled}"
epochs_2d="${LVI_EPOCHS_2D:-15}"
epochs_3d="${LVI_EPOCHS_3D:-4}"
split="${LVI_SPLIT:-cv5}"
seed="${LVI_SEED:-0}"
cohort="$work/phantom457"
models_dir="$repo/Resources/Models"
mkdir -p "$work" "$models_dir"
if [ ! -f "$cohort/cohort.csv" ]; then
  lvi phantom --out "$cohort" --n 457 --seed 2024 --size small --outputs nifti --workers 2
fi
lvi validate-cohort "$cohort"
combos="dce:resnet10_3d dce:resnet10_2d dce:vanilla_cnn_2d t2:resnet10_3d t2:resnet10_2d t2:vanilla_cnn_2d"
combos="$combos t2+dce:vanilla_cnn_2d"
for combo in $combos; do
  seq="${combo%%:*}"
  model="${combo#*:}"
  epochs=$epochs_2d
  [ "$model" = resnet10_3d ] && epochs=$epochs_3d
  run="$work/runs/$seq-$model"
  lvi train --cohort "$cohort" --model "$model" --sequence "$seq" --split "$split" --epochs "$epochs" \
    --seed "$seed" --device cpu --out "$run"
  lvi export "$run" --out "$models_dir/$seq-$model" --model-id "demo-$seq-$model" --overwrite \
    --reference-case "$repo/Resources/SampleData/LVI-Sample-001"
done
python -c "from LVIPredictorLib import weights; print(weights.write_catalog('$models_dir'))"
