"""Applying a teacher's BPE codes (Sennrich et al.'s merge operations) to tokenised text, as its training data was.

Two code formats, told apart by their lines:
  subword-nmt   optional "#version: 0.2" header (else version 0.1), then one merge per line: "a b"
  fastBPE       no header, one merge per line with its count: "a b 1234" (fairseq's released models);
                fastBPE segments as subword-nmt 0.2 does (the end-of-word mark on the last character)
A word's characters (the last one marked end-of-word; version 0.1: an extra end-of-word symbol) are merged
pair by pair, the best-ranked pair present first, every occurrence left to right, until no pair has a rank;
non-final pieces get the separator "@@". The same output as subword-nmt's apply_bpe (no vocabulary filter, no
glossaries, no dropout: what fairseq's released models used), checked in tests/data_preparation/test_bpe.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List, Tuple

from .common import DataPrepError

EOW = "</w>"


class BpeCodes:
    """The merges of a codes file, ranked by their line (a merge listed twice keeps its first rank)."""

    def __init__(self, path: Path, separator: str = "@@"):
        self.path, self.separator = Path(path), separator
        self.version, self.ranks = self._read(self.path)
        self._cache: Dict[str, Tuple[str, ...]] = {}

    @staticmethod
    def _read(path: Path) -> Tuple[Tuple[int, int], Dict[Tuple[str, str], int]]:
        try:
            lines = path.read_text(encoding="utf-8").rstrip("\n").split("\n")
        except (OSError, UnicodeDecodeError) as e:
            raise DataPrepError(f"{path}: cannot read BPE codes ({e})") from None
        version = (0, 1)
        if lines and lines[0].startswith("#version:"):
            version = tuple(int(x) for x in re.sub(r"(\.0+)*$", "", lines[0].split()[-1]).split("."))
            if version not in ((0, 1), (0, 2)):
                raise DataPrepError(f"{path}: BPE codes version {lines[0].split()[-1]}; expected 0.1 or 0.2")
            lines = lines[1:]
        ranks: Dict[Tuple[str, str], int] = {}
        counted = None
        for n, line in enumerate(lines, start=2 if version != (0, 1) else 1):
            parts = line.strip("\r\n ").split(" ")
            if counted is None:
                counted = len(parts) == 3 and parts[2].isdigit()
            if len(parts) != (3 if counted else 2):
                raise DataPrepError(f"{path}: line {n} is not a BPE merge ('a b'{' count' if counted else ''}): {line!r}")
            ranks.setdefault((parts[0], parts[1]), len(ranks))
        if not ranks:
            raise DataPrepError(f"{path}: no BPE merges")
        if counted:
            version = (0, 2)  # fastBPE
        return version, ranks

    def word(self, word: str) -> Tuple[str, ...]:
        """The pieces of one word (without separators)."""
        if word in self._cache:
            return self._cache[word]
        if len(word) == 1:
            return (word,)
        symbols = list(word) + [EOW] if self.version == (0, 1) else list(word[:-1]) + [word[-1] + EOW]
        while len(symbols) > 1:
            ranked = [(self.ranks[p], i) for i, p in enumerate(zip(symbols, symbols[1:])) if p in self.ranks]
            if not ranked:
                break
            best = min(ranked)[0]
            starts = [i for r, i in ranked if r == best]
            merged, pos = [], 0
            for j in starts:
                if j < pos:  # overlapping occurrence (x x x -> xx x)
                    continue
                merged.extend(symbols[pos:j])
                merged.append(symbols[j] + symbols[j + 1])
                pos = j + 2
            merged.extend(symbols[pos:])
            symbols = merged
        if symbols[-1] == EOW:
            symbols = symbols[:-1]
        elif symbols[-1].endswith(EOW):
            symbols[-1] = symbols[-1][: -len(EOW)]
        out = tuple(symbols)
        self._cache[word] = out
        return out

    def line(self, line: str) -> str:
        """A whitespace-tokenised line segmented: non-final pieces of a word end in the separator."""
        out: List[str] = []
        for word in line.strip("\r\n ").split(" "):
            if not word:
                continue
            pieces = self.word(word)
            out.extend(p + self.separator for p in pieces[:-1])
            out.append(pieces[-1])
        return " ".join(out)
