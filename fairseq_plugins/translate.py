"""`lskd translate`: raw text in, translations out, with a model folder made by `lskd export`.

    lskd translate --model DIR [--input FILE] [--output FILE] [--beam 5] [--lenpen 1] [--batch-size 64]

One line out per line in, in input order: each line is prepared as the model's data was (its sentencepiece
model, or Moses tokenisation + BPE), searched as `lskd ct2-generate --length-limit per-sentence` searches
(fairseq's beam search on CTranslate2, fairseq_plugins/ct2_search.py: the same hypotheses), and detokenised
back. The input is read and translated --chunk lines at a time (CTranslate2 batches each chunk by length), so
memory stays flat in the input's length. An empty line gives an empty line; a line longer than the model's
source positions is cut to them (counted at the end); invalid UTF-8 is refused naming the line. A progress line
(lines/s) goes to stderr when reading from a terminal or pipe, or with --progress.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, List, TextIO

from lskd.errors import LskdError
from lskd.fileio import atomic_path, read_json

from . import ct2_model
from .ct2_search import Decoder, SearchSettings
from .distill_decode import Detokenizer


class ExportedModel:
    """An `lskd export` folder: its dictionaries, its tokenizer both ways, and a Decoder over its CTranslate2 model."""

    def __init__(self, folder: Path, search: SearchSettings, device: str, compute_type: str, threads: int):
        from fairseq.data import Dictionary

        self.dir = Path(folder)
        if not (self.dir / "export.json").is_file():
            raise LskdError(f"--model {folder}: no export.json (not a folder made by lskd export)")
        self.manifest = read_json(self.dir / "export.json", "an lskd export manifest")
        self.src, self.tgt = self.manifest["source_lang"], self.manifest["target_lang"]
        self.src_dict = Dictionary.load(str(self.dir / f"dict.{self.src}.txt"))
        self.tgt_dict = Dictionary.load(str(self.dir / f"dict.{self.tgt}.txt"))
        translator = ct2_model.load(self.dir / "model", device, compute_type, threads)
        self.compute_type = translator.compute_type
        self.decoder = Decoder(translator, self.src_dict, self.tgt_dict, search)
        self.use_search(search)
        self.max_source = self.manifest["max_source_positions"]
        self.target_tokens = 0  # target tokens produced so far (</s> not counted): for tokens/s
        self.encode, self.decode = self._tokenizer(self.manifest["tokenizer"])

    def use_search(self, search: SearchSettings) -> None:
        """Search with these settings from now on (the length cap stays the model's)."""
        self.decoder.search = dataclasses.replace(search, max_len_cap=self.manifest["max_target_positions"], scores=False)

    def _tokenizer(self, tok: dict):
        """(raw lines -> piece lines, piece line -> text) as the data was prepared."""
        from data_prep.teacher_vocab import subword_encoder

        post, moses = tok["post_process"], tok["kind"] == "moses+bpe"
        if tok["kind"] == "sentencepiece":
            encode = subword_encoder("sentencepiece", self.dir / tok["models"][self.src], self.src)
        else:
            encode = subword_encoder("bpe", self.dir / tok["codes"], self.src, moses=moses)
        detok = Detokenizer(post, moses)
        return encode, lambda pieces: detok(pieces, self.tgt)

    def translate(self, lines: List[str]) -> "tuple[List[str], int]":
        """Translations of raw lines (empty stays empty), and how many sources were cut to the model's length."""
        todo = [i for i, line in enumerate(lines) if line.strip()]
        known, unk = self.src_dict.indices, self.src_dict.unk_word
        sources, cut = [], 0
        for pieces in self.encode([lines[i] for i in todo]):
            words = [w if w in known else unk for w in pieces.split()]  # Dictionary.encode_line's, as symbols
            if len(words) >= self.max_source:  # with </s>, at most max_source tokens
                words, cut = words[: self.max_source - 1], cut + 1
            sources.append(words)
        out = [""] * len(lines)
        symbols, skip = self.tgt_dict.symbols, {self.tgt_dict.eos(), self.tgt_dict.bos()}
        for i, hyps in zip(todo, self.decoder.decode_words(sources) if sources else []):
            pieces = [symbols[t] for t in hyps[0][0].tolist() if t not in skip]  # Dictionary.string's, per id
            self.target_tokens += len(pieces)
            out[i] = self.decode(" ".join(pieces))
        return out, cut


def read_chunks(stream: BinaryIO, size: int, name: str) -> Iterator[List[str]]:
    """UTF-8 lines in chunks of `size`; invalid UTF-8 is an LskdError naming the line."""
    chunk: List[str] = []
    for n, raw in enumerate(stream, start=1):
        try:
            chunk.append(raw.decode("utf-8").rstrip("\r\n"))
        except UnicodeDecodeError as e:
            raise LskdError(f"{name}: line {n} is not UTF-8 ({e.reason} at byte {e.start})") from None
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run(model: ExportedModel, stream: BinaryIO, out: TextIO, chunk: int, name: str,
        progress: Callable[[int, float], None]) -> dict:
    lines = cut = 0
    start = time.perf_counter()
    for part in read_chunks(stream, chunk, name):
        translations, c = model.translate(part)
        out.write("".join(t + "\n" for t in translations))
        lines, cut = lines + len(part), cut + c
        progress(lines, time.perf_counter() - start)
    return {"lines": lines, "cut": cut, "seconds": time.perf_counter() - start}


def summary(stats: dict, max_source: int) -> str:
    rate = stats["lines"] / max(stats["seconds"], 1e-9)
    return (f"translated {stats['lines']} lines in {stats['seconds']:.1f} s ({rate:.1f} lines/s); {stats['cut']} cut "
            f"to the model's {max_source} source positions")


def main(argv: List[str]) -> int:
    doc = __doc__.split("\n\n", 1)
    p = argparse.ArgumentParser(prog="lskd translate", description=doc[0], epilog=doc[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="a folder made by lskd export")
    p.add_argument("--input", type=Path, default=None, help="raw text, one sentence per line (default stdin)")
    p.add_argument("--output", type=Path, default=None, help="translations (default stdout)")
    p.add_argument("--beam", type=int, default=5, help="beam size (default 5)")
    p.add_argument("--lenpen", type=float, default=1.0, help="length penalty (default 1.0)")
    p.add_argument("--max-len-a", type=float, default=0.0, help="max output length a * src_len + b (default a=0)")
    p.add_argument("--max-len-b", type=int, default=200, help="(default b=200)")
    p.add_argument("--batch-size", type=int, default=64, help="sentences per CTranslate2 batch (default 64)")
    p.add_argument("--chunk", type=int, default=2000, help="lines read and translated at a time (default 2000)")
    p.add_argument("--compute-type", default="default",
                   help="CTranslate2 compute type (default: the export's quantization; float32, int8, ...)")
    p.add_argument("--cpu", action="store_true", help="run on the CPU even if a GPU is present")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's, i.e. OMP_NUM_THREADS)")
    p.add_argument("--progress", action="store_true", help="a progress line on stderr even when reading a file")
    a = p.parse_args(argv)
    if a.beam < 1 or a.lenpen <= 0 or a.batch_size < 1 or a.chunk < 1:
        raise LskdError(f"--beam {a.beam} --lenpen {a.lenpen} --batch-size {a.batch_size} --chunk {a.chunk}: expected "
                        "beam, batch size and chunk >= 1 and lenpen > 0")
    if a.input is not None and not a.input.is_file():
        raise LskdError(f"--input {a.input}: no such file")
    search = SearchSettings(beam=a.beam, lenpen=a.lenpen, max_len_a=a.max_len_a, max_len_b=a.max_len_b,
                            batch_size=a.batch_size)
    with ct2_model.torch_threads_restored():
        threads = a.threads or ct2_model.take_threads_from_torch()
        model = ExportedModel(a.model, search, ct2_model.device_of(a.cpu), a.compute_type, threads)
        show = a.progress or a.input is None

        def progress(lines: int, seconds: float) -> None:
            if show:
                print(f"\r{lines} lines, {lines / max(seconds, 1e-9):.1f} lines/s", end="", file=sys.stderr, flush=True)

        with contextlib.ExitStack() as stack:
            stream = stack.enter_context(open(a.input, "rb")) if a.input else sys.stdin.buffer
            out = sys.stdout
            if a.output:  # a temporary name until every line is written
                out = stack.enter_context(open(stack.enter_context(atomic_path(a.output)), "w", encoding="utf-8",
                                               newline="\n"))
            stats = run(model, stream, out, a.chunk, str(a.input or "stdin"), progress)
    print(("\n" if show else "") + summary(stats, model.max_source), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
