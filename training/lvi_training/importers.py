"""Cohorts held in the field's formats, read into this tool's ``cohort.csv`` (DESIGN §4).

Nothing is copied: the CSV names the dataset's own files by paths relative to the CSV. Every
problem (a missing file, a case without an LVI label, a duplicate id, an ambiguous channel) is
collected and reported together, and nothing is written while there is one.

**nnU-Net-style dataset** (``from_nnunet``): ``imagesTr/CASE_XXXX<ending>`` one file per channel,
``labelsTr/CASE<ending>`` one label image on the channels' grid, ``dataset.json`` with
``channel_names`` (v2) or ``modality`` (v1) and ``file_ending`` (default ``.nii.gz``). Which channel
is which series: ``--channel t2=0 --channel dce=1`` when given (those not named are ignored),
otherwise from the channel names: a name containing ``t2`` is FS-T2WI; one containing ``dce``,
``t1``, ``dyn``, ``post`` or ``contrast`` is DCE (letters and digits only, case ignored:
"FS-T2WI", "T2w" -> t2; "DCE_phase2", "T1 post-contrast" -> dce). A name matching neither or
both, or two channels for one series, is a problem that asks for ``--channel``. The label image
is the VOI of every mapped series (nnU-Net puts all channels on one grid). LVI status comes from
a labels CSV (``read_labels``).

**MONAI-style datalist** (``from_monai``): a JSON object whose sections (``training`` by
default) are lists of entries. Paths are relative to ``base_dir`` (default: the JSON's folder),
as MONAI's ``load_decathlon_datalist`` reads them. Per entry:

- ``t2_image``/``t2_label`` and ``dce_image``/``dce_label`` (``*_mask`` accepted for ``*_label``):
  each series with its VOI; either may be absent;
- or ``image``/``label`` for one series, named by ``image_sequence`` (``--image-sequence``); an
  ``image`` that is a list of per-channel files is read with the ``--channel`` mapping, the one
  ``label`` being every series' VOI;
- ``lvi`` (0/1) unless a labels CSV is given (then the CSV decides, and an entry's own ``lvi``
  that disagrees is a problem); ``case_id`` (else ``id``, else the first image's file name
  without its extension) and ``patient_id`` (default: the case id) are optional.

**Labels CSV**: columns ``case_id`` and ``lvi`` (0/1), optional ``patient_id`` (default: the case
id, so each case is its own patient: say otherwise when a patient has several cases, or the
cross-validation splits will not keep them together).
"""

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from LVIPredictorLib.outputs.cohort_export import COHORT_CSV, REQUIRED_COLUMNS
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.vocabulary.sequences import LABELS, SEQUENCES

from .cohort import Problem

NAME_HINTS = {"t2": ("t2",), "dce": ("dce", "t1", "dyn", "post", "contrast")}
IMAGE_ENDINGS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")


@dataclass
class Imported:
    """Rows in cohort.csv order (paths absolute until written), every problem, and notes for the user."""

    rows: List[dict] = field(default_factory=list)
    problems: List[Problem] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)


def parse_channel_options(options):
    # type: (List[str]) -> Dict[str, int]
    """``["t2=0", "dce=1"]`` -> {"t2": 0, "dce": 1}; a malformed option is an InputError."""
    mapping = {}
    for option in options or []:
        name, _, index = option.partition("=")
        name = name.strip().lower()
        if name not in SEQUENCES or not index.strip().isdigit():
            raise InputError(None, "--channel {!r}: expected SERIES=INDEX with SERIES one of {} (e.g. t2=0)".format(
                option, ", ".join(SEQUENCES)))
        if name in mapping:
            raise InputError(None, "--channel names {} twice".format(name))
        mapping[name] = int(index)
    if len(set(mapping.values())) < len(mapping):
        raise InputError(None, "--channel gives two series the same channel index")
    return mapping


