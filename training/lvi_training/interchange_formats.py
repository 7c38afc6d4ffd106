"""The network of a model card as TorchScript, torch.export or ONNX, for tools that do not run this package.

What is exported is what the Predictor runs: the card's stored weights loaded as the Predictor
loads them (``weights.load_model``: float16 weights widened to float32), with a cv5 fold
ensemble and its flip views inside (``models.Ensemble``), followed by the sigmoid. The file maps
the prepared input rows to one probability per row:

- input ``(rows, channels, Y, X)`` for 2D, ``(1, channels, Z, Y, X)`` for 3D, float32: the
  output of ``LVIPredictorLib.preprocessing.prepare_input`` with the card's ``preprocessing``
  spec (crop, resampling, normalisation, VOI channel); that step stays in Python and the card
  says how to reproduce it;
- output ``(rows,)`` float32 probabilities; a 2D model's patient probability is their
  VOI-area-weighted mean (``preprocessing.aggregate_slice_scores``), a 3D model has one row.

The file lies beside the card and the card's ``interchange`` list records it (format, file,
SHA-256, input and output). The Predictor's CPU convolution swap (fast_inference) is not applied:
it is a kernel choice of this package, not part of the model, and would tie the file to oneDNN.
The radiomics baseline (features, then a logistic regression) and late-fusion cards (members,
no network of their own) have nothing to export and are refused.
"""

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from LVIPredictorLib import weights
from LVIPredictorLib.atomic_files import write_json_atomic
from LVIPredictorLib.errors import InputError, WeightsError
from LVIPredictorLib.vocabulary import architectures, kinds, sequences

# torch_export: torch.export's ExportedProgram (torch.export.load(...).module()), the successor torch
# names now that it deprecates TorchScript; TorchScript stays for the C++ libtorch and older tools.
FORMATS = ("torchscript", "torch_export", "onnx")
SUFFIXES = {"torchscript": ".torchscript.pt", "torch_export": ".pt2", "onnx": ".onnx"}
ONNX_OPSET = 18


class ProbabilityPerRow(nn.Module):
    """A card's network with the Predictor's sigmoid, so the file answers in probabilities."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.sigmoid(self.model(x).float()).reshape(-1)


def refuse_without_network(card, source):
    """One line for the cards whose kind is not a pixel network (vocabulary.kinds)."""
    kind = kinds.kind_of(card)
    if kind.name == kinds.LATE_FUSION:
        raise InputError(source, "is a late-fusion model: it has no network of its own to export; export each "
                                 "member's card instead ({})".format(", ".join(m["card"] for m in card["members"])))
    if kind.name == architectures.RADIOMICS:
        raise InputError(source, "is the radiomics baseline (features + logistic regression): it has no network "
                                 "to export as TorchScript/ONNX")
    if kind.name != architectures.NETWORK:
        raise InputError(source, "is a {} model: only networks are exported to TorchScript/ONNX".format(kind.label))


def example_input(card):
    """A zero input of the shape the card's preprocessing gives (2D: n_slices rows, at least two)."""
    spec = weights.card_spec(card)
    # 2D: at least two rows, so that neither exporter fixes the row count at 1 (a VOI thinner than
    # n_slices gives fewer rows).
    rows = max(spec.n_slices, 2) if spec.dims == 2 else 1
    channels = spec.input_channels(len(sequences.channels(card["sequence"])))
    return torch.zeros((rows, channels) + tuple(spec.model_input_size()), dtype=torch.float32)


def interchange_path(card_path, fmt):
    card_path = Path(card_path)
    return card_path.with_name(card_path.name[:-len(".json")] + SUFFIXES[fmt])


