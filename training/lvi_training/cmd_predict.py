"""``lvi predict``: the headless main job — one case, one or all bundled models, a report; or every case
of a cohort into predictions.csv."""

import sys
import time
from pathlib import Path

from LVIPredictorLib import inference, io, sequences, weights
from LVIPredictorLib.errors import LVIError

from . import atomic

REPORT_FILES = ("result.json", "overview.png")


def register(subparsers):
    p = subparsers.add_parser(
        "predict", help="predict LVI for one case (image + VOI) with bundled or trained weights",
        description="Predict lymphovascular invasion for one case. Give one series with --image/--mask/--sequence, "
                    "or FS-T2WI and/or DCE with --t2 IMAGE MASK / --dce IMAGE MASK (both for fused t2+dce "
                    "models). Images are NIfTI/NRRD/MHA files or DICOM series folders; masks label images "
                    "(ITK-SNAP NIfTI). Prints a table and writes result.json and overview.png (VOI and Grad-CAM "
                    "on the largest tumour slice); with --dicom-sr / --dicom-seg also a DICOM SR and SEG for PACS.")
    p.add_argument("--image", help="image file or DICOM series folder of one series (say which with --sequence)")
    p.add_argument("--mask", help="VOI label image for --image (any non-zero voxel = tumour)")
    p.add_argument("--t2", nargs=2, metavar=("IMAGE", "MASK"), help="FS-T2WI image (file or DICOM folder) and its VOI")
    p.add_argument("--dce", nargs=2, metavar=("IMAGE", "MASK"),
                   help="DCE image (file, or dynamic DICOM series: see --dce-phase) and its VOI")
    p.add_argument("--cohort", help="a cohort folder (cohort.csv; the lvi column may be empty): predict every case "
                                    "with every chosen model whose series the case has; writes predictions.csv")
    p.add_argument("--sequence", choices=sequences.ALL,
                   help="which sequence --image is; with --all: run only the models of this sequence (t2+dce: "
                        "the fused ones)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", action="append", metavar="ID_OR_CARD",
                       help="bundled model id or path to a model card JSON (repeatable)")
    which.add_argument("--all", action="store_true",
                       help="every bundled model whose sequences were given (default)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    p.add_argument("--dce-phase", type=int, default=2,
                   help="DCE phase to read from a dynamic DICOM series: 1 = pre-contrast, 2 = first "
                        "post-contrast (the study's '2nd phase'; default)")
    p.add_argument("--series-uid", help="pick one series of a DICOM folder that holds several (one input only); "
                                        "without it, a folder holding a whole study gives the series that fits "
                                        "the sequence (FS-T2WI or the dynamic DCE series) and says why")
    p.add_argument("--label", type=_label_value, metavar="N",
                   help="use only the voxels of label N of each VOI mask (a mask holding several labelled "
                        "structures); default: every non-zero voxel is tumour")
    p.add_argument("--out", default="lvi-report", help="report folder (default: ./lvi-report)")
    p.add_argument("--dicom-sr", metavar="OUT.dcm",
                   help="also write the prediction(s) as a DICOM Structured Report (TID 1500 measurement report: "
                        "probability, class, threshold, model id and weights SHA-256, referencing the source DICOM "
                        "series and the VOI); the images must be DICOM")
    p.add_argument("--dicom-seg", metavar="OUT.dcm",
                   help="also write the VOI as a DICOM Segmentation on the source series' geometry (with --t2 and "
                        "--dce both DICOM: OUT-t2.dcm and OUT-dce.dcm); the SR then references it")
    p.add_argument("--overwrite", action="store_true", help="replace a report already in --out (and existing "
                                                              "--dicom-sr / --dicom-seg files)")
    p.add_argument("--no-heatmap", action="store_true", help="skip Grad-CAM")
    p.set_defaults(func=run)


def _label_value(text):
    import argparse

    if not text.isdigit() or not 1 <= int(text) <= 255:
        raise argparse.ArgumentTypeError("a VOI label is a whole number 1..255, got {!r}".format(text))
    return int(text)


def _inputs(args, cards):
    """{sequence: (image path, mask path)} from --image/--mask or --t2/--dce."""
    single = args.image is not None or args.mask is not None
    if single and (args.t2 or args.dce):
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
    """Model cards chosen by --model, or None for --all (chosen once the inputs are known)."""
    if not args.model:
        return None
    cards = [weights.load_card(weights.resolve_card(m)) for m in args.model]
    for card in cards:
        if args.sequence and args.image is not None and card["sequence"] != args.sequence:
            raise LVIError(card["_card_path"], "is a {} model but --sequence is {}".format(card["sequence"],
                                                                                          args.sequence))
    return cards


