"""Prediction cost for one realistic full-field case, per model and per step (CPU).

Prints figures and writes JSON; never a timed test. Input: an FS-T2WI-like 448x448x40 volume
at 0.7x0.7x4 mm and a DCE-like 512x512x120 at 0.7x0.7x1.5 mm with a ~2 cm VOI, read from
uncompressed NIfTI, gzipped NIfTI, and from memory (what the Slicer Logic has). Freshly
initialised weights (the cost does not depend on their values).

    python benchmarks/bench_predict.py [--repeats 7] [--json out.json]
"""

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from LVIPredictorLib import inference, io, models, preprocessing, weights

CASES = {
    "t2": dict(size=(448, 448, 40), spacing=(0.7, 0.7, 4.0)),
    "dce": dict(size=(512, 512, 120), spacing=(0.7, 0.7, 1.5)),
}


def full_field_case(size, spacing, seed=0):
    rng = np.random.default_rng(seed)
    z, y, x = size[2], size[1], size[0]
    arr = rng.normal(300, 40, size=(z, y, x)).astype(np.float32)
    zz, yy, xx = np.ogrid[:z, :y, :x]
    c = np.array([x * 0.6, y * 0.45, z * 0.5])
    r = np.sqrt(((xx - c[0]) * spacing[0]) ** 2 + ((yy - c[1]) * spacing[1]) ** 2 + ((zz - c[2]) * spacing[2]) ** 2)
    arr += 600 * (r < 10)
    image = sitk.GetImageFromArray(arr.astype(np.int16))
    image.SetSpacing(spacing)
    image.SetOrigin((-150.0, -120.0, -60.0))
    mask = sitk.GetImageFromArray((r < 10).astype(np.uint8))
    mask.CopyInformation(image)
    return image, mask


def timed(fn, repeats):
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tmp = Path(tempfile.mkdtemp(prefix="lvi-bench-"))
    results = {"torch_threads": torch.get_num_threads(), "repeats": args.repeats, "rows": []}
    print("torch {} on {} threads; median of {} runs\n".format(torch.__version__, torch.get_num_threads(),
                                                                args.repeats))
    header = "{:<16} {:<5} {:<10} {:>9} {:>11} {:>9} {:>9}".format(
        "model", "seq", "source", "read ms", "preproc ms", "fwd ms", "total ms")
    print(header)
    print("-" * len(header))
    for seq, geometry in CASES.items():
        image, mask = full_field_case(**geometry)
        files = {}
        for suffix in (".nii", ".nii.gz"):
            files[suffix] = (tmp / (seq + suffix), tmp / (seq + "_mask" + suffix))
            sitk.WriteImage(image, str(files[suffix][0]))
            sitk.WriteImage(mask, str(files[suffix][1]))
        for name in models.MODEL_NAMES:
            torch.manual_seed(0)
            card = dict(model_id="bench-" + name, architecture=name, architecture_config=models.default_config(name),
                        sequence=seq, preprocessing=preprocessing.default_spec(name).to_dict(), threshold=0.5)
            _, card_path = weights.save_model(models.build_model(name), card, tmp / "{}-{}".format(seq, name),
                                              overwrite=True)
            predictor = inference.Predictor(card_path, device="cpu")
            predictor.predict(image, mask)  # warm-up: first call pays one-off allocations
            for source in ("memory", ".nii", ".nii.gz"):
                def read():
                    if source == "memory":
                        return image, mask
                    img = io.read_image(files[source][0])
                    return img, io.read_mask(files[source][1], reference=img)

                def run():
                    t0 = time.perf_counter()
                    img, msk = read()
                    t_read = time.perf_counter() - t0
                    p = predictor.predict(img, msk)
                    return t_read, p.timings["preprocess"], p.timings["forward"]

                parts = [run() for _ in range(args.repeats)]
                med = [statistics.median(v) for v in zip(*parts)]
                total = statistics.median(sum(p) for p in parts)
                row = dict(model=name, sequence=seq, source=source, read_s=med[0], preprocess_s=med[1],
                           forward_s=med[2], total_s=total)
                results["rows"].append(row)
                print("{:<16} {:<5} {:<10} {:>9.1f} {:>11.1f} {:>9.1f} {:>9.1f}".format(
                    name, seq, source, 1e3 * med[0], 1e3 * med[1], 1e3 * med[2], 1e3 * total))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    results["peak_rss_mb"] = peak
    print("\npeak RSS of this process (all cases, all models): {:.0f} MB".format(peak))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
