"""Teachers users bring: another architecture (wider, deeper) online and cached, a teacher inside the student's
--save-dir, a truncated teacher checkpoint."""

import argparse
import shutil

import pytest
import torch

from helpers import PLUGINS, TINY_TRAIN, a_batch, build, build_cache, criterion_error, require_fairseq, run, tool

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
