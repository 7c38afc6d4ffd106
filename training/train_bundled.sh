#!/usr/bin/env bash
# Rebuild the bundled demo weights in Resources/Models from scratch, with the project's own
# commands only: a study-sized phantom cohort, then `lvi train` and `lvi export` for the six
# {FS-T2WI, DCE} x {3 models} combinations.
#
#   bash training/train_bundled.sh [WORKDIR]      (WORKDIR holds the cohort and the runs)
#
# CPU budget: the paper's 9:1 holdout split (one model each; metrics on the 46 held-out
# patients, with their wide CIs) and fewer epochs than the paper's 100, so that all six train
# on a 2-core CPU in well under an hour. LVI_SPLIT=cv5 gives the 5-fold out-of-fold headline
# (six fits per model) where there is time or a GPU; LVI_EPOCHS_2D / LVI_EPOCHS_3D override.
# The cards record the exact commands.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo/training/bootstrap_env.sh"
work="${1:-$repo/.cache/bundled}"
epochs_2d="${LVI_EPOCHS_2D:-20}"
epochs_3d="${LVI_EPOCHS_3D:-8}"
split="${LVI_SPLIT:-paper}"
seed="${LVI_SEED:-0}"
cohort="$work/phantom457"
models_dir="$repo/Resources/Models"
mkdir -p "$work" "$models_dir"
if [ ! -f "$cohort/cohort.csv" ]; then
  lvi phantom --out "$cohort" --n 457 --seed 2024 --size small --outputs nifti --workers 2
fi
lvi validate-cohort "$cohort"
for seq in dce t2; do
  for model in resnet10_3d resnet10_2d vanilla_cnn_2d; do
    epochs=$epochs_2d
    [ "$model" = resnet10_3d ] && epochs=$epochs_3d
    run="$work/runs/$seq-$model"
    lvi train --cohort "$cohort" --model "$model" --sequence "$seq" --split "$split" --epochs "$epochs" \
      --seed "$seed" --device cpu --out "$run"
    lvi export "$run" --out "$models_dir/$seq-$model" --model-id "demo-$seq-$model" --overwrite \
      --reference-case "$repo/Resources/SampleData/LVI-Sample-001"
  done
done
python -c "from LVIPredictorLib import weights; print(weights.write_catalog('$models_dir'))"
