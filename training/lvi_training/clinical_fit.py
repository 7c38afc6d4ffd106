"""Clinical models as ordinary run folders: ``clinical_lr`` (the clinical columns alone) and ``combined``
(the clinical columns with an imaging run's out-of-fold score).

Both are L2 logistic regressions (``logistic_fit``: standardised features, C chosen by 5-fold CV by
patient inside the training fold, the intercept-only model among the candidates so that columns
that do not help in the inner CV are not used) on the clinical columns the cohort has, each with a missing
indicator, missing values filled with the training fold's median / most frequent value
(LVIPredictorLib.clinical states the rule; the fill values come from training cases only).

The run folder has the layout of an ``lvi train`` run (config.json, splits.json, fold_K/result.json,
final/result.json), so ``lvi evaluate`` writes the same predictions.csv, metrics.json and plots, and
each fold's threshold is Youden's J on that fold's training predictions, frozen before its held-out
cases are scored.

Leakage (the combined model): the imaging score of EVERY case, training or held-out, is the imaging
run's out-of-fold probability, the score of a model that never saw that case. An imaging run is
refused unless it is a cv5 run whose predictions.csv holds, for every case, exactly the held-out
probability its fold's result.json froze; training-set (in-fold) scores put in its place are caught
and named. The combined model uses the imaging run's folds, so a held-out case's imaging score comes
from the fold model that held it out too.
"""

import csv
import hashlib
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from LVIPredictorLib import clinical
from LVIPredictorLib.errors import InputError

from . import atomic, evaluate, metrics, splits
from .cohort import load_cohort, validate_cohort
from .logistic_fit import C_GRID, INNER_FOLDS, fit_l2_logistic
from .run_record import load_run_config

CLINICAL_LR = "clinical_lr"
COMBINED = "combined"
MODELS = (CLINICAL_LR, COMBINED)
CLINICAL_SEQUENCE = "clinical"
FINAL_FOLD = "final"
_CSV_DECIMALS = 1e-6  # predictions.csv stores six decimals


def columns_of(cohort):
    """The clinical columns of a cohort, in the contract's order (refused when it has none)."""
    header = set()
    for case in cohort.cases:
        header.update(case.clinical)
    names = clinical.cohort_columns(header)
    if not names:
        raise InputError(str(cohort.csv_path), "has no clinical column; a clinical model needs some of {}".format(
            ", ".join(clinical.NAMES)))
    return names


def describe_missing(cohort):
    """Lines for ``lvi validate-cohort``: missing cells per clinical column, and the rule that handles them."""
    names = clinical.cohort_columns({k for case in cohort.cases for k in case.clinical})
    if not names:
        return ["clinical columns: none (optional: {})".format(", ".join(clinical.NAMES))]
    counts = ["{} {} missing".format(n, sum(1 for c in cohort.cases if not c.clinical.get(n, "").strip()))
              for n in names]
    return ["clinical columns: {} of {} rows: {}".format(", ".join(names), len(cohort.cases), "; ".join(counts)),
            "missing clinical values: " + clinical.MISSING_RULE]


# --- the imaging run's out-of-fold scores, checked ---------------------------------------------


