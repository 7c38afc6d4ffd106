"""The radiomics baseline against an independent implementation, and its feature names kept honest.

Reference: pyradiomics 3.0.1 on the real breast MR case (Testing/Data/pyradiomics_breast1/
reference_features.json; how it was made: make_reference_features.py beside it). Our features
are float32 and ours are computed on intensities divided by the breast background level, so the
intensity features are compared through scale-free quantities (skewness, entropy, sd / mean, ...).
Tolerance: relative 1e-5 (float32 storage of float64 arithmetic; the two agree to ~1e-7).
"""

import json
import math

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import TEST_DATA
from LVIPredictorLib import weights
from LVIPredictorLib.preprocessing import Channel, prepare_input, radiomics

REFERENCE = json.loads((TEST_DATA / "pyradiomics_breast1" / "reference_features.json").read_text())
RTOL = 1e-5


@pytest.fixture(scope="module")
def ours(breast1):
    image, mask = breast1
    spec = radiomics.RadiomicsSpec()
    prepared = prepare_input([Channel(image, mask, "breast1_image.nrrd", "breast1_label.nrrd")], spec, ("dce",))
    names = [n.split(".", 1)[1] for n in radiomics.feature_names(spec, ("dce",))]
    return dict(zip(names, prepared.inputs[0].astype(np.float64)))


def _ibsi_named_pairs(f):
    """(our feature, its pyradiomics reference) for every feature that carries an IBSI name."""
    shape, first, glcm = REFERENCE["shape"], REFERENCE["firstorder"], REFERENCE["glcm"]
    return {
        "log_volume": (math.exp(f["log_volume"]), shape["VoxelVolume"]),
        "sd": (f["sd"] / f["mean"], first["StandardDeviation"] / first["Mean"]),
        "p10": (f["p10"] / f["mean"], first["10Percentile"] / first["Mean"]),
        "p90": (f["p90"] / f["mean"], first["90Percentile"] / first["Mean"]),
        "skewness": (f["skewness"], first["Skewness"]),
        "entropy": (f["entropy"], first["Entropy"]),
        "glcm_contrast": (f["glcm_contrast"], glcm["Contrast"]),
        "glcm_homogeneity": (f["glcm_homogeneity"], glcm["Idm"]),
        "glcm_energy": (f["glcm_energy"], glcm["JointEnergy"]),
        "glcm_correlation": (f["glcm_correlation"], glcm["Correlation"]),
        "glcm_entropy": (f["glcm_entropy"], glcm["JointEntropy"]),
    }


def test_every_ibsi_named_feature_matches_pyradiomics_on_the_breast_case(ours):
    pairs = _ibsi_named_pairs(ours)
    # Every shape, first-order and texture feature is compared, renamed, or (mean) the ratios' denominator.
    covered = set(pairs) | set(radiomics.RENAMED.values()) | {"mean"}
    assert covered >= set(radiomics.SHAPE + radiomics.FIRST_ORDER + radiomics.TEXTURE)
    for name, (value, reference) in pairs.items():
        assert value == pytest.approx(reference, rel=RTOL), name


def test_the_renamed_features_compute_what_their_names_say(ours, breast1):
    shape, first = REFERENCE["shape"], REFERENCE["firstorder"]
    # Principal axes of the voxel centres, as pyradiomics (and IBSI) take them.
    assert ours["major_to_minor_axis_ratio"] == pytest.approx(1.0 / shape["Elongation"], rel=RTOL)
    assert ours["minor_to_least_axis_ratio"] == pytest.approx(shape["Elongation"] / shape["Flatness"], rel=RTOL)
    # pyradiomics' "Kurtosis" is the Pearson kurtosis too; IBSI's is that minus 3.
    assert ours["pearson_kurtosis"] == pytest.approx(first["Kurtosis"], rel=RTOL)
    _, mask = breast1
    index = np.argwhere(sitk.GetArrayFromImage(mask) > 0)[:, ::-1]
    centres = np.array([mask.TransformIndexToPhysicalPoint([int(i) for i in p]) for p in index])
    largest = np.sqrt(((centres[:, None] - centres[None]) ** 2).sum(-1)).max()
    assert math.exp(ours["log_max_voxel_centre_distance"]) == pytest.approx(largest, rel=RTOL)
    volume = math.exp(ours["log_volume"])
    itk_surface = ours["itk_perimeter_to_volume"] * volume
    assert ours["itk_roundness"] == pytest.approx((36 * math.pi * volume ** 2) ** (1 / 3) / itk_surface, rel=RTOL)


