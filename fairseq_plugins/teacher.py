"""Frozen fairseq teachers (one checkpoint, or an ensemble joined by ':') and the session around them.

`TeacherSession` is what every teacher-running command shares: the fairseq task of the teacher's own
config pointed at a data directory (`lskd cache`, `lskd distill-data`, `lskd nmt-features`) or the
student's task (the `ls_kd` criterion), the teacher(s) checked against that task's dictionaries and
loaded with each checkpoint read once, and fairseq's batch iterator over a split.

The teacher is checked against the task's dictionaries before any weights are built, so a
mismatch is a one-line error instead of a size-mismatch traceback from load_state_dict.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
from typing import List, Optional, Sequence, Tuple

import torch
from fairseq import checkpoint_utils, models
from fairseq.data import Dictionary, data_utils

from lskd.errors import LskdError


def split_paths(spec: str) -> List[str]:
    return [p for p in spec.split(":") if p]


UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def read_checkpoint(path: str, option: str = "--teacher-path", trust: bool = False) -> dict:
    """The checkpoint dict of a fairseq model file (fairseq <= 0.10's `args` layout upgraded by fairseq), or an
    LskdError naming the path. torch loads weights only unless `trust` (--trust-checkpoint): a checkpoint that
    needs another pickled class is refused naming it."""
    if not os.path.isfile(path):
        raise LskdError(f"{option} {path}: no such file (expected a fairseq checkpoint .pt)")
    try:
        with weights_only(not trust):
            state = checkpoint_utils.load_checkpoint_to_cpu(path)
    except Exception as e:  # torch/pickle raise many kinds for a non-checkpoint
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        unknown = UNSUPPORTED_GLOBAL.search(str(e))
        if unknown:
            raise LskdError(f"{option} {path}: the checkpoint needs the class {unknown.group(1)}, which a weights-only "
                            "load refuses; if you trust the file, add --trust-checkpoint")
        if _truncated_zip(path):
            raise LskdError(f"{option} {path}: truncated checkpoint ({os.path.getsize(path)} bytes, a torch zip "
                              "archive without its end record: cut short by an interrupted copy or write?)")
        raise LskdError(f"{option} {path}: not a fairseq checkpoint ({type(e).__name__}: {first[:200]})")
    if not isinstance(state, dict) or "model" not in state or state.get("cfg") is None:
        raise LskdError(f"{option} {path}: not a fairseq checkpoint (no 'model' and 'cfg' entries)")
    return state


@contextlib.contextmanager
def weights_only(on: bool):
    """torch.load's default for the block: weights only (torch >= 2.6), or any pickled object."""
    if on:
        yield
        return
    old = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"]
        else:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = old


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


def languages(task_cfg, data_dir: Optional[str]) -> Tuple[Optional[str], Optional[str]]:
    """(source, target) of a task config, or else inferred from the data dir's file names; None where neither says."""
    src, tgt = getattr(task_cfg, "source_lang", None), getattr(task_cfg, "target_lang", None)
    if data_dir and os.path.isdir(data_dir) and (src is None or tgt is None):
        try:
            src, tgt = data_utils.infer_language_pair(data_dir)
        except Exception:  # fairseq raises several kinds for a directory without a pair of split files
            src = tgt = None
    return src, tgt


def teacher_dictionary(path: str, data_dir: Optional[str], lang: Optional[str]) -> Optional[str]:
    """The teacher's dict.LANG.txt: beside its checkpoint (a released model folder), else in its training data dir."""
    for folder in (os.path.dirname(os.path.abspath(path)), data_dir):
        if folder and lang and os.path.isfile(os.path.join(folder, f"dict.{lang}.txt")):
            return os.path.join(folder, f"dict.{lang}.txt")
    return None


STUDENT_VOCABULARY = ("; word-level KD compares distributions over the same symbols, so the student must use the "
                      "teacher's dictionaries (a student with a vocabulary of its own learns from sequence-level KD "
                      "data: lskd distill-data)")


def check_dictionaries(path: str, state: dict, task, option: str = "--teacher-path", folder: bool = False,
                       why: str = "") -> None:
    """Compare the teacher's language pair and dictionaries (beside the checkpoint or in its data dir, symbol by
    symbol; else its embedding sizes) with the task's; an LskdError names the first difference. A teacher given
    as a folder must hold its dictionaries."""
    tcfg = state["cfg"].task
    data = getattr(tcfg, "data", None)
    data_dir = split_paths(data)[0] if data else None
    src, tgt = languages(tcfg, data_dir)
    pair = (getattr(task.cfg, "source_lang", None), getattr(task.cfg, "target_lang", None))
    if src and tgt and all(pair) and (src, tgt) != pair:
        raise LskdError(f"{option} {path}: the teacher translates {src}->{tgt}, the data is {pair[0]}->{pair[1]}")
    src, tgt = src or pair[0], tgt or pair[1]  # a config without the pair (inferred from data no longer there)
    sides = [("source", src, task.source_dictionary, "encoder"), ("target", tgt, task.target_dictionary, "decoder")]
    for side, lang, task_dict, prefix in sides:
        if task_dict is None:
            continue
        dict_file = teacher_dictionary(path, data_dir, lang)
        if dict_file:
            tdict = Dictionary.load(dict_file)
            if len(tdict) != len(task_dict) or tdict.symbols != task_dict.symbols:
                raise LskdError(
                    f"{option} {path}: teacher {side} dictionary ({dict_file}, {len(tdict)} symbols) differs from "
                    f"the task's ({len(task_dict)} symbols); {_first_difference(tdict, task_dict)}{why}"
                )
            continue
        if folder:
            has = sorted(f for f in os.listdir(os.path.dirname(path)) if f.startswith("dict.") and f.endswith(".txt"))
            other = f"; it has {', '.join(has)}: a teacher of another language pair?" if has else ""
            raise LskdError(f"{option} {os.path.dirname(path)}: no dict.{lang}.txt (a teacher folder holds its "
                            f"dictionaries: dict.{src}.txt and dict.{tgt}.txt{other})")
        rows = _embedding_rows(state["model"], prefix)
        if rows is not None and rows != len(task_dict):
            raise LskdError(
                f"{option} {path}: teacher {side} vocabulary has {rows} symbols, the task's dictionary has "
                f"{len(task_dict)} (teacher data dir {data_dir!r} not found, so symbols cannot be compared){why}"
            )


def checkpoint_in(folder: str, option: str = "--teacher-path") -> str:
    """A model folder's checkpoint: model.pt (fairseq's released layout), else its one checkpoint*.pt."""
    if os.path.isfile(os.path.join(folder, "model.pt")):
        return os.path.join(folder, "model.pt")
    found = sorted(f for f in os.listdir(folder) if f.startswith("checkpoint") and f.endswith(".pt"))
    if len(found) != 1:
        raise LskdError(f"{option} {folder}: expected model.pt or one checkpoint*.pt in the teacher folder, found "
                        f"{', '.join(found) or 'none'}")
    return os.path.join(folder, found[0])


class Checkpoint:
    """One checkpoint file, read on first use of `state` and released once its model is built, so an
    ensemble holds one checkpoint dict at a time (they carry optimizer states) and none is read twice.
    `folder`: given as a teacher folder (its dictionaries must be beside it)."""

    def __init__(self, path: str, option: str = "--teacher-path", trust: bool = False, folder: bool = False):
        self.path, self.option, self.trust, self.folder = path, option, trust, folder
        self._state: Optional[dict] = None

    @property
    def state(self) -> dict:
        if self._state is None:
            self._state = read_checkpoint(self.path, self.option, self.trust)
        return self._state

    def release(self) -> None:
        self._state = None


def read_checkpoints(spec: str, option: str = "--teacher-path", trust: bool = False) -> List[Checkpoint]:
    """The checkpoints of `spec` ('a.pt', a model folder, or several joined by ':'), each existing; read when first
    used."""
    paths = split_paths(spec)
    if not paths:
        raise LskdError(f"{option} is empty; expected one checkpoint or several joined by ':'")
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise LskdError(f"{option} {missing[0]}: no such file (expected a fairseq checkpoint .pt or a model folder)")
    return [Checkpoint(checkpoint_in(p, option), option, trust, folder=True) if os.path.isdir(p)
            else Checkpoint(p, option, trust) for p in paths]


def load_teachers(checkpoints: Sequence[Checkpoint], task, option: str = "--teacher-path",
                  why: str = "") -> List[torch.nn.Module]:
    """Build, load and freeze every teacher, checked against the task's dictionaries, in eval mode on CPU."""
    teachers = []
    for c in checkpoints:
        path, state = c.path, c.state
        check_dictionaries(path, state, task, option, c.folder, why)
        model_cfg = state["cfg"].model
        try:
            model = models.build_model(model_cfg, task)
            model.load_state_dict(state["model"], strict=True, model_cfg=model_cfg)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0]
            raise LskdError(f"{option} {path}: weights do not fit the architecture in its own config ({first[:200]})")
        model.eval()
        model.requires_grad_(False)
        teachers.append(model)
        c.release()
    return teachers


