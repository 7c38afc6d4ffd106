"""``lvi export RUN --out STEM [--format torchscript|onnx]``: weights (safetensors) + model card that
Predictor and Slicer load, and the network as TorchScript/ONNX for other tools; ``lvi export CARD.json
--format ...`` adds those files to an existing card (a bundled one, say)."""

from pathlib import Path

from LVIPredictorLib.errors import InputError

from .commands import help_of
from .export import export_run
from .interchange_formats import FORMATS, export_card, interchange_path


def register(subparsers):
    p = subparsers.add_parser(
        "export", help=help_of("export"),
        description="Export the model of a finished run: the paper split's single model (threshold: Youden's J on "
                    "its training predictions); for cv5, the five fold models averaged when the run's recipe has a "
                    "fold ensemble (the small-data default), else the model trained on all cases after CV "
                    "(threshold either way: Youden's J on the out-of-fold predictions). The card holds the "
                    "architecture, preprocessing spec, threshold, held-out metrics with CIs, training command, "
                    "seed, cohort recipe and library versions. --format also writes the network as "
                    "STEM.torchscript.pt / STEM.pt2 / STEM.onnx: prepared input rows in, one probability per row "
                    "out, the ensemble and flips inside; the card records each file (format, file, sha256, input "
                    "and output) beside its preprocessing spec. Given a model card (.json) instead of a run, "
                    "--format adds the files beside that card. The radiomics baseline and late-fusion cards have "
                    "no network and are refused.")
    p.add_argument("run", help="run folder written by `lvi train`, or a model card .json (with --format)")
    p.add_argument("--out", help="output stem, e.g. Resources/Models/resnet10_3d_dce (required for a run folder)")
    p.add_argument("--model-id", default=None, help="model id in the card (default <model>_<sequence>_<split>)")
    p.add_argument("--dtype", choices=("float16", "float32", "bfloat16"), default=None,
                   help="stored weight precision (default float16 for the networks: half the size, same predictions "
                        "to ~1e-3; float32 for the radiomics baseline, a few hundred bytes)")
    p.add_argument("--format", dest="formats", action="append", choices=FORMATS, default=[],
                   help="also write the network in this format (repeatable): torchscript (STEM.torchscript.pt, "
                        "torch.jit.load; also C++ libtorch), torch_export (STEM.pt2, torch.export.load), onnx "
                        "(STEM.onnx; needs the optional extra: pip install 'lvipredictor[onnx]')")
    p.add_argument("--overwrite", action="store_true", help="replace existing STEM files")
    p.add_argument("--reference-case", metavar="CASE_DIR",
                   help="also record the model's probability on this case folder (t2.nii.gz/dce_phase2.nii.gz + "
                        "masks, e.g. Resources/SampleData/LVI-Sample-001) in the card, so tests can check the "
                        "shipped weights reproduce it")
    p.add_argument("--imaging-card", metavar="CARD",
                   help="a combined (clinical + imaging) run: the card exported from its imaging run, in the folder "
                        "of STEM (the combined card pins it)")
    p.set_defaults(func=run)


def run(args):
    formats = list(dict.fromkeys(args.formats))
    if Path(args.run).suffix == ".json":
        if not formats:
            raise InputError(args.run, "is a model card: give --format torchscript and/or --format onnx to export "
                                       "its network (its weights and card already exist)")
        if args.out or args.model_id or args.dtype or args.reference_case:
            raise InputError(args.run, "is a model card: --out, --model-id, --dtype and --reference-case apply to a "
                                       "run folder; the files are written beside the card")
        for path in export_card(args.run, formats, overwrite=args.overwrite):
            print("wrote {}".format(path))
        return 0
    if not args.out:
        raise InputError(args.run, "--out STEM is required to export a run folder")
    weights_path, card_path = export_run(args.run, args.out, model_id=args.model_id, overwrite=args.overwrite,
                                         dtype=args.dtype, reference_case=args.reference_case, formats=formats,
                                         imaging_card=args.imaging_card)
    for path in (weights_path, card_path):
        if path is not None:  # a clinical model is a card without a weights file
            print("wrote {}".format(path))
    for fmt in formats:
        print("wrote {}".format(interchange_path(card_path, fmt)))
    return 0
