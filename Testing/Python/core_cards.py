"""Freshly initialised model cards for tests (no bundled weights needed)."""

import torch

from LVIPredictorLib import models, preprocessing, sequences, weights


def fresh_card(tmp_path, name="resnet10_3d", sequence="dce", seed=0, dtype="float32", threshold=0.5, **extra):
    torch.manual_seed(seed)
    config = dict(models.default_config(name), in_channels=len(sequences.channels(sequence)))
    model = models.build_model(name, **config)
    card = dict(model_id="test-{}-{}".format(sequence, name), architecture=name,
                architecture_config=config, sequence=sequence,
                preprocessing=preprocessing.default_spec(name).to_dict(), threshold=threshold,
                threshold_method="fixed (test)", demo=True)
    card.update(extra)
    _, card_path = weights.save_model(model, card, tmp_path / "{}-{}".format(sequence, name), dtype=dtype)
    return card_path, model
