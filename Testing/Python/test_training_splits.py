"""Patient-level splits: no leakage, stratified, seeded, clear error on tiny cohorts."""

import numpy as np
import pytest

from LVIPredictorLib.errors import InputError
from lvi_training import splits


def _cohort(n_patients=60, seed=0):
    """Patients with 1-3 cases each (same label per patient), ~1/3 positive."""
    rng = np.random.default_rng(seed)
    labels, patients = [], []
    for p in range(n_patients):
        label = int(rng.random() < 0.33)
        for _ in range(rng.integers(1, 4)):
            labels.append(label)
            patients.append("P{}".format(p))
    return np.array(labels), np.array(patients)


@pytest.mark.parametrize("split", splits.SPLITS)
def test_no_patient_is_on_both_sides_of_any_split(split):
    labels, patients = _cohort()
    for fold in splits.make_splits(split, labels, patients, seed=3):
        assert not set(patients[fold.train]) & set(patients[fold.test])
        assert len(fold.train) + len(fold.test) == len(labels)


def test_cv5_holds_out_every_case_exactly_once():
    labels, patients = _cohort()
    folds = splits.make_splits("cv5", labels, patients, seed=0)
    held_out = np.concatenate([f.test for f in folds])
    assert len(folds) == 5
    assert sorted(held_out.tolist()) == list(range(len(labels)))


def test_cv5_folds_are_stratified_by_label():
    labels, patients = _cohort(n_patients=200)
    for fold in splits.make_splits("cv5", labels, patients, seed=0):
        assert abs(labels[fold.test].mean() - labels.mean()) < 0.08


def test_paper_split_holds_out_a_tenth_of_patients_stratified():
    labels, patients = _cohort(n_patients=457)
    (fold,) = splits.make_splits("paper", labels, patients, seed=0)
    held_patients = set(patients[fold.test])
    assert len(held_patients) == pytest.approx(46, abs=1)
    assert abs(labels[fold.test].mean() - labels.mean()) < 0.05


@pytest.mark.parametrize("split", splits.SPLITS)
def test_splits_are_repeatable_with_a_seed_and_change_with_another(split):
    labels, patients = _cohort()
    a = splits.make_splits(split, labels, patients, seed=1)
    b = splits.make_splits(split, labels, patients, seed=1)
    c = splits.make_splits(split, labels, patients, seed=2)
    assert [f.test.tolist() for f in a] == [f.test.tolist() for f in b]
    assert [f.test.tolist() for f in a] != [f.test.tolist() for f in c]


@pytest.mark.parametrize("split", splits.SPLITS)
def test_too_few_patients_per_class_is_a_clear_error(split):
    labels = np.array([1] * 3 + [0] * 30)
    patients = np.array(["P{}".format(i) for i in range(len(labels))])
    with pytest.raises(InputError, match="too few patients.*3 LVI\\+ and 30 LVI-"):
        splits.make_splits(split, labels, patients, seed=0)
