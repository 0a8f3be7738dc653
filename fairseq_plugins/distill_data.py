"""`lskd distill-data`: sequence-level KD data (Kim & Rush 2016) -- translate a split with a teacher, re-binarise.

    lskd distill-data --data BIN --teacher-path ckpt.pt[:ckpt2.pt] --out OUT [--split train]
                      [--beam 5 --lenpen 1.0 | --sampling --temperature T [--nbest N]]
                      [--engine fairseq|ctranslate2 [--compute-type auto|float32|int8|...]]

Decoding is fairseq's own SequenceGenerator (task.build_generator + task.inference_step, as fairseq-generate
does, with required_batch_size_multiple=1 so no sentence is dropped), or with --engine ctranslate2 the same
search on CTranslate2 (fairseq_plugins/ct2_engine.py: same outputs in float32 up to score ties, 3-6x
faster on 2 CPU cores at beam 5, docs/SEQ_KD.md; an ensemble or a model CTranslate2 cannot convert falls back
to fairseq with a one-line notice). The length limit min(a * src_len + b, max positions - 1) holds per
sentence with both engines (with a > 0 a batch holds one source length). The hypotheses are put back in corpus
order (by sample id; each source decoded exactly once, --nbest N hypotheses kept per source, rank order),
filtered, and binarised with the teacher's dictionaries (the data dir's dict.*.txt, checked against the
teacher's; no new dictionary is built), so OUT is a fairseq data dir ready for fairseq-train:

    OUT/dict.SRC.txt, dict.TGT.txt          copied from --data (identical to the teacher's, checked)
    OUT/SPLIT.SRC-TGT.{SRC,TGT}.{bin,idx}   distilled pairs: the teacher's source, its hypothesis as target
    OUT/<other splits>.*                    valid/test binaries copied unchanged from --data
    OUT/text/SPLIT.SRC, SPLIT.TGT           the distilled pairs as subword text (one pair per line)
    OUT/text/SPLIT.detok.TGT                hypotheses detokenised (--post-process; sentencepiece: spaces
                                            removed, '\u2581' -> space, as fairseq's --post-process sentencepiece)
    OUT/text/SPLIT.ids                      per line: sample id, hypothesis rank, score (base 2, as fairseq-generate)
    OUT/manifest.json                       teacher paths + sha256, decoding settings, filters, counts
                                            (sources, hypotheses, kept, filtered by reason), timings, command
    OUT/shards/SPLIT-I-of-N/                one finished shard (same layout, its own manifest.json)

Filters (each counted in the manifest; counts add up: hypotheses = kept + sum of filtered):
    empty      the hypothesis has no token before </s>
    max_len    the hypothesis reached the decoder's length limit min(a*src_len + b, max positions - 1)
               (--max-len-a/--max-len-b, src_len counting </s> as fairseq does): usually a loop
    ratio      target/source or source/target length (tokens, without </s>) above --max-ratio
    too_long   source or gold target longer than the teacher's max positions: not decoded
               (fairseq-train skips those pairs too)

Sharding and resuming: the split is cut into --num-shards contiguous ranges of sample ids. Each shard is
decoded in memory and written into a temporary directory renamed into OUT/shards/ when complete, so a
killed run leaves nothing that looks finished; a rerun skips finished shards and redoes the others.
--shard-id I decodes one shard only (one per machine or GPU, same --out on shared storage, or copy the
shard directories together); without it every missing shard is decoded in turn. When all shards are
finished the merge runs (concatenation in sample-id order, atomic per file, manifest.json written last);
--merge runs only the merge. Beam search is deterministic: N shards + merge == 1 shard. Sampling seeds
shard I with --seed + I, so a sampled set is reproducible for a given --seed and --num-shards with either
engine (with one shard and --engine fairseq it is what fairseq-generate --seed gives).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from lskd.errors import LskdError
from lskd.fileio import atomic_dir, command_line, read_json, sha256_file, write_json

from .ct2_engine import ENGINES, length_limit
from .teacher import TeacherSession

FORMAT = "lskd-distill-data/1"
FILTERS = ("too_long", "empty", "max_len", "ratio")


# ------------------------------------------------------------------------------------------ options
def parse_args(argv: List[str]) -> argparse.Namespace:
    doc = __doc__.split("\n\n", 1)
    p = argparse.ArgumentParser(prog="lskd distill-data", description=doc[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc[1])
    g = p.add_argument_group("input and output")
    g.add_argument("--data", required=True, help="fairseq binarised data dir (fairseq-preprocess --destdir)")
    g.add_argument("--teacher-path", required=True, help="teacher checkpoint, or several joined by ':' (an ensemble)")
    g.add_argument("--out", required=True, type=Path,
                   help="output data dir (created; must not be --data); ready for fairseq-train when complete")
    g.add_argument("--split", default="train", help="split to distil (default: train); the others are copied")
    g = p.add_argument_group("decoding (fairseq's SequenceGenerator)")
    g.add_argument("--beam", type=int, default=None,
                   help="beam size (default 5 for beam search; with --sampling: --nbest, i.e. independent samples)")
    g.add_argument("--lenpen", type=float, default=1.0, help="length penalty of beam search (default 1.0)")
    g.add_argument("--sampling", action="store_true", help="sample from the teacher instead of beam search")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature, > 0 (default 1.0)")
    g.add_argument("--sampling-topk", type=int, default=-1, help="sample from the k most likely tokens (default -1: all)")
    g.add_argument("--nbest", type=int, default=None,
                   help="hypotheses kept per source (default 1); with --sampling, N samples per source")
    g.add_argument("--max-len-a", type=float, default=0.0, help="max output length = a * src_len + b (default a=0)")
    g.add_argument("--max-len-b", type=int, default=200, help="max output length = a * src_len + b (default b=200)")
    g.add_argument("--seed", type=int, default=1, help="random seed (sampling; shard I uses seed + I) (default 1)")
    # ---- engine switch (issue 12): the decoding engine and CTranslate2's compute type
    g.add_argument("--engine", choices=ENGINES, default="fairseq",
                   help="decoder: fairseq's SequenceGenerator, or CTranslate2 (the model converted once into "
                        "$LSKD_CACHE/ct2, default ~/.cache/lskd/ct2) (default fairseq)")
    g.add_argument("--compute-type", default="auto",
                   help="CTranslate2 compute type: auto (float32 on CPU, float16 on GPU), float32, int8, int8_float32, "
                        "float16, int8_float16, bfloat16, int8_bfloat16 (default auto)")
    # ---- end engine switch
    g = p.add_argument_group("filters")
    g.add_argument("--max-ratio", type=float, default=3.0,
                   help="drop pairs whose length ratio (either way) is above R; 0 disables (default 3.0)")
    g.add_argument("--keep-empty", action="store_true", help="keep empty hypotheses (dropped by default)")
    g.add_argument("--keep-max-len", action="store_true",
                   help="keep hypotheses that hit the length limit (dropped by default)")
    g.add_argument("--post-process", default="auto",
                   choices=["auto", "sentencepiece", "subword_nmt", "none"],
                   help="detokenisation of the text copy (auto: sentencepiece if the dictionary has '\u2581' "
                        "pieces, subword_nmt if it has '@@' pieces, else none) (default auto)")
    g = p.add_argument_group("sharding and resuming")
    g.add_argument("--num-shards", type=int, default=1, help="cut the split into N shards of sample ids (default 1)")
    g.add_argument("--shard-id", type=int, default=None,
                   help="decode only shard I (0-based); default: every shard not yet finished")
    g.add_argument("--merge", action="store_true", help="only merge finished shards (all must exist)")
    g.add_argument("--force", action="store_true", help="discard finished shards and outputs of OUT and redo them")
    g = p.add_argument_group("hardware")
    g.add_argument("--max-tokens", type=int, default=4096, help="source tokens per batch (default 4096)")
    g.add_argument("--batch-size", type=int, default=None, help="sentences per batch (default: no limit)")
    g.add_argument("--cpu", action="store_true", help="decode on the CPU even if a GPU is present")
    g.add_argument("--fp16", action="store_true", help="decode in fp16 (GPU only)")
    return p.parse_args(argv)


@dataclass(frozen=True)
class DistillOptions:
    """The validated settings of one `lskd distill-data` run (built by `validate`, never changed after)."""

    data: str
    teacher_path: str
    out: Path
    split: str
    beam: int
    lenpen: float
    sampling: bool
    temperature: float
    sampling_topk: int
    nbest: int
    max_len_a: float
    max_len_b: int
    seed: int
    max_ratio: float
    keep_empty: bool
    keep_max_len: bool
    post_process: str
    num_shards: int
    shard_id: Optional[int]
    merge: bool
    force: bool
    max_tokens: int
    batch_size: Optional[int]
    cpu: bool
    fp16: bool
    engine: str  # fairseq | ctranslate2 (choose_engine may fall back to fairseq)
    compute_type: str  # "auto" until choose_engine resolves it

    def filter_rule(self) -> "FilterRule":
        return FilterRule(max_ratio=self.max_ratio, drop_empty=not self.keep_empty, drop_max_len=not self.keep_max_len)


def _search_defaults(args: argparse.Namespace) -> Tuple[int, int]:
    """(beam, nbest) with the defaults of the chosen search filled in."""
    if args.sampling:
        if args.beam is not None and args.beam > 1 and args.nbest is None:
            raise LskdError(f"--sampling with --beam {args.beam} and no --nbest is contradictory: fairseq would draw "
                            f"{args.beam} samples and keep the most likely; give --nbest N for N samples per source")
        nbest = 1 if args.nbest is None else args.nbest
        return (nbest if args.beam is None else args.beam), nbest
    return (5 if args.beam is None else args.beam), (1 if args.nbest is None else args.nbest)


def validate(args: argparse.Namespace) -> DistillOptions:
    """Every option check that needs no file, before anything is loaded or written; the settings to run with."""
    if args.sampling and args.temperature <= 0:
        raise LskdError(f"--temperature must be > 0, got {args.temperature}")
    if not args.sampling and args.temperature != 1.0:
        raise LskdError(f"--temperature {args.temperature} needs --sampling (beam search uses T = 1)")
    if not args.sampling and args.sampling_topk != -1:
        raise LskdError("--sampling-topk needs --sampling")
    beam, nbest = _search_defaults(args)
    if beam < 1:
        raise LskdError(f"--beam must be >= 1, got {beam}")
    if nbest < 1:
        raise LskdError(f"--nbest must be >= 1, got {nbest}")
    if nbest > beam:
        raise LskdError(f"--nbest {nbest} is larger than --beam {beam} (fairseq returns at most beam hypotheses)")
    if args.lenpen <= 0 and not args.sampling:
        raise LskdError(f"--lenpen must be > 0, got {args.lenpen}")
    if args.max_len_a < 0 or args.max_len_b < 1:
        raise LskdError(f"--max-len-a must be >= 0 and --max-len-b >= 1, got {args.max_len_a} and {args.max_len_b}")
    if args.max_ratio < 0:
        raise LskdError(f"--max-ratio must be >= 0 (0 disables the filter), got {args.max_ratio}")
    if args.num_shards < 1:
        raise LskdError(f"--num-shards must be >= 1, got {args.num_shards}")
    if args.shard_id is not None and not 0 <= args.shard_id < args.num_shards:
        raise LskdError(f"--shard-id must be in [0, {args.num_shards - 1}] for --num-shards {args.num_shards}, got {args.shard_id}")
    if args.merge and args.shard_id is not None:
        raise LskdError("--merge merges all shards; do not give --shard-id with it")
    if args.max_tokens is not None and args.max_tokens < 1 or args.batch_size is not None and args.batch_size < 1:
        raise LskdError("--max-tokens and --batch-size must be >= 1")
    if args.fp16 and (args.cpu or not torch.cuda.is_available()):
        raise LskdError("--fp16 needs a GPU (omit it, or drop --cpu)")
    if ":" in args.data:
        raise LskdError(f"--data {args.data}: give one data directory (fairseq's ':'-joined data shards are not supported)")
    if args.engine == "fairseq" and args.compute_type != "auto":
        raise LskdError(f"--compute-type {args.compute_type} needs --engine ctranslate2 (fairseq decodes in float32, "
                        "or float16 with --fp16)")
    if args.engine == "ctranslate2" and args.fp16:
        raise LskdError("--fp16 is fairseq's; with --engine ctranslate2 give --compute-type float16")
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(DistillOptions)}
    return DistillOptions(**{**given, "beam": beam, "nbest": nbest})


def _langs(data: str, teacher_cfg) -> Tuple[str, str]:
    from fairseq.data import data_utils

    src, tgt = getattr(teacher_cfg, "source_lang", None), getattr(teacher_cfg, "target_lang", None)
    if src is None or tgt is None:
        try:
            src, tgt = data_utils.infer_language_pair(data)
        except Exception:
            src = tgt = None
    if src is None or tgt is None:
        raise LskdError(f"--data {data}: cannot infer the language pair (no {{split}}.SRC-TGT.SRC.idx files)")
    return src, tgt


def _split_prefix(data: str, split: str, src: str, tgt: str) -> Optional[str]:
    """fairseq's file prefix of a split (either direction of the pair's name), or None when absent."""
    from fairseq.data import indexed_dataset

    for a, b in ((src, tgt), (tgt, src)):
        prefix = os.path.join(data, f"{split}.{a}-{b}.")
        if all(indexed_dataset.dataset_exists(prefix + lang, "mmap") or indexed_dataset.dataset_exists(prefix + lang, "cached")
               for lang in (src, tgt)):
            return prefix
    return None


def check_inputs(opts) -> Dict:
    """File checks (data dir, split, dictionaries, --out) before any teacher weights are built."""
    from .teacher import read_checkpoints

    data = opts.data
    if not os.path.isdir(data):
        raise LskdError(f"--data {data}: no such directory (expected fairseq binaries from fairseq-preprocess)")
    checkpoints = read_checkpoints(opts.teacher_path)
    src, tgt = _langs(data, checkpoints[0].state["cfg"].task)
    for lang in (src, tgt):
        if not os.path.isfile(os.path.join(data, f"dict.{lang}.txt")):
            raise LskdError(f"--data {data}: no dict.{lang}.txt (the teacher translates {src}->{tgt})")
    if _split_prefix(data, opts.split, src, tgt) is None:
        raise LskdError(f"--data {data}: no {opts.split!r} split (expected {opts.split}.{src}-{tgt}.{src}.bin/.idx and "
                        f".{tgt}.bin/.idx; --split chooses another)")
    out = Path(opts.out)
    if out.resolve() == Path(data).resolve():
        raise LskdError(f"--out {out}: is the --data directory; give a new directory")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "shards").is_dir()
                                               and not (out / "manifest.json").is_file())):
        raise LskdError(f"--out {out}: exists and is not an lskd distill-data directory (give a new or empty directory)")
    return {"checkpoints": checkpoints, "src": src, "tgt": tgt, "paths": [c.path for c in checkpoints]}


def settings_of(opts, src: str, tgt: str, paths: List[str]) -> Dict:
    """What a finished shard must share with this run to be reused (compared key by key on a rerun)."""
    return {
        "data": os.path.abspath(opts.data),
        "split": opts.split,
        "source_lang": src,
        "target_lang": tgt,
        "teachers": [{"path": os.path.abspath(p), "sha256": sha256_file(Path(p))} for p in paths],
        "decoding": {"search": "sampling" if opts.sampling else "beam", "beam": opts.beam, "nbest": opts.nbest,
                     "lenpen": opts.lenpen, "temperature": opts.temperature if opts.sampling else None,
                     "sampling_topk": opts.sampling_topk, "max_len_a": opts.max_len_a, "max_len_b": opts.max_len_b,
                     "seed": opts.seed, "fp16": opts.fp16, "engine": opts.engine, "compute_type": opts.compute_type},
        "filters": {"max_ratio": opts.max_ratio, "drop_empty": not opts.keep_empty, "drop_max_len": not opts.keep_max_len},
        "num_shards": opts.num_shards,
    }


def _first_difference(a, b, prefix="") -> Optional[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            d = _first_difference(a.get(key), b.get(key), f"{prefix}{key}.")
            if d:
                return d
        return None
    return None if a == b else f"{prefix[:-1]}: {a!r} there, {b!r} now"


# ------------------------------------------------------------------------------------------ decoding
def generation_config(opts):
    from fairseq.dataclass.configs import GenerationConfig

    return GenerationConfig(beam=opts.beam, nbest=opts.nbest, lenpen=opts.lenpen, max_len_a=opts.max_len_a,
                            max_len_b=opts.max_len_b, sampling=opts.sampling, temperature=opts.temperature,
                            sampling_topk=opts.sampling_topk)


def shard_range(n: int, num_shards: int, shard_id: int) -> Tuple[int, int]:
    return n * shard_id // num_shards, n * (shard_id + 1) // num_shards


def _batches(dataset, lo: int, hi: int, max_positions, max_tokens, batch_size, max_len_a=0.0):
    """fairseq's batching (ordered_indices -> filter_indices_by_size -> batch_by_size) restricted to ids [lo, hi),
    with required_batch_size_multiple=1; with one shard the batches are exactly fairseq-generate's.
    Returns (batches, ids too long for the teacher)."""
    indices = dataset.ordered_indices()
    indices = indices[(indices >= lo) & (indices < hi)]
    kept, ignored = dataset.filter_indices_by_size(indices, max_positions)
    batches = dataset.batch_by_size(kept, max_tokens=max_tokens, max_sentences=batch_size, required_batch_size_multiple=1)
    if max_len_a > 0:  # fairseq's limit a * src_len + b takes the batch's longest source: one length per batch
        sizes = dataset.src.sizes
        batches = [b[sizes[b] == n] for b in batches for n in np.unique(sizes[b])]
    return batches, sorted(int(i) for i in ignored)


def _decode(task, dataset, batches, models, generator, device, bar):
    """Yield (sample ids, hypotheses, source lengths with </s>, seconds in inference_step) per batch."""
    from fairseq import utils

    for batch in batches:
        sample = dataset.collater([dataset[int(i)] for i in batch])
        if not sample or "net_input" not in sample:
            continue
        if device.type == "cuda":
            sample = utils.move_to_cuda(sample)
        t0 = time.perf_counter()
        hypos = task.inference_step(generator, models, sample)
        if device.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        src_lengths = sample["net_input"]["src_lengths"].tolist()
        yield sample["id"].tolist(), hypos, src_lengths, dt
        bar.update(len(hypos))


def _detok_mode(opts, dictionary) -> str:
    if opts.post_process != "auto":
        return opts.post_process
    symbols = dictionary.symbols[dictionary.nspecial:]
    if any(s.startswith("\u2581") for s in symbols):
        return "sentencepiece"
    if any(s.endswith("@@") for s in symbols):
        return "subword_nmt"
    return "none"


def shard_name(split: str, i: int, n: int) -> str:
    return f"{split}-{i:05d}-of-{n:05d}"


@dataclass(frozen=True)
class FilterRule:
    """Which decoded pairs are dropped (see the module doc's Filters)."""

    max_ratio: float = 3.0  # 0: no ratio filter
    drop_empty: bool = True
    drop_max_len: bool = True

    def reason(self, n_out: int, n_in: int, limit: int) -> Optional[str]:
        """Why a hypothesis of n_out tokens for a source of n_in tokens (both without </s>) is dropped, given
        the decoder's length limit; None keeps it."""
        if n_out == 0 and self.drop_empty:
            return "empty"
        if n_out >= limit and self.drop_max_len:
            return "max_len"
        r = self.max_ratio
        if r > 0 and (n_out > r * max(n_in, 1) or n_in > r * max(n_out, 1)):
            return "ratio"
        return None


@dataclass
class Counts:
    """What happened to a shard's (or the merged split's) hypotheses; `+` adds two."""

    sources: int = 0
    hypotheses: int = 0
    kept: int = 0
    filtered: Dict[str, int] = dataclasses.field(default_factory=lambda: dict.fromkeys(FILTERS, 0))
    source_tokens: int = 0
    target_tokens: int = 0
    generated_tokens: int = 0

    def __add__(self, other: "Counts") -> "Counts":
        sums = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self) if f.name != "filtered"}
        return Counts(**sums, filtered={k: self.filtered.get(k, 0) + other.filtered.get(k, 0) for k in FILTERS})

    def add_up(self) -> bool:
        """hypotheses = kept + every filtered one."""
        return self.kept + sum(self.filtered.values()) == self.hypotheses

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class ShardWriter:
    """The files of one shard in `directory`: both sides' fairseq binaries and the text copies (subword
    source and target, detokenised target, ids), opened together and closed together; the binaries'
    indices are written only when the block ends without an error."""

    def __init__(self, directory: Path, split: str, src: str, tgt: str, task, detok: str, strip):
        self.dir, self.split, self.src, self.tgt = directory, split, src, tgt
        self.src_dict, self.tgt_dict = task.source_dictionary, task.target_dictionary
        self.detok, self.strip = detok, strip
        self.prefix = str(directory / f"{split}.{src}-{tgt}.")

    def __enter__(self) -> "ShardWriter":
        from fairseq.data import indexed_dataset

        self.builders = [indexed_dataset.make_builder(f"{self.prefix}{lang}.bin", "mmap", vocab_size=len(d))
                         for lang, d in ((self.src, self.src_dict), (self.tgt, self.tgt_dict))]
        (self.dir / "text").mkdir()
        self.files = [open(self.dir / "text" / name, "w", encoding="utf-8", newline="\n")
                      for name in text_files(self.split, self.src, self.tgt)]
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for f in self.files:
            f.close()
        if exc_type is None:
            for lang, builder in zip((self.src, self.tgt), self.builders):
                builder.finalize(f"{self.prefix}{lang}.idx")

    def add(self, sid: int, rank: int, source, target, tokens, score: float, src_str: str) -> None:
        """One pair: `target` is what is binarised (the hypothesis ending in </s>), `tokens` what fairseq returned."""
        from fairseq.data import data_utils

        self.builders[0].add_item(source)
        self.builders[1].add_item(target)
        hyp_str = self.tgt_dict.string(tokens, None, extra_symbols_to_ignore=self.strip)
        f_src, f_tgt, f_det, f_ids = self.files
        f_src.write(src_str + "\n")
        f_tgt.write(hyp_str + "\n")
        f_det.write(data_utils.post_process(hyp_str, self.detok) + "\n")
        f_ids.write(f"{sid}\t{rank}\t{score / np.log(2):.6f}\n")


