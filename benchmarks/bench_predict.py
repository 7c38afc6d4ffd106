"""Prediction cost for one full-field case, per model, per step and per input source (CPU),
side by side with the reference pipeline (MONAI transforms + MONAI resnet10).

Prints figures and writes JSON; never a timed test. Input (default): one ``full`` phantom
case (T2 448x448x40 at 0.7x0.7x4 mm, DCE 448x448x96 at 0.8x0.8x1.5 mm, 4 phases in DICOM),
read from (a) uncompressed NIfTI, (b) gzipped NIfTI, (c) the DICOM series folder (DCE: the
2nd phase picked out of the dynamic series), (d) SimpleITK images already in memory (what
the Slicer Logic has). ``--input synthetic`` uses the issue's 448x448x40 T2 / 512x512x120 DCE
geometry instead (no DICOM). Freshly initialised weights: the cost does not depend on them.

Each repetition reads the case once and runs every model on what it read, so a model's
end-to-end time is read + preprocess + forward(+sigmoid) of the same repetition; the table
gives medians over repetitions. The reference does the same with the MONAI chain of
``monai_reference.py`` (needs ``pip install .[bench]``; ``--no-reference`` skips it).
Peak RSS is measured per model and side in a fresh subprocess (one prediction of the DCE
case from .nii.gz), because ru_maxrss of this process would only give the maximum of all.

    python benchmarks/bench_predict.py [--repeats 5] [--ref-repeats 3] [--threads N] [--json out.json]
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from LVIPredictorLib import inference, models, preprocessing, weights
from LVIPredictorLib.inputs import readers
from LVIPredictorLib.vocabulary import architectures

SEQUENCES = ("t2", "dce")
SOURCES = ("memory", ".nii", ".nii.gz", "dicom")
REFERENCE_SOURCES = ("memory", ".nii.gz")
SYNTHETIC = {
    "t2": dict(size=(448, 448, 40), spacing=(0.7, 0.7, 4.0)),
    "dce": dict(size=(512, 512, 120), spacing=(0.7, 0.7, 1.5)),
}


# --- inputs --------------------------------------------------------------------------------

def synthetic_case(size, spacing, seed=0):
    """Noise volume with a 2 cm bright sphere and its mask (the issue's geometry)."""
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


def phantom_case(folder):
    """Write one ``full`` phantom case; {seq: (image file, mask file, dicom folder)}."""
    from lvi_training.phantom import CohortSpec, write_cohort

    write_cohort(str(folder), CohortSpec(seed=0, n=1, size="full"))
    case = folder / "cases" / "LVI-0001"
    return {"t2": (case / "t2.nii.gz", case / "t2_mask.nii.gz", case / "dicom" / "t2"),
            "dce": (case / "dce_phase2.nii.gz", case / "dce_mask.nii.gz", case / "dicom" / "dce")}


def prepare_inputs(kind, tmp):
    """{seq: {source: (image, mask)}}: paths for file sources, sitk images for 'memory'."""
    inputs = {}
    if kind == "phantom":
        for seq, (image_gz, mask_gz, dicom) in phantom_case(tmp / "phantom").items():
            image, mask = sitk.ReadImage(str(image_gz)), sitk.ReadImage(str(mask_gz))
            inputs[seq] = {".nii.gz": (image_gz, mask_gz), "dicom": (dicom, mask_gz)}
            inputs[seq][".nii"] = _write(image, mask, tmp / seq, ".nii")
            inputs[seq]["memory"] = readers.read_image(image_gz), readers.read_mask(mask_gz, reference=image)
    else:
        for seq, geometry in SYNTHETIC.items():
            image, mask = synthetic_case(**geometry)
            inputs[seq] = {"memory": (image, mask)}
            for suffix in (".nii", ".nii.gz"):
                inputs[seq][suffix] = _write(image, mask, tmp / seq, suffix)
    return inputs


def _write(image, mask, stem, suffix):
    paths = (Path(str(stem) + suffix), Path(str(stem) + "_mask" + suffix))
    sitk.WriteImage(image, str(paths[0]), suffix.endswith(".gz"))
    sitk.WriteImage(mask, str(paths[1]), suffix.endswith(".gz"))
    return paths


def bench_card(name, seq, folder):
    """A model card with fresh weights, written the way real ones are (safetensors + JSON)."""
    torch.manual_seed(0)
    card = dict(model_id="bench-" + name, architecture=name, architecture_config=models.default_config(name),
                sequence=seq, preprocessing=preprocessing.default_spec(name).to_dict(), threshold=0.5)
    return weights.save_model(models.build_model(name), card, folder / "{}-{}".format(seq, name), overwrite=True)[1]


# --- the two sides ---------------------------------------------------------------------------

def read_ours(source, entry):
    if source == "memory":
        return entry
    image = readers.read_image(entry[0])
    return image, readers.read_mask(entry[1], reference=image)


def read_reference(pipeline, source, entry):
    if source == "memory":
        return pipeline.from_memory(*entry)
    return pipeline.read(*entry)


def measure_ours(inputs, predictors, sources, repeats):
    """{(model, seq, source): {step: [seconds per repetition]}}; the first repetition is a warm-up."""
    times = {}
    for seq, by_source in inputs.items():
        for source in sources:
            if source not in by_source:
                continue
            for rep in range(repeats + 1):
                t0 = time.perf_counter()
                image, mask = read_ours(source, by_source[source])
                t_read = time.perf_counter() - t0
                for name, predictor in predictors[seq].items():
                    t0 = time.perf_counter()
                    p = predictor.predict(image, mask)
                    t_predict = time.perf_counter() - t0
                    if rep > 0:  # rep 0 warms up
                        _record(times, (name, seq, source), t_read, p.timings["preprocess"], p.timings["forward"],
                                t_read + t_predict)
    return times


def _record(times, key, read, preprocess, forward, total):
    steps = times.setdefault(key, {"read": [], "preprocess": [], "forward": [], "total": []})
    for step, seconds in (("read", read), ("preprocess", preprocess), ("forward", forward), ("total", total)):
        steps[step].append(seconds)


def reference_probability(network, x):
    with torch.inference_mode():
        return float(torch.sigmoid(network(x)).reshape(-1)[0])


def measure_reference(inputs, sources, repeats):
    import monai_reference

    pipelines = {dims: monai_reference.ReferencePipeline(preprocessing.default_spec(name))
                 for dims, name in ((2, "resnet10_2d"), (3, "resnet10_3d"))}
    networks = {name: monai_reference.reference_network(name) for name in architectures.STUDY_NETWORKS}
    times = {}
    for seq, by_source in inputs.items():
        for source in sources:
            for rep in range(repeats + 1):
                t0 = time.perf_counter()
                data = read_reference(pipelines[3], source, by_source[source])
                t_read = time.perf_counter() - t0
                for dims, pipeline in pipelines.items():
                    t0 = time.perf_counter()
                    x = pipeline.preprocess(data)
                    t_pre = time.perf_counter() - t0
                    for name in architectures.STUDY_NETWORKS:
                        if models.model_dims(name) != dims:
                            continue
                        t0 = time.perf_counter()
                        reference_probability(networks[name], x)
                        t_fwd = time.perf_counter() - t0
                        if rep > 0:  # rep 0 warms up
                            # The 2D chain is shared by both 2D networks; each is charged the whole chain.
                            _record(times, (name, seq, source), t_read, t_pre, t_fwd, t_read + t_pre + t_fwd)
    return times


# --- peak memory, one fresh process per configuration ------------------------------------------

def rss_child(side, name, card_path, image_path, mask_path):
    """Run in a subprocess: one prediction; prints RSS after imports and the peak, in MB."""
    base = _maxrss_mb()
    if side == "ours":
        predictor = inference.Predictor(card_path, device="cpu")
        loaded = _maxrss_mb()
        image = readers.read_image(image_path)
        predictor.predict(image, readers.read_mask(mask_path, reference=image))
    else:
        import monai_reference

        pipeline = monai_reference.ReferencePipeline(preprocessing.default_spec(name))
        network = monai_reference.reference_network(name)
        loaded = _maxrss_mb()
        reference_probability(network, pipeline.preprocess(pipeline.read(image_path, mask_path)))
    print(json.dumps({"imports_mb": base, "loaded_mb": loaded, "peak_mb": _maxrss_mb()}))


def _maxrss_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork + exec, so a child would report
    # the parent's peak. VmHWM belongs to the process's own address space.
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def measure_rss(cards, image_path, mask_path, sides, threads):
    rss = {}
    for side in sides:
        for name in architectures.STUDY_NETWORKS:
            cmd = [sys.executable, os.path.abspath(__file__), "--threads", str(threads), "--rss-child", side, name,
                   str(cards[name]), str(image_path), str(mask_path)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                                 cwd=os.path.dirname(os.path.abspath(__file__)))
            rss[(side, name)] = json.loads(out.stdout.strip().splitlines()[-1])
    return rss


# --- report --------------------------------------------------------------------------------------

def medians(steps):
    return {k: statistics.median(v) for k, v in steps.items()}


def print_table(ours, reference):
    cols = ("read", "preprocess", "forward", "total")
    head = "{:<15}{:<5}{:<8}".format("model", "seq", "source") + "".join(
        "{:>21}".format(c + " ms ours|ref") for c in cols) + "{:>12}".format("speed-up")
    print(head)
    print("-" * len(head))
    rows = []
    for key in ours:
        mo = medians(ours[key])
        mr = medians(reference[key]) if key in reference else None
        cells = []
        for c in cols:
            cells.append("{:>21}".format("{:.0f} | {}".format(1e3 * mo[c], "{:.0f}".format(1e3 * mr[c]) if mr else "-")))
        speedup = "{:>11.1f}x".format(mr["total"] / mo["total"]) if mr else "{:>12}".format("-")
        print("{:<15}{:<5}{:<8}".format(key[0], key[1], key[2]) + "".join(cells) + speedup)
        rows.append(dict(model=key[0], sequence=key[1], source=key[2], ours_s=mo, reference_s=mr,
                         ratio_ours_over_ref={c: mo[c] / mr[c] for c in cols} if mr else None))
    return rows


def print_ratios(rows):
    """ours/ref per step, averaged (geometric mean) over sources and sequences, per model."""
    print("\nours/ref per step (geometric mean over sequences and sources that both read; < 1 = ours faster)")
    for name in architectures.STUDY_NETWORKS:
        ratios = [r["ratio_ours_over_ref"] for r in rows if r["model"] == name and r["ratio_ours_over_ref"]]
        if not ratios:
            continue
        gm = {c: float(np.exp(np.mean([np.log(r[c]) for r in ratios]))) for c in ratios[0]}
        print("  {:<15} ".format(name) + "  ".join("{} {:.3f}".format(c, v) for c, v in gm.items()) +
              "   -> {:.1f}x faster overall".format(1.0 / gm["total"]))


def print_dicom_ratios(rows):
    """Ours from the 4-phase DCE DICOM folder against ours from .nii.gz (issue 13: within 2x)."""
    print("\nDCE from the 4-phase DICOM folder vs from .nii.gz (ours, whole prediction incl. reading)")
    ratios = {}
    for name in architectures.STUDY_NETWORKS:
        by_source = {r["source"]: r["ours_s"]["total"] for r in rows if r["model"] == name and r["sequence"] == "dce"}
        if "dicom" in by_source and ".nii.gz" in by_source:
            ratios[name] = by_source["dicom"] / by_source[".nii.gz"]
            print("  {:<15} {:>5.0f} ms vs {:>5.0f} ms -> {:.2f}x".format(
                name, 1e3 * by_source["dicom"], 1e3 * by_source[".nii.gz"], ratios[name]))
    return ratios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", choices=("phantom", "synthetic"), default="phantom")
    parser.add_argument("--repeats", type=int, default=5, help="timed repetitions of our pipeline (after a warm-up)")
    parser.add_argument("--ref-repeats", type=int, default=3, help="timed repetitions of the MONAI reference")
    parser.add_argument("--ref-sources", default=",".join(REFERENCE_SOURCES),
                        help="comma-separated sources for the reference: memory,.nii,.nii.gz (MONAI cannot read "
                             "the multi-phase DICOM folder without ITK)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch and SimpleITK threads for both sides (default: torch's default)")
    parser.add_argument("--no-reference", action="store_true", help="skip the MONAI side")
    parser.add_argument("--no-rss", action="store_true", help="skip the per-configuration peak-RSS subprocesses")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--rss-child", nargs=5, metavar=("SIDE", "MODEL", "CARD", "IMAGE", "MASK"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    if args.rss_child:
        rss_child(*args.rss_child)
        return 0
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="lvi-bench-predict-"))
    try:
        inputs = prepare_inputs(args.input, tmp)
        cards = {seq: {name: bench_card(name, seq, tmp) for name in architectures.STUDY_NETWORKS} for seq in SEQUENCES}
        predictors = {seq: {name: inference.Predictor(cards[seq][name], device="cpu") for name in architectures.STUDY_NETWORKS}
                      for seq in SEQUENCES}
        geometry = {seq: "{}x{}x{} @ {}".format(*inputs[seq]["memory"][0].GetSize(), "x".join(
            "{:g}".format(s) for s in inputs[seq]["memory"][0].GetSpacing())) for seq in SEQUENCES}
        print("torch {} on {} threads (SimpleITK {} threads); input: {} case, t2 {}, dce {} mm".format(
            torch.__version__, args.threads, args.threads, args.input, geometry["t2"], geometry["dce"]))
        print("median of {} runs (ours) / {} runs (reference: MONAI chain + resnet10, conv1_t_stride=2)\n".format(
            args.repeats, args.ref_repeats))
        ours = measure_ours(inputs, predictors, SOURCES, args.repeats)
        reference = {}
        if not args.no_reference:
            ref_sources = [s for s in args.ref_sources.split(",") if s]
            reference = measure_reference(inputs, ref_sources, args.ref_repeats)
        rows = print_table(ours, reference)
        if reference:
            print_ratios(rows)
        dicom_ratios = print_dicom_ratios(rows)
        rss = {}
        if not args.no_rss:
            sides = ("ours",) if args.no_reference else ("ours", "reference")
            rss = measure_rss(cards["dce"], inputs["dce"][".nii.gz"][0], inputs["dce"][".nii.gz"][1], sides,
                              args.threads)
            print("\npeak RSS, one DCE prediction from .nii.gz in a fresh process (MB: after imports / model "
                  "loaded / peak)")
            for (side, name), r in rss.items():
                print("  {:<10}{:<15} {:>6.0f} {:>6.0f} {:>6.0f}".format(side, name, r["imports_mb"], r["loaded_mb"],
                                                                       r["peak_mb"]))
        print("\nwhole benchmark took {:.0f} s".format(time.perf_counter() - started))
        if args.json:
            results = {"torch": torch.__version__, "threads": args.threads, "input": args.input,
                       "geometry": geometry, "repeats": args.repeats, "ref_repeats": args.ref_repeats, "rows": rows,
                       "dce_dicom_over_nii_gz": dicom_ratios,
                       "peak_rss_mb": [dict(side=k[0], model=k[1], **v) for k, v in rss.items()]}
            Path(args.json).write_text(json.dumps(results, indent=2))
    finally:
        shutil.rmtree(str(tmp), ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
