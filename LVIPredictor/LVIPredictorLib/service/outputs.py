"""What a predicted case leaves behind: result.json + overview.png, and the DICOM SR and SEG.

Outputs never hurt inputs. Every destination is checked before any work (the command line and the
Slicer Logic both come through here):

- not a symbolic link (a link is never written through, even with overwrite), not a folder where a
  file is meant and not a file where a folder is meant;
- an existing file is refused unless overwrite is given;
- its folder can be created and written (probed with a file made and removed there: permission
  bits say nothing for root, a read-only mount says it only on write) and its disk has room for a
  generous estimate of the outputs (:data:`CASE_OUTPUT_BYTES`);
- no two outputs are the same file, and none is an input file or lies inside an input folder (a
  DICOM series folder would otherwise take the SEG as one of its slices on the next read).

Full disks are also caught at write: every output is written to a temporary beside its destination
and all are renamed together only when every one was written (:class:`~LVIPredictorLib.atomic_files.
StagedFiles`), so a failed run leaves none of its outputs and no folder it created.
"""

import errno
import os
import shutil
import tempfile
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional

import SimpleITK as sitk

from LVIPredictorLib.atomic_files import StagedFiles
from LVIPredictorLib.dicom import headers, sr_seg
from LVIPredictorLib.errors import InputError
from LVIPredictorLib.inputs import readers
from LVIPredictorLib.outputs import report
from LVIPredictorLib.service import record
from LVIPredictorLib.vocabulary import sequences

REPORT_FILES = ("result.json", "overview.png")
# Free space asked of an output folder's disk before any work. Generous on purpose: a case's
# report and SEGs are a few MB even for 512x512 DCE series, a cohort's tables a few hundred kB.
CASE_OUTPUT_BYTES = 64 * 1024 * 1024


# ----------------------------------------------------------------------------- checks

