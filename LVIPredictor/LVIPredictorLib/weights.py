"""Safe weights: safetensors + a JSON model card, checked on every load.

A model card says everything needed to use the weights correctly and honestly: the
architecture and its configuration, the sequence and DCE phase, the preprocessing spec
(prediction reads it from here, never from defaults), the frozen decision threshold and
how it was chosen, the training data and command, the metrics with confidence intervals,
library versions, and the SHA-256 of the weights file.

Loading verifies the checksum, then that every tensor matches the architecture by name
and shape, and never unpickles anything (safetensors holds raw tensors only).
"""

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from LVIPredictorLib import card_schema, clinical, models
from LVIPredictorLib.atomic_files import write_bytes_atomic, write_json_atomic
from LVIPredictorLib.errors import WeightsError
from LVIPredictorLib.models import late_fusion
from LVIPredictorLib.preprocessing import radiomics, spec_from_dict
from LVIPredictorLib.vocabulary import architectures, kinds, sequences

CARD_SCHEMA_VERSION = card_schema.KNOWN_SCHEMA_VERSION
REQUIRED_CARD_KEYS = ("model_id", "architecture", "architecture_config", "sequence", "preprocessing",
                      "threshold", "weights_file", "weights_sha256")
DEMO_NOTICE = ("Demo weights trained on synthetic phantoms, not validated on patients, "
               "not for clinical use.")
_FLOAT_DTYPES = {"float16": torch.float16, "float32": torch.float32, "bfloat16": torch.bfloat16}


