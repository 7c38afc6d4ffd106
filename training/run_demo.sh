#!/usr/bin/env bash
# The main job, from a fresh clone: makes .venv, installs, and predicts LVI on the shipped
# sample case (Resources/SampleData/LVI-Sample-001, a synthetic phantom) with every bundled
# model of each sequence, then the fused FS-T2WI + DCE models, then the clinical + imaging model with
# the case's clinical values. Prints the tables and where the reports (JSON + PNG) went.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LVI_EXTRAS="${LVI_EXTRAS:-test}" source "$repo/training/bootstrap_env.sh"
sample="$repo/Resources/SampleData/LVI-Sample-001"
out="${1:-$repo/lvi-report}"
echo "== FS-T2WI =="
lvi predict --sequence t2 --all --image "$sample/t2.nii.gz" --mask "$sample/t2_mask.nii.gz" --out "$out/t2" \
  --overwrite
echo
echo "== DCE (2nd phase, read from the DICOM series) =="
lvi predict --sequence dce --all --image "$sample/dicom/dce" --dce-phase 2 --mask "$sample/dce_mask.nii.gz" \
  --out "$out/dce" --overwrite
echo
echo "== FS-T2WI + DCE fused (both series, each with its own VOI) =="
lvi predict --sequence t2+dce --all --t2 "$sample/t2.nii.gz" "$sample/t2_mask.nii.gz" \
  --dce "$sample/dicom/dce" "$sample/dce_mask.nii.gz" --out "$out/fused" --overwrite
echo
echo "== DCE + the case's clinical values (clinical + imaging model) =="
lvi predict --dce "$sample/dicom/dce" "$sample/dce_mask.nii.gz" --model demo-dce-clinical_combined \
  --clinical age=52,tumour_size_mm=25,mri_aln=0,peritumoral_edema=1,her2=0,ki67=14 --out "$out/clinical" --overwrite
