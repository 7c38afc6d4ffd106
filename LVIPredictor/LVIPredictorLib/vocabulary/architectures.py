"""Every model architecture LVIPredictor knows, as data: one :class:`Architecture` entry each.

An entry says what the rest of the code needs to know without asking the network: its kind
(a pixel network, or the radiomics baseline that reads features), its input dimensionality and
default input size, the study's batch size, its default configuration and which of its
channel counts scale with ``--width``, the layers Grad-CAM may read, the occlusion patch and the
heat-map method measured best, the bounds of a card's configuration, its label for people, and
where its builder lives (``"module:function"``, imported only when a model is built, so this
registry imports no torch). Adding an architecture is one entry here plus its builder.

The late fusion of several trained models is not an architecture but a model kind (see
``vocabulary.kinds``): its card names ``late_fusion`` as architecture and lists members.
"""

import importlib
from collections import OrderedDict
from typing import Dict, Optional, Tuple

NETWORK = "network"
RADIOMICS = "radiomics"


class Architecture(object):
    def __init__(self, name, label, kind, builder, dims=None, input_size=None, paper_batch_size=None,
                 default_config=None, width_keys=(), heatmap_layers=(), occlusion_patch=None, short_label=None,
                 config_check=None, measured_heatmap=None):
        self.name = name
        self.label = label  # as the study's table writes it, e.g. "2D VanillaCNN"
        self.short_label = short_label or label
        self.kind = kind
        self.builder = builder
        self.dims = dims
        self.input_size = tuple(input_size) if input_size else None
        self.paper_batch_size = paper_batch_size
        self._default_config = dict(default_config or {})
        self.width_keys = tuple(width_keys)
        # Layers a Grad-CAM may read, last (coarsest) first: the first is the default of a card
        # without a ``heatmap`` field; the others are the finer candidates the benchmark measures.
        self.heatmap_layers = tuple(heatmap_layers)
        # Occlusion patch in input voxels, in array order ((Y, X) or (Z, Y, X)).
        self.occlusion_patch = tuple(occlusion_patch) if occlusion_patch else None
        # "module:function(config, architecture)" bounding a card's architecture_config before anything is built.
        self.config_check = config_check
        # The heat-map method that pointed best at the phantom's evidence (benchmarks/heatmap_localisation.py,
        # docs/heatmaps.md); `lvi export` writes it into new cards.
        self.measured_heatmap = dict(measured_heatmap) if measured_heatmap else None

    def __repr__(self):
        return "Architecture({!r})".format(self.name)

    @property
    def heatmap_layer(self):
        return self.heatmap_layers[0] if self.heatmap_layers else None

    @property
    def is_network(self):
        return self.kind == NETWORK

    def default_config(self):
        # type: () -> Dict
        config = {}
        for key, value in self._default_config.items():
            config[key] = list(value) if isinstance(value, tuple) else value
        return config

    def build(self, **config):
        return _named(self.builder)(**config)

    def check_config(self, config):
        """Raise when a card's configuration is out of this architecture's bounds (no check: no-op)."""
        if self.config_check:
            _named(self.config_check)(config, self)


def _named(reference):
    """The function a "module:function" reference names (imported when first used)."""
    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(module), function)


REGISTRY = OrderedDict()  # type: Dict[str, Architecture]


def register(architecture):
    # type: (Architecture) -> Architecture
    """Add an entry (a research fork's own network; tests add a tiny one). Returns it."""
    REGISTRY[architecture.name] = architecture
    return architecture


def unregister(name):
    REGISTRY.pop(name, None)


_NETWORKS = "LVIPredictorLib.models.networks"
_CARD_SCHEMA = "LVIPredictorLib.card_schema"
register(Architecture(
    "vanilla_cnn_2d", "2D VanillaCNN", NETWORK, _NETWORKS + ":build_vanilla_cnn_2d", dims=2, input_size=(64, 64),
    paper_batch_size=64, short_label="VanillaCNN 2D",
    default_config={"in_channels": 1, "base_width": 32, "dropout": 0.5, "input_size": (64, 64)},
    width_keys=("base_width", "hidden"), heatmap_layers=("body", "body.11", "body.8"), occlusion_patch=(8, 8),
    config_check=_CARD_SCHEMA + ":check_vanilla_cnn_config",
    measured_heatmap={"method": "gradcam", "layer": "body.8"}))
register(Architecture(
    "resnet10_2d", "2D ResNet10", NETWORK, _NETWORKS + ":build_resnet10_2d", dims=2, input_size=(64, 64),
    paper_batch_size=64, short_label="ResNet10 2D", default_config={"in_channels": 1}, width_keys=("widths",),
    heatmap_layers=("layer4", "layer3", "layer2"), occlusion_patch=(8, 8),
    config_check=_CARD_SCHEMA + ":check_resnet_config", measured_heatmap={"method": "gradcam", "layer": "layer2"}))
register(Architecture(
    "resnet10_3d", "3D ResNet10", NETWORK, _NETWORKS + ":build_resnet10_3d", dims=3, input_size=(32, 64, 64),
    paper_batch_size=8, short_label="ResNet10 3D",
    default_config={"in_channels": 1, "head_widths": (128, 64), "input_size": (32, 64, 64)},
    width_keys=("widths", "head_widths"), heatmap_layers=("layer4", "layer2", "layer1"),
    occlusion_patch=(16, 32, 32),  # coarse: 27 half-overlapping patches, each a forward pass of the ensemble
    config_check=_CARD_SCHEMA + ":check_resnet_config", measured_heatmap={"method": "gradcam", "layer": "layer1"}))
register(Architecture(
    "radiomics_lr", "Radiomics + LR (baseline)", RADIOMICS, _NETWORKS + ":build_radiomics_lr",
    config_check=_CARD_SCHEMA + ":check_radiomics_config"))

# The study's three networks, in its table's order.
STUDY_NETWORKS = ("vanilla_cnn_2d", "resnet10_2d", "resnet10_3d")
RADIOMICS_BASELINE = "radiomics_lr"


def get(name):
    # type: (str) -> Architecture
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError("unknown model {!r}; choose one of {}".format(name, ", ".join(REGISTRY)))


def names(kind=None):
    # type: (Optional[str]) -> Tuple[str, ...]
    """Registered architecture names, optionally of one kind (NETWORK or RADIOMICS)."""
    return tuple(n for n, a in REGISTRY.items() if kind is None or a.kind == kind)


def networks():
    # type: () -> Tuple[str, ...]
    return names(NETWORK)


def is_radiomics(name):
    # type: (str) -> bool
    return name in REGISTRY and REGISTRY[name].kind == RADIOMICS
