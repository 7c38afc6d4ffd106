"""Add one case to a cohort folder (docs/design.md §4) without disturbing what is there.

A cohort folder holds ``cohort.csv`` (columns case_id, patient_id, lvi, t2_image,
t2_mask, dce_image, dce_mask, plus optional clinical columns) and the files it points
to by paths relative to the CSV. Radiologists export cases one at a time into a
folder that may already hold a curated cohort, so this module only ever *adds*:
new image files next to the others, and one new line at the end of the CSV whose
existing bytes are kept exactly. The CSV is replaced atomically (written beside it,
then renamed), so an interrupted export never leaves a half-written table.

Pure Python + SimpleITK: used by the Slicer module and usable by training tools.
"""

import csv
import io
import re
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import numpy as np
import SimpleITK as sitk

from LVIPredictorLib import clinical as clinical_columns
from LVIPredictorLib.atomic_files import write_bytes_atomic
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.vocabulary.sequences import COHORT_COLUMNS, SEQUENCES, cohort_columns

COHORT_CSV = "cohort.csv"
REQUIRED_COLUMNS = COHORT_COLUMNS
IMAGES_DIR = "images"
MASKS_DIR = "masks"
# Case IDs become file names; keep them portable across operating systems.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _checkId(value, what: str, source: str) -> str:
    text = str(value).strip()
    if not _SAFE_ID.match(text):
        raise InputError(source, "{} '{}' must start with a letter or digit and contain only letters, digits, "
                                 "'.', '_' or '-' (it becomes part of file names).".format(what, value))
    return text


def _checkLabel(lvi, source: str) -> int:
    if lvi in (0, 1, "0", "1", True, False) and not isinstance(lvi, float):
        return int(lvi)
    raise InputError(source, "LVI label must be 0 (negative) or 1 (positive), got {!r}.".format(lvi))


def readHeader(csvPath: Path) -> Optional[list]:
    """The column names of an existing cohort.csv, or None when there is none yet."""
    if not csvPath.exists():
        return None
    with open(csvPath, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        return None
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise InputError(str(csvPath), "is not a cohort table: missing column(s) {}.".format(", ".join(missing)))
    return header


def existingCaseIds(csvPath: Path) -> set:
    if not csvPath.exists():
        return set()
    with open(csvPath, newline="", encoding="utf-8-sig") as handle:
        return {row.get("case_id", "").strip() for row in csv.DictReader(handle)}


def appendRow(csvPath, row: Mapping[str, object]) -> None:
    """Append ``row`` to a cohort CSV, creating it with the standard header if absent.

    Existing bytes are copied unchanged; the new line uses the file's own line ending.
    Columns the table does not have are refused rather than silently dropped.
    """
    csvPath = Path(csvPath)
    header = readHeader(csvPath)
    existing = csvPath.read_bytes() if csvPath.exists() else b""
    if header is None:
        extra = [column for column in row if column not in REQUIRED_COLUMNS]
        header = list(REQUIRED_COLUMNS) + extra
        existing = b""
    unknown = [column for column in row if column not in header]
    if unknown:
        raise InputError(str(csvPath), "has no column(s) {} for this case; add them to the table first.".format(
            ", ".join(unknown)))
    caseId = str(row.get("case_id", ""))
    if caseId in existingCaseIds(csvPath):
        raise InputError(str(csvPath), "already has a case '{}'; choose another case ID.".format(caseId))

    lineEnding = "\r\n" if b"\r\n" in existing else "\n"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineEnding)
    if not existing:
        writer.writerow(header)
    writer.writerow(["" if row.get(column) is None else row.get(column) for column in header])
    addition = buffer.getvalue().encode("utf-8")
    if existing and not existing.endswith(b"\n"):
        addition = lineEnding.encode("ascii") + addition

    write_bytes_atomic(csvPath, existing + addition)


