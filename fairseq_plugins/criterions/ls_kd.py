"""`ls_kd`: label-smoothed cross-entropy mixed with word-level knowledge distillation.

Per non-padding target token:
    loss = (1 - kd_lambda) * LS-NLL(eps) + kd_lambda * T^2 * KL(q_t(T) || p_s(T))
The math is `lskd.losses.LSKDLoss`; this module only adapts fairseq's samples and models to it.
kd_lambda = 0 is fairseq's `label_smoothed_cross_entropy` exactly and needs no teacher. `--kd-alpha`
is the flag's old name, still accepted ("alpha" is the teacher's label smoothing everywhere else).

The teacher is held outside the criterion's module tree (a plain attribute of a helper object),
so fairseq never saves it into the student's checkpoint, never hands it to the optimizer, and
`criterion.train()` never switches it out of eval mode.
"""


import logging
import math
import os
from dataclasses import dataclass, field
from typing import List, Optional

import torch
from fairseq import utils
from fairseq.criterions import FairseqCriterion, register_criterion
from fairseq.criterions.label_smoothed_cross_entropy import (
    LabelSmoothedCrossEntropyCriterion,
    LabelSmoothedCrossEntropyCriterionConfig,
)
from fairseq.logging import metrics
from omegaconf import II

import numpy as np

from lskd.errors import LskdError
from lskd.losses import LSKDLoss, TopKTeacher

from ..errors import fairseq_exit_on_user_error
from ..help import add_ls_kd_options_to_help
from ..teacher import TeacherSession

logger = logging.getLogger(__name__)

KD_LAMBDA_DEFAULT = 0.5


@dataclass
class LsKdConfig(LabelSmoothedCrossEntropyCriterionConfig):
    """label_smoothed_cross_entropy's options (label_smoothing: the student's own epsilon, fairseq's
    definition; report_accuracy; ignore_prefix_size; sentence_avg) plus the KD ones."""

    kd_lambda: float = field(
        default=KD_LAMBDA_DEFAULT,
        metadata={"help": "weight lambda of the KD term: loss = (1-lambda)*LS-NLL + lambda*KD; 0 = plain "
                  "label-smoothed training (no teacher needed), 1 = pure KD"},
    )
    kd_alpha: Optional[float] = field(
        default=None,
        metadata={"help": "old name of --kd-lambda, still accepted"},
    )
    kd_temperature: float = field(
        default=1.0,
        metadata={"help": "KD temperature T: student and teacher logits are divided by T (T > 0)"},
    )
    no_kd_t2_scale: bool = field(
        default=False,
        metadata={"help": "do not multiply the KD term by T^2 (by default it is, to keep its gradient scale)"},
    )
    teacher_path: Optional[str] = field(
        default=None,
        metadata={"help": "teacher checkpoint for online KD; several joined by ':' form an ensemble whose "
                  "probabilities are averaged at temperature T. Must share the task's dictionaries"},
    )
    kd_topk: int = field(
        default=0,
        metadata={"help": "0 = KD over the full vocabulary (with --kd-topk-cache: all K stored tokens); "
                  "K > 0 = keep the teacher's top-K tokens per position and renormalise over them at "
                  "temperature T (Tan et al.)"},
    )
    kd_topk_cache: Optional[str] = field(
        default=None,
        metadata={"help": "instead of --teacher-path: a top-K teacher cache built by `lskd cache` (its 'train' "
                  "split is used in training, its 'valid' split, if present, in validation); no teacher is loaded"},
    )
    trust_checkpoint: bool = field(
        default=False,
        metadata={"help": "load teacher checkpoints that need pickled classes besides tensors and fairseq's config "
                  "(older fairseq versions, other code): only files you trust"},
    )
    save_dir: Optional[str] = II("checkpoint.save_dir")  # to refuse a teacher inside the student's save dir


class OnlineTeacher:
    """Frozen teacher model(s) run under no_grad on the student's batch (teacher forcing)."""

    def __init__(self, models: List[torch.nn.Module]):
        self.models = models
        self._placed = None

    def _place(self, like: torch.Tensor) -> None:
        key = (like.device, like.dtype)
        if self._placed != key:
            for m in self.models:
                m.to(device=like.device, dtype=like.dtype)
            self._placed = key

    @torch.no_grad()
    def targets(self, sample, model, target) -> List[torch.Tensor]:
        """The teachers' logits (B, L, V) for the student's batch."""
        self._place(next(model.parameters()))
        return [m(**sample["net_input"])[0] for m in self.models]


