"""``lvi preprocess``: build the preprocessing cache of a cohort before training (nnU-Net's plan-and-preprocess).

``lvi train`` builds what is missing itself, but on rank 0 only while the other ranks wait;
building beforehand with many worker processes makes every later run (and every torchrun
rank) start from the cache in seconds.
"""

import logging
import sys

from LVIPredictorLib.vocabulary import architectures
from LVIPredictorLib.vocabulary.sequences import ALL

from . import cache
from .cmd_train import add_training_options, request_from_args
from .cohort import load_cohort, validate_cohort
from .commands import help_of
from .request import build_spec


def register(subparsers):
    p = subparsers.add_parser(
        "preprocess", help=help_of("preprocess"),
        description="Preprocess every case of COHORT that has SEQUENCE into the cache `lvi train` reads "
                    "(COHORT/.lvi_cache unless --cache-dir), with --workers processes, and stack them into the "
                    "memory-mapped file training shares between ranks. Takes the same options as `lvi train` so "
                    "that the cache matches the run: only the model, sequence and the options that shape the "
                    "inputs (--recipe, --crop-size, --spacing, --n-slices, --dce-phase, --mask-channel, "
                    "--mask-encoding, --margin, --normalization) matter here; the others are accepted and ignored. "
                    "Cases already cached are recognised by the size, time and inode of their files, unread.")
    add_training_options(p)
    p.add_argument("--model", required=True, choices=architectures.names(), help="the model the cache is for")
    p.add_argument("--sequence", required=True, choices=ALL, help="t2, dce or t2+dce")
    p.set_defaults(func=run)


def run(args):
    req = request_from_args(args, args.model, args.sequence, out="")
    cohort = load_cohort(req.cohort)
    validate_cohort(cohort, read_images=False).raise_if_problems()
    cases = cohort.with_sequence(req.sequence)
    store = cache.PreparedCache(req.cache_dir or cohort.root / ".lvi_cache")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    handler.setLevel(logging.WARNING)
    cache.log.addHandler(handler)
    try:
        stack, built = store.stacked(cases, req.sequence, build_spec(req), dce_phase=req.dce_phase,
                                     workers=max(1, req.workers), quiet=args.quiet)
    finally:
        cache.log.removeHandler(handler)
    print("{} {}: {} cases, {} preprocessed now, {} from the cache; {} samples in {}".format(
        req.model, req.sequence, len(cases), built, len(cases) - built, stack.inputs.shape[0], stack.path))
    return 0
