"""The cache at scale: warm runs identify inputs by stat alone, one shared memory-mapped pack, an
old-format cache announced, `lvi preprocess` building what `train` reads, parallel validation."""

import json
import logging
import os
import socket
import time

import numpy as np
import pytest
import torch.multiprocessing as mp

from LVIPredictorLib.preprocessing import PreprocessSpec
from lvi_training import cache, sources
from lvi_training.cache import PreparedCache
from lvi_training.cli import main as lvi
from lvi_training.cohort import load_cohort, validate_cohort
from lvi_training.engine import CaseTensors
from lvi_training.request import RunRequest, build_spec
from training_helpers import read_rows, write_blob_cohort

SMALL_3D = PreprocessSpec(dims=3, target_spacing=(2.0, 2.0, 2.0), crop_size=(32, 32, 32))


@pytest.fixture()
def cohort(tmp_path):
    root = tmp_path / "cohort"
    write_blob_cohort(root, n=4, seed=6, shape=(8, 24, 24))
    old = time.time() - 60  # older than the racy window, as a cohort exported earlier is
    for path in (root / "images").iterdir():
        os.utime(path, (old, old))
    return load_cohort(root)


def _inputs(cohort):
    return {str(c.images["t2"]) for c in cohort.cases} | {str(c.masks["t2"]) for c in cohort.cases}


def test_a_warm_run_reads_no_input_file_and_keeps_their_content_hashes(cohort, tmp_path, monkeypatch):
    store = PreparedCache(tmp_path / "cache")
    _, built = store.stacked(cohort.cases, "t2", SMALL_3D, workers=1)
    index = json.loads((store.root / cache.INDEX_NAME).read_text())["files"]
    assert sorted(index.values()) == sorted(sources.content_hash(p) for p in _inputs(cohort))
    hashed = []
    real_hash = sources.content_hash
    monkeypatch.setattr(sources, "content_hash", lambda p: hashed.append(str(p)) or real_hash(p))
    _, rebuilt = store.stacked(cohort.cases, "t2", SMALL_3D, workers=1)
    assert (built, rebuilt) == (4, 0)
    assert not _inputs(cohort) & set(hashed)
    touched = cohort.cases[1].images["t2"]
    os.utime(touched, None)  # new mtime, same bytes: hashed again, found unchanged, nothing rebuilt
    _, rebuilt = store.stacked(cohort.cases, "t2", SMALL_3D, workers=1)
    assert rebuilt == 0 and str(touched) in hashed


def test_the_pack_is_memory_mapped_and_equals_the_entries_stacked(cohort, tmp_path):
    store = PreparedCache(tmp_path / "cache")
    stack, _ = store.stacked(cohort.cases, "t2", SMALL_3D, workers=2)
    entries, _ = store.prepare(cohort.cases, "t2", SMALL_3D, workers=1)
    assert isinstance(stack.inputs, np.memmap)
    labels = [c.lvi for c in cohort.cases]
    shared, in_memory = stack.case_tensors(labels), CaseTensors.from_cached(entries, labels)
    assert shared.inputs.data_ptr() == stack.inputs.ctypes.data  # the tensor is the mapping, not a copy
    assert np.array_equal(shared.inputs.numpy(), in_memory.inputs.numpy())
    assert np.array_equal(shared.sample_case.numpy(), in_memory.sample_case.numpy())
    for a, b in zip(shared.slice_weights, in_memory.slice_weights):
        assert a.tobytes() == b.tobytes()


def test_a_corrupt_pack_is_detected_and_rebuilt(cohort, tmp_path, caplog):
    store = PreparedCache(tmp_path / "cache")
    first, _ = store.stacked(cohort.cases, "t2", SMALL_3D, workers=1)
    expected = np.array(first.inputs)
    data = bytearray(first.path.read_bytes())
    data[-64:-48] = bytes(255 - b for b in data[-64:-48])
    first.path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="lvi_training.cache"):
        again, built = store.stacked(cohort.cases, "t2", SMALL_3D, workers=1)
    assert built == 0 and "corrupt" in caplog.text
    assert np.array_equal(again.inputs, expected)


def test_a_cache_of_the_old_format_is_announced_in_one_line_and_rebuilt(cohort, tmp_path, caplog):
    store = PreparedCache(tmp_path / "cache")
    (store.root / "ab").mkdir()
    np.savez(store.root / "ab" / ("ab" + "0" * 62 + ".npz"), inputs=np.zeros(3))
    with caplog.at_level(logging.WARNING, logger="lvi_training.cache"):
        _, built = store.prepare(cohort.cases, "t2", SMALL_3D, workers=1)
    old = [r for r in caplog.records if ".npz" in r.getMessage()]
    assert built == 4 and len(old) == 1 and "\n" not in old[0].getMessage()


def test_preprocess_builds_the_pack_that_train_reads(cohort, tmp_path, capsys):
    args = ["--cohort", str(cohort.root), "--model", "vanilla_cnn_2d", "--sequence", "t2"]
    assert lvi(["preprocess"] + args + ["--workers", "2", "--crop-size", "32", "32", "1", "--quiet"]) == 0
    assert "4 preprocessed now" in capsys.readouterr().out
    req = RunRequest(cohort=str(cohort.root), model="vanilla_cnn_2d", sequence="t2", out="", crop_size=[32, 32, 1])
    _, built = PreparedCache(cohort.root / ".lvi_cache").stacked(cohort.cases, "t2", build_spec(req), workers=1)
    assert built == 0


def test_parallel_validation_reports_the_same_problems_in_the_same_order(tmp_path):
    from test_training_cohort import _broken_cohort

    _broken_cohort(tmp_path)
    serial = validate_cohort(load_cohort(tmp_path), sequences=["dce"], workers=1)
    parallel = validate_cohort(load_cohort(tmp_path), sequences=["dce"], workers=2)
    assert [str(p) for p in parallel.problems] == [str(p) for p in serial.problems]
    assert [str(p) for p in parallel.warnings] == [str(p) for p in serial.warnings]
    assert len(serial.problems) == 8 and read_rows(tmp_path)


def _rank(rank, port, folder, results):
    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    from lvi_training import distributed

    ctx = distributed.setup("cpu")
    try:
        distributed.run_on_main(ctx, lambda: time.sleep(3) or "built", folder, timeout_s=1.0)
        results.put((rank, "returned"))
    except Exception as exc:
        results.put((rank, str(exc)))


def test_a_rank_waiting_past_the_cache_timeout_stops_with_a_sentence_that_says_so(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    context = mp.get_context("spawn")
    results = context.Queue()
    procs = [context.Process(target=_rank, args=(r, port, str(tmp_path), results)) for r in (0, 1)]
    for p in procs:
        p.start()
    outcome = dict(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert "waited 1 s (--cache-timeout) for rank 0" in outcome[1]
    assert outcome[0] != "returned"  # rank 1 left, so rank 0's hand-off barrier fails instead of hanging
