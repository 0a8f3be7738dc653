"""The ls_kd criterion on real fairseq models and batches, in-process."""

import argparse
import copy

import pytest
import torch

from helpers import PLUGINS, a_batch, build, criterion_error, require_fairseq

require_fairseq()
from fairseq import utils  # noqa: E402
from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion  # noqa: E402

utils.import_user_module(argparse.Namespace(user_dir=PLUGINS))
from fairseq_plugins.criterions.ls_kd import LsKdConfig, LsKdCriterion  # noqa: E402


@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("sentence_avg", [False, True])
def test_kd_lambda_zero_is_fairseq_label_smoothed_cross_entropy(tiny_data, eps, sentence_avg):
    cfg, task, model = build(tiny_data / "bin", ["--kd-lambda", "0", "--label-smoothing", str(eps), "--report-accuracy"])
    sample = a_batch(task)
    ours = LsKdCriterion(LsKdConfig(kd_lambda=0.0, label_smoothing=eps, report_accuracy=True, sentence_avg=sentence_avg), task)
    ref = LabelSmoothedCrossEntropyCriterion(task, sentence_avg, eps, report_accuracy=True)
    model.train()
    results = []
    for crit in (ours, ref):
        model.zero_grad()
        torch.manual_seed(5)  # same dropout mask
        loss, size, log = crit(model, sample)
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters()]
        results.append((loss, size, log, grads))
    (l1, s1, g1, gr1), (l2, s2, g2, gr2) = results
    assert torch.equal(l1, l2)
    assert s1 == s2
    assert torch.equal(g1["nll_loss"], g2["nll_loss"])
    assert (g1["n_correct"], g1["total"]) == (g2["n_correct"], g2["total"])
    assert all(torch.equal(a, b) for a, b in zip(gr1, gr2))


def test_online_teacher_loss_matches_core_definition(tiny_data, tiny_teacher):
    args = ["--kd-lambda", "0.7", "--kd-temperature", "2", "--label-smoothing", "0.1", "--teacher-path", str(tiny_teacher)]
    cfg, task, model = build(tiny_data / "bin", args)
    crit = task.build_criterion(cfg.criterion)
    model.eval()
    sample = a_batch(task)
    loss, _, log = crit(model, sample)
    teacher = crit.teacher.models[0]
    with torch.no_grad():
        z_s = model(**sample["net_input"])[0].double()
        z_t = teacher(**sample["net_input"])[0].double()
    target = sample["target"]
    keep = target.ne(task.target_dictionary.pad())
    T, V = 2.0, z_s.size(-1)
    lp = torch.log_softmax(z_s, -1)
    eps_i = 0.1 / (V - 1)
    ls = -((1 - 0.1 - eps_i) * lp.gather(-1, target[..., None]).squeeze(-1) + eps_i * lp.sum(-1))
    q = torch.softmax(z_t / T, -1)
    kd = T * T * (q * (q.log() - torch.log_softmax(z_s / T, -1))).sum(-1)
    expected = ((0.3 * ls + 0.7 * kd) * keep).sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert log["kd_loss"].item() == pytest.approx((kd * keep).sum().item(), rel=1e-5)


