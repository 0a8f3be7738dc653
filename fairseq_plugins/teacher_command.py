"""The options every command that runs a fairseq model over a data directory shares, declared once:
`lskd nmt-features` (ModelRunOptions), `lskd cache` and `lskd distill-data` (TeacherRunOptions: a teacher,
an output, shards), with one set of checks and one device rule.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import torch

from lskd.errors import LskdError
from lskd.options import add_options, from_args, option

from .shard_store import check_shard_options


@dataclass(frozen=True)
class ModelRunOptions:
    """A model run over a fairseq data directory on one device."""

    data: str = option(None, "fairseq binarised data dir (fairseq-preprocess --destdir)", group="input and output",
                       required=True)
    max_tokens: int = option(4096, "tokens per batch (default 4096)", group="hardware")
    cpu: bool = option(False, "run on the CPU even if a GPU is present", group="hardware")
    fp16: bool = option(False, "run the model in fp16 (GPU only)", group="hardware")
    trust_checkpoint: bool = option(False, "load checkpoints that need pickled classes besides tensors and "
                                    "fairseq's config (older fairseq versions, other code): only files you trust",
                                    group="input and output")

    def check(self) -> None:
        """The checks that need no file: one line naming the option."""
        if self.max_tokens is not None and self.max_tokens < 1:
            raise LskdError(f"--max-tokens must be >= 1, got {self.max_tokens}")
        if ":" in self.data:
            raise LskdError(f"--data {self.data}: give one data directory (fairseq's ':'-joined data shards are not "
                            "supported)")
        self.device()

    def device(self) -> torch.device:
        """CUDA when there is one and --cpu is not given; --fp16 needs it."""
        device = torch.device("cuda" if torch.cuda.is_available() and not self.cpu else "cpu")
        if self.fp16 and device.type != "cuda":
            raise LskdError("--fp16 needs a GPU (omit it, or drop --cpu)")
        return device


@dataclass(frozen=True)
class TeacherRunOptions(ModelRunOptions):
    """A teacher (or ensemble) over a data directory, writing OUT in shards (fairseq_plugins/shard_store.py)."""

    teacher_path: str = option(None, "teacher checkpoint, or several joined by ':' (an ensemble)",
                               group="input and output", required=True)
    out: Path = option(None, "output directory", group="input and output", type=Path, required=True)
    num_shards: int = option(1, "cut the work into N shards, every N-th batch each (one per GPU or machine; all with "
                             "the same options) (default 1)", group="sharding and resuming")
    shard_id: Optional[int] = option(None, "run only shard I (0-based) into OUT/shards/; default: every shard not "
                                     "finished yet, then the merge", group="sharding and resuming", type=int)
    force: bool = option(False, "discard what OUT holds for these splits and redo it", group="sharding and resuming")

    def check(self) -> None:
        super().check()
        check_shard_options(self.num_shards, self.shard_id)


def parse(cls, argv: List[str], prog: str, doc: str):
    """`cls` from the command line: the parser is built from its fields; the module doc is the help."""
    first, _, rest = doc.partition("\n\n")
    p = argparse.ArgumentParser(prog=prog, description=first, epilog=rest,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(p, cls)
    return from_args(cls, p.parse_args(argv))
