"""The declared shape of a model card: every field a card may set, its type and its bounds.

A card is read before any weights are, and what it says decides how much memory is allocated
(widths, input sizes, ensemble size) and what SimpleITK is asked to do (spacings, crop sizes).
So every such field is checked here first, against limits far above anything the study's
networks use but far below what would exhaust a workstation: a hostile or mistyped card is then
refused in one line naming the card and the field, instead of allocating gigabytes or ending in
a SimpleITK traceback that seems to blame the patient's image.

The limits are deliberately generous (the bundled networks use widths <= 512, crops <= 64
voxels, 5 ensemble members); :data:`MAX_PARAMETERS` bounds what the whole card may build.
"""

import math
from pathlib import Path, PurePosixPath, PureWindowsPath

from LVIPredictorLib.errors import WeightsError

# Card schema versions this code understands. A newer card may mean something these checks do
# not know about, so it is refused rather than half-read.
KNOWN_SCHEMA_VERSION = 1

MAX_IN_CHANNELS = 16
MAX_WIDTH = 2048           # channels of any convolution or hidden layer
MAX_INPUT_SIDE = 512       # voxels along any axis of the network input / crop
MAX_HEAD_LAYERS = 4
MAX_BLOCKS = 8             # VanillaCNN pooling blocks (2**8 = 256-voxel receptive stride)
MAX_ENSEMBLE_MEMBERS = 20
MAX_FEATURES = 10000       # radiomics feature vector
MAX_SPACING_MM = 50.0
MAX_MARGIN_MM = 200.0
MAX_N_SLICES = 64
MAX_GREY_LEVELS = 4096
# The whole card (all ensemble members): 200 M parameters is 800 MB in float32, ~20x the
# largest bundled model; a card above it is refused before anything is built.
MAX_PARAMETERS = 200 * 1000 * 1000


class CardFieldError(ValueError):
    """A field of a card that breaks the schema: ``field`` is its dotted path."""

    def __init__(self, field, problem):
        self.field = field
        super().__init__("field {}: {}".format(field, problem))


# ----------------------------------------------------------------------------- typed checks

def _int(value, field, lo, hi):
    # bool is an int in Python; a card saying `true` for a width is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise CardFieldError(field, "must be a whole number, got {!r}".format(value))
    if not lo <= value <= hi:
        raise CardFieldError(field, "must lie in {}..{}, got {}".format(lo, hi, value))
    return value