def sha256_of(path):
    digest = hashlib.sha256()
    with open(str(path), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(model, card, out_stem, dtype="float16", overwrite=False):
    """Write ``<out_stem>.safetensors`` and ``<out_stem>.json``; returns both paths.

    ``card`` needs at least model_id, architecture, architecture_config, sequence,
    preprocessing and threshold; weights_file/sha256/dtype are filled in here.
    Existing files are never replaced unless ``overwrite``.
    """
    out_stem = Path(out_stem)
    weights_path = out_stem.with_name(out_stem.name + ".safetensors")
    card_path = out_stem.with_name(out_stem.name + ".json")
    for p in (weights_path, card_path):
        if p.exists() and not overwrite:
            raise WeightsError(str(p), "already exists; refusing to overwrite (pass overwrite=True)")
    if dtype not in _FLOAT_DTYPES:
        raise ValueError("dtype must be one of {}".format(", ".join(_FLOAT_DTYPES)))
    full = dict(card)
    full.setdefault("schema_version", CARD_SCHEMA_VERSION)
    full["weights_file"] = weights_path.name
    full["weights_sha256"] = "0" * 64  # the card is checked before anything is written; its digest comes last
    full["weights_dtype"] = dtype
    _check_card(full, str(card_path))
    tensors = {}
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu")
        if t.is_floating_point():
            stored = t.to(_FLOAT_DTYPES[dtype])
            _check_finite_on_export(name, t, stored, dtype, weights_path)
            t = stored
        tensors[name] = t.contiguous()
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    # One metadata entry: safetensors writes the metadata map in a per-process hash order, so two
    # entries made the same weights hash differently from one export to the next.
    write_bytes_atomic(weights_path, save(tensors, metadata={"format": "pt"}))
    full["weights_sha256"] = sha256_of(weights_path)
    write_json_atomic(card_path, full)
    return weights_path, card_path


def _check_finite_on_export(name, original, stored, dtype, weights_path):
    """Refuse weights that would be stored as NaN/inf: a model with them predicts NaN, i.e. no answer.

    A float16 overflow is refused rather than silently stored as float32: the card records the dtype
    asked for, and the fix (float32 storage, twice the size) is the user's choice to make.
    """
    if bool(torch.isfinite(stored).all()):
        return
    if not bool(torch.isfinite(original).all()):
        raise WeightsError(str(weights_path), "tensor {} holds NaN or infinite values (training diverged?); refusing "
                                              "to export a model that cannot give a finite probability".format(name))
    largest = float(original.abs().max())
    raise WeightsError(str(weights_path), "tensor {} holds values up to {:g}, beyond what {} can store ({:g}); "
                                          "export with `--dtype float32`".format(
                                              name, largest, dtype, float(torch.finfo(_FLOAT_DTYPES[dtype]).max)))


def load_card(card_path):
    """Read and check a model card; remembers where it came from in ``card['_card_path']``.

    A combined (clinical + imaging) card comes back with its imaging model's card in ``_imaging_card``.
    """
    card_path = Path(card_path)
    card = _read_card(card_path)
    if clinical.is_clinical_card(card):
        card, imaging = _checked_clinical_card(card, card_path)
        if imaging is None:
            raise WeightsError(str(card_path), "reads clinical data only; prediction runs models that read images "
                                               "(use a combined clinical + imaging card)")
        card["_imaging_card"] = imaging
        return card
    _check_card(card, str(card_path))
    card["_card_path"] = str(card_path.resolve())
    return card


def load_clinical_card(card_path):
    """(clinical card, its imaging model's card or None), both checked: the card's digest matches its
    fitted section, and the imaging card beside it is the one it pins (by its weights' SHA-256)."""
    card_path = Path(card_path)
    card = _read_card(card_path)
    if not clinical.is_clinical_card(card):
        raise WeightsError(str(card_path), "is not a clinical model card (architecture {!r})".format(
            card.get("architecture")))
    return _checked_clinical_card(card, card_path)


def _read_card(card_path):
    try:
        with open(str(card_path)) as f:
            card = json.load(f)
    except FileNotFoundError:
        raise WeightsError(str(card_path), "model card not found")
    except (ValueError, UnicodeDecodeError) as e:
        raise WeightsError(str(card_path), "is not a valid JSON model card ({})".format(e))
    if not isinstance(card, dict):
        raise WeightsError(str(card_path), "is not a JSON object")
    return card


CLINICAL_CARD_KEYS = ("model_id", "architecture", "sequence", "threshold", "clinical", "weights_sha256")


def _checked_clinical_card(card, card_path):
    missing = [k for k in CLINICAL_CARD_KEYS if k not in card]
    if missing:
        raise WeightsError(str(card_path), "clinical model card lacks {}".format(", ".join(missing)))
    card["_card_path"] = str(card_path.resolve())
    imaging = None
    pinned = card.get("imaging_model")
    if kinds.is_combined(card):
        if not pinned:
            raise WeightsError(str(card_path), "a combined card must name its imaging model ('imaging_model')")
        imaging = load_card(card_path.parent / pinned["card"])
        if imaging.get("weights_sha256") != pinned["weights_sha256"]:
            raise WeightsError(imaging["_card_path"], "is not the imaging model {} was fitted with (weights SHA-256 "
                                                      "differs)".format(card_path.name))
    digest = clinical.card_digest(card["clinical"], pinned["weights_sha256"] if pinned else None)
    if digest != card["weights_sha256"]:
        raise WeightsError(str(card_path), "its clinical model does not match its SHA-256 (edited after export?)")
    return card, imaging


def _check_card(card, source):
    if kinds.is_late_fusion(card):
        card_schema.check_late_fusion(card, source)
        late_fusion.check_card(card, source)
        _check_threshold(card, source)
        return
    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    if missing:
        raise WeightsError(source, "model card lacks {}".format(", ".join(missing)))
    if card["architecture"] in architectures.names():
        card_schema.check(card, source)
    if card["architecture"] not in architectures.names():
        raise WeightsError(source, "unknown architecture {!r} (known: {})".format(
            card["architecture"], ", ".join(architectures.names() + (kinds.LATE_FUSION,))))
    if card["sequence"] not in sequences.ALL:
        raise WeightsError(source, "unknown sequence {!r} (known: {})".format(card["sequence"],
                                                                              ", ".join(sequences.ALL)))
    try:
        spec = spec_from_dict(card["preprocessing"])
    except (TypeError, ValueError) as e:
        raise WeightsError(source, "invalid preprocessing spec: {}".format(e))
    reads_features = architectures.is_radiomics(card["architecture"])
    if reads_features != (getattr(spec, "kind", None) == radiomics.KIND):
        raise WeightsError(source, "architecture {} does not go with a {} preprocessing spec".format(
            card["architecture"], "radiomics" if getattr(spec, "kind", None) == radiomics.KIND else "CNN"))
    if reads_features:
        _check_radiomics_features(card, spec, source)
    else:
        _check_in_channels(card, spec, source)
    _check_threshold(card, source)


def _check_threshold(card, source):
    threshold = card["threshold"]
    if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise WeightsError(source, "threshold must be a probability in [0, 1], got {!r}".format(threshold))


def _check_in_channels(card, spec, source):
    n_channels = spec.input_channels(len(sequences.channels(card["sequence"])))
    in_channels = (card.get("architecture_config") or {}).get("in_channels", 1)
    if in_channels != n_channels:
        raise WeightsError(source, "architecture_config has in_channels {} but sequence {!r}{} gives {} input "
                                   "channel(s)".format(in_channels, card["sequence"],
                                                       " with the VOI channel" if spec.mask_channel else "",
                                                       n_channels))


def _check_radiomics_features(card, spec, source):

    expected = radiomics.feature_names(spec, sequences.channels(card["sequence"]))
    given = (card.get("architecture_config") or {}).get("feature_names")
    if isinstance(given, list) and given != expected and radiomics.current_names(given) == expected:
        # A card written before six features were renamed (radiomics.RENAMED): same values, so it is
        # read under the current names rather than refused.
        card["architecture_config"] = dict(card["architecture_config"], feature_names=expected)
        given = expected
    if given != expected:
        raise WeightsError(source, "the radiomics model's feature_names do not match the features its spec computes "
                                   "for {} ({} expected, {} given)".format(card["sequence"], len(expected),
                                                                          len(given or [])))


def build_card_model(card):
    """The untrained network a card describes: one model, or an ensemble of ``card['ensemble']['members']``."""
    ensemble = card.get("ensemble")
    if ensemble:
        return models.build_ensemble(card["architecture"], ensemble["members"], tta_flip=ensemble.get("tta_flip", False),
                                     **card["architecture_config"])
    return models.build_model(card["architecture"], **card["architecture_config"])


def card_spec(card):
    if kinds.is_late_fusion(card):
        raise WeightsError(card.get("_card_path"), "is a late-fusion model: each of its members has its own "
                                                   "preprocessing (member_cards)")
    return spec_from_dict(card["preprocessing"])


def voi_label(card):
    """The VOI label a card's model reads (None: any non-zero voxel): for a late-fusion card its members',
    for a combined (clinical + imaging) card its imaging model's."""
    if kinds.is_combined(card):
        return voi_label(card["_imaging_card"])
    if not kinds.is_late_fusion(card):
        return card_spec(card).label
    labels = {card_spec(member).label for member in member_cards(card)}
    if len(labels) > 1:
        raise WeightsError(card.get("_card_path"), "its members read different VOI labels ({})".format(
            ", ".join(str(label) for label in sorted(labels, key=str))))
    return labels.pop()


def weights_path_of(card):
    """The weights file beside the card; one that leads out of the card's folder (a symbolic link) is refused."""
    return card_schema.file_beside(card.get("_card_path", "card.json"), card["weights_file"], "weights_file")


def member_cards(card):
    """A late-fusion card's member cards, loaded and checked against the weights it pins."""
    return late_fusion.member_cards(card, load_card)


def load_model(card_or_path, device="cpu"):
    """Build the card's architecture and load its verified weights; returns (model in eval mode, card)."""
    card = card_or_path if isinstance(card_or_path, dict) else load_card(card_or_path)
    if kinds.is_late_fusion(card):
        raise WeightsError(card.get("_card_path"), "is a late-fusion model: it has no network of its own; load its "
                                                   "members (member_cards) or predict with inference.Predictor")
    if "_card_path" not in card:
        raise WeightsError(None, "card has no '_card_path'; load it with load_card() so the weights file can be found")
    path = weights_path_of(card)
    if not path.is_file():
        raise WeightsError(str(path), "weights file named by the model card is missing")
    actual = sha256_of(path)
    if actual != card["weights_sha256"]:
        raise WeightsError(str(path), "SHA-256 mismatch: the card expects {} but the file has {} (corrupt or "
                                      "replaced weights)".format(card["weights_sha256"], actual))
    # Built first on the meta device (shapes, no storage): the card's size is bounded and compared with the
    # file before a byte is allocated for it.
    planned = _build_checked(card, meta=True)
    try:
        card_schema.check_parameter_budget(models.count_parameters(planned))
    except card_schema.CardFieldError as e:
        raise WeightsError(card["_card_path"], str(e))
    try:
        handle = safe_open(str(path), framework="pt")
    except Exception as e:  # safetensors raises its own error types for bad headers / truncation
        raise WeightsError(str(path), "is not a readable safetensors file ({})".format(e))
    with handle as f:
        expected = planned.state_dict()
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
        missing = sorted(set(expected) - set(shapes))
        unexpected = sorted(set(shapes) - set(expected))
        wrong = sorted(k for k in set(expected) & set(shapes) if tuple(expected[k].shape) != shapes[k])
        if missing or unexpected or wrong:
            parts = []
            if missing:
                parts.append("missing tensors {}".format(_short(missing)))
            if unexpected:
                parts.append("unexpected tensors {}".format(_short(unexpected)))
            if wrong:
                parts.append("shape mismatch for {}".format(_short(
                    ["{} (file {} vs model {})".format(k, shapes[k], tuple(expected[k].shape)) for k in wrong])))
            raise WeightsError(str(path), "does not match architecture {}: {}".format(card["architecture"],
                                                                                       "; ".join(parts)))
        # One tensor at a time, straight into the model's own storage (state_dict() shares it): holding
        # the whole file and a float32 copy of it beside the model made loading the peak of a 3D
        # prediction's memory (+90 MB).
        model = _build_checked(card, meta=False)
        expected = model.state_dict()
        try:
            with torch.no_grad():
                for k, target in expected.items():
                    target.copy_(f.get_tensor(k))
        except Exception as e:
            raise WeightsError(str(path), "is not a readable safetensors file ({})".format(e))
        for k, value in expected.items():
            if value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise WeightsError(str(path), "tensor {} holds NaN or infinite values: the model card {} cannot give "
                                              "a finite probability with these weights".format(k, card["_card_path"]))
    model.eval()
    return model.to(device), card


def _build_checked(card, meta):
    try:
        if meta and hasattr(torch, "get_default_device"):  # a device as context manager: torch >= 2.0
            with torch.device("meta"):
                return build_card_model(card)
        return build_card_model(card)
    except (TypeError, ValueError) as e:
        raise WeightsError(card["_card_path"], "architecture_config does not build {}: {}".format(
            card["architecture"], e))


def _short(items, n=4):
    return ", ".join(items[:n]) + (" and {} more".format(len(items) - n) if len(items) > n else "")


# --- the bundled catalog ---------------------------------------------------------------

def models_dir():
    """Where the bundled weights live: $LVI_MODELS_DIR, else Resources/Models beside the code.

    In the source tree Resources/ is two levels above this file; in an installed Slicer
    extension the module's Resources/ folder sits next to LVIPredictorLib/.
    """
    env = os.environ.get("LVI_MODELS_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent.parent / "Resources" / "Models", here.parent / "Resources" / "Models"):
        if candidate.is_dir():
            return candidate
    return here.parent.parent / "Resources" / "Models"


def bundled_catalog(directory=None):
    """Entries of catalog.json (model_id, architecture, sequence, card, demo, ...); [] if none."""
    directory = Path(directory) if directory else models_dir()
    path = directory / "catalog.json"
    if not path.is_file():
        return []
    try:
        with open(str(path)) as f:
            data = json.load(f)
    except ValueError as e:
        raise WeightsError(str(path), "is not valid JSON ({})".format(e))
    entries = data.get("models", []) if isinstance(data, dict) else []
    for entry in entries:
        entry["card_path"] = str(directory / entry["card"])
    return entries


def resolve_card(model, directory=None):
    """A card path from a bundled model id or a path to a card JSON file."""
    candidate = Path(str(model))
    if candidate.suffix == ".json" and candidate.is_file():
        return candidate
    for entry in bundled_catalog(directory):
        if entry["model_id"] == model:
            return Path(entry["card_path"])
    known = [e["model_id"] for e in bundled_catalog(directory)]
    raise WeightsError(str(model), "is neither a model card file nor a bundled model id (bundled: {})".format(
        ", ".join(known) or "none"))


def write_catalog(directory):
    """(Re)write ``directory/catalog.json`` listing every model card found there."""
    directory = Path(directory)
    entries = []
    for card_path in sorted(directory.glob("*.json")):
        if card_path.name == "catalog.json":
            continue
        card = load_card(card_path)
        entry = {"model_id": card["model_id"], "architecture": card["architecture"], "sequence": card["sequence"],
                 "card": card_path.name, "weights": card.get("weights_file"),  # None: late fusion, combined
                 "weights_sha256": card["weights_sha256"], "demo": bool(card.get("demo", False))}
        if kinds.is_late_fusion(card):
            entry["members"] = [m["card"] for m in card["members"]]
        if kinds.needs_clinical(card):
            entry["imaging_card"] = card["imaging_model"]["card"]
            entry["clinical_inputs"] = clinical.card_fields(card)
        entries.append(entry)
    path = directory / "catalog.json"
    write_json_atomic(path, {"schema_version": CARD_SCHEMA_VERSION, "models": entries})
    return path
