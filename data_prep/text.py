"""Parallel text: strict reading (UTF-8, equal line counts) and the length / length-ratio filter."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

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


def filter_pairs(pairs: Iterable[Pair], *, min_len: int = 1, max_len: Optional[int] = None,
                 ratio: Optional[float] = None) -> Tuple[List[Pair], Dict[str, object]]:
    """Moses clean-corpus-n style filter on white-space words, after normalising white space.

    Drops a pair when a side is empty ("empty"), has fewer than min_len or more than max_len words
    ("length"), or when one side has more than `ratio` times the words of the other ("ratio").
    Returns (kept pairs, report) where report = {"input", "kept", "dropped": {reason: n}, "examples"}.
    """
    kept: List[Pair] = []
    dropped = {"empty": 0, "length": 0, "ratio": 0}
    examples: Dict[str, List[int]] = {k: [] for k in dropped}
    n = 0
    for i, (s, t) in enumerate(pairs, 1):
        n += 1
        s, t = normalise_space(s), normalise_space(t)
        ls, lt = len(s.split()), len(t.split())
        reason = None
        if ls == 0 or lt == 0:
            reason = "empty"
        elif ls < min_len or lt < min_len or (max_len is not None and (ls > max_len or lt > max_len)):
            reason = "length"
        elif ratio is not None and (ls > ratio * lt or lt > ratio * ls):
            reason = "ratio"
        if reason:
            dropped[reason] += 1
            if len(examples[reason]) < 5:
                examples[reason].append(i)
            continue
        kept.append((s, t))
    report = {"input": n, "kept": len(kept), "dropped": dropped,
              "examples": {k: v for k, v in examples.items() if v},
              "filter": {"min_len": min_len, "max_len": max_len, "ratio": ratio}}
    return kept, report


def format_report(name: str, report: Dict[str, object]) -> str:
    d = report["dropped"]
    ex = report.get("examples") or {}
    parts = [f"{k} {v}" + (f" (e.g. pair {', '.join(map(str, ex[k]))})" if k in ex else "") for k, v in d.items() if v]
    return f"{name}: kept {report['kept']} of {report['input']} pairs" + (f"; dropped: {'; '.join(parts)}" if parts else "")


def require_nonempty(name: str, pairs: Sequence[Pair], report: Optional[Dict[str, object]] = None) -> None:
    if not pairs:
        extra = f" ({format_report(name, report)})" if report else ""
        raise DataPrepError(f"{name}: the corpus is empty after filtering{extra}; check the input files and the --min-len/--max-len/--ratio options")
