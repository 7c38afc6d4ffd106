"""``lvi predict``: the headless main job — one case, one or all bundled models, a report; or every case
of a cohort into predictions.csv."""

import sys
import time
from pathlib import Path

from LVIPredictorLib import clinical, weights
from LVIPredictorLib.atomic_files import StagedFiles
from LVIPredictorLib.dicom import sr_seg
from LVIPredictorLib.errors import LVIError
from LVIPredictorLib.service import CaseService, outputs, record, series_from_files
from LVIPredictorLib.service.case import clinical_given
from LVIPredictorLib.vocabulary import kinds, sequences

from . import clinical_predict as clinical_hook
from .commands import help_of


def register(subparsers):
    p = subparsers.add_parser(
        "predict", help=help_of("predict"),
        description="Predict lymphovascular invasion for one case. Give one series with --image/--mask/--sequence, "
                    "or FS-T2WI and/or DCE with --t2 IMAGE MASK / --dce IMAGE MASK (both for fused t2+dce "
                    "models). Images are NIfTI/NRRD/MHA files or DICOM series folders; masks label images "
                    "(ITK-SNAP NIfTI). Prints a table and writes result.json and overview.png (VOI and heat-maps "
                    "on the largest tumour slice); with --dicom-sr / --dicom-seg also a DICOM SR and SEG for PACS.")
    p.add_argument("--image", help="image file or DICOM series folder of one series (say which with --sequence)")
    p.add_argument("--mask", help="VOI label image for --image (any non-zero voxel = tumour)")
    for sequence in sequences.REGISTRY.values():  # --t2, --dce: one option per registered sequence
        p.add_argument("--" + sequence.name, nargs=2, metavar=("IMAGE", "MASK"),
                       help="{} image ({}) and its VOI".format(sequence.label, "file, or dynamic DICOM series: see "
                                                               "--dce-phase" if sequence.dynamic else
                                                               "file or DICOM folder"))
    p.add_argument("--cohort", help="a cohort folder (cohort.csv; the lvi column may be empty): predict every case "
                                    "with every chosen model whose series the case has; writes predictions.csv")
    p.add_argument("--sequence", choices=sequences.ALL,
                   help="which sequence --image is; with --all: run only the models of this sequence (t2+dce: "
                        "the fused ones)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", action="append", metavar="ID_OR_CARD",
                       help="bundled model id or path to a model card JSON (repeatable)")
    which.add_argument("--all", action="store_true",
                       help="every bundled model whose sequences were given (default; the combined clinical + imaging "
                            "model only with --clinical)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    p.add_argument("--dce-phase", type=int, default=None,
                   help="read this phase of a dynamic DCE series for every model (1 = pre-contrast, 2 = first "
                        "post-contrast, the study's '2nd phase'); a model trained on another phase is flagged. "
                        "Default: each model reads the phase its card was trained on")
    p.add_argument("--series-uid", help="pick one series of a DICOM folder that holds several (one input only); "
                                        "without it, a folder holding a whole study gives the series that fits "
                                        "the sequence (FS-T2WI or the dynamic DCE series) and says why")
    p.add_argument("--label", type=_label_value, metavar="N",
                   help="use only the voxels of label N of each VOI mask (a mask holding several labelled "
                        "structures); without it every non-zero voxel is tumour")
    p.add_argument("--out", default="lvi-report", help="report folder (default: ./lvi-report)")
    p.add_argument("--dicom-sr", metavar="OUT.dcm",
                   help="also write the prediction(s) as a DICOM Structured Report (TID 1500 measurement report: "
                        "probability, class, threshold, model id and weights SHA-256, referencing the source DICOM "
                        "series and the VOI); the images must be DICOM")
    p.add_argument("--dicom-seg", metavar="OUT.dcm",
                   help="also write the VOI as a DICOM Segmentation on the source series' geometry (with --t2 and "
                        "--dce both DICOM: OUT-t2.dcm and OUT-dce.dcm); the SR then references it")
    p.add_argument("--voi-author", metavar="FAMILY^GIVEN",
                   help="who drew the VOI, as a DICOM person name (e.g. 'Doe^Jane'): the SR's person observer and "
                        "the SEG's content creator. Without it both say the author is unknown")
    p.add_argument("--overwrite", action="store_true", help="replace a report already in --out (and existing "
                                                              "--dicom-sr / --dicom-seg files)")
    p.add_argument("--no-heatmap", action="store_true",
                   help="skip the heat-maps (each card names its method, e.g. Grad-CAM at a chosen layer)")
    p.add_argument("--clinical", metavar="NAME=VALUE,...|ROW.csv",
                   help="the case's clinical values for a combined (clinical + imaging) model: e.g. "
                        "age=61,tumour_size_mm=24,mri_aln=1,peritumoral_edema=0,her2=0,ki67=30 (an empty or absent "
                        "value is missing and filled as the card states; at least one value), or a CSV file with a "
                        "header and one row. Without it the bundled combined model is not run. With --cohort, each "
                        "case's values come from cohort.csv's clinical columns instead")
    p.set_defaults(func=run)


