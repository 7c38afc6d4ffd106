"""``lvi predict``: the headless main job — one case, one or all bundled models, a report."""

import time
from pathlib import Path

from LVIPredictorLib import inference, io, weights
from LVIPredictorLib.errors import LVIError


def register(subparsers):
    p = subparsers.add_parser(
        "predict", help="predict LVI for one case (image + VOI) with bundled or trained weights",
        description="Predict lymphovascular invasion for one case. The image is a NIfTI/NRRD/MHA file or a "
                    "DICOM series folder; the VOI mask a label image (ITK-SNAP NIfTI). Prints a table and "
                    "writes result.json and overview.png (VOI and Grad-CAM on the largest tumour slice).")
    p.add_argument("--image", required=True, help="image file or DICOM series folder")
    p.add_argument("--mask", required=True, help="VOI label image (any non-zero voxel = tumour)")
    p.add_argument("--sequence", choices=("t2", "dce"),
                   help="which sequence the image is (with --all: run only that sequence's models)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", action="append", metavar="ID_OR_CARD",
                       help="bundled model id or path to a model card JSON (repeatable)")
    which.add_argument("--all", action="store_true", help="every bundled model of the sequence (default)")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    p.add_argument("--dce-phase", type=int, default=2,
                   help="DCE phase to read from a dynamic DICOM series: 1 = pre-contrast, 2 = first "
                        "post-contrast (the study's '2nd phase'; default)")
    p.add_argument("--series-uid", help="pick one series of a DICOM folder that holds several")
    p.add_argument("--out", default="lvi-report", help="report folder (default: ./lvi-report)")
    p.add_argument("--no-heatmap", action="store_true", help="skip Grad-CAM")
    p.set_defaults(func=run)


def _cards_for(args):
    if args.model:
        return [weights.resolve_card(m) for m in args.model]
    catalog = weights.bundled_catalog()
    if not catalog:
        raise LVIError(str(weights.models_dir()), "no bundled models found (catalog.json missing); "
                                                  "pass --model CARD.json")
    entries = [e for e in catalog if args.sequence is None or e["sequence"] == args.sequence]
    if not entries:
        raise LVIError(str(weights.models_dir()), "no bundled model for sequence {}".format(args.sequence))
    return [Path(e["card_path"]) for e in entries]


def run(args):
    from .report import write_report

    t0 = time.perf_counter()
    image, info = io.read_image_with_info(args.image, dce_phase=args.dce_phase, series_uid=args.series_uid)
    mask = io.read_mask(args.mask, reference=image)
    read_seconds = time.perf_counter() - t0
    print("image: {}".format(info.summary()))
    predictions = []
    for card_path in _cards_for(args):
        card = weights.load_card(card_path)
        if args.sequence and card["sequence"] != args.sequence:
            raise LVIError(str(card_path), "is a {} model but --sequence is {}".format(card["sequence"], args.sequence))
        predictor = inference.Predictor(card, device=args.device)
        predictions.append(predictor.predict(image, mask, heatmap=not args.no_heatmap, image_source=str(args.image),
                                             mask_source=str(args.mask), series_description=info.series_description))
    print()
    print("{:<30} {:>11} {:>6} {:>9} {:>6}".format("model", "probability", "class", "threshold", "device"))
    for p in predictions:
        print("{:<30} {:>11.3f} {:>6} {:>9.3f} {:>6}".format(p.model_id, p.probability, "LVI+" if p.label else "LVI-",
                                                            p.threshold, p.device))
    warnings = []
    for p in predictions:
        for w in p.warnings:
            if w not in warnings:
                warnings.append(w)
    for w in list(info.warnings) + warnings:
        print("warning: {}".format(w))
    mask_on_grid = mask if io.same_geometry(mask, image) else _mask_on_image_grid(mask, image)
    json_path, png_path = write_report(args.out, image, mask_on_grid, predictions, {
        "image": str(args.image), "mask": str(args.mask), "image_info": info.summary(),
        "read_seconds": read_seconds})
    print()
    print("report: {}".format(Path(args.out).resolve()))
    print("  {}\n  {}".format(json_path, png_path))
    return 0


def _mask_on_image_grid(mask, image):
    import SimpleITK as sitk
    return sitk.Resample(mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
