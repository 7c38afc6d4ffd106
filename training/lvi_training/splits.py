"""Patient-level splits: the paper's 9:1 holdout and stratified group 5-fold CV.

Every split is made over PATIENTS (all cases of a patient fall on the same side) and
stratified by the LVI label, and is a pure function of (labels, patients, seed), so a
run can be repeated and a resumed run sees the same folds.
"""

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from LVIPredictorLib.errors import InputError

SPLITS = ("paper", "cv5")
PAPER_HOLDOUT_FRACTION = 0.1
CV_FOLDS = 5

# Fewer patients per class than this cannot give every held-out set at least one
# patient of each class, and the held-out AUC would be undefined.
MIN_PATIENTS_PER_CLASS = {"paper": int(round(1 / PAPER_HOLDOUT_FRACTION)), "cv5": CV_FOLDS}


@dataclass
class Fold:
    index: int
    train: np.ndarray  # case indices
    test: np.ndarray

    def to_dict(self):
        return {"index": self.index, "train": self.train.tolist(), "test": self.test.tolist()}


def make_splits(split, labels, patients, seed, source="cohort"):
    # type: (str, Sequence[int], Sequence[str], int, str) -> List[Fold]
    """Folds for ``split`` ('paper' = one 9:1 holdout, 'cv5' = five folds) by patient."""
    labels = np.asarray(labels, dtype=int)
    patients = np.asarray(patients).astype(str)
    if split not in SPLITS:
        raise ValueError("unknown split {!r}; choose one of {}".format(split, ", ".join(SPLITS)))
    check_class_sizes(split, labels, patients, source)
    if split == "paper":
        return [_paper_holdout(labels, patients, seed)]
    return _stratified_group_kfold(labels, patients, seed, CV_FOLDS)


def check_class_sizes(split, labels, patients, source="cohort"):
    """Clear error when a class has too few patients for the split to mean anything."""
    minimum = MIN_PATIENTS_PER_CLASS[split]
    per_class = {}
    for patient, label in zip(patients, labels):
        per_class.setdefault(int(label), set()).add(patient)
    counts = {lab: len(per_class.get(lab, ())) for lab in (0, 1)}
    short = [lab for lab in (0, 1) if counts[lab] < minimum]
    if short:
        raise InputError(source, "too few patients for the '{}' split: {} LVI+ and {} LVI- patients, at least {} of "
                         "each class are needed".format(split, counts[1], counts[0], minimum))


def _patient_labels(labels, patients):
    unique = sorted(set(patients))
    first = {}
    for p, lab in zip(patients, labels):
        first.setdefault(p, lab)
    return np.array(unique), np.array([first[p] for p in unique])


def _paper_holdout(labels, patients, seed):
    unique, patient_labels = _patient_labels(labels, patients)
    train_p, test_p = train_test_split(unique, test_size=PAPER_HOLDOUT_FRACTION, stratify=patient_labels,
                                       random_state=seed)
    test_set = set(test_p.tolist())
    is_test = np.array([p in test_set for p in patients])
    return Fold(0, np.flatnonzero(~is_test), np.flatnonzero(is_test))


def _stratified_group_kfold(labels, patients, seed, n_splits):
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    index = np.arange(len(labels))
    return [Fold(i, np.sort(tr), np.sort(te))
            for i, (tr, te) in enumerate(splitter.split(index, labels, groups=patients))]


def all_cases_fold(n_cases):
    """The 'final' fit on every case (cv5 export): nothing held out."""
    return Fold(-1, np.arange(n_cases), np.arange(0))


def inner_validation(train_cases, labels, patients, fraction, seed):
    """Split a training fold's cases into (fit, validation) by patient, stratified, for model selection.

    Only the training fold is split, so choosing an epoch on the validation part never sees the
    held-out fold. ``fraction`` 0.2 takes one fifth of the training patients.
    """
    train_cases = np.asarray(train_cases, dtype=np.int64)
    y = np.asarray(labels, dtype=int)[train_cases]
    groups = np.asarray(patients).astype(str)[train_cases]
    n_splits = max(2, int(round(1.0 / fraction)))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=int(seed % (1 << 31)))
    fit, val = next(splitter.split(train_cases, y, groups=groups))
    return np.sort(train_cases[fit]), np.sort(train_cases[val])
