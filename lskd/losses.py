"""Label smoothing and knowledge-distillation losses, pure torch.

Shapes: logits/log-probabilities are (N, V) or (..., V); targets are (N,) or (...).
All KD math runs in fp32 whatever the input dtype, so half-precision students and teachers
do not lose the small probabilities that high temperatures bring out.

Notation follows docs/PAPER.md: LS factor `epsilon` (the paper's alpha), temperature `T`,
KD_T = T^2 * KL(q_t(T) || p_s(T)).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from lskd.errors import OptionError

Tensor = torch.Tensor

SPREADS = ("others", "all")


def _fp32(x: Tensor) -> Tensor:
    """At least fp32: half/bf16 go up to fp32, fp64 (gradcheck) stays."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def label_smoothed_nll_loss(
    lprobs: Tensor,
    target: Tensor,
    epsilon: float,
    ignore_index: Optional[int] = None,
    reduce: bool = True,
    spread: str = "others",
) -> Tuple[Tensor, Tensor]:
    """Label-smoothed negative log-likelihood; returns (loss, nll_loss).

    spread="others" is fairseq's `label_smoothed_nll_loss` bit for bit (epsilon spread over the
    V-1 non-target classes); spread="all" is the paper's form, target = (1-eps)*onehot + eps/V.
    Positions whose target is `ignore_index` contribute 0.
    """
    check_loss_options(0.0, 1.0, epsilon, spread)
    if target.dim() == lprobs.dim() - 1:
        target = target.unsqueeze(-1)
    nll_loss = -lprobs.gather(dim=-1, index=target)
    smooth_loss = -lprobs.sum(dim=-1, keepdim=True)
    if ignore_index is not None:
        pad_mask = target.eq(ignore_index)
        nll_loss = nll_loss.masked_fill(pad_mask, 0.0)
        smooth_loss = smooth_loss.masked_fill(pad_mask, 0.0)
    nll_loss = nll_loss.squeeze(-1)
    smooth_loss = smooth_loss.squeeze(-1)
    if reduce:
        nll_loss = nll_loss.sum()
        smooth_loss = smooth_loss.sum()
    if spread == "others":
        eps_i = epsilon / (lprobs.size(-1) - 1)
        loss = (1.0 - epsilon - eps_i) * nll_loss + eps_i * smooth_loss
    else:
        eps_i = epsilon / lprobs.size(-1)
        loss = (1.0 - epsilon) * nll_loss + eps_i * smooth_loss
    return loss, nll_loss


def log_probs_at(logits: Tensor, temperature: float) -> Tensor:
    """log-softmax of logits / T in fp32: a student's log p_s(T), a teacher's log q_t(T), or the teacher
    distribution of stored top-K logits (softmax over the K values)."""
    return F.log_softmax(_fp32(logits) / temperature, dim=-1)


def ensemble_log_probs(members_logits: Sequence[Tensor], temperature: float) -> Tensor:
    """An ensemble's log q(T): its members' probabilities (each at temperature T) averaged, log(mean_m softmax(z_m / T))."""
    members = [log_probs_at(z, temperature) for z in members_logits]
    if len(members) == 1:
        return members[0]
    return torch.logsumexp(torch.stack(members, dim=0), dim=0) - math.log(len(members))


