"""Golden values for the loss core, worked out by hand on 3-token vocabularies."""

import math

import pytest
import torch

from helpers import BF16_RTOL
from lskd.losses import (
    LSKDLoss,
    TopKTeacher,
    ensemble_log_probs,
    label_smoothed_nll_loss,
    log_probs_at,
    sparse_kd_loss,
    teacher_probs,
    topk_renormalised,
)

LN2 = math.log(2)


def kl(q, p):
    return sum(qi * math.log(qi / pi) for qi, pi in zip(q, p) if qi > 0)


def kd_term(student, teacher, T, t2_scale=True):
    """The KD term of LSKDLoss alone (kd_lambda 1) for one position."""
    return LSKDLoss(kd_lambda=1.0, temperature=T, t2_scale=t2_scale)(student, torch.tensor([0]), teacher=teacher)[2]


def normalise(w):
    s = sum(w)
    return [x / s for x in w]


# Student logits 0,0,0 -> p = 1/3 each at any T. Teacher logits ln4, ln2, 0 -> q = (4,2,1)/7 at T=1.
STUDENT = torch.zeros(1, 3, dtype=torch.float64)
TEACHER = torch.tensor([[math.log(4), math.log(2), 0.0]], dtype=torch.float64)


def test_label_smoothing_fairseq_spread():
    # p = (1/2, 1/4, 1/4), gold 0, eps 0.1: nll = ln2, smooth = -sum log p = 5 ln2, eps_i = 0.1/2.
    lprobs = torch.tensor([[0.5, 0.25, 0.25]]).log()
    loss, nll = label_smoothed_nll_loss(lprobs, torch.tensor([0]), 0.1)
    assert nll.item() == pytest.approx(LN2, rel=1e-6)
    assert loss.item() == pytest.approx((1 - 0.1 - 0.05) * LN2 + 0.05 * 5 * LN2, rel=1e-6)  # = 1.1 ln2


def test_label_smoothing_paper_spread():
    # target = 0.9*onehot + 0.1/3: loss = 0.9 ln2 + (0.1/3) * 5 ln2
    lprobs = torch.tensor([[0.5, 0.25, 0.25]]).log()
    loss, _ = label_smoothed_nll_loss(lprobs, torch.tensor([0]), 0.1, spread="all")
    assert loss.item() == pytest.approx((0.9 + 0.5 / 3) * LN2, rel=1e-6)


def test_label_smoothing_ignores_padding():
    lprobs = torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]]).log()
    loss, nll = label_smoothed_nll_loss(lprobs, torch.tensor([0, 1]), 0.1, ignore_index=1)
    assert nll.item() == pytest.approx(LN2, rel=1e-6)
    assert loss.item() == pytest.approx(1.1 * LN2, rel=1e-6)


@pytest.mark.parametrize("T", [1.0, 2.0, 3.0, 64.0])
def test_kd_full_vocabulary_golden(T):
    q = normalise([4 ** (1 / T), 2 ** (1 / T), 1.0])
    expected = T * T * kl(q, [1 / 3] * 3)
    got = kd_term(STUDENT, TEACHER, T)
    assert got.item() == pytest.approx(expected, rel=1e-9)
    no_scale = kd_term(STUDENT, TEACHER, T, t2_scale=False)
    assert no_scale.item() == pytest.approx(expected / (T * T), rel=1e-9)


def test_kd_is_zero_when_student_matches_teacher():
    for T in (1.0, 3.0):
        assert kd_term(TEACHER, TEACHER, T).item() == pytest.approx(0, abs=1e-12)


def test_kd_topk_golden():
    # top-2 of (4,2,1)/7 renormalised = (2/3, 1/3); student full-vocab p = 1/3:
    # KD = 2/3 ln((2/3)/(1/3)) + 1/3 ln(1) = 2/3 ln 2
    ids, log_qk = topk_renormalised(log_probs_at(TEACHER, 1.0), 2)
    assert ids.tolist() == [[0, 1]]
    got = sparse_kd_loss(log_probs_at(STUDENT, 1.0), ids, log_qk, 1.0)
    assert got.item() == pytest.approx(2 / 3 * LN2, rel=1e-9)


def test_kd_topk_at_temperature_golden():
    # T = 2: top-2 teacher (2, sqrt2) renormalised; KD = 4 * sum q_k ln(q_k / (1/3))
    T = 2.0
    q = normalise([2.0, math.sqrt(2)])
    expected = T * T * sum(qk * math.log(qk * 3) for qk in q)
    loss = LSKDLoss(kd_lambda=1.0, temperature=T, topk=2)
    _, _, kd = loss(STUDENT, torch.tensor([0]), teacher=TEACHER)
    assert kd.item() == pytest.approx(expected, rel=1e-9)