def verified_out_of_fold(run_dir):
    """{case_id: (label, out-of-fold probability, fold index)} of an imaging run, refused unless honest."""
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    if config.get("model") in MODELS:
        raise InputError(str(run_dir), "is a clinical model's run; --imaging-run needs an imaging model's run")
    if config.get("split") != "cv5":
        raise InputError(str(run_dir), "is a {} run: its predictions are not out-of-fold for every case; a "
                                       "combined model needs a cv5 imaging run".format(config.get("split")))
    path = run_dir / "predictions.csv"
    if not path.is_file():
        raise InputError(str(run_dir), "has no predictions.csv; run `lvi evaluate {}` first".format(run_dir))
    results = evaluate.fold_results(run_dir)
    held_out, in_fold = {}, {}
    for result in results:
        index = int(str(result["fold"]).split("_")[-1])
        for row in result["test"]:
            held_out[row["case_id"]] = (int(row["lvi"]), float(row["probability"]), index)
        for row in result["train"]:
            in_fold.setdefault(row["case_id"], []).append(float(row["probability"]))
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for number, row in enumerate(rows, start=2):
        case_id = row.get("case_id")
        if case_id in out:
            raise InputError(str(path), "line {}: case {} appears twice; out-of-fold predictions hold one held-out "
                                        "score per case".format(number, case_id))
        if case_id not in held_out:
            raise InputError(str(path), "line {}: case {} is held out by no fold of the run".format(number, case_id))
        label, probability, index = held_out[case_id]
        given = float(row["probability"])
        if abs(given - probability) > _CSV_DECIMALS:
            seen_in_fold = any(abs(given - p) <= _CSV_DECIMALS for p in in_fold.get(case_id, ()))
            raise InputError(str(path), "line {}: case {} has probability {} but its fold's held-out score is {:.6f}{}; "
                                        "a combined model needs out-of-fold scores".format(
                                            number, case_id, row["probability"], probability,
                                            " (the value is an in-fold, training-set score)" if seen_in_fold else ""))
        if str(row.get("fold")) != "fold_{}".format(index):
            raise InputError(str(path), "line {}: case {} is marked {} but is held out by fold_{}".format(
                number, case_id, row.get("fold"), index))
        out[case_id] = (label, probability, index)
    missing = sorted(set(held_out) - set(out))
    if missing:
        raise InputError(str(path), "lacks the out-of-fold score of {} case(s), e.g. {}".format(len(missing), missing[0]))
    return out, config


# --- fitting ---------------------------------------------------------------------------------


def _design(values, fill, names, imaging=None):
    return np.array([clinical.feature_row(v, fill, names, None if imaging is None else imaging[i])[0]
                     for i, v in enumerate(values)], dtype=np.float64)


def fit(values, labels, patients, names, seed, imaging=None):
    """A clinical (or combined, with ``imaging`` probabilities) model fitted on these training cases."""
    from threadpoolctl import threadpool_limits

    fill = clinical.fill_values(clinical.column_values(values, names), names)
    x = _design(values, fill, names, imaging)
    # A few dozen cases x a dozen features: BLAS threads only fight each other (measured 10x slower
    # with the default threads than with one on a busy 2-core machine).
    with threadpool_limits(limits=1):
        fitted = fit_l2_logistic(x, labels, patients, seed, null_candidate=True)
    weights, bias = fitted.raw_weights()
    return {"names": list(names), "fill": dict(fill), "coefficients": [float(w) for w in weights],
            "intercept": float(bias), "with_imaging": imaging is not None, "C": fitted.C,
            "inner_cv_log_loss": fitted.inner_cv_log_loss,
            "standardised_coefficients": dict(zip(clinical.feature_names(names, imaging is not None),
                                                  [float(c) for c in fitted.coef]))}


def probabilities(model, values, imaging=None):
    x = _design(values, model["fill"], model["names"], imaging)
    z = x @ np.asarray(model["coefficients"]) + model["intercept"]
    return 1.0 / (1.0 + np.exp(-z))


def as_card_section(model):
    return clinical.card_section(model["names"], model["fill"], model["coefficients"], model["intercept"],
                                 model["with_imaging"])


# --- the run ---------------------------------------------------------------------------------


def _prepare(run_dir, identity, overwrite):
    if run_dir.exists() and any(run_dir.iterdir()):
        previous = (atomic.load_json(run_dir / "config.json").get("identity")
                    if (run_dir / "config.json").is_file() else None)
        if previous != identity and not overwrite:
            raise InputError(str(run_dir), "holds something else (another run or files); choose another --out or "
                                           "pass --overwrite")
        shutil.rmtree(str(run_dir))  # a clinical fit takes seconds: redo it rather than resume
    run_dir.mkdir(parents=True, exist_ok=True)


def _canonical_command(model, cohort, split, seed, out, imaging_run):
    parts = ["lvi", "train", "--cohort", str(cohort), "--model", model]
    if imaging_run is not None:
        parts += ["--imaging-run", str(imaging_run)]
    return " ".join(parts + ["--split", split, "--seed", str(seed), "--out", str(out)])


