"""The shard store that `lskd cache` and `lskd distill-data` share (fairseq_plugins/shard_store.py): its cut is
fairseq's own batch sharding, both commands lay shards out the same way, and older layouts are refused."""

import argparse
import json

import numpy as np
import pytest

from helpers import PLUGINS, build_cache, distill, require_fairseq

require_fairseq()
from fairseq import utils  # noqa: E402

utils.import_user_module(argparse.Namespace(user_dir=PLUGINS))
from fairseq.data import iterators  # noqa: E402
from fairseq_plugins import distill_data  # noqa: E402
from fairseq_plugins.distill_decode import seed_all, split_batches  # noqa: E402
from fairseq_plugins.shard_store import ShardStore, cut  # noqa: E402
from fairseq_plugins.teacher import TeacherSession  # noqa: E402
from lskd.errors import LskdError  # noqa: E402


@pytest.mark.parametrize("n_batches, num_shards", [(7, 3), (2, 3), (9, 1), (10, 4)])
def test_cut_is_fairseq_batch_sharding(n_batches, num_shards):
    """Shard I gets what fairseq's ShardedIterator gives shard I (without its empty fill batches)."""
    batches = [[i] for i in range(n_batches)]
    for shard_id in range(num_shards):
        fairseq = [b for b in iterators.ShardedIterator(batches, num_shards, shard_id, fill_value=[]) if b]
        assert cut(batches, num_shards, shard_id) == fairseq


def test_store_layout_and_missing_shards(tmp_path):
    store = ShardStore(tmp_path, "train", 12)
    assert store.path(3) == tmp_path / "shards" / "train-00003-of-00012"
    with store.writing(3) as tmp:
        (tmp / "manifest.json").write_text("{}")
    assert store.missing([2, 3, 4]) == [2, 4] and store.manifest(3) == {}
    with pytest.raises(KeyboardInterrupt), store.writing(4) as tmp:
        (tmp / "manifest.json").write_text("{}")
        raise KeyboardInterrupt  # killed mid-write: nothing finished, no temporary left
    assert store.manifest(4) is None and sorted(p.name for p in (tmp_path / "shards").iterdir()) == [store.path(3).name]
    store.remove()
    assert not (tmp_path / "shards").exists()


def every_other(batches):
    return sorted(int(i) for b in batches[0::2] for i in b)


def test_both_commands_cut_their_batches_the_same_way(tiny_data, tiny_teacher, tmp_path):
    """Shard 0 of 2 holds the sentences of every other batch of the command's unsharded run (the cache: fairseq's
    epoch iterator; distill-data: its generate batches), and distill-data's merge puts the pairs back in
    sample-id order."""
    session = TeacherSession.for_data(str(tiny_data / "bin"), str(tiny_teacher), ["valid"])
    frozen = session.epoch_iterator("valid", 100).frozen_batches
    assert len(frozen) >= 4  # several batches, so that the cut is not trivial
    shard0 = every_other(frozen)
    assert shard0 != list(range(len(shard0)))  # not a contiguous range of sample ids
    build_cache(tiny_data / "bin", tiny_teacher, tmp_path / "c", ["valid"], 4, max_tokens=100, cpu=True, num_shards=2,
                shard_id=0)
    assert np.load(tmp_path / "c" / "shards" / "valid-00000-of-00002" / "sentences.npy").tolist() == shard0
    out = tmp_path / "d"
    keep_all = ["--split", "valid", "--beam", "2", "--max-tokens", "100", "--max-ratio", "0", "--keep-empty",
                "--keep-max-len", "--num-shards", "2"]
    distill_data.main(["--data", str(tiny_data / "bin"), "--teacher-path", str(tiny_teacher), "--out", str(out), "--cpu",
                       *keep_all, "--shard-id", "0"])
    seed_all(1)  # --seed's default: the dataset's random tie-breaking of lengths
    batches, _ = split_batches(session.task.dataset("valid"), session.max_positions(), 100, None)
    text = out / "shards" / "valid-00000-of-00002" / "text" / "valid.ids"
    assert [int(line.split("\t")[0]) for line in text.read_text().splitlines()] == every_other(batches)
    m = distill(tiny_data / "bin", tiny_teacher, out, *keep_all)
    ids = [int(line.split("\t")[0]) for line in (out / "text" / "valid.ids").read_text().splitlines()]
    assert ids == list(range(40)) == list(range(m["counts"]["kept"])) and not (out / "shards").exists()


def test_old_layouts_are_refused_in_one_line(tiny_data, tiny_teacher, tmp_path):
    old_cache = tmp_path / "c"
    (old_cache / "train.shards" / "0-of-2").mkdir(parents=True)
    with pytest.raises(LskdError, match=r"train\.shards/ holds shards of lskd's older cache layout; delete it and rerun"):
        build_cache(tiny_data / "bin", tiny_teacher, old_cache, ["train"], 4, cpu=True, num_shards=2)
    old_distill = tmp_path / "d" / "shards" / "valid-00000-of-00002"
    old_distill.mkdir(parents=True)
    (old_distill / "manifest.json").write_text(json.dumps({"kind": "shard", "sample_ids": [0, 20], "settings": {}}))
    with pytest.raises(LskdError, match=r"was cut by sample-id ranges .* rerun with --force"):
        distill_data.main(["--data", str(tiny_data / "bin"), "--teacher-path", str(tiny_teacher), "--out",
                           str(tmp_path / "d"), "--cpu", "--split", "valid", "--num-shards", "2"])
