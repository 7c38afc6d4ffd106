"""``lvi info``: versions, the torch device that would be used, bundled models; ``lvi info MODEL``:
one model card in full, with its weights verified."""

import platform

from LVIPredictorLib.vocabulary import architectures, kinds, sequences

from .commands import help_of


def register(subparsers):
    p = subparsers.add_parser("info", help=help_of("info"))
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="bundled model id or model card JSON: print the card (what the model reads, how it was "
                        "trained, its metrics and threshold) and verify its weights")
    p.add_argument("--markdown", action="store_true",
                   help="the bundled models as docs/results.md's Markdown table (metrics and bounds from their cards)")
    p.set_defaults(func=run)


def run(args):
    if args.model:
        return show_card(args.model)
    if args.markdown:
        return print_markdown()
    import numpy
    import SimpleITK
    import pydicom
    import torch

    import LVIPredictorLib
    from LVIPredictorLib import inference, weights

    print("LVIPredictor {}".format(LVIPredictorLib.__version__))
    print("python       {}".format(platform.python_version()))
    for name, mod in (("torch", torch), ("SimpleITK", SimpleITK), ("pydicom", pydicom), ("numpy", numpy)):
        print("{:<12} {}".format(name, getattr(mod, "__version__", "?")))
    print("device       {}".format(inference.resolve_device("auto")))
    catalog = weights.bundled_catalog()
    if not catalog:
        print("bundled models: none found in {}".format(weights.models_dir()))
    else:
        print("bundled models ({}):".format(weights.models_dir()))
        for entry in catalog:
            card = weights.load_card(entry["card_path"])
            m = card.get("metrics", {})
            auc = "AUC {:.2f} ({:.2f}-{:.2f}, n={})".format(m["auc"], m["auc_ci_delong"][0], m["auc_ci_delong"][1],
                                                           m.get("n")) if "auc" in m else "no metrics"
            print("  {:<30} {:<15} {:<6} {:<30} {}".format(entry["model_id"], entry["architecture"], entry["sequence"],
                                                          auc, "DEMO" if entry.get("demo") else ""))
    return 0


MARKDOWN_HEADER = ("| sequence | model | recipe, epochs | OOF AUC (95 % CI, DeLong) | accuracy | sensitivity | "
                   "specificity | threshold | best possible AUC for this input | AUC / best |\n"
                   "|---|---|---|---|---|---|---|---|---|---|")


def markdown_row(card):
    """One bundled card as a row of docs/results.md's table; every figure is read from the card."""

    m, training = card["metrics"], card.get("training") or {}
    recipe = (training.get("recipe") or {}).get("name", "-")
    if architectures.is_radiomics(card["architecture"]):
        how = "radiomics + LR"
    elif kinds.is_combined(card):
        how = "clinical columns + the probability of " + card["imaging_model"]["model_id"]
    elif kinds.is_late_fusion(card):
        how = "mean logit of " + " + ".join("{} {}".format(sequences.LABELS[m["sequence"]], m["architecture"])
                                            for m in card["members"])
    else:
        how = "{}, {}".format(recipe, training.get("epochs"))
    bound = (card.get("best_possible_auc") or {}).get("auc")
    cells = [sequences.LABELS[card["sequence"]], card["architecture"], how,
             "{:.3f} ({:.3f}–{:.3f})".format(m["auc"], *m["auc_ci_delong"])]
    cells += ["{:.2f} ({:.2f}–{:.2f})".format(m[k], *m[k + "_ci"]) for k in ("accuracy", "sensitivity", "specificity")]
    cells += ["{:.3f}".format(card["threshold"]), "{:.3f}".format(bound) if bound else "-",
              "{:.3f}".format(m["auc"] / bound) if bound else "-"]
    return "| " + " | ".join(cells) + " |"


def print_markdown():
    from LVIPredictorLib import weights

    print(MARKDOWN_HEADER)
    for entry in weights.bundled_catalog():
        print(markdown_row(weights.load_card(entry["card_path"])))
    return 0


def _ci(metrics, name):
    value, ci = metrics.get(name), metrics.get(name + "_ci") or metrics.get(name + "_ci_delong")
    if value is None:
        return "-"
    return "{:.3f} ({:.3f}-{:.3f})".format(value, ci[0], ci[1]) if ci else "{:.3f}".format(value)


def _architecture_line(card, n_parameters):
    config = card["architecture_config"]
    if architectures.is_radiomics(card["architecture"]):
        return "radiomics_lr (logistic regression on {} standardised features, {} parameters)".format(
            len(config["feature_names"]), n_parameters)
    ensemble = card.get("ensemble")
    members = " x {} fold models averaged{}".format(ensemble["members"], " with left-right flips"
                                                   if ensemble.get("tta_flip") else "") if ensemble else ""
    return "{}{} ({:,} parameters, {} input channel(s))".format(card["architecture"], members, n_parameters,
                                                                config.get("in_channels", 1))


def _input_line(card, spec):
    if spec.get("kind") == "radiomics":
        return "radiomics features of the VOI and a {} mm peritumoral ring{}".format(
            spec["ring_mm"], ", with dynamic-series kinetics" if spec.get("dce_dynamic") else "")
    voi = ", VOI channel ({})".format(spec.get("mask_encoding", "binary")) if spec.get("mask_channel") else ""
    return "{}D crop {} voxels at {} mm, {} mm margin, {} slice(s), {}{}".format(
        spec["dims"], spec["crop_size"][:spec["dims"]], spec["target_spacing"][:spec["dims"]], spec["margin_mm"],
        spec["n_slices"], spec["normalization"], voi)


