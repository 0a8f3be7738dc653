"""Decoding throughput of `lskd distill-data` vs plain `fairseq-generate`, same input, same settings.

    .venv/bin/python benchmarks/distill_throughput.py [--data BIN --teacher CKPT --split valid --n 100 --reps 2]

The first --n sentences of --split are written as the `train` split of a scratch data dir (fairseq's
indexed-dataset builder, same dictionaries), then, alternating in the same conditions (--reps rounds):
  (a) fairseq-generate --gen-subset train --beam B --required-batch-size-multiple 1 (output to a file)
  (b) lskd distill-data --split train --beam B (fresh --out each time)
Printed per method (median over the rounds): decoding sentences/s and tokens/s (fairseq's own
"Translated ... in Xs" timer for (a), the manifest's inference_step time for (b)), process wall time,
and the wrapper's overhead in (b): extraction + filtering + binarising + text + merge, as a fraction of
its decoding time (target < 10%).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def subset(data: Path, split: str, n: int, dest: Path) -> int:
    from fairseq.data import data_utils, indexed_dataset

    src, tgt = data_utils.infer_language_pair(str(data))
    dest.mkdir(parents=True, exist_ok=True)
    for lang in (src, tgt):
        shutil.copy(data / f"dict.{lang}.txt", dest / f"dict.{lang}.txt")
    count = 0
    for lang in (src, tgt):
        ds = indexed_dataset.MMapIndexedDataset(str(data / f"{split}.{src}-{tgt}.{lang}"))
        count = min(n, len(ds))
        vocab = sum(1 for _ in open(data / f"dict.{lang}.txt")) + 4
        b = indexed_dataset.make_builder(str(dest / f"train.{src}-{tgt}.{lang}.bin"), "mmap", vocab_size=vocab)
        for i in range(count):
            b.add_item(ds[i])
        b.finalize(str(dest / f"train.{src}-{tgt}.{lang}.idx"))
    return count


def timed(cmd, **kw):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t0 = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, **kw)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{proc.stderr[-3000:]}")
    return proc, wall


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=REPO / "runs/bench_kd_cost/data/bin")
    p.add_argument("--teacher", type=Path, default=REPO / "runs/bench_kd_cost/teacher/checkpoint_last.pt")
    p.add_argument("--split", default="valid", help="split whose first --n sentences are decoded (default valid)")
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--max-tokens", type=int, default=2000)
    p.add_argument("--gpu", action="store_true", help="decode on the GPU (default: CPU)")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="distill_bench."))
    data = work / "bin"
    n = subset(args.data, args.split, args.n, data)
    common = ["--beam", args.beam, "--lenpen", "1.0", "--max-tokens", args.max_tokens] + ([] if args.gpu else ["--cpu"])
    rows = {"fairseq-generate": [], "lskd distill-data": []}
    for r in range(args.reps):
        gen, wall = timed([BIN / "fairseq-generate", data, "--user-dir", REPO / "fairseq_plugins", "--path", args.teacher,
                           "--gen-subset", "train", "--required-batch-size-multiple", "1", *common,
                           "--results-path", work / f"gen{r}"])
        text = (work / f"gen{r}" / "generate-train.txt").read_text() + gen.stdout + gen.stderr
        m = re.search(r"Translated ([\d,]+) sentences \(([\d,]+) tokens\) in [\d.]+s \(([\d.]+) sentences/s, "
                      r"([\d.]+) tokens/s\)", text)
        sents, sent_s, tok_s = int(m.group(1).replace(",", "")), float(m.group(3)), float(m.group(4))
        secs = sents / sent_s
        rows["fairseq-generate"].append({"sent_s": sent_s, "tok_s": tok_s, "decode": secs, "wall": wall,
                                         "overhead": None})
        out = work / f"distill{r}"
        _, wall = timed([BIN / "lskd", "distill-data", "--data", data, "--teacher-path", args.teacher, "--out", out,
                         *common])
        man = json.loads((out / "manifest.json").read_text())
        s = man["seconds"]
        rows["lskd distill-data"].append({"sent_s": man["counts"]["sources"] / s["decode"],
                                          "tok_s": man["counts"]["generated_tokens"] / s["decode"],
                                          "decode": s["decode"], "wall": wall, "overhead": s["wrapper"] / s["decode"]})
        print(f"round {r + 1}/{args.reps}: generate {rows['fairseq-generate'][-1]}, distill {rows['lskd distill-data'][-1]}",
              file=sys.stderr)

    def med(key, rs):
        vals = [x[key] for x in rs if x[key] is not None]
        return statistics.median(vals) if vals else None

    print(f"\n{n} sentences ({args.split} of {args.data}), teacher {args.teacher.name}, beam {args.beam}, "
          f"--max-tokens {args.max_tokens}, {'GPU' if args.gpu else 'CPU'}, median of {args.reps} interleaved rounds\n")
    print("| method | sentences/s | tokens/s | decoding s | process wall s | wrapper overhead / decoding |")
    print("|---|---|---|---|---|---|")
    for name, rs in rows.items():
        ov = med("overhead", rs)
        print(f"| {name} | {med('sent_s', rs):.2f} | {med('tok_s', rs):.1f} | {med('decode', rs):.2f} | "
              f"{med('wall', rs):.1f} | {'-' if ov is None else f'{100 * ov:.1f}%'} |")
    g, d = med("wall", rows["fairseq-generate"]), med("wall", rows["lskd distill-data"])
    print(f"\nprocess wall time, distill-data vs fairseq-generate: {100 * (d - g) / g:+.1f}%")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
