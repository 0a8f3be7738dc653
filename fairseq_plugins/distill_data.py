"""`lskd distill-data`: sequence-level KD data (Kim & Rush 2016) -- translate a split with a teacher, re-binarise.

    lskd distill-data --data BIN --teacher-path ckpt.pt[:ckpt2.pt] --out OUT [--split train]
                      [--beam 5 --lenpen 1.0 | --sampling --temperature T [--nbest N]]
                      [--engine fairseq|ctranslate2 [--compute-type auto|float32|int8|...]]

Decoding is fairseq's own SequenceGenerator (task.build_generator + task.inference_step, as fairseq-generate
does, with required_batch_size_multiple=1 so no sentence is dropped), or with --engine ctranslate2 the same
search on CTranslate2 (fairseq_plugins/ct2_search.py: same outputs in float32 up to score ties, 3-6x
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
                                            removed, '\u2581' -> space, as fairseq's --post-process sentencepiece;
                                            then Moses-detokenised when --data's manifest says its text was
                                            Moses-tokenised: a teacher's Moses + BPE)
    OUT/text/SPLIT.detok.SRC                the sources likewise: with SPLIT.detok.TGT, the text a student with a
                                            vocabulary of its own is prepared from (data_prep.parallel)
    OUT/text/SPLIT.ids                      per line: sample id, hypothesis rank, score (base 2, as fairseq-generate)
    OUT/manifest.json                       teacher paths + sha256, decoding settings, filters, counts
                                            (sources, hypotheses, kept, filtered by reason), timings, command
    OUT/shards/SPLIT-0000I-of-0000N/        a finished shard not merged yet (same layout, its own manifest.json)

Filters (each counted in the manifest; counts add up: hypotheses = kept + sum of filtered):
    empty      the hypothesis has no token before </s>
    max_len    the hypothesis reached the decoder's length limit min(a*src_len + b, max positions - 1)
               (--max-len-a/--max-len-b, src_len counting </s> as fairseq does): usually a loop
    ratio      target/source or source/target length (tokens, without </s>) above --max-ratio
    too_long   source or gold target longer than the teacher's max positions: not decoded
               (fairseq-train skips those pairs too)

Sharding and resuming (fairseq_plugins/shard_store.py, as `lskd cache`): shard I of --num-shards N holds every
N-th batch of the unsharded run's batches, from batch I. Each shard is decoded in memory and written into a
temporary directory renamed into OUT/shards/ when complete, so a killed run leaves nothing that looks finished;
a rerun skips finished shards and redoes the others. --shard-id I decodes one shard only (one per machine or
GPU, same --out on shared storage, or copy the shard directories together); without it every missing shard is
decoded in turn. When all shards are finished the merge runs (pairs interleaved back into sample-id order,
manifest.json written last, then the shards deleted); --merge runs only the merge. Every shard decodes its
sentences in the batches the unsharded run gives them: beam search with N shards + merge == 1 shard. Sampling
seeds shard I with --seed + I, so a sampled set is reproducible for a given --seed and --num-shards with either
engine (with one shard and --engine fairseq it is what fairseq-generate --seed gives).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List, NamedTuple, Optional, Tuple

from lskd.errors import LskdError
from lskd.fileio import sha256_file
from lskd.options import option

from . import ct2_model
from .distill_decode import FairseqEngine, FilterRule, decode_shard, generation_config
from .distill_merge import check_existing, merge
from .shard_store import ShardStore
from .teacher import TeacherSession, languages, read_checkpoints
from .teacher_command import TeacherRunOptions, parse

DECODING, FILTERS = "decoding (fairseq's SequenceGenerator)", "filters"


@dataclass(frozen=True)
class DistillOptions(TeacherRunOptions):
    """The settings of one `lskd distill-data` run (beam and nbest resolved by `validate`, never changed after)."""

    out: Path = option(None, "output data dir (created; must not be --data); ready for fairseq-train when complete",
                       group="input and output", type=Path, required=True)
    split: str = option("train", "split to distil (default: train); the others are copied", group="input and output")
    source_text: Optional[Path] = option(None, "raw text in the teacher's source language, one sentence per line: "
                                         "decode it (no reference; forward translation of monolingual text) into "
                                         "--split, prepared as --data's data_prep manifest says",
                                         group="input and output", type=Path)
    with_original: bool = option(False, "also write --data's gold --split pairs into the output split (after the "
                                 "distilled ones; counted apart in the manifest)", group="input and output")
    select_by: Optional[str] = option(None, "with --nbest N: keep per source the one hypothesis closest to the "
                                      "reference by sentence-level chrF or BLEU (Kim & Rush's Seq-Inter)",
                                      group="filters", choices=["chrf", "bleu"])
    beam: Optional[int] = option(None, "beam size (default 5 for beam search; with --sampling: --nbest, i.e. "
                                 "independent samples)", group=DECODING, type=int)
    lenpen: float = option(1.0, "length penalty of beam search (default 1.0)", group=DECODING)
    sampling: bool = option(False, "sample from the teacher instead of beam search", group=DECODING)
    temperature: float = option(1.0, "sampling temperature, > 0 (default 1.0)", group=DECODING)
    sampling_topk: int = option(-1, "sample from the k most likely tokens (default -1: all)", group=DECODING)
    nbest: Optional[int] = option(None, "hypotheses kept per source (default 1); with --sampling, N samples per "
                                  "source", group=DECODING, type=int)
    max_len_a: float = option(0.0, "max output length = a * src_len + b (default a=0)", group=DECODING)
    max_len_b: int = option(200, "max output length = a * src_len + b (default b=200)", group=DECODING)
    seed: int = option(1, "random seed (sampling; shard I uses seed + I) (default 1)", group=DECODING)
    engine: str = option("fairseq", "decoder: fairseq's SequenceGenerator, or CTranslate2 (the model converted once "
                         "into $LSKD_CACHE/ct2, default ~/.cache/lskd/ct2) (default fairseq)", group=DECODING,
                         choices=ct2_model.ENGINES)
    compute_type: str = option("auto", "CTranslate2 compute type: auto (float32 on CPU, float16 on GPU), float32, "
                               "int8, int8_float32, float16, int8_float16, bfloat16, int8_bfloat16 (default auto)",
                               group=DECODING)
    max_ratio: float = option(3.0, "drop pairs whose length ratio (either way) is above R; 0 disables (default 3.0)",
                              group=FILTERS)
    keep_empty: bool = option(False, "keep empty hypotheses (dropped by default)", group=FILTERS)
    keep_max_len: bool = option(False, "keep hypotheses that hit the length limit (dropped by default)", group=FILTERS)
    post_process: str = option("auto", "detokenisation of the text copy (auto: sentencepiece if the dictionary has "
                               "'\u2581' pieces, subword_nmt if it has '@@' pieces, else none) (default auto)",
                               group=FILTERS, choices=["auto", "sentencepiece", "subword_nmt", "none"])
    merge: bool = option(False, "only merge finished shards (all must exist)", group="sharding and resuming")
    batch_size: Optional[int] = option(None, "sentences per batch (default: no limit)", group="hardware", type=int)

    def filter_rule(self) -> FilterRule:
        return FilterRule(max_ratio=self.max_ratio, drop_empty=not self.keep_empty, drop_max_len=not self.keep_max_len)

    def search(self, max_len_cap: int):
        from .ct2_search import SearchSettings

        return SearchSettings(beam=self.beam, nbest=self.nbest, lenpen=self.lenpen, sampling=self.sampling,
                              temperature=self.temperature, sampling_topk=self.sampling_topk, max_len_a=self.max_len_a,
                              max_len_b=self.max_len_b, max_len_cap=max_len_cap, max_tokens=self.max_tokens,
                              batch_size=self.batch_size)


def _search_defaults(args: DistillOptions) -> Tuple[int, int]:
    """(beam, nbest) with the defaults of the chosen search filled in."""
    if args.sampling:
        if args.beam is not None and args.beam > 1 and args.nbest is None:
            raise LskdError(f"--sampling with --beam {args.beam} and no --nbest is contradictory: fairseq would draw "
                            f"{args.beam} samples and keep the most likely; give --nbest N for N samples per source")
        nbest = 1 if args.nbest is None else args.nbest
        return (nbest if args.beam is None else args.beam), nbest
    return (5 if args.beam is None else args.beam), (1 if args.nbest is None else args.nbest)


def validate(opts: DistillOptions) -> DistillOptions:
    """Every option check that needs no file, before anything is loaded or written; the settings to run with."""
    opts.check()
    if opts.sampling and opts.temperature <= 0:
        raise LskdError(f"--temperature must be > 0, got {opts.temperature}")
    if not opts.sampling and opts.temperature != 1.0:
        raise LskdError(f"--temperature {opts.temperature} needs --sampling (beam search uses T = 1)")
    if not opts.sampling and opts.sampling_topk != -1:
        raise LskdError("--sampling-topk needs --sampling")
    beam, nbest = _search_defaults(opts)
    if beam < 1:
        raise LskdError(f"--beam must be >= 1, got {beam}")
    if nbest < 1:
        raise LskdError(f"--nbest must be >= 1, got {nbest}")
    if nbest > beam:
        raise LskdError(f"--nbest {nbest} is larger than --beam {beam} (fairseq returns at most beam hypotheses)")
    if opts.lenpen <= 0 and not opts.sampling:
        raise LskdError(f"--lenpen must be > 0, got {opts.lenpen}")
    if opts.max_len_a < 0 or opts.max_len_b < 1:
        raise LskdError(f"--max-len-a must be >= 0 and --max-len-b >= 1, got {opts.max_len_a} and {opts.max_len_b}")
    if opts.max_ratio < 0:
        raise LskdError(f"--max-ratio must be >= 0 (0 disables the filter), got {opts.max_ratio}")
    if opts.merge and opts.shard_id is not None:
        raise LskdError("--merge merges all shards; do not give --shard-id with it")
    if opts.select_by and opts.source_text:
        raise LskdError("--select-by compares hypotheses with the reference; --source-text has none")
    if opts.select_by and nbest < 2:
        raise LskdError(f"--select-by {opts.select_by} chooses among the n-best: give --nbest N > 1")
    if opts.source_text is not None and not Path(opts.source_text).is_file():
        raise LskdError(f"--source-text {opts.source_text}: no such file")
    if opts.batch_size is not None and opts.batch_size < 1:
        raise LskdError("--batch-size must be >= 1")
    if opts.engine == "fairseq" and opts.compute_type != "auto":
        raise LskdError(f"--compute-type {opts.compute_type} needs --engine ctranslate2 (fairseq decodes in float32, "
                        "or float16 with --fp16)")
    if opts.engine == "ctranslate2" and opts.fp16:
        raise LskdError("--fp16 is fairseq's; with --engine ctranslate2 give --compute-type float16")
    return dataclasses.replace(opts, beam=beam, nbest=nbest)


def language_pair(data: str, teacher_cfg) -> Tuple[str, str]:
    """The teacher's language pair, or the data dir's (teacher.languages); an LskdError when neither says."""
    src, tgt = languages(teacher_cfg, data)
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


class Inputs(NamedTuple):
    """What check_inputs found: the teacher checkpoints (read on first use) and the language pair."""

    checkpoints: list
    src: str
    tgt: str

    @property
    def paths(self) -> List[str]:
        return [c.path for c in self.checkpoints]


def check_inputs(opts: DistillOptions) -> Inputs:
    """File checks (data dir, split, dictionaries, --out) before any teacher weights are built."""

    data = opts.data
    if not os.path.isdir(data):
        raise LskdError(f"--data {data}: no such directory (expected fairseq binaries from fairseq-preprocess)")
    checkpoints = read_checkpoints(opts.teacher_path, trust=opts.trust_checkpoint)
    src, tgt = language_pair(data, checkpoints[0].state["cfg"].task)
    for lang in (src, tgt):
        if not os.path.isfile(os.path.join(data, f"dict.{lang}.txt")):
            raise LskdError(f"--data {data}: no dict.{lang}.txt (the teacher translates {src}->{tgt})")
    if (opts.source_text is None or opts.with_original) and _split_prefix(data, opts.split, src, tgt) is None:
        raise LskdError(f"--data {data}: no {opts.split!r} split (expected {opts.split}.{src}-{tgt}.{src}.bin/.idx and "
                        f".{tgt}.bin/.idx; --split chooses another)")
    out = Path(opts.out)
    if out.resolve() == Path(data).resolve():
        raise LskdError(f"--out {out}: is the --data directory; give a new directory")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "shards").is_dir()
                                               and not (out / "manifest.json").is_file())):
        raise LskdError(f"--out {out}: exists and is not an lskd distill-data directory (give a new or empty directory)")
    return Inputs(checkpoints, src, tgt)


def settings_of(opts: DistillOptions, inputs: Inputs) -> Dict:
    """What a finished shard must share with this run to be reused (compared key by key on a rerun)."""
    return {
        "data": os.path.abspath(opts.data),
        "split": opts.split,
        "source_lang": inputs.src,
        "target_lang": inputs.tgt,
        "teachers": [{"path": os.path.abspath(p), "sha256": sha256_file(Path(p))} for p in inputs.paths],
        "decoding": {"search": "sampling" if opts.sampling else "beam", "beam": opts.beam, "nbest": opts.nbest,
                     "lenpen": opts.lenpen, "temperature": opts.temperature if opts.sampling else None,
                     "sampling_topk": opts.sampling_topk, "max_len_a": opts.max_len_a, "max_len_b": opts.max_len_b,
                     "seed": opts.seed, "fp16": opts.fp16, "engine": opts.engine, "compute_type": opts.compute_type},
        "filters": {"max_ratio": opts.max_ratio, "drop_empty": not opts.keep_empty, "drop_max_len": not opts.keep_max_len},
        "num_shards": opts.num_shards,
        "source_text": None if opts.source_text is None else {"path": os.path.abspath(opts.source_text),
                                                               "sha256": sha256_file(Path(opts.source_text))},
        "with_original": opts.with_original or None,
        "select_by": opts.select_by,
    }


# ------------------------------------------------------------------------------------------ engine switch
def choose_engine(opts: DistillOptions, inputs: Inputs) -> Tuple[DistillOptions, Optional[ct2_model.Ct2Model]]:
    """Resolve --engine/--compute-type (recorded in the settings); for CTranslate2 convert the teacher (cached);
    an ensemble or an unconvertible model falls back to fairseq with a one-line notice."""
    fairseq_opts = dataclasses.replace(opts, engine="fairseq", compute_type="float16" if opts.fp16 else "float32")
    if opts.engine == "fairseq":
        return fairseq_opts, None
    import torch

    device = ct2_model.device_of(opts.cpu)
    compute_type = ct2_model.resolve_compute_type(opts.compute_type, device)
    threads = ct2_model.take_threads_from_torch()  # run() gives them back to torch when it ends
    reason = "an ensemble" if len(inputs.paths) > 1 else None
    if reason is None:
        try:
            model = ct2_model.convert(inputs.paths[0], opts.data, inputs.src, inputs.tgt)
        except ct2_model.Unconvertible as e:
            reason = f"not convertible ({e})"
    if reason is not None:
        print(f"notice: --engine ctranslate2: the teacher is {reason}; decoding with fairseq", file=sys.stderr)
        torch.set_num_threads(threads)
        return fairseq_opts, None
    return dataclasses.replace(opts, compute_type=compute_type), ct2_model.Ct2Model(model, device, threads)


def build_engine(opts: DistillOptions, session, converted: Optional[ct2_model.Ct2Model], device):
    """The engine that decodes: fairseq's generator, or the converted teacher on CTranslate2."""
    generation = generation_config(opts)
    for m in session.models:
        m.prepare_for_inference_(SimpleNamespace(generation=generation))
    if converted is None:
        return FairseqEngine(session, generation, device, opts.compute_type)
    from .ct2_search import Ct2Engine

    cap = min(m.max_decoder_positions() for m in session.models)
    return Ct2Engine(converted, opts.compute_type, opts.search(cap), session.task.source_dictionary,
                     session.task.target_dictionary)


