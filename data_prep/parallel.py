"""Any local parallel text: two line-aligned UTF-8 files, checked and filtered, then the shared path.

    python -m data_prep.parallel --src corpus.de --tgt corpus.en --src-lang de --tgt-lang en --out data/my_de_en \
        [--valid-src dev.de --valid-tgt dev.en] [--test-src test.de --test-tgt test.en]

Checks: both files UTF-8 (an error names the file and line), equal line counts (an error names both
files and their counts). Filter (training pairs): empty lines, fewer than --min-len or more than
--max-len words, word-count ratio above --ratio; what was dropped is printed and kept in
OUT/raw/manifest.json. valid/test pairs only lose empty lines. Without --valid-*/--test-* files,
--valid-size and --test-size pairs are held out of the corpus (a fixed random choice, --seed).
An empty corpus after filtering is an error.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from .common import DataPrepError, count_lines, log, run_cli
from .pipeline import add_output_args, check_pair, prepare
from .text import filter_pairs, format_report, read_parallel, require_nonempty


def extract(args: argparse.Namespace):
    pairs = read_parallel(args.src, args.tgt)
    kept, report = filter_pairs(pairs, min_len=args.min_len, max_len=args.max_len, ratio=args.ratio or None)
    log(format_report(f"{args.src} / {args.tgt}", report))
    require_nonempty(f"{args.src} / {args.tgt}", kept, report)
    stats = {"filter_train": report}
    splits = {}
    held = set()
    for split in ("valid", "test"):
        fs, ft = getattr(args, f"{split}_src"), getattr(args, f"{split}_tgt")
        if fs is not None:
            sp, rep = filter_pairs(read_parallel(fs, ft), min_len=1)
            log(format_report(f"{split}: {fs} / {ft}", rep))
            require_nonempty(f"{split}: {fs} / {ft}", sp, rep)
            splits[split] = sp
            stats[f"filter_{split}"] = rep
    need = {s: getattr(args, f"{s}_size") for s in ("valid", "test") if s not in splits}
    if need:
        if sum(need.values()) >= len(kept):
            raise DataPrepError(f"{args.src}: only {len(kept)} pairs after filtering, too few to hold out "
                                + " and ".join(f"--{s}-size {n}" for s, n in need.items()))
        rng = random.Random(args.seed)
        order = rng.sample(range(len(kept)), sum(need.values()))
        start = 0
        for s, n in need.items():
            idx = sorted(order[start:start + n])
            start += n
            splits[s] = [kept[i] for i in idx]
            held.update(idx)
        stats["held_out"] = need
    splits["train"] = [p for i, p in enumerate(kept) if i not in held]
    return splits, stats


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_prep.parallel", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, required=True, help="source-side text file, one sentence per line")
    p.add_argument("--tgt", type=Path, required=True, help="target-side text file, line-aligned with --src")
    p.add_argument("--src-lang", default="src", help="language code used in file names (default src)")
    p.add_argument("--tgt-lang", default="tgt", help="language code used in file names (default tgt)")
    for split in ("valid", "test"):
        p.add_argument(f"--{split}-src", type=Path, default=None, help=f"{split} source file (optional)")
        p.add_argument(f"--{split}-tgt", type=Path, default=None, help=f"{split} target file")
        p.add_argument(f"--{split}-size", type=int, default=500, help=f"pairs held out for {split} when no {split} files are given (default 500)")
    p.add_argument("--seed", type=int, default=1, help="seed of the held-out choice (default 1)")
    p.add_argument("--min-len", type=int, default=1, help="minimum words per side (default 1)")
    p.add_argument("--max-len", type=int, default=250, help="maximum words per side (default 250)")
    p.add_argument("--ratio", type=float, default=3.0, help="maximum word-count ratio between the sides (default 3; 0 = off)")
    add_output_args(p)
    return p


def run(args: argparse.Namespace) -> dict:
    check_pair(args.src_lang, args.tgt_lang)
    inputs = [args.src, args.tgt]
    for split in ("valid", "test"):
        fs, ft = getattr(args, f"{split}_src"), getattr(args, f"{split}_tgt")
        if (fs is None) != (ft is None):
            raise DataPrepError(f"--{split}-src and --{split}-tgt: expected both files or neither")
        if fs is not None:
            inputs += [fs, ft]
        elif getattr(args, f"{split}_size") < 1:
            raise DataPrepError(f"--{split}-size {getattr(args, f'{split}_size')}: expected at least 1 (or give --{split}-src/--{split}-tgt)")
    for f in inputs:
        if not Path(f).is_file():
            raise DataPrepError(f"{f}: file not found")
    for fs, ft in zip(inputs[0::2], inputs[1::2]):  # cheap check before any step starts
        ns, nt = count_lines(fs), count_lines(ft)
        if ns != nt:
            raise DataPrepError(f"parallel files are misaligned: {fs} has {ns} lines but {ft} has {nt} lines")
    if args.min_len < 1 or args.max_len < args.min_len:
        raise DataPrepError(f"--min-len {args.min_len} --max-len {args.max_len}: expected 1 <= min-len <= max-len")
    options = {k: getattr(args, k) for k in ("src_lang", "tgt_lang", "valid_size", "test_size", "seed",
                                               "min_len", "max_len", "ratio")}
    options["valid_files"] = args.valid_src is not None
    options["test_files"] = args.test_src is not None
    return prepare(args, corpus="parallel", src=args.src_lang, tgt=args.tgt_lang, inputs=inputs,
                   options=options, make_splits=lambda: extract(args))


def main(argv=None) -> int:
    return run_cli(build_parser(), run, argv)


if __name__ == "__main__":
    sys.exit(main())