def text_files(split: str, src: str, tgt: str) -> List[str]:
    """The text copies of a split, in ShardWriter's order."""
    return [f"{split}.{src}", f"{split}.{tgt}", f"{split}.detok.{tgt}", f"{split}.ids"]


def _decode_range(opts: DistillOptions, session, generator, batches, device, bar,
                  engine: Optional[Dict] = None) -> Tuple[Dict[int, tuple], int, float]:
    """Decode the batches: ({sample id: (source length with </s>, [(tokens, score)] * nbest)}, generated
    tokens, seconds spent decoding). `engine`: None for fairseq's generator, or choose_engine's
    {"model", "device", "decoder": ct2_engine.Decoder} for CTranslate2 (same hypotheses)."""
    results: Dict[int, tuple] = {}
    generated_tokens, decode_s, start = 0, 0.0, time.perf_counter()
    dataset = session.task.dataset(opts.split)
    if engine is None:
        decoding = _decode(session.task, dataset, batches, session.models, generator, device, bar)
    else:
        from . import ct2_engine
        decoding = ct2_engine.decode_batches(engine["decoder"], dataset, batches, bar)
    for ids, hypos, src_lengths, dt in decoding:
        decode_s += dt
        for sid, hyps, slen in zip(ids, hypos, src_lengths):
            if sid in results:
                raise LskdError(f"sample {sid} of split {opts.split} was decoded twice (batching error)")
            if len(hyps) < opts.nbest:
                raise LskdError(f"sample {sid}: fairseq returned {len(hyps)} hypotheses, --nbest {opts.nbest} wanted")
            kept = [(h["tokens"].int().cpu(), float(h["score"])) for h in hyps[:opts.nbest]]
            generated_tokens += sum(len(t) for t, _ in kept)
            results[sid] = (slen, kept)
        bar.set_postfix(tok_per_s=f"{generated_tokens / max(time.perf_counter() - start, 1e-9):.0f}", refresh=False)
    return results, generated_tokens, decode_s


