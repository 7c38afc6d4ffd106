"""Hostile inputs through the real `lvi` entry point: each refused by name, warned about, or used unchanged.

One row per input, built at test time from the shipped sample case (Resources/SampleData/LVI-Sample-001),
the bundled model cards and tiny synthetic images. Every row runs ``lvi_training.cli.main`` and checks
the required outcome:

- ``refuse``: a non-zero exit, the file and the problem named in the output, no traceback, no
  probability or class printed and no result written;
- ``warn``: a prediction, with the warning named;
- ``succeed``: a prediction, unchanged.

And for every row: nothing outside ``--out`` changed (the input folder is hashed before and after,
and no other file appears next to it); the shipped resources are hashed once before all rows and
once after.
"""

import csv
import gzip
import hashlib
import json
import os
import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Tuple

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import torch
from safetensors.torch import load_file, save

from LVIPredictorLib import models, weights
from LVIPredictorLib.errors import WeightsError
from lvi_training.cli import main

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "Resources" / "SampleData" / "LVI-Sample-001"
MODELS = REPO / "Resources" / "Models"
FAST_MODEL = "demo-t2-radiomics_lr"  # the fastest bundled model: rows test the boundary, not the network
CNN_CARD = "t2-vanilla_cnn_2d.json"


def _tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(Path(root).rglob("*")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        if path.is_symlink():
            digest.update(b"link:" + os.readlink(path).encode())
        elif path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


RESOURCES_BEFORE = _tree_digest(REPO / "Resources")


# ----------------------------------------------------------------------------- builders

def _copy(src, dst):
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    return dst


def _truncate(path, keep=0.6):
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * keep)])
    return path


def _predict(image, mask, out, *extra, model=FAST_MODEL):
    return ["predict", "--model", str(model), "--sequence", "t2", "--image", str(image), "--mask", str(mask),
            "--out", str(out), "--no-heatmap", *extra]


def _sample_t2(inp):
    return _copy(SAMPLE / "t2.nii.gz", inp / "t2.nii.gz"), _copy(SAMPLE / "t2_mask.nii.gz", inp / "t2_mask.nii.gz")


def truncated_image(inp, out):
    image, mask = _sample_t2(inp)
    return _predict(_truncate(image), mask, out)


def truncated_mask(inp, out):
    image, mask = _sample_t2(inp)
    return _predict(image, _truncate(mask, keep=0.7), out)


def truncated_nrrd_image(inp, out):
    image, mask = _sample_t2(inp)
    nrrd = inp / "t2.nrrd"
    sitk.WriteImage(sitk.ReadImage(str(image)), str(nrrd), True)
    image.unlink()
    return _predict(_truncate(nrrd, keep=0.9), mask, out)


def _tiny_nifti(path, size=(16, 16, 8), seed=0):
    rng = np.random.default_rng(seed)
    sitk.WriteImage(sitk.GetImageFromArray(rng.normal(100, 10, size[::-1]).astype(np.float32)), str(path))
    return path


def header_beyond_file(inp, out):
    """A whole .nii whose header declares 4000 slices: refused before a 4000-slice volume is allocated."""
    image = _tiny_nifti(inp / "big.nii")
    data = bytearray(image.read_bytes())
    data[46:48] = struct.pack("<h", 4000)  # dim[3]
    image.write_bytes(bytes(data))
    _, mask = _sample_t2(inp)
    return _predict(image, mask, out)


def header_beyond_gzip_stream(inp, out):
    """A complete, valid gzip stream whose NIfTI header declares more slices than it holds."""
    raw = bytearray(gzip.decompress(_tiny_nifti(inp / "small.nii.gz").read_bytes()))
    raw[46:48] = struct.pack("<h", 40)
    (inp / "small.nii.gz").write_bytes(gzip.compress(bytes(raw)))
    _, mask = _sample_t2(inp)
    return _predict(inp / "small.nii.gz", mask, out)


def four_d_t2(inp, out):
    t2 = sitk.ReadImage(str(SAMPLE / "t2.nii.gz"))
    sitk.WriteImage(sitk.JoinSeries([t2, t2]), str(inp / "t2_4d.nii.gz"))
    _, mask = _sample_t2(inp)
    return _predict(inp / "t2_4d.nii.gz", mask, out)


