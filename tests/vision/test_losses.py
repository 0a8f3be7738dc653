"""The vision trainer's loss is the core LSKDLoss (spread="all"), checked against hand computation."""

import pytest
import torch
import torch.nn.functional as F

from lskd.losses import LSKDLoss
from lskd.vision.train import TrainConfig, batch_loss, make_loss


def _data(n=7, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g) * 3, torch.randint(0, k, (n,), generator=g), torch.randn(n, k, generator=g) * 4


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.3])
def test_teacher_loss_is_paper_label_smoothing(alpha):
    z, y, _ = _data()
    k = z.size(1)
    loss, nll, kd = batch_loss(make_loss(TrainConfig(role="teacher", label_smoothing=alpha)), z, y)
    target = (1 - alpha) * F.one_hot(y, k).float() + alpha / k
    hand = -(target * F.log_softmax(z, -1)).sum(-1).mean()
    assert torch.allclose(loss, hand, atol=1e-6)
    assert torch.allclose(nll, F.cross_entropy(z, y), atol=1e-6)
    assert kd.item() == 0.0
    if alpha == 0.1:  # torch's own label_smoothing is the same eps/K form
        assert torch.allclose(loss, F.cross_entropy(z, y, label_smoothing=alpha), atol=1e-6)


@pytest.mark.parametrize("T", [1.0, 2.0, 3.0, 64.0])
def test_student_pure_kd_is_t2_kl(T):
    z, y, zt = _data()
    loss, nll, kd = batch_loss(make_loss(TrainConfig(role="student", temperature=T, kd_lambda=1.0, teacher="x")), z, y, zt)
    q = F.softmax(zt.double() / T, -1)
    hand = (T * T * (q * (q.log() - F.log_softmax(z.double() / T, -1))).sum(-1).mean()).float()
    # fp32 KL at high T is a small difference of O(log K) terms, times T^2: relative error ~1e-4 at T=64
    assert torch.allclose(loss, hand, rtol=1e-4, atol=1e-7)
    assert torch.allclose(kd, hand, rtol=1e-4, atol=1e-7)
    direct = LSKDLoss(kd_lambda=1.0, temperature=T, spread="all")(z, y, teacher=zt)
    assert torch.allclose(loss * z.size(0), direct[0])


def test_student_lambda_mix_matches_core():
    z, y, zt = _data()
    cfg = TrainConfig(role="student", temperature=2.0, kd_lambda=0.7, label_smoothing=0.1, teacher="x")
    loss, _, _ = batch_loss(make_loss(cfg), z, y, zt)
    direct = LSKDLoss(kd_lambda=0.7, temperature=2.0, label_smoothing=0.1, spread="all")(z, y, teacher=zt)[0] / z.size(0)
    assert torch.allclose(loss, direct)
    ce = F.cross_entropy(z, y, label_smoothing=0.1)
    q = F.softmax(zt / 2, -1)
    kd = 4 * (q * (q.log() - F.log_softmax(z / 2, -1))).sum(-1).mean()
    assert torch.allclose(loss, 0.3 * ce + 0.7 * kd, atol=1e-6)


def test_kd_gradient_is_t_times_prob_difference():
    z, y, zt = _data()
    T = 3.0
    z = z.clone().requires_grad_(True)
    loss, _, _ = batch_loss(make_loss(TrainConfig(role="student", temperature=T, teacher="x")), z, y, zt)
    loss.backward()
    expected = T * (F.softmax(z.detach() / T, -1) - F.softmax(zt / T, -1)) / z.size(0)
    assert torch.allclose(z.grad, expected, atol=1e-6)
