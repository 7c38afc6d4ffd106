"""``lvi train``: train one model on one sequence (or both fused) of a cohort into a run folder."""

import argparse


from LVIPredictorLib.preprocessing import MASK_ENCODINGS, NORMALIZATIONS
from LVIPredictorLib.vocabulary.sequences import ALL
from LVIPredictorLib.vocabulary import architectures, sequences
from LVIPredictorLib.errors import InputError

from . import cache, clinical_fit, distributed, engine, recipes, splits
from .commands import help_of
from .recipes import AUGMENTATIONS
from .evaluate import headline
from .request import RECIPE_OPTIONS, RunRequest
from .run import train_run



def _recipe_epochs():
    """'small-data 40, paper 100': every recipe's epochs, the default recipe first."""
    names = sorted(recipes.RECIPES, key=lambda name: name != recipes.DEFAULT_RECIPE)
    return ", ".join("{} {}".format(name, recipes.RECIPES[name].epochs) for name in names)


def _batch_sizes():
    by_size = {}
    for model in architectures.networks():
        size = architectures.get(model).paper_batch_size
        by_size.setdefault(size, []).append(model)
    return ", ".join("{} for {}".format(size, " and ".join(models)) for size, models in by_size.items())


def add_training_options(p):
    """Options shared by ``train`` and ``table``."""
    p.add_argument("--config", metavar="FILE",
                   help="TOML file setting any of these options by name (epochs = 40, crop_size = [32, 32, 1], "
                        "mask_channel = true, ...), or a run's config.json, which repeats that run; options given "
                        "on the command line win")
    p.add_argument("--quiet", action="store_true",
                   help="no progress line and no status lines, only the result and errors (the progress line is "
                        "shown on a terminal only in any case)")
    p.add_argument("--cohort", required=True, help="cohort folder with cohort.csv")
    p.add_argument("--split", choices=splits.SPLITS, default="cv5",
                   help="cv5 (default): stratified 5-fold CV by patient, out-of-fold metrics for every patient; "
                        "paper: the study's random stratified 9:1 holdout by patient")
    p.add_argument("--recipe", choices=sorted(recipes.RECIPES), default=recipes.DEFAULT_RECIPE,
                   help="training recipe (default %(default)s): paper = the study's (Adam, {paper_epochs} epochs, last epoch "
                        "kept); small-data = VOI channel as a distance map, 15 cross-sections (2D), quarter width, "
                        "weight decay, epoch chosen on an inner validation split, rotations, image dropout, fold "
                        "ensemble + flips. The options below override single parts of it".format(
                       paper_epochs=recipes.PAPER.epochs))
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs (default: the recipe's: {})".format(_recipe_epochs()))
    p.add_argument("--seed", type=int, default=0,
                   help="seed for splits, initialisation, shuffling, augmentation (default %(default)s)")
    p.add_argument("--device", default="auto",
                   help="auto (CUDA, then MPS, then CPU), cpu, cuda or mps (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="global batch size (default: {}, in every recipe)".format(_batch_sizes()))
    p.add_argument("--pos-weight", choices=engine.POS_WEIGHTS, default="none",
                   help="class weighting of the loss (default none: the Youden threshold handles imbalance "
                        "and probabilities stay calibrated)")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="switch off augmentation")
    p.add_argument("--crop-size", type=int, nargs=3, metavar=("X", "Y", "Z"),
                   help="model input in voxels instead of the model's default (2D: Z is ignored)")
    p.add_argument("--spacing", type=float, nargs=3, metavar=("X", "Y", "Z"),
                   help="target spacing in mm instead of the default (2D: Z is ignored, native slices kept)")
    p.add_argument("--n-slices", type=int, default=None, help="2D models: largest VOI cross-sections per case")
    p.add_argument("--dce-phase", type=int, default=sequences.DEFAULT_DCE_PHASE,
                   help="phase of a dynamic DICOM series to read (1 = pre-contrast; default 2 = first post-contrast)")
    p.add_argument("--cache-dir", default=None, help="preprocessed-input cache (default COHORT/.lvi_cache)")
    p.add_argument("--workers", type=int, default=cache.DEFAULT_WORKERS, help="processes building the cache (default %(default)s)")
    p.add_argument("--cache-timeout", type=float, default=distributed.DEFAULT_CACHE_TIMEOUT_S, metavar="SECONDS",
                   help="torchrun: how long the other ranks wait for rank 0 to build the cache before stopping "
                        "with an error (default %(default)s s; `lvi preprocess` beforehand makes it seconds)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: all cores, shared equally between torchrun processes; on a "
                        "machine busy with other work 1 can be several times faster than 2)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run folder with another configuration")
    _add_recipe_options(p.add_argument_group("recipe options (default: the recipe's value)"))


def _add_recipe_options(g):
    """The per-option overrides of the recipe (RECIPE_OPTIONS); None keeps the recipe's value."""
    g.add_argument("--mask-channel", action=argparse.BooleanOptionalAction, default=None,
                   help="give the VOI to the network as an extra input channel")
    g.add_argument("--mask-encoding", choices=MASK_ENCODINGS, default=None,
                   help="the VOI channel as binary (0/1) or distance (signed distance to the VOI surface, mm)")
    g.add_argument("--margin", dest="margin_mm", type=float, default=None, help="margin around the VOI in mm")
    g.add_argument("--normalization", choices=NORMALIZATIONS, default=None,
                   help="percentile_clip_zscore (paper) or background_ratio (relative to the tissue around the VOI)")
    g.add_argument("--width", type=float, default=None, help="multiplier of the network's channel widths")
    g.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (0: Adam, the paper)")
    g.add_argument("--val-fraction", type=float, default=None,
                   help="share of each training fold held out to choose the epoch (0: keep the last epoch)")
    g.add_argument("--augmentation", choices=AUGMENTATIONS, default=None,
                   help="paper (flips, shifts, intensity) or strong (+ in-plane rotations, wider intensity)")
    g.add_argument("--image-dropout", type=float, default=None,
                   help="share of training samples whose image channels are blanked, leaving the VOI channel "
                        "(modality dropout against memorising cases by their image)")
    g.add_argument("--dropout-per-channel", action=argparse.BooleanOptionalAction, default=None,
                   help="fused inputs: blank each sequence's image channel on its own draw (else both together)")
    g.add_argument("--ema-decay", type=float, default=None,
                   help="keep an exponential moving average of the weights with this per-step decay "
                        "(e.g. 0.998; 0: off) and select and export the averaged weights")
    g.add_argument("--slice-loss", choices=engine.SLICE_LOSSES, default=None,
                   help="2D models: uniform (every slice's loss counts the same) or area (each slice's loss "
                        "weighted by its share of the case's VOI area, as the case score weights it)")
    g.add_argument("--voi-shape-aux", type=float, default=None,
                   help="weight of a side task in training: predict the VOI's z-extent and irregularity from "
                        "the network's features (label-free; the side head is not exported; 0: off)")
    g.add_argument("--head-refit", action=argparse.BooleanOptionalAction, default=None,
                   help="after training, refit the network's last layer on the training cases: their slice "
                        "features pooled as the case score pools slices, L2 logistic regression with its strength "
                        "chosen by CV inside the training fold")
    g.add_argument("--ensemble", action=argparse.BooleanOptionalAction, default=None,
                   help="cv5: export the five fold models averaged, instead of a final model on all cases")
    g.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="average every prediction with its left-right mirror image")


