"""``lvi export RUN --out STEM``: weights (safetensors) + model card that Predictor and Slicer load."""

from .export import export_run


def register(subparsers):
    p = subparsers.add_parser(
        "export", help="write a run's model as STEM.safetensors + STEM.json (model card)",
        description="Export the model of a finished run: the paper split's single model (threshold: Youden's J on "
                    "its training predictions); for cv5, the five fold models averaged when the run's recipe has a "
                    "fold ensemble (the small-data default), else the model trained on all cases after CV "
                    "(threshold either way: Youden's J on the out-of-fold predictions). The card holds the "
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
    p.set_defaults(func=run)


def run(args):
    weights_path, card_path = export_run(args.run, args.out, model_id=args.model_id, overwrite=args.overwrite,
                                         dtype=args.dtype, reference_case=args.reference_case)
    print("wrote {}\nwrote {}".format(weights_path, card_path))
    return 0