def test_kd_from_stored_topk_logits_equals_online_topk():
    T = 3.0
    stored = TopKTeacher(torch.tensor([[0, 1]]), TEACHER[:, :2])
    online = LSKDLoss(kd_lambda=1.0, temperature=T, topk=2)(STUDENT, torch.tensor([0]), teacher=TEACHER)[2]
    cached = LSKDLoss(kd_lambda=1.0, temperature=T)(STUDENT, torch.tensor([0]), teacher=stored)[2]
    assert cached.item() == pytest.approx(online.item(), rel=1e-12)


def test_ensemble_averages_probabilities_golden():
    # q1 = (4,2,1)/7, q2 = (1,1,5)/7 -> mean (5,3,6)/14
    second = torch.tensor([[0.0, 0.0, math.log(5)]], dtype=torch.float64)
    log_q = ensemble_log_probs([TEACHER, second], 1.0)
    assert log_q.exp().tolist()[0] == pytest.approx([5 / 14, 3 / 14, 6 / 14], rel=1e-12)
    got = kd_term(STUDENT, [TEACHER, second], 1.0)
    assert got.item() == pytest.approx(kl([5 / 14, 3 / 14, 6 / 14], [1 / 3] * 3), rel=1e-9)


def test_padding_positions_contribute_nothing():
    student = torch.cat([STUDENT, torch.randn(1, 3, dtype=torch.float64)])
    teacher = torch.cat([TEACHER, torch.randn(1, 3, dtype=torch.float64)])
    target = torch.tensor([0, 2])
    loss = LSKDLoss(kd_lambda=1.0, temperature=2.0, ignore_index=2)
    _, _, kd = loss(student, target, teacher=teacher)
    q = normalise([2.0, math.sqrt(2), 1.0])
    assert kd.item() == pytest.approx(4 * kl(q, [1 / 3] * 3), rel=1e-9)


def test_mixture_weights():
    lprobs_target = torch.tensor([0])
    ls = LSKDLoss(kd_lambda=0.0, label_smoothing=0.1)(STUDENT, lprobs_target)[0]
    kd = LSKDLoss(kd_lambda=1.0, temperature=2.0)(STUDENT, lprobs_target, teacher=TEACHER)[0]
    mixed, nll, kd_part = LSKDLoss(kd_lambda=0.3, temperature=2.0, label_smoothing=0.1)(STUDENT, lprobs_target, teacher=TEACHER)
    assert mixed.item() == pytest.approx(0.7 * ls.item() + 0.3 * kd.item(), rel=1e-12)
    assert kd_part.item() == pytest.approx(kd.item(), rel=1e-12)
    assert nll.item() == pytest.approx(math.log(3), rel=1e-12)


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_kd_gradient_is_alpha_T_times_p_minus_q(T, alpha):
    torch.manual_seed(0)
    z_s = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    z_t = torch.randn(4, 7, dtype=torch.float64)
    target = torch.randint(0, 7, (4,))
    loss_fn = LSKDLoss(kd_lambda=alpha, temperature=T, label_smoothing=0.0)
    loss, _, _ = loss_fn(z_s, target, teacher=z_t)
    (grad,) = torch.autograd.grad(loss, z_s)
    p_T = torch.softmax(z_s.detach() / T, -1)
    q_T = torch.softmax(z_t / T, -1)
    ce_grad = torch.softmax(z_s.detach(), -1) - torch.nn.functional.one_hot(target, 7)
    expected = alpha * T * (p_T - q_T) + (1 - alpha) * ce_grad
    assert torch.allclose(grad, expected, atol=1e-12)


def test_gradcheck_full_topk_and_ensemble():
    torch.manual_seed(1)
    z_s = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    z_t = [torch.randn(3, 6, dtype=torch.float64) for _ in range(2)]
    target = torch.tensor([1, 4, 0])
    for topk in (0, 3):
        loss_fn = LSKDLoss(kd_lambda=0.6, temperature=2.5, label_smoothing=0.1, topk=topk, ignore_index=0)
        assert torch.autograd.gradcheck(lambda z: loss_fn(z, target, teacher=z_t)[0], (z_s,))


def test_half_precision_inputs_are_computed_in_fp32():
    torch.manual_seed(2)
    z_s, z_t = torch.randn(5, 9), torch.randn(5, 9) * 4
    target = torch.randint(0, 9, (5,))
    loss_fn = LSKDLoss(kd_lambda=1.0, temperature=64.0)
    ref = loss_fn(z_s.half().float(), target, teacher=z_t.half().float())[0]
    half = loss_fn(z_s.half(), target, teacher=z_t.half())[0]
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(ref.item(), rel=1e-5)


