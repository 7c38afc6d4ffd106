"""Which series of a whole study is the FS-T2WI, and which is the dynamic (DCE) series.

A study exported from PACS holds a localizer, the FS-T2WI, often a T2 without fat suppression,
the dynamic T1 series (one series, or one series per phase), diffusion, subtractions, MIPs. The
user says which sequence is wanted (``--sequence t2|dce``); the choice is made from DICOM
attributes, not only from the description, and is explained:

- not a candidate for either: a localizer (ImageType LOCALIZER, a localizer-like description,
  or several orientations in one series), diffusion (a b-value, DIFFUSION contrast, a DWI/ADC
  description), derived images (ImageType DERIVED/SECONDARY, subtractions, MIPs);
- **DCE**: a dynamic series — slice positions repeated once per phase and told apart by
  TemporalPositionIdentifier / TriggerTime / AcquisitionNumber / AcquisitionTime (or the frames
  of an enhanced image by their temporal position index), or a set of single-phase series on one
  grid with one description up to numbers, none of them T2-weighted (a series per phase); the
  phase is then ``dce_phase``;
- **FS-T2WI**: not dynamic, T2-weighted (AcquisitionContrast T2; or echo time >= 50 ms with
  repetition time >= 1500 ms; or STIR: inversion recovery with TI 100-250 ms; without timing
  tags, a T2/STIR/TIRM description), and fat-suppressed (ScanOptions FS/SFS, enhanced MR
  SpectrallySelectedSuppression FAT, STIR, or an fs/fatsat/SPAIR/SPIR/STIR/TIRM description). A
  T2 without fat suppression is taken only when it is the only T2, with a warning.

Two or more equally good candidates are an error that lists them, each with the ``--series-uid``
option that picks it; no candidate is an error that lists every series and why it was not taken.
"""

import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from LVIPredictorLib.errors import InputError

# How an ambiguity error tells each kind of caller to choose.
CHOOSE_WITH = ("choose one with --series-uid (series_uid= in Python; in a cohort.csv, name the series' own "
               "folder)")
T2_ECHO_MS = 50.0
T2_REPETITION_MS = 1500.0
STIR_INVERSION_MS = (100.0, 250.0)

_LOCALIZER_WORDS = re.compile(r"locali[sz]er|scout|survey|3[-_ ]?plane|tri[-_ ]?pilot|aahead|\bpilot", re.I)
_DIFFUSION_WORDS = re.compile(r"(^|[^a-z])(dwi|diff|adc|ep2d_diff|resolve|trace|tracew|ivim)([^a-z]|$)", re.I)
_DERIVED_WORDS = re.compile(r"(^|[^a-z])(sub|subtract\w*|mip|mpr|pemip)([^a-z]|$)", re.I)
_T2_WORDS = re.compile(r"(^|[^a-z0-9])(t2\w*|stir|tirm)([^a-z]|$)", re.I)
_FAT_SUPPRESSION_WORDS = {"fs", "fatsat", "fsat", "spair", "spir", "stir", "tirm", "fatsup", "fatsupp"}
# ScanOptions defined terms: FS = fat saturation; SFS (Philips/GE) = spectral fat saturation.
_FAT_SUPPRESSION_OPTIONS = {"FS", "SFS"}


@dataclass
class Judgement:
    """What one series (or one set of per-phase series) is, and why."""

    series: list  # SeriesInfo objects: one, or the per-phase series of one dynamic acquisition
    role: str  # "localizer", "diffusion", "derived", "dce", "fs-t2", "t2", "other"
    reasons: List[str] = field(default_factory=list)

    def label(self, uid: bool = True) -> str:
        first = self.series[0]
        if len(self.series) == 1:
            return first.describe(uid)
        return "{} series '{}' (one per phase, series {}), e.g. {}".format(
            len(self.series), first.description, ", ".join(str(s.number) for s in self.series), first.describe(uid))

    def why(self) -> str:
        return "; ".join(self.reasons)


@dataclass
class Selection:
    """The series chosen for a sequence, why, and what else the folder held."""

    series: list  # one SeriesInfo, or the per-phase series of one DCE acquisition (in any order)
    reason: str
    others: List[str]
    warning: Optional[str] = None