def _clinicalCells(clinical: Optional[Mapping[str, object]], source: str) -> Dict[str, str]:
    """The given clinical values as cohort.csv cells ({column: text}; empty ones left out), each
    checked against its column's allowed values so the table never holds what training would refuse."""
    mapping = dict(clinical or {})
    unknown = [name for name in mapping if name not in clinical_columns.FIELDS]
    if unknown:
        raise InputError(source, "unknown clinical column(s) {}; the columns are {}.".format(
            ", ".join(unknown), ", ".join(clinical_columns.NAMES)))
    parsed = clinical_columns.parse_row(mapping, list(mapping), source)
    return {name: "{:g}".format(value) for name, value in parsed.items() if value is not None}


def _writeNew(image: sitk.Image, path: Path) -> None:
    if path.exists():
        raise InputError(str(path), "already exists; exporting never overwrites cohort files.")
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), True)


def _binaryMask(mask: sitk.Image, source: str) -> sitk.Image:
    voxels = sitk.GetArrayViewFromImage(mask)
    if not np.any(voxels):
        raise InputError(source, "the tumour mask is empty.")
    binary = sitk.Cast(mask != 0, sitk.sitkUInt8)
    binary.CopyInformation(mask)
    return binary


def exportCase(cohortDir, caseId, patientId, lvi,
               series: Mapping[str, Tuple[sitk.Image, sitk.Image]],
               clinical: Optional[Mapping[str, object]] = None) -> Dict[str, str]:
    """Write one case's series and masks as NIfTI and append its row; returns the row.

    ``series`` maps "t2" and/or "dce" to (image, mask); masks are stored as 0/1
    uint8 (the ITK-SNAP convention the cohort reader expects). Nothing is written
    when a check fails, and existing files are never overwritten.
    """
    cohortDir = Path(cohortDir)
    csvPath = cohortDir / COHORT_CSV
    caseId = _checkId(caseId, "case ID", str(csvPath))
    patientId = _checkId(patientId, "patient ID", str(csvPath))
    label = _checkLabel(lvi, str(csvPath))
    unknownSequences = [name for name in series if name not in SEQUENCES]
    if unknownSequences or not series:
        raise InputError(str(csvPath), "a case needs a series of {}, got {}.".format(
            " and/or ".join("'{}'".format(s) for s in SEQUENCES), ", ".join(series) or "none"))
    if caseId in existingCaseIds(csvPath):
        raise InputError(str(csvPath), "already has a case '{}'; choose another case ID.".format(caseId))
    header = readHeader(csvPath)
    values = _clinicalCells(clinical, str(csvPath))
    unknown = [column for column in values if header is not None and column not in header]
    if unknown:
        raise InputError(str(csvPath), "has no column(s) {}; add them to the table first.".format(", ".join(unknown)))

    planned = {}
    for sequence, (image, mask) in series.items():
        if image is None or mask is None:
            raise InputError(str(csvPath), "the {} series needs both an image and a mask.".format(sequence))
        imagePath = Path(IMAGES_DIR) / "{}_{}.nii.gz".format(caseId, sequence)
        maskPath = Path(MASKS_DIR) / "{}_{}_mask.nii.gz".format(caseId, sequence)
        for relative in (imagePath, maskPath):
            if (cohortDir / relative).exists():
                raise InputError(str(cohortDir / relative), "already exists; exporting never overwrites cohort files.")
        planned[sequence] = (image, _binaryMask(mask, "{} mask of case {}".format(sequence, caseId)), imagePath, maskPath)

    row = {"case_id": caseId, "patient_id": patientId, "lvi": label}
    for sequence in SEQUENCES:
        row.update(dict.fromkeys(cohort_columns(sequence), ""))
    for sequence, (image, mask, imagePath, maskPath) in planned.items():
        _writeNew(image, cohortDir / imagePath)
        _writeNew(mask, cohortDir / maskPath)
        row.update(zip(cohort_columns(sequence), (imagePath.as_posix(), maskPath.as_posix())))
    if values and header is None:
        row.update(dict.fromkeys(clinical_columns.NAMES, ""))  # a new table gets every clinical column
    row.update(values)
    appendRow(csvPath, row)
    return {key: str(value) for key, value in row.items()}
