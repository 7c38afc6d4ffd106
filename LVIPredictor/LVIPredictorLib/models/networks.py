"""The study's three classifiers and a registry by name.

- ``vanilla_cnn_2d``: five blocks of conv 3x3 + ReLU + max-pool doubling the channels
  (base width 32 by default: 32/64/128/256/512), flatten, FC 512, dropout, FC -> 1 logit.
  The paper gives neither the base width nor the dropout rate; 32 and 0.5 are ours.
- ``resnet10_2d`` / ``resnet10_3d``: ONE ResNet10 implementation parameterised by the
  number of spatial dimensions (as MONAI's ``resnet.py`` does), BasicBlock, one block
  per stage, widths 64/128/256/512, 7x7(x7) stride-2 stem + max-pool.

The 3D head follows the paper: the global average pool is replaced by two conv + pool
layers. A standard strided 3D body leaves 1x2x2 voxels for a 32x64x64 input, too little
for two more pools (and BatchNorm fails at batch 1), so the 3D body is MedicalNet /
Med3D style: layers 3 and 4 keep stride 1 and dilate by 2 and 4 instead (output stride 8,
4x8x8 at 32x64x64). This keeps the parameter count of the standard backbone (14.36 M
with one input channel) and is what "3D ResNet10" usually means in this literature.
The head is kept narrow (512 -> 128 -> 64 channels) so it adds ~2 M parameters rather
than doubling the model.

Parameter counts with one input channel (asserted in the tests):
  ResNet10 backbone (stem + 4 stages): 4,899,520 (2D) / 14,355,520 (3D)
  2D head (GAP + FC 512->1): 513 -> whole 2D model 4,900,033
  3D head (two conv+BN+ReLU+pool 512->128->64, FC 64*1*2*2->1): 1,991,297 -> whole 3D model 16,346,817
  VanillaCNN 2D at 64x64, base 32: 2,617,601
"""

from typing import Dict, Sequence, Tuple

import torch
from torch import nn

from LVIPredictorLib.vocabulary import architectures