def test_the_old_ibsi_names_would_have_been_wrong_here(ours):
    """Why the six were renamed: under their old names they missed the IBSI (mesh-based / excess) values
    by far more than any rounding."""
    shape, first = REFERENCE["shape"], REFERENCE["firstorder"]
    off = {"sphericity": ours["itk_roundness"] / shape["Sphericity"],
           "surface_to_volume": ours["itk_perimeter_to_volume"] / shape["SurfaceVolumeRatio"],
           "max_diameter": math.exp(ours["log_max_voxel_centre_distance"]) / shape["Maximum3DDiameter"],
           "elongation": ours["major_to_minor_axis_ratio"] / shape["Elongation"],
           "flatness": ours["minor_to_least_axis_ratio"] / shape["Flatness"],
           "kurtosis": ours["pearson_kurtosis"] / (first["Kurtosis"] - 3.0)}
    for name, ratio in off.items():
        assert abs(ratio - 1.0) > 0.05, name
    assert set(radiomics.RENAMED) == {"log_max_diameter", "sphericity", "surface_to_volume", "elongation",
                                      "flatness", "kurtosis"}


def test_a_card_with_the_old_feature_names_loads_under_the_new_ones(tmp_path):
    bundled = weights.models_dir() / "dce-radiomics_lr.json"
    card = json.loads(bundled.read_text())
    old_of = {new: old for old, new in radiomics.RENAMED.items()}
    card["architecture_config"]["feature_names"] = [
        "dce." + old_of.get(n[len("dce."):], n[len("dce."):]) for n in card["architecture_config"]["feature_names"]]
    assert "dce.sphericity" in card["architecture_config"]["feature_names"]
    (tmp_path / "old.json").write_text(json.dumps(card))
    (tmp_path / card["weights_file"]).write_bytes((weights.models_dir() / card["weights_file"]).read_bytes())
    model, loaded = weights.load_model(tmp_path / "old.json")
    assert loaded["architecture_config"]["feature_names"] == radiomics.feature_names(
        radiomics.RadiomicsSpec(), ("dce",))
    assert model.feature_names == loaded["architecture_config"]["feature_names"]
    # A name that is neither old nor new is still refused.
    card["architecture_config"]["feature_names"][2] = "dce.roundishness"
    (tmp_path / "bad.json").write_text(json.dumps(card))
    with pytest.raises(weights.WeightsError, match="feature_names do not match"):
        weights.load_card(tmp_path / "bad.json")


def test_a_radiomics_run_from_before_the_rename_resumes_and_exports_the_new_names(blob_cohort, tmp_path, capsys):
    from lvi_training.cli import main as lvi

    run = tmp_path / "run"
    command = ["train", "--cohort", str(blob_cohort), "--out", str(run), "--model", "radiomics_lr", "--sequence",
               "dce", "--split", "paper", "--seed", "0"]
    assert lvi(command) == 0
    config = json.loads((run / "config.json").read_text())
    old_of = {new: old for old, new in radiomics.RENAMED.items()}
    for where in (config["identity"]["architecture_config"], config["architecture_config"]):
        where["feature_names"] = ["dce." + old_of.get(n[4:], n[4:]) for n in where["feature_names"]]
    assert "dce.kurtosis" in config["identity"]["architecture_config"]["feature_names"]
    (run / "config.json").write_text(json.dumps(config))
    assert lvi(command) == 0, capsys.readouterr().err
    assert lvi(["export", str(run), "--out", str(tmp_path / "card")]) == 0
    card = weights.load_card(tmp_path / "card.json")
    assert json.loads((tmp_path / "card.json").read_text())["architecture_config"]["feature_names"] == \
        radiomics.feature_names(radiomics.RadiomicsSpec(), ("dce",)) == card["architecture_config"]["feature_names"]