def _bundled_cards(args, given):
    catalog = weights.bundled_catalog()
    if not catalog:
        raise LVIError(str(weights.models_dir()), "no bundled models found (catalog.json missing); "
                                                  "pass --model CARD.json")
    wanted = [e for e in catalog if set(sequences.channels(e["sequence"])) <= set(given)
              and (args.sequence is None or args.image is not None or e["sequence"] == args.sequence)]
    if not wanted:
        raise LVIError(str(weights.models_dir()), "no bundled model reads {}".format(
            args.sequence if args.sequence and args.image is None else " and ".join(sorted(given))))
    return [weights.load_card(e["card_path"]) for e in wanted]


def _phase_warning(card, read_phase):
    """A warning when the DCE phase read from a dynamic series is not the one the model was trained on."""
    trained_phase = int(card.get("dce_phase", 2))
    if sequences.reads_dce(card["sequence"]) and read_phase is not None and read_phase != trained_phase:
        return "DCE phase {} was read (--dce-phase) but model {} was trained on phase {}".format(
            read_phase, card["model_id"], trained_phase)
    return None


def run(args):
    from .report import write_report

    if args.cohort:
        if any(v is not None for v in (args.image, args.mask, args.t2, args.dce)):
            raise LVIError(args.cohort, "give either --cohort or one case's images, not both")
        if args.dicom_sr or args.dicom_seg:
            raise LVIError(args.cohort, "--dicom-sr and --dicom-seg write one case's DICOM report; they do not go "
                                        "with --cohort")
        return _predict_cohort(args)
    atomic.refuse_to_overwrite(args.out, REPORT_FILES, args.overwrite, describe="a report ({})")
    cards = _cards(args)
    inputs = _inputs(args, cards)
    dicom_outputs = _dicom_outputs(args, inputs)
    if cards is None:
        cards = _bundled_cards(args, inputs)
    for card in cards:
        lacking = [sequences.LABELS[s] for s in sequences.channels(card["sequence"]) if s not in inputs]
        if lacking:
            raise LVIError(card["_card_path"], "model {} needs {} as well: give --t2 IMAGE MASK and --dce IMAGE "
                                               "MASK".format(card["model_id"], " and ".join(lacking)))

    t0 = time.perf_counter()
    images, masks, infos = {}, {}, {}
    for name, (image_path, mask_path) in inputs.items():
        images[name], infos[name] = io.read_image_with_info(image_path, dce_phase=args.dce_phase,
                                                            series_uid=args.series_uid, sequence=name)
        masks[name] = io.read_mask(mask_path, reference=images[name], label=args.label)
        print("{}: {}".format(sequences.LABELS[name], infos[name].summary()))
        for line in infos[name].selection:
            print("  " + line)
    read_seconds = time.perf_counter() - t0
    sources = _dicom_sources(dicom_outputs, images, masks, infos, cards)

    predictions = []
    for card in cards:
        predictor = inference.Predictor(card, device=args.device)
        prediction = predictor.predict_case(
            images, masks, heatmap=not args.no_heatmap,
            image_sources={n: str(p[0]) for n, p in inputs.items()},
            mask_sources={n: str(p[1]) for n, p in inputs.items()},
            series_descriptions={n: info.series_description for n, info in infos.items()})
        phase_note = _phase_warning(card, infos["dce"].phase if "dce" in infos else None)
        if phase_note:
            prediction.warnings.insert(0, phase_note)
        predictions.append(prediction)
    print()
    print("{:<30} {:>11} {:>6} {:>9} {:>6}".format("model", "probability", "class", "threshold", "device"))
    for p in predictions:
        print("{:<30} {:>11.3f} {:>6} {:>9.3f} {:>6}".format(p.model_id, p.probability, "LVI+" if p.label else "LVI-",
                                                            p.threshold, p.device))
        for member, probability in p.member_probabilities.items():
            print("  {:<28} {:>11.3f}   (late-fusion member)".format(member, probability))
    warnings = [w for info in infos.values() for w in info.warnings]
    for p in predictions:
        for w in p.warnings:
            if w not in warnings:
                warnings.append(w)
    for w in warnings:
        print("warning: {}".format(w))

    # The overview shows DCE when it was given (the grid fused models crop on), else the one series.
    shown = sequences.GRID_REFERENCE if sequences.GRID_REFERENCE in inputs else next(iter(inputs))
    image, mask = images[shown], masks[shown]
    mask_on_grid = mask if io.same_geometry(mask, image) else _mask_on_image_grid(mask, image)
    series = {n: {"image": str(p[0]), "mask": str(p[1]), "image_info": infos[n].summary(),
                  "series_selection": infos[n].selection} for n, p in inputs.items()}
    json_path, png_path = write_report(args.out, image, mask_on_grid, predictions, dict(
        series, read_seconds=read_seconds, shown=shown), shown)
    print()
    print("report: {}".format(Path(args.out).resolve()))
    print("  {}\n  {}".format(json_path, png_path))
    if sources:
        for written in _write_dicom_results(dicom_outputs, sources, predictions, args):
            print("  {}".format(written))
    return 0


