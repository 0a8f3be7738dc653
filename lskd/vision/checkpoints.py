"""lskd vision's checkpoints: what a run records about its model, reading a checkpoint back into a model, and the
frozen teacher a student distils from (mismatches are one-line user errors)."""

from __future__ import annotations

import os
import sys
from typing import List, NamedTuple, Optional, Tuple

import torch
from torch import nn

from lskd.errors import LskdError
from lskd.vision.config import TrainConfig
from lskd.vision.data import DataBundle
from lskd.vision.models import MODELS, GreyToRGB, build_model, final_layer, torchvision_model, torchvision_names


def model_meta(cfg: TrainConfig, data: DataBundle, small_input: bool) -> dict:
    return {
        "arch": cfg.arch, "width": cfg.width, "small_input": small_input, "num_classes": data.num_classes,
        "in_channels": data.in_channels, "image_size": data.image_size, "dataset": cfg.dataset, "role": cfg.role,
        "label_smoothing": cfg.label_smoothing, "temperature": cfg.temperature if cfg.role == "student" else None,
        "seed": cfg.seed, "classes": list(data.classes), "mean": list(cfg.mean) or None, "std": list(cfg.std) or None,
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


class TeacherOptions(NamedTuple):
    """The options that name a teacher file and its checks, as the command loading it calls them (its errors say them)."""

    file: str = "--teacher"
    arch: str = "--teacher-arch"
    classes: str = "--teacher-classes"
    class_map: str = "--teacher-class-map"
    trust: str = "--trust-teacher"


AUX = ("AuxLogits.", "aux1.", "aux2.")  # Inception/GoogLeNet training heads: lskd builds these models without them


def read_model_file(path: str, trust: bool, names: TeacherOptions = TeacherOptions()
                    ) -> Tuple[str, dict, Optional[dict], Optional[str]]:
    """(kind, state_dict, lskd meta or None, architecture the file names or None) of an lskd checkpoint
    ("lskd"), a torchvision-references checkpoint ("references": `model` and a pickled `args`, read with
    argparse.Namespace as the one class allowed besides tensors) or a weights file / state_dict ("state_dict")."""
    import argparse
    import pickle

    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            ck = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        why = (str(e).strip().splitlines() or ["?"])[0][:160]
        if "Unsupported global" not in str(e):  # not a class it refused: not a (torch) pickle at all
            raise LskdError(f"{names.file} {path}: cannot read as a torch file ({why})") from None
        raise LskdError(f"{names.file} {path}: holds pickled objects besides tensors and argparse.Namespace ({why}); "
                        f"{names.trust} loads it anyway (only files you trust: unpickling runs code)") from None
    except Exception as e:  # noqa: BLE001
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise LskdError(f"{names.file} {path}: cannot read as a torch file ({why})") from None
    if isinstance(ck, dict) and isinstance(ck.get("model"), dict) and isinstance(ck.get("meta"), dict):
        return "lskd", ck["model"], ck["meta"], ck["meta"].get("arch")
    if isinstance(ck, dict) and isinstance(ck.get("model"), dict):
        return "references", ck["model"], None, getattr(ck.get("args"), "model", None)
    if isinstance(ck, dict) and isinstance(ck.get("state_dict"), dict):
        ck = ck["state_dict"]
    if isinstance(ck, dict) and ck and all(isinstance(v, torch.Tensor) for v in ck.values()):
        return "state_dict", ck, None, None
    raise LskdError(f"{names.file} {path}: not a model file lskd knows (expected an lskd vision checkpoint, a "
                    "torchvision-references checkpoint with 'model' and 'args', or a state_dict of tensors)")


def _outside_model(path: str, state: dict, arch: str, data: DataBundle, names: TeacherOptions) -> nn.Module:
    """A torchvision-shaped model for weights made outside lskd; every weight must fit (threshold: none missing,
    none unexpected, Inception's auxiliary heads aside), else the differences are listed."""
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(AUX)}
    own = arch in MODELS and arch not in torchvision_names()  # smallcnn, mlp: the project's own layout
    small = data.image_size <= 64
    model = build_model(arch, data.num_classes, data.in_channels, small, 1.0, data.image_size) if own else \
        torchvision_model(arch, data.num_classes, data.in_channels, 1.0)
    target = model[1] if isinstance(model, nn.Sequential) and isinstance(model[0], GreyToRGB) else model
    fc = final_layer(target)
    fc_name = next(n for n, m in target.named_modules() if m is fc)
    if f"{fc_name}.weight" in state and state[f"{fc_name}.weight"].shape[0] != data.num_classes:
        raise LskdError(f"{names.file} {path}: its classifier has {state[f'{fc_name}.weight'].shape[0]} classes, the data "
                        f"{data.num_classes}")
    expected = {k: v.shape for k, v in target.state_dict().items()}
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k]]
    if missing or unexpected or wrong:
        show = lambda ks: ", ".join(ks[:4]) + (f" (+{len(ks) - 4} more)" if len(ks) > 4 else "")  # noqa: E731
        parts = [f"{len(missing)} missing ({show(missing)})" if missing else "",
                 f"{len(unexpected)} unexpected ({show(unexpected)})" if unexpected else "",
                 f"{len(wrong)} of another shape ({show(wrong)})" if wrong else ""]
        raise LskdError(f"{names.file} {path}: its weights do not fit {names.arch} {arch}: "
                        f"{'; '.join(p for p in parts if p)} (any difference is refused)")
    target.load_state_dict(state, strict=False)
    return model