def judge(series) -> Judgement:
    """Classify one series by its attributes (see the module docstring)."""
    a = series.attributes
    text = " ".join((a.description, a.protocol_name, a.sequence_name))
    orientations = {tuple(round(v, 3) for v in h.orientation) for h in series._headers if h.orientation}
    if "LOCALIZER" in a.image_type or _LOCALIZER_WORDS.search(text):
        return Judgement([series], "localizer", ["a localizer ({})".format(
            "ImageType LOCALIZER" if "LOCALIZER" in a.image_type else "described as one")])
    if len(orientations) > 1:
        return Judgement([series], "localizer", ["{} slice orientations in one series (a localizer?)".format(
            len(orientations))])
    if (a.diffusion_b_value is not None) or a.acquisition_contrast == "DIFFUSION" or \
            {"DIFFUSION", "ADC", "TRACEW"} & set(a.image_type) or _DIFFUSION_WORDS.search(text):
        return Judgement([series], "diffusion", ["diffusion-weighted ({})".format(
            "b-value {:g}".format(a.diffusion_b_value) if a.diffusion_b_value is not None else "by its attributes")])
    if (a.image_type[:1] and a.image_type[0] in ("DERIVED", "SECONDARY")) or _DERIVED_WORDS.search(text):
        return Judgement([series], "derived", ["derived images ({})".format(
            "ImageType " + "\\".join(a.image_type[:2]) if a.image_type[:1] and a.image_type[0] in
            ("DERIVED", "SECONDARY") else "subtraction/MIP by its description")])
    timing = _timing(a)
    if series.n_phases > 1:
        return Judgement([series], "dce", ["dynamic: {} phases at each of {} slice positions{}".format(
            series.n_phases, series.n_slices, _told_apart(series))] + ([timing] if timing else []))
    weighted = _t2_weighting(a, text)
    if weighted is None:
        return Judgement([series], "other", ["not dynamic, not T2-weighted" + (" ({})".format(timing) if timing else
                                                                              " (no echo/repetition time)")])
    fat = _fat_suppression(a, text)
    if fat is None:
        return Judgement([series], "t2", [weighted, "no fat suppression in its headers (ScanOptions {})".format(
            "\\".join(a.scan_options) or "empty")])
    return Judgement([series], "fs-t2", [weighted, fat, "not dynamic"])


def choose(all_series: Sequence, sequence: str, folder: str) -> Selection:
    """The series for ``sequence`` ("t2" or "dce") among ``all_series``; InputError when none or several fit."""
    judgements = [judge(s) for s in all_series]
    judgements = _merge_phase_series(judgements)
    if sequence == "dce":
        candidates = [j for j in judgements if j.role == "dce"]
        wanted, fallback = "dynamic (DCE)", []
    elif sequence == "t2":
        candidates = [j for j in judgements if j.role == "fs-t2"]
        wanted, fallback = "FS-T2WI", [j for j in judgements if j.role == "t2"]
    else:
        raise ValueError("sequence must be 't2' or 'dce' to choose a series, got {!r}".format(sequence))
    warning = None
    if not candidates and len(fallback) == 1:
        candidates = fallback
        warning = ("{} has no fat suppression in its headers; the FS-T2WI models were trained on fat-suppressed T2 "
                   "images".format(fallback[0].label()))
    elif not candidates and fallback:
        wanted = "T2-weighted"
        candidates = fallback
    if len(candidates) > 1:
        raise InputError(folder, "holds {} {} series; {}:\n{}".format(
            len(candidates), wanted, CHOOSE_WITH, "\n".join(_option_line(j) for j in candidates)))
    if not candidates:
        raise InputError(folder, "holds no {} series; it holds:\n{}".format(wanted, "\n".join(
            "  - {}: {}".format(j.label(), j.why()) for j in judgements)))
    chosen = candidates[0]
    others = ["{}: {}".format(j.label(), j.why()) for j in judgements if j is not chosen]
    return Selection(series=chosen.series, reason="{} is the {} series: {}".format(
        chosen.label(), "FS-T2WI" if sequence == "t2" else "DCE", chosen.why()), others=others, warning=warning)


def sequence_warning(series, sequence: str) -> Optional[str]:
    """A warning when the only series of a folder looks like the other sequence than the one asked for."""
    judgement = judge(series)
    if sequence == "t2" and judgement.role == "dce":
        return "{} was read as FS-T2WI but looks dynamic (DCE): {}".format(judgement.label(), judgement.why())
    if sequence == "dce" and judgement.role in ("fs-t2", "t2"):
        return "{} was read as DCE but looks T2-weighted: {}".format(judgement.label(), judgement.why())
    if judgement.role in ("localizer", "diffusion"):
        return "{} looks like {}: {}".format(judgement.label(), "a localizer" if judgement.role == "localizer"
                                             else "diffusion", judgement.why())
    return None


def listing(all_series: Sequence) -> str:
    """Every series with the --series-uid option that picks it."""
    return "\n".join(_option_line(judge(s)) for s in all_series)


def _option_line(judgement: Judgement) -> str:
    if len(judgement.series) > 1:
        # A series per phase: the option picks one phase's series, read as it is.
        return "  {}: {}; the series of one phase: {}".format(judgement.label(uid=False), judgement.why(), ", ".join(
            "--series-uid {} (series {})".format(s.uid, s.number) for s in judgement.series))
    return "  --series-uid {}  {}: {}".format(judgement.series[0].uid, judgement.label(uid=False), judgement.why())


