"""Two-process gloo DDP on CPU (torchrun) matches a single-process run of the same global batch."""

import json
import os
import subprocess
import sys

import pytest

from helpers import REPO

ROOT = str(REPO)

ARGS = ["--dataset", "digits", "--arch", "mlp", "--epochs", "2", "--batch-size", "64", "--lr", "0.1", "--schedule", "constant",
        "--device", "cpu", "--deterministic", "--no-progress", "--seed", "5", "--weight-decay", "1e-4"]


def _run(cmd, tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), OMP_NUM_THREADS="1")
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return p


def _metrics(d):
    with open(os.path.join(d, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_ddp_gloo_matches_single_process(tmp_path):
    """A KD student (teacher loading, frozen teacher, KD loss, sharded eval) under 2-process DDP."""
    from lskd.vision.cli import main
    from lskd.vision.train import TrainConfig, run

    run(TrainConfig(role="teacher", out_dir=str(tmp_path / "t"), dataset="digits", arch="mlp", epochs=1, device="cpu",
                    progress=False, label_smoothing=0.1))
    role = "student"
    extra = ["--teacher", str(tmp_path / "t" / "last.pt"), "-T", "2"]
    single, multi = str(tmp_path / "single"), str(tmp_path / "ddp")
    assert main([f"train-{role}", *ARGS, *extra, "--out-dir", single]) == 0
    p = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "lskd.vision.cli",
              f"train-{role}", *ARGS, *extra, "--out-dir", multi], tmp_path)
    assert "world 2" in p.stdout
    a, b = _metrics(single), _metrics(multi)
    assert len(a) == len(b) == 2
    for ra, rb in zip(a, b):
        assert ra["val_n"] == rb["val_n"] == 360
        assert abs(ra["train_loss"] - rb["train_loss"]) < 1e-4, (ra, rb)
        assert abs(ra["val_nll"] - rb["val_nll"]) < 1e-4, (ra, rb)
        assert abs(ra["val_top1"] - rb["val_top1"]) <= 100 / 360 + 1e-9
    with open(os.path.join(multi, "final.json")) as f:
        assert json.load(f)["world_size"] == 2