# ------------------------------------------------------------------------------------------ entry point
def run(opts: DistillOptions) -> Path:
    with ct2_model.torch_threads_restored():  # the CTranslate2 engine takes them from torch while it decodes
        return _run(validate(opts))


def _run(opts: DistillOptions) -> Path:
    inputs = check_inputs(opts)
    opts, converted = choose_engine(opts, inputs)
    out = Path(opts.out)
    store = ShardStore(out, opts.split, opts.num_shards)
    settings = settings_of(opts, inputs)
    if opts.force:
        _discard(store)
    check_existing(out, settings)
    if opts.merge:
        return merge(opts, settings, store)  # refuses, writing nothing, when a shard is missing
    if (out / "manifest.json").is_file():
        print(f"skip: {out} is complete (manifest.json); --force redoes it", file=sys.stderr)
        return out
    wanted = [opts.shard_id] if opts.shard_id is not None else list(range(opts.num_shards))
    todo = store.missing(wanted)
    if todo:
        device = opts.device()
        # an LskdError (one line) on dictionaries that differ from --data
        splits = [] if opts.source_text is not None else [opts.split]
        session = TeacherSession.for_data(opts.data, opts.teacher_path, splits, checkpoints=inputs.checkpoints)
        if opts.source_text is not None:
            load_source_text(opts, session, inputs.src)
        session.to(device, opts.fp16)
        engine = build_engine(opts, session, converted, device)
        for i in todo:
            decode_shard(opts, settings, session, engine, store, i, device)
    skipped = [i for i in wanted if i not in todo]
    if skipped:
        print(f"skip: shard(s) {', '.join(map(str, skipped))} of {opts.num_shards} already finished", file=sys.stderr)
    left = store.missing()
    if not left:
        return merge(opts, settings, store)
    print(f"{len(left)} shard(s) left ({', '.join(map(str, left[:20]))}); the merge runs when all are finished",
          file=sys.stderr)
    return out


