"""``lvi table --cohort C --out DIR``: the paper's Table 1 with CIs, the radiomics baseline beside the
networks, and each model's best possible AUC on a phantom cohort."""

from dataclasses import replace


from LVIPredictorLib.vocabulary.sequences import FUSED
from LVIPredictorLib.vocabulary import architectures

from LVIPredictorLib.errors import InputError

from . import atomic, bounds, clinical_table, fusion, recipes, table
from .cmd_train import add_training_options, request_from_args
from .commands import help_of
from .progress import notice
from .request import CNN_ONLY_OPTIONS
from .run import train_run


def register(subparsers):
    p = subparsers.add_parser(
        "table", help=help_of("table"),
        description="Train every combination of sequence (DCE, FS-T2WI) and model (2D VanillaCNN, 2D ResNet10, "
                    "3D ResNet10, and the radiomics + logistic-regression baseline) into DIR/<sequence>_<model>/ "
                    "(each an ordinary, resumable run), then print and write DIR/table1.md, .csv and .json with our "
                    "numbers and CIs next to the paper's and, on a phantom cohort, the best AUC each model's input "
                    "allows.")
    add_training_options(p)
    p.add_argument("--out", required=True, help="folder for the runs and the table")
    p.add_argument("--fusion", action="store_true",
                   help="also train each model on FS-T2WI + DCE fused (more rows; cases need both series), and with "
                        "--split cv5 add each network's late fusion of its FS-T2WI and DCE runs")
    p.add_argument("--no-radiomics", dest="radiomics", action="store_false",
                   help="leave out the radiomics + logistic-regression baseline rows (seconds to train)")
    p.add_argument("--clinical", action="store_true",
                   help="cv5 and a cohort with clinical columns: also fit the clinical columns alone and, per imaging "
                        "run, clinical + that run's out-of-fold score; writes DIR/clinical_table.md with paired DeLong "
                        "tests (seconds: logistic regressions)")
    p.set_defaults(func=run, final_model=False)


def run(args):
    results, best_possible = {}, {}
    rows = [(seq, model) for seq, model in table.combinations(fusion=args.fusion)
            if args.radiomics or not architectures.is_radiomics(model)]
    for number, (seq, model) in enumerate(rows, start=1):
        folder = table.run_folder(args.out, seq, model)
        notice("== {}/{}: {} {} in {} ==".format(number, len(rows), table.SEQUENCE_LABEL[seq],
                                                 table.model_label(model), folder), quiet=args.quiet)
        req = request_from_args(args, model, seq, str(folder))
        if architectures.is_radiomics(model):  # the recipe's network options do not apply to it
            req = replace(req, recipe=recipes.DEFAULT_RECIPE, epochs=None,
                          **{k: None for k in CNN_ONLY_OPTIONS})
        results[(seq, model)] = train_run(req)
        if results[(seq, model)] is not None:
            best_possible[(seq, model)] = bounds.for_run(atomic.load_json(folder / "config.json"))
    if any(r is None for r in results.values()):
        return 0  # a non-zero torchrun rank: rank 0 writes the table
    if args.fusion and args.split == "cv5":
        late_fusion_rows(args.out, results, best_possible, args.seed)
    epochs = args.epochs if args.epochs is not None else recipes.get_recipe(args.recipe).epochs
    title = "Table 1 re-done: {} recipe, {} split, {} epochs, seed {}".format(args.recipe, args.split, epochs,
                                                                              args.seed)
    print(table.write_table(table.table_rows(results, best_possible), args.out, title))
    if args.clinical:
        if args.split != "cv5":
            raise InputError(None, "--clinical needs --split cv5 (combined models need out-of-fold imaging scores)")
        imaging = [table.run_folder(args.out, seq, model) for seq, model in results if not model.startswith(
            table.LATE_FUSION)]
        print(clinical_table.write(clinical_table.train_clinical_rows(args.cohort, args.out, imaging, args.seed),
                                   args.out))
    return 0


def late_fusion_rows(out_dir, results, best_possible, seed):
    """Add each network's late fusion (its FS-T2WI and DCE runs in ``out_dir``) to ``results``."""
    for model in architectures.STUDY_NETWORKS:
        if ("t2", model) not in results or ("dce", model) not in results:
            continue
        runs = [table.run_folder(out_dir, seq, model) for seq in ("t2", "dce")]
        key = (FUSED, table.late_fusion_model(model))
        results[key] = fusion.out_of_fold_metrics(runs, seed)[0]
        best_possible[key] = fusion.best_possible([atomic.load_json(r / "config.json") for r in runs])
