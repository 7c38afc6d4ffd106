"""``lvi fuse --member CARD RUN --member CARD RUN [...] --out STEM``: a late-fusion model card."""

from .commands import help_of
from .fusion import write_card


def register(subparsers):
    p = subparsers.add_parser(
        "fuse", help=help_of("fuse"),
        description="Combine two or more exported models into one late-fusion model: an FS-T2WI and a DCE model "
                    "(the card reads both series), several models of one sequence (an ensemble of architectures "
                    "on that series), or models that include a fused FS-T2WI + DCE one (the card reads both). "
                    "Each member reads its own series as it does alone; the fused probability is the sigmoid of "
                    "their mean logit (equal weights, nothing fitted). The card pins each member's weights by "
                    "SHA-256 and holds out-of-fold metrics from the members' runs (which need the same cohort and "
                    "--seed, so that every fold's threshold is chosen on that fold's training cases).")
    p.add_argument("--member", nargs=2, action="append", required=True, metavar=("CARD", "RUN"),
                   help="an exported model card and the `lvi train` run it was exported from (give two or more)")
    p.add_argument("--out", required=True, help="output stem in the members' folder, e.g. "
                                                "Resources/Models/t2+dce-late_fusion (writes STEM.json)")
    p.add_argument("--model-id", default=None, help="model id in the card (default: the stem's file name)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing STEM.json")
    p.add_argument("--reference-case", metavar="CASE_DIR",
                   help="also record the fused probability on this case folder in the card (the members' cards "
                        "need their own reference prediction on it)")
    p.set_defaults(func=run)


def run(args):
    card_path = write_card([tuple(m) for m in args.member], args.out, model_id=args.model_id,
                           overwrite=args.overwrite, reference_case=args.reference_case)
    print("wrote {}".format(card_path))
    return 0
