"""Decoding one shard of `lskd distill-data`: the engines, the filters, and the shard's files.

An engine (`FairseqEngine` here: fairseq's SequenceGenerator, as fairseq-generate runs it; `Ct2Engine` in
ct2_search.py: the same search on CTranslate2) turns fairseq batches into `DecodedBatch` records; `decode_shard`
collects one shard's hypotheses, filters them (FilterRule) and writes the kept pairs with `ShardWriter` into a
shard of the ShardStore (fairseq binaries, text copies, manifest.json with the counts of every filter).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

import numpy as np
import torch

from lskd.errors import LskdError
from lskd.fileio import command_line, write_json

from .ct2_search import DecodedBatch, length_limit
from .shard_store import ShardStore, cut

FORMAT = "lskd-distill-data/1"
FILTERS = ("too_long", "empty", "max_len", "ratio", "not_selected")


def generation_config(opts):
    from fairseq.dataclass.configs import GenerationConfig

    return GenerationConfig(beam=opts.beam, nbest=opts.nbest, lenpen=opts.lenpen, max_len_a=opts.max_len_a,
                            max_len_b=opts.max_len_b, sampling=opts.sampling, temperature=opts.temperature,
                            sampling_topk=opts.sampling_topk)


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


class Detokenizer:
    """Pieces -> text: fairseq's --post-process (`mode`), then Moses detokenisation when the data's text was
    Moses-tokenised before its subwords (a teacher's Moses + BPE, data_prep's manifest)."""

    def __init__(self, mode: str, moses: bool):
        self.mode, self.moses, self._tools = mode, moses, {}

    def __call__(self, pieces: str, lang: str) -> str:
        from fairseq.data import data_utils

        text = data_utils.post_process(pieces, self.mode)
        if not self.moses:
            return text
        if lang not in self._tools:
            from sacremoses import MosesDetokenizer

            self._tools[lang] = MosesDetokenizer(lang=lang)
        return self._tools[lang].detokenize(text.split(), unescape=True)


class ShardWriter:
    """The files of one shard in `directory`: both sides' fairseq binaries and the text copies (subword
    source and target, detokenised target and source, ids), opened together and closed together; the binaries'
    indices are written only when the block ends without an error."""

    def __init__(self, directory: Path, split: str, src: str, tgt: str, task, detok: Detokenizer, strip):
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
        self.builders[0].add_item(source)
        self.builders[1].add_item(target)
        hyp_str = self.tgt_dict.string(tokens, None, extra_symbols_to_ignore=self.strip)
        f_src, f_tgt, f_det, f_det_src, f_ids = self.files
        f_src.write(src_str + "\n")
        f_tgt.write(hyp_str + "\n")
        f_det.write(self.detok(hyp_str, self.tgt) + "\n")
        f_det_src.write(self.detok(src_str, self.src) + "\n")
        f_ids.write(f"{sid}\t{rank}\t{score / np.log(2):.6f}\n")


def text_files(split: str, src: str, tgt: str) -> List[str]:
    """The text copies of a split, in ShardWriter's order."""
    return [f"{split}.{src}", f"{split}.{tgt}", f"{split}.detok.{tgt}", f"{split}.detok.{src}", f"{split}.ids"]


def seed_all(seed: int) -> None:
    """numpy's and torch's generators (fairseq's sampling draws from torch's; batching breaks ties with numpy's)."""
    from fairseq import utils

    np.random.seed(seed)
    utils.set_torch_seed(seed)


class FairseqEngine:
    """fairseq's SequenceGenerator on the teacher session (task.build_generator + task.inference_step, as
    fairseq-generate runs it)."""

    name = "fairseq"

    def __init__(self, session, generation, device: torch.device, compute_type: str):
        self.session, self.device, self.compute_type = session, device, compute_type
        self.generator = session.task.build_generator(session.models, generation)
        self.max_len = self.generator.max_len  # max decoder positions: the length limit's cap
        self.strip = getattr(self.generator, "symbols_to_strip_from_output", None) or {self.generator.eos}

    def reseed(self, seed: int) -> None:
        seed_all(seed)

    def decode_batches(self, dataset, batches, bar) -> Iterable[DecodedBatch]:
        from fairseq import utils

        for batch in batches:
            sample = dataset.collater([dataset[int(i)] for i in batch])
            if not sample or "net_input" not in sample:
                continue
            if self.device.type == "cuda":
                sample = utils.move_to_cuda(sample)
            t0 = time.perf_counter()
            hypos = self.session.task.inference_step(self.generator, self.session.models, sample)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            yield DecodedBatch(sample["id"].tolist(), hypos, sample["net_input"]["src_lengths"].tolist(), dt)
            bar.update(len(hypos))

    def record(self) -> dict:
        import fairseq

        return {"name": self.name, "version": fairseq.__version__, "compute_type": self.compute_type}