def _write_pairs(writer: ShardWriter, results: Dict[int, tuple], dataset, opts: DistillOptions, gen_max_len: int) -> Counts:
    """Filter the hypotheses (sample-id order, rank order) and write the kept pairs; counts of the kept ones."""
    rule, eos = opts.filter_rule(), writer.tgt_dict.eos()
    counts = Counts()
    for sid in sorted(results):
        slen, kept = results[sid]
        limit = length_limit(slen, opts.max_len_a, opts.max_len_b, gen_max_len)
        source = dataset.src[sid]
        src_str = None
        for rank, (tokens, score) in enumerate(kept):
            body = tokens[:-1] if len(tokens) and int(tokens[-1]) == eos else tokens
            reason = rule.reason(len(body), int(slen) - 1, limit)
            if reason:
                counts.filtered[reason] += 1
                continue
            target = torch.cat([body, body.new_tensor([eos])]) if len(body) == len(tokens) else tokens
            if src_str is None:
                src_str = writer.src_dict.string(source, None)
            writer.add(sid, rank, source, target, tokens, score, src_str)
            counts.kept += 1
            counts.source_tokens += len(source)
            counts.target_tokens += len(target)
    return counts


def decode_shard(opts: DistillOptions, settings, session, shard_id: int, out: Path, device, engine=None) -> Path:
    """Decode one shard into OUT/shards/<name>/ atomically (with fairseq, or the CTranslate2 `engine` of
    choose_engine); returns its path."""
    from fairseq import utils
    from tqdm import tqdm

    src, tgt, split = settings["source_lang"], settings["target_lang"], opts.split
    name = shard_name(split, shard_id, opts.num_shards)
    final = out / "shards" / name
    for stale in glob.glob(str(out / "shards" / f".{name}.*.tmp")):
        shutil.rmtree(stale, ignore_errors=True)
    # seeded before batching: the dataset breaks length ties at random, and a sample's draws depend on its batch
    np.random.seed(opts.seed + shard_id)
    utils.set_torch_seed(opts.seed + shard_id)
    dataset = session.task.dataset(split)
    lo, hi = shard_range(len(dataset), opts.num_shards, shard_id)
    generator = session.task.build_generator(session.models, generation_config(opts))
    strip = getattr(generator, "symbols_to_strip_from_output", None) or {generator.eos}
    batches, too_long = _batches(dataset, lo, hi, session.max_positions(), opts.max_tokens, opts.batch_size, opts.max_len_a)
    if engine is not None and opts.sampling:  # CTranslate2 seeds a worker once, when it first samples: a new one
        from . import ct2_engine
        engine["decoder"].translator = ct2_engine.load(engine["model"], engine["device"], opts.compute_type,
                                                       engine["threads"], parallel=False, seed=opts.seed + shard_id)

    start = time.perf_counter()
    bar = tqdm(total=hi - lo - len(too_long), unit="sent", desc=f"distill {name}", dynamic_ncols=True, mininterval=1.0)
    with torch.inference_mode():
        results, generated_tokens, decode_s = _decode_range(opts, session, generator, batches, device, bar, engine)
    bar.close()
    expected = set(range(lo, hi)) - set(too_long)
    if set(results) != expected:
        missing = sorted(expected - set(results))
        raise LskdError(f"shard {name}: {len(missing)} of {len(expected)} sources got no hypothesis "
                        f"(first missing sample id {missing[0] if missing else None})")

    t_write = time.perf_counter()
    detok = _detok_mode(opts, session.task.target_dictionary)
    with atomic_dir(final) as tmp:
        with ShardWriter(tmp, split, src, tgt, session.task, detok, strip) as writer:
            # generator.max_len: max decoder positions (or --max-len); the limit is min(a*s+b, this - 1)
            counts = _write_pairs(writer, results, dataset, opts, generator.max_len)
        counts += Counts(sources=hi - lo, hypotheses=(hi - lo) * opts.nbest, generated_tokens=generated_tokens,
                         filtered={"too_long": len(too_long) * opts.nbest})
        if not counts.add_up():
            raise LskdError(f"shard {name}: counts do not add up ({counts})")
        end = time.perf_counter()
        write_json(tmp / "manifest.json", {
            "format": FORMAT, "kind": "shard", "shard_id": shard_id, "sample_ids": [lo, hi],
            "settings": settings, "post_process": detok, "counts": counts.as_dict(),
            "too_long_ids": too_long[:100],
            "seconds": {"decode": round(decode_s, 3), "wrapper": round(end - start - decode_s, 3),
                        "write": round(end - t_write, 3), "total": round(end - start, 3)},
            "device": str(device), "engine": engine_record(opts, engine), "created_by": command_line(),
        })
    print(f"wrote {final}: {counts.sources} sources, {counts.kept} pairs kept, filtered {counts.filtered}, "
          f"{counts.sources / max(decode_s, 1e-9):.1f} sentences/s decoding, wrapper {end - start - decode_s:.2f} s",
          file=sys.stderr)
    return final


