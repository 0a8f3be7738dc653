"""The top-K teacher cache: its on-disk format and its reader (ls_kd's --kd-topk-cache). Built by `lskd cache`
(fairseq_plugins/cache_build.py).

Layout of CACHE/<split>/ (numpy .npy files, memory-mapped by the reader):
    ids.npy      (n_tokens, K) int16 when the vocabulary fits, else int32: top-K token ids per target token
    values.npy   (n_tokens, K) float16: the teacher's full-vocabulary log-probabilities of those tokens
    offsets.npy  (n_sentences + 1,) int64: token range of sentence i (its fairseq sample id) is offsets[i:i+2]
    manifest.json teacher paths + sha256, K, split, counts, dictionary hash, dtypes, byte sizes, command

Values are log-probabilities (logits shifted by the log-partition), not probabilities: a softmax over
the K stored values at temperature T is exactly the teacher's top-K distribution renormalised at T
(the shift cancels), fp16 keeps them to ~1e-3 relative where they matter (near 0), and tail tokens
that fp16 probabilities would flush to zero at T = 64 stay representable. An ensemble stores the
log of its averaged probabilities; at T != 1 its cached targets are then (mean p)^(1/T) renormalised,
where the online ensemble averages p^(1/T): the same at T = 1.

Values are checked twice: the build refuses NaN/+inf teacher outputs (a diverged teacher), and the
reader (ls_kd) scans values.npy once at start for NaN/inf (bit rot), naming the first bad row.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np

from lskd.errors import FileFormatError, LskdError
from lskd.fileio import read_json

FILES = ("ids.npy", "values.npy", "offsets.npy")
MANIFEST_KEYS = ("bytes", "k", "n_tokens", "n_sentences", "dictionary_sha256", "dictionary_size", "split")


def dictionary_hash(dictionary) -> str:
    """sha256 of the symbol list, in order: two dictionaries hash equal iff ids mean the same tokens."""
    return hashlib.sha256("\n".join(dictionary.symbols).encode("utf-8")).hexdigest()


class TopKCache:
    """Read side of one split: validated against its manifest, arrays memory-mapped."""

    def __init__(self, split_dir: Path):
        self.dir = Path(split_dir)
        manifest = self.dir / "manifest.json"
        if not manifest.is_file():
            raise LskdError(f"--kd-topk-cache {self.dir}: no manifest.json (not a complete lskd cache split)")
        self.manifest = read_json(manifest, "an lskd cache manifest")
        missing = [key for key in MANIFEST_KEYS if key not in self.manifest]
        if missing:
            raise FileFormatError(manifest, f"no {', '.join(missing)} entries (not an lskd cache manifest; rebuild with lskd cache)")
        for name in FILES:
            path = self.dir / name
            expected = self.manifest["bytes"].get(name)
            actual = path.stat().st_size if path.is_file() else None
            if actual != expected:
                raise LskdError(f"--kd-topk-cache {path}: {actual} bytes, manifest says {expected} "
                                "(truncated or corrupted cache; rebuild it with lskd cache)")
        self.ids = np.load(self.dir / "ids.npy", mmap_mode="r")
        self.values = np.load(self.dir / "values.npy", mmap_mode="r")
        self.offsets = np.load(self.dir / "offsets.npy")
        self.k = int(self.manifest["k"])
        n_tok, n_sent = self.manifest["n_tokens"], self.manifest["n_sentences"]
        if self.ids.shape != (n_tok, self.k) or self.values.shape != (n_tok, self.k) or self.offsets.shape != (n_sent + 1,):
            raise LskdError(f"--kd-topk-cache {self.dir}: array shapes do not match manifest.json (corrupted cache)")

    def check_finite(self, chunk_bytes: int = 1 << 24) -> None:
        """Refuse a cache holding NaN/inf values (bit rot, or a file not written by lskd cache, which never
        stores them), naming the first bad row. One sequential pass over values.npy with plain reads into
        a fixed buffer (fp16 bits, exponent all ones = not finite): memory-bandwidth bound, and the pages
        stay in the OS cache, not in this process's memory."""
        path = self.dir / "values.npy"
        header = self.values.offset
        row_items = self.k
        buf = np.empty(max(chunk_bytes // (2 * row_items), 1) * row_items, dtype=np.uint16)
        row = 0
        with open(path, "rb") as f:
            f.seek(header)
            while True:
                n = f.readinto(memoryview(buf).cast("B")) // 2
                if n == 0:
                    break
                bad = np.flatnonzero((buf[:n] & 0x7C00) == 0x7C00)
                if len(bad):
                    r = row + int(bad[0]) // row_items
                    s = int(np.searchsorted(self.offsets, r, side="right")) - 1
                    raise LskdError(f"--kd-topk-cache {path}: row {r} (sentence {s}, target position "
                                    f"{r - int(self.offsets[s])}) holds non-finite values "
                                    f"{np.asarray(self.values[r], dtype=np.float32).tolist()} (corrupted cache; "
                                    "rebuild it with lskd cache --force)")
                row += n // row_items

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def check_matches(self, dictionary, target_sizes: np.ndarray, split: str) -> None:
        """Refuse a cache made for another dictionary or corpus, naming the first mismatch."""
        where = f"--kd-topk-cache {self.dir}"
        if self.manifest["dictionary_sha256"] != dictionary_hash(dictionary):
            raise LskdError(f"{where}: made with another target dictionary ({self.manifest['dictionary_size']} symbols, "
                            f"task has {len(dictionary)}; hashes differ)")
        if len(target_sizes) != self.manifest["n_sentences"]:
            raise LskdError(f"{where}: {self.manifest['n_sentences']} sentences, the task's {split} split has "
                            f"{len(target_sizes)} (cache made for split {self.manifest['split']!r} of another corpus?)")
        diff = np.nonzero(self.lengths != np.asarray(target_sizes))[0]
        if len(diff):
            i = int(diff[0])
            raise LskdError(f"{where}: sentence {i} has {int(self.lengths[i])} target tokens in the cache, "
                            f"{int(target_sizes[i])} in the task's {split} split (cache made for another corpus)")

    def rows(self, sample_ids: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        """Top-K ids and values of the given sentences' tokens, concatenated in the given order."""
        spans = [(self.offsets[i], self.offsets[i + 1]) for i in sample_ids]
        ids = np.concatenate([self.ids[a:b] for a, b in spans])
        values = np.concatenate([self.values[a:b] for a, b in spans])
        return ids, values


def open_cache(root: Path) -> Dict[str, TopKCache]:
    """Every complete split under a cache root, by split name."""
    root = Path(root)
    if not root.is_dir():
        raise LskdError(f"--kd-topk-cache {root}: no such directory (build it with lskd cache)")
    splits = {p.parent.name: TopKCache(p.parent) for p in sorted(root.glob("*/manifest.json"))}
    for cache in splits.values():
        cache.check_finite()
    if not splits:
        raise LskdError(f"--kd-topk-cache {root}: no complete split (expected {root}/train/manifest.json)")
    return splits
