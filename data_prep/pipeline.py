"""The path every corpus takes: extract (module-specific) -> sentencepiece -> fairseq-preprocess.

Output layout of OUT (see data_prep/__init__.py): raw/, spm/, bin/, manifest.json. Each step is
skipped when its manifest shows the same inputs (sha256) and options, and its outputs are intact.
With a teacher's vocabulary (--teacher-dir, data_prep/teacher_vocab.py) the subword step applies the
teacher's BPE codes or sentencepiece model into subword/ and binarises with its dictionaries instead.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import subword
from lskd.fileio import atomic_path, command_line, write_json

from .common import DataPrepError, count_lines, log, run_step
from .teacher_vocab import (TeacherVocab, add_teacher_vocab_args, dictionary_symbols, subword_encoder, teacher_vocab,
                            unknown_pieces)

SPLITS = ("train", "valid", "test")
Pair = Tuple[str, str]
_LANG = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def add_output_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("output, subwords and binarisation (shared by all data_prep commands)")
    g.add_argument("--out", required=True, type=Path, help="output directory (raw/, spm/, bin/, manifest.json)")
    g.add_argument("--max-train", type=int, default=None, metavar="N",
                   help="keep only the first N training pairs (after filtering; deterministic), for small demos")
    g.add_argument("--vocab-size", type=int, default=8000, help="sentencepiece vocabulary size (default 8000)")
    g.add_argument("--spm-model-type", choices=("unigram", "bpe"), default="unigram", help="default unigram")
    g.add_argument("--spm-normalization", choices=("nmt_nfkc", "identity"), default="nmt_nfkc",
                   help="sentencepiece's normalisation rule (default here: %(default)s). It rewrites the text the "
                        "model sees, so decoded hypotheses come out normalised while references do not: identity "
                        "keeps hypotheses and references in the same characters")
    g.add_argument("--spm-seed", type=int, default=1,
                   help="seed of sentencepiece's random choice of training sentences (default 1)")
    v = g.add_mutually_exclusive_group()
    v.add_argument("--joint", dest="joint", action="store_true", default=True,
                   help="one sentencepiece model and a joined fairseq dictionary for both languages (default)")
    v.add_argument("--separate", dest="joint", action="store_false",
                   help="one sentencepiece model and one fairseq dictionary per language")
    g.add_argument("--no-binarize", dest="binarize", action="store_false",
                   help="stop after sentencepiece (no fairseq-preprocess)")
    g.add_argument("--workers", type=int, default=2, help="fairseq-preprocess workers (default 2)")
    add_teacher_vocab_args(parser)


def check_pair(src: str, tgt: str) -> None:
    for opt, lang in (("--src", src), ("--tgt", tgt)):
        if not _LANG.match(lang):
            raise DataPrepError(f"{opt} {lang!r}: expected a language code of letters, digits and _ (e.g. de, en)")
    if src == tgt:
        raise DataPrepError(f"--src and --tgt are both {src!r}: expected two different languages")


def check_output_args(args: argparse.Namespace) -> None:
    if args.max_train is not None and args.max_train < 1:
        raise DataPrepError(f"--max-train {args.max_train}: expected a positive number of pairs")
    if args.vocab_size < 10:
        raise DataPrepError(f"--vocab-size {args.vocab_size}: expected at least 10")
    if args.workers < 1:
        raise DataPrepError(f"--workers {args.workers}: expected at least 1")


def raw_paths(out: Path, src: str, tgt: str) -> List[Path]:
    return [Path(out) / "raw" / f"{s}.{lang}" for s in SPLITS for lang in (src, tgt)]


def write_pairs(folder: Path, split: str, src: str, tgt: str, pairs: Iterable[Pair], limit: Optional[int] = None) -> int:
    """Write folder/split.{src,tgt} (atomically, in one pass: `pairs` may be a stream); returns the number
    of pairs seen (those after `limit` are counted, not written)."""
    n = 0
    with atomic_path(folder / f"{split}.{src}") as ts, atomic_path(folder / f"{split}.{tgt}") as tt, \
            open(ts, "w", encoding="utf-8", newline="\n") as fs, open(tt, "w", encoding="utf-8", newline="\n") as ft:
        for s, t in pairs:
            n += 1
            if limit is None or n <= limit:
                fs.write(s + "\n")
                ft.write(t + "\n")
    return n


def extract_step(out: Path, src: str, tgt: str, *, name: str, inputs: Sequence[Path], options: dict,
                 make_splits: Callable[[], Tuple[Dict[str, List[Pair]], dict]],
                 max_train: Optional[int] = None) -> dict:
    """Write OUT/raw/{split}.{src,tgt} from make_splits() -> ({split: pairs}, stats); skip when done.
    Each split may be a list or a one-pass stream of pairs (a corpus that does not fit in memory)."""
    out = Path(out)
    options = dict(options, max_train=max_train)

    def action():
        splits, stats = make_splits()
        counts = {}
        for split in SPLITS:
            pairs = splits.get(split) or ()
            counts[split] = write_pairs(out / "raw", split, src, tgt, pairs,
                                        limit=max_train if split == "train" else None)
            if counts[split] == 0:
                raise DataPrepError(f"{name}: the {split} split is empty after filtering; check the inputs and filter options")
        # a stream's statistics exist once it is consumed: make_splits may give them as a callable
        stats = {k: v for key, val in stats.items() for k, v in (val().items() if callable(val) else [(key, val)])}
        if max_train is not None and counts["train"] > max_train:
            stats["max_train"] = {"before": counts["train"], "after": max_train}
            counts["train"] = max_train
        stats["pairs"] = counts
        log(f"{name}: " + ", ".join(f"{s} {counts[s]}" for s in SPLITS) + " pairs")
        return stats

    return run_step(f"{name}: extract -> {out / 'raw'}", manifest=out / "raw" / "manifest.json",
                    inputs=list(inputs), options=options, outputs=raw_paths(out, src, tgt), action=action)


def spm_models(out: Path, src: str, tgt: str, joint: bool) -> Dict[str, Path]:
    """language -> sentencepiece model path."""
    spm_dir = Path(out) / "spm"
    if joint:
        return {src: spm_dir / "spm.model", tgt: spm_dir / "spm.model"}
    return {src: spm_dir / f"spm.{src}.model", tgt: spm_dir / f"spm.{tgt}.model"}


def subword_and_binarize(out: Path, src: str, tgt: str, *, vocab_size: int = 8000, joint: bool = True,
                         model_type: str = "unigram", binarize: bool = True, workers: int = 2,
                         normalization: str = "nmt_nfkc", seed: int = 1) -> dict:
    """Train sentencepiece on raw/train.*, encode every split to spm/, then fairseq-preprocess to bin/."""
    out = Path(out)
    raw, spm_dir = out / "raw", out / "spm"
    models = spm_models(out, src, tgt, joint)
    spm_opts = {"vocab_size": vocab_size, "model_type": model_type, "joint": joint, "character_coverage": 1.0,
                "normalization": normalization, "seed": seed}
    if joint:
        groups = [([raw / f"train.{src}", raw / f"train.{tgt}"], models[src])]
    else:
        groups = [([raw / f"train.{lang}"], models[lang]) for lang in (src, tgt)]

    def train_action():
        sizes = {}
        for inputs, model in groups:
            subword.train(inputs, model, vocab_size=vocab_size, model_type=model_type,
                          normalization=normalization, seed=seed)
            sizes[model.name] = subword.vocab_size_of(model)
        return {"pieces": sizes}

    tr = run_step("sentencepiece: train", manifest=spm_dir / "manifest.train.json",
                  inputs=[p for g in groups for p in g[0]], options=spm_opts,
                  outputs=sorted({m for m in models.values()}), action=train_action)
    for name, n in tr["stats"]["pieces"].items():
        if n < vocab_size:
            log(f"note: {name} has {n} pieces (fewer than --vocab-size {vocab_size}: the corpus is small)")

    encoded = [spm_dir / f"{s}.{lang}" for s in SPLITS for lang in (src, tgt)]

    def encode_action():
        for s in SPLITS:
            for lang in (src, tgt):
                subword.encode_file(models[lang], raw / f"{s}.{lang}", spm_dir / f"{s}.{lang}")
        return {}

    run_step("sentencepiece: encode", manifest=spm_dir / "manifest.encode.json",
             inputs=sorted({m for m in models.values()}) + raw_paths(out, src, tgt),
             options={"joint": joint}, outputs=encoded, action=encode_action)

    result = {"spm_models": {lang: str(m) for lang, m in models.items()}}
    if binarize:
        from .binarize import binarize as _binarize

        bin_dir = out / "bin"

        def bin_action():
            cmd = _binarize(src, tgt, spm_dir, bin_dir, joint=joint, workers=workers)
            return {"fairseq_preprocess": cmd}

        run_step("fairseq-preprocess", manifest=out / "manifest.bin.json", inputs=encoded,
                 options={"joint": joint, "src": src, "tgt": tgt}, outputs=[bin_dir], action=bin_action)
        result["bin"] = str(bin_dir)
    return result


def _encode_for_teacher(vocab: TeacherVocab, raw: Path, dst: Path, lang: str, tokenize: bool) -> None:
    """One raw file in the teacher's pieces: Moses (-a, escaped; unless the raw text is tokenised already) and
    BPE, or its sentencepiece model."""
    if vocab.spm_model:
        subword.encode_file(vocab.spm_model, raw, dst)  # streamed in batches
        return
    encode = subword_encoder("bpe", vocab.bpe_codes, lang, moses=tokenize)
    with atomic_path(dst) as tmp:
        tmp.write_text("".join(line + "\n" for line in encode(raw.read_text(encoding="utf-8").splitlines())),
                       encoding="utf-8")


def teacher_subword_and_binarize(out: Path, src: str, tgt: str, vocab: TeacherVocab, *, tokenized: bool,
                                 binarize: bool = True, workers: int = 2) -> dict:
    """raw/ -> subword/ with the teacher's subword model -> bin/ with its dictionaries; <unk> counts per split."""
    out = Path(out)
    raw, sub = out / "raw", out / "subword"
    subword_file = vocab.bpe_codes or vocab.spm_model
    encoded = [sub / f"{s}.{lang}" for s in SPLITS for lang in (src, tgt)]

    def encode_action():
        for s in SPLITS:
            for lang in (src, tgt):
                _encode_for_teacher(vocab, raw / f"{s}.{lang}", sub / f"{s}.{lang}", lang, tokenize=not tokenized)
        symbols = {lang: dictionary_symbols(d) for lang, d in ((src, vocab.srcdict), (tgt, vocab.tgtdict))}
        unk = {f"{s}.{lang}": unknown_pieces(sub / f"{s}.{lang}", symbols[lang]) for s in SPLITS for lang in (src, tgt)}
        for name, u in unk.items():
            if u["unknown"]:
                log(f"note: {name}: {u['unknown']} of {u['tokens']} pieces are not in the teacher's dictionary "
                    f"(-> <unk>; e.g. {' '.join(u['examples'])})")
        return {"unknown_pieces": unk}

    step = run_step(f"{vocab.subword}: encode with the teacher's {subword_file.name}", manifest=sub / "manifest.json",
                    inputs=[subword_file, vocab.srcdict, vocab.tgtdict] + raw_paths(out, src, tgt),
                    options={"subword": vocab.subword, "tokenize": not tokenized}, outputs=encoded,
                    action=encode_action)
    result = {"subword_dir": str(sub), "unknown_pieces": step["stats"]["unknown_pieces"]}
    if binarize:
        from .binarize import binarize as _binarize

        def bin_action():
            return {"fairseq_preprocess": _binarize(src, tgt, sub, out / "bin", joint=False, workers=workers,
                                                    dicts=(vocab.srcdict, vocab.tgtdict))}

        run_step("fairseq-preprocess (the teacher's dictionaries)", manifest=out / "manifest.bin.json",
                 inputs=encoded + [vocab.srcdict, vocab.tgtdict], options={"src": src, "tgt": tgt, "teacher_dicts": True},
                 outputs=[out / "bin"], action=bin_action)
        result["bin"] = str(out / "bin")
    return result


