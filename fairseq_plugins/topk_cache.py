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
from typing import Dict, List, Sequence, Tuple

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
    if not splits:
        raise LskdError(f"--kd-topk-cache {root}: no complete split (expected {root}/train/manifest.json)")
    return splits


# ------------------------------------------------------------------------------------------- build
def build_split(session: TeacherSession, split: str, out: Path, k: int, max_tokens: int, device: torch.device,
                num_workers: int = 0) -> Path:
    """Write CACHE/<split>/ atomically with the session's teachers (already on `device`); returns its path."""
    from tqdm import tqdm

    task, teachers = session.task, session.models
    final = out / split
    for stale in glob.glob(str(out / f".{split}.*.tmp")):
        shutil.rmtree(stale, ignore_errors=True)
    dataset = task.dataset(split)
    dictionary = task.target_dictionary
    sizes = np.asarray(dataset.tgt_sizes, dtype=np.int64)
    offsets = np.zeros(len(sizes) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    n_tokens = int(offsets[-1])
    if k > len(dictionary):
        raise LskdError(f"--k {k} is larger than the target vocabulary ({len(dictionary)} symbols)")
    id_dtype = np.int16 if len(dictionary) <= np.iinfo(np.int16).max else np.int32
    out.mkdir(parents=True, exist_ok=True)
    with atomic_dir(final) as tmp:
        ids_mm = np.lib.format.open_memmap(tmp / "ids.npy", mode="w+", dtype=id_dtype, shape=(n_tokens, k))
        val_mm = np.lib.format.open_memmap(tmp / "values.npy", mode="w+", dtype=np.float16, shape=(n_tokens, k))
        np.save(tmp / "offsets.npy", offsets)
        pad = dictionary.pad()
        start, done_sent, done_tok = time.time(), 0, 0
        bar = tqdm(total=len(sizes), unit="sent", desc=f"cache {split}", dynamic_ncols=True, mininterval=1.0)
        with torch.inference_mode():
            for sample in session.batches(split, max_tokens, num_workers):
                if not sample:
                    continue
                net_input = {key: v.to(device) if torch.is_tensor(v) else v for key, v in sample["net_input"].items()}
                logits = [t(**net_input)[0] for t in teachers]
                log_q = teacher_log_probs(logits, 1.0)
                values, top = log_q.topk(k, dim=-1)
                mask = sample["target"].to(device).ne(pad)
                top, values = top[mask].cpu().numpy(), values[mask].cpu().numpy()
                pos = 0
                for sid in sample["id"].tolist():
                    a, b = offsets[sid], offsets[sid + 1]
                    ids_mm[a:b] = top[pos:pos + b - a]
                    val_mm[a:b] = values[pos:pos + b - a]
                    pos += b - a
                if pos != len(top):
                    raise LskdError(f"split {split}: batch targets ({len(top)} tokens) do not match the dataset sizes")
                done_sent += len(sample["id"])
                done_tok += pos
                bar.update(len(sample["id"]))
                bar.set_postfix(tok_per_s=f"{done_tok / max(time.time() - start, 1e-9):.0f}", refresh=False)
        bar.close()
        if done_sent != len(sizes):
            raise LskdError(f"split {split}: the teacher saw {done_sent} of {len(sizes)} sentences "
                            "(sentences longer than the teacher's max positions?)")
        ids_mm.flush()
        val_mm.flush()
        del ids_mm, val_mm
        manifest = _manifest(session, split, tmp, k, offsets, id_dtype, time.time() - start, device)
        write_json(tmp / "manifest.json", manifest)
    return final


def _manifest(session: TeacherSession, split: str, tmp: Path, k: int, offsets: np.ndarray, id_dtype,
              seconds: float, device: torch.device) -> dict:
    """manifest.json of a split whose arrays are complete in `tmp`."""
    dictionary = session.task.target_dictionary
    return {
        "format": "lskd-topk-cache/1",
        "split": split,
        "k": k,
        "n_sentences": len(offsets) - 1,
        "n_tokens": int(offsets[-1]),
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


def build(data: str, teacher_spec: str, out: Path, splits: Sequence[str], k: int, max_tokens: int = 4096,
          cpu: bool = False, fp16: bool = False, force: bool = False, num_workers: int = 0) -> Dict[str, Path]:
    if k <= 0:
        raise LskdError(f"--k must be > 0, got {k}")
    out = Path(out)
    todo = []
    for split in splits:
        manifest = out / split / "manifest.json"
        if manifest.is_file() and not force:
            m = read_json(manifest, "an lskd cache manifest")
            if m.get("k") == k and [t["path"] for t in m.get("teachers", [])] == [os.path.abspath(p) for p in split_paths(teacher_spec)]:
                print(f"skip: {out / split} is complete (K={k}); --force rebuilds it", file=sys.stderr)
                continue
        todo.append(split)
    if not todo:
        return {s: out / s for s in splits}
    device = torch.device("cuda" if torch.cuda.is_available() and not cpu else "cpu")
    if fp16 and device.type != "cuda":
        raise LskdError("--fp16 needs a GPU (omit it, or drop --cpu)")
    session = TeacherSession.for_data(data, teacher_spec, todo).to(device, fp16)
    for split in todo:
        path = build_split(session, split, out, k, max_tokens, device, num_workers)
        m = read_json(path / "manifest.json", "an lskd cache manifest")
        print(f"wrote {path}: {m['n_sentences']} sentences, {m['n_tokens']} tokens, K={k}, "
              f"{m['bytes_per_token']:.1f} bytes/token, {m['build_seconds']} s", file=sys.stderr)
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
    args = p.parse_args(argv)
    build(args.data, args.teacher_path, args.out, args.splits, args.k, args.max_tokens, args.cpu, args.fp16,
          args.force, args.num_workers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
