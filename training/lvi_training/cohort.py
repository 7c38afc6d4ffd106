"""A training cohort: ``cohort.csv`` read, checked row by row, summarised.

Format (docs/design.md §4): columns ``case_id, patient_id, lvi (0/1), t2_image, t2_mask,
dce_image, dce_mask`` plus optional clinical columns; paths relative to the CSV; an
empty cell means that sequence is missing for the case. An image cell may name a folder
holding a whole DICOM study: each sequence's column then reads the series of that sequence
(LVIPredictorLib.dicom.selection), so both cells may name the same folder. An optional ``cohort.json``
next to the CSV (written by the phantom generator) describes how the cohort was made.

Validation collects EVERY problem before reporting, because a researcher fixing an
export wants the whole list, not one error per run.
"""

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from LVIPredictorLib import clinical
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.inputs.readers import same_geometry
from LVIPredictorLib.vocabulary.sequences import ALL, FUSED, SEQUENCES, channels, grid_reference

from . import sources
from .pool import ordered_map

REQUIRED_COLUMNS = ("case_id", "patient_id", "lvi")
PATH_COLUMNS = tuple("{}_{}".format(s, kind) for s in SEQUENCES for kind in ("image", "mask"))

# A mask that reaches this far (mm) outside its image cannot be explained by resampling
# between slightly different grids: it was drawn on another series or another case.
OUTSIDE_TOLERANCE_MM = 2.0


@dataclass
class CohortCase:
    case_id: str
    patient_id: str
    lvi: Optional[int]  # None when the cell is not 0/1 (reported by validation)
    images: Dict[str, Optional[Path]]  # sequence -> image path (None = missing)
    masks: Dict[str, Optional[Path]]
    clinical: Dict[str, str] = field(default_factory=dict)
    row: int = 0  # 1-based line number in the CSV, header = line 1

    def has(self, sequence):
        """True when every series behind ``sequence`` (both for a fused input) has image and mask."""
        return all(self.images.get(s) is not None and self.masks.get(s) is not None for s in channels(sequence))


@dataclass
class Cohort:
    root: Path
    csv_path: Path
    cases: List[CohortCase]
    recipe: Optional[dict] = None  # cohort.json, when present
    # Problems of the CSV text itself (duplicate columns, ragged rows), reported with the rows' own by
    # validate_cohort so one run lists them all.
    csv_problems: List["Problem"] = field(default_factory=list)

    @property
    def is_phantom(self):
        return bool(self.recipe) and bool(self.recipe.get("phantom", True))

    def with_sequence(self, sequence):
        return [c for c in self.cases if c.has(sequence)]


@dataclass
class Problem:
    case_id: Optional[str]
    file: Optional[str]
    message: str

    def __str__(self):
        parts = []
        if self.case_id is not None:
            parts.append("case {}".format(self.case_id))
        if self.file is not None:
            parts.append(str(self.file))
        return "{}: {}".format(" / ".join(parts), self.message) if parts else self.message


@dataclass
class ValidationReport:
    cohort: Cohort
    problems: List[Problem]
    warnings: List[Problem]

    @property
    def ok(self):
        return not self.problems

    def raise_if_problems(self):
        if self.problems:
            lines = "\n  ".join(str(p) for p in self.problems)
            raise InputError(str(self.cohort.csv_path),
                             "{} problem(s) in the cohort:\n  {}".format(len(self.problems), lines))