def write_summary(out: Path, src: str, tgt: str, *, corpus: str, joint: bool, extra: Optional[dict] = None) -> dict:
    """OUT/manifest.json: what is where, with line counts (read by recipes)."""
    out = Path(out)
    lines = {s: count_lines(out / "raw" / f"{s}.{src}") for s in SPLITS}
    models = spm_models(out, src, tgt, joint)
    summary = {
        "corpus": corpus, "src": src, "tgt": tgt, "joint": joint,
        "raw": str(out / "raw"), "spm": str(out / "spm"),
        "spm_models": {lang: str(m) for lang, m in models.items()},
        "bin": str(out / "bin") if (out / "bin").is_dir() else None,
        "pairs": lines, "created_by": command_line(),
        "step_manifests": [str(p) for p in (out / "raw" / "manifest.json", out / "spm" / "manifest.train.json",
                                              out / "spm" / "manifest.encode.json", out / "manifest.bin.json") if p.exists()],
    }
    if extra and "preprocessing" in extra:  # a teacher's vocabulary: no sentencepiece model of this data's own
        for key in ("spm", "spm_models"):
            summary.pop(key)
        summary["step_manifests"].insert(1, str(out / "subword" / "manifest.json"))
    if extra:
        summary.update(extra)
    write_json(out / "manifest.json", summary)
    log(f"{corpus} {src}-{tgt}: " + ", ".join(f"{s} {lines[s]}" for s in SPLITS) + f" pairs -> {out}")
    return summary


