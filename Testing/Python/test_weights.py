"""Safe weights: safetensors + model card, checksum and architecture verified on load."""

import json

import pytest
import torch
from safetensors.torch import save_file

from LVIPredictorLib import models, weights
from LVIPredictorLib.errors import WeightsError
from core_cards import fresh_card


def test_saved_weights_load_back_identical_in_float32(tmp_path):
    card_path, model = fresh_card(tmp_path, "resnet10_2d")
    loaded, card = weights.load_model(card_path)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    assert card["weights_sha256"] == weights.sha256_of(tmp_path / card["weights_file"])
    assert not loaded.training


def test_float16_storage_halves_the_file(tmp_path):
    p32, _ = fresh_card(tmp_path / "a", "vanilla_cnn_2d", dtype="float32")
    p16, _ = fresh_card(tmp_path / "b", "vanilla_cnn_2d", dtype="float16")
    size = lambda p: (p.parent / json.loads(p.read_text())["weights_file"]).stat().st_size
    assert size(p16) < 0.55 * size(p32)


def test_tampered_weights_fail_the_checksum(tmp_path):
    card_path, _ = fresh_card(tmp_path, "resnet10_2d")
    wfile = tmp_path / json.loads(card_path.read_text())["weights_file"]
    data = bytearray(wfile.read_bytes())
    data[-10] ^= 0xFF
    wfile.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="SHA-256 mismatch"):
        weights.load_model(card_path)


def _replace_weights_file(card_path, write):
    """Put other bytes in the card's weights file (``write(path)``) and re-sign the card, so only
    the content check can catch them."""
    card = json.loads(card_path.read_text())
    wfile = card_path.parent / card["weights_file"]
    write(wfile)
    card["weights_sha256"] = weights.sha256_of(wfile)
    card_path.write_text(json.dumps(card))


def test_weights_of_another_architecture_are_rejected_with_the_tensor_names(tmp_path):
    card_path, _ = fresh_card(tmp_path, "resnet10_2d")
    wrong = models.build_model("vanilla_cnn_2d").state_dict()
    _replace_weights_file(card_path, lambda path: save_file({k: v.contiguous() for k, v in wrong.items()}, str(path)))
    with pytest.raises(WeightsError, match="does not match architecture resnet10_2d: missing tensors"):
        weights.load_model(card_path)


def test_shape_mismatch_is_reported(tmp_path):
    card_path, _ = fresh_card(tmp_path, "resnet10_2d")
    card = json.loads(card_path.read_text())
    # A consistent fused card whose file holds one-channel weights.
    card["architecture_config"] = {"in_channels": 2}
    card["sequence"] = "t2+dce"
    card_path.write_text(json.dumps(card))
    with pytest.raises(WeightsError, match=r"shape mismatch for conv1.weight"):
        weights.load_model(card_path)


def test_channel_count_must_match_the_sequence(tmp_path):
    card_path, _ = fresh_card(tmp_path, "resnet10_2d")
    card = json.loads(card_path.read_text())
    card["architecture_config"] = {"in_channels": 2}
    card_path.write_text(json.dumps(card))
    with pytest.raises(WeightsError, match=r"in_channels 2 but sequence 'dce' gives 1 input channel"):
        weights.load_card(card_path)


def test_pickle_file_is_refused_not_unpickled(tmp_path):
    card_path, model = fresh_card(tmp_path, "resnet10_2d")
    # a pickle where safetensors belongs
    _replace_weights_file(card_path, lambda path: torch.save(model.state_dict(), str(path)))
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        weights.load_model(card_path)


def test_missing_weights_file_names_it(tmp_path):
    card_path, _ = fresh_card(tmp_path, "resnet10_2d")
    (tmp_path / json.loads(card_path.read_text())["weights_file"]).unlink()
    with pytest.raises(WeightsError, match="weights file named by the model card is missing"):
        weights.load_model(card_path)


def test_card_without_required_fields_is_rejected(tmp_path):
    path = tmp_path / "card.json"
    path.write_text(json.dumps({"model_id": "x", "architecture": "resnet10_2d"}))
    with pytest.raises(WeightsError, match="model card lacks architecture_config"):
        weights.load_card(path)


def test_card_with_a_threshold_outside_0_1_is_rejected(tmp_path):
    card_path, _ = fresh_card(tmp_path, "resnet10_2d")
    card = json.loads(card_path.read_text())
    card["threshold"] = 3
    card_path.write_text(json.dumps(card))
    with pytest.raises(WeightsError, match="threshold must be a probability"):
        weights.load_card(card_path)


def test_corrupt_card_json_is_a_clear_error(tmp_path):
    path = tmp_path / "card.json"
    path.write_text("{not json")
    with pytest.raises(WeightsError, match="not a valid JSON model card"):
        weights.load_card(path)


def test_existing_weights_are_never_overwritten_silently(tmp_path):
    card_path, model = fresh_card(tmp_path, "resnet10_2d")
    card = json.loads(card_path.read_text())
    before = card_path.read_bytes()
    with pytest.raises(WeightsError, match="refusing to overwrite"):
        weights.save_model(model, card, tmp_path / card_path.stem)
    assert card_path.read_bytes() == before


def test_resolve_card_accepts_a_path_or_a_catalog_id(tmp_path):
    card_path, _ = fresh_card(tmp_path, "resnet10_2d")
    (tmp_path / "catalog.json").write_text(json.dumps(
        {"models": [{"model_id": "m1", "architecture": "resnet10_2d", "sequence": "dce", "card": card_path.name}]}))
    assert weights.resolve_card(card_path) == card_path
    assert weights.resolve_card("m1", tmp_path) == tmp_path / card_path.name
    with pytest.raises(WeightsError, match=r"bundled: m1"):
        weights.resolve_card("nope", tmp_path)


def test_the_same_weights_give_the_same_file_in_every_process(tmp_path):
    """Re-exporting a checkpoint must not change the weights' SHA-256 (safetensors' metadata order is per process)."""
    import subprocess
    import sys

    script = ("import sys, torch\n"
              "from LVIPredictorLib import models, weights\n"
              "torch.manual_seed(0)\n"
              "model = models.build_model('vanilla_cnn_2d')\n"
              "card = dict(model_id='m', architecture='vanilla_cnn_2d', architecture_config=models.default_config("
              "'vanilla_cnn_2d'), sequence='t2', preprocessing=__import__('LVIPredictorLib.preprocessing', "
              "fromlist=['x']).default_spec('vanilla_cnn_2d').to_dict(), threshold=0.5, threshold_method='t')\n"
              "weights.save_model(model, card, sys.argv[1])\n")
    hashes = set()
    for i in range(6):  # with two metadata entries, six processes agreed by chance 1 time in 32
        subprocess.run([sys.executable, "-c", script, str(tmp_path / "w{}".format(i))], check=True, timeout=300)
        hashes.add(weights.sha256_of(tmp_path / "w{}.safetensors".format(i)))
    assert len(hashes) == 1
