"""The merge of `lskd distill-data`: finished shards -> one fairseq data dir, and the check that nothing made
with other settings is mixed in.

A shard holds its pairs in sample-id order (shard_store: every N-th batch of the unsharded run); the merge
interleaves them back into sample-id order (binaries item by item, text copies line by line, streamed), copies
the dictionaries and the other splits from --data, writes manifest.json last, and deletes the shards.
"""

from __future__ import annotations

import heapq
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Dict, Iterator, List, Optional

from lskd.errors import LskdError
from lskd.fileio import command_line, read_json, write_json

from .distill_decode import FORMAT, Counts, text_files
from .shard_store import ShardStore, read_manifest


def _first_difference(a, b, prefix="") -> Optional[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            d = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if d:
                return d
        return None
    return None if a == b else f"{prefix[:-1]}: {a!r} there, {b!r} now"


def _pairs(stack: ExitStack, shard: Path, split: str, src: str, tgt: str) -> Iterator[tuple]:
    """A shard's pairs in its order: (sample id, rank, source item, target item, its text lines)."""
    from fairseq.data import indexed_dataset

    prefix = str(shard / f"{split}.{src}-{tgt}.")
    if os.path.getsize(prefix + src + ".bin") == 0:  # a shard with no batch, or every pair filtered
        return
    sides = [indexed_dataset.MMapIndexedDataset(prefix + lang) for lang in (src, tgt)]
    files = [stack.enter_context(open(shard / "text" / name, "rb")) for name in text_files(split, src, tgt)]
    for i, lines in enumerate(zip(*files)):
        sid, rank = lines[-1].split(b"\t")[:2]  # SPLIT.ids: sample id, rank, score
        yield int(sid), int(rank), sides[0][i], sides[1][i], lines


def interleave_shards(tmp: Path, store: ShardStore, data: str, src: str, tgt: str, with_original: bool = False) -> int:
    """The shards' pairs merged into sample-id order (rank order within a sample) in tmp: binaries and text;
    `with_original`: --data's gold pairs of the split after them (binaries only). Returns the gold pairs added."""
    from fairseq.data import Dictionary, indexed_dataset

    split = store.split
    name = f"{split}.{src}-{tgt}."
    builders = [indexed_dataset.make_builder(str(tmp / (name + lang)) + ".bin", "mmap",
                                             vocab_size=len(Dictionary.load(os.path.join(data, f"dict.{lang}.txt"))))
                for lang in (src, tgt)]
    (tmp / "text").mkdir()
    with ExitStack() as stack:
        outs = [stack.enter_context(open(tmp / "text" / f, "wb")) for f in text_files(split, src, tgt)]
        streams = [_pairs(stack, store.path(i), split, src, tgt) for i in range(store.num_shards)]
        for _, _, source, target, lines in heapq.merge(*streams, key=lambda p: (p[0], p[1])):
            builders[0].add_item(source)
            builders[1].add_item(target)
            for f, line in zip(outs, lines):
                f.write(line)
    gold = [indexed_dataset.MMapIndexedDataset(os.path.join(data, name + lang)) for lang in (src, tgt)] \
        if with_original else [[], []]
    for pair in zip(*gold):
        for builder, item in zip(builders, pair):
            builder.add_item(item)
    for lang, builder in zip((src, tgt), builders):
        builder.finalize(str(tmp / (name + lang)) + ".idx")
    return len(gold[0])


def check_existing(out: Path, settings: Dict) -> None:
    """Refuse to mix finished shards or a finished output made with other settings (before decoding)."""
    found = [(p, read_manifest(p)) for p in sorted((out / "shards").glob(f"{settings['split']}-*-of-*"))]
    final = out / "manifest.json"
    if final.is_file():
        found.append((final.parent, read_json(final, "an lskd distill-data manifest")))
    for path, m in found:
        if m is None:
            continue
        if m.get("kind") == "shard" and "sample_ids" in m:
            raise LskdError(f"--out {out}: shards/{path.name} was cut by sample-id ranges (lskd before the shared "
                            "shard store): rerun with --force to decode it again in batch shards")
        diff = _first_difference(m.get("settings", {}), settings)
        if diff:
            raise LskdError(f"--out {out}: {path.name} was made with other settings ({diff}); "
                            "use another --out, or --force to discard it")


def _copy_from_data(tmp: Path, data: str, split: str, src: str, tgt: str) -> List[str]:
    """The dictionaries and the other splits' binaries of --data, copied unchanged; their names."""
    copied = []
    for path in sorted(Path(data).iterdir()):
        fn = path.name
        is_dict = fn in (f"dict.{src}.txt", f"dict.{tgt}.txt")
        other_split = fn.endswith((".bin", ".idx")) and not fn.startswith(f"{split}.")
        if path.is_file() and (is_dict or other_split):
            shutil.copy2(path, tmp / fn)
            copied.append(fn)
    return copied


def _merged_manifest(manifests: List[dict], settings, copied: List[str], merge_s: float) -> dict:
    counts = sum((Counts(**m["counts"]) for m in manifests), Counts())
    if not counts.add_up():
        raise LskdError(f"merge: counts do not add up ({counts})")
    decode = sum(m["seconds"]["decode"] for m in manifests)
    wrapper = sum(m["seconds"]["wrapper"] for m in manifests) + merge_s
    seconds = {"decode": round(decode, 3), "wrapper": round(wrapper, 3), "merge": round(merge_s, 3)}
    return {
        "format": FORMAT, "kind": "merged", "settings": settings, "post_process": manifests[0]["post_process"],
        "counts": counts.as_dict(),
        "throughput": {"sentences_per_s": round(counts.sources / max(seconds["decode"], 1e-9), 2),
                       "tokens_per_s": round(counts.generated_tokens / max(seconds["decode"], 1e-9), 1),
                       "wrapper_overhead": round(seconds["wrapper"] / max(seconds["decode"], 1e-9), 4)},
        "seconds": seconds,
        "engine": manifests[0].get("engine"),
        "shards": [{"shard_id": i, "sources": m["counts"]["sources"], "device": m["device"],
                    "created_by": m["created_by"]} for i, m in enumerate(manifests)],
        "copied_from_data": copied,
        "created_by": command_line(),
    }


def merge(opts, settings, store: ShardStore) -> Path:
    """Interleave the finished shards (sample-id order) into OUT, copy dicts + other splits from --data, delete
    the shards."""
    t0 = time.perf_counter()
    src, tgt, n, out = settings["source_lang"], settings["target_lang"], opts.num_shards, store.root
    manifests = [store.manifest(i) for i in range(n)]
    missing = [i for i, m in enumerate(manifests) if m is None]
    if missing:
        raise LskdError(f"--merge: shard(s) {', '.join(map(str, missing))} of {n} are not finished in {out / 'shards'} "
                        "(run them with --shard-id, or without it to run every missing shard)")
    tmp = Path(tempfile.mkdtemp(prefix=".merge.", suffix=".tmp", dir=out))
    try:
        original = interleave_shards(tmp, store, opts.data, src, tgt, opts.with_original)
        copied = _copy_from_data(tmp, opts.data, opts.split, src, tgt)
        manifest = _merged_manifest(manifests, settings, copied, time.perf_counter() - t0)
        if opts.with_original:
            manifest["counts"]["original"] = original  # gold pairs after the distilled ones (binaries only)
        old = out / "manifest.json"
        if old.exists():
            old.unlink()  # from here until the rename below nothing claims to be complete
        for path in sorted(tmp.rglob("*")):
            if path.is_file():
                dest = out / path.relative_to(tmp)
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, dest)
        write_json(out / "manifest.json", manifest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    store.remove()
    c, t = manifest["counts"], manifest["throughput"]
    print(f"wrote {out}: {c['sources']} sources -> {c['kept']} pairs ({c['filtered']} filtered); "
          f"{t['sentences_per_s']} sentences/s, {t['tokens_per_s']} tokens/s "
          f"decoding; wrapper overhead {100 * t['wrapper_overhead']:.1f}% of decoding time",
          file=sys.stderr)
    return out
