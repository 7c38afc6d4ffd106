"""Attribution methods: each finds planted evidence; the card chooses; a map never changes the probability."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch
from torch import nn

from LVIPredictorLib import inference
from LVIPredictorLib.inference import heatmaps
from LVIPredictorLib.vocabulary import architectures
from core_cards import fresh_card
from synthetic_images import make_grid, mr_image, sphere_mask


class Split(nn.Module):
    """Two feature channels: the image inside a fixed square, and the image outside it."""

    def __init__(self):
        super().__init__()
        self.region = torch.zeros(1, 1, 32, 32)
        self.region[..., 8:16, 20:28] = 1.0

    def forward(self, x):
        image = x[:, :1]
        return torch.cat([image * self.region, image * (1.0 - self.region)], dim=1)


class RegionScore(nn.Module):
    """logit = the sum of the image inside the square: only that square raises the score."""

    def __init__(self):
        super().__init__()
        self.features = Split()

    def forward(self, x):
        return self.features(x)[:, 0].sum(dim=(1, 2)).reshape(-1, 1)


@pytest.fixture
def planted():
    architectures.register(architectures.Architecture(
        "test_region", "test region", architectures.NETWORK, "unused:unused", dims=2, input_size=(32, 32),
        heatmap_layers=("features",), occlusion_patch=(4, 4)))
    yield
    architectures.unregister("test_region")


@pytest.mark.parametrize("method", heatmaps.METHODS)
def test_each_method_puts_its_mass_on_the_planted_evidence(planted, method):
    x = torch.ones(2, 2, 32, 32)
    logits, maps = heatmaps.attribution(RegionScore(), x, "test_region", method, image_channels=1)
    assert maps.shape == (2, 32, 32) and maps.max() == pytest.approx(1.0)
    inside = maps[:, 8:16, 20:28].sum() / maps.sum()
    # The half-overlapping occlusion patches reach 2 voxels beyond the square; Grad-CAM is exact.
    assert inside > (0.5 if method == heatmaps.OCCLUSION else 0.99)
    assert logits.reshape(-1).tolist() == [64.0, 64.0]


def test_a_card_without_a_heatmap_field_keeps_grad_cam_at_the_last_layer():
    assert heatmaps.choice({"architecture": "resnet10_2d"}) == ("gradcam", "layer4")
    assert heatmaps.choice({"architecture": "resnet10_2d", "heatmap": {"method": "gradcam++", "layer": "layer2"}}) \
        == ("gradcam++", "layer2")
    assert heatmaps.choice({"architecture": "resnet10_3d", "heatmap": {"method": "occlusion"}}) == ("occlusion", None)
    with pytest.raises(ValueError, match="unknown heat-map method 'lime'"):
        heatmaps.choice({"architecture": "resnet10_2d", "model_id": "m", "heatmap": {"method": "lime"}})


def test_every_registry_layer_exists_in_its_network():
    from LVIPredictorLib import models
    for name in architectures.networks():
        model = models.build_model(name)
        for layer in architectures.get(name).heatmap_layers:
            model.get_submodule(layer)


@pytest.mark.parametrize("method,layer", [("gradcam", "layer2"), ("gradcam++", "layer3"), ("occlusion", None)])
def test_the_card_method_changes_the_map_not_the_probability(tmp_path, method, layer):
    grid = make_grid()
    image, mask = mr_image(grid), sphere_mask(grid)
    card_path, _ = fresh_card(tmp_path, "resnet10_2d")
    plain = inference.Predictor(card_path, device="cpu").predict(image, mask)
    default = inference.Predictor(card_path, device="cpu").predict(image, mask, heatmap=True)
    chosen = inference.Predictor(card_path, device="cpu")
    chosen.card["heatmap"] = {"method": method, "layer": layer}
    mapped = chosen.predict(image, mask, heatmap=True)
    assert mapped.probability == plain.probability == default.probability
    assert mapped.heatmaps[0].method == heatmaps.describe(method, layer)
    assert default.heatmaps[0].method == "Grad-CAM at layer4"
    assert not np.allclose(sitk.GetArrayFromImage(mapped.heatmap), sitk.GetArrayFromImage(default.heatmap))
