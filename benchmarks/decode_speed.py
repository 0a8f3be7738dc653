"""Decoding speed of fairseq-generate vs CTranslate2 (`lskd ct2-generate`), same data, same settings, one run.

    .venv/bin/python benchmarks/decode_speed.py --data runs/bible_demo/data/bin --ref runs/bible_demo/data/raw/test.en \\
        --model demo=runs/bible_demo/teachers/a0.1_s1/checkpoint_best.pt --model iwslt=random --rounds 3

Each --model NAME=CKPT is decoded on the whole --split (or its first --n sentences; a scratch copy of the data dir) with
fairseq-generate and with CTranslate2 in every --compute-types type the CPU supports, at every --beams size,
with the same --gen-args (default the demo recipe's: --max-len-a 1.2 --max-len-b 10 --batch-size 128 --cpu).
`NAME=random` builds a transformer_iwslt_de_en model (6+6 layers, 512 dims) on --data's dictionaries with one
update at lr 1e-9 (randomly initialised for speed; its BLEU is meaningless, shown as such).
The configurations are interleaved: every round runs each (model, beam, engine) once in turn, so a load change
on a shared machine hits all alike. Speeds come from each tool's own "Translated N sentences (T tokens) in Xs"
timer (decoding only, no start-up); the median over rounds is printed with the median, min and max over rounds of
the ratio to fairseq-generate of the same model and beam in the same round, BLEU (sacrebleu, detokenised, vs --ref) beside
each, and the share of hypotheses identical to fairseq's. Table as markdown (stdout and --out .md), ratios as a
PNG (--out .png). The CTranslate2 engine sets glibc's malloc to keep freed memory (ct2_model.keep_freed_memory);
--allocator-rows adds fairseq-generate under the same settings (as environment variables) and CTranslate2 without
them, so that the table shows what the allocator alone is worth to each.
Enough work: a ratio measured on a few batches flatters the engine that pads less (fairseq-generate pays for
padding to the longest sentence of each batch: 100 sentences are one batch of 128), so --n below both the whole
split and 1,000 sentences is refused unless --allow-small, which marks the table as not a figure for the docs.
Time it on a machine doing nothing else.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))
TIMER = re.compile(r"Translated [\d,]+ sentences \([\d,]+ tokens\) in [\d.]+s \(([\d.]+) sentences/s, ([\d.]+) tokens/s\)")


def run(cmd, env_extra=None) -> str:
    env = dict(os.environ, PYTHONWARNINGS="ignore", **(env_extra or {}))
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr  # fairseq-generate logs its timer on stderr


def random_iwslt(data: Path, dest: Path) -> Path:
    """A transformer_iwslt_de_en checkpoint, weights as initialised (one update at lr 1e-9)."""
    ckpt = dest / "checkpoint_last.pt"
    if not ckpt.is_file():
        run([BIN / "fairseq-train", data, "--user-dir", REPO / "fairseq_plugins", "--arch", "transformer_iwslt_de_en",
             "--share-decoder-input-output-embed", "--optimizer", "adam", "--lr", "1e-9", "--max-update", "1",
             "--max-tokens", "1024", "--criterion", "ls_kd", "--kd-lambda", "0", "--label-smoothing", "0.1",
             "--cpu", "--num-workers", "0", "--save-dir", dest, "--no-epoch-checkpoints", "--no-save-optimizer-state",
             "--disable-validation"])
    return ckpt


# glibc malloc settings equal to what the CTranslate2 engine sets in-process (ct2_model.keep_freed_memory)
TUNED_MALLOC = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2 ** 31 - 1)}
# the allocator rows (--allocator-rows): each engine under the other one's allocator settings
ALLOCATOR_ROWS = {"fairseq+tuned-malloc": TUNED_MALLOC, "ct2-float32+glibc-malloc": {"LSKD_CT2_MALLOC": "0"}}


def decode(engine: str, data: Path, ckpt: Path, split: str, beam: int, gen_args: list):
    """(sentences/s, tokens/s, hypotheses in corpus order) of one engine row: fairseq, ct2-TYPE, or an allocator row."""
    common = [data, "--user-dir", REPO / "fairseq_plugins", "--path", ckpt, "--gen-subset", split, "--beam", beam,
              "--required-batch-size-multiple", "1", "--post-process", "sentencepiece", *gen_args]
    base, _, _ = engine.partition("+")
    env = ALLOCATOR_ROWS.get(engine)
    if base == "fairseq":
        out = run([BIN / "fairseq-generate", *common], env)
    else:
        out = run([BIN / "lskd", "ct2-generate", *common, "--compute-type", base.split("-", 1)[1]], env)
    m = TIMER.search(out)
    if not m:
        sys.exit(f"no 'Translated ...' timer line in the output of {engine}")
    hyps = {}
    for line in out.splitlines():
        if line.startswith("D-"):
            head, _, text = line.split("\t")
            hyps.setdefault(int(head[2:]), text)
    return float(m.group(1)), float(m.group(2)), [hyps[i] for i in sorted(hyps)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--ref", type=Path, required=True, help="detokenised references of --split, for BLEU")
    p.add_argument("--split", default="test")
    p.add_argument("--model", action="append", required=True, help="NAME=CKPT or NAME=random (repeatable)")
    p.add_argument("--n", type=int, default=0, help="first N sentences of --split (default 0: the whole split)")
    p.add_argument("--allow-small", action="store_true",
                   help="measure on fewer than 1,000 sentences and less than the whole split (a test of the script, "
                        "not a figure for the docs: the table says so)")
    p.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    p.add_argument("--compute-types", nargs="+", default=["float32", "int8"])
    p.add_argument("--allocator-rows", action="store_true",
                   help="also fairseq-generate under the engine's malloc settings, and CTranslate2 float32 without them")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS for both engines (default 2)")
    p.add_argument("--gen-args", default="--max-len-a 1.2 --max-len-b 10 --batch-size 128 --cpu")
    p.add_argument("--work", type=Path, default=None, help="scratch dir (default: a temporary one)")
    p.add_argument("--out", type=Path, default=None, help="write OUT.md (the table) and OUT.png (ratios)")
    args = p.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import ctranslate2
    import sacrebleu

    from distill_throughput import subset
    from lskd.machine import cpu_model, load_at_start

    work = args.work or Path(tempfile.mkdtemp(prefix="decode_speed."))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "data"
    total = subset(args.data, args.split, 10 ** 9, work / "count")
    n = subset(args.data, args.split, args.n or total, data)  # written as the `train` split of the scratch dir
    small = n < min(1000, total)
    if small and not args.allow_small:
        sys.exit(f"--n {args.n}: below the whole {args.split} split ({total} sentences) and below 1,000 sentences; "
                 "a ratio on a few batches is not a measurement (--allow-small to run it anyway)")
    if small:
        print(f"warning: {n} sentences: below the minimum work, not a figure for the docs", file=sys.stderr)
    refs = args.ref.read_text(encoding="utf-8").splitlines()[:n]
    models = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        models[name] = random_iwslt(args.data, work / name) if path == "random" else Path(path)
    supported = ctranslate2.get_supported_compute_types("cpu")
    engines = ["fairseq"] + [f"ct2-{t}" for t in args.compute_types if t in supported]
    if args.allocator_rows:
        engines += list(ALLOCATOR_ROWS)
    skipped = [t for t in args.compute_types if t not in supported]
    gen_args = shlex.split(args.gen_args)
    for name, ckpt in models.items():  # convert once before timing (the cache makes later runs reuse it)
        decode("ct2-float32", data, ckpt, "train", 1, gen_args + ["--max-len-b", "1"])
    load = load_at_start()
    results = {}
    for r in range(args.rounds):
        for name, ckpt in models.items():
            for beam in args.beams:
                for engine in engines:
                    sps, tps, hyps = decode(engine, data, ckpt, "train", beam, gen_args)
                    results.setdefault((name, beam, engine), []).append((sps, tps, hyps))
                    print(f"round {r + 1}: {name} beam {beam} {engine}: {sps:.1f} sentences/s, {tps:.0f} tokens/s",
                          file=sys.stderr, flush=True)
    cpu = cpu_model()
    lines = [("**BELOW THE MINIMUM WORK (--allow-small): not a figure for the docs.** " if small else "")
             + f"CPU: {cpu}, {os.cpu_count()} cores, OMP_NUM_THREADS={args.threads}; {n} sentences of {args.split}"
             f"{' (the whole split)' if n == total else ''}; load average at start {load:.2f}; "
             f"{args.rounds} interleaved rounds (median; ratio: median [min, max] over rounds); gen args: {args.gen_args}; CTranslate2 {ctranslate2.__version__}"
             + (f"; not supported by this CPU: {', '.join(skipped)}" if skipped else ""), "",
             "| model | beam | engine | sentences/s | tokens/s | x fairseq | BLEU | identical to fairseq |",
             "|---|---|---|---|---|---|---|---|"]
    ratios = {}
    for name in models:
        random_init = [s for s in args.model if s.startswith(f"{name}=")][0].endswith("=random")
        for beam in args.beams:
            base_hyps = results[(name, beam, "fairseq")][0][2]
            for engine in engines:
                runs = results[(name, beam, engine)]
                sps, tps = statistics.median(s for s, _, _ in runs), statistics.median(t for _, t, _ in runs)
                hyps = runs[0][2]
                bleu = "n/a (random)" if random_init else f"{sacrebleu.corpus_bleu(hyps, [refs]).score:.2f}"
                same = sum(a == b for a, b in zip(hyps, base_hyps)) / len(hyps)
                # the ratio of each round (same load for both), median over rounds
                per_round = [r[0] / b[0] for r, b in zip(runs, results[(name, beam, "fairseq")])]
                ratio = statistics.median(per_round)
                ratios[(name, beam, engine)] = ratio
                spread = f" [{min(per_round):.2f}, {max(per_round):.2f}]" if len(per_round) > 1 else ""
                lines.append(f"| {name} | {beam} | {engine} | {sps:.1f} | {tps:.0f} | {ratio:.2f}{spread} | {bleu} | "
                             f"{100 * same:.1f}% |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(table + "\n")
        import logging

        import matplotlib
        logging.getLogger("matplotlib").setLevel(logging.WARNING)
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        keys = [k for k in ratios if k[2] != "fairseq"]
        fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(keys), 3.5))
        ax.bar(range(len(keys)), [ratios[k] for k in keys], color="tab:blue")
        ax.axhline(1.0, color="black", lw=0.8)
        labels = [f"{m}\nbeam {b}\n" + e.replace("+", "\n") for m, b, e in keys]
        ax.set_xticks(range(len(keys)), labels, fontsize=7)
        ax.set_ylabel("sentences/s, x fairseq-generate")
        ax.set_title(f"CTranslate2 vs fairseq-generate ({args.threads} threads)", fontsize=10)
        fig.tight_layout()
        fig.savefig(args.out.with_suffix(".png"), dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
