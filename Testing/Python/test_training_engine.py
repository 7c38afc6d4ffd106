"""The engine's augmentation: seeded per sample, small, label-preserving."""

import numpy as np
import pytest
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from lvi_training import augmentation, engine


def test_augmentation_draws_depend_only_on_seed_and_sample():
    a = augmentation.augmentation_parameters(50, seed=7)
    b = augmentation.augmentation_parameters(50, seed=7)
    c = augmentation.augmentation_parameters(50, seed=8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    x = torch.randn(50, 1, 32, 32)
    idx = torch.tensor([3, 17, 42])
    together = augmentation.augment(x[idx], a, idx)
    one_by_one = torch.cat([augmentation.augment(x[i:i + 1], a, idx[k:k + 1]) for k, i in enumerate(idx.tolist())])
    assert torch.equal(together, one_by_one)  # a sample looks the same whatever batch it is in


@pytest.mark.parametrize("shape", [(6, 1, 20, 20), (4, 1, 8, 20, 20)])
def test_shift_moves_each_sample_by_its_own_offset_with_replicated_edges(shape):
    x = torch.randn(*shape)
    shifts = torch.tensor([[(-1) ** i * (i % 5), (i * 3) % 9 - 4] for i in range(shape[0])])
    m = augmentation.MAX_SHIFT_VOXELS
    padded = F.pad(x, (m, m, m, m) + ((0, 0) if x.dim() == 5 else ()), mode="replicate")
    height, width = shape[-2:]
    expected = torch.stack([padded[i, ..., m + dy:m + dy + height, m + dx:m + dx + width]
                            for i, (dy, dx) in enumerate(shifts.tolist())])
    assert torch.equal(augmentation._shift(x, shifts), expected)


def test_augmentation_keeps_shape_and_stays_small():
    x = torch.randn(8, 1, 32, 32, 32)
    idx = torch.arange(8)
    y = augmentation.augment(x, augmentation.augmentation_parameters(8, seed=1), idx)
    assert y.shape == x.shape
    assert torch.allclose(y.std(), x.std(), rtol=0.2)



@pytest.mark.parametrize("world_size, device, converted", [(2, "cuda:0", True), (2, "cpu", False), (1, "cuda:0", False)])
def test_batchnorm_is_synchronised_only_across_cuda_ranks(world_size, device, converted):
    from lvi_training.distributed import DistContext

    settings = engine.TrainSettings(model="resnet10_2d", architecture_config={"in_channels": 1}, epochs=1,
                                    batch_size=8)
    model = engine.make_model(settings, "cpu")
    keys = list(model.state_dict())
    out = engine.sync_batchnorm(model, DistContext(rank=0, world_size=world_size, device=device))
    kinds = {type(m) for m in out.modules()}
    assert (torch.nn.SyncBatchNorm in kinds) == converted
    assert (torch.nn.BatchNorm2d in kinds) != converted
    assert list(out.state_dict()) == keys  # checkpoints and exports keep their tensor names


def _tiny_cases(slice_weights):
    """One case per list of slice weights, each slice one 16 x 16 channel, labels alternating."""
    gen = torch.Generator().manual_seed(0)
    arrays = [torch.randn(len(w), 1, 16, 16, generator=gen).numpy() for w in slice_weights]

    class Cached:
        def __init__(self, inputs, weights):
            self.inputs, self.slice_weights = inputs, weights
    return engine.CaseTensors.from_cached([Cached(a, w) for a, w in zip(arrays, slice_weights)],
                                          [i % 2 for i in range(len(arrays))])


def test_area_weights_give_each_slice_its_voi_share_and_each_case_its_slice_count():
    data = _tiny_cases([[0.5, 0.3, 0.2], [1.0], [0.25, 0.75]])
    assert data.area_weights().tolist() == pytest.approx([1.5, 0.9, 0.6, 1.0, 0.5, 1.5])


TINY_ARCH = {"in_channels": 1, "base_width": 4, "n_blocks": 2, "hidden": 8, "input_size": [16, 16]}


def _trained(data, slice_loss, tmp_path, voi_shape_aux=0.0):
    from lvi_training.distributed import DistContext

    settings = engine.TrainSettings(model="vanilla_cnn_2d", epochs=2, batch_size=4, augment=False, seed=3,
                                    architecture_config=dict(TINY_ARCH), slice_loss=slice_loss,
                                    voi_shape_aux=voi_shape_aux)
    model, _ = engine.train_fold(settings, data, list(range(len(data.labels))), DistContext(),
                                 tmp_path / "{}.pt".format(slice_loss), "fold_0", "test")
    return model.state_dict()


def test_area_slice_loss_changes_training_only_through_unequal_slice_areas(tmp_path):
    equal = _tiny_cases([[1 / 3] * 3, [0.5, 0.5]] * 4)
    uniform, area = _trained(equal, "uniform", tmp_path / "u"), _trained(equal, "area", tmp_path / "a")
    assert all(torch.allclose(uniform[k].float(), area[k].float(), atol=1e-6) for k in uniform)
    unequal = _tiny_cases([[0.8, 0.15, 0.05], [0.9, 0.1]] * 4)
    uniform, area = _trained(unequal, "uniform", tmp_path / "u2"), _trained(unequal, "area", tmp_path / "a2")
    assert not all(torch.allclose(uniform[k].float(), area[k].float(), atol=1e-6) for k in uniform)


def test_the_voi_shape_side_task_trains_a_head_that_is_not_part_of_the_model(tmp_path):
    from lvi_training import checkpoints

    data = _tiny_cases([[0.5, 0.5], [1.0]] * 4)
    plain = _trained(data, "uniform", tmp_path / "plain")
    with pytest.raises(ValueError, match="VOI descriptors"):
        _trained(data, "uniform", tmp_path / "none", voi_shape_aux=1.0)
    data.aux_targets = np.arange(16, dtype=np.float32).reshape(8, 2) % 5
    side = _trained(data, "uniform", tmp_path / "side", voi_shape_aux=1.0)
    assert list(side) == list(plain)  # the exported network has the same tensors, no side head
    assert not all(torch.equal(side[k], plain[k]) for k in side)  # but the side task shaped it
    state = checkpoints.load_torch(tmp_path / "side" / "uniform.pt")
    assert state["side_head"]["weight"].shape == (2, 8)  # a resume picks the head up again


def test_the_head_refit_replaces_only_the_last_layer_with_the_case_level_logistic_fit(tmp_path):
    import copy

    from LVIPredictorLib.models import build_model
    from lvi_training import head_refit, logistic_fit

    data = _tiny_cases([[0.5, 0.3, 0.2], [1.0], [0.25, 0.75]] * 6)
    n = len(data.labels)
    patients = ["p{}".format(i) for i in range(n)]
    model = build_model("vanilla_cnn_2d", **TINY_ARCH)
    model.load_state_dict(_trained(data, "uniform", tmp_path))
    before = copy.deepcopy(model.state_dict())
    twin = copy.deepcopy(model)
    layer, described = head_refit.refit_head(model, data, range(n), patients, seed=0, device="cpu")
    after = model.state_dict()
    assert sorted(layer) == ["classifier.4.bias", "classifier.4.weight"]
    assert all(torch.equal(after[k], before[k]) for k in before if k not in layer)
    assert all(torch.equal(after[k], layer[k]) and not torch.equal(after[k], before[k]) for k in layer)
    assert described["C"] in logistic_fit.C_GRID and described["cases"] == n and described["features"] == 8
    # A case's logit, the area-weighted mean of its slice logits, is the logistic regression on the
    # case's pooled features (the last layer is linear, so pooling features or logits is the same).
    pooled = head_refit.case_features(model, data, range(n), "cpu")
    fit = logistic_fit.fit_l2_logistic(pooled, data.labels, patients, seed=0)
    with torch.no_grad():
        slice_logits = model(data.inputs).reshape(-1).double().numpy()
    owner = data.sample_case.numpy()
    case_logits = [np.average(slice_logits[owner == c], weights=data.slice_weights[c]) for c in range(n)]
    assert np.allclose(case_logits, (pooled - fit.mean) / fit.scale @ fit.coef + fit.intercept, atol=1e-4)
    again, _ = head_refit.refit_head(twin, data, range(n), patients, seed=0, device="cpu")
    assert all(torch.equal(again[k], layer[k]) for k in layer)  # deterministic


def test_voi_descriptors_measure_size_and_outline():
    from lvi_training import voi_shape
    from synthetic_images import make_grid, sphere_mask

    grid = make_grid(size=(64, 64, 40), spacing=(1.0, 1.0, 2.0), origin=(-32.0, -32.0, -40.0))
    volume, extent, slices, irregularity = voi_shape.descriptors(sphere_mask(grid, radius=10.0))
    assert volume == pytest.approx(4 / 3 * np.pi * 10.0 ** 3, rel=0.05)
    assert extent == pytest.approx(20.0, abs=2.0) and slices == pytest.approx(extent / 2.0)
    bumpy = sitk.Or(sphere_mask(grid, radius=10.0), sphere_mask(grid, centre=(12.0, -3.0, 0.0), radius=5.0))
    assert 0.0 <= irregularity < voi_shape.descriptors(bumpy)[3]
    from LVIPredictorLib.errors import InputError

    with pytest.raises(InputError, match="blank.nii.gz: the VOI mask is empty"):
        voi_shape.descriptors(sphere_mask(grid, radius=10.0) * 0, "blank.nii.gz")
