"""Do the heat-maps point at the evidence? The localisation score per bundled model and method.

A phantom cohort (new cases: not the seed the bundled models were trained on) is generated with
its sign regions (``lvi_training.phantom.sign_regions``). For every bundled network card, every
case and every attribution method the registry allows for its architecture (Grad-CAM and
Grad-CAM++ at each of ``Architecture.heatmap_layers``, occlusion sensitivity), the map is placed
on the grid of the series the model crops on and scored:

- evidence share: the share of the map's mass inside E = VOI ∪ sign regions of that series;
  a uniform map over the same support (the voxels the model saw: its crop, on the slices it
  read) scores |E ∩ support| / |support|, the chance level;
- sign share: the share inside the sign regions alone; a map of the VOI alone (uniform inside
  the VOI) scores |VOI ∩ signs| / |VOI|, so a map that beats it points at the signs more than an
  outline of the tumour does.

The method and layer of each architecture is the one with the highest mean evidence share over
all its bundled cards and the cases it was measured on (``--occlusion-cases`` limits the slow
occlusion to the first K cases); ``--write-cards`` records it as the cards' ``heatmap`` field.

    python benchmarks/heatmap_localisation.py --n 24 --out /tmp/hm-bench [--write-cards]
"""

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from LVIPredictorLib import weights
from LVIPredictorLib.inference import Predictor, heatmaps
from LVIPredictorLib.preprocessing import Channel, prepare_input
from LVIPredictorLib.vocabulary import architectures, kinds, sequences
from lvi_training.phantom import CohortSpec, write_cohort

SERIES_FILES = {"t2": ("t2.nii.gz", "t2_mask.nii.gz", "t2_signs.nii.gz"),
                "dce": ("dce_phase2.nii.gz", "dce_mask.nii.gz", "dce_signs.nii.gz")}


def candidates(architecture):
    """(method, layer) pairs the benchmark measures for an architecture, from its registry entry."""
    entry = architectures.get(architecture)
    pairs = [(method, layer) for layer in entry.heatmap_layers for method in heatmaps.LAYER_METHODS]
    if entry.occlusion_patch:
        pairs.append((heatmaps.OCCLUSION, None))
    return pairs


def network_cards():
    catalog = weights.bundled_catalog()
    cards = []
    for entry in catalog:
        card = weights.load_card(weights.models_dir() / entry["card"])
        # Networks only: a late fusion's and a combined model's maps are their members' / imaging model's.
        if kinds.kind_of(card).heatmap and kinds.kind_of(card).has_network:
            cards.append(card)
    return cards


def read_case(folder):
    out = {}
    for name, files in SERIES_FILES.items():
        image, mask, signs = (sitk.ReadImage(str(folder / f)) for f in files)
        out[name] = {"image": image, "mask": mask, "signs": sitk.GetArrayFromImage(signs)}
    return out


def share(weights_map, region):
    total = float(weights_map.sum())
    return float(weights_map[region].sum()) / total if total > 0 else float("nan")


def score_card(card, cases, device, occlusion_cases=None):
    predictor = Predictor(card, device=device)
    names = predictor.sequences
    reference = names.index(sequences.grid_reference(card["sequence"]))
    shown = names[reference]
    rows = []
    for index, (case_id, case) in enumerate(cases):
        channels = [Channel(case[n]["image"], case[n]["mask"], n, n) for n in names]
        prepared = prepare_input(channels, predictor.spec, names, grid_channel=reference)
        x = torch.from_numpy(prepared.inputs).to(predictor.device)
        image = case[shown]["image"]
        voi = sitk.GetArrayFromImage(case[shown]["mask"]) > 0
        signs = case[shown]["signs"] > 0
        evidence = voi | signs
        support = sitk.GetArrayFromImage(heatmaps.on_image_grid(
            np.ones((x.shape[0],) + tuple(x.shape[2:]), np.float32), prepared, image))
        row = {"case": case_id, "model_id": card["model_id"], "architecture": card["architecture"],
               "series": shown, "uniform_evidence": share(support, evidence),
               "voi_map_signs": share(voi.astype(np.float64), signs) if signs.any() else float("nan"),
               "methods": {}}
        for method, layer in candidates(card["architecture"]):
            if method == heatmaps.OCCLUSION and occlusion_cases is not None and index >= occlusion_cases:
                continue  # hundreds of forward passes a case: measured on the first cases only
            t0 = time.perf_counter()
            _, maps = heatmaps.attribution(predictor.model, x, card["architecture"], method, layer,
                                           image_channels=len(names))
            heat = sitk.GetArrayFromImage(heatmaps.on_image_grid(maps, prepared, image))
            row["methods"][heatmaps.describe(method, layer)] = {
                "method": method, "layer": layer, "evidence": share(heat, evidence),
                "signs": share(heat, signs) if signs.any() else float("nan"),
                "seconds": time.perf_counter() - t0}
        rows.append(row)
    return rows


def _mass_share(value):
    """A map with no mass (Grad-CAM's ReLU removed everything) points at nothing: share 0."""
    return 0.0 if value is None or np.isnan(value) else value