def _dicom_outputs(args, inputs):
    """{"sr": path or None, "seg": {sequence: path}} for --dicom-sr / --dicom-seg; existing files are refused
    before anything is read (unless --overwrite)."""
    from LVIPredictorLib.dicom_results import refuse_existing, segmentation_paths

    seg = segmentation_paths(args.dicom_seg, list(inputs)) if args.dicom_seg else {}
    outputs = {"sr": args.dicom_sr, "seg": seg}
    for path in [outputs["sr"]] + list(seg.values()):
        if path is not None:
            refuse_existing(path, args.overwrite)
    return outputs


def _dicom_sources(outputs, images, masks, infos, cards):
    """The DICOM series behind each input, checked before any model runs (the images must be DICOM)."""
    from LVIPredictorLib.dicom_results import dicom_source

    if outputs["sr"] is None and not outputs["seg"]:
        return {}
    label = weights.voi_label(cards[0]) if cards else None
    return {name: dicom_source(name, images[name], masks[name], infos[name], label=label) for name in images}


def _write_dicom_results(outputs, sources, predictions, args):
    from LVIPredictorLib.dicom_results import write_report, write_segmentation

    written, segmentations = [], {}
    for name, path in outputs["seg"].items():
        segmentations[name] = write_segmentation(sources[name], path, overwrite=args.overwrite)
        written.append("{} (DICOM SEG, {} VOI)".format(path, sequences.LABELS[name]))
    if outputs["sr"] is not None:
        write_report(predictions, sources, outputs["sr"], segmentations=segmentations, overwrite=args.overwrite)
        written.append("{} (DICOM SR)".format(outputs["sr"]))
    return written


COHORT_FILES = ("predictions.csv", "errors.csv")


def _predict_cohort(args):
    """Every case of a cohort with every chosen model whose series it has: predictions.csv
    (and errors.csv, exit code 1, when some case could not be predicted; the others still are)."""
    import csv
    import io as text_io

    from .cohort import load_cohort, validate_cohort
    from .external import predict_cohort_case

    out = Path(args.out)
    atomic.refuse_to_overwrite(out, COHORT_FILES, args.overwrite)
    cohort = load_cohort(args.cohort)
    validate_cohort(cohort, read_images=False, labels=False).raise_if_problems()
    cards = _cards(args)
    if cards is None:
        cards = _bundled_cards(args, sequences.SEQUENCES)
    predictors = [inference.Predictor(card, device=args.device) for card in cards]
    rows, errors = [], []
    for number, case in enumerate(cohort.cases, start=1):
        read = {}  # each series of the case is read once, for every model that needs it
        for predictor in predictors:
            names = predictor.sequences
            if not case.has(predictor.card["sequence"]):
                continue
            try:
                prediction = predict_cohort_case(predictor, case, args.dce_phase, read, label=args.label)
            except LVIError as exc:
                errors.append([case.case_id, predictor.model_id, str(exc)])
                continue
            phase_note = _phase_warning(predictor.card, read["dce"][2].phase if "dce" in names else None)
            warnings = ([phase_note] if phase_note else []) + [w for w in prediction.warnings
                                                               if w != weights.DEMO_NOTICE]
            rows.append([case.case_id, case.patient_id, prediction.model_id, prediction.sequence,
                         "{:.6f}".format(prediction.probability), "LVI+" if prediction.label else "LVI-",
                         "{:.6f}".format(prediction.threshold), "yes" if prediction.demo else "no",
                         " | ".join(warnings)])
        if sys.stdout.isatty():
            print("\r{} / {} cases".format(number, len(cohort.cases)), end="", flush=True)
    if sys.stdout.isatty():
        print()

    def table(header, body):
        buffer = text_io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body)
        return buffer.getvalue()

    out.mkdir(parents=True, exist_ok=True)
    atomic.save_text(table(["case_id", "patient_id", "model_id", "sequence", "probability", "class", "threshold",
                            "demo", "warnings"], rows), out / "predictions.csv")
    if errors:
        atomic.save_text(table(["case_id", "model_id", "error"], errors), out / "errors.csv")
    elif (out / "errors.csv").exists():
        (out / "errors.csv").unlink()  # from an earlier run being overwritten: no longer true
    print("{} prediction(s) for {} case(s) with {} model(s): {}".format(
        len(rows), len({r[0] for r in rows}), len(predictors), out / "predictions.csv"))
    if any(p.card.get("demo") for p in predictors):
        print("note: {}".format(weights.DEMO_NOTICE))
    if errors:
        print("{} case/model pair(s) could not be predicted; see {}".format(len(errors), out / "errors.csv"))
        for case_id, model_id, message in errors[:5]:
            print("  {} / {}: {}".format(case_id, model_id, message))
        return 1
    return 0


def _mask_on_image_grid(mask, image):
    import SimpleITK as sitk
    return sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