# ------------------------------------------------------------------------------------------ shards and merge
def read_shard(path: Path) -> Optional[dict]:
    m = path / "manifest.json"
    if not m.is_file():
        return None
    try:
        return json.loads(m.read_text())
    except ValueError:
        return None


def check_existing(out: Path, settings: Dict) -> None:
    """Refuse to mix finished shards or a finished output made with other settings (before decoding)."""
    found = [(p, read_shard(p)) for p in sorted((out / "shards").glob(f"{settings['split']}-*"))]
    final = out / "manifest.json"
    if final.is_file():
        found.append((final.parent, read_json(final, "an lskd distill-data manifest")))
    for path, m in found:
        if m is None:
            continue
        diff = _first_difference(m.get("settings", {}), settings)
        if diff:
            raise LskdError(f"--out {out}: {path.name} was made with other settings ({diff}); "
                            "use another --out, or --force to discard it")


def _concatenate_shards(tmp: Path, dirs: List[Path], opts: DistillOptions, src: str, tgt: str) -> None:
    """The shards' binaries (fairseq's merge_file_) and text copies, concatenated in shard order into tmp."""
    from fairseq.data import Dictionary, indexed_dataset

    name = f"{opts.split}.{src}-{tgt}."
    for lang in (src, tgt):
        vocab = len(Dictionary.load(os.path.join(opts.data, f"dict.{lang}.txt")))
        builder = indexed_dataset.make_builder(str(tmp / (name + lang)) + ".bin", "mmap", vocab_size=vocab)
        for d in dirs:
            builder.merge_file_(str(d / (name + lang)))
        builder.finalize(str(tmp / (name + lang)) + ".idx")
    (tmp / "text").mkdir()
    for fname in text_files(opts.split, src, tgt):
        with open(tmp / "text" / fname, "wb") as f:
            for d in dirs:
                with open(d / "text" / fname, "rb") as g:
                    shutil.copyfileobj(g, f)


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
        "shards": [{"shard_id": i, "sample_ids": m["sample_ids"], "device": m["device"],
                    "created_by": m["created_by"]} for i, m in enumerate(manifests)],
        "copied_from_data": copied,
        "created_by": command_line(),
    }