def prepare(args: argparse.Namespace, *, corpus: str, src: str, tgt: str, inputs: Sequence[Path], options: dict,
            make_splits: Callable[[], Tuple[Dict[str, Iterable[Pair]], dict]], scoring: Optional[dict] = None) -> dict:
    """extract -> subwords -> binaries -> summary, with the shared options of add_output_args().

    `scoring` (stored in OUT/manifest.json, read by `lskd score`) says how test BLEU is computed on this
    data: {"convention": "detok" | "tokenized" | "wmt14", "text": what raw/test.* holds, ...}."""
    check_output_args(args)
    vocab = teacher_vocab(args, src, tgt)  # checked before any step runs
    extract_step(args.out, src, tgt, name=corpus, inputs=inputs, options=options, make_splits=make_splits,
                 max_train=args.max_train)
    scoring = dict(scoring or {"convention": "detok"})
    if vocab is None:
        subword_and_binarize(args.out, src, tgt, vocab_size=args.vocab_size, joint=args.joint,
                             model_type=args.spm_model_type, binarize=args.binarize, workers=args.workers,
                             normalization=args.spm_normalization, seed=args.spm_seed)
        extra = {"scoring": scoring, "post_process": "sentencepiece"}
    else:
        tokenized = scoring["convention"] != "detok"  # raw/ holds Moses-tokenised text already
        result = teacher_subword_and_binarize(args.out, src, tgt, vocab, tokenized=tokenized, binarize=args.binarize,
                                              workers=args.workers)
        if vocab.bpe_codes and not tokenized:  # hypotheses come out Moses-tokenised: detokenise before sacreBLEU
            scoring.update(detokenize="moses", lang=tgt)
        extra = {"scoring": scoring, "post_process": vocab.post_process, "preprocessing": vocab.record(src, tgt, tokenize=not tokenized),
                 "unknown_pieces": result["unknown_pieces"], "subword_dir": result["subword_dir"]}
    return write_summary(args.out, src, tgt, corpus=corpus, joint=args.joint and vocab is None, extra=extra)