def load_cohort(path):
    """Parse ``cohort.csv`` (``path`` is the CSV or its folder) without judging the rows.

    Only a missing file, text that is not UTF-8 or missing required columns raise here;
    everything about the rows (ragged rows and duplicate columns included) is left to
    :func:`validate_cohort` so it can be reported all at once.
    """
    path = Path(path)
    csv_path = path / "cohort.csv" if path.is_dir() else path
    if not csv_path.is_file():
        raise InputError(str(csv_path), "no cohort.csv here; a cohort is a folder with cohort.csv (docs/design.md §4)")
    header, rows, csv_problems = _read_csv(csv_path)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise InputError(str(csv_path), "missing required column(s): {}".format(", ".join(missing)))
    if not any(c in header for c in PATH_COLUMNS):
        raise InputError(str(csv_path), "no image/mask columns; expected some of {}".format(", ".join(PATH_COLUMNS)))
    root = csv_path.parent
    cases = []
    for number, row in rows:
        images, masks = {}, {}
        for seq in SEQUENCES:
            images[seq] = _resolve(root, row.get(seq + "_image", ""))
            masks[seq] = _resolve(root, row.get(seq + "_mask", ""))
        clinical = {k: v for k, v in row.items() if k not in REQUIRED_COLUMNS and k not in PATH_COLUMNS}
        cases.append(CohortCase(case_id=row.get("case_id", ""), patient_id=row.get("patient_id", ""),
                                lvi=_label(row.get("lvi", "")),
                                images=images, masks=masks, clinical=clinical, row=number))
    recipe = None
    recipe_path = root / "cohort.json"
    if recipe_path.is_file():
        try:
            recipe = json.loads(recipe_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(str(recipe_path), "is not valid JSON ({})".format(exc))
    return Cohort(root=root, csv_path=csv_path, cases=cases, recipe=recipe, csv_problems=csv_problems)


def _read_csv(csv_path):
    """(header, [(line number, row dict)], problems) of a cohort.csv.

    Encoding rule: UTF-8, with or without a byte-order mark (what "CSV UTF-8" in spreadsheet programs
    writes). Anything else (e.g. Latin-1 from an older Windows export) is refused naming the line, rather
    than guessed: a wrong guess silently changes patient ids and paths.
    """
    data = csv_path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError(str(csv_path), "line {} is not UTF-8 text (byte 0x{:02X}); save the cohort as UTF-8, "
                                        "e.g. \"CSV UTF-8\" in a spreadsheet program".format(line, data[exc.start]))
    where = "{} line {{}}".format(csv_path).format
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    problems = []
    for name in sorted({h for h in header if h and header.count(h) > 1}):
        columns = [str(i + 1) for i, h in enumerate(header) if h == name]
        problems.append(Problem(None, where(1), "column {!r} appears {} times (columns {}): which one holds the "
                                                "data is ambiguous".format(name, len(columns), ", ".join(columns))))
    rows = []
    for cells in reader:
        if not any(c.strip() for c in cells):
            continue  # blank lines carry no case
        if len(cells) != len(header):
            problems.append(Problem(None, where(reader.line_num), "has {} fields but the header has {} columns (a "
                                                                  "stray comma or an unquoted cell?)".format(
                                                                      len(cells), len(header))))
        row = {}
        for name, cell in zip(header, cells):
            row.setdefault(name, cell.strip())  # a duplicated column is reported above; never the last one silently
        rows.append((reader.line_num, row))
    return header, rows, problems


def _resolve(root, cell):
    if not cell:
        return None
    p = Path(cell)
    return p if p.is_absolute() else root / p


def _label(cell):
    return {"0": 0, "1": 1}.get(cell.strip())


def validate_cohort(cohort, sequences=None, read_images=True, labels=True, workers=1, quiet=True):
    """Check every row; return a report with ALL problems (errors) and warnings.

    ``sequences``: the sequences a model will need (rows lacking one are errors); None
    checks whatever each row provides and only requires at least one sequence.
    ``read_images``: also open every image and mask (unreadable files, empty masks,
    geometry); False for the quick structural checks only.
    ``labels``: False when the cohort is only predicted on, so its LVI cells may be empty.
    ``workers``: processes reading the images (the report is the same, in the same order, for any
    number); ``quiet``: no progress line.
    """
    problems, warnings = list(cohort.csv_problems), []
    _check_structure(cohort, sequences, problems, labels)
    if labels:
        _check_shared_content(cohort, problems)
    if read_images:
        fused_required = FUSED in (sequences or ())
        jobs = [(case, fused_required) for case in cohort.cases]
        for case_problems, case_warnings in ordered_map(_check_case, jobs, workers, "reading images", quiet=quiet):
            problems.extend(case_problems)
            warnings.extend(case_warnings)
    return ValidationReport(cohort=cohort, problems=problems, warnings=warnings)


def _check_case(job):
    """(problems, warnings) of one case's images and masks; module-level so a worker process can run it."""
    case, fused_required = job
    problems, warnings = [], []
    pairs = {seq: _check_pair(case, seq, problems, warnings) for seq in SEQUENCES if case.has(seq)}
    if all(pairs.get(seq) for seq in SEQUENCES):
        _check_fusable(case, pairs, fused_required, problems, warnings)
    return problems, warnings


def _check_shared_content(cohort, problems, content_hash=None):
    """One image (same bytes) under two different patients: the patient-level split then puts it on
    both sides of a fold, so the held-out metrics leak. ``content_hash`` (default: hash the bytes now)
    lets a cached hasher stand in."""
    content_hash = content_hash or sources.content_hash
    owners = {}  # digest -> {patient_id: first (case, path)}
    for case in cohort.cases:
        for path in {p for p in case.images.values() if p is not None}:
            if not path.exists():
                continue  # reported as missing
            try:
                digest = content_hash(path)
            except OSError:
                continue  # unreadable: the reading checks say so
            owners.setdefault(digest, {}).setdefault(case.patient_id, (case, path))
    for by_patient in owners.values():
        if len(by_patient) > 1:
            (first, first_path), *others = by_patient.values()
            for case, path in others:
                problems.append(Problem(case.case_id, str(path), "holds the same image as {} of case {} (patient {}) "
                                                                 "although it belongs to patient {}: a split by "
                                                                 "patient would put one image on both sides".format(
                                                                     first_path, first.case_id, first.patient_id,
                                                                     case.patient_id)))


def _check_fusable(case, pairs, required, problems, warnings):
    """Whether the case's T2 and DCE VOIs can feed a fused model (the preprocessing's own check)."""
    from LVIPredictorLib.preprocessing import Channel, PreprocessSpec, voi_agreement

    names = channels(FUSED)
    inputs = [Channel(pairs[s][0], pairs[s][1], str(case.images[s]), str(case.masks[s])) for s in names]
    try:
        notes = voi_agreement(inputs, PreprocessSpec(), grid_channel=names.index(grid_reference(FUSED)))
    except InputError as exc:
        if required:
            problems.append(Problem(case.case_id, exc.source, exc.problem))
        else:
            warnings.append(Problem(case.case_id, exc.source, "a fused t2+dce model cannot use this case: " +
                                    exc.problem))
        return
    warnings.extend(Problem(case.case_id, str(case.masks["t2"]), note) for note in notes)


def _check_structure(cohort, sequences, problems, labels=True):
    csv_name = str(cohort.csv_path)
    if not cohort.cases:
        problems.append(Problem(None, csv_name, "has no rows"))
    seen = {}
    patient_labels = {}
    for case in cohort.cases:
        where = "{} line {}".format(csv_name, case.row)
        if not case.case_id:
            problems.append(Problem(None, where, "empty case_id"))
        elif case.case_id in seen:
            problems.append(Problem(case.case_id, where, "duplicate case_id (first on line {})".format(seen[case.case_id])))
        else:
            seen[case.case_id] = case.row
        if not case.patient_id:
            problems.append(Problem(case.case_id, where, "empty patient_id"))
        if case.lvi is None:
            if labels:
                problems.append(Problem(case.case_id, where, "lvi must be 0 or 1"))
        elif case.patient_id:
            patient_labels.setdefault(case.patient_id, {}).setdefault(case.lvi, []).append(case.case_id)
        for seq in SEQUENCES:
            image, mask = case.images[seq], case.masks[seq]
            if (image is None) != (mask is None):
                given, absent = ("image", "mask") if mask is None else ("mask", "image")
                problems.append(Problem(case.case_id, where, "{} {} given but {}_{} is empty".format(seq, given, seq, absent)))
            for path in (image, mask):
                if path is not None and not path.exists():
                    problems.append(Problem(case.case_id, str(path), "file not found"))
        wanted = [s for seq in sequences or () for s in channels(seq)]
        for seq in wanted:
            if not case.has(seq):
                problems.append(Problem(case.case_id, where, "no {} image+mask, which the requested model needs".format(seq)))
        if not wanted and not any(case.has(s) for s in SEQUENCES):
            problems.append(Problem(case.case_id, where, "neither t2 nor dce image+mask given"))
        problems.extend(Problem(case.case_id, where, message) for _, message in clinical.row_problems(case.clinical, where))
    for column in cohort.cases[0].clinical if cohort.cases else ():
        meant = clinical.resembled(column)
        if meant:
            problems.append(Problem(None, csv_name, "column {!r} looks like the clinical column {}: name it exactly so "
                                                    "(as it is, its values are not read)".format(column, meant)))
    for patient, by_label in sorted(patient_labels.items()):
        if len(by_label) > 1:
            detail = "; ".join("lvi={} in {}".format(lab, ", ".join(ids)) for lab, ids in sorted(by_label.items()))
            problems.append(Problem(None, csv_name, "patient {} has conflicting labels ({})".format(patient, detail)))


def _check_pair(case, seq, problems, warnings):
    """Check one image + mask; returns (image, mask) when they are usable, else None."""
    image_path, mask_path = case.images[seq], case.masks[seq]
    if not (image_path.exists() and mask_path.exists()):
        return None  # already reported as missing
    image = _try_read(lambda p: sources.read_image(p, sequence=seq), image_path, case, problems)
    if image is None:
        return None
    mask = _try_read(lambda p: sources.read_mask(p, reference=image), mask_path, case, problems)
    if mask is None:
        return None
    import SimpleITK as sitk

    if image.GetDimension() != 3 or mask.GetDimension() != 3:
        problems.append(Problem(case.case_id, str(mask_path), "image and mask must both be 3D volumes (got {}D and {}D)".format(
            image.GetDimension(), mask.GetDimension())))
        return None
    voxels = sitk.GetArrayViewFromImage(mask)
    nonzero = np.argwhere(voxels != 0)
    if nonzero.size == 0:
        problems.append(Problem(case.case_id, str(mask_path), "mask is empty (no non-zero voxel)"))
        return None
    if same_geometry(image, mask):
        return image, mask
    outside_mm = _mask_outside_image_mm(image, mask, nonzero)
    if outside_mm is None:
        problems.append(Problem(case.case_id, str(mask_path), "mask does not overlap its image {} at all".format(image_path)))
        return None
    if outside_mm > OUTSIDE_TOLERANCE_MM:
        problems.append(Problem(case.case_id, str(mask_path), "mask reaches {:.1f} mm outside its image {}; more than "
                                "resampling between grids explains".format(outside_mm, image_path)))
        return None
    warnings.append(Problem(case.case_id, str(mask_path), "mask is on a different grid from its image; it will be "
                            "resampled onto the image grid (nearest neighbour)"))
    return image, mask


def _try_read(reader, path, case, problems):
    try:
        return reader(path)
    except InputError as exc:
        # The reader's own sentence, whole: a study folder's error lists the series it holds.
        problems.append(Problem(case.case_id, exc.source or str(path), exc.problem.replace("\n", "\n    ")))
        return None
    except Exception as exc:  # any other reader failure is a problem to report, not a crash
        problems.append(Problem(case.case_id, str(path), "cannot be read ({})".format(str(exc).strip().splitlines()[0][:200])))
        return None


def _mask_outside_image_mm(image, mask, nonzero_zyx):
    """How far (mm) the mask's foreground bounding box reaches outside the image; None = disjoint."""
    lo, hi = nonzero_zyx.min(axis=0)[::-1], nonzero_zyx.max(axis=0)[::-1]  # x, y, z indices
    corners = [mask.TransformContinuousIndexToPhysicalPoint([float(c) for c in (x, y, z)])
               for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    size = np.array(image.GetSize(), dtype=float)
    spacing = np.array(image.GetSpacing(), dtype=float)
    idx = np.array([image.TransformPhysicalPointToContinuousIndex(p) for p in corners])
    lo_img, hi_img = -0.5, size - 0.5
    below = np.clip(lo_img - idx, 0, None) * spacing
    above = np.clip(idx - hi_img, 0, None) * spacing
    box_lo, box_hi = idx.min(axis=0), idx.max(axis=0)
    if np.any(box_hi < lo_img) or np.any(box_lo > hi_img):
        return None
    return float(max(below.max(), above.max()))


def prevalence_table(cohort):
    """Rows of (subset, n cases, n patients, LVI+, LVI-, prevalence) for printing."""
    rows = []
    subsets = [("all", cohort.cases)] + [(seq, cohort.with_sequence(seq)) for seq in ALL]
    for name, cases in subsets:
        labelled = [c for c in cases if c.lvi is not None]
        pos = sum(c.lvi for c in labelled)
        neg = len(labelled) - pos
        rows.append({"subset": name, "cases": len(cases), "patients": len({c.patient_id for c in cases}),
                     "lvi_pos": pos, "lvi_neg": neg,
                     "prevalence": (pos / len(labelled)) if labelled else float("nan")})
    return rows


def format_prevalence(rows):
    lines = ["{:<6} {:>6} {:>9} {:>6} {:>6} {:>10}".format("subset", "cases", "patients", "LVI+", "LVI-", "prevalence")]
    for r in rows:
        lines.append("{subset:<6} {cases:>6} {patients:>9} {lvi_pos:>6} {lvi_neg:>6} {prevalence:>10.1%}".format(**r))
    return "\n".join(lines)
