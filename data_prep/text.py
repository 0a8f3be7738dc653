"""Parallel text: strict reading (UTF-8, equal line counts) and the length / length-ratio filter."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from .common import DataPrepError

Pair = Tuple[str, str]
_WS = re.compile(r"\s+")


def normalise_space(s: str) -> str:
    """Collapse runs of white space (tabs, newlines, NBSP...) to one space and strip the ends."""
    return _WS.sub(" ", s).strip()


def read_lines(path: Path) -> List[str]:
    """Lines of a UTF-8 file without their line ends; a bad byte is an error naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataPrepError(f"{path}: file not found")
    out = []
    with open(path, "rb") as f:
        for i, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataPrepError(f"{path}: line {i} is not valid UTF-8 ({e.reason} at byte {e.start})") from None
            if i == 1 and line.startswith("\ufeff"):
                line = line[1:]
            out.append(line.rstrip("\r\n"))
    return out


def read_parallel(src: Path, tgt: Path) -> List[Pair]:
    """Read two line-aligned files; their line counts must be equal."""
    a, b = read_lines(src), read_lines(tgt)
    if len(a) != len(b):
        raise DataPrepError(f"parallel files are misaligned: {src} has {len(a)} lines but {tgt} has {len(b)} lines")
    return list(zip(a, b))


class PairFilter:
    """Moses clean-corpus-n style filter on white-space words, streaming (see filter_pairs).

    moses=True follows clean-corpus-n.perl to the letter: '|' is deleted from both sides unless the
    first pair holds one (a factored corpus), and a pair with a word over 1000 characters is dropped
    ("word_length").
    """

    MAX_WORD_LENGTH = 1000

    def __init__(self, *, min_len: int = 1, max_len: Optional[int] = None, ratio: Optional[float] = None,
                 moses: bool = False):
        self.min_len, self.max_len, self.ratio, self.moses = min_len, max_len, ratio, moses
        self.n = self.kept = 0
        self.dropped = {"empty": 0, "length": 0, "ratio": 0}
        if moses:
            self.dropped["word_length"] = 0
        self.examples: Dict[str, List[int]] = {k: [] for k in self.dropped}
        self._factored: Optional[bool] = None

    def reason(self, s: str, t: str) -> Tuple[Optional[str], str, str]:
        """(why the pair is dropped or None, the cleaned source, the cleaned target)."""
        if self.moses:
            if self._factored is None:
                self._factored = "|" in s or "|" in t
            if not self._factored:
                s, t = s.replace("|", ""), t.replace("|", "")
        s, t = normalise_space(s), normalise_space(t)
        if not s or not t:
            return "empty", s, t
        ls, lt = len(s.split(" ")), len(t.split(" "))
        if ls < self.min_len or lt < self.min_len or (self.max_len is not None and (ls > self.max_len or lt > self.max_len)):
            return "length", s, t
        if self.ratio is not None and (ls > self.ratio * lt or lt > self.ratio * ls):
            return "ratio", s, t
        if self.moses and max(len(w) for w in s.split(" ") + t.split(" ")) > self.MAX_WORD_LENGTH:
            return "word_length", s, t
        return None, s, t

    def apply(self, pairs: Iterable[Pair]) -> Iterator[Pair]:
        for s, t in pairs:
            self.n += 1
            why, s, t = self.reason(s, t)
            if why:
                self.dropped[why] += 1
                if len(self.examples[why]) < 5:
                    self.examples[why].append(self.n)
                continue
            self.kept += 1
            yield s, t

    def report(self) -> Dict[str, object]:
        return {"input": self.n, "kept": self.kept, "dropped": dict(self.dropped),
                "examples": {k: list(v) for k, v in self.examples.items() if v},
                "filter": {"min_len": self.min_len, "max_len": self.max_len, "ratio": self.ratio,
                           **({"moses_clean_corpus_n": True} if self.moses else {})}}


def filter_pairs(pairs: Iterable[Pair], *, min_len: int = 1, max_len: Optional[int] = None,
                 ratio: Optional[float] = None, moses: bool = False) -> Tuple[List[Pair], Dict[str, object]]:
    """Moses clean-corpus-n style filter on white-space words, after normalising white space.

    Drops a pair when a side is empty ("empty"), has fewer than min_len or more than max_len words
    ("length"), or when one side has more than `ratio` times the words of the other ("ratio").
    Returns (kept pairs, report) where report = {"input", "kept", "dropped": {reason: n}, "examples"}.
    """
    f = PairFilter(min_len=min_len, max_len=max_len, ratio=ratio, moses=moses)
    kept = list(f.apply(pairs))
    return kept, f.report()


def format_report(name: str, report: Dict[str, object]) -> str:
    d = report["dropped"]
    ex = report.get("examples") or {}
    parts = [f"{k} {v}" + (f" (e.g. pair {', '.join(map(str, ex[k]))})" if k in ex else "") for k, v in d.items() if v]
    return f"{name}: kept {report['kept']} of {report['input']} pairs" + (f"; dropped: {'; '.join(parts)}" if parts else "")


def require_nonempty(name: str, pairs: Sequence[Pair], report: Optional[Dict[str, object]] = None) -> None:
    if not pairs:
        extra = f" ({format_report(name, report)})" if report else ""
        raise DataPrepError(f"{name}: the corpus is empty after filtering{extra}; check the input files and the --min-len/--max-len/--ratio options")
