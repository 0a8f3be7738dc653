"""SentencePiece: train one joint model (default) or one per language; encode text to pieces."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, List, Sequence

from lskd.fileio import atomic_path

from .common import DataPrepError, log


def train(inputs: Sequence[Path], model: Path, *, vocab_size: int = 8000, model_type: str = "unigram",
          character_coverage: float = 1.0, max_sentences: int = 2_000_000, threads: int = 2,
          normalization: str = "nmt_nfkc", seed: int = 1) -> None:
    """Train a sentencepiece model from text files; writes `model` (…/name.model) and name.vocab.

    A corpus over `max_sentences` lines is sampled: `seed` fixes the sample (sentencepiece's generator
    is otherwise seeded from the clock). `normalization` is sentencepiece's rule (nmt_nfkc or identity).

    hard_vocab_limit=False lets a corpus too small for `vocab_size` get a smaller vocabulary
    (unigram) instead of failing; with model_type=bpe sentencepiece requires the full size.
    """
    import sentencepiece as spm

    spm.set_random_generator_seed(seed)
    model = Path(model)
    if not str(model).endswith(".model"):
        raise ValueError(f"{model}: a sentencepiece model path must end in .model")
    vocab = model.with_suffix(".vocab")
    with atomic_path(model) as tmp_model, atomic_path(vocab) as tmp_vocab:
        prefix = str(tmp_model)[: -len(tmp_model.suffix)] if tmp_model.suffix else str(tmp_model)
        prefix = prefix + ".spm"
        try:
            spm.SentencePieceTrainer.train(
                input=[str(p) for p in inputs], model_prefix=prefix, vocab_size=vocab_size,
                model_type=model_type, character_coverage=character_coverage,
                input_sentence_size=max_sentences, shuffle_input_sentence=True,
                hard_vocab_limit=False, num_threads=threads, minloglevel=2, normalization_rule_name=normalization,
            )
        except RuntimeError as e:
            for suf in (".model", ".vocab"):
                if os.path.exists(prefix + suf):
                    os.unlink(prefix + suf)
            raise DataPrepError(f"sentencepiece training on {', '.join(map(str, inputs))} failed: "
                                f"{str(e).strip().splitlines()[-1]} (try a smaller --vocab-size)") from None
        os.replace(prefix + ".model", tmp_model)
        os.replace(prefix + ".vocab", tmp_vocab)
    log(f"sentencepiece: {model} ({vocab_size} pieces requested, {model_type})")


def vocab_size_of(model: Path) -> int:
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(model)).get_piece_size()


def encode_file(model: Path, src: Path, dst: Path, batch: int = 10000) -> int:
    """Encode each line of `src` to space-separated pieces in `dst` (atomically); returns lines."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model))
    n = 0
    with open(src, encoding="utf-8") as f, atomic_path(dst) as tmp, open(tmp, "w", encoding="utf-8") as out:
        buf: List[str] = []

        def flush():
            for pieces in sp.encode(buf, out_type=str):
                out.write(" ".join(pieces) + "\n")

        for line in f:
            buf.append(line.rstrip("\n"))
            n += 1
            if len(buf) >= batch:
                flush()
                buf = []
        if buf:
            flush()
    return n


def decode_lines(model: Path, lines: Iterable[str]) -> List[str]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(model))
    return [sp.decode(line.split()) for line in lines]