def train_clinical_run(cohort_path, model, out, split="cv5", seed=0, imaging_run=None, overwrite=False,
                       final_model=True):
    """Fit and evaluate a clinical_lr or combined model into run folder ``out``; returns its metrics."""
    if model not in MODELS:
        raise InputError(None, "unknown clinical model {!r} ({})".format(model, ", ".join(MODELS)))
    if (model == COMBINED) != (imaging_run is not None):
        raise InputError(None, "--imaging-run RUN is needed by --model combined, and only by it")
    cohort = load_cohort(cohort_path)
    validate_cohort(cohort, read_images=False).raise_if_problems()
    names = columns_of(cohort)
    imaging_config, oof = None, None
    if model == COMBINED:
        oof, imaging_config = verified_out_of_fold(imaging_run)
        by_id = {c.case_id: c for c in cohort.cases}
        absent = sorted(set(oof) - set(by_id))
        if absent:
            raise InputError(str(cohort.csv_path), "lacks {} case(s) of the imaging run {}, e.g. {}".format(
                len(absent), imaging_run, absent[0]))
        cases = [by_id[c] for c in sorted(oof)]
        wrong = [c.case_id for c in cases if c.lvi != oof[c.case_id][0]]
        if wrong:
            raise InputError(str(cohort.csv_path), "gives other labels than the imaging run for {} case(s), e.g. "
                                                   "{}".format(len(wrong), wrong[0]))
        if split != "cv5":
            raise InputError(None, "a combined model follows its imaging run's 5 folds: use --split cv5")
        n_folds = 1 + max(v[2] for v in oof.values())
        folds = [splits.Fold(k, np.array([i for i, c in enumerate(cases) if oof[c.case_id][2] != k]),
                             np.array([i for i, c in enumerate(cases) if oof[c.case_id][2] == k]))
                 for k in range(n_folds)]
        imaging = np.array([oof[c.case_id][1] for c in cases])
    else:
        cases = [c for c in cohort.cases if c.lvi is not None]
        folds = splits.make_splits(split, [c.lvi for c in cases], [c.patient_id for c in cases], seed,
                                   str(cohort.csv_path))
        imaging = None
    values = [clinical.parse_row(c.clinical, names, str(cohort.csv_path)) for c in cases]
    labels = np.array([c.lvi for c in cases], dtype=int)
    patients = np.array([c.patient_id for c in cases])
    run_dir = Path(out)
    identity = {"cohort_csv_sha256": hashlib.sha256(Path(cohort.csv_path).read_bytes()).hexdigest(),
                "model": model, "split": split, "seed": seed, "columns": names,
                "imaging_run": _imaging_identity(imaging_run, imaging_config)}
    _prepare(run_dir, identity, overwrite)
    sequence = CLINICAL_SEQUENCE if model == CLINICAL_LR else "clinical+" + imaging_config["sequence"]
    atomic.save_json(_config(identity, cohort, cases, model, sequence, split, seed, names, imaging_run,
                             imaging_config, _canonical_command(model, cohort_path, split, seed, out, imaging_run)),
                     run_dir / "config.json")
    atomic.save_json({"split": split, "seed": seed, "case_ids": [c.case_id for c in cases],
                      "folds": [f.to_dict() for f in folds]}, run_dir / "splits.json")
    jobs = [("fold_{}".format(f.index), f) for f in folds]
    if split == "cv5" and final_model:
        jobs.append((FINAL_FOLD, splits.all_cases_fold(len(cases))))
    for tag, fold in jobs:
        _fit_fold(tag, fold, cases, values, labels, patients, names, seed, imaging, run_dir)
    result = evaluate.evaluate_run(run_dir)
    if model == COMBINED:
        _combined_figures(run_dir, folds, values, labels, patients, names, seed, imaging, imaging_config,
                          final_model)
    return result