def load_source_text(opts: DistillOptions, session, src: str) -> None:
    """--source-text as the task's --split: each line prepared as --data's manifest says (the teacher's Moses + BPE
    or sentencepiece), in the teacher's source dictionary (unknown pieces -> <unk>), without targets."""
    from data_prep.common import DataPrepError
    from data_prep.teacher_vocab import text_encoder

    manifest_path = Path(opts.data).resolve().parent / "manifest.json"
    if not manifest_path.is_file():
        raise LskdError(f"--source-text: no data_prep manifest above --data ({manifest_path}) saying how text is "
                        "prepared for this teacher")
    manifest = {**json.loads(manifest_path.read_text(encoding="utf-8")), "path": str(manifest_path)}
    try:
        lines = Path(opts.source_text).read_text(encoding="utf-8").splitlines()
        pieces = text_encoder(manifest, src)(lines)
    except (UnicodeDecodeError, DataPrepError) as e:
        raise LskdError(f"--source-text {opts.source_text}: {e}") from None
    d = session.task.source_dictionary
    tokens = [d.encode_line(line, add_if_not_exist=False, append_eos=True).long() for line in pieces]
    unknown = sum(int((t == d.unk()).sum()) for t in tokens)
    print(f"--source-text {opts.source_text}: {len(tokens)} lines, {sum(len(t) for t in tokens)} tokens, {unknown} "
          f"<unk>", file=sys.stderr)
    session.task.datasets[opts.split] = session.task.build_dataset_for_inference(tokens, [len(t) for t in tokens])


def _discard(store: ShardStore) -> None:
    """--force: the split's shards (any number of them) and the merged output's manifest go."""
    for p in (store.root / "shards").glob(f"{store.split}-*-of-*"):
        shutil.rmtree(p)
    if (store.root / "manifest.json").exists():
        (store.root / "manifest.json").unlink()


def main(argv: List[str]) -> int:
    run(parse(DistillOptions, argv, "lskd distill-data", __doc__))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