def _dicom_t2(inp, edit=None):
    folder = inp / "t2_dicom"
    shutil.copytree(SAMPLE / "dicom" / "t2", folder)
    if edit is not None:
        for path in sorted(folder.iterdir()):
            ds = pydicom.dcmread(path)
            edit(ds)
            ds.save_as(path)
    return folder


def ct_modality_dicom(inp, out):
    def to_ct(ds):
        ds.Modality = "CT"
    folder = _dicom_t2(inp, to_ct)
    _, mask = _sample_t2(inp)
    return _predict(folder, mask, out)


def duplicate_dicom_slice(inp, out):
    folder = _dicom_t2(inp)
    shutil.copyfile(folder / "IM00005.dcm", folder / "IM00005_copy.dcm")
    _, mask = _sample_t2(inp)
    return _predict(folder, mask, out)


def _card_copy(inp, name=CNN_CARD, edit=None, with_weights=False):
    card = json.loads((MODELS / name).read_text())
    if with_weights:
        _copy(MODELS / card["weights_file"], inp / "models" / card["weights_file"])
    if edit is not None:
        edit(card)
    path = inp / "models" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(card))
    return path


def _predict_with_card(inp, out, card):
    image, mask = _sample_t2(inp)
    return _predict(image, mask, out, model=card)


def card_schema_99(inp, out):
    return _predict_with_card(inp, out, _card_copy(inp, edit=lambda c: c.update(schema_version=99)))


def card_huge_width(inp, out):
    def huge(card):
        card["architecture_config"]["base_width"] = 100000
    return _predict_with_card(inp, out, _card_copy(inp, edit=huge))


def card_huge_ensemble(inp, out):
    def huge(card):
        card["ensemble"]["members"] = 5000
    return _predict_with_card(inp, out, _card_copy(inp, edit=huge))


def card_bad_crop(inp, out):
    def bad(card):
        card["preprocessing"]["crop_size"] = [64, -3, 1]
    return _predict_with_card(inp, out, _card_copy(inp, edit=bad))


def card_string_spacing(inp, out):
    def bad(card):
        card["preprocessing"]["target_spacing"] = ["1", 1.0, None]
    return _predict_with_card(inp, out, _card_copy(inp, edit=bad))


def card_weights_outside(inp, out):
    return _predict_with_card(inp, out, _card_copy(inp, edit=lambda c: c.update(weights_file="../x.safetensors")))


def card_weights_symlink_outside(inp, out):
    card = _card_copy(inp, with_weights=True)
    weights_file = json.loads(card.read_text())["weights_file"]
    outside = inp / "elsewhere" / weights_file
    outside.parent.mkdir()
    (inp / "models" / weights_file).rename(outside)
    (inp / "models" / weights_file).symlink_to(outside)
    return _predict_with_card(inp, out, card)


def card_non_finite_weights(inp, out):
    card_path = _card_copy(inp, name="t2-radiomics_lr.json", with_weights=True)
    card = json.loads(card_path.read_text())
    weights_path = inp / "models" / card["weights_file"]
    tensors = load_file(str(weights_path))
    tensors["linear.weight"][0, 0] = float("inf")
    weights_path.write_bytes(save(tensors, metadata={"format": "pt"}))
    card["weights_sha256"] = weights.sha256_of(weights_path)  # a consistent card: only finiteness is wrong
    card_path.write_text(json.dumps(card))
    return _predict_with_card(inp, out, card_path)


def info_non_finite_weights(inp, out):
    """`lvi info` must not call such weights "verified"."""
    argv = card_non_finite_weights(inp, out)
    return ["info", argv[argv.index("--model") + 1]]


def late_fusion_member_outside(inp, out):
    def outside(card):
        card["members"][0]["card"] = "../t2-vanilla_cnn_2d.json"
    return _predict_with_card(inp, out, _card_copy(inp, name="t2+dce-late_fusion.json", edit=outside))


