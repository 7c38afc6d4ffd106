"""The case-level service: model choice, each card's DCE phase, the thread policy, the one record."""

import pytest
import torch

from LVIPredictorLib import weights
from LVIPredictorLib.errors import PredictionCancelled
from LVIPredictorLib.service import CaseService, record, series_from_files, threads
from LVIPredictorLib.vocabulary import kinds
from lvi_training.reference import default_sample_case

SAMPLE = default_sample_case()


def test_choose_takes_the_bundled_models_whose_series_are_given():
    t2_only, refused = CaseService.choose(["t2"])
    assert t2_only and not refused and all(card["sequence"] == "t2" for card in t2_only)
    both, _ = CaseService.choose(["t2", "dce"])
    catalog = weights.bundled_catalog()
    # A model that reads clinical data runs only when some are given; it is named, not refused.
    assert {card["model_id"] for card in both} == {e["model_id"] for e in catalog if not kinds.needs_clinical(e)}
    combined = [e["model_id"] for e in catalog if kinds.needs_clinical(e)]
    assert combined and [e["model_id"] for e in CaseService.skipped_for_clinical(["t2", "dce"])] == combined
    with_clinical, _ = CaseService.choose(["t2", "dce"], clinical={"age": 61, "her2": ""})
    assert {card["model_id"] for card in with_clinical} == {e["model_id"] for e in catalog}
    empty, _ = CaseService.choose(["t2", "dce"], clinical="age=, her2=")  # every value missing: none given
    assert {card["model_id"] for card in empty} == {card["model_id"] for card in both}
    # Missing as the clinical columns define it (NA, NaN, none), not only empty.
    for missing in ("age=NA, ki67=nan", {"age": "NA", "her2": None, "ki67": " none "}):
        chosen, _ = CaseService.choose(["t2", "dce"], clinical=missing)
        assert {card["model_id"] for card in chosen} == {card["model_id"] for card in both}
    assert CaseService.skipped_for_clinical(["t2", "dce"], clinical="age=61") == []
    fused, _ = CaseService.choose(["t2", "dce"], sequence="t2+dce")
    assert fused and all(card["sequence"] == "t2+dce" for card in fused)


def test_choose_names_what_a_given_model_lacks():
    chosen, refused = CaseService.choose(["t2"], ["demo-t2+dce-vanilla_cnn_2d"])
    assert chosen == [] and "needs DCE as well" in refused[0][1]


def test_each_model_reads_its_own_phase_of_a_dynamic_series():
    series = series_from_files("dce", SAMPLE / "dicom" / "dce", SAMPLE / "dce_mask.nii.gz")
    assert series.read_phase is not None and series.phase == 2
    card = weights.load_card(weights.resolve_card("demo-dce-vanilla_cnn_2d"))
    phase3 = dict(card, dce_phase=3)
    service = CaseService(device="cpu")
    own, other = service.predict({"dce": series}, [card, phase3]).predictions
    assert own.dce_phase == 2 and other.dce_phase == 3
    assert own.probability != pytest.approx(other.probability, abs=1e-6)  # another image was read
    assert any("the model reads phase 3" in w for w in other.warnings)
    assert not any("phase" in w for w in own.warnings)


def test_a_phase_forced_on_the_command_line_is_flagged_for_a_model_trained_on_another():
    series = series_from_files("dce", SAMPLE / "dicom" / "dce", SAMPLE / "dce_mask.nii.gz", dce_phase=3)
    card = weights.load_card(weights.resolve_card("demo-dce-vanilla_cnn_2d"))
    [prediction] = CaseService(device="cpu").predict({"dce": series}, [card]).predictions
    assert prediction.dce_phase == 3
    assert prediction.warnings[0].startswith("DCE phase 3 was read (--dce-phase) but model")


def test_cancel_stops_between_steps():
    series = series_from_files("t2", SAMPLE / "t2.nii.gz", SAMPLE / "t2_mask.nii.gz")
    cards, _ = CaseService.choose(["t2"])
    with pytest.raises(PredictionCancelled):
        CaseService(device="cpu").predict({"t2": series}, cards, cancel=lambda: True)


def test_the_record_is_one_flat_row_in_one_column_order():
    series = series_from_files("t2", SAMPLE / "t2.nii.gz", SAMPLE / "t2_mask.nii.gz")
    card = weights.load_card(weights.resolve_card("demo-t2-vanilla_cnn_2d"))
    [prediction] = CaseService(device="cpu").predict({"t2": series}, [card]).predictions
    row = record.row(prediction)
    assert tuple(row) == record.COLUMN_NAMES
    assert row["model_id"] == prediction.model_id and row["class"] in ("LVI+", "LVI-")
    assert float(row["probability"]) == pytest.approx(prediction.probability, abs=1e-6)


def test_thread_policies_and_the_count_is_restored_after():
    assert threads.ThreadPolicy("all").threads() == threads.cpu_count()
    assert threads.ThreadPolicy(1).threads() == 1
    assert 1 <= threads.ThreadPolicy("adaptive").threads() <= threads.cpu_count()
    with pytest.raises(ValueError):
        threads.ThreadPolicy(0)
    before = torch.get_num_threads()
    with threads.applied(threads.ThreadPolicy(1)) as used:
        assert used == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_the_thread_policy_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv(threads.ENVIRONMENT, "1")
    assert threads.default_policy().threads() == 1
    monkeypatch.setenv(threads.ENVIRONMENT, "all")
    assert threads.default_policy().mode == "all"


def test_a_model_not_shown_to_beat_chance_is_flagged_in_every_output_of_its_record():
    series = series_from_files("t2", SAMPLE / "t2.nii.gz", SAMPLE / "t2_mask.nii.gz")
    card = weights.load_card(weights.resolve_card("demo-t2-vanilla_cnn_2d"))
    shaky = dict(card, metrics=dict(card["metrics"], auc_ci_delong=[0.46, 0.68]))
    own, = CaseService(device="cpu").predict({"t2": series}, [card]).predictions
    flagged, = CaseService(device="cpu").predict({"t2": series}, [shaky]).predictions
    assert not any("includes 0.5" in w for w in own.warnings)
    assert flagged.warnings[0].startswith("demo-t2-vanilla_cnn_2d: its own out-of-fold AUC 95% CI 0.46-0.68 includes")
    assert "includes 0.5" in record.row(flagged)["warnings"] and flagged.to_dict()["auc_ci"] == [0.46, 0.68]


def test_the_adaptive_decision_is_reused_for_a_moment_not_sampled_per_case(monkeypatch):
    samples = []
    monkeypatch.setattr(threads, "idle_cores", lambda: samples.append(1) or 1.0)
    policy = threads.ThreadPolicy("adaptive")
    assert [policy.threads() for _ in range(5)] == [1] * 5
    assert len(samples) == 1


def test_the_report_names_a_dicom_case_by_its_patient_id_and_study_date_not_its_folder():
    from LVIPredictorLib.service.outputs import case_label

    dicom = series_from_files("dce", SAMPLE / "dicom" / "dce", SAMPLE / "dce_mask.nii.gz")
    nifti = series_from_files("t2", SAMPLE / "t2.nii.gz", SAMPLE / "t2_mask.nii.gz")
    assert case_label({"dce": dicom}) == "SAMPLE001 (DICOM patient ID, study 2012-10-24)"
    assert case_label({"t2": nifti, "dce": dicom}) == "SAMPLE001 (DICOM patient ID, study 2012-10-24)"
    assert case_label({"t2": nifti}) == "SampleData/LVI-Sample-001"