def summarise(rows):
    """Per card and method: mean evidence/sign share; per architecture: the chosen method.

    The choice compares the methods on the same cases: those every candidate was measured on
    (occlusion may run on fewer), pooled over the architecture's bundled cards.
    """
    by_card = defaultdict(list)
    for row in rows:
        by_card[row["model_id"]].append(row)
    table, paired = [], defaultdict(list)
    for model_id, card_rows in by_card.items():
        first = card_rows[0]
        uniform = np.mean([r["uniform_evidence"] for r in card_rows])
        voi_signs = np.nanmean([r["voi_map_signs"] for r in card_rows])
        for name, m in first["methods"].items():
            measured = [r for r in card_rows if name in r["methods"]]
            evidence = [_mass_share(r["methods"][name]["evidence"]) for r in measured]
            signs = [_mass_share(r["methods"][name]["signs"]) for r in measured]
            seconds = np.mean([r["methods"][name]["seconds"] for r in measured])
            empty = sum(np.isnan(r["methods"][name]["evidence"]) for r in measured)
            table.append({"model_id": model_id, "series": first["series"], "map": name,
                          "evidence": float(np.mean(evidence)), "evidence_sd": float(np.std(evidence)),
                          "uniform": float(uniform), "signs": float(np.mean(signs)),
                          "voi_map_signs": float(voi_signs), "seconds": float(seconds), "n": len(measured),
                          "empty": int(empty)})
        every = set(first["methods"])
        for r in card_rows:
            if set(r["methods"]) == every:
                paired[first["architecture"]].append(r)
    chosen = {}
    for architecture, both in paired.items():
        names = list(both[0]["methods"])
        means = {name: float(np.mean([_mass_share(r["methods"][name]["evidence"]) for r in both])) for name in names}
        best = max(names, key=lambda name: means[name])
        m = both[0]["methods"][best]
        chosen[architecture] = {"method": m["method"], "layer": m["layer"], "mean_evidence_share": round(means[best], 3),
                                "paired_cases": len(both),
                                "means": {name: round(value, 3) for name, value in means.items()}}
    return table, chosen


def markdown(table, chosen):
    lines = ["| model | series | map | n (empty) | evidence share (sd) | uniform | sign share | VOI map sign share "
             "| s/case |", "|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        lines.append("| {model_id} | {series} | {map} | {n} ({empty}) | {evidence:.3f} ({evidence_sd:.3f}) | {uniform:.3f} | "
                     "{signs:.3f} | {voi_map_signs:.3f} | {seconds:.2f} |".format(**t))
    lines += ["", "| architecture | paired cases | mean evidence share per method (same cases) | chosen |",
              "|---|---|---|---|"]
    for architecture, c in chosen.items():
        lines.append("| {} | {} | {} | {} |".format(
            architecture, c["paired_cases"], "; ".join("{} {:.3f}".format(n, v) for n, v in c["means"].items()),
            heatmaps.describe(c["method"], c["layer"])))
    return "\n".join(lines)


def write_cards(chosen):
    """Add the chosen ``heatmap`` field to every bundled card of each architecture (nothing else changes)."""
    written = []
    for path in sorted(weights.models_dir().glob("*.json")):
        card = json.loads(path.read_text())
        if card.get("architecture") in chosen:
            c = chosen[card["architecture"]]
            card["heatmap"] = {"method": c["method"], "layer": c["layer"]} if c["layer"] else {"method": c["method"]}
            path.write_text(json.dumps(card, indent=2) + "\n")
            written.append(path.name)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=24, help="phantom cases (default 24)")
    parser.add_argument("--seed", type=int, default=7, help="cohort seed (default 7; the bundled models saw 2024)")
    parser.add_argument("--out", required=True, help="folder for results.json and results.md (and the cohort)")
    parser.add_argument("--cohort", help="an existing phantom cohort with sign regions (default: OUT/cohort, made)")
    parser.add_argument("--merge", nargs="*", help="summarise the results.json of these runs (e.g. one per model)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--occlusion-cases", type=int, help="occlusion on the first K cases only (it is slow)")
    parser.add_argument("--models", nargs="*", help="model ids (default: every bundled network)")
    parser.add_argument("--write-cards", action="store_true", help="record the chosen method in the bundled cards")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in args.merge or []:
        rows += json.loads((Path(run) / "results.json").read_text())["rows"]
    cohort = Path(args.cohort) if args.cohort else out / "cohort"
    if args.merge is None and not (cohort / "cohort.csv").is_file():
        write_cohort(str(cohort), CohortSpec(seed=args.seed, n=args.n, outputs=("nifti",)), workers=1)
    cases = [] if args.merge is not None else [
        (folder.name, read_case(folder)) for folder in sorted((cohort / "cases").iterdir())][:args.n]
    for card in network_cards() if cases else []:
        if args.models and card["model_id"] not in args.models:
            continue
        t0 = time.perf_counter()
        rows += score_card(card, cases, args.device, args.occlusion_cases)
        print("{}: {:.0f} s".format(card["model_id"], time.perf_counter() - t0), file=sys.stderr, flush=True)
    table, chosen = summarise(rows)
    (out / "results.json").write_text(json.dumps({"rows": rows, "table": table, "chosen": chosen,
                                                  "command": " ".join(sys.argv)}, indent=1))
    text = markdown(table, chosen)
    (out / "results.md").write_text(text + "\n")
    print(text)
    if args.write_cards:
        print("cards written: " + ", ".join(write_cards(chosen)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