class CachedTeacher:
    """Stored top-K teacher log-probabilities (`lskd cache`), looked up by fairseq sample id.

    Only the K columns are gathered into (B, L, K) tensors: no dense teacher distribution exists.
    """

    def __init__(self, path: str, task, topk: int):
        from ..topk_cache import open_cache

        self.splits = open_cache(path)
        if "train" not in self.splits:
            raise LskdError(f"--kd-topk-cache {path}: no complete 'train' split (found {sorted(self.splits)})")
        for split, cache in self.splits.items():
            try:
                task.load_dataset(split)
            except FileNotFoundError as e:
                raise LskdError(f"--kd-topk-cache {path}: its split has no counterpart in the task's data ({e})")
            cache.check_matches(task.target_dictionary, task.dataset(split).tgt_sizes, split)
        k = self.splits["train"].k
        if topk > k:
            raise LskdError(f"--kd-topk {topk} is larger than the K={k} tokens stored in --kd-topk-cache {path}")
        self.k = topk or k
        self.pad = task.target_dictionary.pad()

    def targets(self, sample, model, target) -> Optional[TopKTeacher]:
        cache = self.splits.get("train" if model.training else "valid")
        if cache is None:
            return None
        ids, values = cache.rows(sample["id"].tolist())
        mask = target.ne(self.pad)
        if len(ids) != int(mask.sum()):
            raise LskdError(f"--kd-topk-cache: batch has {int(mask.sum())} target tokens, cache rows {len(ids)} "
                              "(cache made for another corpus?)")
        full_ids = target.new_zeros(*target.shape, self.k)
        full_values = torch.zeros(*target.shape, self.k, device=target.device)
        full_ids[mask] = torch.from_numpy(ids[:, : self.k].astype(np.int64)).to(target.device)
        full_values[mask] = torch.from_numpy(values[:, : self.k].astype(np.float32)).to(target.device)
        return TopKTeacher(full_ids, full_values)


def refuse_teacher_in_save_dir(teacher_path: str, save_dir: Optional[str]) -> None:
    """A teacher checkpoint in the student's --save-dir would be resumed as the student (checkpoint_last.pt)
    or overwritten by it (checkpoint_best.pt, checkpoint_last.pt): refuse before fairseq loads anything."""
    from ..teacher import split_paths

    if not save_dir or not os.path.isdir(save_dir):
        return
    for path in split_paths(teacher_path):
        if os.path.isfile(path) and os.path.samefile(os.path.dirname(os.path.abspath(path)), save_dir):
            raise LskdError(f"--teacher-path {path} is inside the student's --save-dir {save_dir}: fairseq would resume "
                              "or overwrite the teacher there; give the student its own --save-dir")