def split_batches(dataset, max_positions, max_tokens, batch_size, max_len_a=0.0):
    """fairseq's batching (ordered_indices -> filter_indices_by_size -> batch_by_size) of the whole split, with
    required_batch_size_multiple=1: fairseq-generate's batches. Returns (batches, ids too long for the teacher)."""
    indices = dataset.ordered_indices()
    kept, ignored = dataset.filter_indices_by_size(indices, max_positions)
    batches = dataset.batch_by_size(kept, max_tokens=max_tokens, max_sentences=batch_size, required_batch_size_multiple=1)
    if max_len_a > 0:  # fairseq's limit a * src_len + b takes the batch's longest source: one length per batch
        sizes = dataset.src_sizes
        batches = [b[sizes[b] == n] for b in batches for n in np.unique(sizes[b])]
    return batches, sorted(int(i) for i in ignored)


class Decoded(NamedTuple):
    """One sample's decoding: its source length with </s> and its n-best [(tokens, score)]."""

    src_len: int
    hypotheses: List[Tuple[torch.Tensor, float]]


def decode_all(engine, dataset, batches, nbest: int, split: str, bar) -> Tuple[Dict[int, Decoded], int, float]:
    """Decode the batches: ({sample id: Decoded}, generated tokens, seconds spent decoding)."""
    results: Dict[int, Decoded] = {}
    generated_tokens, decode_s, start = 0, 0.0, time.perf_counter()
    for batch in engine.decode_batches(dataset, batches, bar):
        decode_s += batch.seconds
        for sid, hyps, slen in zip(batch.ids, batch.hypos, batch.src_lengths):
            if sid in results:
                raise LskdError(f"sample {sid} of split {split} was decoded twice (batching error)")
            if len(hyps) < nbest:
                raise LskdError(f"sample {sid}: the engine returned {len(hyps)} hypotheses, --nbest {nbest} wanted")
            kept = [(h["tokens"].int().cpu(), float(h["score"])) for h in hyps[:nbest]]
            generated_tokens += sum(len(t) for t, _ in kept)
            results[sid] = Decoded(slen, kept)
        bar.set_postfix(tok_per_s=f"{generated_tokens / max(time.perf_counter() - start, 1e-9):.0f}", refresh=False)
    return results, generated_tokens, decode_s


def closest_to_reference(kept: List[Tuple[torch.Tensor, float]], reference: str, strings, metric: str) -> int:
    """The index of the hypothesis whose detokenised text is closest to the reference (sentence chrF or BLEU)."""
    import sacrebleu

    score = sacrebleu.sentence_chrf if metric == "chrf" else sacrebleu.sentence_bleu
    scores = [score(strings(tokens), [reference]).score for tokens, _ in kept]
    return max(range(len(kept)), key=lambda i: (scores[i], -i))


def write_pairs(writer: ShardWriter, results: Dict[int, Decoded], dataset, opts, gen_max_len: int) -> Counts:
    """Filter the hypotheses (sample-id order, rank order; with --select-by only the one closest to the reference)
    and write the kept pairs; counts of the kept ones."""
    rule, eos = opts.filter_rule(), writer.tgt_dict.eos()
    counts = Counts()

    def detok(tokens) -> str:
        return writer.detok(writer.tgt_dict.string(tokens, None, extra_symbols_to_ignore=writer.strip), writer.tgt)

    for sid in sorted(results):
        slen, kept = results[sid]
        ranked = list(enumerate(kept))
        if opts.select_by:
            best = closest_to_reference(kept, detok(dataset.tgt[sid]), detok, opts.select_by)
            ranked = [ranked[best]]
            counts.filtered["not_selected"] += len(kept) - 1
        limit = length_limit(slen, opts.max_len_a, opts.max_len_b, gen_max_len)
        source = dataset.src[sid]
        src_str = None
        for rank, (tokens, score) in ranked:
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


