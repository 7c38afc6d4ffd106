"""``lvi table --cohort C --out DIR``: the paper's Table 1, six runs, with CIs."""

from . import table
from .cmd_train import add_training_options, request_from_args
from .run import train_run


def register(subparsers):
    p = subparsers.add_parser(
        "table", help="train and evaluate the six sequence x model combinations; print the paper's Table 1 with CIs",
        description="Train every combination of sequence (DCE, FS-T2WI) and model (2D VanillaCNN, 2D ResNet10, "
                    "3D ResNet10) into DIR/<sequence>_<model>/ (each an ordinary, resumable run), then print and "
                    "write DIR/table1.md, .csv and .json with our numbers and CIs next to the paper's.")
    add_training_options(p)
    p.add_argument("--out", required=True, help="folder for the six runs and the table")
    p.add_argument("--fusion", action="store_true",
                   help="also train each model on FS-T2WI + DCE fused (three more rows; cases need both series)")
    p.set_defaults(func=run, final_model=False)


def run(args):
    results = {}
    for seq, model in table.combinations(fusion=args.fusion):
        print("== {} {} ==".format(table.SEQUENCE_LABEL[seq], table.MODEL_LABEL[model]), flush=True)
        req = request_from_args(args, model, seq, str(table.run_folder(args.out, seq, model)))
        results[(seq, model)] = train_run(req)
    if any(r is None for r in results.values()):
        return 0  # a non-zero torchrun rank: rank 0 writes the table
    title = "Table 1 re-done: {} split, {} epochs, seed {}".format(args.split, args.epochs, args.seed)
    print(table.write_table(table.table_rows(results), args.out, title))
    return 0
