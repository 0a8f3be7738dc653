"""`lskd vision train-teacher / train-student`: the run's settings, each declared once (the CLI's flags, help and
defaults are built from these fields by lskd.options), and their checks.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import List, Optional

import torch

from lskd.errors import LskdError
from lskd.losses import check_loss_options
from lskd.options import option

SCHEDULES = ("step", "multistep", "cosine", "constant")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DATA, MODEL, LOSS, OPTIM, RUN = "data", "model", "loss", "optimisation", "run"
STUDENT = ("student",)


def _bool(s: str) -> bool:
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {s!r}")


def float_list(s: str) -> List[float]:
    try:
        return [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {s!r}") from None


def _int_list(s: str) -> List[int]:
    try:
        return [int(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None


@dataclass
class TrainConfig:
    role: str = "teacher"  # teacher | student: the subcommand
    dataset: str = option("fashion_mnist", "fashion_mnist | cifar10 | cifar100 | imagenet | imagefolder | cub200 | "
                          "digits", group=DATA)
    data_root: str = option("", "dataset folder (fashion_mnist: default /usr/share/datasets/fashion-mnist)", group=DATA)
    image_size: int = option(0, "crop size for ImageFolder/CUB (default 224; 0: the dataset's own)", group=DATA)
    mean: List[float] = option(None, "per-channel mean to normalise with, comma-separated (default: the data set's "
                               "own; ImageNet's for image folders)", group=DATA, type=float_list, default_factory=list)
    std: List[float] = option(None, "per-channel standard deviation, with --mean", group=DATA, type=float_list,
                              default_factory=list)
    augment: bool = option(True, "no random crop/flip on the training set", flag="--no-augment", group=DATA)
    train_subset: int = option(0, "use a fixed (seed-independent) random subset of N training images (CPU grids)",
                               group=DATA)
    num_workers: int = option(-1, "data loader workers (default -1: the cores available for data read from image "
                              "files; 0 for in-memory tensor data sets, where workers would only copy)", group=DATA)
    arch: str = option("resnet18", "resnet18 | resnet34 | resnet50 | mobilenet_v2 (with --width, --small-input) | "
                       "smallcnn | mlp | any torchvision classification model name", group=MODEL)
    width: float = option(1.0, "channel width multiplier", group=MODEL)
    small_input: Optional[bool] = option(None, "3x3 stem, no max-pool (default: on for images <= 64 px)", group=MODEL,
                                         type=_bool)
    pretrained: str = option("", "initialise from a local torchvision state_dict file", group=MODEL)
    label_smoothing: float = option(0.0, "LS alpha, target (1-a)*onehot + a/K: the teacher's; a student's CE term "
                                    "(paper: 0)", group=LOSS)
    teacher: str = option("", "the teacher: an lskd checkpoint (best.pt of a train-teacher run), a torchvision "
                          "weights file or state_dict (with --teacher-arch), or a torchvision-references checkpoint",
                          group=LOSS, roles=STUDENT, required=True)
    teacher_cache: bool = option(False, "with --no-augment: run the teacher once over the training set and cache its "
                                 "logits", group=LOSS, roles=STUDENT)
    teacher_arch: str = option("", "the teacher's architecture: required for a torchvision weights file / state_dict "
                               "(any --arch name), checked for an lskd checkpoint", group=LOSS, roles=STUDENT)
    teacher_classes: str = option("", "the teacher's classes, one name per line, checked against the data's by name "
                                  "and order (default: the list an lskd checkpoint stores)", group=LOSS, roles=STUDENT)
    teacher_class_map: bool = option(False, "allow a teacher whose classes are the data's in another order: its "
                                     "outputs are reordered by name", group=LOSS, roles=STUDENT)
    trust_teacher: bool = option(False, "load a --teacher file that pickles classes besides tensors and argparse's "
                                 "Namespace (unpickling runs code: only files you trust)", group=LOSS, roles=STUDENT)
    temperature: float = option(1.0, "KD temperature T > 0", group=LOSS, roles=STUDENT, aliases=("-T",))
    kd_lambda: float = option(1.0, "weight of KD_T; 1 = pure KD (paper), else (1-lambda)*CE is added", group=LOSS,
                              roles=STUDENT)
    epochs: int = option(10, "training epochs", group=OPTIM)
    batch_size: int = option(128, "global batch size (split over DDP ranks)", group=OPTIM)
    eval_batch_size: int = option(512, "evaluation batch size", group=OPTIM)
    lr: float = option(0.1, "peak learning rate", group=OPTIM)
    momentum: float = option(0.9, "SGD momentum", group=OPTIM)
    weight_decay: float = option(1e-4, "weight decay", group=OPTIM)
    nesterov: bool = option(False, "Nesterov momentum", group=OPTIM)
    schedule: str = option("step", " | ".join(SCHEDULES), group=OPTIM)
    step_size: int = option(30, "step schedule: x gamma every N epochs", group=OPTIM)
    milestones: List[int] = option(None, "multistep: comma-separated epochs", group=OPTIM, type=_int_list,
                                   default_factory=list)
    gamma: float = option(0.1, "learning-rate factor of the step and multistep schedules", group=OPTIM)
    warmup_epochs: float = option(0.0, "linear warm-up epochs", group=OPTIM)
    clip_grad_norm: float = option(0.0, "clip the global gradient norm to this value, after un-scaling (0: off)",
                                   group=OPTIM)
    precision: str = option("auto", "auto (fp16 AMP on GPU, fp32 on CPU) | fp32 | bf16 | fp16", group=OPTIM)
    channels_last: bool = option(False, "channels-last memory format", group=OPTIM)
    sync_bn: bool = option(False, "SyncBatchNorm under DDP (GPU)", group=OPTIM)
    out_dir: str = option("", "run directory", group=RUN, required=True)
    seed: int = option(0, "random seed", group=RUN)
    deterministic: bool = option(False, "deterministic algorithms (slower)", group=RUN)
    device: str = option("", "cpu | cuda | cuda:N (default: cuda if available)", group=RUN)
    threads: int = option(0, "torch intra-op threads (0: torch's default)", group=RUN)
    log_every: int = option(50, "log a line every N steps (when no progress bar)", group=RUN)
    progress: bool = option(True, "no progress bar", flag="--no-progress", group=RUN)
    resume: bool = option(True, "start over even if last.pt exists", flag="--no-resume", group=RUN)
    force: bool = option(False, "retrain even if final.json exists", group=RUN)
    max_steps_per_epoch: int = option(0, argparse.SUPPRESS, group=RUN)  # >0: cut epochs short (smoke tests)


def validate(cfg: TrainConfig) -> None:
    """All option checks that need no data: clear one-line errors before anything runs."""
    if cfg.role not in ("teacher", "student"):
        raise LskdError(f"role must be teacher or student, got {cfg.role!r}")
    if not cfg.out_dir:
        raise LskdError("--out-dir: a run directory is required")
    check_loss_options(cfg.kd_lambda, cfg.temperature, cfg.label_smoothing)  # an OptionError; the CLI names its flag
    if cfg.teacher_cache and cfg.role == "student" and cfg.augment:
        raise LskdError("--teacher-cache: cached teacher logits are only valid for un-augmented data; add --no-augment")
    if cfg.role == "student":
        if not cfg.teacher:
            raise LskdError("--teacher: a student needs a teacher checkpoint")
        if not os.path.isfile(cfg.teacher):
            raise LskdError(f"--teacher: checkpoint {cfg.teacher} does not exist (expected best.pt or last.pt of a teacher run)")
    if cfg.epochs < 1:
        raise LskdError(f"--epochs: expected >= 1, got {cfg.epochs}")
    if cfg.batch_size < 1:
        raise LskdError(f"--batch-size: expected >= 1, got {cfg.batch_size}")
    if not (cfg.lr > 0):
        raise LskdError(f"--lr: expected > 0, got {cfg.lr}")
    if cfg.schedule not in SCHEDULES:
        raise LskdError(f"--schedule: unknown schedule {cfg.schedule!r}; expected one of: {', '.join(SCHEDULES)}")
    if cfg.schedule == "step" and cfg.step_size < 1:
        raise LskdError(f"--step-size: expected >= 1, got {cfg.step_size}")
    if cfg.warmup_epochs < 0 or cfg.warmup_epochs >= cfg.epochs and cfg.warmup_epochs > 0:
        raise LskdError(f"--warmup-epochs: expected in [0, epochs={cfg.epochs}), got {cfg.warmup_epochs}")
    if cfg.clip_grad_norm < 0:
        raise LskdError(f"--clip-grad-norm: expected >= 0 (0 = off), got {cfg.clip_grad_norm}")
    if cfg.precision not in PRECISIONS:
        raise LskdError(f"--precision: expected one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if cfg.precision == "fp16" and not (cfg.device.startswith("cuda") or (not cfg.device and torch.cuda.is_available())):
        raise LskdError("--precision fp16 needs a GPU; use bf16 or fp32 on CPU")
    if cfg.pretrained and not os.path.isfile(cfg.pretrained):
        raise LskdError(f"--pretrained: weights file {cfg.pretrained} does not exist (a local torchvision state_dict; nothing is downloaded)")