def _real(path) -> str:
    return os.path.realpath(os.path.abspath(str(path)))


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _existing_ancestor(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    return folder


def _check_folder_writable(folder, shown, need_bytes: int) -> None:
    """``folder`` (existing or to be made) can hold ``need_bytes`` of new files; ``shown`` is the
    output the user named, which the message names."""
    folder = os.path.abspath(str(folder))
    existing = folder if os.path.lexists(folder) else _existing_ancestor(folder)
    if not os.path.isdir(existing):
        raise InputError(str(shown), "cannot be written: {} is a file, not a folder".format(existing))
    try:
        fd, probe = tempfile.mkstemp(prefix=".lvi-write-probe.", dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as error:
        reason = "read-only" if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else error.strerror
        raise InputError(str(shown), "cannot be written: {} is {}".format(
            existing, reason if reason == "read-only" else "not writable ({})".format(reason)))
    free = shutil.disk_usage(existing).free
    if free < need_bytes:
        raise InputError(str(shown), "cannot be written: its disk has {:.1f} MB free and the outputs need up to "
                                     "{:.0f} MB".format(free / 1e6, need_bytes / 1e6))


def _check_not_input(path, inputs: Iterable) -> None:
    real = _real(path)
    for given in inputs:
        given_real = _real(given)
        if os.path.isdir(given_real) and _inside(real, given_real):
            raise InputError(str(path), "lies in the input folder {}; outputs are never written among the inputs "
                                        "(choose a path outside it)".format(given))
        if real == given_real:
            raise InputError(str(path), "is an input of this run; outputs never replace inputs (choose another "
                                        "path)")


def _check_file(path, overwrite: bool, option: str) -> None:
    if os.path.islink(str(path)):
        raise InputError(str(path), "is a symbolic link; outputs are never written through a link (give the path "
                                    "of a real file)")
    if os.path.isdir(str(path)):
        raise InputError(str(path), "is a folder; give a file name for this output")
    sr_seg.refuse_existing(path, overwrite, option)


def check_output_folder(folder, names, overwrite: bool, inputs: Iterable = (), option: str = "--overwrite",
                        describe: str = "{}", need_bytes: int = CASE_OUTPUT_BYTES) -> None:
    """A folder for the result files ``names``: a folder (or one that can be made), writable, with room,
    none of ``names`` in it a link or (without overwrite) an existing file; not an input folder."""
    folder = str(folder)
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise InputError(folder, "is a file, not a folder; give a folder for the results")
    _check_not_input(folder, inputs)
    existing = [name for name in names if os.path.lexists(os.path.join(folder, name))]
    links = [name for name in existing if os.path.islink(os.path.join(folder, name))]
    if links:
        raise InputError(os.path.join(folder, links[0]), "is a symbolic link; outputs are never written through a "
                                                         "link (remove it or choose another folder)")
    if existing and not overwrite:
        raise InputError(folder, "already holds {}; choose another folder or pass {}".format(
            describe.format(", ".join(existing)), option))
    for name in names:
        _check_not_input(os.path.join(folder, name), inputs)
    _check_folder_writable(folder, folder, need_bytes)


def case_outputs(report_dir, sr_path, seg_path, names: List[str], inputs: Iterable = (), overwrite: bool = False,
                 option: str = "--overwrite") -> Dict:
    """Check every output of one case before any work; returns {"report": folder or None, "sr": path or
    None, "seg": {sequence: path}}.

    ``inputs``: every input file and folder of the run (images, masks, DICOM series folders);
    ``option``: how the caller spells "replace existing outputs", for the messages.
    """
    inputs = [str(p) for p in inputs if p is not None]
    seg = sr_seg.segmentation_paths(seg_path, list(names)) if seg_path else {}
    named = []  # (what, path) of every file the run will write
    if report_dir is not None:
        check_output_folder(report_dir, REPORT_FILES, overwrite, inputs, option, describe="a report ({})")
        named.extend(("the report", os.path.join(str(report_dir), name)) for name in REPORT_FILES)
    if sr_path is not None:
        named.append(("the DICOM SR", str(sr_path)))
    named.extend(("the {} DICOM SEG".format(sequences.LABELS[name]), path) for name, path in seg.items())
    seen = {}
    for what, path in named:
        real = _real(path)
        if real in seen:
            raise InputError(path, "is named for both {} and {}; give each output its own file".format(
                seen[real], what))
        seen[real] = what
    for what, path in named[len(REPORT_FILES) if report_dir is not None else 0:]:
        _check_file(path, overwrite, option)
        _check_not_input(path, inputs)
        _check_folder_writable(os.path.dirname(os.path.abspath(path)), path, CASE_OUTPUT_BYTES)
    return {"report": report_dir, "sr": sr_path, "seg": seg}


def dicom_paths(sr_path, seg_path, names, overwrite, inputs: Iterable = (), option: str = "--overwrite"):
    # type: (Optional[str], Optional[str], List[str], bool, Iterable, str) -> Dict
    """:func:`case_outputs` without a report folder (the DICOM outputs alone)."""
    return case_outputs(None, sr_path, seg_path, names, inputs, overwrite, option)


# ----------------------------------------------------------------------------- writing

def dicom_sources(inputs, names, label=None):
    """The DICOM series behind each input (checked before any model runs: the images must be DICOM)."""
    return {name: sr_seg.dicom_source(name, inputs[name].image, inputs[name].mask, inputs[name].info, label=label)
            for name in names}


def _missing_folders(paths: Iterable[str]) -> List[str]:
    """Folders that writing ``paths`` will create, deepest first (removed again if the run fails)."""
    missing = set()
    for path in paths:
        folder = os.path.dirname(os.path.abspath(str(path)))
        while not os.path.lexists(folder):
            missing.add(folder)
            folder = os.path.dirname(folder)
    return sorted(missing, key=len, reverse=True)


class _AllOrNothing:
    """Stage every output; put all in place at the end, or on failure leave nothing (folders made included)."""

    def __init__(self, destinations):
        self.files = StagedFiles()
        self._made = _missing_folders(destinations)

    def __enter__(self):
        return self.files

    def __exit__(self, kind, error, trace):
        self.files.__exit__(kind, error, trace)
        if kind is not None:
            for folder in self._made:
                try:
                    os.rmdir(folder)
                except OSError:
                    pass
        return False


def _destinations(paths) -> List[str]:
    found = [p for p in [paths.get("sr")] + list(paths.get("seg", {}).values()) if p is not None]
    if paths.get("report") is not None:
        found.extend(os.path.join(str(paths["report"]), name) for name in REPORT_FILES)
    return found


def write_dicom(predictions, sources, paths, overwrite=False, files=None, voi_author=None):
    """Write the SEG(s), then the SR that references them; returns a line per file written.

    Without ``files`` they are put in place together at the end (none if any fails)."""
    if files is None:
        with _AllOrNothing(_destinations(dict(paths, report=None))) as staged:
            return write_dicom(predictions, sources, paths, overwrite, staged, voi_author)
    written, segmentations = [], {}
    for name, path in paths["seg"].items():
        segmentations[name] = sr_seg.write_segmentation(sources[name], path, overwrite=overwrite, files=files,
                                                        voi_author=voi_author)
        written.append("{} (DICOM SEG, {} VOI)".format(path, sequences.LABELS[name]))
    if paths["sr"] is not None:
        sr_seg.write_report(predictions, sources, paths["sr"], segmentations=segmentations, overwrite=overwrite,
                            files=files, voi_author=voi_author)
        written.append("{} (DICOM SR)".format(paths["sr"]))
    return written


def write_case_report(out_dir, result, files=None):
    """result.json and overview.png for one case; returns their paths.

    The overview shows every series the models read (FS-T2WI, then DCE), each with its VOI and
    the heat-maps drawn on it.
    """
    read = {n for p in result.predictions for n in sequences.channels(p.sequence)}
    shown = OrderedDict()
    for name in sequences.SEQUENCES:
        series = result.inputs.get(name)
        if series is None or (read and name not in read):
            continue
        mask = series.mask
        if not readers.same_geometry(mask, series.image):
            mask = sitk.Resample(mask, series.image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        shown[name] = report.ShownSeries(series.image, mask, sequences.LABELS[name],
                                         series.description or os.path.basename(str(series.image_source)))
    payload = record.payload(result, {"read_seconds": result.read_seconds, "shown": list(shown)})
    case = case_label(result.inputs)
    return report.write_report(out_dir, shown, result.predictions, payload, case_label=case, files=files)


def case_label(inputs):
    # type: (Dict[str, object]) -> Optional[str]
    """How the report names the case: its DICOM patient ID and study date when a series was read from
    DICOM, else the folder its files were read from."""
    for series in inputs.values():
        files = getattr(series.info, "files", None) or []
        if files:
            patient, date = headers.patient_and_study_date(files[0])
            if patient:
                return "{} (DICOM patient ID{})".format(patient, ", study " + date if date else "")
    return report.case_label_of([s.image_source for s in inputs.values()])


def write_case_outputs(result, paths, sources=None, overwrite=False, voi_author=None):
    """Every output of one case (``paths`` from :func:`case_outputs`), all or none; returns a line per file."""
    with _AllOrNothing(_destinations(paths)) as files:
        written = []
        if paths.get("report") is not None:
            written.extend(str(p) for p in write_case_report(paths["report"], result, files))
        if sources:
            written.extend(write_dicom(result.predictions, sources, paths, overwrite, files, voi_author))
    return written
