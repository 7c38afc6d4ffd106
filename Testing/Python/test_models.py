"""The three networks: shapes, gradients, parameter counts, registry."""

import pytest
import torch

from LVIPredictorLib import models
from LVIPredictorLib.vocabulary import architectures


@pytest.mark.parametrize("name", architectures.STUDY_NETWORKS)
def test_model_gives_one_logit_per_sample_at_batch_one(name):
    model = models.build_model(name).eval()
    with torch.no_grad():
        out = model(models.example_input(name, batch_size=1))
    assert out.shape == (1, 1)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", architectures.STUDY_NETWORKS)
def test_model_accepts_the_papers_batch_size(name):
    batch = architectures.get(name).paper_batch_size
    model = models.build_model(name).eval()
    with torch.no_grad():
        out = model(models.example_input(name, batch_size=batch))
    assert out.shape == (batch, 1)


@pytest.mark.parametrize("name", architectures.STUDY_NETWORKS)
def test_backward_pass_reaches_the_first_layer(name):
    model = models.build_model(name).train()
    x = models.example_input(name, batch_size=2)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), torch.tensor([[0.0], [1.0]]))
    loss.backward()
    first = next(model.parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0


def test_3d_model_trains_at_batch_one():
    # BatchNorm needs more than one value per channel: the dilated body leaves 4x8x8 and the
    # head 1x2x2, so a single 3D case still trains (the paper's batch of 8 is not required).
    torch.manual_seed(0)
    model = models.build_model("resnet10_3d").train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = models.example_input("resnet10_3d", batch_size=1)
    for _ in range(2):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), torch.ones(1, 1))
        loss.backward()
        opt.step()
    assert torch.isfinite(loss)


def test_resnet10_backbone_has_the_standard_parameter_counts():
    # Same as MONAI's resnet10 / Tencent MedicalNet with one input channel.
    assert round(models.backbone_parameters(models.build_model("resnet10_2d")) / 1e6, 2) == 4.90
    assert round(models.backbone_parameters(models.build_model("resnet10_3d")) / 1e6, 2) == 14.36


def test_whole_model_parameter_counts_match_the_documented_heads():
    assert models.count_parameters(models.build_model("resnet10_2d")) == 4_900_033
    assert models.count_parameters(models.build_model("resnet10_3d")) == 16_346_817
    assert models.count_parameters(models.build_model("vanilla_cnn_2d")) == 2_617_601


def test_2d_and_3d_resnet_are_one_class():
    assert type(models.build_model("resnet10_2d")) is type(models.build_model("resnet10_3d"))


def test_3d_body_leaves_room_for_the_two_conv_pool_head():
    model = models.build_model("resnet10_3d").eval()
    with torch.no_grad():
        features = model.features(models.example_input("resnet10_3d"))
    assert tuple(features.shape[2:]) == (4, 8, 8)


def test_input_channels_are_configurable_for_fusion():
    model = models.build_model("resnet10_3d", in_channels=2).eval()
    with torch.no_grad():
        assert model(models.example_input("resnet10_3d", in_channels=2)).shape == (1, 1)


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model 'resnet50'"):
        models.build_model("resnet50")


def test_too_small_input_for_the_3d_head_is_a_clear_error():
    with pytest.raises(ValueError, match="too small"):
        models.build_model("resnet10_3d", input_size=[8, 16, 16])
