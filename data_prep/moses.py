"""Moses-style preprocessing with sacremoses (the Perl scripts of fairseq's prepare-*.sh recipes)."""

from __future__ import annotations

import functools
import re
import unicodedata
from multiprocessing import Pool
from typing import List, Sequence

_CHUNK = 2000


@functools.lru_cache(maxsize=None)
def _tools(lang: str):
    from sacremoses import MosesPunctNormalizer, MosesTokenizer

    return MosesTokenizer(lang=lang), MosesPunctNormalizer(lang=lang)


def remove_non_printing(s: str) -> str:
    """remove-non-printing-char.perl: drop control/format characters (category C*), keep spaces."""
    return "".join(ch for ch in s if ch in " \t" or not unicodedata.category(ch).startswith("C"))


def _process(args) -> List[str]:
    lines, lang, normalize, aggressive, lowercase, escape = args
    tok, norm = _tools(lang)
    out = []
    for s in lines:
        if normalize:
            s = remove_non_printing(norm.normalize(s))
        s = tok.tokenize(s, aggressive_dash_splits=aggressive, return_str=True, escape=escape)
        s = re.sub(r"\s+", " ", s).strip()
        out.append(s.lower() if lowercase else s)
    return out


def tokenize(lines: Sequence[str], lang: str, *, normalize: bool = False, aggressive: bool = False,
             lowercase: bool = False, escape: bool = False, jobs: int = 1) -> List[str]:
    """tokenizer.perl -l LANG [-a] (after normalize-punctuation.perl + remove-non-printing-char.perl
    when normalize), then lowercase.perl when lowercase. escape=False keeps & ' " as they are
    (tokenizer.perl escapes them to &amp; &apos; &quot; unless -no-escape)."""
    chunks = [(list(lines[i:i + _CHUNK]), lang, normalize, aggressive, lowercase, escape)
              for i in range(0, len(lines), _CHUNK)]
    if jobs > 1 and len(chunks) > 1:
        with Pool(jobs) as pool:
            parts = pool.map(_process, chunks)
    else:
        parts = [_process(c) for c in chunks]
    return [s for part in parts for s in part]
