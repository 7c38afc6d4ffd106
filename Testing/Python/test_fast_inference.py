"""fast_inference: the oneDNN convolutions give the results of the default path, for any widths."""

import copy

import pytest
import torch
from torch import nn

from LVIPredictorLib import inference, models
from LVIPredictorLib.inference import fast

pytestmark = pytest.mark.skipif(not fast.onednn_available(), reason="this torch build has no oneDNN")


def _with_batchnorm_statistics(model, seed=0):
    """A fresh BatchNorm is an identity; give it statistics so that mistakes would show."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d)):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=generator) * 0.6 - 0.3)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(n, generator=generator) * 0.4 - 0.2)
    return model.eval()


def _both(model):
    return model, fast.optimize_for_inference(copy.deepcopy(model), "cpu")


@pytest.mark.parametrize("name,config,batch", [
    ("resnet10_3d", {}, 1),
    # Other widths (issue 11 may change them): nothing in the module depends on them.
    ("resnet10_3d", {"widths": (16, 32, 48, 64), "head_widths": (24, 8)}, 2),
    ("resnet10_2d", {}, 3),
    ("resnet10_2d", {}, 1),
    ("vanilla_cnn_2d", {"base_width": 8}, 3),
])
def test_optimized_model_gives_the_default_results(name, config, batch):
    torch.manual_seed(0)
    default, fast = _both(_with_batchnorm_statistics(models.build_model(name, **config)))
    x = torch.randn(models.input_shape(name, batch_size=batch), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected, got = default(x), fast(x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-5)
    convolutions = [m for m in fast.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    assert convolutions and all(isinstance(m, (fast.OneDnnConv2d, fast.OneDnnConv3d))
                                for m in convolutions)
    assert list(fast.state_dict()) == list(default.state_dict())


def test_gradients_through_the_optimized_model_match():
    """Grad-CAM back-propagates through the convolutions."""
    torch.manual_seed(0)
    default, fast = _both(_with_batchnorm_statistics(models.build_model("resnet10_3d", widths=(8, 16, 16, 32),
                                                                        head_widths=(8, 8))))
    x = torch.randn(models.input_shape("resnet10_3d"), generator=torch.Generator().manual_seed(2))
    grads = []
    for model in (default, fast):
        xi = x.clone().requires_grad_(True)
        model(xi).sum().backward()
        grads.append(xi.grad)
    assert torch.allclose(grads[1], grads[0], rtol=1e-4, atol=1e-7)


def test_other_padding_modes_and_dtypes_keep_the_default_path():
    conv = nn.Conv3d(2, 3, 3, padding=1, padding_mode="reflect")
    default, fast = _both(nn.Sequential(conv).eval())
    x = torch.randn(1, 2, 5, 6, 7)
    assert torch.allclose(fast(x), default(x), atol=1e-6)
    double = copy.deepcopy(fast).double()
    assert torch.allclose(double(x.double()), default.double()(x.double()), atol=1e-10)


def test_other_devices_are_left_alone():
    model = models.build_model("vanilla_cnn_2d", base_width=4).eval()
    fast.optimize_for_inference(model, "cuda")
    assert not any(isinstance(m, fast.OneDnnConv2d) for m in model.modules())


def test_the_predictor_runs_the_optimized_model(tmp_path):
    from core_cards import fresh_card

    predictor = inference.Predictor(fresh_card(tmp_path, "resnet10_3d")[0], device="cpu")
    assert any(isinstance(m, fast.OneDnnConv3d) for m in predictor.model.modules())
