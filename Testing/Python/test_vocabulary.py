"""The vocabulary is one registry: an architecture or a sequence is one entry, read everywhere."""

import json

import pytest
from torch import nn

from LVIPredictorLib import inference, models, preprocessing, weights
from LVIPredictorLib.vocabulary import architectures, kinds, sequences
from synthetic_images import make_grid, mr_image, sphere_mask


class TinyNet(nn.Module):
    """A test-only 2D network: one conv layer, global pooling, one logit."""

    def __init__(self, in_channels=1, width=4, input_size=(64, 64)):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(width, 1)

    def forward(self, x):
        return self.fc(self.body(x).mean(dim=(2, 3)))


def build_tiny(**config):
    return TinyNet(**config)


@pytest.fixture
def tiny_architecture():
    entry = architectures.register(architectures.Architecture(
        "tiny_cnn_2d", "2D TinyCNN (test)", architectures.NETWORK, __name__ + ":build_tiny", dims=2,
        input_size=(64, 64), paper_batch_size=16, default_config={"in_channels": 1, "width": 4},
        width_keys=(), heatmap_layers=("body",)))
    yield entry
    architectures.unregister(entry.name)


def test_an_architecture_added_as_one_entry_trains_saves_predicts_and_draws_a_heatmap(tiny_architecture, tmp_path):
    # Nothing but the entry above: its crop, card checks, Grad-CAM layer and display label come from it.
    assert "tiny_cnn_2d" in dict((v, k) for k, v in kinds.display_choices())
    spec = preprocessing.default_spec("tiny_cnn_2d")
    assert spec.dims == 2
    model = models.build_model("tiny_cnn_2d")
    card = {"model_id": "tiny", "architecture": "tiny_cnn_2d", "sequence": "dce",
            "architecture_config": models.default_config("tiny_cnn_2d"), "preprocessing": spec.to_dict(),
            "threshold": 0.5, "threshold_method": "fixed (test)"}
    weights.save_model(model, card, tmp_path / "tiny", dtype="float32")
    grid = make_grid()
    image, mask = mr_image(grid, seed=3), sphere_mask(grid)
    prediction = inference.Predictor(str(tmp_path / "tiny.json"), device="cpu").predict(image, mask, heatmap=True)
    assert 0.0 <= prediction.probability <= 1.0 and prediction.architecture == "tiny_cnn_2d"
    heat = prediction.heatmap
    assert heat is not None and heat.GetSize() == image.GetSize()
    json.dumps(prediction.to_dict())


def test_an_unknown_architecture_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown model 'no_such_net'"):
        models.build_model("no_such_net")


def test_the_sequences_and_their_defaults_come_from_one_registry():
    assert sequences.SEQUENCES == tuple(sequences.REGISTRY) == ("t2", "dce")
    assert sequences.FUSED == "t2+dce" and sequences.channels("t2+dce") == ("t2", "dce")
    assert sequences.REGISTRY["dce"].default_phase == sequences.DEFAULT_DCE_PHASE == 2
    assert sequences.card_phase({}) == 2 and sequences.card_phase({"dce_phase": 3}) == 3
    assert sequences.guess_from_description("ep2d_dyn_vibe") == "dce"
    assert sequences.guess_from_description("t2_tse_fs_tra") == "t2"
    assert sequences.guess_from_description("localizer") is None
    with pytest.raises(ValueError, match="unknown sequence"):
        sequences.channels("dwi")


def test_model_kinds_say_what_each_card_can_do():
    assert kinds.kind_of({"architecture": "resnet10_3d"}).heatmap
    radiomics = kinds.kind_of({"architecture": "radiomics_lr"})
    assert not radiomics.heatmap and "radiomics" in radiomics.no_heatmap_reason
    assert kinds.kind_of({"architecture": "late_fusion"}).has_network is False
    assert [a.name for a in map(architectures.get, architectures.STUDY_NETWORKS)] == list(architectures.STUDY_NETWORKS)
    assert architectures.networks() == architectures.STUDY_NETWORKS
