"""Training on sklearn digits: loss goes down, resume == uninterrupted, cache == online teacher."""

import json
import os

import pytest
import torch

from lskd.vision.data import build_data
from lskd.vision.distributed import Distributed
from lskd.vision.train import evaluate, run


def _metrics(out_dir):
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]


def _initial_nll(cfg):
    from lskd.vision.models import build_model
    from lskd.vision.train import seed_all

    seed_all(cfg.seed)
    m = build_model(cfg.arch, 10, 1, True, cfg.width, 8)
    return evaluate(m, build_data("digits").val, cfg, Distributed(cfg.device), "fp32")["val_nll"]


@pytest.fixture
def teacher_ckpt(tiny_cfg, tmp_path):
    cfg = tiny_cfg(out_dir=str(tmp_path / "teacher"), epochs=2, label_smoothing=0.1)
    run(cfg)
    return str(tmp_path / "teacher" / "last.pt")


def test_teacher_epoch_lowers_loss(tiny_cfg, tmp_path):
    cfg = tiny_cfg(label_smoothing=0.1, epochs=1)
    before = _initial_nll(cfg)
    final = run(cfg)
    assert final["final_nll"] < before - 0.5
    assert final["final_top1"] > 70
    for name in ("final.json", "last.pt", "best.pt", "metrics.jsonl", "config.json"):
        assert os.path.isfile(os.path.join(cfg.out_dir, name))
    assert len(_metrics(cfg.out_dir)) == 1
    # skip-when-done: a second call returns the stored result without training
    mtime = os.path.getmtime(os.path.join(cfg.out_dir, "last.pt"))
    assert run(cfg)["final_top1"] == final["final_top1"]
    assert os.path.getmtime(os.path.join(cfg.out_dir, "last.pt")) == mtime


def test_student_epoch_lowers_loss(tiny_cfg, tmp_path, teacher_ckpt):
    cfg = tiny_cfg(role="student", out_dir=str(tmp_path / "student"), teacher=teacher_ckpt, temperature=2.0, epochs=1, seed=3)
    before = _initial_nll(cfg)
    final = run(cfg)
    assert final["final_nll"] < before - 0.3
    assert final["teacher_meta"]["label_smoothing"] == 0.1 and final["temperature"] == 2.0
    assert _metrics(cfg.out_dir)[0]["train_kd"] > 0


def test_runs_feed_lskd_report(tiny_cfg, tmp_path, teacher_ckpt):
    """Each run's score.json is what `lskd report` tabulates: the vision grid uses the NMT grid's report."""
    from lskd.report import main as report

    student = tiny_cfg(role="student", out_dir=str(tmp_path / "student"), teacher=teacher_ckpt, temperature=3.0, epochs=1)
    final = run(student)
    with open(tmp_path / "teacher" / "score.json") as f:
        teacher_score = json.load(f)
    assert teacher_score["role"] == "teacher" and teacher_score["teacher_alpha"] == 0.1 and teacher_score["temperature"] is None
    with open(tmp_path / "student" / "score.json") as f:  # which teacher taught it: its seed, from the checkpoint
        assert json.load(f)["teacher_seed"] == teacher_score["teacher_seed"] == teacher_score["seed"]
    assert report(["--runs", str(tmp_path), "--metric", "top1", "--out", str(tmp_path / "grid"), "--no-plot"]) == 0
    table = (tmp_path / "grid.md").read_text()
    assert f"| T=3 | {final['final_top1']:.2f} |" in table


def test_resume_equals_uninterrupted(tiny_cfg, tmp_path):
    kw = dict(arch="smallcnn", width=0.25, schedule="step", step_size=1, gamma=0.5, label_smoothing=0.1, batch_size=128)
    full = tiny_cfg(out_dir=str(tmp_path / "full"), epochs=3, **kw)
    run(full)
    part = tiny_cfg(out_dir=str(tmp_path / "part"), epochs=2, **kw)
    run(part)
    os.remove(os.path.join(part.out_dir, "final.json"))  # as if killed after epoch 2's checkpoint
    part.epochs = 3
    run(part)
    a, b = _metrics(full.out_dir), _metrics(part.out_dir)
    assert [r["epoch"] for r in b] == [0, 1, 2]
    for ra, rb in zip(a, b):
        for k in ("train_loss", "val_nll", "val_top1", "lr"):
            assert ra[k] == rb[k], (k, ra, rb)
    sa = torch.load(os.path.join(full.out_dir, "last.pt"), weights_only=True)["model"]
    sb = torch.load(os.path.join(part.out_dir, "last.pt"), weights_only=True)["model"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_teacher_cache_equals_online_teacher(tiny_cfg, tmp_path, teacher_ckpt):
    kw = dict(role="student", teacher=teacher_ckpt, temperature=3.0, epochs=1, augment=False)
    online = run(tiny_cfg(out_dir=str(tmp_path / "online"), **kw))
    cached = run(tiny_cfg(out_dir=str(tmp_path / "cached"), teacher_cache=True, **kw))
    assert abs(online["final_nll"] - cached["final_nll"]) < 1e-5
    assert any(f.startswith("last.pt.logits-digits") for f in os.listdir(os.path.dirname(teacher_ckpt)))


def test_lr_schedules():
    from lskd.vision.train import TrainConfig, lr_at

    c = TrainConfig(lr=0.1, schedule="step", step_size=30, warmup_epochs=5, epochs=90)
    assert lr_at(c, 2.5) == pytest.approx(0.05)
    assert lr_at(c, 10) == pytest.approx(0.1) and lr_at(c, 31) == pytest.approx(0.01) and lr_at(c, 61) == pytest.approx(0.001)
    c = TrainConfig(lr=0.1, schedule="multistep", milestones=[3, 7], epochs=10)
    assert [round(lr_at(c, e), 6) for e in (0, 3, 7)] == [0.1, 0.01, 0.001]
    c = TrainConfig(lr=0.1, schedule="cosine", epochs=10)
    assert lr_at(c, 0) == pytest.approx(0.1) and lr_at(c, 5) == pytest.approx(0.05) and lr_at(c, 10) == pytest.approx(0.0, abs=1e-9)