def detokenizer(opts, dictionary) -> Detokenizer:
    """The text copies' detokenisation: --post-process (auto: from the dictionary's pieces), plus Moses
    detokenisation when --data's manifest says its text was Moses-tokenised (a teacher's Moses + BPE)."""
    manifest = Path(opts.data).resolve().parent / "manifest.json"
    try:
        moses = json.loads(manifest.read_text(encoding="utf-8")).get("preprocessing", {}).get("tokenizer") == "moses"
    except (OSError, ValueError, AttributeError):
        moses = False
    return Detokenizer(detok_mode(opts, dictionary), moses)


def detok_mode(opts, dictionary) -> str:
    if opts.post_process != "auto":
        return opts.post_process
    symbols = dictionary.symbols[dictionary.nspecial:]
    if any(s.startswith("\u2581") for s in symbols):
        return "sentencepiece"
    if any(s.endswith("@@") for s in symbols):
        return "subword_nmt"
    return "none"


def decode_shard(opts, settings, session, engine, store: ShardStore, shard_id: int, device) -> Path:
    """Decode shard `shard_id` of the split (its cut of fairseq-generate's batches) into the store; its path."""
    from tqdm import tqdm

    src, tgt, split, name = settings["source_lang"], settings["target_lang"], opts.split, store.path(shard_id).name
    # the dataset breaks length ties at random: one seed for the batches every shard cuts, then the shard's own
    seed_all(opts.seed)
    dataset = session.task.dataset(split)
    batches, too_long = split_batches(dataset, session.max_positions(), opts.max_tokens, opts.batch_size, opts.max_len_a)
    batches = cut(batches, opts.num_shards, shard_id)
    engine.reseed(opts.seed + shard_id)
    n_sources = sum(len(b) for b in batches)
    too_long = too_long[shard_id::opts.num_shards]  # each shard counts its share of what no shard decodes

    start = time.perf_counter()
    bar = tqdm(total=n_sources, unit="sent", desc=f"distill {name}", dynamic_ncols=True, mininterval=1.0)
    with torch.inference_mode():
        results, generated_tokens, decode_s = decode_all(engine, dataset, batches, opts.nbest, split, bar)
    bar.close()
    expected = {int(i) for b in batches for i in b}
    if set(results) != expected:
        missing = sorted(expected - set(results))
        raise LskdError(f"shard {name}: {len(missing)} of {len(expected)} sources got no hypothesis "
                        f"(first missing sample id {missing[0] if missing else None})")

    t_write = time.perf_counter()
    detok = detokenizer(opts, session.task.target_dictionary)
    with store.writing(shard_id) as tmp:
        with ShardWriter(tmp, split, src, tgt, session.task, detok, engine.strip) as writer:
            # engine.max_len: max decoder positions (or --max-len); the limit is min(a*s+b, this - 1)
            counts = write_pairs(writer, results, dataset, opts, engine.max_len)
        counts += Counts(sources=n_sources + len(too_long), hypotheses=(n_sources + len(too_long)) * opts.nbest,
                         generated_tokens=generated_tokens, filtered={"too_long": len(too_long) * opts.nbest})
        if not counts.add_up():
            raise LskdError(f"shard {name}: counts do not add up ({counts})")
        end = time.perf_counter()
        write_json(tmp / "manifest.json", {
            "format": FORMAT, "kind": "shard", "shard_id": shard_id, "num_shards": opts.num_shards,
            "settings": settings, "post_process": detok.mode, "moses_detok": detok.moses, "counts": counts.as_dict(),
            "too_long_ids": too_long[:100],
            "seconds": {"decode": round(decode_s, 3), "wrapper": round(end - start - decode_s, 3),
                        "write": round(end - t_write, 3), "total": round(end - start, 3)},
            "device": str(device), "engine": engine.record(), "created_by": command_line(),
        })
    print(f"wrote {store.path(shard_id)}: {counts.sources} sources, {counts.kept} pairs kept, filtered "
          f"{counts.filtered}, {counts.sources / max(decode_s, 1e-9):.1f} sentences/s decoding, wrapper "
          f"{end - start - decode_s:.2f} s", file=sys.stderr)
    return store.path(shard_id)
