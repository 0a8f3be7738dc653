"""`lskd vision` bad input: one line, exit 2, before any training."""

import os

import pytest

from helpers import run_vision_cli as run_cli


DIGITS = ["--dataset", "digits", "--arch", "mlp", "--epochs", "1", "--device", "cpu", "--no-progress"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    from lskd.vision.train import TrainConfig, run

    d = tmp_path_factory.mktemp("t")
    run(TrainConfig(role="teacher", out_dir=str(d), dataset="digits", arch="mlp", epochs=1, batch_size=256, device="cpu", progress=False))
    return str(d / "last.pt")


def _err(tmp_path, capsys, argv):
    out = str(tmp_path / "out")
    rc, _, err = run_cli(argv + ["--out-dir", out], capsys)
    assert rc == 2
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert not os.path.exists(os.path.join(out, "last.pt")) and not os.path.exists(os.path.join(out, "metrics.jsonl"))
    return lines[0]


@pytest.mark.parametrize("argv,pattern", [
    (["train-teacher", "--arch", "resnet9000"], "unknown model 'resnet9000'; expected one of the project's (mlp, mobilenet_v2, resnet18"),
    (["train-teacher", "--dataset", "svhn"], "unknown dataset 'svhn'; expected one of: cifar10"),
    (["train-teacher", "--label-smoothing", "1.0"], "--label-smoothing must be in [0, 1), got 1.0"),
    (["train-teacher", "--label-smoothing", "-0.1"], "--label-smoothing must be in [0, 1), got -0.1"),
    (["train-teacher", "--schedule", "poly"], "--schedule: unknown schedule 'poly'"),
    (["train-teacher", "--clip-grad-norm", "-1"], "--clip-grad-norm: expected >= 0"),
    (["train-teacher", "--dataset", "cifar10", "--data-root", "/nonexistent"], "--data-root: /nonexistent is not a directory"),
])
def test_teacher_bad_input(tmp_path, capsys, argv, pattern):
    base = ["--arch", "mlp", "--dataset", "digits", "--device", "cpu", "--no-progress"]
    line = _err(tmp_path, capsys, argv[:1] + base + argv[1:])
    assert pattern in line, line


def test_imagefolder_root_without_layout(tmp_path, capsys):
    (tmp_path / "imgs").mkdir()
    line = _err(tmp_path, capsys, ["train-teacher", "--dataset", "imagenet", "--data-root", str(tmp_path / "imgs"), "--arch", "mlp", "--device", "cpu"])
    assert "expected" in line and "train/<class>/<image>" in line


@pytest.mark.parametrize("extra,pattern", [
    (["-T", "0"], "--temperature must be > 0, got 0.0"),
    (["-T", "-2"], "--temperature must be > 0"),
    (["--kd-lambda", "1.5"], "--kd-lambda must be in [0, 1], got 1.5"),
    (["--teacher-arch", "resnet50"], "is a mlp checkpoint, but --teacher-arch says resnet50"),
])
def test_student_bad_input(tmp_path, capsys, teacher, extra, pattern):
    line = _err(tmp_path, capsys, ["train-student"] + DIGITS + ["--teacher", teacher] + extra)
    assert pattern in line, line


def test_student_missing_teacher(tmp_path, capsys):
    line = _err(tmp_path, capsys, ["train-student"] + DIGITS + ["--teacher", str(tmp_path / "none.pt")])
    assert "--teacher: checkpoint" in line and "does not exist" in line


def test_student_teacher_of_other_class_count(tmp_path, capsys, teacher):
    from .test_data import make_cifar

    make_cifar(str(tmp_path / "c100"), classes=100)
    line = _err(tmp_path, capsys, ["train-student", "--dataset", "cifar100", "--data-root", str(tmp_path / "c100"), "--arch", "mlp",
                                   "--device", "cpu", "--teacher", teacher])
    assert "has 10 classes, dataset cifar100 has 100" in line, line


def test_teacher_file_not_a_checkpoint(tmp_path, capsys):
    p = tmp_path / "junk.pt"
    p.write_bytes(b"not a checkpoint")
    line = _err(tmp_path, capsys, ["train-student"] + DIGITS + ["--teacher", str(p)])
    assert "cannot read as a torch file" in line


def test_teacher_cache_needs_no_augment(tmp_path, capsys, teacher):
    line = _err(tmp_path, capsys, ["train-student"] + DIGITS + ["--teacher", teacher, "--teacher-cache"])
    assert "--teacher-cache" in line and "--no-augment" in line


def test_unknown_option_is_one_line(tmp_path, capsys):
    line = _err(tmp_path, capsys, ["train-teacher", "--bogus", "1"])
    assert "unrecognized arguments: --bogus" in line


def test_features_cli(tmp_path, capsys, teacher):
    import torch

    out = tmp_path / "f.pt"
    rc, stdout, err = run_cli(["features", "--checkpoint", teacher, "--dataset", "digits", "--out", str(out)], capsys)
    assert rc == 0, err
    f = torch.load(out, weights_only=False)
    assert f["features"].shape == (360, 64) and f["fc_weight"].shape == (10, 64) and f["labels"].shape == (360,)
    # the file feeds the penultimate-layer analysis directly
    from lskd.diffusion_cli import main as diffusion_main

    assert diffusion_main(["--features", f"teacher={out}", "--classes", "1", "7", "8", "--out", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d.png").stat().st_size > 5000 and "| teacher | " in (tmp_path / "d.md").read_text()
