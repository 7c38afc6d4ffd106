"""Write phantom cases and whole cohorts to disk (the cohort format of docs/design.md §4).

Case folder::

    t2.nii.gz, t2_mask.nii.gz             FS-T2WI and its VOI, on the T2 grid
    dce_phase2.nii.gz, dce_mask.nii.gz    one DCE temporal position and its VOI, on the DCE grid
    dicom/t2/, dicom/dce/                 the DICOM series (DCE: every temporal position)
    case.json                             label, latent signs, tumour and grid descriptions

Cohort folder: ``cohort.csv`` + ``cohort.json`` + ``cases/<case_id>/``.
"""

import csv
import json
import multiprocessing
import os
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from . import dicom_writer
from .acquisition import PRESETS
from .case import generate_case
from .clinical import COLUMNS as CLINICAL_COLUMNS
from .clinical import MISSING_RATE, best_auc_with_clinical, clinical_key, model_for
from .sign_regions import write_sign_regions
from .signs import PAPER_INPUTS, SEQUENCE_SIGNS, SignModel, best_auc, best_auc_by_input

from LVIPredictorLib.vocabulary import sequences

GENERATOR_VERSION = "1"
OUTPUTS = ("dicom", "nifti")
CSV_COLUMNS = ("case_id", "patient_id", "lvi", "t2_image", "t2_mask", "dce_image", "dce_mask", "age") + CLINICAL_COLUMNS


@dataclass(frozen=True)
class CohortSpec:
    seed: int = 0
    n: int = 40
    size: str = "small"
    outputs: tuple = OUTPUTS
    signal: float = 1.0
    null: bool = False
    second_label: bool = False
    dce_phase: int = sequences.DEFAULT_DCE_PHASE  # temporal position copied to NIfTI; 1 = pre-contrast

    def sign_model(self):
        return SignModel(signal=self.signal, null=self.null)

    def to_dict(self):
        return {"seed": self.seed, "n": self.n, "size": self.size, "outputs": list(self.outputs),
                "signal": self.signal, "null": self.null, "second_label": self.second_label,
                "dce_phase": self.dce_phase}


def _inputs_of(spec):
    """The paper's inputs, plus those of the phase written to NIfTI when it is not phase 2."""
    keys = list(PAPER_INPUTS)
    if spec.dce_phase != sequences.DEFAULT_DCE_PHASE:
        keys += ["dce_phase{}".format(spec.dce_phase), "t2+dce_phase{}".format(spec.dce_phase)]
    return keys


def case_id_for(index):
    return "LVI-{:04d}".format(index + 1)