def tiny_voi(inp, out):
    image, _ = _sample_t2(inp)
    reference = sitk.ReadImage(str(image))
    array = np.zeros(sitk.GetArrayViewFromImage(reference).shape, np.uint8)
    array[8, 56, 56:59] = 1  # 3 voxels
    mask = sitk.GetImageFromArray(array)
    mask.CopyInformation(reference)
    sitk.WriteImage(mask, str(inp / "tiny_mask.nii.gz"))
    return _predict(image, inp / "tiny_mask.nii.gz", out)


def tiny_t2_voi_of_a_fused_model(inp, out):
    """The crop follows DCE's VOI; a tiny FS-T2WI VOI must still stop the fused model."""
    tiny_voi(inp, out)
    dce, dce_mask = _copy(SAMPLE / "dce_phase2.nii.gz", inp / "dce.nii.gz"), _copy(SAMPLE / "dce_mask.nii.gz",
                                                                                 inp / "dce_mask.nii.gz")
    return ["predict", "--model", "demo-t2+dce-vanilla_cnn_2d", "--t2", str(inp / "t2.nii.gz"),
            str(inp / "tiny_mask.nii.gz"), "--dce", str(dce), str(dce_mask), "--out", str(out), "--no-heatmap"]


def _two_label_mask(inp):
    image, mask_path = _sample_t2(inp)
    mask = sitk.ReadImage(str(mask_path))
    array = sitk.GetArrayFromImage(mask)
    array[0, :4, :4] = 2  # a second structure far from the tumour
    two = sitk.GetImageFromArray(array)
    two.CopyInformation(mask)
    sitk.WriteImage(two, str(inp / "two_labels.nii.gz"))
    return image, inp / "two_labels.nii.gz"


def multi_label_mask(inp, out):
    image, mask = _two_label_mask(inp)
    return _predict(image, mask, out)


def multi_label_mask_with_label(inp, out):
    image, mask = _two_label_mask(inp)
    return _predict(image, mask, out, "--label", "1")


def sample_case(inp, out):
    image, mask = _sample_t2(inp)
    return _predict(image, mask, out)


def _cohort(inp, n=4):
    """A tiny cohort of synthetic cases (one per patient), as cohort.csv rows."""
    rows = []
    for i in range(n):
        image = _tiny_nifti(inp / "c{}_t2.nii.gz".format(i), size=(12, 12, 4), seed=i)
        mask = sitk.GetImageFromArray(np.pad(np.ones((2, 4, 4), np.uint8), ((1, 1), (4, 4), (4, 4))))
        sitk.WriteImage(mask, str(inp / "c{}_mask.nii.gz".format(i)))
        rows.append(["c{}".format(i), "p{}".format(i), str(i % 2), image.name, "c{}_mask.nii.gz".format(i)])
    return ["case_id", "patient_id", "lvi", "t2_image", "t2_mask"], rows


def _write_cohort(inp, header, rows, encoding="utf-8"):
    with open(inp / "cohort.csv", "w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return ["validate-cohort", str(inp), "--quick"]


def cohort_latin1(inp, out):
    header, rows = _cohort(inp)
    rows[2][1] = "Müller"
    return _write_cohort(inp, header, rows, encoding="latin-1")


def cohort_utf8_bom(inp, out):
    header, rows = _cohort(inp)
    rows[2][1] = "Müller"
    return _write_cohort(inp, header, rows, encoding="utf-8-sig")


def cohort_duplicate_lvi(inp, out):
    header, rows = _cohort(inp)
    return _write_cohort(inp, header + ["lvi"], [r + [str(1 - int(r[2]))] for r in rows])


def cohort_ragged_row(inp, out):
    header, rows = _cohort(inp)
    rows[1] = rows[1] + ["stray"]
    return _write_cohort(inp, header, rows)


def cohort_same_image_two_patients(inp, out):
    header, rows = _cohort(inp)
    shutil.copyfile(inp / rows[1][3], inp / "copy_of_c1.nii.gz")
    rows[3][3] = "copy_of_c1.nii.gz"
    return _write_cohort(inp, header, rows)


def evaluate_nan_scores(inp, out):
    run = inp / "run"
    (run / "fold_0").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": "vanilla_cnn_2d", "sequence": "t2", "split": "paper",
                                                 "epochs": 1, "seed": 0}))
    (run / "splits.json").write_text(json.dumps({"folds": [{"index": 0}]}))
    test = [{"case_id": "c{}".format(i), "patient_id": "p{}".format(i), "lvi": i % 2,
             "probability": float("nan") if i == 2 else 0.1 * i} for i in range(6)]
    (run / "fold_0" / "result.json").write_text(json.dumps({"fold": "fold_0", "threshold": 0.5, "test": test,
                                                            "train": []}))
    return ["evaluate", str(run)]