class TeacherSession:
    """A fairseq task and the frozen teacher(s) checked against its dictionaries."""

    def __init__(self, task, models: List[torch.nn.Module], paths: List[str]):
        self.task = task
        self.models = models
        self.paths = paths

    @classmethod
    def for_task(cls, task, spec: str, option: str = "--teacher-path", trust: bool = False) -> "TeacherSession":
        """Teachers for an existing task (the student's, in the criterion)."""
        checkpoints = read_checkpoints(spec, option, trust)
        return cls(task, load_teachers(checkpoints, task, option, STUDENT_VOCABULARY), [c.path for c in checkpoints])

    @classmethod
    def for_data(cls, data: str, spec: str, splits: Sequence[str], option: str = "--teacher-path",
                 checkpoints: Optional[List[Checkpoint]] = None, trust: bool = False) -> "TeacherSession":
        """The first teacher's own task config pointed at `data`, with `splits` loaded, and the teachers.

        `checkpoints` (from read_checkpoints) saves reading them again when the caller has them already.
        """
        from fairseq import tasks

        checkpoints = checkpoints or read_checkpoints(spec, option, trust)
        first = checkpoints[0].state  # a non-checkpoint is named before anything else is looked at
        if not os.path.isdir(data):
            raise LskdError(f"--data {data}: no such directory (expected fairseq binaries from fairseq-preprocess)")
        task_cfg = copy.deepcopy(first["cfg"].task)  # the checkpoint's own stays as it was:
        task_cfg.data = data  # check_dictionaries reads the teacher's data dir from it
        task = tasks.setup_task(task_cfg)
        for split in splits:
            try:
                task.load_dataset(split)
            except FileNotFoundError as e:
                raise LskdError(f"--data {data}: no {split!r} split ({str(e).splitlines()[0][:200]})")
        return cls(task, load_teachers(checkpoints, task, option), [c.path for c in checkpoints])

    def max_positions(self):
        """The longest inputs the task and every teacher accept."""
        from fairseq import utils

        return utils.resolve_max_positions(self.task.max_positions(), *[m.max_positions() for m in self.models])

    def to(self, device: torch.device, fp16: bool = False) -> "TeacherSession":
        for m in self.models:
            m.to(device=device, dtype=torch.float16 if fp16 else torch.float32)
        return self

    def epoch_iterator(self, split: str, max_tokens: int, num_workers: int = 0, num_shards: int = 1, shard_id: int = 0):
        """fairseq's EpochBatchIterator over a split in its fixed (length-sorted) order, every sentence once (none
        dropped for batch-size rounding); with num_shards > 1 fairseq's own sharding: every num_shards-th batch
        from shard_id, padded with empty batches."""
        return self.task.get_batch_iterator(
            dataset=self.task.dataset(split), max_tokens=max_tokens, max_positions=self.max_positions(),
            ignore_invalid_inputs=False, required_batch_size_multiple=1, seed=1, num_workers=num_workers,
            num_shards=num_shards, shard_id=shard_id, disable_iterator_cache=True,
        )

    def batches(self, split: str, max_tokens: int, num_workers: int = 0, num_shards: int = 1, shard_id: int = 0):
        """The batches of `epoch_iterator`, unshuffled."""
        return self.epoch_iterator(split, max_tokens, num_workers, num_shards, shard_id).next_epoch_itr(shuffle=False)
