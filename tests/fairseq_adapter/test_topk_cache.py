"""`lskd cache` and ls_kd's --kd-topk-cache: round trip, equivalence with the online teacher, refusals."""

import argparse
import json
import shutil

import numpy as np
import pytest
import torch

from helpers import PLUGINS, a_batch, build, build_cache, cache_error, copy_cache, require_fairseq, run, tool, train

require_fairseq()
from fairseq import utils  # noqa: E402

utils.import_user_module(argparse.Namespace(user_dir=PLUGINS))
from fairseq_plugins import topk_cache  # noqa: E402
from fairseq_plugins.teacher import TeacherSession  # noqa: E402

K = 4


@pytest.fixture(scope="module")
def cache_dir(tiny_data, tiny_teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "c"
    build_cache(tiny_data / "bin", tiny_teacher, out, ["train", "valid"], K, max_tokens=500, cpu=True)
    return out


def test_round_trip_equals_teacher_topk(tiny_data, tiny_teacher, cache_dir):
    cfg, task, _ = build(tiny_data / "bin", ["--kd-lambda", "1", "--teacher-path", str(tiny_teacher)])
    teacher = task.build_criterion(cfg.criterion).teacher.models[0]
    cache = topk_cache.TopKCache(cache_dir / "valid")
    m = cache.manifest
    assert m["k"] == K and m["n_sentences"] == 40 and m["ids_dtype"] == "int16" and m["split"] == "valid"
    assert m["n_tokens"] == int(task.dataset("valid").tgt_sizes.sum())
    assert m["bytes_per_token"] == K * (2 + 2)  # int16 id + fp16 value
    assert m["bytes"]["values.npy"] == 128 + m["n_tokens"] * K * 2  # .npy header + payload
    sample = a_batch(task)
    with torch.no_grad():
        log_p = torch.log_softmax(teacher(**sample["net_input"])[0].float(), -1)
    mask = sample["target"].ne(task.target_dictionary.pad())
    want_vals, want_ids = log_p.topk(K, -1)
    ids, vals = cache.rows(sample["id"].tolist())
    assert np.array_equal(ids, want_ids[mask].numpy())
    np.testing.assert_allclose(vals.astype(np.float32), want_vals[mask].numpy(), rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("T", [1.0, 64.0])
def test_cache_equals_online_topk(tiny_data, tiny_teacher, cache_dir, T):
    common = ["--kd-lambda", "0.9", "--kd-temperature", str(T), "--label-smoothing", "0.1", "--kd-topk", str(K)]
    on_cfg, task, model = build(tiny_data / "bin", common + ["--teacher-path", str(tiny_teacher)])
    off_cfg, _, _ = build(tiny_data / "bin", common + ["--kd-topk-cache", str(cache_dir)])
    task.load_dataset("train")
    sample = next(iter(task.get_batch_iterator(task.dataset("train"), max_tokens=400, seed=3).next_epoch_itr(shuffle=True)))
    model.train()
    out = []
    for cfg in (on_cfg, off_cfg):
        crit = task.build_criterion(cfg.criterion)
        model.zero_grad()
        torch.manual_seed(7)
        loss, _, log = crit(model, sample)
        loss.backward()
        out.append((loss.item(), log["kd_loss"].item(), [p.grad.clone() for p in model.parameters()]))
    (l_on, kd_on, g_on), (l_off, kd_off, g_off) = out
    # fp16 storage of log-probabilities: 1e-3 relative on the values bounds the loss difference
    assert l_off == pytest.approx(l_on, rel=2e-3)
    assert kd_off == pytest.approx(kd_on, rel=2e-3, abs=1e-4)
    # all gradients as one vector: relative L2 error under 1 % (single tensors whose gradient is ~0,
    # e.g. a bias at 1e-5, only carry fp32 noise and are held to 1e-3 of the whole gradient's norm)
    total = torch.cat([a.flatten() for a in g_on]).norm()
    assert torch.cat([(a - b).flatten() for a, b in zip(g_on, g_off)]).norm() <= 1e-2 * total
    for a, b in zip(g_on, g_off):
        assert (a - b).norm() <= 1e-2 * a.norm() + 1e-3 * total


def test_validation_uses_valid_split(tiny_data, tiny_teacher, cache_dir):
    """In eval mode (fairseq's validation) the criterion reads the cache's valid rows: on a valid batch its KD loss
    equals the online teacher's top-K loss, which the train rows of the same sample ids would not give."""
    common = ["--kd-lambda", "1", "--kd-topk", str(K)]
    on_cfg, task, model = build(tiny_data / "bin", common + ["--teacher-path", str(tiny_teacher)])
    off_cfg, _, _ = build(tiny_data / "bin", common + ["--kd-topk-cache", str(cache_dir)])
    sample = a_batch(task)
    model.eval()
    with torch.no_grad():
        online, cached = (task.build_criterion(cfg.criterion)(model, sample)[2]["kd_loss"].item() for cfg in (on_cfg, off_cfg))
    assert cached == pytest.approx(online, rel=2e-3)
    ids = sample["id"].tolist()
    valid_rows = topk_cache.TopKCache(cache_dir / "valid").rows(ids)[0]
    train_rows = topk_cache.TopKCache(cache_dir / "train").rows(ids)[0]
    assert valid_rows.shape != train_rows.shape or not np.array_equal(valid_rows, train_rows)


def test_refuses_cache_of_another_split(tiny_data, cache_dir, tmp_path):
    bad = copy_cache(cache_dir, tmp_path)
    shutil.rmtree(bad / "train")
    shutil.copytree(bad / "valid", bad / "train")
    msg = cache_error(tiny_data, bad)
    assert "40 sentences, the task's train split has 400" in msg


def test_refuses_other_corpus_lengths(tiny_data, cache_dir, tmp_path):
    bad = copy_cache(cache_dir, tmp_path)
    offsets = np.load(bad / "train" / "offsets.npy")
    offsets[3] += 1
    np.save(bad / "train" / "offsets.npy", offsets)
    msg = cache_error(tiny_data, bad)
    assert "sentence 2 has" in msg and "(cache made for another corpus)" in msg


def test_refuses_other_dictionary(tiny_data, cache_dir, tmp_path):
    bad = copy_cache(cache_dir, tmp_path)
    m = json.loads((bad / "train" / "manifest.json").read_text())
    m["dictionary_sha256"] = "0" * 64
    (bad / "train" / "manifest.json").write_text(json.dumps(m))
    assert "made with another target dictionary" in cache_error(tiny_data, bad)


def test_refuses_truncated_cache(tiny_data, cache_dir, tmp_path):
    bad = copy_cache(cache_dir, tmp_path)
    values = bad / "train" / "values.npy"
    size = values.stat().st_size
    with open(values, "r+b") as f:
        f.truncate(size - 10)
    msg = cache_error(tiny_data, bad)
    assert f"values.npy: {size - 10} bytes, manifest says {size} (truncated or corrupted cache" in msg


def test_refuses_topk_above_stored_k_and_two_sources(tiny_data, tiny_teacher, cache_dir):
    assert f"--kd-topk 5 is larger than the K={K} tokens stored" in cache_error(tiny_data, cache_dir, ["--kd-topk", "5"])
    msg = cache_error(tiny_data, cache_dir, ["--teacher-path", str(tiny_teacher)])
    assert msg == "give one teacher source: --teacher-path or --kd-topk-cache, not both"


def test_missing_cache_dir(tiny_data, tmp_path):
    assert "no such directory (build it with lskd cache)" in cache_error(tiny_data, tmp_path / "nope")


def test_interrupted_build_leaves_nothing_complete(tiny_data, tiny_teacher, tmp_path, monkeypatch):
    out = tmp_path / "c"
    real = TeacherSession.batches

    def interrupted(*args, **kwargs):
        for i, batch in enumerate(real(*args, **kwargs)):
            if i == 2:
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(TeacherSession, "batches", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_cache(tiny_data / "bin", tiny_teacher, out, ["train"], K, max_tokens=200, cpu=True)
    assert list(out.iterdir()) == []  # no split directory, no temporary left behind
    monkeypatch.setattr(TeacherSession, "batches", real)
    build_cache(tiny_data / "bin", tiny_teacher, out, ["train"], K, max_tokens=200, cpu=True)
    assert topk_cache.TopKCache(out / "train").manifest["n_sentences"] == 400


@pytest.mark.parametrize("args, message", [
    (["--data", "{tmp}/nope"], "--data {tmp}/nope: no such directory"),
    (["--k", "0"], "--k must be > 0, got 0"),
    (["--k", "100000"], "--k 100000 is larger than the target vocabulary"),
    (["--splits", "nosuch"], "no 'nosuch' split"),
])
def test_cache_cli_errors(tiny_data, tiny_teacher, tmp_path, args, message):
    base = {"--data": str(tiny_data / "bin"), "--teacher-path": str(tiny_teacher), "--out": str(tmp_path / "c"), "--cpu": None}
    argv = [tool("lskd"), "cache"]
    for key, value in base.items():
        if key not in args:
            argv += [key] + ([value] if value else [])
    argv += [a.format(tmp=tmp_path) for a in args]
    proc = run(argv, check=False)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("lskd cache: error: ") and message.format(tmp=tmp_path) in last
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())


@pytest.mark.slow
def test_cache_once_two_students_without_teacher(tiny_data, tiny_teacher, tmp_path):
    """The done-when run: one cache, students at T = 1 and T = 64, teacher file gone while they train."""
    teacher = tmp_path / "teacher.pt"
    shutil.copy(tiny_teacher, teacher)
    run([tool("lskd"), "cache", "--data", tiny_data / "bin", "--teacher-path", teacher, "--out", tmp_path / "cache",
         "--k", "4", "--cpu"])
    teacher.unlink()
    for T in ("1", "64"):
        proc = train(tiny_data / "bin", tmp_path / f"student_T{T}",
                     ["--kd-lambda", "0.9", "--kd-temperature", T, "--label-smoothing", "0.1",
                      "--kd-topk-cache", tmp_path / "cache"], epochs=2)
        assert "top-4 teacher cache" in proc.stdout
        assert (tmp_path / f"student_T{T}" / "checkpoint_last.pt").is_file()


def test_corrupt_manifest_names_its_file(tiny_data, cache_dir, tmp_path):
    bad = copy_cache(cache_dir, tmp_path)
    (bad / "valid" / "manifest.json").write_text("{")
    msg = cache_error(tiny_data, bad)
    assert msg.startswith(f"{bad / 'valid' / 'manifest.json'}: cannot read an lskd cache manifest (JSONDecodeError")