@dataclass
class Row:
    build: Callable[[Path, Path], List[str]]
    outcome: str              # refuse | warn | succeed
    expect: Tuple[str, ...]   # regular expressions that must all appear in the output


ROWS = {
    "truncated .nii.gz image": Row(truncated_image, "refuse", (r"t2\.nii\.gz", "truncated")),
    "truncated .nii.gz mask": Row(truncated_mask, "refuse", (r"t2_mask\.nii\.gz", "truncated")),
    "truncated .nrrd image": Row(truncated_nrrd_image, "refuse", (r"t2\.nrrd", "truncated")),
    "header size beyond the file": Row(header_beyond_file, "refuse", (r"big\.nii", "declares dimensions 16x16x4000")),
    "header size beyond a valid gzip stream": Row(header_beyond_gzip_stream, "refuse",
                                                  (r"small\.nii\.gz", "truncated", "decompressed")),
    "4D image as FS-T2WI": Row(four_d_t2, "refuse", (r"t2_4d\.nii\.gz", "4D image")),
    "CT modality DICOM": Row(ct_modality_dicom, "refuse", ("t2_dicom", "Modality CT", "MR images only")),
    "duplicate DICOM slice": Row(duplicate_dicom_slice, "refuse", ("duplicate slice", "IM00005.dcm",
                                                                   "IM00005_copy.dcm")),
    "card schema_version 99": Row(card_schema_99, "refuse", (CNN_CARD, "schema_version", "up to version 1")),
    "card huge width": Row(card_huge_width, "refuse", (CNN_CARD, r"architecture_config\.base_width")),
    "card huge ensemble": Row(card_huge_ensemble, "refuse", (CNN_CARD, r"ensemble\.members", "1..20")),
    "card negative crop size": Row(card_bad_crop, "refuse", (CNN_CARD, r"preprocessing\.crop_size\[1\]")),
    "card spacing as text": Row(card_string_spacing, "refuse", (CNN_CARD, r"preprocessing\.target_spacing\[0\]")),
    "card weights_file ../x": Row(card_weights_outside, "refuse", (CNN_CARD, "weights_file", "own folder")),
    "card weights_file link leading out": Row(card_weights_symlink_outside, "refuse",
                                              (CNN_CARD, "weights_file", "link leading out")),
    "card with non-finite weights": Row(card_non_finite_weights, "refuse",
                                        (r"t2-radiomics_lr\.safetensors", "linear.weight", "NaN or infinite",
                                         r"t2-radiomics_lr\.json")),
    "lvi info of a card with non-finite weights": Row(info_non_finite_weights, "refuse",
                                                      ("linear.weight", "NaN or infinite")),
    "late-fusion member card ../x": Row(late_fusion_member_outside, "refuse",
                                        (r"t2\+dce-late_fusion\.json", r"members\[0\]\.card", "own folder")),
    "VOI of 3 voxels": Row(tiny_voi, "refuse", (r"tiny_mask\.nii\.gz", "below the 65 mm\\^3", "no class")),
    "FS-T2WI VOI of 3 voxels, fused model": Row(tiny_t2_voi_of_a_fused_model, "refuse",
                                                (r"tiny_mask\.nii\.gz", "below the 65 mm\\^3", "no class")),
    "two-label mask": Row(multi_label_mask, "warn", ("labels \\[1, 2\\]", "--label N")),
    "two-label mask with --label 1": Row(multi_label_mask_with_label, "succeed", ()),
    "sample case": Row(sample_case, "succeed", ()),
    "cohort.csv in Latin-1": Row(cohort_latin1, "refuse", (r"cohort\.csv", "line 4 is not UTF-8")),
    "cohort.csv UTF-8 with BOM": Row(cohort_utf8_bom, "succeed", ("OK: no problems found",)),
    "cohort.csv lvi column twice": Row(cohort_duplicate_lvi, "refuse", (r"cohort\.csv line 1", "column 'lvi' appears "
                                                                                               "2 times")),
    "cohort.csv ragged row": Row(cohort_ragged_row, "refuse", (r"cohort\.csv line 3", "6 fields", "5 columns")),
    "one image under two patients": Row(cohort_same_image_two_patients, "refuse",
                                        (r"copy_of_c1\.nii\.gz", "same image", "patient p1", "patient p3")),
    "evaluate with a NaN score": Row(evaluate_nan_scores, "refuse", (r"result\.json", "case c2", "not a finite")),
}

