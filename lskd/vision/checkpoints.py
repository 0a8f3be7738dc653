"""lskd vision's checkpoints: what a run records about its model, reading a checkpoint back into a model, and the
frozen teacher a student distils from (mismatches are one-line user errors)."""

from __future__ import annotations

import torch

from lskd.errors import LskdError
from lskd.vision.config import TrainConfig
from lskd.vision.data import DataBundle
from lskd.vision.models import build_model


def model_meta(cfg: TrainConfig, data: DataBundle, small_input: bool) -> dict:
    return {
        "arch": cfg.arch, "width": cfg.width, "small_input": small_input, "num_classes": data.num_classes,
        "in_channels": data.in_channels, "image_size": data.image_size, "dataset": cfg.dataset, "role": cfg.role,
        "label_smoothing": cfg.label_smoothing, "temperature": cfg.temperature if cfg.role == "student" else None,
        "seed": cfg.seed,
    }


def load_checkpoint(path: str) -> dict:
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise LskdError(f"{path}: cannot read as an lskd vision checkpoint: {(str(e).strip().splitlines() or [type(e).__name__])[0]}") from None
    if not isinstance(ck, dict) or "model" not in ck or "meta" not in ck:
        raise LskdError(f"{path}: not an lskd vision checkpoint (expected a dict with 'model' and 'meta', as written by lskd vision)")
    return ck


def model_from_checkpoint(path: str) -> tuple:
    ck = load_checkpoint(path)
    m = ck["meta"]
    model = build_model(m["arch"], m["num_classes"], m["in_channels"], m["small_input"], m["width"], m["image_size"])
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        raise LskdError(f"{path}: weights do not fit its recorded architecture {m['arch']}: {str(e).splitlines()[0]}") from None
    return model, ck


def load_teacher(cfg: TrainConfig, data: DataBundle) -> tuple:
    """The frozen teacher (eval mode, no grad) and its meta; mismatches are user errors."""
    ck = load_checkpoint(cfg.teacher)
    m = ck["meta"]
    if cfg.teacher_arch and m["arch"] != cfg.teacher_arch:
        raise LskdError(f"--teacher: {cfg.teacher} is a {m['arch']} checkpoint, but --teacher-arch says {cfg.teacher_arch}")
    if m["num_classes"] != data.num_classes:
        raise LskdError(f"--teacher: {cfg.teacher} has {m['num_classes']} classes, dataset {cfg.dataset} has {data.num_classes}")
    if m["in_channels"] != data.in_channels:
        raise LskdError(f"--teacher: {cfg.teacher} takes {m['in_channels']}-channel images, dataset {cfg.dataset} has {data.in_channels}")
    teacher, _ = model_from_checkpoint(cfg.teacher)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher, m
