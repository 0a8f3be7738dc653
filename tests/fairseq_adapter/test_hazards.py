"""What real users hit: a teacher of another architecture, a teacher inside the student's --save-dir,
a truncated teacher checkpoint, KD under half precision."""

import argparse
import shutil
import sys
import threading

import pytest
import torch

from helpers import BF16_RTOL, PLUGINS, TINY_TRAIN, a_batch, build, build_cache, criterion_error, require_fairseq, run, tool

require_fairseq()
from fairseq import utils  # noqa: E402

utils.import_user_module(argparse.Namespace(user_dir=PLUGINS))

K = 4
# a wider, deeper teacher than TINY_ARCH (the students): 3+3 layers, 48-dim, 4 heads
WIDE_ARCH = ["--encoder-layers", "3", "--decoder-layers", "3", "--encoder-embed-dim", "48", "--decoder-embed-dim", "48",
             "--encoder-ffn-embed-dim", "96", "--decoder-ffn-embed-dim", "96",
             "--encoder-attention-heads", "4", "--decoder-attention-heads", "4"]


@pytest.fixture(scope="module")
def wide_teacher(tiny_data, tmp_path_factory):
    save = tmp_path_factory.mktemp("wide_teacher")
    run([tool("fairseq-train"), tiny_data / "bin", *TINY_TRAIN, *WIDE_ARCH, "--save-dir", save, "--max-update", "8",
         "--criterion", "ls_kd", "--kd-lambda", "0", "--label-smoothing", "0.1"])
    return save / "checkpoint_last.pt"


def two_layer_student(cfg, task):
    cfg.model.encoder_layers = cfg.model.decoder_layers = 2
    torch.manual_seed(0)
    return task.build_model(cfg.model)


@pytest.mark.slow
def test_wider_deeper_teacher_online_and_cached(tiny_data, wide_teacher, tmp_path):
    """2-layer 32-dim student, 3-layer 48-dim teacher with the same dictionaries: online KD works, and a
    cache built from that teacher gives the same top-K loss and gradients."""
    assert torch.load(wide_teacher, weights_only=False)["cfg"]["model"].decoder_layers == 3
    cache = tmp_path / "cache"
    build_cache(tiny_data / "bin", wide_teacher, cache, ["train", "valid"], K, max_tokens=500, cpu=True)
    common = ["--kd-lambda", "0.9", "--kd-temperature", "2", "--label-smoothing", "0.1", "--kd-topk", str(K)]
    on_cfg, task, _ = build(tiny_data / "bin", common + ["--teacher-path", str(wide_teacher)])
    off_cfg, _, _ = build(tiny_data / "bin", common + ["--kd-topk-cache", str(cache)])
    student = two_layer_student(on_cfg, task)
    assert len(student.decoder.layers) == 2 and student.decoder.embed_tokens.embedding_dim == 32
    online = task.build_criterion(on_cfg.criterion)
    assert len(online.teacher.models[0].decoder.layers) == 3
    student.eval()
    sample = a_batch(task)
    out = []
    for crit in (online, task.build_criterion(off_cfg.criterion)):
        student.zero_grad()
        loss, _, log = crit(student, sample)
        loss.backward()
        out.append((loss.item(), log["kd_loss"].item(), torch.cat([p.grad.flatten() for p in student.parameters()])))
    (l_on, kd_on, g_on), (l_off, kd_off, g_off) = out
    assert torch.isfinite(torch.tensor([l_on, kd_on])).all() and kd_on > 0
    assert l_off == pytest.approx(l_on, rel=2e-3) and kd_off == pytest.approx(kd_on, rel=2e-3)  # fp16 storage
    assert (g_on - g_off).norm() <= 1e-2 * g_on.norm()


@pytest.mark.slow
def test_student_trains_from_wider_teacher_in_fairseq_train(tiny_data, wide_teacher, tmp_path):
    proc = run([tool("fairseq-train"), tiny_data / "bin", *TINY_TRAIN, "--encoder-layers", "2", "--decoder-layers", "2",
                "--save-dir", tmp_path / "s", "--max-update", "3", "--criterion", "ls_kd", "--kd-lambda", "0.9",
                "--teacher-path", wide_teacher])
    assert "1 frozen teacher(s)" in proc.stdout
    state = torch.load(tmp_path / "s" / "checkpoint_last.pt", weights_only=False)
    assert state["cfg"]["model"].decoder_layers == 2 and state["model"]["decoder.embed_tokens.weight"].shape[1] == 32


def test_teacher_inside_student_save_dir_is_refused(tiny_data, tiny_teacher, tmp_path):
    save = tmp_path / "run"
    save.mkdir()
    shutil.copy(tiny_teacher, save / "checkpoint_last.pt")
    msg = criterion_error(tiny_data / "bin", ["--teacher-path", str(save / "checkpoint_last.pt"), "--save-dir", str(save)])
    assert msg == (f"--teacher-path {save / 'checkpoint_last.pt'} is inside the student's --save-dir {save}: fairseq "
                   "would resume or overwrite the teacher there; give the student its own --save-dir")
    # through a relative path or a symlinked directory too
    (tmp_path / "link").symlink_to(save)
    assert "is inside the student's --save-dir" in criterion_error(
        tiny_data / "bin", ["--teacher-path", str(tmp_path / "link" / "checkpoint_last.pt"), "--save-dir", str(save)])


def test_truncated_teacher_checkpoint_is_one_line(tiny_data, tiny_teacher, tmp_path):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_teacher.read_bytes()[: tiny_teacher.stat().st_size // 2])
    msg = criterion_error(tiny_data / "bin", ["--teacher-path", str(cut)])
    assert msg == (f"--teacher-path {cut}: truncated checkpoint ({cut.stat().st_size} bytes, a torch zip archive "
                   "without its end record: cut short by an interrupted copy or write?)")


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
