"""``lvi info``: versions, the torch device that would be used, bundled models."""

import platform


def register(subparsers):
    p = subparsers.add_parser("info", help="print library versions, the compute device and the bundled models")
    p.set_defaults(func=run)


def run(args):
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