def _label_value(text):
    import argparse

    if not text.isdigit() or not 1 <= int(text) <= 255:
        raise argparse.ArgumentTypeError("a VOI label is a whole number 1..255, got {!r}".format(text))
    return int(text)


def _inputs(args, cards):
    """{sequence: (image path, mask path)} from --image/--mask or --t2/--dce."""
    single = args.image is not None or args.mask is not None
    if single and any(getattr(args, name) for name in sequences.SEQUENCES):
        raise LVIError(None, "give either --image/--mask or --t2/--dce, not both")
    if not single:
        inputs = {name: tuple(getattr(args, name)) for name in sequences.SEQUENCES if getattr(args, name)}
        if not inputs:
            raise LVIError(None, "no input: give --image and --mask (with --sequence), or --t2 and/or --dce")
        if args.series_uid and len(inputs) > 1:
            raise LVIError(None, "--series-uid picks a series of one input; give the series folders instead")
        return inputs
    if args.image is None or args.mask is None:
        raise LVIError(None, "--image and --mask go together")
    sequence = args.sequence
    if sequence is None and cards:
        named = {c["sequence"] for c in cards}
        sequence = named.pop() if len(named) == 1 else None
    if sequence not in sequences.SEQUENCES:
        raise LVIError(args.image, "say which sequence this image is with --sequence t2 or --sequence dce (a "
                                   "fused t2+dce model needs --t2 IMAGE MASK and --dce IMAGE MASK)")
    return {sequence: (args.image, args.mask)}


def _cards(args):
    """Model cards chosen by --model, or None for every bundled model that fits (chosen once the inputs are known)."""
    if not args.model:
        return None
    cards = [weights.load_card(weights.resolve_card(m)) for m in args.model]
    clinical_hook.check_cards(cards, args)
    for card in cards:
        if args.sequence and args.image is not None and card["sequence"] != args.sequence:
            raise LVIError(card["_card_path"], "is a {} model but --sequence is {}".format(card["sequence"],
                                                                                          args.sequence))
    return cards


def _chosen(service, args, given, cards, clinical_values=None):
    """(the cards to run on the series ``given``, notes on bundled models left out): --model's cards, else
    every bundled model that fits (with --sequence and --t2/--dce: only that sequence's models, e.g. the
    fused ones); bundled combined (clinical + imaging) models only with --clinical."""
    only = args.sequence if args.sequence and args.image is None else None
    if args.clinical and not clinical_given(clinical_values):
        raise LVIError("--clinical", "gives no value (each is empty or NA); leave --clinical out, or give at least "
                                     "one of {}".format(", ".join(clinical.NAMES)))
    chosen, refused = service.choose(given, cards, sequence=only, clinical=clinical_values)
    if refused:
        card, why = refused[0]
        raise LVIError(card["_card_path"], why + ": give --t2 IMAGE MASK and --dce IMAGE MASK")
    if not chosen:
        raise LVIError(str(weights.models_dir()), "no bundled model reads {}".format(_series_words(only, given)))
    if cards:
        return chosen, []
    if args.clinical and not any(kinds.needs_clinical(card) for card in chosen):
        raise LVIError("--clinical", "no bundled combined (clinical + imaging) model reads {}; clinical data "
                                     "would not be used".format(_series_words(only, given)))
    clinical_hook.check_cards(chosen, args)  # a bad value stops the command before any image is read
    notes = ["not run: {} combines clinical data with the images; give them with --clinical {}".format(
        entry["model_id"], ",".join(n + "=..." for n in entry.get("clinical_inputs", [])))
        for entry in service.skipped_for_clinical(given, sequence=only, clinical=clinical_values)]
    return chosen, notes


def _series_words(only, given):
    """E.g. "FS-T2WI" or "FS-T2WI and DCE", as the user knows the series."""
    return sequences.LABELS[only] if only else " and ".join(sequences.LABELS[n] for n in sorted(given))