def _to_image(array, grid):
    image = sitk.GetImageFromArray(array)
    image.SetOrigin(grid.origin)
    image.SetSpacing(grid.spacing)
    image.SetDirection((1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    return image


def _write_nifti(array, grid, path):
    sitk.WriteImage(_to_image(array, grid), path, True)


def write_case(case, folder, spec, case_id, patient_id):
    """Write one generated case into ``folder``; returns its cohort.csv row (paths relative to ``folder``)."""
    os.makedirs(folder, exist_ok=True)
    if not 1 <= spec.dce_phase <= len(case.dce.volumes):
        raise ValueError("dce_phase {} is outside 1..{}".format(spec.dce_phase, len(case.dce.volumes)))
    phase_name = "dce_phase{}.nii.gz".format(spec.dce_phase)
    row = {"case_id": case_id, "patient_id": patient_id, "lvi": case.lvi, "age": case.age,
           **{k: ("" if v is None else v) for k, v in case.clinical.items()},
           "t2_mask": "t2_mask.nii.gz", "dce_mask": "dce_mask.nii.gz"}
    _write_nifti(case.t2.mask, case.t2.grid, os.path.join(folder, "t2_mask.nii.gz"))
    _write_nifti(case.dce.mask, case.dce.grid, os.path.join(folder, "dce_mask.nii.gz"))
    if "dicom" in spec.outputs:
        dicom_writer.write_series(case, "t2", case.t2, os.path.join(folder, "dicom", "t2"), patient_id)
        dicom_writer.write_series(case, "dce", case.dce, os.path.join(folder, "dicom", "dce"), patient_id)
        row["t2_image"], row["dce_image"] = "dicom/t2", "dicom/dce"
    if "nifti" in spec.outputs:  # preferred in the CSV when both exist: one file, one phase, fast to read
        _write_nifti(case.t2.volumes[0], case.t2.grid, os.path.join(folder, "t2.nii.gz"))
        _write_nifti(case.dce.volumes[spec.dce_phase - 1], case.dce.grid, os.path.join(folder, phase_name))
        row["t2_image"], row["dce_image"] = "t2.nii.gz", phase_name
    info = {"case_id": case_id, "patient_id": patient_id, "lvi": case.lvi, "age": case.age,
            "clinical": case.clinical,
            "study_date": case.study_date, "signs": case.signs, "tumour": case.tumour,
            "t2_grid": case.t2.grid.to_dict(), "dce_grid": case.dce.grid.to_dict(),
            "dce_times_min": case.dce.times_min, "dce_phase_nifti": spec.dce_phase,
            "generator": {"version": GENERATOR_VERSION, **spec.to_dict(), "case_index": case.index}}
    with open(os.path.join(folder, "case.json"), "w") as f:
        json.dump(info, f, indent=1, sort_keys=True)
    return row, info


def _make_case(job):
    spec, index, out_dir = job
    case = generate_case(spec.seed, index, spec.sign_model(), PRESETS[spec.size], spec.size, spec.second_label)
    case_id = case_id_for(index)
    folder = os.path.join(out_dir, "cases", case_id)
    row, info = write_case(case, folder, spec, case_id, "P{:05d}".format(index + 1))
    write_sign_regions(case, folder, info)  # cohorts only: the shipped sample stays as it is
    for key in ("t2_image", "t2_mask", "dce_image", "dce_mask"):
        row[key] = "cases/{}/{}".format(case_id, row[key])
    return row, info


def write_cohort(out_dir, spec, workers=1, progress=None):
    """Generate and write a cohort; returns the cohort metadata written to cohort.json.

    Each case has its own random stream, so ``workers`` changes the speed, not the bytes.
    """
    if spec.size not in PRESETS:
        raise ValueError("size must be one of {}".format(", ".join(PRESETS)))
    if not spec.outputs or any(o not in OUTPUTS for o in spec.outputs):
        raise ValueError("outputs must be a non-empty subset of {}".format(", ".join(OUTPUTS)))
    os.makedirs(out_dir, exist_ok=True)
    jobs = [(spec, i, out_dir) for i in range(spec.n)]
    results = []
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for result in pool.imap(_make_case, jobs, chunksize=4):
                results.append(result)
                if progress:
                    progress(len(results), spec.n)
    else:
        for job in jobs:
            results.append(_make_case(job))
            if progress:
                progress(len(results), spec.n)
    with open(os.path.join(out_dir, "cohort.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row, _ in results:
            writer.writerow({k: row[k] for k in CSV_COLUMNS})
    model = spec.sign_model()
    labels = np.array([info["lvi"] for _, info in results])
    meta = {
        "description": "LVIPredictor synthetic breast-MRI phantom cohort (not patient data)",
        "generator": {"version": GENERATOR_VERSION, **spec.to_dict()},
        "sign_model": model.to_dict(),
        "signs_visible": {k: list(v) for k, v in SEQUENCE_SIGNS.items()},
        "best_auc": best_auc(model),
        "best_auc_note": "AUC of the true posterior P(LVI | latent signs) over 200000 Monte-Carlo draws of the "
                         "generative model; an upper bound for any model reading the images",
        "best_auc_by_input": dict(best_auc_by_input(model, _inputs_of(spec)), **{
            clinical_key(key): best_auc_with_clinical(model, model_for(model), key)
            for key in [None] + _inputs_of(spec)}),
        "best_auc_by_input_note": "the same bound given only what each model input renders: t2; dce_phaseK = one "
                                  "DCE temporal position (kep confounded with the per-case enhancement amplitude); "
                                  "dce_dynamic = several phases or a subtraction (kep readable); '+' = fused; clinical = the "
                                  "clinical columns where recorded (clinical+X: with what input X renders)",
        "clinical_model": model_for(model).to_dict(),
        "clinical_missing_rate": MISSING_RATE,
        "clinical_note": "clinical columns drawn from each case's class and signs (phantom/clinical.py, sources and "
                         "effect sizes in its docstring); tumour_size_mm and peritumoral_edema report the rendered "
                         "size and oedema signs; missing cells are missing completely at random",
        "n_cases": spec.n,
        "n_lvi_positive": int(labels.sum()),
        "cases": [info for _, info in results],
    }
    with open(os.path.join(out_dir, "cohort.json"), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    return meta
