"""`lskd cache`: run a teacher once over binarised splits (teacher forcing) and store its top-K per token.

    lskd cache --data BIN --teacher-path ckpt.pt[:ckpt2.pt] --out CACHE [--splits train valid] [--k 8]

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

Each split is written into a temporary directory and renamed when complete, so an interrupted build
leaves nothing that looks finished; a rerun skips complete splits and rebuilds the others.

Sharded builds (several GPUs or machines): `--num-shards N --shard-id I` builds shard I of each split
into CACHE/<split>.shards/I-of-N/ (atomically, skipped when complete), using fairseq's own batch
sharding: shard I gets every N-th batch of the unsharded build's batches, so the teacher computes
exactly what it would unsharded. `--num-shards N` without --shard-id builds whatever shards are
missing and merges the N of them into CACHE/<split>/, byte for byte the unsharded cache (the merge
copies rows in bounded chunks; the shards are deleted after it).

Values are checked twice: the build refuses NaN/+inf teacher outputs (a diverged teacher), and the
reader (ls_kd) scans values.npy once at start for NaN/inf (bit rot), naming the first bad row.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from lskd.errors import FileFormatError, LskdError
from lskd.fileio import atomic_dir, command_line, read_json, sha256_file, write_json
from lskd.losses import teacher_log_probs

from .teacher import TeacherSession, split_paths

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


# ------------------------------------------------------------------------------------------- build
def shard_sentences(session: TeacherSession, split: str, max_tokens: int, num_shards: int, shard_id: int) -> np.ndarray:
    """Sorted sample ids of the sentences in shard `shard_id`: those of its batches, as `session.batches` yields them."""
    batches = session.epoch_iterator(split, max_tokens).frozen_batches[shard_id::num_shards]
    return np.sort(np.concatenate([np.asarray(b, dtype=np.int64) for b in batches] or [np.zeros(0, np.int64)]))


class NpyRows:
    """A new (rows, K) .npy file filled by row ranges with pwrite: the written pages belong to the OS page
    cache, not to this process, so a build's memory does not grow with the size of what it writes."""

    def __init__(self, path: Path, dtype, shape: Tuple[int, int]):
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        self.header, self.dtype = mm.offset, np.dtype(dtype)
        del mm
        self.row_bytes = shape[1] * self.dtype.itemsize
        self.fd = os.open(path, os.O_WRONLY)

    def write(self, row: int, rows: np.ndarray) -> None:
        data = np.ascontiguousarray(rows, dtype=self.dtype).tobytes()
        if os.pwrite(self.fd, data, self.header + row * self.row_bytes) != len(data):
            raise OSError("short write to a cache file (disk full?)")

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)


# stored log-probabilities below fp16's range are probabilities of exactly 0 at any T; keep them finite
FP16_LOWEST = float(np.finfo(np.float16).min)


def check_finite_batch(values: np.ndarray, sample_ids, lengths, split: str, teacher_paths) -> None:
    """Refuse to store NaN or +inf teacher log-probabilities (a diverged teacher), naming the sentence."""
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        ends = np.cumsum(lengths)
        i = int(np.searchsorted(ends, row, side="right"))
        pos = row - (int(ends[i - 1]) if i else 0)
        raise LskdError(f"--teacher-path {':'.join(teacher_paths)}: non-finite log-probabilities ({values[row].tolist()}) "
                        f"for sentence {sample_ids[i]} of split {split!r}, target position {pos} (a diverged teacher?)")


def _shard_dir(out: Path, split: str, num_shards: int, shard_id: int) -> Path:
    return out / f"{split}.shards" / f"{shard_id}-of-{num_shards}"


def _top_k(teachers, sample, k: int, device: torch.device, pad: int) -> Tuple[np.ndarray, np.ndarray]:
    """The teachers' top-k token ids and log-probabilities (T = 1) at the batch's non-padding target positions."""
    net_input = {key: v.to(device) if torch.is_tensor(v) else v for key, v in sample["net_input"].items()}
    log_q = teacher_log_probs([t(**net_input)[0] for t in teachers], 1.0)
    values, top = log_q.topk(k, dim=-1)
    mask = sample["target"].to(device).ne(pad)
    return top[mask].cpu().numpy(), values[mask].cpu().numpy()