def test_matches_definition_on_random_inputs():
    """loss = (1-a) LS + a T^2 KL(q||p), checked against a direct implementation to 1e-5 relative."""
    torch.manual_seed(3)
    for trial in range(20):
        V = int(torch.randint(2, 50, ()))
        z_s, z_t = torch.randn(8, V) * 3, torch.randn(8, V) * 3
        target = torch.randint(0, V, (8,))
        a, T, eps = float(torch.rand(())), float(torch.rand(()) * 10 + 0.1), 0.1
        got = LSKDLoss(kd_lambda=a, temperature=T, label_smoothing=eps)(z_s, target, teacher=z_t)[0]
        lp = torch.log_softmax(z_s.double(), -1)
        smooth = torch.full_like(lp, eps / (V - 1))
        smooth.scatter_(1, target[:, None], 1 - eps)
        ls = -(smooth * lp).sum()
        q = torch.softmax(z_t.double() / T, -1)
        kdv = T * T * (q * (q.log() - torch.log_softmax(z_s.double() / T, -1))).sum()
        expected = (1 - a) * ls + a * kdv
        assert got.item() == pytest.approx(expected.item(), rel=1e-5), trial


@pytest.mark.parametrize("T", [1.0, 3.0])
@pytest.mark.parametrize("topk", [0, 4])
def test_consuming_the_teacher_changes_nothing_but_memory(T, topk):
    """consume_teacher=True (the fairseq criterion's online path) gives the same loss and gradients,
    overwrites the teacher's logits with q (dense case) and refuses a second backward."""
    torch.manual_seed(4)
    z_s = torch.randn(700, 11) * 3  # more rows than one chunk of teacher_probs
    z_t = torch.randn(700, 11) * 3
    target = torch.randint(0, 11, (700,))
    loss_fn = LSKDLoss(kd_lambda=0.7, temperature=T, label_smoothing=0.1, topk=topk, ignore_index=2)
    grads, losses = [], []
    for consume in (False, True):
        z = z_s.clone().requires_grad_(True)
        teacher = z_t.clone()
        loss, nll, kd = loss_fn(z, target, teacher=[teacher], consume_teacher=consume)
        if consume and topk == 0:
            assert torch.allclose(teacher.sum(-1), torch.ones(700)), "q was written over the logits"
        loss.backward(retain_graph=True)
        losses.append((loss.item(), nll.item(), kd.item()))
        grads.append(z.grad.clone())
        if consume and topk == 0:  # the backward pass used q's memory for the gradient
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                loss.backward()
        else:
            loss.backward()  # a second backward works when nothing was consumed
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert torch.allclose(grads[0], grads[1], atol=1e-7)


@pytest.mark.parametrize("T", [0.5, 1.0, 7.0])
def test_teacher_probs_golden_and_chunking(T):
    z = torch.tensor([[math.log(4), math.log(2), 0.0], [0.0, 0.0, float("-inf")]])
    q, neg_entropy = teacher_probs(z, T, chunk_rows=1)
    w = [4 ** (1 / T), 2 ** (1 / T), 1.0]
    expected_q = [normalise(w), [0.5, 0.5, 0.0]]
    assert torch.allclose(q, torch.tensor(expected_q), atol=1e-7)
    # a -inf logit has q = 0 and adds 0 * log 0 = 0, not nan
    expected_neg = [sum(x * math.log(x) for x in row if x > 0) for row in expected_q]
    assert torch.allclose(neg_entropy, torch.tensor(expected_neg), atol=1e-6)
    assert torch.isfinite(z[0]).all(), "without consume the logits are left alone"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kd_lambda": 1.5}, "kd_lambda must be in [0, 1]"),
        ({"kd_lambda": -0.1}, "kd_lambda must be in [0, 1]"),
        ({"temperature": 0.0}, "kd_temperature must be > 0"),
        ({"temperature": -2.0}, "kd_temperature must be > 0"),
        ({"label_smoothing": 1.0}, "label_smoothing must be in [0, 1)"),
        ({"topk": -1}, "kd_topk must be >= 0"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        LSKDLoss(**kwargs)


def test_topk_larger_than_vocabulary():
    with pytest.raises(ValueError, match="larger than the vocabulary"):
        topk_renormalised(log_probs_at(TEACHER, 1.0), 4)


@pytest.mark.parametrize("T", [1.0, 64.0])
@pytest.mark.parametrize("topk", [0, 8])
def test_kd_loss_from_bf16_logits_stays_fp32_and_close(T, topk):
    g = torch.Generator().manual_seed(0)
    V, N = 1000, 64
    student = torch.randn(N, V, generator=g) * 8
    teacher = torch.randn(N, V, generator=g) * 8
    teacher[:, :3] += 30  # a confident teacher: tiny tail probabilities, where half precision underflows
    target = torch.randint(V, (N,), generator=g)
    loss_fn = LSKDLoss(kd_lambda=0.9, temperature=T, label_smoothing=0.1, topk=topk, spread="others")
    ref = loss_fn(student.clone().requires_grad_(), target, teacher=teacher)
    s16 = student.bfloat16().requires_grad_()
    half = loss_fn(s16, target, teacher=teacher.bfloat16())
    for a, b in zip(half, ref):
        assert a.dtype == torch.float32 and torch.isfinite(a)
        assert a.item() == pytest.approx(b.item(), rel=BF16_RTOL)
    half[0].backward()
    assert s16.grad.dtype == torch.bfloat16 and torch.isfinite(s16.grad.float()).all()
