"""The shipped sample case (Resources/SampleData) is what the generator writes, byte for byte."""

from pathlib import Path

from lvi_training.cli import main
from lvi_training.phantom.sample import SAMPLE_CASE_ID, SAMPLE_COMMAND, checksum_lines

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "Resources" / "SampleData"


def test_shipped_sample_files_match_their_checksums():
    shipped = (SAMPLE_DATA / "SHA256SUMS").read_text().splitlines()
    assert shipped == checksum_lines(str(SAMPLE_DATA))


def test_regenerating_the_sample_gives_identical_checksums(tmp_path):
    assert main(["phantom", "--sample", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "SHA256SUMS").read_text() == (SAMPLE_DATA / "SHA256SUMS").read_text()


def test_sample_has_both_sequences_in_dicom_and_nifti_with_vois():
    case = SAMPLE_DATA / SAMPLE_CASE_ID
    for name in ("t2.nii.gz", "t2_mask.nii.gz", "dce_phase2.nii.gz", "dce_mask.nii.gz", "case.json"):
        assert (case / name).is_file()
    assert len(list((case / "dicom" / "t2").iterdir())) > 0
    assert len(list((case / "dicom" / "dce").iterdir())) > 0


def test_sample_stays_small_and_documents_how_to_regenerate_it():
    total = sum(p.stat().st_size for p in SAMPLE_DATA.rglob("*") if p.is_file())
    assert total <= 10 * 1024 * 1024
    assert SAMPLE_COMMAND in (SAMPLE_DATA / "README.md").read_text()