def _bound_line(bound):
    if not bound:
        return "- (not a phantom cohort: unknown)"
    return "{:.3f} for this input ({}; phantom generator)".format(bound["auc"], bound["input"])


def show_card(model):
    from LVIPredictorLib import models, weights

    card = weights.load_card(weights.resolve_card(model))
    if kinds.is_late_fusion(card):
        return _show_late_fusion(card, weights.member_cards(card))
    if kinds.is_combined(card):
        return _show_combined(card)
    network, _ = weights.load_model(card)  # verifies the SHA-256 and every tensor's shape
    spec = card["preprocessing"]
    training = card.get("training") or {}
    reads = sequences.LABELS[card["sequence"]]
    if sequences.reads_dce(card["sequence"]):
        reads += " (DCE phase {}, 1 = pre-contrast)".format(sequences.card_phase(card))
    lines = [
        ("model", card["model_id"] + ("  [DEMO weights]" if card.get("demo") else "")),
        ("card", card["_card_path"]),
        ("architecture", _architecture_line(card, models.count_parameters(network))),
        ("reads", reads),
        ("input", _input_line(card, spec)),
    ] + _metric_lines(card) + [
        ("trained by", training.get("command", "-")),
        ("training", "{} epochs, seed {}, split {}, {} cases; {}".format(
            training.get("epochs", "-"), training.get("seed", "-"), training.get("split", "-"),
            training.get("n_cases", "-"), training.get("exported_model", "-"))),
        ("weights", "{} ({}), SHA-256 {} verified".format(card["weights_file"], card.get("weights_dtype", "?"),
                                                          card["weights_sha256"])),
        ("intended use", card.get("intended_use", "-")),
    ]
    _print_lines(lines, card)
    return 0


def _metric_lines(card):
    metrics = card.get("metrics") or {}
    return [
        ("threshold", "{:.4f} ({})".format(card["threshold"], card.get("threshold_method", "?"))),
        ("metrics", "{} on {} cases ({} LVI+); 95 % CIs".format(metrics.get("scope", "-"), metrics.get("n", "-"),
                                                    metrics.get("n_positive", "-"))),
        ("  AUC", _ci(metrics, "auc")),
        ("  accuracy", _ci(metrics, "accuracy")),
        ("  sensitivity", _ci(metrics, "sensitivity")),
        ("  specificity", _ci(metrics, "specificity")),
        ("best possible", _bound_line(card.get("best_possible_auc"))),
    ]


def _print_lines(lines, card):
    reference = card.get("reference_prediction")
    if reference:
        lines.append(("sample case", "{} -> probability {:.4f}".format(reference["case"], reference["probability"])))
    for key, value in lines:
        print("{:<14} {}".format(key, value))


def _show_late_fusion(card, members):
    from LVIPredictorLib import weights

    for member in members:
        weights.load_model(member)  # verifies each member's weights file against its SHA-256

    lines = [("model", card["model_id"] + ("  [DEMO weights]" if card.get("demo") else "")),
             ("card", card["_card_path"]),
             ("architecture", "late fusion: {} of {} members, each reading its own series".format(
                 card.get("combine", "?"), len(members)))]
    lines += [("  member", "{} ({} on {}), weights SHA-256 {} verified".format(
        m["model_id"], m["architecture"], sequences.LABELS[m["sequence"]], m["weights_sha256"][:16]))
        for m in members]
    lines += _metric_lines(card)
    lines += [("trained by", (card.get("training") or {}).get("command", "-")),
              ("intended use", card.get("intended_use", "-"))]
    _print_lines(lines, card)
    return 0


def _show_combined(card):
    from LVIPredictorLib import clinical, weights

    imaging = card["_imaging_card"]
    if not kinds.is_late_fusion(imaging) and kinds.kind_of(imaging).has_network:
        weights.load_model(imaging)  # verifies the imaging model's weights file against its SHA-256
    section = card["clinical"]
    lines = [("model", card["model_id"] + ("  [DEMO weights]" if card.get("demo") else "")),
             ("card", card["_card_path"]),
             ("architecture", "clinical + imaging: logistic regression on {} clinical input(s), their missing "
                              "indicators and the logit of an imaging model's probability".format(len(section["inputs"]))),
             ("  imaging", "{} ({} on {}; {}), weights SHA-256 {} verified".format(
                 imaging["model_id"], imaging["architecture"], sequences.LABELS[imaging["sequence"]],
                 imaging["_card_path"], imaging["weights_sha256"][:16]))]
    lines += [("  clinical", line) for line in clinical.describe_inputs(card)]
    lines += [("  missing", section["imputation"]["rule"])]
    lines += _metric_lines(card)
    lines += [("trained by", (card.get("training") or {}).get("command", "-")),
              ("card SHA-256", "{} verified (coefficients and imaging weights)".format(card["weights_sha256"])),
              ("intended use", card.get("intended_use", "-"))]
    _print_lines(lines, card)
    return 0
