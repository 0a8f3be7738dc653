"""Moses-style preprocessing with sacremoses (the Perl scripts of fairseq's prepare-*.sh recipes)."""

from __future__ import annotations

import functools
import itertools
import re
from multiprocessing import Pool
from typing import Iterable, Iterator, List, Sequence, Tuple

import regex

_CHUNK = 2000


_FINAL_PERIOD = re.compile(r"^(\S+)\.$")


class _Padded:
    """A compiled regex whose sub() runs on " text " (the padding tokenizer.perl gives every line)."""

    def __init__(self, rx):
        self.rx = rx

    def sub(self, repl, text):
        return self.rx.sub(repl, f" {text} ").strip(" ")


@functools.lru_cache(maxsize=None)
def _tools(lang: str):
    from sacremoses import MosesPunctNormalizer, MosesTokenizer

    class PerlTokenizer(MosesTokenizer):
        """sacremoses' tokenizer made to agree with tokenizer.perl where they differ: the last word's final
        period is always split off ("... in Kapitel 1." -> "1 ."), which sacremoses skips for non-breaking
        prefixes; and the apostrophe rules see the line padded with spaces, as tokenizer.perl pads it
        (" $text "), so that a line-initial or line-final apostrophe is split ("'Tis" -> "' Tis")."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.ENGLISH_SPECIFIC_APOSTROPHE = [(_Padded(rx), sub) for rx, sub in self.ENGLISH_SPECIFIC_APOSTROPHE]
            self.FR_IT_SPECIFIC_APOSTROPHE = [(_Padded(rx), sub) for rx, sub in self.FR_IT_SPECIFIC_APOSTROPHE]

        def handles_nonbreaking_prefixes(self, text):
            tokens = super().handles_nonbreaking_prefixes(text).split(" ")
            m = _FINAL_PERIOD.match(tokens[-1])
            if m:
                tokens[-1] = m.group(1) + " ."
            return " ".join(tokens)

    # perl_parity: normalize-punctuation.perl's own quote rules (it turns ’ into ", not ')
    return PerlTokenizer(lang=lang), MosesPunctNormalizer(lang=lang, perl_parity=True)


_NON_PRINTING = regex.compile(r"\p{C}")


def remove_non_printing(s: str) -> str:
    """remove-non-printing-char.perl: every control/format/unassigned character (\\p{C}, tabs too)
    becomes a space (the tokenizer then collapses the spaces)."""
    return _NON_PRINTING.sub(" ", s)


def _process_one(s: str, lang: str, normalize: bool, aggressive: bool, lowercase: bool, escape: bool) -> str:
    tok, norm = _tools(lang)
    if normalize:
        s = remove_non_printing(norm.normalize(s))
    s = tok.tokenize(s, aggressive_dash_splits=aggressive, return_str=True, escape=escape)
    s = re.sub(r"\s+", " ", s).strip()
    return s.lower() if lowercase else s


def _process(args) -> List[str]:
    lines, lang, opts = args
    return [_process_one(s, lang, *opts) for s in lines]


def _process_pairs(args) -> List[Tuple[str, str]]:
    pairs, src, tgt, opts = args
    return [(_process_one(s, src, *opts), _process_one(t, tgt, *opts)) for s, t in pairs]


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    it = iter(items)
    while True:
        chunk = list(itertools.islice(it, size))
        if not chunk:
            return
        yield chunk


def _run(fn, tasks: Iterator, jobs: int) -> Iterator:
    """fn over tasks in order, in `jobs` processes; lazily (memory holds a few chunks, not the corpus)."""
    if jobs <= 1:
        for t in tasks:
            yield fn(t)
        return
    with Pool(jobs) as pool:  # a window of tasks at a time: Pool.imap alone would queue the whole input
        while True:
            window = list(itertools.islice(tasks, 4 * jobs))
            if not window:
                return
            yield from pool.imap(fn, window)


def tokenize(lines: Sequence[str], lang: str, *, normalize: bool = False, aggressive: bool = False,
             lowercase: bool = False, escape: bool = True, jobs: int = 1) -> List[str]:
    """tokenizer.perl -l LANG [-a] (after normalize-punctuation.perl + remove-non-printing-char.perl
    when normalize), then lowercase.perl when lowercase. escape=True is tokenizer.perl's default
    (& | < > ' " [ ] become &amp; &#124; &lt; &gt; &apos; &quot; &#91; &#93;); False is its -no-escape."""
    opts = (normalize, aggressive, lowercase, escape)
    tasks = ((chunk, lang, opts) for chunk in _chunks(lines, _CHUNK))
    return [s for part in _run(_process, tasks, jobs if len(lines) > _CHUNK else 1) for s in part]


def tokenize_pairs(pairs: Iterable[Tuple[str, str]], src: str, tgt: str, *, normalize: bool = False,
                   aggressive: bool = False, escape: bool = True, jobs: int = 1) -> Iterator[Tuple[str, str]]:
    """tokenize() of both sides of a stream of pairs, lazily and in order."""
    tasks = ((chunk, src, tgt, (normalize, aggressive, False, escape)) for chunk in _chunks(pairs, _CHUNK))
    for part in _run(_process_pairs, tasks, jobs):
        yield from part