def register(subparsers):
    p = subparsers.add_parser(
        "train", help=help_of("train"),
        description=("Train one of the study's models on a cohort into a run folder. The default recipe is {default} "
                     "({sd.epochs} epochs, AdamW with weight decay {sd.weight_decay}, the epoch chosen on an inner "
                     "validation split, the five fold models averaged for export); --recipe paper is the study's "
                     "(Adam, {paper.epochs} epochs, the last epoch kept, a model trained on all cases exported). "
                     "Both: lr 1e-3 x0.9 every 10% of the batches, batch {batches}. A progress line shows on a "
                     "terminal; every epoch goes to RUN/train.log, RUN/fold_K/history.csv, RUN/learning_curves.png "
                     "and, with the optional tensorboard package, RUN/tensorboard. Re-running the same command on "
                     "an unfinished run resumes it. Multi-GPU/CPU: torchrun --nproc_per_node N $(which lvi) "
                     "train ...").format(default=recipes.DEFAULT_RECIPE, sd=recipes.get_recipe(recipes.DEFAULT_RECIPE),
                                         paper=recipes.PAPER, batches=_batch_sizes()))
    add_training_options(p)
    p.add_argument("--model", required=True, choices=tuple(architectures.names()) + clinical_fit.MODELS,
                   help="one of the study's three networks, or radiomics_lr: the radiomics + logistic-regression "
                        "baseline of the LVI literature; clinical_lr: logistic regression on the cohort's clinical "
                        "columns; combined: the clinical columns + the out-of-fold score of --imaging-run")
    p.add_argument("--imaging-run", default=None,
                   help="--model combined: the cv5 run of the imaging model whose out-of-fold score it combines")
    p.add_argument("--sequence", default=None, choices=ALL,
                   help="t2 = fat-suppressed T2WI, dce = the dynamic series' phase (see --dce-phase), t2+dce = "
                        "both fused as two input channels on the DCE crop grid (cases need both series); required "
                        "for the imaging models")
    p.add_argument("--out", required=True, help="run folder to create (or resume)")
    p.add_argument("--no-final-model", dest="final_model", action="store_false",
                   help="cv5 without a fold ensemble (--recipe paper, or --no-ensemble): skip the model trained on "
                        "all cases after CV, the one `lvi export` writes then; with the fold ensemble (the "
                        "small-data default) no such model is trained and export averages the fold models")
    p.set_defaults(func=run)


def request_from_args(args, model, sequence, out):
    return RunRequest(cohort=args.cohort, model=model, sequence=sequence, out=out, split=args.split,
                      epochs=args.epochs, seed=args.seed, device=args.device, batch_size=args.batch_size,
                      overwrite=args.overwrite, final_model=getattr(args, "final_model", True),
                      pos_weight=args.pos_weight, augment=args.augment, crop_size=args.crop_size, spacing=args.spacing,
                      n_slices=args.n_slices, dce_phase=args.dce_phase, cache_dir=args.cache_dir,
                      workers=args.workers, cache_timeout=args.cache_timeout, threads=args.threads,
                      recipe=args.recipe, progress=not args.quiet,
                      **{k: getattr(args, k) for k in RECIPE_OPTIONS})


def run(args):
    if args.model in clinical_fit.MODELS:
        if args.sequence is not None:
            raise InputError(None, "--sequence does not apply to {} (a combined model reads its --imaging-run's "
                                   "sequence)".format(args.model))
        result = clinical_fit.train_clinical_run(args.cohort, args.model, args.out, split=args.split, seed=args.seed,
                                                 imaging_run=args.imaging_run, overwrite=args.overwrite,
                                                 final_model=args.final_model)
        print(headline(result))
        return 0
    if args.sequence is None:
        raise InputError(None, "--sequence is required for {}".format(args.model))
    result = train_run(request_from_args(args, args.model, args.sequence, args.out))
    if result is not None:
        print(headline(result))
    return 0