def _write_rows(ids_out: NpyRows, val_out: NpyRows, top: np.ndarray, values: np.ndarray, ids: List[int],
                sentences: np.ndarray, offsets: np.ndarray, where: str) -> int:
    """Write a batch's rows at its sentences' offsets (sentences: the sorted sample ids the files hold); returns rows."""
    pos = 0
    for sid, i in zip(ids, np.searchsorted(sentences, ids)):
        if i >= len(sentences) or sentences[i] != sid:
            raise LskdError(f"{where}: sentence {sid} is not among the sentences this build holds (batches changed?)")
        a, b = offsets[i], offsets[i + 1]
        ids_out.write(a, top[pos:pos + b - a])
        val_out.write(a, values[pos:pos + b - a])
        pos += b - a
    if pos != len(top):
        raise LskdError(f"{where}: batch targets ({len(top)} tokens) do not match the dataset sizes")
    return pos


def _layout(session: TeacherSession, split: str, max_tokens: int, num_shards: int, shard_id: Optional[int]):
    """(target sizes of the whole split, the sentences this build holds, their sizes, row offsets over them)."""
    all_sizes = np.asarray(session.task.dataset(split).tgt_sizes, dtype=np.int64)
    sentences = (shard_sentences(session, split, max_tokens, num_shards, shard_id) if shard_id is not None
                 else np.arange(len(all_sizes), dtype=np.int64))
    sizes = all_sizes[sentences]
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    return all_sizes, sentences, sizes, offsets


def build_split(session: TeacherSession, split: str, out: Path, k: int, max_tokens: int, device: torch.device,
                num_workers: int = 0, num_shards: int = 1, shard_id: Optional[int] = None) -> Path:
    """Write CACHE/<split>/ (or, with a shard_id, the shard CACHE/<split>.shards/I-of-N/) atomically; returns its path.

    A shard holds the rows of its sentences (`sentences.npy`, sorted sample ids) in sample-id order, with
    offsets over those sentences; the teacher sees exactly the batches the unsharded build gives it, so
    merged shards are byte for byte the unsharded cache."""
    from tqdm import tqdm

    task, teachers, teacher_paths = session.task, session.models, session.paths
    sharded = shard_id is not None
    final = _shard_dir(out, split, num_shards, shard_id) if sharded else out / split
    for stale in glob.glob(str(final.parent / f".{final.name}.*.tmp")):
        shutil.rmtree(stale, ignore_errors=True)
    dictionary = task.target_dictionary
    all_sizes, sentences, sizes, offsets = _layout(session, split, max_tokens, num_shards, shard_id)
    n_tokens = int(offsets[-1])
    if k > len(dictionary):
        raise LskdError(f"--k {k} is larger than the target vocabulary ({len(dictionary)} symbols)")
    id_dtype = np.int16 if len(dictionary) <= np.iinfo(np.int16).max else np.int32
    final.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(final) as tmp:
        ids_out = NpyRows(tmp / "ids.npy", id_dtype, (n_tokens, k))
        val_out = NpyRows(tmp / "values.npy", np.float16, (n_tokens, k))
        np.save(tmp / "offsets.npy", offsets)
        if sharded:
            np.save(tmp / "sentences.npy", sentences)
        pad = dictionary.pad()
        start, done_sent, done_tok = time.time(), 0, 0
        desc = f"cache {split}" + (f" shard {shard_id}/{num_shards}" if sharded else "")
        bar = tqdm(total=len(sizes), unit="sent", desc=desc, dynamic_ncols=True, mininterval=1.0)
        with torch.inference_mode():
            for sample in session.batches(split, max_tokens, num_workers, num_shards, shard_id or 0):
                if not sample:
                    continue
                top, values = _top_k(teachers, sample, k, device, pad)
                ids = sample["id"].tolist()
                check_finite_batch(values, ids, all_sizes[ids], split, teacher_paths)
                pos = _write_rows(ids_out, val_out, top, np.maximum(values, FP16_LOWEST), ids, sentences, offsets,
                                  f"split {split}" + (f" shard {shard_id}" if sharded else ""))
                done_sent += len(ids)
                done_tok += pos
                bar.update(len(ids))
                bar.set_postfix(tok_per_s=f"{done_tok / max(time.time() - start, 1e-9):.0f}", refresh=False)
        bar.close()
        ids_out.close()
        val_out.close()
        if done_sent != len(sizes):
            raise LskdError(f"split {split}: the teacher saw {done_sent} of {len(sizes)} sentences "
                            "(sentences longer than the teacher's max positions?)")
        manifest = _manifest(session, split, tmp, k, len(sizes), n_tokens, id_dtype, time.time() - start, device)
        if sharded:
            manifest["shard"] = {"id": shard_id, "num_shards": num_shards, "max_tokens": max_tokens,
                                 "split_sentences": len(all_sizes)}
        write_json(tmp / "manifest.json", manifest)
    return final


