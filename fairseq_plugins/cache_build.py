"""`lskd cache`: run a teacher once over binarised splits (teacher forcing) and store its top-K per token.

    lskd cache --data BIN --teacher-path ckpt.pt[:ckpt2.pt] --out CACHE [--splits train valid] [--k 8]

The format and its reader: fairseq_plugins/topk_cache.py. Each split is written into a temporary directory
and renamed when complete, so an interrupted build leaves nothing that looks finished; a rerun skips complete
splits and rebuilds the others.

Sharded builds (several GPUs or machines; fairseq_plugins/shard_store.py, as `lskd distill-data`):
`--num-shards N --shard-id I` builds shard I of each split into CACHE/shards/<split>-0000I-of-0000N/
(atomically, skipped when complete): every N-th batch of the unsharded build's batches, so the teacher
computes exactly what it would unsharded. `--num-shards N` without --shard-id builds whatever shards are
missing and merges the N of them into CACHE/<split>/, byte for byte the unsharded cache (the merge
copies rows in bounded chunks; the shards are deleted after it). Shards of the layout before
(CACHE/<split>.shards/) are refused with how to rebuild them.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from lskd.errors import LskdError
from lskd.fileio import command_line, read_json, sha256_file, write_json
from lskd.losses import ensemble_log_probs
from lskd.options import option

from .shard_store import ShardStore, cut, fresh_dir
from .teacher import TeacherSession, split_paths
from .teacher_command import TeacherRunOptions, parse
from .topk_cache import FILES, TopKCache, dictionary_hash


def shard_sentences(session: TeacherSession, split: str, max_tokens: int, num_shards: int, shard_id: int) -> np.ndarray:
    """Sorted sample ids of the sentences in shard `shard_id`: those of its batches, as `session.batches` yields them."""
    batches = cut(session.epoch_iterator(split, max_tokens).frozen_batches, num_shards, shard_id)
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


def _top_k(teachers, sample, k: int, device: torch.device, pad: int) -> Tuple[np.ndarray, np.ndarray]:
    """The teachers' top-k token ids and log-probabilities (T = 1) at the batch's non-padding target positions."""
    net_input = {key: v.to(device) if torch.is_tensor(v) else v for key, v in sample["net_input"].items()}
    log_q = ensemble_log_probs([t(**net_input)[0] for t in teachers], 1.0)
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
    """Write CACHE/<split>/ (or, with a shard_id, that shard of the ShardStore) atomically; returns its path.

    A shard holds the rows of its sentences (`sentences.npy`, sorted sample ids) in sample-id order, with
    offsets over those sentences; the teacher sees exactly the batches the unsharded build gives it, so
    merged shards are byte for byte the unsharded cache."""
    from tqdm import tqdm

    task, teachers, teacher_paths = session.task, session.models, session.paths
    sharded = shard_id is not None
    final = ShardStore(out, split, num_shards).path(shard_id) if sharded else out / split
    dictionary = task.target_dictionary
    all_sizes, sentences, sizes, offsets = _layout(session, split, max_tokens, num_shards, shard_id)
    n_tokens = int(offsets[-1])
    if k > len(dictionary):
        raise LskdError(f"--k {k} is larger than the target vocabulary ({len(dictionary)} symbols)")
    id_dtype = np.int16 if len(dictionary) <= np.iinfo(np.int16).max else np.int32
    with fresh_dir(final) as tmp:
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
    store = ShardStore(out, split, num_shards)
    dirs = [store.path(i) for i in range(num_shards)]
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
    with fresh_dir(final) as tmp:
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
    store.remove()
    return final


def _complete(path: Path, k: int, teacher_paths: List[str], max_tokens: Optional[int] = None) -> bool:
    """Whether `path` holds a finished cache (split or shard) with these settings."""
    manifest = path / "manifest.json"
    if not manifest.is_file():
        return False
    m = read_json(manifest, "an lskd cache manifest")
    same = m.get("k") == k and [t["path"] for t in m.get("teachers", [])] == [os.path.abspath(p) for p in teacher_paths]
    return same and (max_tokens is None or m.get("shard", {}).get("max_tokens") == max_tokens)


@dataclass(frozen=True)
class CacheOptions(TeacherRunOptions):
    """The settings of one `lskd cache` run."""

    out: Path = option(None, "cache root; each split goes to OUT/<split>/", group="input and output", type=Path,
                       required=True)
    splits: List[str] = option(None, "splits to cache (default: train valid; ls_kd uses 'train' in training and "
                               "'valid', if present, for the validation KD term)", group="input and output",
                               type=str, nargs="+", default_factory=lambda: ["train", "valid"])
    k: int = option(8, "tokens kept per target position (default 8)", group="input and output")
    num_workers: int = option(0, "data loader workers (default 0)", group="hardware")

    def check(self) -> None:
        super().check()
        if self.k <= 0:
            raise LskdError(f"--k must be > 0, got {self.k}")


def _todo(opts: CacheOptions, paths: List[str]) -> Dict[str, list]:
    """Per split, the shards still to build (None: the whole split); what is complete is skipped with a line."""
    out, k, n = Path(opts.out), opts.k, opts.num_shards
    todo = {}
    for split in opts.splits:
        if (out / f"{split}.shards").is_dir():
            raise LskdError(f"--out {out}: {split}.shards/ holds shards of lskd's older cache layout; delete it and "
                            f"rerun (shards now go to {out / 'shards'}/)")
        if _complete(out / split, k, paths) and not opts.force:
            print(f"skip: {out / split} is complete (K={k}); --force rebuilds it", file=sys.stderr)
            continue
        if n == 1:
            todo[split] = [None]
            continue
        store = ShardStore(out, split, n)
        ids = [opts.shard_id] if opts.shard_id is not None else range(n)
        todo[split] = [i for i in ids if opts.force or not _complete(store.path(i), k, paths, opts.max_tokens)]
        for i in sorted(set(ids) - set(todo[split])):
            print(f"skip: {store.path(i)} is complete", file=sys.stderr)
    return todo


def build(opts: CacheOptions) -> Dict[str, Path]:
    """Build every split not complete yet. With num_shards > 1 and a shard_id: only that shard of each
    split; without a shard_id: the missing shards, then the merge into CACHE/<split>/."""
    opts.check()
    out = Path(opts.out)
    todo = _todo(opts, split_paths(opts.teacher_path))
    if any(todo.values()):
        device = opts.device()
        session = TeacherSession.for_data(opts.data, opts.teacher_path, [s for s, shards in todo.items() if shards],
                                          trust=opts.trust_checkpoint)
        session.to(device, opts.fp16)
        for split, shards in todo.items():
            for i in shards:
                path = build_split(session, split, out, opts.k, opts.max_tokens, device, opts.num_workers,
                                   opts.num_shards, i)
                m = read_json(path / "manifest.json", "an lskd cache manifest")
                print(f"wrote {path}: {m['n_sentences']} sentences, {m['n_tokens']} tokens, K={opts.k}, "
                      f"{m['bytes_per_token']:.1f} bytes/token, {m['build_seconds']} s", file=sys.stderr)
    if opts.num_shards > 1 and opts.shard_id is None:
        for split in todo:
            path = merge_shards(out, split, opts.num_shards)
            print(f"merged {opts.num_shards} shards into {path}", file=sys.stderr)
    return {s: out / s for s in opts.splits}


def main(argv: List[str]) -> int:
    build(parse(CacheOptions, argv, "lskd cache", __doc__))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