def merge(opts: DistillOptions, settings, out: Path, extra_wrapper_s: float = 0.0) -> Path:
    """Concatenate the finished shards (sample-id order) into OUT and copy dicts + other splits from --data."""
    t0 = time.perf_counter()
    src, tgt, n = settings["source_lang"], settings["target_lang"], opts.num_shards
    dirs = [out / "shards" / shard_name(opts.split, i, n) for i in range(n)]
    manifests = [read_shard(d) for d in dirs]
    missing = [i for i, m in enumerate(manifests) if m is None]
    if missing:
        raise LskdError(f"--merge: shard(s) {', '.join(map(str, missing))} of {n} are not finished in {out / 'shards'} "
                        "(run them with --shard-id, or without it to run every missing shard)")
    tmp = Path(tempfile.mkdtemp(prefix=".merge.", suffix=".tmp", dir=out))
    try:
        _concatenate_shards(tmp, dirs, opts, src, tgt)
        copied = _copy_from_data(tmp, opts.data, opts.split, src, tgt)
        manifest = _merged_manifest(manifests, settings, copied, time.perf_counter() - t0 + extra_wrapper_s)
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
    c, t = manifest["counts"], manifest["throughput"]
    print(f"wrote {out}: {c['sources']} sources -> {c['kept']} pairs ({c['filtered']} filtered); "
          f"{t['sentences_per_s']} sentences/s, {t['tokens_per_s']} tokens/s "
          f"decoding; wrapper overhead {100 * t['wrapper_overhead']:.1f}% of decoding time",
          file=sys.stderr)
    return out


