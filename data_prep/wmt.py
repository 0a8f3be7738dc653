"""WMT14 English-German, prepared as fairseq's examples/translation/prepare-wmt14en2de.sh does it.

    python -m data_prep.wmt --src en --tgt de --out data/wmt14_en_de [--raw-dir DIR | --local ARCHIVE ... | --mirror URL]

Where the files come from (first match wins):
  --raw-dir DIR   the unpacked WMT files, searched recursively:
                  europarl-v7.de-en.{de,en}, commoncrawl.de-en.{de,en}, news-commentary-vN.de-en.{de,en}
                  (training) and test-full/newstest2014-deen-{src,ref}.{en,de}.sgm (test);
  else archives:  each of the archives below from --local (already downloaded), else downloaded from
                  statmt.org (or from --mirror URL/<archive name>, e.g. a file:// folder), cached and
                  unpacked atomically (--cache-dir; see data_prep.fetch).
News commentary: --news-commentary-version N (default: the highest version in --raw-dir, parsed as a
number; for downloads 12, fairseq's default, which is WMT17's news-commentary: fairseq's data is then
"wmt17_en_de"). WMT14 proper is version 9 (fairseq's --icml17 switch): --news-commentary-version 9.
Test: newstest2014 from WMT14's test-full (3,003 segments, the set sacrebleu calls wmt14/full; never the
2,737-segment copy in WMT17's dev.tgz). Its segment count is checked, and the archive's md5 against
sacrebleu's record of test-full.tgz (downloaded, --local, or found in --raw-dir), with a warning naming
both values when they differ.
Steps as fairseq's script: training text normalize-punctuation.perl + remove-non-printing-char.perl +
tokenizer.perl -a (sacremoses, default escaping), valid = every 100th line of that, train = the rest, both
cleaned with clean-corpus-n.perl -ratio 1.5 (1-250; on Moses words, fairseq cleans after BPE); test:
the seg text with ’ -> ', tokenizer.perl -a, no normalisation. The training corpus is streamed (memory
does not grow with its 4.5M pairs). Then sentencepiece (identity normalisation, seeded sample; instead of
fairseq's subword-nmt BPE) and fairseq-preprocess.
The untouched reference (the seg text, as sacrebleu reads it) goes to OUT/ref/test.TGT: `lskd score`
scores detokenised hypotheses against it (sacreBLEU, chrF), and the tokenised raw/test.TGT with
fairseq's compound-split BLEU (OUT/manifest.json "scoring").
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from lskd.fileio import write_lines

from . import moses
from .common import DataPrepError, default_cache_dir, log, run_cli, run_step
from .fetch import download as fetch_download, md5_file, unpack
from .iwslt import read_xml_segments
from .pipeline import add_output_args, check_pair, prepare
from .text import PairFilter, format_report, read_lines

CORPORA = {
    "europarl": "europarl-v7.de-en",
    "commoncrawl": "commoncrawl.de-en",
    "news-commentary": "news-commentary-v*.de-en",
}
BASE_URLS = {
    "europarl": "https://statmt.org/wmt13/training-parallel-europarl-v7.tgz",
    "commoncrawl": "https://statmt.org/wmt13/training-parallel-commoncrawl.tgz",
    "test": "https://statmt.org/wmt14/test-full.tgz",
}
NEWS_COMMENTARY_URLS = {
    9: "https://statmt.org/wmt14/training-parallel-nc-v9.tgz",
    12: "https://data.statmt.org/wmt17/translation-task/training-parallel-nc-v12.tgz",
}
NEWSTEST2014_SEGMENTS = 3003
_NC_VERSION = re.compile(r"news-commentary-v(\d+)\.")
ALTERNATIVE = ("without network access, download the archive elsewhere and pass --local FILE "
               "(or the unpacked WMT files with --raw-dir DIR)")


def test_full_md5() -> str:
    """sacrebleu's md5 of WMT14's test-full.tgz (its wmt14/full test set)."""
    from sacrebleu.dataset import DATASETS

    return DATASETS["wmt14/full"].md5[0]


def archive_urls(nc_version: int, mirror: Optional[str]) -> Dict[str, str]:
    if nc_version not in NEWS_COMMENTARY_URLS:
        raise DataPrepError(f"--news-commentary-version {nc_version}: no download known (known: "
                            f"{', '.join(map(str, NEWS_COMMENTARY_URLS))}); use --raw-dir for other versions")
    urls = dict(BASE_URLS, **{"news-commentary": NEWS_COMMENTARY_URLS[nc_version]})
    if mirror:
        urls = {k: mirror.rstrip("/") + "/" + u.rsplit("/", 1)[1] for k, u in urls.items()}
    return urls


def fetch_archives(names: List[str], nc_version: int, local: List[Path], mirror: Optional[str],
                   cache_dir: Path) -> Tuple[List[Path], Dict[str, object]]:
    """The unpacked folders of the archives needed (--local ones by file name, the others downloaded)."""
    urls = archive_urls(nc_version, mirror)
    by_name = {}
    for f in local:
        if not f.is_file():
            raise DataPrepError(f"--local {f}: no such file")
        by_name[f.name] = f
    known = {u.rsplit("/", 1)[1] for u in urls.values()}
    for name in by_name:
        if name not in known:
            raise DataPrepError(f"--local {by_name[name]}: not one of the archives needed ({', '.join(sorted(known))})")
    roots, checks = [], {}
    for key in names + ["test"]:
        url = urls[key]
        fname = url.rsplit("/", 1)[1]
        archive = by_name.get(fname)
        downloaded = archive is None
        if downloaded:
            archive = fetch_download(url, cache_dir, alternative=ALTERNATIVE)
        if key == "test":
            checks.update(check_test_full(archive))
        roots.append(unpack(archive, cache_dir, downloaded=downloaded))
    return roots, checks


def check_test_full(archive: Path) -> Dict[str, object]:
    """test-full.tgz's md5 against sacrebleu's record; a warning naming both when they differ."""
    got, expected = md5_file(archive), test_full_md5()
    if got != expected:
        log(f"WARNING: {archive}: md5 {got}, but sacrebleu records {expected} for WMT14's test-full.tgz: "
            f"the test set may not be the official newstest2014")
    return {"test_full_md5": {"got": got, "sacrebleu": expected, "ok": got == expected}}


def nc_version_of(path: Path) -> int:
    m = _NC_VERSION.search(path.name)
    return int(m.group(1)) if m else -1


def find_corpus(roots: List[Path], key: str, lang: str, nc_version: Optional[int] = None) -> Path:
    pattern = CORPORA[key]
    if key == "news-commentary" and nc_version is not None:
        pattern = f"news-commentary-v{nc_version}.de-en"
    hits = [h for r in roots for h in r.rglob(f"{pattern}.{lang}")]
    if not hits:
        raise DataPrepError(f"no {pattern}.{lang} under {', '.join(map(str, roots))} (expected the WMT training "
                            f"layout; choose corpora with --corpora)")
    if key == "news-commentary":  # the highest version as a number: v12 over v9
        return max(hits, key=lambda p: (nc_version_of(p), str(p)))
    return sorted(hits)[0]


def find_test(roots: List[Path], src: str, tgt: str) -> Dict[str, Path]:
    """newstest2014 of WMT14's test-full (not WMT17's dev/ copy, a 2,737-segment subset)."""
    out = {}
    for lang in (src, tgt):
        name = f"newstest2014-deen-{'src' if lang == src else 'ref'}.{lang}.sgm"
        hits = sorted(h for r in roots for h in r.rglob(name) if h.parent.name == "test-full")
        if not hits:
            raise DataPrepError(f"no test-full/{name} under {', '.join(map(str, roots))} (WMT14 test-full.tgz); "
                                f"or pass --test-src/--test-tgt")
        out[lang] = hits[0]
    return out


def reference_segments(path: Path) -> List[str]:
    """The reference as sacrebleu reads a WMT .sgm file (the seg text, white space collapsed), else the lines."""
    if path.suffix != ".sgm":
        return read_lines(path)
    out = []
    for line in read_lines(path):
        if line.startswith("<seg "):
            out.append(re.sub(r"\s+", " ", re.sub(r"<seg.*?>(.*)</seg>.*?", "\\1", line).strip()))
    return out


def read_any(path: Path) -> List[str]:
    return read_xml_segments(path) if path.suffix == ".sgm" else read_lines(path)


def stream_pairs(files: List[Tuple[Path, Path]], bad_utf8: Dict[str, int]) -> Iterator[Tuple[str, str]]:
    """The pairs of each (src, tgt) file pair, read line by line; unequal line counts are an error."""
    for fs, ft in files:
        n = 0
        with open(fs, "rb") as a, open(ft, "rb") as b:
            while True:
                la, lb = a.readline(), b.readline()
                if not la and not lb:
                    break
                n += 1
                if not la or not lb:
                    short, other = (fs, ft) if not la else (ft, fs)
                    raise DataPrepError(f"parallel files are misaligned: {short} ends at line {n - 1}, "
                                        f"{other} goes on")
                yield _decode(la, fs, bad_utf8), _decode(lb, ft, bad_utf8)


def _decode(raw: bytes, path: Path, bad: Dict[str, int]) -> str:
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        bad[str(path)] = bad.get(str(path), 0) + 1
        s = raw.decode("utf-8", errors="replace")
    return s.rstrip("\n")


def extract(files, test, src, tgt, *, ratio=1.5, max_len=250, escape=True, jobs=2):
    """({train, valid, test}, stats): train and valid are streams (valid fills while train is written)."""
    bad_utf8: Dict[str, int] = {}
    tok = moses.tokenize_pairs(stream_pairs(files, bad_utf8), src, tgt, normalize=True, aggressive=True,
                               escape=escape, jobs=jobs)
    filters = {s: PairFilter(min_len=1, max_len=max_len, ratio=ratio, moses=True) for s in ("train", "valid")}
    held: List[Tuple[str, str]] = []  # every 100th tokenised pair, before cleaning (about 45k on WMT14)

    def train_stream():
        def uncleaned():
            for i, pair in enumerate(tok, 1):
                if i % 100 == 0:
                    held.append(pair)
                else:
                    yield pair
        yield from filters["train"].apply(uncleaned())

    class Valid:  # iterated after train_stream() is exhausted (pipeline.SPLITS order)
        def __iter__(self):
            return filters["valid"].apply(held)

    a, b = read_any(test[src]), read_any(test[tgt])
    if len(a) != len(b):
        raise DataPrepError(f"{test[src]} has {len(a)} segments but {test[tgt]} has {len(b)}")
    ta = moses.tokenize(a, src, aggressive=True, escape=escape, jobs=jobs)
    tb = moses.tokenize(b, tgt, aggressive=True, escape=escape, jobs=jobs)

    def stats():
        for name, f in filters.items():
            log(format_report(f"wmt {name}", f.report()))
        if bad_utf8:
            log(f"note: lines with invalid UTF-8 (bad bytes replaced by U+FFFD): {bad_utf8}")
        return {"train_filter": filters["train"].report(), "valid_filter": filters["valid"].report(),
                "invalid_utf8_lines": bad_utf8}

    return {"train": train_stream(), "valid": Valid(), "test": list(zip(ta, tb))}, {"filters": stats}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_prep.wmt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--raw-dir", type=Path, default=None, help="folder holding the unpacked WMT files (searched recursively)")
    p.add_argument("--local", type=Path, action="append", default=[], metavar="ARCHIVE",
                   help="an archive already downloaded (by its statmt.org file name; repeat for several)")
    p.add_argument("--mirror", default=None, metavar="URL",
                   help="download the archives from URL/<archive name> instead of statmt.org (file:// works)")
    p.add_argument("--cache-dir", type=Path, default=None, help="download/unpack cache (default $LSKD_CACHE or ~/.cache/lskd)")
    p.add_argument("--news-commentary-version", type=int, default=None, metavar="N",
                   help="12 (fairseq's default, WMT17) or 9 (WMT14 proper); default: the highest in --raw-dir, "
                        "12 for downloads")
    p.add_argument("--src", default="en", choices=("en", "de"), help="default en")
    p.add_argument("--tgt", default="de", choices=("en", "de"), help="default de")
    p.add_argument("--corpora", default=",".join(CORPORA), help=f"comma-separated subset of {','.join(CORPORA)}")
    p.add_argument("--test-src", type=Path, default=None, help="test source file (.sgm or text) instead of newstest2014")
    p.add_argument("--test-tgt", type=Path, default=None)
    p.add_argument("--ratio", type=float, default=1.5, help="clean-corpus ratio (default 1.5)")
    p.add_argument("--max-len", type=int, default=250, help="clean-corpus maximum words (default 250)")
    p.add_argument("--no-moses-escape", action="store_true", help="tokenizer.perl -no-escape (fairseq's script escapes)")
    p.add_argument("--jobs", type=int, default=2, help="tokenisation processes (default 2)")
    add_output_args(p)
    p.set_defaults(spm_normalization="identity")
    return p


def write_reference(out: Path, test_tgt: Path, tgt: str, checks: Dict[str, object]) -> Path:
    """OUT/ref/test.TGT: the reference exactly as sacrebleu reads it (never normalised nor tokenised)."""
    ref = out / "ref" / f"test.{tgt}"

    def action():
        segs = reference_segments(test_tgt)
        write_lines(ref, segs)
        if len(segs) != NEWSTEST2014_SEGMENTS:
            log(f"WARNING: {test_tgt}: {len(segs):,} segments, but newstest2014 (WMT14 test-full) has "
                f"{NEWSTEST2014_SEGMENTS:,}: scores on it do not compare with published newstest2014 figures")
        return {"segments": {"got": len(segs), "newstest2014": NEWSTEST2014_SEGMENTS}, **checks}

    run_step("wmt14: untouched test reference", manifest=out / "ref" / "manifest.json", inputs=[test_tgt],
             options={"tgt": tgt, **checks}, outputs=[ref], action=action)
    return ref


def run(args: argparse.Namespace) -> dict:
    check_pair(args.src, args.tgt)
    names = [c.strip() for c in args.corpora.split(",") if c.strip()]
    bad = [c for c in names if c not in CORPORA]
    if bad or not names:
        raise DataPrepError(f"--corpora {args.corpora!r}: expected names from {', '.join(CORPORA)}")
    if (args.test_src is None) != (args.test_tgt is None):
        raise DataPrepError("--test-src and --test-tgt: expected both or neither")
    checks: Dict[str, object] = {}
    if args.raw_dir is not None:
        if not args.raw_dir.is_dir():
            raise DataPrepError(f"--raw-dir {args.raw_dir}: no such folder")
        roots = [args.raw_dir]
        nc_version = args.news_commentary_version
        for archive in sorted(args.raw_dir.rglob("test-full.tgz"))[:1]:  # kept beside the unpacked files
            checks.update(check_test_full(archive))
    else:
        nc_version = args.news_commentary_version or 12
        roots, checks = fetch_archives(names, nc_version, args.local, args.mirror, args.cache_dir or default_cache_dir())
    files = [(find_corpus(roots, c, args.src, nc_version), find_corpus(roots, c, args.tgt, nc_version)) for c in names]
    test = {args.src: args.test_src, args.tgt: args.test_tgt} if args.test_src else find_test(roots, args.src, args.tgt)
    for f in test.values():
        if not f.is_file():
            raise DataPrepError(f"{f}: file not found")
    nc = [f for f, _ in files if "news-commentary" in f.name]
    if nc:
        log(f"news commentary: {nc[0].name.rsplit('.', 1)[0]} (v{nc_version_of(nc[0])}: "
            f"{'WMT14 proper' if nc_version_of(nc[0]) == 9 else 'not the WMT14 release; v9 is'})")
    ref = write_reference(args.out, test[args.tgt], args.tgt, checks)
    inputs = [f for pair in files for f in pair] + [test[args.src], test[args.tgt]]
    escape = not args.no_moses_escape
    options = {"src": args.src, "tgt": args.tgt, "corpora": names, "ratio": args.ratio, "max_len": args.max_len,
               "escape": escape}
    scoring = {"convention": "wmt14", "text": "Moses-tokenised text (tokenizer.perl -a" + (", escaped)" if escape else ")"),
               "detok_reference": str(ref), "lang": args.tgt,
               "compound_split": args.tgt == "de"}
    return prepare(args, corpus="wmt14", src=args.src, tgt=args.tgt, inputs=inputs, options=options, scoring=scoring,
                   make_splits=lambda: extract(files, test, args.src, args.tgt, ratio=args.ratio or None,
                                               max_len=args.max_len, escape=escape, jobs=args.jobs))


def main(argv=None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
