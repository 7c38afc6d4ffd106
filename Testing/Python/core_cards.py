"""Freshly initialised model cards for tests (no bundled weights needed)."""

import torch

from LVIPredictorLib import models, preprocessing, weights
from LVIPredictorLib.vocabulary import sequences
from LVIPredictorLib.vocabulary import architectures, kinds


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


def radiomics_card(tmp_path, sequence="dce", seed=0, threshold=0.3):
    """A radiomics_lr card with made-up standardisation and coefficients (float32, as exported)."""
    from LVIPredictorLib.preprocessing import radiomics

    spec = radiomics.RadiomicsSpec()
    names = radiomics.feature_names(spec, sequences.channels(sequence))
    model = models.build_model(architectures.RADIOMICS_BASELINE, feature_names=names)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.feature_mean.copy_(torch.rand(len(names), generator=g, dtype=torch.float64))
        model.feature_scale.copy_(1.0 + torch.rand(len(names), generator=g, dtype=torch.float64))
        model.linear.weight.copy_(0.3 * torch.randn(1, len(names), generator=g, dtype=torch.float64))
    card = dict(model_id="test-{}-radiomics".format(sequence), architecture=architectures.RADIOMICS_BASELINE,
                architecture_config={"feature_names": names}, sequence=sequence, preprocessing=spec.to_dict(),
                threshold=threshold, threshold_method="fixed (test)", demo=True)
    _, card_path = weights.save_model(model, card, tmp_path / "{}-radiomics".format(sequence), dtype="float32")
    return card_path, model


def ensemble_card(tmp_path, name="vanilla_cnn_2d", sequence="dce", members=2, width=0.25, seed=0):
    """A small-data-recipe card: VOI channel, background-ratio input, quarter width, a fold ensemble with flips."""
    torch.manual_seed(seed)
    spec = preprocessing.PreprocessSpec.from_dict(dict(preprocessing.default_spec(name).to_dict(), mask_channel=True,
                                                       normalization="background_ratio"))
    config = dict(models.scaled_config(name, width), in_channels=spec.input_channels(len(sequences.channels(sequence))))
    model = models.build_ensemble(name, members, tta_flip=True, **config)
    card = dict(model_id="test-{}-{}-ensemble".format(sequence, name), architecture=name, architecture_config=config,
                sequence=sequence, preprocessing=spec.to_dict(), threshold=0.5, threshold_method="fixed (test)",
                demo=True, ensemble={"members": members, "tta_flip": True, "combine": "mean probability"})
    _, card_path = weights.save_model(model, card, tmp_path / "{}-{}-ensemble".format(sequence, name), dtype="float32")
    return card_path, model


def late_fusion_card(folder, t2_card, dce_card, threshold=0.5, model_id="test-t2+dce-late_fusion"):
    """A late-fusion card over two member cards in ``folder`` (as `lvi fuse` writes it, without metrics)."""
    import json
    from pathlib import Path

    from LVIPredictorLib.models import late_fusion

    members = []
    for sequence, path in (("t2", t2_card), ("dce", dce_card)):
        member = weights.load_card(path)
        members.append({"card": Path(path).name, "sequence": sequence, "model_id": member["model_id"],
                        "architecture": member["architecture"], "weights_sha256": member["weights_sha256"]})
    card = {"model_id": model_id, "architecture": kinds.LATE_FUSION, "sequence": sequences.FUSED,
            "dce_phase": 2, "members": members, "combine": late_fusion.COMBINE, "threshold": threshold,
            "threshold_method": "fixed (test)", "demo": True,
            "weights_sha256": late_fusion.members_sha256([m["weights_sha256"] for m in members])}
    path = Path(folder) / "t2+dce-late_fusion.json"
    path.write_text(json.dumps(card), encoding="utf-8")
    return path