# ------------------------------------------------------------------------------------------ engine switch
def choose_engine(opts: DistillOptions, info) -> Tuple[DistillOptions, Optional[Dict]]:
    """Resolve --engine/--compute-type (recorded in the settings); for CTranslate2 convert the teacher (cached)
    and return {"model", "device"} beside the options; an ensemble or an unconvertible model falls back to fairseq."""
    fairseq_opts = dataclasses.replace(opts, engine="fairseq", compute_type="float16" if opts.fp16 else "float32")
    if opts.engine == "fairseq":
        return fairseq_opts, None
    from . import ct2_engine

    device = ct2_engine.device_of(opts.cpu)
    compute_type = ct2_engine.resolve_compute_type(opts.compute_type, device)
    threads = ct2_engine.take_threads_from_torch()  # run() gives them back to torch when it ends
    reason = "an ensemble" if len(info["paths"]) > 1 else None
    if reason is None:
        try:
            model = ct2_engine.convert(info["paths"][0], opts.data, info["src"], info["tgt"])
        except ct2_engine.Unconvertible as e:
            reason = f"not convertible ({e})"
    if reason is not None:
        print(f"notice: --engine ctranslate2: the teacher is {reason}; decoding with fairseq", file=sys.stderr)
        torch.set_num_threads(threads)
        return fairseq_opts, None
    return dataclasses.replace(opts, compute_type=compute_type), {"model": model, "device": device, "threads": threads}