def _layers(dims):
    """Conv / BatchNorm / MaxPool classes for 2 or 3 spatial dims."""
    if dims == 2:
        return nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d
    if dims == 3:
        return nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d
    raise ValueError("spatial dims must be 2 or 3, got {!r}".format(dims))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, dims, in_planes, planes, stride=1, dilation=1):
        super().__init__()
        conv, norm, _ = _layers(dims)
        self.conv1 = conv(in_planes, planes, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = conv(planes, planes, 3, stride=1, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = norm(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(conv(in_planes, planes, 1, stride=stride, bias=False), norm(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet10(nn.Module):
    """ResNet10 for 2D or 3D input with one logit out.

    ``head="gap"``: global average pool + FC (the 2D model).
    ``head="conv_pool"``: two conv+BN+ReLU+max-pool layers, flatten, FC (the paper's 3D head),
    used with the dilated (MedicalNet-style) body so the feature map has room for it.
    """

    def __init__(self, dims=2, in_channels=1, widths=(64, 128, 256, 512), dilated=False, head="gap",
                 head_widths=(128, 64), input_size=None):
        super().__init__()
        conv, norm, pool = _layers(dims)
        self.dims = dims
        self.conv1 = conv(in_channels, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = norm(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = pool(3, stride=2, padding=1)
        if dilated:
            strides, dilations = (1, 2, 1, 1), (1, 1, 2, 4)
        else:
            strides, dilations = (1, 2, 2, 2), (1, 1, 1, 1)
        stages = []
        in_planes = widths[0]
        for planes, stride, dilation in zip(widths, strides, dilations):
            stages.append(BasicBlock(dims, in_planes, planes, stride=stride, dilation=dilation))
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.head_kind = head
        if head == "gap":
            self.head = nn.Sequential(nn.AdaptiveAvgPool3d(1) if dims == 3 else nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.fc = nn.Linear(in_planes, 1)
        elif head == "conv_pool":
            layers = []
            for width in head_widths:
                layers += [conv(in_planes, width, 3, padding=1, bias=False), norm(width), nn.ReLU(inplace=True),
                           pool(2, stride=2)]
                in_planes = width
            layers.append(nn.Flatten())
            self.head = nn.Sequential(*layers)
            if input_size is None:
                raise ValueError("the conv_pool head needs input_size to size its classifier")
            self.fc = nn.Linear(in_planes * _conv_pool_cells(input_size, dilated, len(head_widths)), 1)
        else:
            raise ValueError("unknown head {!r}".format(head))
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x):
        """The last convolutional feature map (Grad-CAM hooks here)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        return self.fc(self.head(self.features(x)))


def _conv_pool_cells(input_size, dilated, n_pools):
    """Number of spatial cells left after the body and ``n_pools`` 2x pools."""
    body_stride = 8 if dilated else 32
    cells = 1
    for s in input_size:
        side = -(-s // body_stride)
        for _ in range(n_pools):
            side //= 2
        if side < 1:
            raise ValueError("input size {} is too small for the 3D head (needs >= {} per axis)".format(
                tuple(input_size), body_stride * 2 ** n_pools))
        cells *= side
    return cells


class VanillaCNN2D(nn.Module):
    """Five conv3x3 + ReLU + max-pool blocks doubling the channels, FC 512, dropout, FC."""

    def __init__(self, in_channels=1, base_width=32, n_blocks=5, hidden=512, dropout=0.5, input_size=(64, 64)):
        super().__init__()
        blocks = []
        channels = in_channels
        for i in range(n_blocks):
            width = base_width * 2 ** i
            blocks += [nn.Conv2d(channels, width, 3, stride=1, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            channels = width
        self.body = nn.Sequential(*blocks)
        cells = 1
        for s in input_size:
            side = s // 2 ** n_blocks
            if side < 1:
                raise ValueError("input size {} is too small for {} pooling blocks".format(tuple(input_size), n_blocks))
            cells *= side
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(channels * cells, hidden), nn.ReLU(inplace=True),
                                        nn.Dropout(dropout), nn.Linear(hidden, 1))

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        return self.classifier(self.features(x))


class RadiomicsLogistic(nn.Module):
    """The radiomics baseline: standardised features (training-fold mean and scale), then one linear
    logit — a logistic regression, as a module so it is stored, checked and run like the networks."""

    def __init__(self, feature_names, in_channels=None):
        super().__init__()
        self.feature_names = list(feature_names)
        n = len(self.feature_names)
        self.register_buffer("feature_mean", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("feature_scale", torch.ones(n, dtype=torch.float64))
        self.linear = nn.Linear(n, 1).double()

    def forward(self, x):
        z = (x.reshape(x.shape[0], -1).double() - self.feature_mean) / self.feature_scale
        return self.linear(z).float()


class Ensemble(nn.Module):
    """Several trained copies of one architecture (the five cv5 fold models) predicting as one.

    The output is the logit of the MEAN PROBABILITY over members — and, with ``tta_flip``, over
    each input and its left-right mirror image (a label-preserving view the models were trained
    with) — so ``sigmoid(output)`` is the averaged probability, as nnU-Net averages its folds.
    """

    def __init__(self, members, tta_flip=False):
        super().__init__()
        self.members = nn.ModuleList(members)
        self.tta_flip = bool(tta_flip)

    def views(self, x):
        return [x, x.flip(-1)] if self.tta_flip else [x]

    def forward(self, x):
        probs = torch.stack([torch.sigmoid(m(v).float()) for m in self.members for v in self.views(x)]).mean(dim=0)
        return torch.logit(probs.clamp(1e-7, 1.0 - 1e-7))


def build_ensemble(name, n_members, tta_flip=False, **cfg):
    return Ensemble([build_model(name, **cfg) for _ in range(int(n_members))], tta_flip=tta_flip)


def scaled_config(name, width, **cfg):
    """:func:`default_config` with every channel count multiplied by ``width`` (at least 4 channels)."""
    config = default_config(name)
    config.update(cfg)
    if width == 1.0:
        return config

    def scale(n):
        return max(4, int(round(n * width)))

    # Widths the entry leaves to its builder's defaults are scaled from those defaults.
    defaults = {"base_width": 32, "hidden": 512, "widths": (64, 128, 256, 512), "head_widths": (128, 64)}
    for key in architectures.get(name).width_keys:
        value = config.get(key, defaults[key])
        config[key] = [scale(w) for w in value] if isinstance(value, (list, tuple)) else scale(value)
    return config


def default_config(name):
    # type: (str) -> Dict
    """The architecture configuration used when a card or the CLI gives none."""
    return architectures.get(name).default_config()


def build_model(name, **cfg):
    """Build a model by registry name; ``cfg`` overrides :func:`default_config`."""
    architecture = architectures.get(name)
    config = architecture.default_config()
    config.update(cfg)
    return architecture.build(**config)


def build_vanilla_cnn_2d(**config):
    config["input_size"] = tuple(config["input_size"])
    return VanillaCNN2D(**config)


def build_resnet10_2d(**config):
    if "widths" in config:
        config["widths"] = tuple(config["widths"])
    return ResNet10(dims=2, head="gap", **config)


def build_resnet10_3d(**config):
    if "widths" in config:
        config["widths"] = tuple(config["widths"])
    config["input_size"] = tuple(config["input_size"])
    config["head_widths"] = tuple(config["head_widths"])
    return ResNet10(dims=3, dilated=True, head="conv_pool", **config)


def build_radiomics_lr(**config):
    if "feature_names" not in config:
        raise ValueError("radiomics_lr needs feature_names")
    return RadiomicsLogistic(**config)


def model_dims(name):
    # type: (str) -> int
    architecture = architectures.get(name)
    if not architecture.is_network:
        raise ValueError("{} is not a network; it has no input dimensionality".format(name))
    return architecture.dims


def count_parameters(module):
    # type: (nn.Module) -> int
    return sum(p.numel() for p in module.parameters())


def backbone_parameters(model):
    # type: (nn.Module) -> int
    """Parameters of the ResNet body only (stem + 4 stages), for comparison with MONAI/MedicalNet."""
    parts = (model.conv1, model.bn1, model.layer1, model.layer2, model.layer3, model.layer4)
    return sum(count_parameters(p) for p in parts)


def input_shape(name, batch_size=1, in_channels=1, input_size=None):
    # type: (str, int, int, Sequence[int]) -> Tuple[int, ...]
    size = tuple(input_size or architectures.get(name).input_size)
    return (batch_size, in_channels) + size


def example_input(name, batch_size=1, in_channels=1, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(input_shape(name, batch_size, in_channels), generator=generator)