def teacher_class_order(cfg: TrainConfig, meta: Optional[dict], data: DataBundle,
                        names: TeacherOptions) -> Optional[List[int]]:
    """None when the teacher's classes are the data's, in order; else, with --teacher-class-map, the teacher
    output index of each data class. The teacher's class list: --teacher-classes FILE, else its lskd meta."""
    if cfg.teacher_classes:
        if not os.path.isfile(cfg.teacher_classes):
            raise LskdError(f"{names.classes}: {cfg.teacher_classes} does not exist (one class name per line)")
        classes = [ln.strip() for ln in open(cfg.teacher_classes, encoding="utf-8") if ln.strip()]
    else:
        classes = (meta or {}).get("classes")
    if classes is None:
        print(f"[lskd vision] warning: {names.file} {cfg.teacher} carries no class list: its class order is assumed to "
              f"be the data's ({names.classes} FILE checks it)", file=sys.stderr)
        return None
    if len(classes) != len(data.classes):
        raise LskdError(f"{names.file}: the teacher has {len(classes)} classes, the data {len(data.classes)}")
    if classes == list(data.classes):
        return None
    if not cfg.teacher_class_map:
        i = next(i for i, (a, b) in enumerate(zip(classes, data.classes)) if a != b)
        raise LskdError(f"{names.file}: class {i} is {classes[i]!r} for the teacher but {data.classes[i]!r} in the data "
                        f"(the class order differs; {names.class_map} reorders the teacher's outputs by name)")
    absent = sorted(set(data.classes) - set(classes))
    if absent:
        raise LskdError(f"{names.class_map}: the data's class {absent[0]!r} is not among the teacher's")
    return [classes.index(c) for c in data.classes]


class Reordered(nn.Module):
    """A teacher's outputs in the data's class order."""

    def __init__(self, model: nn.Module, order: List[int]):
        super().__init__()
        self.model = model
        self.register_buffer("order", torch.tensor(order, dtype=torch.long), persistent=False)

    def forward(self, x):
        return self.model(x).index_select(1, self.order)


def load_teacher(cfg: TrainConfig, data: DataBundle, names: TeacherOptions = TeacherOptions()) -> tuple:
    """The frozen teacher (eval mode, no grad) and its meta (None for a teacher made outside lskd); its classes
    checked against the data's; mismatches are user errors, named by `names`."""
    kind, state, meta, arch = read_model_file(cfg.teacher, cfg.trust_teacher, names)
    if kind == "lskd":
        if cfg.teacher_arch and meta["arch"] != cfg.teacher_arch:
            raise LskdError(f"{names.file}: {cfg.teacher} is a {meta['arch']} checkpoint, but {names.arch} says {cfg.teacher_arch}")
        if meta["num_classes"] != data.num_classes:
            raise LskdError(f"{names.file}: {cfg.teacher} has {meta['num_classes']} classes, dataset {cfg.dataset} has {data.num_classes}")
        if meta["in_channels"] != data.in_channels:
            raise LskdError(f"{names.file}: {cfg.teacher} takes {meta['in_channels']}-channel images, dataset {cfg.dataset} has {data.in_channels}")
        teacher, _ = model_from_checkpoint(cfg.teacher)
    else:
        arch = cfg.teacher_arch or arch
        if not arch:
            raise LskdError(f"{names.arch}: name the architecture of {cfg.teacher} (a {kind.replace('_', ' ')} does "
                            "not say which it is)")
        teacher = _outside_model(cfg.teacher, state, arch, data, names)
        meta = {"arch": arch, "source": kind, "file": cfg.teacher}
    order = teacher_class_order(cfg, meta, data, names)
    if order is not None:
        teacher = Reordered(teacher, order)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher, meta