def engine_record(opts: DistillOptions, engine: Optional[Dict]) -> Dict:
    """The manifest's account of the engine: name, version, compute type (and the converted model)."""
    if engine is None:
        import fairseq
        return {"name": "fairseq", "version": fairseq.__version__, "compute_type": opts.compute_type}
    from . import ct2_engine
    return {"name": "ctranslate2", "version": ct2_engine.version(), "compute_type": opts.compute_type,
            "device": engine["device"], "model": str(engine["model"])}


# ------------------------------------------------------------------------------------------ entry point
def run(args: argparse.Namespace) -> Path:
    from .ct2_engine import torch_threads_restored

    with torch_threads_restored():  # the CTranslate2 engine takes them from torch while it decodes
        return _run(validate(args))


def _run(opts: DistillOptions) -> Path:
    info = check_inputs(opts)
    opts, engine = choose_engine(opts, info)
    out = Path(opts.out)
    settings = settings_of(opts, info["src"], info["tgt"], info["paths"])
    if not opts.force:
        check_existing(out, settings)
    if opts.merge:
        merge(opts, settings, out)  # refuses, writing nothing, when a shard is missing
        return out
    final = out / "manifest.json"
    if final.is_file() and not opts.force:
        print(f"skip: {out} is complete (manifest.json); --force redoes it", file=sys.stderr)
        return out
    todo = [opts.shard_id] if opts.shard_id is not None else list(range(opts.num_shards))
    if not opts.force:
        todo = [i for i in todo if read_shard(out / "shards" / shard_name(opts.split, i, opts.num_shards)) is None]
    device = torch.device("cuda" if torch.cuda.is_available() and not opts.cpu else "cpu")
    if todo:
        # an LskdError (one line) on dictionaries that differ from --data
        session = TeacherSession.for_data(opts.data, opts.teacher_path, [opts.split], checkpoints=info["checkpoints"])
        if opts.force:
            for p in (out / "shards").glob(f"{opts.split}-*"):
                shutil.rmtree(p)
            if final.exists():
                final.unlink()
        session.to(device, opts.fp16)
        for m in session.models:
            m.prepare_for_inference_(SimpleNamespace(generation=generation_config(opts)))
        if engine is not None:
            from . import ct2_engine
            # sampling: a seeded Translator per shard (decode_shard)
            translator = None if opts.sampling else ct2_engine.load(engine["model"], engine["device"],
                                                                     opts.compute_type, engine["threads"])
            engine["decoder"] = ct2_engine.Decoder(
                translator,
                session.task.source_dictionary,
                session.task.target_dictionary, beam=opts.beam, nbest=opts.nbest, lenpen=opts.lenpen, sampling=opts.sampling,
                temperature=opts.temperature, sampling_topk=opts.sampling_topk, max_len_a=opts.max_len_a,
                max_len_b=opts.max_len_b, max_len_cap=min(m.max_decoder_positions() for m in session.models),
                max_tokens=opts.max_tokens, batch_size=opts.batch_size)
        for i in todo:
            decode_shard(opts, settings, session, i, out, device, engine=engine)
    skipped = [i for i in ([opts.shard_id] if opts.shard_id is not None else range(opts.num_shards)) if i not in todo]
    if skipped:
        print(f"skip: shard(s) {', '.join(map(str, skipped))} of {opts.num_shards} already finished", file=sys.stderr)
    done = [read_shard(out / "shards" / shard_name(opts.split, i, opts.num_shards)) for i in range(opts.num_shards)]
    if all(m is not None for m in done):
        merge(opts, settings, out)
    else:
        left = [i for i, m in enumerate(done) if m is None]
        print(f"{len(left)} shard(s) left ({', '.join(map(str, left[:20]))}); the merge runs when all are finished",
              file=sys.stderr)
    return out


def main(argv: List[str]) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