def export_card(card_path, formats, overwrite=False):
    """Write each format's file beside ``card_path`` and record it in the card; returns the paths."""
    card = weights.load_card(card_path)
    refuse_without_network(card, str(card_path))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError("unknown interchange format(s) {}; choose from {}".format(unknown, ", ".join(FORMATS)))
    paths = {fmt: interchange_path(card_path, fmt) for fmt in formats}
    for path in paths.values():
        if path.exists() and not overwrite:
            raise WeightsError(str(path), "already exists; refusing to overwrite (pass --overwrite)")
    if "onnx" in formats:
        _check_onnx_available()
    model, card = weights.load_model(card, device="cpu")
    wrapped = ProbabilityPerRow(model).eval()
    example = example_input(card)
    records = [r for r in card.get("interchange", []) if r.get("format") not in formats]
    for fmt, path in paths.items():
        _WRITERS[fmt](wrapped, example, path)
        records.append(_record(card, fmt, path, example))
    stored = {k: v for k, v in card.items() if not k.startswith("_")}
    stored["interchange"] = records
    write_json_atomic(Path(card_path), stored)
    return list(paths.values())


def _record(card, fmt, path, example):
    spec = weights.card_spec(card)
    channels = [sequences.LABELS[n] for n in sequences.channels(card["sequence"])]
    channels += ["VOI ({})".format(spec.mask_encoding)] * (spec.voi_channels() if spec.mask_channel else 0)
    shape = ["rows"] + list(example.shape[1:]) if spec.dims == 2 else list(example.shape)
    meaning = "probability of LVI per input row"
    if spec.dims == 2:
        meaning += "; the patient's probability is their VOI-area-weighted mean (preprocessing.aggregate_slice_scores)"
    includes = "the stored weights as the Predictor loads them"
    ensemble = card.get("ensemble")
    if ensemble:
        includes += ", the {}-member ensemble{}".format(
            ensemble["members"], " with left-right flip views" if ensemble.get("tta_flip") else "")
    record = {"format": fmt, "file": path.name, "sha256": weights.sha256_of(path), "torch": torch.__version__}
    if fmt == "onnx":
        record["opset"] = ONNX_OPSET
    record.update({"input": {"name": "input", "shape": shape, "dtype": "float32", "channels": channels,
                             "made_by": "LVIPredictorLib.preprocessing.prepare_input with this card's 'preprocessing'"},
                   "output": {"name": "probability", "shape": [shape[0]], "dtype": "float32", "meaning": meaning},
                   "includes": includes + " and the sigmoid"})
    return record


def _write_torchscript(wrapped, example, path):
    with torch.no_grad():
        traced = torch.jit.trace(wrapped, example, check_trace=False)
    tmp = path.with_name(".partial-" + path.name)
    traced.save(str(tmp))
    tmp.replace(path)


def _dynamic_rows(example):
    """A 2D input's row count stays free (a thin VOI gives fewer slices); a 3D input has one row."""
    if example.shape[0] == 1:
        return None
    return ({0: torch.export.Dim("rows", min=1, max=4096)},)


def _write_torch_export(wrapped, example, path):
    with torch.no_grad():
        program = torch.export.export(wrapped, (example,), dynamic_shapes=_dynamic_rows(example))
    tmp = path.with_name(".partial-" + path.name)
    torch.export.save(program, str(tmp))
    tmp.replace(path)


def _check_onnx_available():
    try:
        import onnx  # noqa: F401  (the exporter needs both; a missing one gets this line, not a traceback)
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise InputError(None, "ONNX export needs the optional packages onnx and onnxscript ({}); install them with "
                               "pip install 'lvipredictor[onnx]'".format(exc))


def _write_onnx(wrapped, example, path):
    tmp = path.with_name(".partial-" + path.name)
    # The exporter prints its progress to stdout whatever ``verbose`` says; the command prints its own lines.
    # Its registry also logs a warning per torchvision operator when torchvision (not needed here) is absent.
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, (example,), str(tmp), input_names=["input"], output_names=["probability"],
                              dynamic_shapes=_dynamic_rows(example), opset_version=ONNX_OPSET,
                              dynamo=True, external_data=False, verbose=False)
    finally:
        registry_log.setLevel(level)
    tmp.replace(path)


_WRITERS = {"torchscript": _write_torchscript, "torch_export": _write_torch_export, "onnx": _write_onnx}