def _manifest(session: TeacherSession, split: str, tmp: Path, k: int, n_sentences: int, n_tokens: int, id_dtype,
              seconds: float, device: torch.device) -> dict:
    """manifest.json of a split (or shard) whose arrays are complete in `tmp`."""
    dictionary = session.task.target_dictionary
    return {
        "format": "lskd-topk-cache/1",
        "split": split,
        "k": k,
        "n_sentences": n_sentences,
        "n_tokens": n_tokens,
        "ids_dtype": np.dtype(id_dtype).name,
        "values_dtype": "float16",
        "values": "teacher full-vocabulary log-probabilities at T=1 (ensemble: log of mean probability)",
        "teachers": [{"path": os.path.abspath(p), "sha256": sha256_file(Path(p))} for p in session.paths],
        "dictionary_sha256": dictionary_hash(dictionary),
        "dictionary_size": len(dictionary),
        "data": os.path.abspath(session.task.cfg.data),
        "bytes": {name: (tmp / name).stat().st_size for name in FILES},
        "bytes_per_token": k * (np.dtype(id_dtype).itemsize + 2),  # payload: K ids + K fp16 values
        "build_seconds": round(seconds, 2),
        "device": str(device),
        "created_by": command_line(),
    }


def _copy_shard_rows(dst: NpyRows, sh: "TopKCache", sent: np.ndarray, name: str, dtype: np.dtype, k: int,
                     offsets: np.ndarray, chunk_rows: int) -> None:
    """Copy one shard's rows of file `name` to their places in the merged file, a chunk of sentences at a time."""
    src = np.load(sh.dir / name, mmap_mode="r")
    header = src.offset
    del src
    with open(sh.dir / name, "rb") as f:
        a = 0
        while a < len(sent):  # a run of sentences whose rows fit in one chunk
            b = a + max(1, int(np.searchsorted(sh.offsets[a + 1:], sh.offsets[a] + chunk_rows, side="right")))
            b = min(b, len(sent))
            r0, r1 = int(sh.offsets[a]), int(sh.offsets[b])
            f.seek(header + r0 * k * dtype.itemsize)
            rows = np.fromfile(f, dtype=dtype, count=(r1 - r0) * k).reshape(r1 - r0, k)
            # consecutive sample ids are consecutive rows in the merged file: one write per run
            ids = sent[a:b]
            breaks = np.nonzero(np.diff(ids) != 1)[0] + 1
            for lo, hi in zip(np.r_[0, breaks], np.r_[breaks, len(ids)]):
                dst.write(int(offsets[ids[lo]]), rows[sh.offsets[a + lo] - r0:sh.offsets[a + hi] - r0])
            a = b


