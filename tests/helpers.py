"""What the tests share besides fixtures (those are in conftest.py): paths, the tiny corpus and model,
running commands, and the fairseq helpers. Import it as `from helpers import ...`."""

import gzip
import importlib.util
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PLUGINS = str(REPO / "fairseq_plugins")

FAIRSEQ_MISSING = "fairseq is not installed (pip install --no-deps -r requirements-fairseq.txt, or make venv)"

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

# bf16 keeps 8 bits of mantissa: logits of size ~10 move by up to ~0.03 when rounded. Losses from bf16 logits
# differ from fp32 ones by at most 1.1e-4 relative in the loss core (tests/core/test_losses.py: T = 1, 64; full
# and top-8); a bf16 model also rounds weights and activations, hence the 1e-2 bound. The KD math stays fp32.
BF16_RTOL = 1e-2


def fairseq_installed() -> bool:
    """fairseq itself, not a folder of that name on sys.path (a namespace package has no origin)."""
    spec = importlib.util.find_spec("fairseq")
    return spec is not None and spec.origin is not None


def require_fairseq() -> None:
    """Skip the calling test module (at import) when fairseq is not installed."""
    if not fairseq_installed():
        pytest.skip(FAIRSEQ_MISSING, allow_module_level=True)


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
    """A word-for-word "translation" (s_i -> t_{7i mod 20}, order kept), which a 1+1-layer, 32-dim
    transformer learns in a few seconds on a CPU, so KD terms have something to fall towards."""
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


def train(data_bin: Path, save_dir: Path, criterion_args, epochs=3, extra=()):
    return run([tool("fairseq-train"), data_bin, *TINY_TRAIN, "--save-dir", save_dir,
                "--max-epoch", str(epochs), "--criterion", "ls_kd", *criterion_args, *extra])


# --------------------------------------------------------------------------- fairseq, in-process
def build(data_bin, criterion_args=()):
    """(cfg, task with 'valid' loaded, a tiny model) as fairseq-train would set them up with ls_kd."""
    import torch
    from fairseq import options, tasks
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf

    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [str(data_bin), "--task", "translation", "--user-dir", PLUGINS,
                                                "--cpu", "--criterion", "ls_kd", *criterion_args, *TINY_ARCH])
    cfg = convert_namespace_to_omegaconf(args)
    task = tasks.setup_task(cfg.task)
    task.load_dataset("valid")
    torch.manual_seed(0)
    model = task.build_model(cfg.model)
    return cfg, task, model


def a_batch(task, max_tokens=400):
    itr = task.get_batch_iterator(task.dataset("valid"), max_tokens=max_tokens, seed=1).next_epoch_itr(shuffle=False)
    return next(iter(itr))


def criterion_error(data_bin, criterion_args) -> str:
    """The one-line message with which building the ls_kd criterion exits (fairseq's SystemExit)."""
    cfg, task, _ = build(data_bin, criterion_args)
    with pytest.raises(SystemExit) as info:
        task.build_criterion(cfg.criterion)
    message = str(info.value.code)
    assert message.startswith("error: ") and "\n" not in message
    return message.removeprefix("error: ")


def distill(data, teacher, out, *extra) -> dict:
    """`lskd distill-data` in this process (the user dir imported by the caller); its manifest."""
    import json

    from fairseq_plugins import distill_data

    argv = ["--data", str(data), "--teacher-path", str(teacher), "--out", str(out), "--cpu", *map(str, extra)]
    assert distill_data.main(argv) == 0
    return json.loads((Path(out) / "manifest.json").read_text())


def copy_cache(cache_dir, tmp_path):
    """A copy of a top-K cache that a test may damage."""
    import shutil

    dst = tmp_path / "cache"
    shutil.copytree(cache_dir, dst)
    return dst


def cache_error(tiny_data, path, extra=()) -> str:
    """The one-line message with which ls_kd refuses the top-K cache at `path`."""
    return criterion_error(tiny_data / "bin", ["--kd-lambda", "1", "--kd-topk-cache", str(path), *extra])


# --------------------------------------------------------------------------- lskd vision
def run_vision_cli(argv, capsys):
    """`lskd vision ARGV` in-process: (exit code, stdout, stderr)."""
    from lskd.cli import main

    rc = main(["vision"] + list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def write_fake_fashion_mnist(folder, n_train=300, n_test=100):
    """The four idx files in the real format (gzip), random images with a class-dependent bright band."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 60, (n, 28, 28))
        for i, c in enumerate(labels):
            images[i, 2 * c:2 * c + 6] += 150
        for name, arr in ((f"{split}-images-idx3-ubyte", images), (f"{split}-labels-idx1-ubyte", labels)):
            header = struct.pack(">I", 0x0800 + arr.ndim) + b"".join(struct.pack(">I", d) for d in arr.shape)
            with gzip.open(folder / f"{name}.gz", "wb") as f:
                f.write(header + arr.astype(np.uint8).tobytes())


def build_cache(data, teacher, out, splits, k, **kw):
    """`lskd cache` in-process (fairseq_plugins.cache_build.build); returns {split: its directory}."""
    from fairseq_plugins.cache_build import CacheOptions, build

    return build(CacheOptions(data=str(data), teacher_path=str(teacher), out=Path(out), splits=list(splits), k=k, **kw))