def channels_from_names(names, source):
    """{series: channel index} from channel names (see the module docstring), or problems."""
    mapping, problems = {}, []
    for index, name in sorted(names.items()):
        plain = re.sub(r"[^a-z0-9]", "", str(name).lower())
        hits = [s for s in SEQUENCES if any(h in plain for h in NAME_HINTS[s])]
        if len(hits) != 1:
            problems.append(Problem(None, source, "channel {} is named {!r}, which says {}; say which series each "
                                                  "channel is with --channel t2=INDEX --channel dce=INDEX".format(
                                                      index, name, "neither FS-T2WI nor DCE" if not hits else
                                                      "both FS-T2WI and DCE")))
        elif hits[0] in mapping:
            problems.append(Problem(None, source, "channels {} and {} both look like {}; choose one with "
                                                  "--channel".format(mapping[hits[0]], index, LABELS[hits[0]])))
        else:
            mapping[hits[0]] = int(index)
    return mapping, problems


def read_labels(path):
    """{case_id: (lvi or None, patient_id or None)} and the problems of the labels CSV."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), "labels CSV not found")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        missing = [c for c in ("case_id", "lvi") if c not in columns]
        if missing:
            raise InputError(str(path), "lacks column(s) {} (has: {})".format(", ".join(missing),
                                                                            ", ".join(columns) or "nothing"))
        labels, problems = {}, []
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
            case = row["case_id"]
            if not case:
                problems.append(Problem(None, str(path), "line {}: empty case_id".format(line)))
                continue
            if case in labels:
                problems.append(Problem(case, str(path), "line {}: case listed twice".format(line)))
                continue
            lvi = _label(row["lvi"])
            if lvi is None:
                problems.append(Problem(case, str(path), "line {}: lvi must be 0 or 1, got {!r}".format(line,
                                                                                                       row["lvi"])))
            labels[case] = (lvi, row.get("patient_id") or None)
    return labels, problems


def _label(value):
    text = str(value).strip()
    return int(text) if text in ("0", "1") else None


def _strip_ending(name):
    for ending in IMAGE_ENDINGS:
        if name.endswith(ending):
            return name[:-len(ending)]
    return Path(name).stem


# --- nnU-Net ------------------------------------------------------------------------------

def from_nnunet(dataset_dir, labels_csv, channels=None):
    # type: (Path, Path, Optional[Dict[str, int]]) -> Imported
    dataset_dir = Path(dataset_dir)
    meta_path = dataset_dir / "dataset.json"
    if not meta_path.is_file():
        raise InputError(str(dataset_dir), "has no dataset.json: not an nnU-Net-style dataset")
    meta = _load_json(meta_path)
    names = meta.get("channel_names") or meta.get("modality")
    if not isinstance(names, dict) or not names:
        raise InputError(str(meta_path), "has no channel_names (nnU-Net v2) or modality (v1) object")
    try:
        names = {int(k): v for k, v in names.items()}
    except ValueError:
        raise InputError(str(meta_path), "channel_names keys must be channel indices (\"0\", \"1\", ...)")
    ending = meta.get("file_ending", ".nii.gz")
    result = Imported()
    if channels:
        unknown = sorted(i for i in channels.values() if i not in names)
        if unknown:
            raise InputError(str(meta_path), "has no channel {} (its channels: {})".format(
                ", ".join(map(str, unknown)), ", ".join("{}={}".format(i, n) for i, n in sorted(names.items()))))
        mapping = dict(channels)
    else:
        mapping, problems = channels_from_names(names, str(meta_path))
        result.problems += problems
    if not mapping and not result.problems:
        result.problems.append(Problem(None, str(meta_path), "no channel is FS-T2WI or DCE"))
    ignored = sorted(set(names) - set(mapping.values()))
    if mapping and ignored:
        result.notes.append("channel(s) {} not imported (no series mapped to them)".format(
            ", ".join("{} ({})".format(i, names[i]) for i in ignored)))

    images_dir, labels_dir = dataset_dir / "imagesTr", dataset_dir / "labelsTr"
    if not images_dir.is_dir():
        raise InputError(str(dataset_dir), "has no imagesTr/ folder")
    pattern = re.compile(r"^(.+)_(\d{4})" + re.escape(ending) + "$")
    cases = sorted({m.group(1) for m in (pattern.match(p.name) for p in images_dir.iterdir()) if m})
    if not cases:
        raise InputError(str(images_dir), "holds no CASE_XXXX{} channel files".format(ending))
    labels, problems = read_labels(labels_csv)
    result.problems += problems
    for case in cases:
        row = {"case_id": case}
        label_path = labels_dir / (case + ending)
        if not label_path.is_file():
            result.problems.append(Problem(case, str(label_path), "label (VOI) file missing"))
        for series, index in sorted(mapping.items()):
            image_path = images_dir / "{}_{:04d}{}".format(case, index, ending)
            if not image_path.is_file():
                result.problems.append(Problem(case, str(image_path), "{} channel file missing".format(
                    LABELS[series])))
            row[series + "_image"], row[series + "_mask"] = image_path, label_path
        _set_label(result, row, labels, str(labels_csv))
        result.rows.append(row)
    _note_unused_labels(result, labels, cases, str(labels_csv))
    return result


# --- MONAI datalist -------------------------------------------------------------------------

def from_monai(datalist_path, sections=("training",), base_dir=None, labels_csv=None, image_sequence=None,
               channels=None):
    datalist_path = Path(datalist_path)
    data = _load_json(datalist_path)
    if not isinstance(data, dict):
        raise InputError(str(datalist_path), "is not a JSON object with sections such as \"training\"")
    base = Path(base_dir) if base_dir else datalist_path.parent
    labels, result = {}, Imported()
    if labels_csv:
        labels, problems = read_labels(labels_csv)
        result.problems += problems
    seen = set()
    for section in sections:
        entries = data.get(section)
        if not isinstance(entries, list):
            raise InputError(str(datalist_path), "has no list {!r} (its keys: {})".format(section, ", ".join(data)))
        for number, entry in enumerate(entries):
            where = "{} entry {}".format(section, number)
            if not isinstance(entry, dict):
                result.problems.append(Problem(None, str(datalist_path), "{} is not an object".format(where)))
                continue
            row = _monai_row(entry, base, image_sequence, channels, result, where, str(datalist_path))
            if row is None:
                continue
            if row["case_id"] in seen:
                result.problems.append(Problem(row["case_id"], str(datalist_path), "{}: case id used twice".format(
                    where)))
                continue
            seen.add(row["case_id"])
            if labels_csv:
                own = entry.get("lvi")
                _set_label(result, row, labels, str(labels_csv))
                if own is not None and _label(own) != row["lvi"] and row["lvi"] is not None:
                    result.problems.append(Problem(row["case_id"], str(datalist_path), "{}: lvi {!r} disagrees with "
                                                   "the labels CSV ({})".format(where, own, row["lvi"])))
            else:
                row["lvi"] = _label(entry.get("lvi", ""))
                if row["lvi"] is None:
                    result.problems.append(Problem(row["case_id"], str(datalist_path), "{}: no lvi label (0/1){}; "
                                                   "add \"lvi\" or give --labels".format(
                                                       where, "" if "lvi" not in entry
                                                       else ", got {!r}".format(entry["lvi"]))))
                row["patient_id"] = str(entry.get("patient_id") or row["case_id"])
            result.rows.append(row)
    if labels_csv:
        _note_unused_labels(result, labels, seen, str(labels_csv))
    return result


def _monai_row(entry, base, image_sequence, channels, result, where, source):
    row, half = {}, False
    for series in SEQUENCES:
        image = entry.get(series + "_image")
        mask = entry.get(series + "_label", entry.get(series + "_mask"))
        if image is None and mask is None:
            continue
        if image is None or mask is None:
            result.problems.append(Problem(None, source, "{}: {} has {} but no {}".format(
                where, LABELS[series], "an image" if image else "a label", "label" if image else "image")))
            half = True
            continue
        row[series + "_image"], row[series + "_mask"] = base / str(image), base / str(mask)
    if "image" in entry:
        if row:
            result.problems.append(Problem(None, source, "{}: give either image/label or t2_image/dce_image keys, "
                                                         "not both".format(where)))
            return None
        if "label" not in entry:
            result.problems.append(Problem(None, source, "{}: image without label (the VOI)".format(where)))
            return None
        images = entry["image"] if isinstance(entry["image"], list) else [entry["image"]]
        if len(images) == 1 and not channels:
            if image_sequence is None:
                raise InputError(source, "entries use \"image\"/\"label\": say which series the image is with "
                                         "--image-sequence t2 or dce")
            mapping = {image_sequence: 0}
        elif not channels:
            raise InputError(source, "{}: \"image\" lists {} files: say which is which with --channel t2=INDEX "
                                     "--channel dce=INDEX".format(where, len(images)))
        else:
            mapping = channels
        for series, index in mapping.items():
            if index >= len(images):
                result.problems.append(Problem(None, source, "{}: no image {} (it lists {})".format(
                    where, index, len(images))))
                return None
            row[series + "_image"], row[series + "_mask"] = base / str(images[index]), base / str(entry["label"])
    if not row:
        if not half:
            result.problems.append(Problem(None, source, "{}: no image (keys: {})".format(where, ", ".join(entry))))
        return None
    first = next(row[k] for k in ("t2_image", "dce_image") if k in row)
    case = str(entry.get("case_id") or entry.get("id") or _strip_ending(first.name))
    row = dict(case_id=case, **row)
    for key in [k for k in row if k.endswith(("_image", "_mask"))]:
        if not row[key].exists():
            result.problems.append(Problem(case, str(row[key]), "{} missing".format(
                "image" if key.endswith("_image") else "label (VOI) file")))
    return row


# --- shared ----------------------------------------------------------------------------------

def _set_label(result, row, labels, source):
    lvi, patient = labels.get(row["case_id"], (None, None))
    if row["case_id"] not in labels:
        result.problems.append(Problem(row["case_id"], source, "case has no row in the labels CSV"))
    row["lvi"] = lvi
    row["patient_id"] = patient or row["case_id"]


def _note_unused_labels(result, labels, cases, source):
    unused = sorted(set(labels) - set(cases))
    if unused:
        result.notes.append("{}: {} labelled case(s) not in the dataset, ignored: {}".format(
            source, len(unused), ", ".join(unused[:5]) + (" ..." if len(unused) > 5 else "")))


def _load_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(str(path), "is not valid JSON ({})".format(exc))


def write_cohort_csv(out_dir, rows, overwrite=False):
    """``out_dir/cohort.csv`` with paths relative to it; an existing one only with ``overwrite``."""
    out_dir = Path(out_dir)
    csv_path = out_dir / COHORT_CSV
    if csv_path.exists() and not overwrite:
        raise InputError(str(csv_path), "already exists; refusing to overwrite it (pass --overwrite)")
    out_dir.mkdir(parents=True, exist_ok=True)
    root = os.path.abspath(str(out_dir))
    tmp = csv_path.with_name("." + COHORT_CSV + ".partial")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(REQUIRED_COLUMNS))
        writer.writeheader()
        for row in rows:
            cells = {}
            for column in REQUIRED_COLUMNS:
                value = row.get(column)
                if isinstance(value, Path):
                    value = Path(os.path.relpath(os.path.abspath(str(value)), root)).as_posix()
                cells[column] = "" if value is None else value
            writer.writerow(cells)
    tmp.replace(csv_path)
    return csv_path
