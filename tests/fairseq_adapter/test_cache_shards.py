"""Sharded `lskd cache` builds, their merge, kill-and-resume of builds, determinism, NaN/inf refusals."""

import argparse
import filecmp
import json
import os
import random
import shutil
import signal
import subprocess
import time

import numpy as np
import pytest
import torch

from helpers import BIN, PLUGINS, build_cache, cache_error, copy_cache, require_fairseq, tool

require_fairseq()
from fairseq import utils  # noqa: E402

utils.import_user_module(argparse.Namespace(user_dir=PLUGINS))
from fairseq_plugins import cache_build, topk_cache  # noqa: E402
from lskd.errors import LskdError  # noqa: E402

K = 4
MAX_TOKENS = 60  # a few dozen batches: shards get several each


def build(tiny_data, teacher, out, **kw):
    return build_cache(tiny_data / "bin", teacher, out, ["train", "valid"], K, max_tokens=MAX_TOKENS,
                            cpu=True, **kw)


@pytest.fixture(scope="module")
def unsharded(tiny_data, tiny_teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("unsharded") / "c"
    build(tiny_data, tiny_teacher, out)
    return out


def same_files(a, b):
    return all(filecmp.cmp(a / s / f, b / s / f, shallow=False) for s in ("train", "valid") for f in topk_cache.FILES)


def test_shards_merge_into_the_unsharded_cache_byte_for_byte(tiny_data, tiny_teacher, unsharded, tmp_path, capsys):
    out = tmp_path / "c"
    build(tiny_data, tiny_teacher, out, num_shards=3, shard_id=1)
    build(tiny_data, tiny_teacher, out, num_shards=3, shard_id=0)
    shard = topk_cache.TopKCache(out / "shards" / "train-00001-of-00003")
    assert shard.manifest["shard"] == {"id": 1, "num_shards": 3, "max_tokens": MAX_TOKENS, "split_sentences": 400}
    assert 0 < shard.manifest["n_sentences"] < 400 and not (out / "train").exists()
    capsys.readouterr()
    build(tiny_data, tiny_teacher, out, num_shards=3, shard_id=1)  # rerun: finished shard skipped
    assert f"skip: {out / 'shards' / 'train-00001-of-00003'} is complete" in capsys.readouterr().err
    build(tiny_data, tiny_teacher, out, num_shards=3, shard_id=2)
    shutil.copytree(out / "shards", tmp_path / "small" / "shards")  # a copy of the shards, merged below in tiny chunks
    capsys.readouterr()
    build(tiny_data, tiny_teacher, out, num_shards=3)  # all shards complete: merges, removes the shards
    err = capsys.readouterr().err
    assert "wrote" not in err and f"merged 3 shards into {out / 'train'}" in err
    assert sorted(p.name for p in out.iterdir()) == ["train", "valid"]
    assert same_files(out, unsharded)
    merged, ref = (json.loads((d / "train" / "manifest.json").read_text()) for d in (out, unsharded))
    for key in ("k", "n_sentences", "n_tokens", "bytes", "dictionary_sha256", "teachers", "ids_dtype"):
        assert merged[key] == ref[key]
    # merge chunks of 5 rows (a sentence at a time where rows do not fit) give the same bytes
    for split in ("train", "valid"):
        cache_build.merge_shards(tmp_path / "small", split, 3, chunk_rows=5)
    assert same_files(tmp_path / "small", unsharded)


def test_same_seed_same_cache_bytes(tiny_data, tiny_teacher, unsharded, tmp_path):
    build(tiny_data, tiny_teacher, tmp_path / "again")
    assert same_files(tmp_path / "again", unsharded)


def test_merge_refuses_missing_or_mismatched_shards(tiny_data, tiny_teacher, tmp_path):
    out = tmp_path / "c"
    build(tiny_data, tiny_teacher, out, num_shards=2, shard_id=0)
    with pytest.raises(LskdError, match=r"cannot merge split 'train': shards not complete: .*train-00001-of-00002"):
        cache_build.merge_shards(out, "train", 2)
    build_cache(tiny_data / "bin", tiny_teacher, out, ["train"], K, max_tokens=MAX_TOKENS + 1,
                     cpu=True, num_shards=2, shard_id=1)
    with pytest.raises(LskdError, match="was built with other settings"):
        cache_build.merge_shards(out, "train", 2)


@pytest.mark.parametrize("args, message", [
    (["--num-shards", "2", "--shard-id", "2"], "--shard-id must be in [0, 1] for --num-shards 2, got 2"),
    (["--num-shards", "0"], "--num-shards must be >= 1, got 0"),
])
def test_shard_option_errors(tiny_data, tiny_teacher, tmp_path, args, message):
    with pytest.raises(LskdError) as info:
        cache_build.main(["--data", str(tiny_data / "bin"), "--teacher-path", str(tiny_teacher), "--out",
                         str(tmp_path / "c"), "--cpu", *args])
    assert str(info.value) == message


def test_cache_with_nan_or_inf_is_refused_naming_the_first_bad_row(tiny_data, unsharded, tmp_path):
    bad = copy_cache(unsharded, tmp_path)
    offsets = np.load(bad / "train" / "offsets.npy")
    values = np.load(bad / "train" / "values.npy", mmap_mode="r+")
    row = int(offsets[37]) + 2  # sentence 37, target position 2
    values[row, 1] = np.nan
    values[row + 5, 0] = np.inf
    values.flush()
    del values
    msg = cache_error(tiny_data, bad)
    assert msg.startswith(f"--kd-topk-cache {bad / 'train' / 'values.npy'}: row {row} (sentence 37, target position 2) "
                          "holds non-finite values [") and "nan" in msg and "rebuild it with lskd cache --force" in msg


def test_build_refuses_a_diverged_teacher(tiny_data, tiny_teacher, tmp_path):
    state = torch.load(tiny_teacher, map_location="cpu", weights_only=False)
    w = state["model"]["decoder.output_projection.weight"]
    w[5] = float("nan")  # every position's logit of token 5 is NaN
    torch.save(state, tmp_path / "diverged.pt")
    with pytest.raises(LskdError, match=r"non-finite log-probabilities .* for sentence \d+ of split 'valid', "
                                        r"target position 0 \(a diverged teacher\?\)"):
        build_cache(tiny_data / "bin", tmp_path / "diverged.pt", tmp_path / "c", ["valid"], K, cpu=True)
    assert not (tmp_path / "c" / "valid").exists()


@pytest.fixture(scope="module")
def slow_reference(tiny_data, tiny_teacher, tmp_path_factory):
    """The train split built in tiny batches (--max-tokens 24: slow enough to be killed inside)."""
    return build_cache(tiny_data / "bin", tiny_teacher, tmp_path_factory.mktemp("slow") / "c", ["train"],
                            K, max_tokens=24, cpu=True)["train"]


def kill_mid_build(argv, tmp_glob, root, seed):
    """Start `lskd cache`, SIGKILL it a random moment after its temporary split/shard directory appears."""
    rng = random.Random(seed)
    env = dict(os.environ, PYTHONWARNINGS="ignore", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen([tool("lskd"), "cache", *map(str, argv)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while not list(root.glob(tmp_glob)):
        assert proc.poll() is None and time.time() < deadline, "build ended before its temporary directory appeared"
        time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("shard", [None, 1])
def test_sigkill_mid_build_then_rerun(tiny_data, tiny_teacher, slow_reference, tmp_path, shard):
    """Killed mid-split (or mid-shard): nothing looks complete; the rerun finishes the same bytes."""
    out = tmp_path / "c"
    seed = random.randrange(1 << 30)
    # a slow build (tiny batches) so that the kill lands inside it
    argv = ["--data", tiny_data / "bin", "--teacher-path", tiny_teacher, "--out", out, "--splits", "train", "--k", K,
            "--cpu", "--max-tokens", "24"]
    if shard is None:
        kill_mid_build(argv, ".train.*.tmp", out, seed)
        finished = (out / "train" / "manifest.json").is_file()
        if not finished:
            assert not (out / "train").exists(), seed
        cache_build.main([str(a) for a in argv])
    else:
        argv += ["--num-shards", "2"]
        kill_mid_build(argv + ["--shard-id", "1"], "shards/.train-00001-of-00002.*.tmp", out, seed)
        if not (out / "shards" / "train-00001-of-00002" / "manifest.json").is_file():
            assert not (out / "shards" / "train-00001-of-00002").exists(), seed
        cache_build.main([str(a) for a in argv])  # rebuilds the killed shard, builds shard 0, merges
        assert not (out / "shards").exists()
    assert all(filecmp.cmp(out / "train" / f, slow_reference / f, shallow=False) for f in topk_cache.FILES), seed
