"""Shards of a teacher command's output (`lskd cache`, `lskd distill-data`): one layout, one cut of the work.

    ROOT/shards/SPLIT-0000I-of-0000N/    shard I of N of one split: its files, manifest.json written last

The cut is fairseq's own sharding (EpochBatchIterator's num_shards/shard_id) of the batches the command makes
without shards (the cache: fairseq's epoch iterator; distill-data: fairseq-generate's batching): shard I holds
batches I, I + N, I + 2N, ..., so every sentence is computed in the batch it has without shards and the merged
output is the unsharded one byte for byte. A shard is written in a temporary directory beside
its final name and renamed when complete: a killed run leaves nothing that looks finished, and a rerun sweeps
what it left and skips finished shards. When all N are finished each command merges them its own way (cache:
rows by sample id; distill-data: pairs by sample id) and the shard directories are deleted.
"""

from __future__ import annotations

import contextlib
import glob
import json
import shutil
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

from lskd.errors import LskdError
from lskd.fileio import atomic_dir


def check_shard_options(num_shards: int, shard_id: Optional[int]) -> None:
    if num_shards < 1:
        raise LskdError(f"--num-shards must be >= 1, got {num_shards}")
    if shard_id is not None and not 0 <= shard_id < num_shards:
        raise LskdError(f"--shard-id must be in [0, {num_shards - 1}] for --num-shards {num_shards}, got {shard_id}")


def cut(batches: Sequence, num_shards: int, shard_id: int) -> list:
    """Shard `shard_id`'s batches: every num_shards-th of the unsharded run's, as fairseq's ShardedIterator."""
    return list(batches[shard_id::num_shards])


@contextlib.contextmanager
def fresh_dir(final: Path) -> Iterator[Path]:
    """A temporary directory that takes the place of `final` when the block ends without an error, after sweeping
    the temporaries a killed run left for it."""
    for stale in glob.glob(str(final.parent / f".{final.name}.*.tmp")):
        shutil.rmtree(stale, ignore_errors=True)
    with atomic_dir(final) as tmp:
        yield tmp


def read_manifest(shard_dir: Path) -> Optional[dict]:
    """The manifest.json of a finished shard directory; None while it is not finished (or it is unreadable)."""
    path = Path(shard_dir) / "manifest.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        return None


class ShardStore:
    """The N shards of one split under ROOT/shards/."""

    def __init__(self, root: Path, split: str, num_shards: int):
        self.root, self.split, self.num_shards = Path(root), split, num_shards

    def path(self, shard_id: int) -> Path:
        return self.root / "shards" / f"{self.split}-{shard_id:05d}-of-{self.num_shards:05d}"

    def manifest(self, shard_id: int) -> Optional[dict]:
        """A finished shard's manifest; None while it is not finished (or its manifest is unreadable)."""
        return read_manifest(self.path(shard_id))

    def missing(self, shard_ids: Optional[Sequence[int]] = None) -> List[int]:
        """The shards (default: all N) not finished yet."""
        ids = range(self.num_shards) if shard_ids is None else shard_ids
        return [i for i in ids if self.manifest(i) is None]

    def writing(self, shard_id: int):
        """A temporary directory that becomes shard `shard_id` when the block ends without an error."""
        return fresh_dir(self.path(shard_id))

    def remove(self) -> None:
        """Delete the N shards (after their merge); ROOT/shards/ too when nothing else is left in it."""
        for i in range(self.num_shards):
            shutil.rmtree(self.path(i), ignore_errors=True)
        with contextlib.suppress(OSError):
            (self.root / "shards").rmdir()
