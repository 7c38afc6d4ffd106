"""Training recipes: the paper's, and the one the ablation chose for 457-case cohorts.

A recipe is a named set of defaults for everything that decides how a model learns
beyond the architecture: input (VOI channel, margin, normalisation), width, optimiser,
regularisation, model selection, augmentation, and how the exported model predicts
(fold ensemble, test-time flips). Every option can still be set on its own on the command
line (``lvi train --recipe paper --mask-channel`` is one ablation step), and the resolved
values — not the recipe's name — go into the run's identity and the model card, so a card
says exactly what was done even if a recipe's defaults change later.

``paper`` is the study's recipe as docs/design.md §1 gives it (Adam, lr 1e-3 decayed x0.9 every 10 %
of the batches, 100 epochs, the last epoch's weights, full-width networks) with our choices
where the paper is silent (z-score inside a 64 mm crop with a 5 mm margin, flips/shifts/
intensity augmentation, area-weighted 2D slices).

``small-data`` is what the ablation in ``benchmarks/ablation.py`` measured to learn more on a
cohort of the study's size (see docs/results.md for the table and the command): the VOI as an
extra input channel encoded as a signed distance map (the shape and margin of the tumour are
the strongest signs a single series carries), 15 VOI cross-sections per case for the 2D
networks, quarter-width networks with decoupled weight decay, the epoch chosen on an inner
validation split of each training fold (never the held-out fold), in-plane rotations and
wider intensity augmentation, image dropout (80 % of training samples show the VOI channel
only, so a network cannot memorise a case by its image texture), a moving average of the
weights (decay 0.995 per step; selection and export use the averaged weights), a label-free
side task (the network's last features also predict the VOI's z-extent and irregularity, each
of which alone scores about as well as the networks on the phantom; weight 1, the head is not
exported), after training the last layer refitted on the training fold's cases (their slice
features pooled as the case score pools slices, an L2 logistic regression: ``head_refit``; it
lifted every 2D network it was measured on and left the 3D ones nearly unchanged), and the five fold
models averaged at prediction time with left-right flips (nnU-Net's way). Measured and
left out: intensities relative to the breast background (the same out-of-fold AUC as the
z-score, 0.692 both), so the z-score inside a 64 mm crop with a 5 mm margin stays; quarter-turn
rotations at prediction time and He initialisation of the VanillaCNN (both lower).
"""

from dataclasses import asdict, dataclass, fields, replace
from typing import Optional

AUGMENTATIONS = ("paper", "strong")


@dataclass(frozen=True)
class Recipe:
    name: str
    epochs: int
    mask_channel: bool = False
    mask_encoding: str = "binary"    # the VOI channel as 0/1 or as a signed distance map (preprocessing)
    margin_mm: float = 5.0
    normalization: str = "percentile_clip_zscore"
    width: float = 1.0               # channel multiplier of the architecture's default widths
    weight_decay: float = 0.0        # decoupled (AdamW); 0 is the paper's plain Adam
    val_fraction: float = 0.0        # inner validation share of each training fold; 0 = keep the last epoch
    augmentation: str = "paper"
    image_dropout: float = 0.0       # share of training samples shown with the VOI channel only
    dropout_per_channel: bool = False  # fused inputs: each sequence blanked on its own draw
    ema_decay: float = 0.0           # per-step moving average of the weights (0: the weights themselves)
    slices: Optional[int] = None     # 2D models: VOI cross-sections per case (None: the model's default, 3)
    slice_loss: str = "uniform"      # 2D: each slice's loss weight ("area": its share of the VOI area)
    voi_shape_aux: float = 0.0       # side task's weight: predict the VOI's z-extent and irregularity (voi_shape)
    head_refit: bool = False         # after training, refit the last layer on the cases' pooled features (head_refit)
    ensemble: bool = False           # export the cv5 fold models as one averaged model, no final fit
    tta: bool = False                # average each prediction with its left-right mirror image

    def to_dict(self):
        return asdict(self)

    def with_overrides(self, **overrides):
        """A copy with every non-None override applied (the CLI's per-option flags)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ValueError("unknown recipe options: {}".format(", ".join(sorted(unknown))))
        chosen = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **chosen) if chosen else self


PAPER = Recipe(name="paper", epochs=100)
SMALL_DATA = Recipe(name="small-data", epochs=40, mask_channel=True, mask_encoding="distance", slices=15,
                    width=0.25, weight_decay=1e-2, val_fraction=0.2, augmentation="strong", image_dropout=0.8,
                    ema_decay=0.995, voi_shape_aux=1.0, head_refit=True, ensemble=True, tta=True)
RECIPES = {r.name: r for r in (PAPER, SMALL_DATA)}
# The radiomics baseline trains no network; its fit is fixed (radiomics_fit.py).
RADIOMICS = Recipe(name="radiomics", epochs=0)
DEFAULT_RECIPE = "small-data"


def get_recipe(name, **overrides):
    # type: (Optional[str], ...) -> Recipe
    recipe = RECIPES.get(name or DEFAULT_RECIPE)
    if recipe is None:
        raise ValueError("unknown recipe {!r}; choose one of {}".format(name, ", ".join(RECIPES)))
    return recipe.with_overrides(**overrides)