def run(args):
    if args.cohort:
        if any(getattr(args, name) is not None for name in ("image", "mask") + sequences.SEQUENCES):
            raise LVIError(args.cohort, "give either --cohort or one case's images, not both")
        if args.dicom_sr or args.dicom_seg:
            raise LVIError(args.cohort, "--dicom-sr and --dicom-seg write one case's DICOM report; they do not go "
                                        "with --cohort")
        return _predict_cohort(args)
    cards = _cards(args)
    paths = _inputs(args, cards)
    if args.voi_author is not None and not (args.dicom_sr or args.dicom_seg):
        raise LVIError("--voi-author", "names the VOI's author in the DICOM SR and SEG: give --dicom-sr and/or "
                                       "--dicom-seg as well")
    voi_author = sr_seg.check_person_name(args.voi_author, "--voi-author")
    # Every output checked (writable, distinct, not an input, no link) before any work.
    out_paths = outputs.case_outputs(args.out, args.dicom_sr, args.dicom_seg, list(paths),
                                     inputs=[p for pair in paths.values() for p in pair], overwrite=args.overwrite)
    service = CaseService(device=args.device)
    clinical_values = clinical_hook.clinical_input(args.clinical)
    cards, notes = _chosen(service, args, list(paths), cards, clinical_values)
    unread = clinical_hook.unread_columns(clinical_values, args.clinical)
    if unread:
        notes.append("note: {} column(s) {} are not clinical columns and were not read (the columns are {})".format(
            args.clinical, ", ".join(unread), ", ".join(clinical.NAMES)))

    started = time.perf_counter()
    inputs = {}
    for name, (image_path, mask_path) in paths.items():
        inputs[name] = series_from_files(name, image_path, mask_path, dce_phase=args.dce_phase,
                                         series_uid=args.series_uid, label=args.label)
        print("{}: {}".format(sequences.LABELS[name], inputs[name].summary))
        for line in inputs[name].selection:
            print("  " + line)
    read_seconds = time.perf_counter() - started
    sources = {}
    if out_paths["sr"] is not None or out_paths["seg"]:
        sources = outputs.dicom_sources(inputs, list(inputs), label=weights.voi_label(cards[0]))

    result = service.predict(inputs, cards, heatmap=not args.no_heatmap, clinical=clinical_values)
    result.read_seconds = read_seconds
    _print_table(result)
    for note in notes:
        print(note)
    written = outputs.write_case_outputs(result, out_paths, sources, overwrite=args.overwrite, voi_author=voi_author)
    print()
    print("report: {}".format(Path(args.out).resolve()))
    for line in written:
        print("  {}".format(line))
    return 0


def _print_table(result):
    print()
    print("{:<30} {:>11} {:>6} {:>9} {:>6}".format("model", "probability", "class", "threshold", "device"))
    for p in result.predictions:
        print("{:<30} {:>11.3f} {:>6} {:>9.3f} {:>6}".format(p.model_id, p.probability, "LVI+" if p.label else "LVI-",
                                                            p.threshold, p.device))
        role = "(its imaging model)" if p.architecture == kinds.COMBINED else "(late-fusion member)"
        for member, probability in p.member_probabilities.items():
            print("  {:<28} {:>11.3f}   {}".format(member, probability, role))
    for w in result.warnings():
        print("warning: {}".format(w))


COHORT_FILES = ("predictions.csv", "errors.csv")


def _predict_cohort(args):
    """Every case of a cohort with every chosen model whose series it has: predictions.csv
    (and errors.csv, exit code 1, when some case could not be predicted; the others still are)."""
    from .cohort import load_cohort, validate_cohort
    from .external import predict_cohort_case

    out = Path(args.out)
    outputs.check_output_folder(out, COHORT_FILES, args.overwrite,
                                inputs=[Path(args.cohort) / "cohort.csv"])
    cohort = load_cohort(args.cohort)
    validate_cohort(cohort, read_images=False, labels=False).raise_if_problems()
    service = CaseService(device=args.device)
    # Bundled combined models run too when the cohort has clinical columns with values (each case its own).
    values = next((case.clinical for case in cohort.cases if clinical_given(
        {name: case.clinical.get(name) for name in clinical.NAMES})), None)
    cards = _cards(args) or service.choose(sequences.SEQUENCES, clinical=values)[0]
    rows, errors = [], []
    for number, case in enumerate(cohort.cases, start=1):
        for _card, prediction in predict_cohort_case(service, case, cards, args.dce_phase, errors,
                                                     label=args.label):
            rows.append([case.case_id, case.patient_id] + list(record.row(prediction).values()))
        if sys.stdout.isatty():
            print("\r{} / {} cases".format(number, len(cohort.cases)), end="", flush=True)
    if sys.stdout.isatty():
        print()
    with StagedFiles() as files:  # both tables or neither
        files.write_bytes(out / "predictions.csv",
                          _csv(["case_id", "patient_id"] + list(record.COLUMN_NAMES), rows).encode("utf-8"))
        if errors:
            files.write_bytes(out / "errors.csv", _csv(["case_id", "model_id", "error"], errors).encode("utf-8"))
    if not errors and (out / "errors.csv").exists():
        (out / "errors.csv").unlink()  # from an earlier run being overwritten: no longer true
    print("{} prediction(s) for {} case(s) with {} model(s): {}".format(
        len(rows), len({r[0] for r in rows}), len(cards), out / "predictions.csv"))
    if any(card.get("demo") for card in cards):
        print("note: {}".format(weights.DEMO_NOTICE))
    if errors:
        print("{} case/model pair(s) could not be predicted; see {}".format(len(errors), out / "errors.csv"))
        for case_id, model_id, message in errors[:5]:
            print("  {} / {}: {}".format(case_id, model_id, message))
        return 1
    return 0


def _csv(header, body):
    import csv
    import io as text_io

    buffer = text_io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(body)
    return buffer.getvalue()