# A probability followed by its class, as `lvi predict` prints it ("0.518   LVI+").
PROBABILITY_PRINTED = re.compile(r"\d\.\d+\s+LVI[+-]")


@pytest.mark.parametrize("name", list(ROWS))
def test_hostile_input(name, tmp_path, capsys):
    row = ROWS[name]
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.mkdir()
    argv = row.build(inp, out)
    before = _tree_digest(inp)
    capsys.readouterr()

    rc = main(argv)

    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert "Traceback" not in text
    for pattern in row.expect:
        assert re.search(pattern, text), "{!r} not in the output of {}:\n{}".format(pattern, name, text)
    if row.outcome == "refuse":
        assert rc != 0, text
        assert not PROBABILITY_PRINTED.search(printed.out), printed.out
        assert "verified" not in printed.out
        assert not (out / "result.json").exists()
        if argv[0] in ("predict", "info", "evaluate"):
            error_lines = [line for line in printed.err.splitlines() if line.strip()]
            assert len(error_lines) == 1 and error_lines[0].startswith("lvi {}: error: ".format(argv[0])), printed.err
    else:
        assert rc == 0, text
        if argv[0] == "predict":
            result = json.loads((out / "result.json").read_text())
            warnings = " ".join(w for p in result["predictions"] for w in p["warnings"])
            assert ("labels [1, 2]" in warnings) == (row.outcome == "warn")
    assert _tree_digest(inp) == before, "{} changed its input folder".format(name)
    assert sorted(p.name for p in tmp_path.iterdir()) in (["in"], ["in", "out"])


def test_the_label_option_scores_the_sample_tumour_exactly(tmp_path, capsys):
    """--label 1 on a mask with a second structure gives the sample case's own probability."""
    image, mask = _two_label_mask(tmp_path)
    assert main(_predict(image, mask, tmp_path / "a", "--label", "1")) == 0
    assert main(_predict(SAMPLE / "t2.nii.gz", SAMPLE / "t2_mask.nii.gz", tmp_path / "b")) == 0
    a, b = (json.loads((tmp_path / d / "result.json").read_text())["predictions"][0]["probability"] for d in "ab")
    assert a == b


def test_float16_overflow_is_refused_on_export_naming_the_tensor(tmp_path):
    """A refitted last layer with a weight of 72,344 (float16 max 65,504) would be stored as inf."""
    card = json.loads((MODELS / CNN_CARD).read_text())
    del card["ensemble"]  # one network
    model = models.build_model(card["architecture"], **card["architecture_config"])
    with torch.no_grad():
        model.classifier[-1].weight[0, 0] = 72344.0
    with pytest.raises(WeightsError, match=r"classifier\.4\.weight.*72344.*float16.*--dtype float32"):
        weights.save_model(model, card, tmp_path / "m", dtype="float16")
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    weights_path, card_path = weights.save_model(model, card, tmp_path / "m", dtype="float32")
    loaded, _ = weights.load_model(card_path)
    assert float(loaded.classifier[-1].weight[0, 0].detach()) == 72344.0


def test_every_bundled_card_passes_the_schema():
    for path in sorted(MODELS.glob("*.json")):
        if path.name != "catalog.json":
            weights.load_card(path)


def test_shipped_resources_unchanged_by_every_row():
    assert _tree_digest(REPO / "Resources") == RESOURCES_BEFORE