def merge_shards(out: Path, split: str, num_shards: int, chunk_rows: Optional[int] = None) -> Path:
    """Join the N complete shards of a split into CACHE/<split>/ (atomically), then delete the shards.

    Rows are copied a chunk at a time (default: 8 MiB of values) with plain reads and pwrite, so memory
    stays bounded whatever the corpus size."""
    dirs = [_shard_dir(out, split, num_shards, i) for i in range(num_shards)]
    missing = [str(d) for d in dirs if not (d / "manifest.json").is_file()]
    if missing:
        raise LskdError(f"cannot merge split {split!r}: shards not complete: {', '.join(missing)}")
    shards = [TopKCache(d) for d in dirs]
    first = shards[0].manifest
    same = ("k", "ids_dtype", "teachers", "dictionary_sha256")
    for sh in shards[1:]:
        for key in same:
            if sh.manifest[key] != first[key] or sh.manifest["shard"]["max_tokens"] != first["shard"]["max_tokens"]:
                raise LskdError(f"cannot merge split {split!r}: shard {sh.dir} was built with other settings "
                                f"({key} or --max-tokens differ from {shards[0].dir})")
    n_sent = first["shard"]["split_sentences"]
    sentences = [np.load(sh.dir / "sentences.npy") for sh in shards]
    lengths = np.zeros(n_sent, dtype=np.int64)
    seen = np.zeros(n_sent, dtype=np.int64)
    for sh, sent in zip(shards, sentences):
        lengths[sent] = sh.lengths
        np.add.at(seen, sent, 1)
    if not (seen == 1).all():
        raise LskdError(f"cannot merge split {split!r}: shards do not cover every sentence exactly once")
    offsets = np.zeros(n_sent + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    n_tokens, k = int(offsets[-1]), first["k"]
    chunk_rows = chunk_rows or max(1, (8 << 20) // (2 * k))
    final = out / split
    start = time.time()
    with atomic_dir(final) as tmp:
        np.save(tmp / "offsets.npy", offsets)
        for name, dtype in (("ids.npy", np.dtype(first["ids_dtype"])), ("values.npy", np.dtype(np.float16))):
            dst = NpyRows(tmp / name, dtype, (n_tokens, k))
            for sh, sent in zip(shards, sentences):
                _copy_shard_rows(dst, sh, sent, name, dtype, k, offsets, chunk_rows)
            dst.close()
        manifest = {key: v for key, v in first.items() if key != "shard"}
        manifest.update({
            "n_sentences": n_sent, "n_tokens": n_tokens,
            "bytes": {name: (tmp / name).stat().st_size for name in FILES},
            "build_seconds": round(sum(sh.manifest["build_seconds"] for sh in shards) + time.time() - start, 2),
            "created_by": command_line(),
            "merged_from": [str(d) for d in dirs],
        })
        write_json(tmp / "manifest.json", manifest)
    shutil.rmtree(out / f"{split}.shards", ignore_errors=True)
    return final


def _complete(path: Path, k: int, teacher_paths: List[str], max_tokens: Optional[int] = None) -> bool:
    """Whether `path` holds a finished cache (split or shard) with these settings."""
    manifest = path / "manifest.json"
    if not manifest.is_file():
        return False
    m = read_json(manifest, "an lskd cache manifest")
    same = m.get("k") == k and [t["path"] for t in m.get("teachers", [])] == [os.path.abspath(p) for p in teacher_paths]
    return same and (max_tokens is None or m.get("shard", {}).get("max_tokens") == max_tokens)


def build(data: str, teacher_spec: str, out: Path, splits: Sequence[str], k: int, max_tokens: int = 4096,
          cpu: bool = False, fp16: bool = False, force: bool = False, num_workers: int = 0,
          num_shards: int = 1, shard_id: Optional[int] = None) -> Dict[str, Path]:
    """Build every split not complete yet. With num_shards > 1 and a shard_id: only that shard of each
    split; without a shard_id: the missing shards, then the merge into CACHE/<split>/."""
    if k <= 0:
        raise LskdError(f"--k must be > 0, got {k}")
    if num_shards < 1:
        raise LskdError(f"--num-shards must be >= 1, got {num_shards}")
    if shard_id is not None and not 0 <= shard_id < num_shards:
        raise LskdError(f"--shard-id must be in [0, {num_shards - 1}] (--num-shards {num_shards}), got {shard_id}")
    out = Path(out)
    paths = split_paths(teacher_spec)
    todo = {}  # split -> shards still to build (None: the whole split)
    for split in splits:
        if _complete(out / split, k, paths) and not force:
            print(f"skip: {out / split} is complete (K={k}); --force rebuilds it", file=sys.stderr)
            continue
        if num_shards == 1:
            todo[split] = [None]
            continue
        ids = [shard_id] if shard_id is not None else range(num_shards)
        todo[split] = [i for i in ids if force or not _complete(_shard_dir(out, split, num_shards, i), k, paths, max_tokens)]
        for i in sorted(set(ids) - set(todo[split])):
            print(f"skip: {_shard_dir(out, split, num_shards, i)} is complete", file=sys.stderr)
    if any(todo.values()):
        device = torch.device("cuda" if torch.cuda.is_available() and not cpu else "cpu")
        if fp16 and device.type != "cuda":
            raise LskdError("--fp16 needs a GPU (omit it, or drop --cpu)")
        session = TeacherSession.for_data(data, teacher_spec, [s for s, shards in todo.items() if shards]).to(device, fp16)
        for split, shards in todo.items():
            for i in shards:
                path = build_split(session, split, out, k, max_tokens, device, num_workers, num_shards, i)
                m = read_json(path / "manifest.json", "an lskd cache manifest")
                print(f"wrote {path}: {m['n_sentences']} sentences, {m['n_tokens']} tokens, K={k}, "
                      f"{m['bytes_per_token']:.1f} bytes/token, {m['build_seconds']} s", file=sys.stderr)
    if num_shards > 1 and shard_id is None:
        for split in todo:
            path = merge_shards(out, split, num_shards)
            print(f"merged {num_shards} shards into {path}", file=sys.stderr)
    return {s: out / s for s in splits}


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="lskd cache", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", required=True, help="fairseq binarised data dir (fairseq-preprocess --destdir)")
    p.add_argument("--teacher-path", required=True, help="teacher checkpoint, or several joined by ':' (an ensemble)")
    p.add_argument("--out", required=True, type=Path, help="cache root; each split goes to OUT/<split>/")
    p.add_argument("--splits", nargs="+", default=["train", "valid"],
                   help="splits to cache (default: train valid; ls_kd uses 'train' in training and 'valid', "
                        "if present, for the validation KD term)")
    p.add_argument("--k", type=int, default=8, help="tokens kept per target position (default 8)")
    p.add_argument("--max-tokens", type=int, default=4096, help="tokens per teacher batch (default 4096)")
    p.add_argument("--cpu", action="store_true", help="run the teacher on the CPU even if a GPU is present")
    p.add_argument("--fp16", action="store_true", help="run the teacher in fp16 (GPU only); values are fp16 either way")
    p.add_argument("--num-workers", type=int, default=0, help="data loader workers (default 0)")
    p.add_argument("--force", action="store_true", help="rebuild splits that are already complete")
    p.add_argument("--num-shards", type=int, default=1,
                   help="split the work into N shards (one per GPU or machine; all must use the same --max-tokens)")
    p.add_argument("--shard-id", type=int, default=None,
                   help="build only shard I (0..N-1) into OUT/<split>.shards/I-of-N/; without it, build the shards "
                        "not complete yet and merge all N into OUT/<split>/ (byte for byte the unsharded cache)")
    args = p.parse_args(argv)
    build(args.data, args.teacher_path, args.out, args.splits, args.k, args.max_tokens, args.cpu, args.fp16,
          args.force, args.num_workers, args.num_shards, args.shard_id)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