def _number(value, field, lo, hi, lo_open=False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise CardFieldError(field, "must be a finite number, got {!r}".format(value))
    if value > hi or value < lo or (lo_open and value == lo):
        raise CardFieldError(field, "must lie in {}{}, {}], got {!r}".format("(" if lo_open else "[", lo, hi, value))
    return value


def _bool(value, field):
    if not isinstance(value, bool):
        raise CardFieldError(field, "must be true or false, got {!r}".format(value))
    return value


def _choice(value, field, choices):
    if value not in choices:
        raise CardFieldError(field, "must be one of {}, got {!r}".format(", ".join(map(str, choices)), value))
    return value


def _list(value, field, lengths):
    if not isinstance(value, (list, tuple)) or len(value) not in lengths:
        raise CardFieldError(field, "must be a list of {} values, got {!r}".format(
            " or ".join(str(n) for n in sorted(lengths)), value))
    return value


def _ints(value, field, lengths, lo, hi):
    return [_int(v, "{}[{}]".format(field, i), lo, hi) for i, v in enumerate(_list(value, field, lengths))]


def _object(value, field):
    if not isinstance(value, dict):
        raise CardFieldError(field, "must be a JSON object, got {!r}".format(value))
    return value


def _only(d, field, allowed):
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise CardFieldError("{}.{}".format(field, unknown[0]), "is not a known field (known: {})".format(
            ", ".join(sorted(allowed))))


def _label(value, field):
    return None if value is None else _int(value, field, 1, 255)


# ----------------------------------------------------------------------------- card parts

def check_schema_version(card):
    """Missing: version 1 (cards written before the field existed); newer than known: refused."""
    version = card.get("schema_version", 1)
    _int(version, "schema_version", 1, 1 << 30)
    if version > KNOWN_SCHEMA_VERSION:
        raise CardFieldError("schema_version", "is {} but this LVIPredictor reads model cards up to version {}; "
                                               "update LVIPredictor to use this model".format(version,
                                                                                            KNOWN_SCHEMA_VERSION))


def check_file_name(value, field):
    """A file a card names must lie in the card's own folder: a bare name, no path."""
    if not isinstance(value, str) or not value:
        raise CardFieldError(field, "must be a file name, got {!r}".format(value))
    for flavour in (PurePosixPath, PureWindowsPath):
        p = flavour(value)
        if p.is_absolute() or p.anchor or len(p.parts) != 1 or p.name in (".", ".."):
            raise CardFieldError(field, "must name a file in the card's own folder, got {!r}".format(value))
    return value


def file_beside(card_path, name, field):
    """The file ``name`` (a checked bare name) in the folder of the card at ``card_path``; a symbolic link
    there that leads out of the folder is refused: it could pair this card with another model's file."""
    folder = Path(card_path).parent
    path = folder / name
    if path.is_symlink() and path.resolve().parent != folder.resolve():
        raise WeightsError(str(card_path), "field {}: {} is a link leading out of the card's folder (to {})".format(
            field, name, path.resolve()))
    return path


def check_architecture_config(architecture, config):
    """The card's ``architecture_config``: an object, then the bounds its registry entry names
    (``Architecture.config_check``); every network is also held to :func:`check_parameter_budget`."""
    from LVIPredictorLib.vocabulary import architectures

    _object(config, ARCHITECTURE_CONFIG)
    if "in_channels" in config:
        _int(config["in_channels"], _sub("in_channels"), 1, MAX_IN_CHANNELS)
    architectures.get(architecture).check_config(config)


ARCHITECTURE_CONFIG = "architecture_config"


def _sub(name):
    return "{}.{}".format(ARCHITECTURE_CONFIG, name)


def check_radiomics_config(config, architecture):
    _only(config, ARCHITECTURE_CONFIG, ("feature_names", "in_channels"))
    names = _list(config.get("feature_names"), _sub("feature_names"), range(1, MAX_FEATURES + 1))
    if not all(isinstance(n, str) for n in names):
        raise CardFieldError(_sub("feature_names"), "must be a list of names")


def check_vanilla_cnn_config(config, architecture):
    _only(config, ARCHITECTURE_CONFIG, ("in_channels", "base_width", "n_blocks", "hidden", "dropout", "input_size"))
    n_blocks = _int(config.get("n_blocks", 5), _sub("n_blocks"), 1, MAX_BLOCKS)
    base = _int(config.get("base_width", 32), _sub("base_width"), 1, MAX_WIDTH)
    if base * 2 ** (n_blocks - 1) > MAX_WIDTH:
        raise CardFieldError(_sub("base_width"), "{} doubled over {} blocks gives {} channels, above {}".format(
            base, n_blocks, base * 2 ** (n_blocks - 1), MAX_WIDTH))
    _int(config.get("hidden", 512), _sub("hidden"), 1, MAX_WIDTH * 4)
    _number(config.get("dropout", 0.5), _sub("dropout"), 0.0, 1.0)
    if "input_size" in config:
        _ints(config["input_size"], _sub("input_size"), (architecture.dims,), 1, MAX_INPUT_SIDE)


def check_resnet_config(config, architecture):
    _only(config, ARCHITECTURE_CONFIG, ("in_channels", "widths", "head_widths", "input_size"))
    if "widths" in config:
        _ints(config["widths"], _sub("widths"), (4,), 1, MAX_WIDTH)
    if "head_widths" in config:
        _ints(config["head_widths"], _sub("head_widths"), range(1, MAX_HEAD_LAYERS + 1), 1, MAX_WIDTH)
    if "input_size" in config:
        _ints(config["input_size"], _sub("input_size"), (architecture.dims,), 1, MAX_INPUT_SIDE)


def check_ensemble(ensemble):
    field = "ensemble"
    _object(ensemble, field)
    _int(ensemble.get("members"), field + ".members", 1, MAX_ENSEMBLE_MEMBERS)
    if "tta_flip" in ensemble:
        _bool(ensemble["tta_flip"], field + ".tta_flip")
    for key in ("combine", "members_are"):
        if key in ensemble and not isinstance(ensemble[key], str):
            raise CardFieldError("{}.{}".format(field, key), "must be text")


def check_preprocessing(spec):
    """Every field of a preprocessing spec typed and bounded, before a spec object (or SimpleITK) sees it."""
    field = "preprocessing"
    _object(spec, field)
    sub = "{}.{{}}".format(field).format
    if spec.get("kind") == "radiomics":
        _only(spec, field, ("kind", "ring_mm", "background_mm", "glcm_levels", "histogram_bins", "dce_dynamic",
                            "label", "min_voi_mm3", "version"))
        for key in ("ring_mm", "background_mm"):
            if key in spec:
                _number(spec[key], sub(key), 0.0, MAX_MARGIN_MM, lo_open=True)
        for key in ("glcm_levels", "histogram_bins"):
            if key in spec:
                _int(spec[key], sub(key), 2, MAX_GREY_LEVELS)
        if "dce_dynamic" in spec:
            _bool(spec["dce_dynamic"], sub("dce_dynamic"))
    else:
        _only(spec, field, ("dims", "target_spacing", "crop_size", "margin_mm", "clip_percentiles", "normalization",
                            "n_slices", "mask_channel", "mask_encoding", "label", "min_voi_mm3", "version"))
        from LVIPredictorLib.preprocessing import MASK_ENCODINGS, NORMALIZATIONS

        dims = _choice(spec.get("dims", 3), sub("dims"), (2, 3))
        if "target_spacing" in spec:
            spacing = _list(spec["target_spacing"], sub("target_spacing"), (3,))
            for i, v in enumerate(spacing):
                if i == 2 and v is None and dims == 2:
                    continue  # 2D keeps the native slice spacing
                _number(v, "{}[{}]".format(sub("target_spacing"), i), 0.0, MAX_SPACING_MM, lo_open=True)
        if "crop_size" in spec:
            _ints(spec["crop_size"], sub("crop_size"), (3,), 1, MAX_INPUT_SIDE)
        if "margin_mm" in spec:
            _number(spec["margin_mm"], sub("margin_mm"), 0.0, MAX_MARGIN_MM)
        if "clip_percentiles" in spec:
            lo, hi = _list(spec["clip_percentiles"], sub("clip_percentiles"), (2,))
            _number(lo, sub("clip_percentiles") + "[0]", 0.0, 100.0)
            _number(hi, sub("clip_percentiles") + "[1]", 0.0, 100.0)
            if not lo < hi:
                raise CardFieldError(sub("clip_percentiles"), "must rise (low < high), got {!r}".format([lo, hi]))
        if "normalization" in spec:
            _choice(spec["normalization"], sub("normalization"), NORMALIZATIONS)
        if "n_slices" in spec:
            _int(spec["n_slices"], sub("n_slices"), 1, MAX_N_SLICES)
        if "mask_channel" in spec:
            _bool(spec["mask_channel"], sub("mask_channel"))
        if "mask_encoding" in spec:
            _choice(spec["mask_encoding"], sub("mask_encoding"), MASK_ENCODINGS)
    if "label" in spec:
        _label(spec["label"], sub("label"))
    if "min_voi_mm3" in spec:
        _number(spec["min_voi_mm3"], sub("min_voi_mm3"), 0.0, 1e7)
    if "version" in spec:
        _int(spec["version"], sub("version"), 1, 1)


def check_parameter_budget(n_parameters):
    if n_parameters > MAX_PARAMETERS:
        raise CardFieldError("architecture_config", "builds {:,} parameters (ensemble members included), above the "
                                                    "{:,} this program accepts".format(n_parameters, MAX_PARAMETERS))


def check(card, source):
    """Check the fields of a single-network card (not late fusion) that decide allocation and preprocessing.

    Raises :class:`WeightsError` naming ``source`` (the card file) and the field.
    """
    try:
        check_schema_version(card)
        check_file_name(card.get("weights_file"), "weights_file")
        if not isinstance(card.get("weights_sha256"), str):
            raise CardFieldError("weights_sha256", "must be a hexadecimal digest")
        check_architecture_config(card.get("architecture"), card.get("architecture_config"))
        if card.get("ensemble") is not None:
            check_ensemble(card["ensemble"])
        check_preprocessing(card.get("preprocessing"))
    except CardFieldError as exc:
        raise WeightsError(source, str(exc))


def check_late_fusion(card, source):
    """The late-fusion card's own fields (its members are single-network cards, checked when loaded)."""
    try:
        check_schema_version(card)
        members = card.get("members")
        if isinstance(members, list):
            for i, member in enumerate(members):
                if isinstance(member, dict) and "card" in member:
                    check_file_name(member["card"], "members[{}].card".format(i))
    except CardFieldError as exc:
        raise WeightsError(source, str(exc))
