"""IWSLT14 TED talks, prepared the way fairseq's examples/translation/prepare-iwslt14.sh does it.

    python -m data_prep.iwslt --src de --tgt en --out data/iwslt14_de_en [--local de-en.tgz | --local DIR]

Input: the official archive for the pair (a .tgz holding SRC-TGT/train.tags.SRC-TGT.{SRC,TGT} and
IWSLT14.TED*.SRC-TGT.{SRC,TGT}.xml), from --local (the .tgz or an unpacked folder), else from the cache
(--cache-dir/iwslt14/), else downloaded from --url (online users only). Either pair order is accepted
(en-ru data may be named ru-en).
Steps, as in fairseq's script:
  train: drop the XML-ish lines of train.tags.* (<url>, <talkid>, <keywords>, <speaker>, <reviewer>, ...)
         but keep the text of <title> and <description>; Moses-tokenise (sacremoses; --moses-escape gives
         tokenizer.perl's default &apos; escaping, off by default); clean-corpus (1-175 words, ratio 1.5);
         lowercase; valid = every 23rd line, train = the rest;
  test:  the <seg id="N"> lines of dev2010, TEDX dev2012, tst2010, tst2011, tst2012 (--test-sets), with ’
         replaced by ', tokenised and lowercased, concatenated in that order.
Then the shared path: sentencepiece (instead of fairseq's subword-nmt BPE) and fairseq-preprocess.
"""

from __future__ import annotations

import argparse
import re
import sys
import tarfile
from pathlib import Path
from typing import List, Optional, Tuple

from lskd.fileio import atomic_dir

from . import moses

from .common import DataPrepError, default_cache_dir, download, log, run_cli
from .pipeline import add_output_args, check_pair, prepare
from .text import filter_pairs, format_report, read_lines, require_nonempty

FAIRSEQ_URL = "http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz"
WIT3_URL = "https://wit3.fbk.eu/archive/2014-01/texts/{a}/{b}/{a}-{b}.tgz"
TEST_SETS = ("dev2010", "dev2012", "tst2010", "tst2011", "tst2012")
_TAG_LINE = re.compile(r"^\s*<")
_KEEP_TAGS = re.compile(r"</?(title|description)>")
_SEG = re.compile(r'<seg id="?\d+"?>\s*(.*?)\s*</seg>', re.S)


def default_url(src: str, tgt: str) -> str:
    if {src, tgt} == {"de", "en"}:
        return FAIRSEQ_URL
    return WIT3_URL.format(a=src, b=tgt)


def clean_train_line(line: str) -> Optional[str]:
    """The text of a train.tags line, or None for an XML-ish metadata line."""
    if _KEEP_TAGS.search(line):
        return _KEEP_TAGS.sub("", line)
    if _TAG_LINE.match(line):
        return None
    return line


def read_train_tags(path: Path) -> List[str]:
    return [t for t in (clean_train_line(l) for l in read_lines(path)) if t is not None]


def read_xml_segments(path: Path) -> List[str]:
    out = []
    for i, line in enumerate(read_lines(path), 1):
        if "<seg id" in line:
            m = _SEG.search(line)
            if not m:
                raise DataPrepError(f"{path}: line {i}: a <seg id=...> line without its </seg>")
            out.append(m.group(1).replace("\u2019", "'"))
    if not out:
        raise DataPrepError(f"{path}: no <seg id=...> lines found")
    return out


def _unpack(tgz: Path, dest: Path) -> Path:
    if not dest.is_dir():
        log(f"unpacking {tgz}")
        try:
            with tarfile.open(tgz) as t, atomic_dir(dest) as tmp:
                t.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError) as e:
            raise DataPrepError(f"{tgz}: cannot unpack ({e})") from None
    return dest


def locate(src: str, tgt: str, local: Optional[Path], cache_dir: Path, url: Optional[str]) -> Tuple[Path, str]:
    """The folder holding train.tags.PAIR.* and the pair name used in its file names."""
    if local is not None:
        if not local.exists():
            raise DataPrepError(f"--local {local}: no such file or folder")
        root = _unpack(local, cache_dir / "iwslt14" / (local.name.split(".")[0] + ".unpacked")) if local.is_file() else local
    else:
        root = cache_dir / "iwslt14" / f"{src}-{tgt}.unpacked"
        if not root.is_dir():
            tgz = cache_dir / "iwslt14" / f"{src}-{tgt}.tgz"
            if not tgz.is_file():
                download(url or default_url(src, tgt), tgz,
                         "without network access, download the archive elsewhere and pass --local FILE")
            _unpack(tgz, root)
    pairs = [f"{src}-{tgt}", f"{tgt}-{src}"]
    for pair in pairs:
        hits = sorted(root.rglob(f"train.tags.{pair}.{src}"))
        if hits:
            return hits[0].parent, pair
    raise DataPrepError(f"no IWSLT training file train.tags.{pairs[0]}.{src} (or train.tags.{pairs[1]}.{src}) "
                        f"found under {root}; expected the unpacked official archive")


