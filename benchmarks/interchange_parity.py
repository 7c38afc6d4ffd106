"""Every bundled network exported to TorchScript, torch.export and ONNX, each run on the sample case's
prepared input and compared with the Predictor's probability.

ONNX lives here, not in the test suite: onnx, onnxscript (to export) and onnxruntime (to run the
file) are optional extras (``pip install 'lvipredictor[onnx]' onnxruntime``; the ``bench`` extra
holds onnxruntime), not test dependencies. TorchScript and torch.export are tested in
Testing/Python/test_interchange_export.py. The bundled cards are copied to a temporary folder
first, so Resources/Models is left as it is.

    python benchmarks/interchange_parity.py [--formats torchscript torch_export onnx] [--models ID ...]

Prints one row per model and format: the largest difference from the Predictor over the rows
(slices) and on the patient's probability, and the export time. Exits 1 if any difference exceeds 1e-5.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from LVIPredictorLib import preprocessing, weights
from LVIPredictorLib.inference import Predictor
from LVIPredictorLib.vocabulary import architectures, kinds, sequences
from lvi_training import interchange_formats
from lvi_training.reference import default_sample_case, sample_inputs

TOLERANCE = 1e-5


def _runner(fmt, path):
    if fmt == "torchscript":
        module = torch.jit.load(str(path))
        return lambda x: module(torch.from_numpy(x)).detach().numpy()
    if fmt == "torch_export":
        module = torch.export.load(str(path)).module()
        return lambda x: module(torch.from_numpy(x)).detach().numpy()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return lambda x: session.run(None, {"input": x})[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--formats", nargs="+", default=list(interchange_formats.FORMATS),
                        choices=interchange_formats.FORMATS)
    parser.add_argument("--models", nargs="*", help="bundled model ids (default: every bundled network)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        print("| model | format | max |row - Predictor row| | |patient - Predictor| | export s |")
        print("| --- | --- | --- | --- | --- |")
        for entry in weights.bundled_catalog():
            card = weights.load_card(entry["card_path"])
            if kinds.kind_of(card).name != architectures.NETWORK:
                continue
            if args.models and card["model_id"] not in args.models:
                continue
            card_path = Path(tmp) / Path(entry["card_path"]).name
            shutil.copy(entry["card_path"], card_path)
            shutil.copy(weights.weights_path_of(card), Path(tmp) / card["weights_file"])
            start = time.perf_counter()
            interchange_formats.export_card(card_path, args.formats)
            seconds = (time.perf_counter() - start) / len(args.formats)
            predictor = Predictor(str(card_path), device="cpu")
            names = sequences.channels(card["sequence"])
            images, masks = sample_inputs(default_sample_case(), card["sequence"])
            native = predictor.predict_case(images, masks)
            reference = names.index(sequences.grid_reference(card["sequence"]))
            prepared = preprocessing.prepare_input([preprocessing.Channel(images[n], masks[n]) for n in names],
                                                   predictor.spec, names, grid_channel=reference)
            for fmt in args.formats:
                rows = np.asarray(_runner(fmt, interchange_formats.interchange_path(card_path, fmt))(prepared.inputs))
                native_rows = np.asarray(native.slice_probabilities or [native.probability])
                row_diff = float(np.abs(rows - native_rows).max())
                patient_diff = abs(preprocessing.aggregate_slice_scores(rows, prepared.slice_weights)
                                   - native.probability)
                worst = max(worst, row_diff, patient_diff)
                print("| {} | {} | {:.1e} | {:.1e} | {:.1f} |".format(card["model_id"], fmt, row_diff, patient_diff,
                                                                     seconds))
    print("largest difference {:.1e} (tolerance {:.0e})".format(worst, TOLERANCE))
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
