"""WMT14 English-German from local raw files, prepared as fairseq's prepare-wmt14en2de.sh does.

    python -m data_prep.wmt --raw-dir ~/wmt14 --src en --tgt de --out data/wmt14_en_de [--download]

--raw-dir is searched (recursively) for the standard layout of the WMT downloads:
  europarl-v7.de-en.{de,en}, commoncrawl.de-en.{de,en}, news-commentary-v*.de-en.{de,en}   (training)
  newstest2014-deen-{src,ref}.{en,de}.sgm                                                (test, <seg id> lines)
(--corpora picks a subset; --test-src/--test-tgt give other test files, .sgm or plain text).
Steps: normalize-punctuation + remove-non-printing-char + tokenizer -a (sacremoses), clean-corpus
(1-250 words, ratio 1.5), valid = every 100th training line, train = the rest; no lowercasing.
Then sentencepiece (instead of fairseq's subword-nmt BPE, 40k joint) and fairseq-preprocess.
--download fetches the archives fairseq's script uses into --raw-dir (online users only; about 1.5 GB).
"""

from __future__ import annotations

import argparse
import sys
import tarfile
from pathlib import Path
from typing import Dict, List


from . import moses

from .common import DataPrepError, log, run_cli
from .common import download as common_download
from .iwslt import read_xml_segments
from .pipeline import add_output_args, check_pair, prepare
from .text import filter_pairs, format_report, read_parallel, read_lines, require_nonempty

CORPORA = {
    "europarl": "europarl-v7.de-en",
    "commoncrawl": "commoncrawl.de-en",
    "news-commentary": "news-commentary-v*.de-en",
}
URLS = [
    "http://statmt.org/wmt13/training-parallel-europarl-v7.tgz",
    "http://statmt.org/wmt13/training-parallel-commoncrawl.tgz",
    "http://data.statmt.org/wmt17/translation-task/training-parallel-nc-v12.tgz",
    "http://statmt.org/wmt14/test-full.tgz",
]


def download(raw_dir: Path) -> None:
    raw_dir.mkdir(parents=True, exist_ok=True)
    for url in URLS:
        dest = raw_dir / url.rsplit("/", 1)[1]
        if not dest.is_file():
            common_download(url, dest, "put the WMT files in --raw-dir yourself")
        with tarfile.open(dest) as t:
            t.extractall(raw_dir, filter="data")


def find_corpus(raw_dir: Path, pattern: str, lang: str) -> Path:
    hits = sorted(raw_dir.rglob(f"{pattern}.{lang}"))
    if not hits:
        raise DataPrepError(f"no {pattern}.{lang} under {raw_dir} (expected the WMT training layout; "
                            f"choose corpora with --corpora, or use --download when online)")
    return hits[-1]  # news-commentary: the highest version


def find_test(raw_dir: Path, src: str, tgt: str) -> Dict[str, Path]:
    out = {}
    for lang in (src, tgt):
        kind = "src" if lang == src else "ref"
        name = f"newstest2014-deen-{kind}.{lang}.sgm"
        hits = sorted(raw_dir.rglob(name))
        if not hits:
            raise DataPrepError(f"no {name} under {raw_dir} (WMT14 test-full); or pass --test-src/--test-tgt")
        out[lang] = hits[0]
    return out


def read_any(path: Path) -> List[str]:
    return read_xml_segments(path) if path.suffix == ".sgm" else read_lines(path)


def extract(files, test, src, tgt, *, ratio=1.5, max_len=250, jobs=2):
    pairs = []
    for fs, ft in files:
        pairs += read_parallel(fs, ft)
    tok = {l: moses.tokenize([p[i] for p in pairs], l, normalize=True, aggressive=True, jobs=jobs)
           for i, l in enumerate((src, tgt))}
    kept, report = filter_pairs(zip(tok[src], tok[tgt]), min_len=1, max_len=max_len, ratio=ratio)
    log(format_report("wmt train", report))
    require_nonempty("wmt train", kept, report)
    a, b = read_any(test[src]), read_any(test[tgt])
    if len(a) != len(b):
        raise DataPrepError(f"{test[src]} has {len(a)} segments but {test[tgt]} has {len(b)}")
    ta = moses.tokenize(a, src, normalize=True, aggressive=True, jobs=jobs)
    tb = moses.tokenize(b, tgt, normalize=True, aggressive=True, jobs=jobs)
    splits = {"valid": [p for i, p in enumerate(kept, 1) if i % 100 == 0],
              "train": [p for i, p in enumerate(kept, 1) if i % 100 != 0],
              "test": list(zip(ta, tb))}
    return splits, {"train_filter": report}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_prep.wmt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--raw-dir", type=Path, required=True, help="folder holding the WMT raw files (searched recursively)")
    p.add_argument("--src", default="en", choices=("en", "de"), help="default en")
    p.add_argument("--tgt", default="de", choices=("en", "de"), help="default de")
    p.add_argument("--corpora", default=",".join(CORPORA), help=f"comma-separated subset of {','.join(CORPORA)}")
    p.add_argument("--test-src", type=Path, default=None, help="test source file (.sgm or text) instead of newstest2014")
    p.add_argument("--test-tgt", type=Path, default=None)
    p.add_argument("--ratio", type=float, default=1.5, help="clean-corpus ratio (default 1.5)")
    p.add_argument("--max-len", type=int, default=250, help="clean-corpus maximum words (default 250)")
    p.add_argument("--jobs", type=int, default=2, help="tokenisation processes (default 2)")
    p.add_argument("--download", action="store_true", help="download the WMT archives into --raw-dir first")
    add_output_args(p)
    return p


def run(args: argparse.Namespace) -> dict:
    check_pair(args.src, args.tgt)
    names = [c.strip() for c in args.corpora.split(",") if c.strip()]
    bad = [c for c in names if c not in CORPORA]
    if bad or not names:
        raise DataPrepError(f"--corpora {args.corpora!r}: expected names from {', '.join(CORPORA)}")
    if args.download:
        download(args.raw_dir)
    if not args.raw_dir.is_dir():
        raise DataPrepError(f"--raw-dir {args.raw_dir}: no such folder")
    files = [(find_corpus(args.raw_dir, CORPORA[c], args.src), find_corpus(args.raw_dir, CORPORA[c], args.tgt)) for c in names]
    if (args.test_src is None) != (args.test_tgt is None):
        raise DataPrepError("--test-src and --test-tgt: expected both or neither")
    test = {args.src: args.test_src, args.tgt: args.test_tgt} if args.test_src else find_test(args.raw_dir, args.src, args.tgt)
    for f in test.values():
        if not f.is_file():
            raise DataPrepError(f"{f}: file not found")
    inputs = [f for pair in files for f in pair] + [test[args.src], test[args.tgt]]
    options = {"src": args.src, "tgt": args.tgt, "corpora": names, "ratio": args.ratio, "max_len": args.max_len}
    return prepare(args, corpus="wmt14", src=args.src, tgt=args.tgt, inputs=inputs, options=options,
                   make_splits=lambda: extract(files, test, args.src, args.tgt, ratio=args.ratio or None,
                                               max_len=args.max_len, jobs=args.jobs))


def main(argv=None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
