"""Shared fixtures: a tiny synthetic parallel corpus binarised by fairseq, and a tiny teacher.

The corpus is a word-for-word "translation" (s_i -> t_{7i mod 20}, order kept), which a 1+1-layer,
32-dim transformer learns in a few seconds on a CPU, so KD terms have something to fall towards.
"""

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PLUGINS = str(REPO / "fairseq_plugins")

TINY_ARCH = [
    "--arch", "transformer", "--encoder-layers", "1", "--decoder-layers", "1",
    "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
    "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64",
    "--encoder-attention-heads", "2", "--decoder-attention-heads", "2",
]
TINY_TRAIN = [
    "--task", "translation", "--user-dir", PLUGINS, "--cpu", "--seed", "1",
    "--optimizer", "adam", "--lr", "1e-2", "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "10",
    "--max-tokens", "300", "--dropout", "0.0",
    "--no-progress-bar", "--log-format", "json", "--log-interval", "1",
    "--no-epoch-checkpoints", "--num-workers", "0",
] + TINY_ARCH


def tool(name: str) -> str:
    return str(BIN / name)


def run(cmd, check=True, **kwargs):
    """Run a command, returning CompletedProcess with text stdout/stderr; on failure show both."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
                             f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-4000:]}")
    return proc


def write_tiny_corpus(raw: Path, n_train=400, n_valid=40, n_test=30, seed=0):
    rng = random.Random(seed)
    raw.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("valid", n_valid), ("test", n_test)):
        src_lines, tgt_lines = [], []
        for _ in range(n):
            ids = [rng.randrange(20) for _ in range(rng.randint(3, 8))]
            src_lines.append(" ".join(f"s{i}" for i in ids))
            tgt_lines.append(" ".join(f"t{(7 * i) % 20}" for i in ids))
        (raw / f"{split}.src").write_text("\n".join(src_lines) + "\n")
        (raw / f"{split}.tgt").write_text("\n".join(tgt_lines) + "\n")


def preprocess(raw: Path, dest: Path, extra=()):
    run([tool("fairseq-preprocess"), "--source-lang", "src", "--target-lang", "tgt",
         "--trainpref", raw / "train", "--validpref", raw / "valid", "--testpref", raw / "test",
         "--destdir", dest, "--workers", "1", *extra])


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    write_tiny_corpus(root / "raw")
    preprocess(root / "raw", root / "bin")
    return root


def train(data_bin: Path, save_dir: Path, criterion_args, epochs=3, extra=()):
    return run([tool("fairseq-train"), data_bin, *TINY_TRAIN, "--save-dir", save_dir,
                "--max-epoch", str(epochs), "--criterion", "ls_kd", *criterion_args, *extra])


@pytest.fixture(scope="session")
def tiny_teacher(tiny_data, tmp_path_factory) -> Path:
    """A label-smoothed (eps 0.1) teacher checkpoint trained on the tiny corpus."""
    save = tmp_path_factory.mktemp("teacher")
    train(tiny_data / "bin", save, ["--kd-lambda", "0", "--label-smoothing", "0.1"], epochs=8)
    return save / "checkpoint_last.pt"
