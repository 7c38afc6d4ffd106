"""The radiomics baseline and fold ensembles run through the same Predictor as the single networks."""

import numpy as np
import pytest
import torch

from core_cards import ensemble_card, fresh_card, radiomics_card
from LVIPredictorLib import inference, models, preprocessing, weights
from LVIPredictorLib.errors import WeightsError
from synthetic_images import make_grid, mr_image, sphere_mask


@pytest.fixture(scope="module")
def case():
    grid = make_grid()
    return mr_image(grid), sphere_mask(grid)


def test_radiomics_card_predicts_the_logistic_regression_of_its_features(tmp_path, case):
    card_path, model = radiomics_card(tmp_path)
    result = inference.Predictor(str(card_path), device="cpu").predict(case[0], case[1], heatmap=True)
    features = preprocessing.prepare_input([preprocessing.Channel(*case)], weights.card_spec(weights.load_card(
        card_path)), ("dce",)).inputs
    z = (features.astype(np.float64) - model.feature_mean.numpy()) / model.feature_scale.numpy()
    expected = 1.0 / (1.0 + np.exp(-(z @ model.linear.weight.detach().numpy().T + model.linear.bias.item())))
    assert result.probability == pytest.approx(float(expected[0, 0]), abs=1e-6)
    assert result.architecture == "radiomics_lr" and result.heatmap is None
    assert any("no heat-map for the radiomics model" in w for w in result.warnings)


def test_a_radiomics_card_whose_features_do_not_match_its_spec_is_refused(tmp_path):
    card_path, _ = radiomics_card(tmp_path)
    card = weights.load_card(card_path)
    card["architecture_config"]["feature_names"] = card["architecture_config"]["feature_names"][:-1]
    with pytest.raises(WeightsError, match="feature_names do not match"):
        weights._check_card(card, "card.json")
    card = weights.load_card(card_path)
    card["preprocessing"] = preprocessing.default_spec("vanilla_cnn_2d").to_dict()
    with pytest.raises(WeightsError, match="does not go with"):
        weights._check_card(card, "card.json")


def test_an_ensemble_card_averages_member_probabilities_over_both_flips(tmp_path, case):
    card_path, ensemble = ensemble_card(tmp_path, members=3)
    predictor = inference.Predictor(str(card_path), device="cpu")
    assert isinstance(predictor.model, models.Ensemble) and len(predictor.model.members) == 3
    result = predictor.predict(case[0], case[1], heatmap=True)
    prepared = preprocessing.prepare_input([preprocessing.Channel(*case)], predictor.spec, ("dce",))
    x = torch.from_numpy(prepared.inputs)
    with torch.no_grad():
        probs = torch.stack([torch.sigmoid(m.eval()(v)) for m in ensemble.members for v in (x, x.flip(-1))]).mean(0)
    expected = preprocessing.aggregate_slice_scores(probs.reshape(-1).numpy(), prepared.slice_weights)
    assert result.probability == pytest.approx(expected, abs=1e-5)
    assert prepared.inputs.shape[1] == 2  # the image and the VOI channel
    heat = result.heatmap
    assert heat is not None and heat.GetSize() == case[0].GetSize()


def test_flip_tta_makes_a_prediction_mirror_invariant(tmp_path):
    _, single = fresh_card(tmp_path, name="vanilla_cnn_2d")
    x = torch.randn(2, 1, 64, 64)
    plain = models.Ensemble([single.eval()], tta_flip=False)
    tta = models.Ensemble([single.eval()], tta_flip=True)
    with torch.no_grad():
        assert not torch.allclose(plain(x), plain(x.flip(-1)), atol=1e-4)
        assert torch.allclose(tta(x), tta(x.flip(-1)), atol=1e-5)


def test_an_ensemble_card_with_fewer_tensors_than_members_is_refused(tmp_path, case):
    card_path, _ = ensemble_card(tmp_path, members=2)
    card = weights.load_card(card_path)
    card["ensemble"]["members"] = 3
    with pytest.raises(WeightsError, match="missing tensors members.2"):
        weights.load_model(card)
