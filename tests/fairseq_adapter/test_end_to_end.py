"""Tiny end-to-end runs through the real fairseq commands (CPU, seconds each)."""

import json

import pytest
import torch

from helpers import PLUGINS, require_fairseq, run, tool, train

require_fairseq()


def epoch_stats(stdout: str, prefix: str = "train"):
    """The end-of-epoch JSON records fairseq prints for `train` or `valid`."""
    out = []
    for line in stdout.splitlines():
        if f"| {prefix} | " in line:
            out.append(json.loads(line.split(f"| {prefix} | ", 1)[1]))
    return out


@pytest.mark.slow
def test_teacher_student_generate_score(tiny_data, tiny_teacher, tmp_path):
    save = tmp_path / "student"
    kd_args = ["--kd-lambda", "0.5", "--kd-temperature", "2", "--label-smoothing", "0.1",
               "--teacher-path", str(tiny_teacher), "--best-checkpoint-metric", "nll_loss", "--report-accuracy"]
    first = train(tiny_data / "bin", save, kd_args, epochs=4)
    stats = epoch_stats(first.stdout)
    kd = [float(s["train_kd_loss"]) for s in stats]
    assert len(kd) == 4 and kd[-1] < kd[0], kd
    valid = epoch_stats(first.stdout, "valid")
    assert all({"valid_kd_loss", "valid_nll_loss", "valid_accuracy", "valid_ppl"} <= set(v) for v in valid)
    assert float(valid[-1]["valid_best_nll_loss"]) == min(float(v["valid_nll_loss"]) for v in valid)

    # The student checkpoint holds the student only: same tensors as a plain model, no criterion state.
    state = torch.load(save / "checkpoint_last.pt", map_location="cpu", weights_only=False)
    teacher_state = torch.load(tiny_teacher, map_location="cpu", weights_only=False)
    assert set(state["model"]) == set(teacher_state["model"])
    assert not state.get("criterion")
    assert state["cfg"]["criterion"]["_name"] == "ls_kd"

    # Resume from checkpoint_last.pt: epoch 5 follows epoch 4.
    resumed = train(tiny_data / "bin", save, kd_args, epochs=5)
    assert "Loaded checkpoint" in resumed.stdout and "checkpoint_last.pt (epoch 5 @" in resumed.stdout
    assert [s["epoch"] for s in epoch_stats(resumed.stdout)] == [5]

    # fairseq-generate loads the student with --user-dir (torch >= 2.6 weights-only loading).
    gen = run([tool("fairseq-generate"), tiny_data / "bin", "--user-dir", PLUGINS, "--path", save / "checkpoint_best.pt",
               "--gen-subset", "test", "--beam", "2", "--cpu", "--required-batch-size-multiple", "1",
               "--batch-size", "16"])
    (tmp_path / "gen.out").write_text(gen.stdout)
    scored = run([tool("lskd"), "score", "--generate", tmp_path / "gen.out", "--ref", tiny_data / "raw" / "test.tgt",
                  "--out", tmp_path / "score.json", "--meta", "role=student", "teacher_alpha=0.1", "temperature=2"])
    assert "\nsignature: nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in scored.stdout
    score = json.loads((tmp_path / "score.json").read_text())
    assert score["n_sentences"] == 30 and score["temperature"] == 2 and 0 <= score["bleu"] <= 100


@pytest.mark.slow
def test_eval_bleu_works_with_ls_kd(tiny_data, tiny_teacher, tmp_path):
    proc = train(tiny_data / "bin", tmp_path / "s", ["--kd-lambda", "0.5", "--teacher-path", str(tiny_teacher),
                 "--eval-bleu", "--eval-bleu-args", '{"beam": 1}', "--best-checkpoint-metric", "bleu",
                 "--maximize-best-checkpoint-metric"], epochs=1)
    (valid,) = epoch_stats(proc.stdout, "valid")
    assert "valid_bleu" in valid and "valid_kd_loss" in valid


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["--kd-lambda", "2"], "error: --kd-lambda must be in [0, 1], got 2.0"),
    (["--kd-lambda", "0.5"], "error: --kd-lambda > 0 needs a teacher: give --teacher-path CKPT[:CKPT...] or --kd-topk-cache DIR"),
])
def test_fairseq_train_bad_input_is_one_line_and_writes_nothing(tiny_data, tmp_path, args, message):
    proc = run([tool("fairseq-train"), tiny_data / "bin", "--task", "translation", "--user-dir", PLUGINS, "--cpu",
                "--arch", "transformer", "--save-dir", tmp_path / "save", "--criterion", "ls_kd", *args,
                "--max-tokens", "1000", "--max-epoch", "1"], check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1] == message
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("*.pt"))