def topk_renormalised(log_q: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """Keep the k most probable teacher tokens and renormalise over them.

    Returns (ids, log_q_k): ids (..., k) int64, log_q_k (..., k) with logsumexp 0 along -1.
    """
    if k > log_q.size(-1):
        raise ValueError(f"top-K of {k} is larger than the vocabulary ({log_q.size(-1)})")
    values, ids = log_q.topk(k, dim=-1)
    return ids, values - torch.logsumexp(values, dim=-1, keepdim=True)


def _finish(per_position: Tensor, temperature: float, t2_scale: bool, mask: Optional[Tensor], reduce: bool) -> Tensor:
    if t2_scale:
        per_position = per_position * (temperature**2)
    if mask is not None:
        per_position = per_position.masked_fill(~mask, 0.0)
    return per_position.sum() if reduce else per_position


def _rowdot(a: Tensor, b: Tensor) -> Tensor:
    """sum_v a[..., v] * b[..., v] without an (..., V) temporary (a batched matrix product)."""
    return torch.einsum("...v,...v->...", a, b.to(a.dtype))


def teacher_probs(teacher_logits: Tensor, temperature: float, consume: bool = False, chunk_rows: int = 256) -> Tuple[Tensor, Tensor]:
    """(q_t(T), sum_v q log q) per position from one teacher's logits, in fp32.

    Works through row chunks, so the only full-vocabulary tensor it allocates is q itself; with
    `consume=True` (the caller owns an fp32 `teacher_logits` it will not read again, as the fairseq
    criterion does) q is written over the logits and nothing of size V is allocated at all.
    """
    z = _fp32(teacher_logits)
    V = z.size(-1)
    rows = z.reshape(-1, V)
    in_place = consume and z is teacher_logits and rows.data_ptr() == z.data_ptr()
    q = rows if in_place else torch.empty_like(rows)
    neg_entropy = rows.new_empty(rows.size(0))
    lowest = torch.finfo(rows.dtype).min
    for i in range(0, rows.size(0), chunk_rows):
        # one exp pass per element: p = exp(z/T - max) / sum, log q = z/T - max - log(sum)
        log_q = rows[i : i + chunk_rows] if in_place else rows[i : i + chunk_rows].clone()
        if temperature != 1.0:
            log_q.div_(temperature)
        log_q.sub_(log_q.amax(dim=-1, keepdim=True))
        p = log_q.exp()
        total = p.sum(dim=-1, keepdim=True)
        p.div_(total)
        log_q.sub_(total.log_())
        # 0 * log 0 = 0: a -inf teacher logit contributes nothing (not nan)
        neg_entropy[i : i + chunk_rows] = _rowdot(p, log_q.clamp_(min=lowest))
        q[i : i + chunk_rows] = p
    return q.view(z.shape), neg_entropy.view(z.shape[:-1])


class _KDAgainstProbs(torch.autograd.Function):
    """sum_v q_v (log q_v - log p_v) per position, given q and its sum q log q.

    The gradient w.r.t. log p is -q * grad; with `consume` it is built in q's own memory, so
    the KD term adds no full-vocabulary tensor to the backward pass (q is then used up: a second
    backward through the same graph raises autograd's in-place modification error).
    """

    @staticmethod
    def forward(ctx, student_lprobs_t: Tensor, q: Tensor, neg_entropy: Tensor, consume: bool) -> Tensor:
        q = q.to(student_lprobs_t.dtype)
        ctx.save_for_backward(q)
        ctx.consume = consume
        return neg_entropy.to(student_lprobs_t.dtype) - _rowdot(q, student_lprobs_t)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (q,) = ctx.saved_tensors
        scale = grad.unsqueeze(-1).neg()
        return (q.mul_(scale) if ctx.consume else q * scale), None, None, None


def _dense_kd(student_lprobs_t, q, neg_entropy, temperature, t2_scale, mask, reduce, consume=False) -> Tensor:
    per_position = _KDAgainstProbs.apply(student_lprobs_t, q.detach(), neg_entropy.detach(), consume)
    return _finish(per_position, temperature, t2_scale, mask, reduce)


def sparse_kd_loss(
    student_lprobs_t: Tensor,
    teacher_ids: Tensor,
    teacher_lprobs_k: Tensor,
    temperature: float,
    t2_scale: bool = True,
    mask: Optional[Tensor] = None,
    reduce: bool = True,
) -> Tensor:
    """Top-K KD: T^2 * sum_{k} q_k (log q_k - log p_{s,k}), the teacher renormalised over its K tokens.

    `student_lprobs_t` (..., V) is the student's full-vocabulary log-probability at T; only the K
    teacher columns are gathered from it, so no dense (..., V) teacher tensor is ever built.
    `teacher_lprobs_k` (..., K) are the teacher's log-probabilities over `teacher_ids` (..., K).
    """
    student_k = student_lprobs_t.gather(-1, teacher_ids.long())
    log_q = _fp32(teacher_lprobs_k)
    q = log_q.exp()
    per_position = (q * (log_q - student_k)).sum(-1)
    return _finish(per_position, temperature, t2_scale, mask, reduce)


def check_loss_options(kd_lambda: float, temperature: float, label_smoothing: float, spread: str = "others") -> None:
    """The loss settings' ranges, checked once for every adapter (an OptionError naming the field)."""
    if not (0.0 <= kd_lambda <= 1.0):
        raise OptionError("kd_lambda", f"must be in [0, 1], got {kd_lambda}")
    if not (temperature > 0.0 and math.isfinite(temperature)):
        raise OptionError("kd_temperature", f"must be > 0, got {temperature}")
    if not (0.0 <= label_smoothing < 1.0):
        raise OptionError("label_smoothing", f"must be in [0, 1), got {label_smoothing}")
    if spread not in SPREADS:
        raise ValueError(f"spread must be one of {SPREADS}, got {spread!r}")


class TopKTeacher:
    """A teacher given as its top-K token ids and logits per position (e.g. read from a cache)."""

    def __init__(self, ids: Tensor, logits: Tensor):
        if ids.shape != logits.shape:
            raise ValueError(f"top-K ids {tuple(ids.shape)} and logits {tuple(logits.shape)} differ in shape")
        self.ids = ids
        self.logits = logits


TeacherOutput = Union[Tensor, Sequence[Tensor], TopKTeacher]


class LSKDLoss(torch.nn.Module):
    """loss = (1 - kd_lambda) * LS-NLL(epsilon) + kd_lambda * KD_T, summed over kept positions.

    The one loss both adapters use: the fairseq `ls_kd` criterion (spread="others", fairseq's LS)
    and the vision trainer (spread="all", the paper's LS; kd_lambda=1 is the paper's pure KD).
    `forward` returns (loss, nll_loss, kd_loss), each summed; nll_loss is the student's plain NLL
    of the gold labels, the number to select checkpoints on.

    teacher: dense logits (..., V), a sequence of them (ensemble, probabilities averaged at T), or
    a `TopKTeacher` (stored top-K logits, renormalised over K at T). With `topk` > 0 a dense
    teacher is cut to its top-K tokens and renormalised (Tan et al.'s form).
    """

    def __init__(
        self,
        kd_lambda: float = 0.5,
        temperature: float = 1.0,
        label_smoothing: float = 0.0,
        t2_scale: bool = True,
        topk: int = 0,
        spread: str = "others",
        ignore_index: Optional[int] = None,
    ):
        super().__init__()
        check_loss_options(kd_lambda, temperature, label_smoothing, spread)
        if topk < 0:
            raise OptionError("kd_topk", f"must be >= 0, got {topk}")
        self.kd_lambda = kd_lambda
        self.temperature = temperature
        self.label_smoothing = label_smoothing
        self.t2_scale = t2_scale
        self.topk = topk
        self.spread = spread
        self.ignore_index = ignore_index

    def teacher_targets(self, teacher: TeacherOutput, consume: bool = False):
        """The teacher's targets at this loss's temperature, as one of
        ("sparse", ids, log q over the ids) or ("dense", q, sum q log q)."""
        T = self.temperature
        if not isinstance(teacher, (Tensor, TopKTeacher)) and len(teacher) == 1:
            teacher = teacher[0]  # an ensemble of one is that teacher
        if isinstance(teacher, TopKTeacher):
            return "sparse", teacher.ids, log_probs_at(teacher.logits, T)
        if self.topk > 0:
            if isinstance(teacher, Tensor):  # top-K of the logits = top-K of q at any T; renormalise the K values
                values, ids = teacher.topk(self.topk, dim=-1)
                return "sparse", ids, log_probs_at(values, T)
            return ("sparse", *topk_renormalised(ensemble_log_probs(teacher, T), self.topk))
        if isinstance(teacher, Tensor):
            return ("dense", *teacher_probs(teacher, T, consume=consume))
        # an ensemble's log(mean q) is a fresh tensor: q may be built in its memory
        return ("dense", *teacher_probs(ensemble_log_probs(teacher, T), 1.0, consume=True))

    def forward(
        self,
        student_logits: Tensor,
        target: Tensor,
        teacher: Optional[TeacherOutput] = None,
        student_lprobs: Optional[Tensor] = None,
        consume_teacher: bool = False,
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """`student_lprobs` may pass the adapter's own log_softmax(logits) (fp32) to reuse it.

        `consume_teacher=True` lets the loss overwrite dense fp32 teacher logits that the caller
        will not read again and to run backward once (the fairseq criterion's online teacher): the
        KD term then allocates no full-vocabulary tensor of its own, forward or backward.
        """
        if student_lprobs is None:
            student_lprobs = F.log_softmax(_fp32(student_logits), dim=-1)
        ls_loss, nll_loss = label_smoothed_nll_loss(
            student_lprobs, target, self.label_smoothing, ignore_index=self.ignore_index, spread=self.spread
        )
        if self.kd_lambda == 0.0:
            return ls_loss, nll_loss, ls_loss.new_zeros(())
        if teacher is None:
            raise ValueError("kd_lambda > 0 needs a teacher output")
        mask = None if self.ignore_index is None else target.ne(self.ignore_index)
        T = self.temperature
        # At T = 1 the NLL's log-probabilities are the KD's: no second full-vocabulary tensor.
        s_lprobs_t = student_lprobs if T == 1.0 else log_probs_at(student_logits, T)
        with torch.no_grad():
            kind, a, b = self.teacher_targets(teacher, consume=consume_teacher)
        if kind == "sparse":
            kd = sparse_kd_loss(s_lprobs_t, a, b, T, self.t2_scale, mask)
        else:
            kd = _dense_kd(s_lprobs_t, a, b, T, self.t2_scale, mask, reduce=True, consume=consume_teacher)
        if self.kd_lambda == 1.0:
            return kd, nll_loss, kd
        return (1.0 - self.kd_lambda) * ls_loss + self.kd_lambda * kd, nll_loss, kd
