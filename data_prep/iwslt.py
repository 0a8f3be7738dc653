"""IWSLT14 TED talks, prepared exactly as fairseq's examples/translation/prepare-iwslt14.sh does it.

    python -m data_prep.iwslt --src de --tgt en --out data/iwslt14_de_en [--local de-en.tgz | --local DIR | --url URL]

Input: the 2014-01 release archive of the pair (SRC-TGT/train.tags.SRC-TGT.{SRC,TGT} and the XML sets
IWSLT14.TED.{dev2010,tst2010,tst2011,tst2012} + IWSLT14.TEDX.dev2012 .SRC-TGT.{SRC,TGT}.xml), from
--local (the .tgz, or the folder it unpacks to), else downloaded from --url (default for de-en: fairseq's
mirror of the archive; wit3.fbk.eu, the original host, no longer serves the 2014 release, so other pairs
need --local or --url). Downloads and unpacks are cached (--cache-dir; see data_prep.fetch). Either pair
order is accepted (en-de data may be named de-en).
Steps, as fairseq's script (the same filters, in the same order):
  train: drop the lines holding <url>, <talkid> or <keywords>; delete the <title>, </title>,
         <description>, </description> tags (their text stays); tokenizer.perl -l LANG (sacremoses, with
         tokenizer.perl's default escaping: ' -> &apos; ...); clean-corpus-n.perl -ratio 1.5 (1-175 words);
         lowercase.perl; valid = every 23rd line, train = the rest;
  test:  the `<seg id` lines of dev2010, TEDX dev2012, tst2010, tst2011, tst2012 (--test-sets), the seg
         tags removed, ’ replaced by ', tokenised and lowercased, concatenated in that order.
On the official de-en archive this gives 174,443 pairs into cleaning, 167,522 kept, train 160,239,
valid 7,283, test 6,750 (the numbers of fairseq's script); other counts with the default options print a
warning naming both numbers, and OUT/raw/manifest.json records both.
Then the shared path: sentencepiece (instead of fairseq's subword-nmt BPE; identity normalisation, so
that the decoded hypotheses are in the references' characters) and fairseq-preprocess.
Scores: BLEU on this lowercased tokenised text (OUT/manifest.json "scoring"; `lskd score` reads it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from . import moses
from .common import DataPrepError, default_cache_dir, log, run_cli
from .fetch import fetch_and_unpack, unpack
from .pipeline import add_output_args, check_pair, prepare
from .text import filter_pairs, format_report, read_lines, require_nonempty

FAIRSEQ_URL = "https://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz"
RELEASE_PAGE = "https://wit3.fbk.eu/2014-01"
TEST_SETS = ("dev2010", "dev2012", "tst2010", "tst2011", "tst2012")
# fairseq's prepare-iwslt14.sh on the official de-en.tgz
FAIRSEQ_COUNTS = {"into_cleaning": 174443, "kept": 167522, "train": 160239, "valid": 7283, "test": 6750}
_DROP = ("<url>", "<talkid>", "<keywords>")  # grep -v
_STRIP = re.compile(r"</?(?:title|description)>")  # sed -e 's/<title>//g' ...
_SEG_OPEN = re.compile(r'<seg id="[0-9]*">[ \t\r\f\v]*')  # sed -e 's/<seg id="[0-9]*">\s*//g'
_SEG_CLOSE = re.compile(r"[ \t\r\f\v]*</seg>[ \t\r\f\v]*")  # sed -e 's/\s*<\/seg>\s*//g'
_TAGLIKE = re.compile(r"^\s*<[a-z]+[ >]")
ALTERNATIVE = "without network access, download the IWSLT14 archive elsewhere and pass --local FILE"


def default_url(src: str, tgt: str) -> str:
    if {src, tgt} == {"de", "en"}:
        return FAIRSEQ_URL
    raise DataPrepError(
        f"no live download for IWSLT14 {src}-{tgt}: wit3.fbk.eu no longer serves the 2014-01 archives "
        f"(fairseq mirrors de-en only); get {src}-{tgt}.tgz from the release page {RELEASE_PAGE} and pass "
        f"--local FILE (or --url URL of a mirror)")


def clean_train_line(line: str) -> Optional[str]:
    """fairseq's filter of a train.tags line: None for a line holding <url>, <talkid> or <keywords>,
    else the line with the <title>/<description> tags deleted."""
    if any(tag in line for tag in _DROP):
        return None
    return _STRIP.sub("", line)


def read_train_tags(path: Path) -> List[str]:
    out, taglike = [], []
    for i, line in enumerate(read_lines(path), 1):
        text = clean_train_line(line)
        if text is None:
            continue
        if _TAGLIKE.match(text):
            taglike.append(i)
        out.append(text)
    if taglike:
        log(f"note: {path}: {len(taglike)} lines look like XML tags but are kept as text, as fairseq's "
            f"prepare-iwslt14.sh keeps them (e.g. line {taglike[0]}; the 2014 release has none)")
    return out


def read_xml_segments(path: Path) -> List[str]:
    """The text of the `<seg id` lines (grep '<seg id' | sed ... | sed "s/’/'/g", as fairseq's scripts)."""
    out = []
    for line in read_lines(path):
        if "<seg id" in line:
            out.append(_SEG_CLOSE.sub("", _SEG_OPEN.sub("", line)).replace("\u2019", "'"))
    if not out:
        raise DataPrepError(f"{path}: no <seg id=...> lines found (expected an IWSLT/WMT XML or SGML test file)")
    return out


def locate(src: str, tgt: str, local: Optional[Path], cache_dir: Path, url: Optional[str]) -> Tuple[Path, str]:
    """The folder holding train.tags.PAIR.* and the pair name used in its file names."""
    if local is not None:
        if not local.exists():
            raise DataPrepError(f"--local {local}: no such file or folder")
        root = unpack(local, cache_dir) if local.is_file() else local
    else:
        root = fetch_and_unpack(url or default_url(src, tgt), cache_dir, alternative=ALTERNATIVE)
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


def check_counts(got: Dict[str, int]) -> Dict[str, Dict[str, int]]:
    """got vs fairseq's numbers on the official de-en archive; a loud warning for each difference."""
    out = {}
    for k, expected in FAIRSEQ_COUNTS.items():
        out[k] = {"got": got[k], "fairseq": expected}
        if got[k] != expected:
            log(f"WARNING: iwslt14 de-en: {k.replace('_', ' ')}: {got[k]:,} pairs, but fairseq's prepare-iwslt14.sh "
                f"gives {expected:,} on the official de-en.tgz (is this the 2014-01 release, unmodified?)")
    return out


def extract(folder: Path, pair: str, src: str, tgt: str, test_sets, *, lowercase=True, tokenize=True,
            escape=True, ratio=1.5, max_len=175, jobs=1, check_fairseq_counts=False):
    def prep(lines: List[str], lang: str) -> List[str]:
        if tokenize:
            return moses.tokenize(lines, lang, lowercase=lowercase, escape=escape, jobs=jobs)
        return [line.lower() for line in lines] if lowercase else lines

    sides = {}
    for lang in (src, tgt):
        f = folder / f"train.tags.{pair}.{lang}"
        if not f.is_file():
            raise DataPrepError(f"missing {f.name} in {folder}")
        sides[lang] = read_train_tags(f)
    if len(sides[src]) != len(sides[tgt]):
        raise DataPrepError(f"train.tags.{pair}.{src} has {len(sides[src])} text lines but train.tags.{pair}.{tgt} "
                            f"has {len(sides[tgt])} after dropping the <url>/<talkid>/<keywords> lines (in {folder})")
    # tokenise, then clean (clean-corpus-n on tokens), then lowercase: as fairseq's script
    tok = {lang: (moses.tokenize(sides[lang], lang, escape=escape, jobs=jobs) if tokenize else sides[lang]) for lang in (src, tgt)}
    kept, report = filter_pairs(zip(tok[src], tok[tgt]), min_len=1, max_len=max_len, ratio=ratio, moses=True)
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
    if check_fairseq_counts:
        stats["fairseq_counts"] = check_counts({"into_cleaning": report["input"], "kept": report["kept"],
                                                "train": len(train), "valid": len(valid), "test": len(test)})
    return {"train": train, "valid": valid, "test": test}, stats


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_prep.iwslt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", default="de", help="source language (default de)")
    p.add_argument("--tgt", default="en", help="target language (default en)")
    p.add_argument("--local", type=Path, default=None, help="the 2014-01 release .tgz, or the folder it unpacks to")
    p.add_argument("--url", default=None, help=f"where to download the .tgz when no --local is given "
                   f"(default for de-en: {FAIRSEQ_URL}; file:// URLs work)")
    p.add_argument("--cache-dir", type=Path, default=None, help="download/unpack cache (default $LSKD_CACHE or ~/.cache/lskd)")
    p.add_argument("--test-sets", default=",".join(TEST_SETS), help=f"comma-separated (default {','.join(TEST_SETS)})")
    p.add_argument("--keep-case", action="store_true", help="do not lowercase")
    p.add_argument("--no-tokenize", action="store_true", help="no Moses tokenisation (sentencepiece on raw text)")
    p.add_argument("--no-moses-escape", action="store_true",
                   help="tokenizer.perl -no-escape (keep & ' \" etc.; fairseq's script escapes them)")
    p.add_argument("--ratio", type=float, default=1.5, help="clean-corpus length ratio for train (default 1.5)")
    p.add_argument("--max-len", type=int, default=175, help="clean-corpus maximum words for train (default 175)")
    p.add_argument("--jobs", type=int, default=2, help="processes for tokenisation (default 2)")
    add_output_args(p)
    p.set_defaults(spm_normalization="identity")
    return p


def run(args: argparse.Namespace) -> dict:
    check_pair(args.src, args.tgt)
    test_sets = [s.strip() for s in args.test_sets.split(",") if s.strip()]
    if not test_sets:
        raise DataPrepError("--test-sets: expected at least one name, e.g. dev2010,tst2010")
    folder, pair = locate(args.src, args.tgt, args.local, args.cache_dir or default_cache_dir(), args.url)
    inputs = [folder / f"train.tags.{pair}.{lang}" for lang in (args.src, args.tgt)]
    for name in test_sets:
        inputs += [find_test_file(folder, name, pair, lang) for lang in (args.src, args.tgt)]
    tokenize, lowercase, escape = not args.no_tokenize, not args.keep_case, not args.no_moses_escape
    options = {"src": args.src, "tgt": args.tgt, "test_sets": test_sets, "lowercase": lowercase,
               "tokenize": tokenize, "escape": escape, "ratio": args.ratio, "max_len": args.max_len}
    fairseq_setup = ({args.src, args.tgt} == {"de", "en"} and test_sets == list(TEST_SETS) and tokenize and lowercase
                     and args.ratio == 1.5 and args.max_len == 175)
    if tokenize:
        text = ("lowercased " if lowercase else "cased ") + "Moses-tokenised text" + (" (&apos; escapes)" if escape else "")
        scoring = {"convention": "tokenized", "text": text,
                   "note": "fairseq's IWSLT14 convention: BLEU on this text = fairseq-generate's BLEU4 = multi-bleu.perl"
                   if fairseq_setup else "tokenised BLEU on the text as prepared"}
    else:
        scoring = {"convention": "detok", "text": ("lowercased " if lowercase else "") + "untokenised text"}
    return prepare(args, corpus="iwslt14", src=args.src, tgt=args.tgt, inputs=inputs, options=options, scoring=scoring,
                   make_splits=lambda: extract(folder, pair, args.src, args.tgt, test_sets, lowercase=lowercase,
                                               tokenize=tokenize, escape=escape, ratio=args.ratio or None,
                                               max_len=args.max_len, jobs=args.jobs, check_fairseq_counts=fairseq_setup))


def main(argv=None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
