"""Load frozen fairseq teachers (one checkpoint, or an ensemble joined by ':') for a task.

The teacher is checked against the task's dictionaries before any weights are built, so a
mismatch is a one-line error instead of a size-mismatch traceback from load_state_dict.
"""

from __future__ import annotations

import os
from typing import List, Optional

import torch
from fairseq import checkpoint_utils, models
from fairseq.data import Dictionary, data_utils

from .errors import PluginError


def split_paths(spec: str) -> List[str]:
    return [p for p in spec.split(":") if p]


def read_checkpoint(path: str, option: str = "--teacher-path") -> dict:
    """The checkpoint dict of a fairseq model file, or a PluginError naming the path."""
    if not os.path.isfile(path):
        raise PluginError(f"{option} {path}: no such file (expected a fairseq checkpoint .pt)")
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(path)
    except Exception as e:  # torch/pickle raise many kinds for a non-checkpoint
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if _truncated_zip(path):
            raise PluginError(f"{option} {path}: truncated checkpoint ({os.path.getsize(path)} bytes, a torch zip "
                              "archive without its end record: cut short by an interrupted copy or write?)")
        raise PluginError(f"{option} {path}: not a fairseq checkpoint ({type(e).__name__}: {first[:200]})")
    if not isinstance(state, dict) or "model" not in state or state.get("cfg") is None:
        raise PluginError(f"{option} {path}: not a fairseq checkpoint (no 'model' and 'cfg' entries)")
    return state


def _truncated_zip(path: str) -> bool:
    """A torch checkpoint is a zip archive: one that starts like a zip but lacks the end record was cut short."""
    import zipfile

    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04" and not zipfile.is_zipfile(path)


def _first_difference(a: Dictionary, b: Dictionary) -> str:
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return f"first difference at index {i}: teacher {a[i]!r} vs task {b[i]!r}"
    return f"identical up to index {min(len(a), len(b)) - 1}"


def _embedding_rows(state_model: dict, prefix: str) -> Optional[int]:
    w = state_model.get(f"{prefix}.embed_tokens.weight")
    return None if w is None else int(w.shape[0])


def check_dictionaries(path: str, state: dict, task, option: str = "--teacher-path") -> None:
    """Compare the teacher's dictionaries (from its data dir if it still exists, else its embedding
    sizes) with the task's; raise a PluginError with both sizes and the first differing symbol."""
    tcfg = state["cfg"].task
    data = getattr(tcfg, "data", None)
    data_dir = split_paths(data)[0] if data else None
    src, tgt = getattr(tcfg, "source_lang", None), getattr(tcfg, "target_lang", None)
    if data_dir and os.path.isdir(data_dir) and (src is None or tgt is None):
        try:
            src, tgt = data_utils.infer_language_pair(data_dir)
        except Exception:
            src = tgt = None
    sides = [("source", src, task.source_dictionary, "encoder"), ("target", tgt, task.target_dictionary, "decoder")]
    for side, lang, task_dict, prefix in sides:
        if task_dict is None:
            continue
        dict_file = os.path.join(data_dir, f"dict.{lang}.txt") if (data_dir and lang) else None
        if dict_file and os.path.isfile(dict_file):
            tdict = Dictionary.load(dict_file)
            if len(tdict) != len(task_dict) or tdict.symbols != task_dict.symbols:
                raise PluginError(
                    f"{option} {path}: teacher {side} dictionary ({dict_file}, {len(tdict)} symbols) differs from "
                    f"the task's ({len(task_dict)} symbols); {_first_difference(tdict, task_dict)}"
                )
            continue
        rows = _embedding_rows(state["model"], prefix)
        if rows is not None and rows != len(task_dict):
            raise PluginError(
                f"{option} {path}: teacher {side} vocabulary has {rows} symbols, the task's dictionary has "
                f"{len(task_dict)} (teacher data dir {data_dir!r} not found, so symbols cannot be compared)"
            )


def load_teachers(spec: str, task, option: str = "--teacher-path") -> List[torch.nn.Module]:
    """Build, load and freeze every teacher in `spec` ('a.pt' or 'a.pt:b.pt'), in eval mode on CPU."""
    paths = split_paths(spec)
    if not paths:
        raise PluginError(f"{option} is empty; expected one checkpoint or several joined by ':'")
    teachers = []
    for path in paths:
        state = read_checkpoint(path, option)
        check_dictionaries(path, state, task, option)
        model_cfg = state["cfg"].model
        try:
            model = models.build_model(model_cfg, task)
            model.load_state_dict(state["model"], strict=True, model_cfg=model_cfg)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise PluginError(f"{option} {path}: weights do not fit the architecture in its own config ({first[:200]})")
        model.eval()
        model.requires_grad_(False)
        teachers.append(model)
    return teachers