def _combined_figures(run_dir, folds, values, labels, patients, names, seed, imaging, imaging_config, with_final):
    """nomogram.png (the final model: the one exported) and decision_curve.png (out-of-fold scores of the
    combined model, its imaging run and the clinical columns alone, fitted on the same folds)."""
    from . import clinical_plots

    combined = np.zeros(len(labels))
    clinical_only = np.zeros(len(labels))
    for fold in folds:
        combined[fold.test] = _held_out(run_dir, fold, len(labels))[fold.test]
        alone = fit([values[i] for i in fold.train], labels[fold.train], patients[fold.train], names, seed)
        clinical_only[fold.test] = probabilities(alone, [values[i] for i in fold.test])
    imaging_name = "imaging alone ({} {})".format(imaging_config["model"], imaging_config["sequence"])
    clinical_plots.decision_curve(labels, {"clinical + imaging (combined)": combined, imaging_name: imaging,
                                           "clinical columns alone": clinical_only},
                                  run_dir / "decision_curve.png",
                                  "Decision curve, out-of-fold predictions (n = {}, {} LVI+)".format(
                                      len(labels), int(labels.sum())))
    if with_final:
        clinical_plots.nomogram(final_model(run_dir), run_dir / "nomogram.png",
                                "Nomogram: clinical columns + {} {} probability (final model)".format(
                                    imaging_config["model"], imaging_config["sequence"]))


def _held_out(run_dir, fold, n):
    out = np.zeros(n)
    rows = atomic.load_json(run_dir / "fold_{}".format(fold.index) / "result.json")["test"]
    out[fold.test] = [r["probability"] for r in rows]
    return out


def _fit_fold(tag, fold, cases, values, labels, patients, names, seed, imaging, run_dir):
    train, test = fold.train, fold.test
    pick = (lambda idx: imaging[idx]) if imaging is not None else (lambda idx: None)
    model = fit([values[i] for i in train], labels[train], patients[train], names, seed, pick(train))
    train_p = probabilities(model, [values[i] for i in train], pick(train))
    threshold = metrics.youden_threshold(labels[train], train_p)
    test_p = probabilities(model, [values[i] for i in test], pick(test)) if len(test) else np.zeros(0)
    atomic.save_json({"fold": tag, "threshold": threshold, "threshold_method": "youden_on_training_predictions",
                      "train_auc": metrics.auc(labels[train], train_p), "epochs": 0, "model": model,
                      "train": _rows(cases, train, train_p), "test": _rows(cases, test, test_p)},
                     run_dir / tag / "result.json")


def _rows(cases, indices, probs):
    return [{"case_id": cases[i].case_id, "patient_id": cases[i].patient_id, "lvi": int(cases[i].lvi),
             "probability": float(p), "slice_probabilities": []} for i, p in zip(indices, probs)]


def _imaging_identity(imaging_run, imaging_config):
    if imaging_run is None:
        return None
    predictions = Path(imaging_run) / "predictions.csv"
    return {"model": imaging_config["model"], "sequence": imaging_config["sequence"],
            "predictions_sha256": hashlib.sha256(predictions.read_bytes()).hexdigest()}


def _config(identity, cohort, cases, model, sequence, split, seed, names, imaging_run, imaging_config, command):
    from .run_record import git_commit, library_versions

    return {"identity": identity, "command": command,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "cohort": {"path": str(Path(cohort.root).resolve()), "csv": str(Path(cohort.csv_path).resolve()),
                       "n_cases": len(cases), "recipe": cohort.recipe},
            "model": model, "sequence": sequence, "split": split, "epochs": 0, "seed": seed, "batch_size": None,
            "clinical_columns": names, "missing_rule": clinical.MISSING_RULE,
            "imaging_run": None if imaging_run is None else {
                "path": str(Path(imaging_run).resolve()), "model": imaging_config["model"],
                "sequence": imaging_config["sequence"], "command": imaging_config.get("command"),
                "score": "the run's out-of-fold probability of every case (predictions.csv, checked against each "
                         "fold's frozen result.json)"},
            "optimizer": {"name": "L2 logistic regression (scikit-learn lbfgs)",
                          "regularisation": "C from {} or the intercept-only model, chosen by {}-fold CV on "
                                            "log-loss inside each training fold".format([round(float(c), 4) for c in C_GRID], INNER_FOLDS)},
            "loss": "log-loss", "augment": False, "preprocessing": None, "architecture_config": {"columns": names},
            "library_versions": library_versions(), "git_commit": git_commit()}


def final_model(run_dir):
    path = Path(run_dir) / FINAL_FOLD / "result.json"
    if not path.is_file():
        raise InputError(str(run_dir), "has no final model (trained with --no-final-model); re-run without it")
    return atomic.load_json(path)["model"]

