"""fairseq training processes with ls_kd: half precision keeps the KD math in fp32, checkpoint copies are atomic,
a run stopped mid-epoch exits cleanly."""

import argparse
import sys
import threading

import pytest
import torch

from helpers import BF16_RTOL, PLUGINS, a_batch, build, require_fairseq, run

require_fairseq()
from fairseq import utils  # noqa: E402

utils.import_user_module(argparse.Namespace(user_dir=PLUGINS))

# --------------------------------------------------------------------------------------- mixed precision
# the loss core alone under bf16 logits: tests/core/test_losses.py (BF16_RTOL: tests/helpers.py)


@pytest.mark.parametrize("precision", ["bf16", "amp"])
@pytest.mark.parametrize("T", [1.0, 64.0])
def test_criterion_in_half_precision_keeps_kd_math_fp32(tiny_data, tiny_teacher, T, precision):
    """fairseq --bf16/--fp16 put the model in half precision, so the online teacher runs in it too;
    --amp calls the criterion under autocast (CUDA fp16 there, CPU bf16 here): without the criterion
    switching autocast off, the loss core's einsum ran in half precision and KD at T = 64 was 0."""
    cfg, task, model = build(tiny_data / "bin", ["--kd-lambda", "0.9", "--kd-temperature", str(T), "--label-smoothing",
                                                 "0.1", "--teacher-path", str(tiny_teacher)])
    crit = task.build_criterion(cfg.criterion)
    model.eval()
    sample = a_batch(task)
    ref = crit(model, sample)[2]
    if precision == "bf16":
        model.bfloat16()
        loss, _, log = crit(model, sample)
        assert next(crit.teacher.models[0].parameters()).dtype == torch.bfloat16
    else:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, _, log = crit(model, sample)
    for key in ("loss", "nll_loss", "kd_loss"):
        assert log[key].dtype == torch.float32 and torch.isfinite(log[key])
        assert log[key].item() == pytest.approx(ref[key].item(), rel=BF16_RTOL), key
    loss.backward()
    assert all(torch.isfinite(p.grad.float()).all() for p in model.parameters() if p.grad is not None)


def test_checkpoint_copies_are_atomic(tmp_path, monkeypatch):
    """fairseq copies its freshly saved checkpoint to checkpoint_last.pt: a copy cut short (a kill, a full
    disk) must leave the previous checkpoint_last.pt whole, not a truncated one."""
    import shutil as shutil_module

    from fairseq.file_io import PathManager

    from fairseq_plugins import checkpoint_io

    assert PathManager.copy is checkpoint_io.atomic_copy
    src, dst = tmp_path / "checkpoint_1_4.pt", tmp_path / "checkpoint_last.pt"
    src.write_bytes(b"new" * 1000)
    dst.write_bytes(b"old checkpoint")

    def cut_short(a, b):
        with open(b, "wb") as f:
            f.write(b"ne")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil_module, "copyfile", cut_short)
    with pytest.raises(OSError):
        PathManager.copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == b"old checkpoint" and sorted(p.name for p in tmp_path.iterdir()) == [src.name, dst.name]
    monkeypatch.undo()
    assert PathManager.copy(str(src), str(dst), overwrite=True) and dst.read_bytes() == src.read_bytes()


# fairseq's prefetch thread, stopped after one batch while it is busy in torch (a run ending mid-epoch)
PREFETCH_THEN_EXIT = """
import sys, threading, torch
from fairseq.data.iterators import BufferedIterator
if sys.argv[1] == "plugins":
    import argparse
    from fairseq import utils
    utils.import_user_module(argparse.Namespace(user_dir=sys.argv[2]))

def batches():
    a = torch.randn(400, 400)
    while True:
        a = torch.tanh(a @ a)
        yield a

iterator = BufferedIterator(1000, list(range(10 ** 6)))
iterator._iterable = batches()
next(iterator)
print("stopped after one batch")
"""


def test_a_run_stopped_mid_epoch_exits_cleanly():
    """Python finalization ends a daemon thread busy in torch with pthread_exit, and torch's C++ frames turn that
    into SIGABRT (exit 134) after the run finished; with the user dir the prefetch thread is stopped first."""
    proc = run([sys.executable, "-c", PREFETCH_THEN_EXIT, "plugins", PLUGINS], check=False)
    assert (proc.returncode, proc.stdout.strip()) == (0, "stopped after one batch"), proc.stderr[-2000:]
    assert "terminate called" not in proc.stderr


def test_stopping_prefetch_threads_ends_them_and_keeps_other_threads():
    from fairseq.data.iterators import BufferedIterator
    from fairseq_plugins.clean_exit import stop_background_consumers

    iterator = BufferedIterator(2, list(range(100)))
    assert next(iterator) == 0
    other = threading.Event()
    bystander = threading.Thread(target=other.wait, daemon=True)
    bystander.start()
    consumer = iterator._consumer
    assert consumer.is_alive()  # blocked on its full queue
    stop_background_consumers()
    assert not consumer.is_alive() and bystander.is_alive()
    other.set()
