"""A "foreign" teacher for the tests: a toy fairseq model trained outside lskd's data_prep (Moses + BPE codes
learned by subword-nmt, or a sentencepiece model), written in fairseq's released layout (model.pt,
dict.SRC.txt, dict.TGT.txt, bpecodes or spm.model) with its training data deleted, as a user would bring it.

The toy language pair: German-looking words that map word for word to English-looking ones (with inflected
endings, so that BPE has something to split, capitalised first words and sentence punctuation, so that Moses
has something to do)."""

from __future__ import annotations

import io
import random
import shutil
from pathlib import Path
from typing import List, Tuple

from helpers import TINY_TRAIN, preprocess, run, tool

STEMS = [("haus", "house"), ("hund", "dog"), ("katz", "cat"), ("baum", "tree"), ("garten", "garden"),
         ("stadt", "town"), ("fluss", "river"), ("berg", "hill"), ("wald", "forest"), ("weg", "path"),
         ("tisch", "table"), ("buch", "book")]
ENDINGS = [("", ""), ("e", "s"), ("en", "es"), ("chen", "let")]
FUNCTION = [("der", "the"), ("und", "and"), ("im", "in"), ("mit", "with"), ("sieht", "sees"), ("hat", "has")]


def sentence_pair(rng: random.Random) -> Tuple[str, str]:
    src, tgt = [], []
    for _ in range(rng.randint(2, 6)):
        if rng.random() < 0.4:
            s, t = rng.choice(FUNCTION)
        else:
            (s_stem, t_stem), (s_end, t_end) = rng.choice(STEMS), rng.choice(ENDINGS)
            s, t = s_stem + s_end, t_stem + t_end
        src.append(s)
        tgt.append(t)
    if rng.random() < 0.3:
        i = rng.randrange(1, len(src) + 1)
        src.insert(i, ",")
        tgt.insert(i, ",")
    end = rng.choice([".", "?", "!"])
    return (" ".join(src).capitalize() + end).replace(" ,", ","), (" ".join(tgt).capitalize() + end).replace(" ,", ",")


def corpus(n: int, seed: int) -> List[Tuple[str, str]]:
    rng = random.Random(seed)
    return [sentence_pair(rng) for _ in range(n)]


def write_text(folder: Path, name: str, pairs, src: str = "de", tgt: str = "en") -> Tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / f"{name}.{src}", folder / f"{name}.{tgt}"
    for path, side in zip(paths, zip(*pairs)):
        path.write_text("\n".join(side) + "\n", encoding="utf-8")
    return paths


def _train(bin_dir: Path, save: Path, epochs: int) -> Path:
    run([tool("fairseq-train"), bin_dir, *TINY_TRAIN, "--save-dir", save, "--max-epoch", str(epochs),
         "--criterion", "ls_kd", "--kd-lambda", "0", "--label-smoothing", "0.1"])
    return save / "checkpoint_last.pt"


def make_teacher(root: Path, subword: str, n_train: int = 600, epochs: int = 12, src: str = "de",
                 tgt: str = "en") -> Path:
    """Train a toy teacher on text prepared the way fairseq's released models were (`subword`: "bpe" = Moses
    tokenisation + subword-nmt BPE, "spm" = a sentencepiece model), write it to root/teacher in the released
    layout and delete its training data; returns the teacher folder."""
    from data_prep import moses, subword as spm_tools
    from data_prep.bpe import BpeCodes
    from subword_nmt.learn_bpe import learn_bpe

    work, folder = root / "work", root / "teacher"
    folder.mkdir(parents=True)
    splits = {"train": corpus(n_train, 1), "valid": corpus(40, 2), "test": corpus(30, 3)}
    raw = {split: write_text(work / "raw", split, pairs, src, tgt) for split, pairs in splits.items()}
    enc = work / "enc"
    enc.mkdir()
    if subword == "bpe":
        tok = {(split, lang): moses.tokenize(path.read_text(encoding="utf-8").splitlines(), lang, aggressive=True)
               for split, paths in raw.items() for lang, path in zip((src, tgt), paths)}
        codes = io.StringIO()
        learn_bpe(io.StringIO("\n".join(tok["train", src] + tok["train", tgt]) + "\n"), codes, 60, min_frequency=2)
        (folder / "bpecodes").write_text(codes.getvalue(), encoding="utf-8")
        bpe = BpeCodes(folder / "bpecodes")
        for (split, lang), lines in tok.items():
            (enc / f"{split}.{lang}").write_text("".join(bpe.line(line) + "\n" for line in lines), encoding="utf-8")
    else:
        spm_tools.train([raw["train"][0], raw["train"][1]], folder / "spm.model", vocab_size=80)
        (folder / "spm.vocab").unlink()
        for split, paths in raw.items():
            for lang, path in zip((src, tgt), paths):
                spm_tools.encode_file(folder / "spm.model", path, enc / f"{split}.{lang}")
    preprocess_pair(enc, work / "bin", src, tgt)
    checkpoint = _train(work / "bin", work / "save", epochs)
    shutil.copy(checkpoint, folder / "model.pt")
    for lang in (src, tgt):
        shutil.copy(work / "bin" / f"dict.{lang}.txt", folder / f"dict.{lang}.txt")
    shutil.rmtree(work)  # a released model comes without its training data
    return folder


def preprocess_pair(prefix_dir: Path, dest: Path, src: str, tgt: str) -> None:
    run([tool("fairseq-preprocess"), "--source-lang", src, "--target-lang", tgt, "--trainpref", prefix_dir / "train",
         "--validpref", prefix_dir / "valid", "--testpref", prefix_dir / "test", "--destdir", dest, "--workers", "1"])


__all__ = ["corpus", "make_teacher", "preprocess", "write_text"]