def test_teacher_is_frozen_eval_and_not_in_student_state(tiny_data, tiny_teacher):
    cfg, task, model = build(tiny_data / "bin", ["--kd-lambda", "0.5", "--teacher-path", str(tiny_teacher)])
    crit = task.build_criterion(cfg.criterion)
    teacher = crit.teacher.models[0]
    before = copy.deepcopy(teacher.state_dict())
    crit.train()
    model.train()
    opt = torch.optim.SGD(list(model.parameters()) + list(crit.parameters()), lr=1.0)
    loss, _, _ = crit(model, a_batch(task))
    loss.backward()
    opt.step()
    assert not teacher.training
    assert list(crit.parameters()) == [] and crit.state_dict() == {}
    assert all(not p.requires_grad and p.grad is None for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_ensemble_of_two_identical_teachers_equals_one(tiny_data, tiny_teacher):
    one_cfg, task, model = build(tiny_data / "bin", ["--kd-lambda", "1", "--kd-temperature", "3", "--teacher-path", str(tiny_teacher)])
    two_cfg, _, _ = build(tiny_data / "bin", ["--kd-lambda", "1", "--kd-temperature", "3", "--teacher-path", f"{tiny_teacher}:{tiny_teacher}"])
    sample = a_batch(task)
    model.eval()
    one = task.build_criterion(one_cfg.criterion)(model, sample)[0]
    two = task.build_criterion(two_cfg.criterion)(model, sample)[0]
    assert len(task.build_criterion(two_cfg.criterion).teacher.models) == 2
    assert two.item() == pytest.approx(one.item(), rel=1e-6)


def error_of(tiny_data, args):
    return criterion_error(tiny_data / "bin", args)


@pytest.mark.parametrize("args, message", [  # TEACHER: the tiny teacher's path; MISSING: a file that does not exist
    (["--kd-lambda", "1.5", "--teacher-path", "TEACHER"], "--kd-lambda must be in [0, 1], got 1.5"),
    (["--kd-temperature", "0", "--teacher-path", "TEACHER"], "--kd-temperature must be > 0, got 0.0"),
    (["--kd-lambda", "0.5"], "--kd-lambda > 0 needs a teacher"),
    (["--kd-topk", "100000", "--teacher-path", "TEACHER"], "--kd-topk 100000 is larger than the target vocabulary"),
    (["--teacher-path", "MISSING"], "--teacher-path MISSING: no such file (expected a fairseq checkpoint .pt or a model folder)"),
])
def test_bad_options_stop_with_one_line(tiny_data, tiny_teacher, tmp_path, args, message):
    names = {"TEACHER": str(tiny_teacher), "MISSING": str(tmp_path / "nope.pt")}
    msg = error_of(tiny_data, [names.get(a, a) for a in args])
    assert message.replace("MISSING", names["MISSING"]) in msg and "\n" not in msg


def test_old_flag_kd_alpha_still_works_and_is_named_in_errors(tiny_data, tiny_teacher):
    cfg, task, model = build(tiny_data / "bin", ["--kd-alpha", "0.3", "--teacher-path", str(tiny_teacher)])
    assert task.build_criterion(cfg.criterion).loss_fn.kd_lambda == 0.3
    assert "--kd-alpha must be in [0, 1], got 1.5" in error_of(tiny_data, ["--kd-alpha", "1.5", "--teacher-path", str(tiny_teacher)])
    assert "--kd-alpha > 0 needs a teacher" in error_of(tiny_data, ["--kd-alpha", "0.5"])
    msg = error_of(tiny_data, ["--kd-lambda", "0.9", "--kd-alpha", "0.3", "--teacher-path", str(tiny_teacher)])
    assert msg == "--kd-lambda 0.9 and --kd-alpha 0.3: give one (--kd-alpha is the old name)"


def test_error_teacher_not_a_checkpoint(tiny_data, tmp_path):
    bogus = tmp_path / "bogus.pt"
    bogus.write_text("not a checkpoint\n")
    assert f"--teacher-path {bogus}: not a fairseq checkpoint" in error_of(tiny_data, ["--teacher-path", str(bogus)])
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    msg = error_of(tiny_data, ["--teacher-path", str(tmp_path / "plain.pt")])
    assert msg.startswith(f"--teacher-path {tmp_path / 'plain.pt'}: not a fairseq checkpoint (") and "\n" not in msg


def test_error_teacher_dictionary_differs(tiny_data, tiny_teacher, tmp_path):
    """Same-size dictionaries with a swapped symbol: the message names both sizes and the symbol."""
    other = tmp_path / "bin"
    other.mkdir()
    for f in (tiny_data / "bin").iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    lines = (other / "dict.tgt.txt").read_text().splitlines()
    lines[3] = "zzz " + lines[3].split()[1]
    (other / "dict.tgt.txt").write_text("\n".join(lines) + "\n")
    msg = error_of(tmp_path, ["--teacher-path", str(tiny_teacher)])
    n = len(lines) + 4
    assert "teacher target dictionary" in msg and f"{n} symbols) differs from the task's ({n} symbols)" in msg
    assert "first difference at index 7" in msg and "vs task 'zzz'" in msg
