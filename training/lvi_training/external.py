"""A trained model scored on a cohort: external validation of bundled or exported weights.

Every case goes through :class:`LVIPredictorLib.service.CaseService` — the reading,
preprocessing and frozen threshold of a prediction in Slicer or ``lvi predict`` — so the
figures describe exactly what users of the model get. The threshold is the model card's:
choosing one on the test cohort would flatter the result. A case that cannot be scored
stops the evaluation (all such cases are listed): metrics over a silently shrunken cohort
would not be the cohort's.
"""

from pathlib import Path

import numpy as np

from LVIPredictorLib import weights
from LVIPredictorLib.errors import InputError, LVIError
from LVIPredictorLib.service import CaseService, series_from_files
from LVIPredictorLib.vocabulary import kinds, sequences

from . import atomic, metrics
from .cohort import load_cohort, validate_cohort
from .evaluate import RESULT_FILES, write_results
from .run_record import file_sha256

OUTPUTS = RESULT_FILES


def evaluate_model(model, cohort_dir, out_dir, device="auto", dce_phase=None, overwrite=False, progress=None):
    """Score ``model`` (bundled id or card path) on every case of the cohort that has its
    sequence(s); write the run-style outputs to ``out_dir``; return the metrics dict."""
    card = weights.load_card(weights.resolve_card(model))
    cohort = load_cohort(cohort_dir)
    validate_cohort(cohort, read_images=False).raise_if_problems()
    out_dir = Path(out_dir)
    atomic.refuse_to_overwrite(out_dir, OUTPUTS, overwrite)
    sequence = card["sequence"]
    names = sequences.channels(sequence)
    cases = cohort.with_sequence(sequence)
    left_out = len(cohort.cases) - len(cases)
    labels = [c.lvi for c in cases]
    if len(set(labels)) < 2:
        raise InputError(str(cohort.csv_path), "{} case(s) have {} image+mask, but an AUC needs LVI+ and LVI- "
                                               "cases among them".format(len(cases), sequences.LABELS[sequence]))
    phase = int(dce_phase or sequences.card_phase(card))
    service = CaseService(device=device)
    rows, errors = [], []
    for index, case in enumerate(cases):
        if progress is not None:
            progress(index, len(cases))
        failed = []
        done = predict_cohort_case(service, case, [card], dce_phase, failed)
        if failed:
            errors.append("case {}: {}".format(case.case_id, failed[0][2]))
            continue
        prediction = done[0][1]
        rows.append({"case_id": case.case_id, "patient_id": case.patient_id, "lvi": int(case.lvi),
                     "fold": "external", "probability": prediction.probability, "threshold": prediction.threshold,
                     "slice_probabilities": prediction.slice_probabilities})
    if errors:
        raise InputError(str(cohort.csv_path), "{} case(s) could not be scored, so no metrics were written:\n  {}".format(
            len(errors), "\n  ".join(errors)))

    warnings = []
    if left_out:
        warnings.append("{} of {} cases have no {} image+mask and were left out".format(
            left_out, len(cohort.cases), sequences.LABELS[sequence]))
    trained_on = ((card.get("training") or {}).get("cohort") or {}).get("csv_sha256")
    if trained_on and trained_on == file_sha256(cohort.csv_path):
        warnings.append("this is the cohort the model was trained on: the figures are training-set figures, "
                        "not an external validation")
    out = {"model_id": card["model_id"], "model_card": card["_card_path"], "weights_sha256": card["weights_sha256"],
           "architecture": card["architecture"], "sequence": sequence, "dce_phase": phase if "dce" in names else None,
           "cohort": str(Path(cohort.root).resolve()), "cohort_csv_sha256": file_sha256(cohort.csv_path),
           "scope": "external cohort, {} cases".format(len(rows)), "device": service.predictor(card).device,
           "threshold": float(card["threshold"]),
           "threshold_rule": "the model card's threshold ({}), frozen".format(card.get("threshold_method", "?")),
           "warnings": warnings}
    y = np.array([r["lvi"] for r in rows], dtype=int)
    p = np.array([r["probability"] for r in rows], dtype=float)
    out.update(metrics.summarize(y, p, float(card["threshold"])))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_results(rows, out, out_dir, "{} on {} ({} cases)".format(card["model_id"], Path(cohort.root).name,
                                                                  len(rows)))
    return out


def predict_cohort_case(service, case, cards, dce_phase, errors, label=None):
    """[(card, Prediction)] for every card whose series ``case`` has (a combined card with the case's
    clinical columns); each series is read once, and a case/model pair that fails goes to ``errors``
    as [case id, model id, message]. ``label`` keeps one label of a multi-label mask (``lvi predict
    --label``)."""
    needed = sorted({n for card in cards if case.has(card["sequence"]) for n in sequences.channels(card["sequence"])})
    inputs, failed = {}, {}
    for name in needed:
        try:
            inputs[name] = series_from_files(name, case.images[name], case.masks[name], dce_phase=dce_phase,
                                             label=label)
        except LVIError as exc:
            failed[name] = exc
    done = []
    for card in cards:
        if not case.has(card["sequence"]):
            continue
        names = sequences.channels(card["sequence"])
        problem = next((failed[n] for n in names if n in failed), None)
        if problem is None:
            try:
                # A combined card reads the case's clinical columns (cohort.csv); a case without any is refused.
                values = case.clinical if kinds.needs_clinical(card) else None
                done.append((card, service.predict({n: inputs[n] for n in names}, [card],
                                                   clinical=values).predictions[0]))
                continue
            except LVIError as exc:
                problem = exc
        errors.append([case.case_id, card["model_id"], str(problem)])
    return done



def headline(m):
    return ("{model_id} on {scope}: AUC {auc:.3f} (DeLong {d[0]:.3f}-{d[1]:.3f}), accuracy {accuracy:.3f}, "
            "sensitivity {sensitivity:.3f}, specificity {specificity:.3f} at the card's threshold {threshold:.3f}, "
            "Brier {brier:.3f}, calibration slope {calibration_slope:.2f} intercept {calibration_intercept:.2f}"
            ).format(d=m["auc_ci_delong"], **m)
