"""The ``lvi`` subcommands in one table: name -> (module, one-line help).

``lvi --help`` lists them from here without importing any command (several import torch, seconds
on a busy machine); ``lvi COMMAND ...`` imports only that command's module. Each module's parser
takes its one-line help from here too, so the list and the command never disagree.
"""

from collections import OrderedDict

COMMANDS = OrderedDict([
    ("info", ("lvi_training.cmd_info",
     "print library versions, the compute device and the bundled models; with MODEL, that model's card")),
    ("phantom", ("lvi_training.cmd_phantom",
     'generate a synthetic breast-MRI cohort with a known best-possible AUC')),
    ("predict", ("lvi_training.cmd_predict",
     'predict LVI for one case (image + VOI) with bundled or trained weights')),
    ("validate-cohort", ("lvi_training.cmd_validate",
     'check a cohort folder (cohort.csv + images + masks) and print its prevalence')),
    ("import", ("lvi_training.cmd_import",
     'write COHORT/cohort.csv over an nnU-Net-style dataset or a MONAI datalist (no copying)')),
    ("preprocess", ("lvi_training.cmd_preprocess",
     'build the preprocessed-input cache of a cohort in parallel, before training')),
    ("train", ("lvi_training.cmd_train",
     'train one model on one sequence (or both fused); writes a run folder')),
    ("evaluate", ("lvi_training.cmd_evaluate",
     "recompute a run's metrics, or score a trained model on another cohort")),
    ("table", ("lvi_training.cmd_table",
     "train and evaluate every sequence x model combination; print the paper's Table 1 with CIs")),
    ("export", ("lvi_training.cmd_export",
     "write a run's model as STEM.safetensors + STEM.json (model card), optionally TorchScript/ONNX")),
    ("fuse", ("lvi_training.cmd_fuse",
     'write a late-fusion model card (exported models, their logits averaged)')),
])


def help_of(name):
    """The one-line help of command ``name``."""
    return COMMANDS[name][1]