def find_test_file(folder: Path, name: str, pair: str, lang: str) -> Path:
    hits = sorted(folder.glob(f"IWSLT*.{name}.{pair}.{lang}.xml"))
    if not hits:
        raise DataPrepError(f"test set {name}: no IWSLT*.{name}.{pair}.{lang}.xml in {folder} "
                            f"(choose the sets with --test-sets; found: "
                            f"{', '.join(p.name for p in sorted(folder.glob('*.xml'))) or 'no .xml files'})")
    return hits[0]


def extract(folder: Path, pair: str, src: str, tgt: str, test_sets, *, lowercase=True, tokenize=True,
            escape=False, ratio=1.5, max_len=175, jobs=1):
    def prep(lines: List[str], lang: str) -> List[str]:
        if tokenize:
            return moses.tokenize(lines, lang, lowercase=lowercase, escape=escape, jobs=jobs)
        return [l.lower() for l in lines] if lowercase else lines

    sides = {}
    for lang in (src, tgt):
        f = folder / f"train.tags.{pair}.{lang}"
        if not f.is_file():
            raise DataPrepError(f"missing {f.name} in {folder}")
        sides[lang] = read_train_tags(f)
    if len(sides[src]) != len(sides[tgt]):
        raise DataPrepError(f"train.tags.{pair}.{src} has {len(sides[src])} text lines but train.tags.{pair}.{tgt} "
                            f"has {len(sides[tgt])} after dropping the XML-ish lines (in {folder})")
    # tokenise, then clean (clean-corpus-n on tokens), then lowercase: as fairseq's script
    tok = {l: (moses.tokenize(sides[l], l, escape=escape, jobs=jobs) if tokenize else sides[l]) for l in (src, tgt)}
    kept, report = filter_pairs(zip(tok[src], tok[tgt]), min_len=1, max_len=max_len, ratio=ratio)
    log(format_report("iwslt train.tags", report))
    require_nonempty(f"train.tags.{pair}", kept, report)
    if lowercase:
        kept = [(s.lower(), t.lower()) for s, t in kept]
    valid = [p for i, p in enumerate(kept, 1) if i % 23 == 0]
    train = [p for i, p in enumerate(kept, 1) if i % 23 != 0]

    test: List[Tuple[str, str]] = []
    used = {}
    for name in test_sets:
        fs, ft = find_test_file(folder, name, pair, src), find_test_file(folder, name, pair, tgt)
        a, b = read_xml_segments(fs), read_xml_segments(ft)
        if len(a) != len(b):
            raise DataPrepError(f"{fs} has {len(a)} segments but {ft} has {len(b)}")
        test += list(zip(prep(a, src), prep(b, tgt)))
        used[name] = len(a)
    stats = {"train_filter": report, "test_sets": used}
    return {"train": train, "valid": valid, "test": test}, stats


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_prep.iwslt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default="de", help="source language (default de)")
    p.add_argument("--tgt", default="en", help="target language (default en)")
    p.add_argument("--local", type=Path, default=None, help="the official .tgz, or the folder it unpacks to")
    p.add_argument("--url", default=None, help=f"where to download the .tgz when neither --local nor the cache has it "
                   f"(default: {FAIRSEQ_URL} for de-en, else {WIT3_URL})")
    p.add_argument("--cache-dir", type=Path, default=None, help="download/unpack cache (default $LSKD_CACHE or ~/.cache/lskd)")
    p.add_argument("--test-sets", default=",".join(TEST_SETS), help=f"comma-separated (default {','.join(TEST_SETS)})")
    p.add_argument("--keep-case", action="store_true", help="do not lowercase")
    p.add_argument("--no-tokenize", action="store_true", help="no Moses tokenisation (sentencepiece on raw text)")
    p.add_argument("--moses-escape", action="store_true", help="escape & ' \" etc. as tokenizer.perl does by default")
    p.add_argument("--ratio", type=float, default=1.5, help="clean-corpus length ratio for train (default 1.5)")
    p.add_argument("--max-len", type=int, default=175, help="clean-corpus maximum words for train (default 175)")
    p.add_argument("--jobs", type=int, default=2, help="processes for tokenisation (default 2)")
    add_output_args(p)
    return p


def run(args: argparse.Namespace) -> dict:
    check_pair(args.src, args.tgt)
    test_sets = [s.strip() for s in args.test_sets.split(",") if s.strip()]
    if not test_sets:
        raise DataPrepError("--test-sets: expected at least one name, e.g. dev2010,tst2010")
    folder, pair = locate(args.src, args.tgt, args.local, args.cache_dir or default_cache_dir(), args.url)
    inputs = [folder / f"train.tags.{pair}.{l}" for l in (args.src, args.tgt)]
    for name in test_sets:
        inputs += [find_test_file(folder, name, pair, l) for l in (args.src, args.tgt)]
    options = {"src": args.src, "tgt": args.tgt, "test_sets": test_sets, "lowercase": not args.keep_case,
               "tokenize": not args.no_tokenize, "escape": args.moses_escape, "ratio": args.ratio, "max_len": args.max_len}
    return prepare(args, corpus="iwslt14", src=args.src, tgt=args.tgt, inputs=inputs, options=options,
                   make_splits=lambda: extract(folder, pair, args.src, args.tgt, test_sets, lowercase=not args.keep_case,
                                               tokenize=not args.no_tokenize, escape=args.moses_escape,
                                               ratio=args.ratio or None, max_len=args.max_len, jobs=args.jobs))


def main(argv=None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