@register_criterion("ls_kd", dataclass=LsKdConfig)
class LsKdCriterion(FairseqCriterion):
    def __init__(self, cfg: LsKdConfig, task):
        super().__init__(task)
        # errors name the KD weight by the flag the user gave: --kd-lambda, or its old name --kd-alpha
        self.lambda_flag = "--kd-lambda" if cfg.kd_alpha is None else "--kd-alpha"
        with fairseq_exit_on_user_error({"kd_lambda": self.lambda_flag}):
            self._set_up(task, cfg, self._kd_lambda(cfg))

    @staticmethod
    def _kd_lambda(cfg: LsKdConfig) -> float:
        if cfg.kd_alpha is None:
            return cfg.kd_lambda
        if cfg.kd_lambda not in (KD_LAMBDA_DEFAULT, cfg.kd_alpha):
            raise LskdError(f"--kd-lambda {cfg.kd_lambda} and --kd-alpha {cfg.kd_alpha}: give one (--kd-alpha is the "
                            "old name)")
        return cfg.kd_alpha

    def _set_up(self, task, cfg: LsKdConfig, kd_lambda: float) -> None:
        eps = cfg.label_smoothing
        self.loss_fn = LSKDLoss(
            kd_lambda=kd_lambda, temperature=cfg.kd_temperature, label_smoothing=eps,
            t2_scale=not cfg.no_kd_t2_scale, topk=cfg.kd_topk, spread="others", ignore_index=self.padding_idx,
        )
        # validation batches for which a cache has no split: the student's own LS-NLL, no KD term
        self.ls_only = LSKDLoss(kd_lambda=0.0, label_smoothing=eps, spread="others", ignore_index=self.padding_idx)
        vocab = len(task.target_dictionary)
        if cfg.kd_topk > vocab:
            raise LskdError(f"--kd-topk {cfg.kd_topk} is larger than the target vocabulary ({vocab} symbols)")
        self.sentence_avg = cfg.sentence_avg
        self.report_accuracy = cfg.report_accuracy
        self.ignore_prefix_size = cfg.ignore_prefix_size
        self.teacher = self._teacher(task, cfg, kd_lambda)

    def _teacher(self, task, cfg: LsKdConfig, kd_lambda: float):
        """The teacher source: none (kd_lambda 0), a top-K cache, or the frozen teacher model(s)."""
        path, cache = cfg.teacher_path, cfg.kd_topk_cache
        if path and cache:
            raise LskdError("give one teacher source: --teacher-path or --kd-topk-cache, not both")
        if kd_lambda == 0:
            if path or cache:
                logger.warning(f"ls_kd: {self.lambda_flag} 0 ignores the teacher (plain label-smoothed training)")
            return None
        if cache:
            teacher = CachedTeacher(cache, task, cfg.kd_topk)
            logger.info(f"ls_kd: top-{teacher.k} teacher cache {cache} (splits {sorted(teacher.splits)}); "
                        f"kd_lambda={kd_lambda} T={cfg.kd_temperature}")
            return teacher
        if path:
            refuse_teacher_in_save_dir(path, cfg.save_dir)
            teacher = OnlineTeacher(TeacherSession.for_task(task, path, trust=cfg.trust_checkpoint).models)
            logger.info(f"ls_kd: {len(teacher.models)} frozen teacher(s) from {path}; kd_lambda={kd_lambda} "
                        f"T={cfg.kd_temperature} topk={cfg.kd_topk or 'full'}")
            return teacher
        raise LskdError(f"{self.lambda_flag} > 0 needs a teacher: give --teacher-path CKPT[:CKPT...] "
                        "or --kd-topk-cache DIR")

    def _prefix_cut(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.ignore_prefix_size:].contiguous() if self.ignore_prefix_size > 0 else x

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        lprobs = self._prefix_cut(model.get_normalized_probs(net_output, log_probs=True))
        target = self._prefix_cut(model.get_targets(sample, net_output))
        logits = self._prefix_cut(net_output[0])
        V = lprobs.size(-1)
        with fairseq_exit_on_user_error():  # a cache that does not fit the batch
            teacher = None if self.teacher is None else self.teacher.targets(sample, model, model.get_targets(sample, net_output))
        if isinstance(teacher, TopKTeacher):
            teacher = TopKTeacher(*(self._prefix_cut(x).reshape(-1, x.size(-1)) for x in (teacher.ids, teacher.logits)))
        elif teacher is not None:
            teacher = [self._prefix_cut(t).reshape(-1, V) for t in teacher]
        loss_fn = self.loss_fn
        if self.teacher is not None and teacher is None:  # validation without a cached 'valid' split
            loss_fn = self.ls_only
        # the online teacher's logits are this call's own tensors: the loss may overwrite them.
        # fairseq --amp runs the criterion under autocast, which would run the loss core's row dot
        # products (einsum) in half precision: at T = 64 the KD term cancels to 0. The core upcasts its
        # inputs itself; autocast stays off inside it.
        with torch.autocast(device_type=logits.device.type, enabled=False):
            loss, nll_loss, kd_loss = loss_fn(logits.reshape(-1, V), target.reshape(-1), teacher=teacher,
                                              student_lprobs=lprobs.view(-1, V), consume_teacher=True)
        sample_size = sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        logging_output = {
            "loss": loss.data,
            "nll_loss": nll_loss.data,
            "kd_loss": kd_loss.data,
            "ntokens": sample["ntokens"],
            "nsentences": sample["target"].size(0),
            "sample_size": sample_size,
        }
        if self.report_accuracy:
            mask = target.ne(self.padding_idx)
            logging_output["n_correct"] = utils.item(lprobs.argmax(-1).masked_select(mask).eq(target.masked_select(mask)).sum())
            logging_output["total"] = utils.item(mask.sum())
        return loss, sample_size, logging_output

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        """label_smoothed_cross_entropy's metrics (base 2), plus kd_loss per target token."""
        LabelSmoothedCrossEntropyCriterion.reduce_metrics(logging_outputs)
        kd_sum = sum(log.get("kd_loss", 0) for log in logging_outputs)
        ntokens = sum(log.get("ntokens", 0) for log in logging_outputs)
        metrics.log_scalar("kd_loss", kd_sum / ntokens / math.log(2), ntokens, round=3)

    @staticmethod
    def logging_outputs_can_be_summed() -> bool:
        return True


add_ls_kd_options_to_help(LsKdConfig)
