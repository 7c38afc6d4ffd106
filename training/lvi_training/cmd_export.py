"""``lvi export RUN --out STEM``: weights (safetensors) + model card that Predictor and Slicer load."""

from .export import export_run


def register(subparsers):
    p = subparsers.add_parser(
        "export", help="write a run's model as STEM.safetensors + STEM.json (model card)",
        description="Export the model of a finished run: the paper split's model, or for cv5 the model trained on "
                    "all cases after CV (threshold: Youden on the out-of-fold predictions). The card holds the "
                    "architecture, preprocessing spec, threshold, held-out metrics with CIs, training command, "
                    "seed, cohort recipe and library versions.")
    p.add_argument("run", help="run folder written by `lvi train`")
    p.add_argument("--out", required=True, help="output stem, e.g. Resources/Models/resnet10_3d_dce")
    p.add_argument("--model-id", default=None, help="model id in the card (default <model>_<sequence>_<split>)")
    p.add_argument("--dtype", choices=("float16", "float32", "bfloat16"), default=None,
                   help="stored weight precision (default float16 for the networks: half the size, same predictions "
                        "to ~1e-3; float32 for the radiomics baseline, a few hundred bytes)")
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
    weights_path, card_path = export_run(args.run, args.out, model_id=args.model_id, overwrite=args.overwrite,
                                         dtype=args.dtype, reference_case=args.reference_case,
                                         imaging_card=args.imaging_card)
    for path in (weights_path, card_path):
        if path is not None:  # a clinical model is a card without a weights file
            print("wrote {}".format(path))
    return 0