def _merge_phase_series(judgements: List[Judgement]) -> List[Judgement]:
    """Single-phase series of one dynamic acquisition (a series per phase) become one DCE candidate."""
    groups = {}
    for judgement in judgements:
        if judgement.role == "other":
            key = phase_group_key(judgement.series[0])
            if key is not None:
                groups.setdefault(key, []).append(judgement)
    merged = {}
    for members in groups.values():
        series = [j.series[0] for j in members]
        if len(series) > 1 and series_are_phases(series):
            combined = Judgement(series, "dce", ["dynamic: {} single-phase series on one grid, one description up "
                                                 "to numbers".format(len(series))])
            for j in members:
                merged[id(j)] = combined
    out, seen = [], set()
    for judgement in judgements:
        item = merged.get(id(judgement), judgement)
        if id(item) not in seen:
            seen.add(id(item))
            out.append(item)
    return out


def description_stem(description: str) -> str:
    return re.sub(r"\d+", "#", description.strip().lower())


def slice_grid(headers):
    """(rows, columns, orientation, set of slice positions), or None when a slice cannot be placed."""
    if any(h.position is None or h.orientation is None for h in headers):
        return None
    first = headers[0]
    return (first.rows, first.columns, tuple(round(v, 4) for v in first.orientation),
            frozenset(h.position_key() for h in headers))


def phase_group_key(series):
    """Series that may be phases of one acquisition share this key (description stem and grid)."""
    grid = slice_grid(series._headers)
    return None if grid is None else (description_stem(series.description), grid)


def series_are_phases(series: Sequence) -> bool:
    """One series per DCE phase: same slices, same description up to numbers, no repeats within,
    and none of them T2-weighted, a localizer, diffusion or derived images.

    Requiring the same description stem keeps a T1 and a T2 acquired on the same grid apart; the
    roles keep a repeated T2 (the same protocol run twice) from passing for two phases.
    """
    keys = {phase_group_key(s) for s in series}
    return len(keys) == 1 and None not in keys and all(judge(s).role == "other" for s in series)


def _timing(a) -> str:
    parts = []
    if a.echo_time is not None:
        parts.append("TE {:g} ms".format(a.echo_time))
    if a.repetition_time is not None:
        parts.append("TR {:g} ms".format(a.repetition_time))
    if a.inversion_time is not None:
        parts.append("TI {:g} ms".format(a.inversion_time))
    return ", ".join(parts)


def _told_apart(series) -> str:
    if len(series.temporal_positions) > 1:
        return " (TemporalPositionIdentifier {})".format(series.temporal_positions)
    if len(series.trigger_times) > 1:
        return " (TriggerTime)"
    return ""


def _is_stir(a) -> bool:
    return ("IR" in a.scanning_sequence and a.inversion_time is not None and
            STIR_INVERSION_MS[0] <= a.inversion_time <= STIR_INVERSION_MS[1])


def _t2_weighting(a, text: str) -> Optional[str]:
    """Why the series is T2-weighted, or None."""
    if a.acquisition_contrast == "T2":
        return "T2-weighted (AcquisitionContrast T2)"
    if a.acquisition_contrast and a.acquisition_contrast not in ("UNKNOWN", "MIXED"):
        return None
    if _is_stir(a) and (a.repetition_time or 0) >= T2_REPETITION_MS:
        return "T2-weighted STIR (inversion recovery, {})".format(_timing(a))
    if a.echo_time is not None and a.repetition_time is not None:
        if a.echo_time >= T2_ECHO_MS and a.repetition_time >= T2_REPETITION_MS:
            return "T2-weighted ({})".format(_timing(a))
        return None
    if _T2_WORDS.search(text):
        return "T2-weighted by its description only (no echo/repetition time)"
    return None


def _fat_suppression(a, text: str) -> Optional[str]:
    """Why the series is fat-suppressed, or None."""
    options = set(a.scan_options) & _FAT_SUPPRESSION_OPTIONS
    if options:
        return "fat-suppressed (ScanOptions {})".format("\\".join(sorted(options)))
    if a.fat_suppression in ("FAT", "FAT_AND_WATER", "SILICONE_AND_FAT"):
        return "fat-suppressed (SpectrallySelectedSuppression {})".format(a.fat_suppression)
    if _is_stir(a):
        return "fat-suppressed (STIR)"
    words = {w for w in re.split(r"[^a-z0-9]+", text.lower()) if w}
    found = sorted(words & _FAT_SUPPRESSION_WORDS)
    if found:
        return "fat-suppressed by its description ({})".format(", ".join(found))
    return None
