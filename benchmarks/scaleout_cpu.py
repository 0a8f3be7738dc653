"""Scale-out of ls_kd on one CPU machine: 2 ranks vs 1, and memory per rank vs cache / corpus size.

    python benchmarks/scaleout_cpu.py [--work DIR] [--sentences 2000 40000] [--updates 120] [--repeats 2]

Prints (and writes to WORK/scaleout.json):
1. equivalence and speed: `lskd train-ranks --nproc 2` (1 thread each) vs one process with --update-freq 2
   (the same global batch) using all cores, and using 1 thread, from a top-K cache, interleaved,
   `--repeats` times: the largest difference of the logged per-update losses, and the ratios of training
   words/s (median of the per-update words/s after 3 warm-up updates; median, min and max over repeats);
   the load average before it starts is recorded (lskd/machine.py): time it on a quiet machine;
2. peak RSS per rank (from the kernel's rusage of each rank) while training from a small and a large
   memory-mapped cache: the ratio large/small is ~1 when no rank holds the cache in memory;
3. peak RSS of `lskd cache` shard builds and their merge for the two corpus sizes (ratio ~1 when the
   build's memory does not grow with the corpus), and the speed of the start-up NaN/inf scan.
The corpus is the tests' synthetic word-for-word "translation" with a 200-word vocabulary; the model a
2+2-layer 128-dim transformer; caches are written with K=64 so that the large one is far bigger than
the model. Absolute times on a shared machine mean little: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PLUGINS = str(REPO / "fairseq_plugins")
ARCH = ["--arch", "transformer", "--encoder-layers", "2", "--decoder-layers", "2", "--encoder-embed-dim", "128",
        "--decoder-embed-dim", "128", "--encoder-ffn-embed-dim", "256", "--decoder-ffn-embed-dim", "256",
        "--encoder-attention-heads", "4", "--decoder-attention-heads", "4"]
TRAIN = ["--task", "translation", "--user-dir", PLUGINS, "--cpu", "--seed", "1", "--optimizer", "adam", "--lr", "1e-3",
         "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "10", "--max-tokens", "2000", "--dropout", "0.1",
         "--no-progress-bar", "--log-format", "json", "--log-interval", "1", "--no-save", "--num-workers", "0",
         "--disable-validation", *ARCH]
VOCAB = 200


def sh(cmd, **kw):
    """Run a command; returns its stdout+stderr (exits with its output's tail if it fails)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    p = subprocess.Popen([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, **kw)
    out, _ = p.communicate()
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{out[-3000:]}")
    return out


def peak_rss(cmd):
    """Peak RSS (MiB) of one command, measured in a fresh interpreter so earlier children do not count."""
    code = ("import resource,subprocess,sys;p=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
            "sys.stdout.write(p.stdout[-2000:]+p.stderr[-2000:]);"
            "print('PEAK_RSS_MIB',resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024);sys.exit(p.returncode)")
    out = sh([sys.executable, "-c", code, *cmd])
    return float(re.findall(r"PEAK_RSS_MIB (\S+)", out)[-1])


def corpus(root: Path, n: int, dicts: Path = None) -> Path:
    """n training sentences (word-for-word mapping over VOCAB words), binarised (with the dictionaries
    of `dicts` if given, so that one teacher serves every size); returns the bin dir."""
    bin_dir = root / f"bin{n}"
    if (bin_dir / "train.src-tgt.tgt.bin").is_file():
        return bin_dir
    rng = random.Random(n)
    raw = root / f"raw{n}"
    raw.mkdir(parents=True, exist_ok=True)
    for split, m in (("train", n), ("valid", 100)):
        src, tgt = [], []
        for _ in range(m):
            ids = [rng.randrange(VOCAB) for _ in range(rng.randint(4, 12))]
            src.append(" ".join(f"s{i}" for i in ids))
            tgt.append(" ".join(f"t{(7 * i) % VOCAB}" for i in ids))
        (raw / f"{split}.src").write_text("\n".join(src) + "\n")
        (raw / f"{split}.tgt").write_text("\n".join(tgt) + "\n")
    sh([BIN / "fairseq-preprocess", "--source-lang", "src", "--target-lang", "tgt", "--trainpref", raw / "train",
        "--validpref", raw / "valid", "--destdir", bin_dir, "--workers", "2",
        *(["--srcdict", dicts / "dict.src.txt", "--tgtdict", dicts / "dict.tgt.txt"] if dicts else [])])
    return bin_dir


def teacher(root: Path, bin_dir: Path) -> Path:
    save = root / "teacher"
    if not (save / "checkpoint_last.pt").is_file():
        sh([BIN / "fairseq-train", bin_dir, *[a for a in TRAIN if a != "--no-save"], "--max-update", "30",
            "--save-dir", save, "--no-epoch-checkpoints", "--criterion", "ls_kd", "--kd-lambda", "0",
            "--label-smoothing", "0.1"])
    return save / "checkpoint_last.pt"


def per_update_losses(out: str):
    return {int(r["num_updates"]): float(r["loss"]) for r in
            (json.loads(line.split("| train_inner | ", 1)[1]) for line in out.splitlines() if "| train_inner | " in line)}


def words_per_second(out: str, skip: int = 3) -> float:
    """Median wps of the per-update records after `skip` warm-up updates."""
    recs = [json.loads(line.split("| train_inner | ", 1)[1]) for line in out.splitlines() if "| train_inner | " in line]
    return statistics.median(float(r["wps"]) for r in recs[skip:])


def rank_rss(out: str):
    m = re.search(r"peak RSS (.*)", out)
    return [float(x) for x in re.findall(r"rank \d+ (\S+) MiB", m.group(1))] if m else []


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/lskd_scaleout"))
    p.add_argument("--sentences", type=int, nargs=2, default=[2000, 40000], help="small and large corpus")
    p.add_argument("--updates", type=int, default=120)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--k", type=int, default=64)
    args = p.parse_args()
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    small = corpus(work, args.sentences[0])
    large = corpus(work, args.sentences[1], dicts=small)
    t = teacher(work, small)
    from lskd.machine import cpu_model, load_at_start

    # the load before any work of this script (later, its own previous steps are in the 1-minute average)
    results = {"command": " ".join(sys.argv), "cpus": os.cpu_count(), "cpu": cpu_model(),
               "load_average_at_start": round(load_at_start(), 2)}

    # 3. cache builds: 2 shards + merge, per corpus size; peak RSS of each process
    caches, build_rss = {}, {}
    for n, bin_dir in zip(args.sentences, (small, large)):
        out = work / f"cache{n}"
        base = [BIN / "lskd", "cache", "--data", bin_dir, "--teacher-path", t, "--out", out, "--k", args.k, "--cpu",
                "--splits", "train", "valid", "--num-shards", "2"]
        measured = work / f"cache{n}.build_rss.json"
        if not (out / "train" / "manifest.json").is_file():
            shard = peak_rss(base + ["--shard-id", "0"])
            merge = peak_rss(base)  # builds shard 1, merges
            measured.write_text(json.dumps({"shard0_build_mib": shard, "shard1_build_and_merge_mib": merge}))
        build_rss[n] = json.loads(measured.read_text())
        caches[n] = out
    sizes = {n: sum(f.stat().st_size for f in (caches[n] / "train").iterdir()) / 2**20 for n in args.sentences}
    results["cache_build_peak_rss_mib"] = build_rss
    results["cache_train_split_mib"] = sizes
    print(f"cache sizes (train split, K={args.k}): " + ", ".join(f"{n} sentences {s:.1f} MiB" for n, s in sizes.items()))
    for n, r in build_rss.items():
        print(f"lskd cache peak RSS, {n} sentences: shard 0 {r['shard0_build_mib']:.0f} MiB, shard 1 + merge "
              f"{r['shard1_build_and_merge_mib']:.0f} MiB")

    # NaN/inf scan at start: speed on the large cache (pages already in the OS cache)
    sys.path.insert(0, str(REPO))
    from fairseq_plugins.topk_cache import TopKCache

    cache = TopKCache(caches[args.sentences[1]] / "train")
    cache.check_finite()
    start = time.perf_counter()
    cache.check_finite()
    scan = time.perf_counter() - start
    gib = cache.values.nbytes / 2**30
    results["nan_scan_gib_per_s"] = gib / scan
    print(f"NaN/inf scan of values.npy: {gib * 1024:.1f} MiB in {scan:.3f} s = {gib / scan:.2f} GiB/s")

    # 2. training RSS per rank, small vs large cache (2 ranks each)
    rss = {}
    for n, bin_dir in zip(args.sentences, (small, large)):
        out = sh([BIN / "lskd", "train-ranks", "--nproc", "2", "--log-dir", work / f"rss{n}", "--", bin_dir, *TRAIN,
                     "--max-update", "4", "--criterion", "ls_kd", "--kd-lambda", "0.9", "--kd-temperature", "2",
                     "--kd-topk-cache", caches[n]])
        rss[n] = rank_rss(out)
    lo, hi = (max(rss[n]) for n in args.sentences)
    results["train_peak_rss_per_rank_mib"] = rss
    results["train_rss_ratio_large_over_small"] = hi / lo
    print(f"training peak RSS per rank: {rss[args.sentences[0]]} MiB with the {sizes[args.sentences[0]]:.1f} MiB cache, "
          f"{rss[args.sentences[1]]} MiB with the {sizes[args.sentences[1]]:.1f} MiB cache: ratio {hi / lo:.3f}")

    # 1. equivalence and speed, 2 ranks vs 1 rank with --update-freq 2, interleaved
    common = [large, *TRAIN, "--max-update", str(args.updates), "--criterion", "ls_kd", "--kd-lambda", "0.9",
              "--kd-temperature", "2", "--kd-topk-cache", caches[args.sentences[1]], "--dropout", "0"]
    arms = {"1 rank x all cores, --update-freq 2": ["--nproc", "1"],
            "1 rank x 1 thread, --update-freq 2": ["--nproc", "1", "--threads", "1"],
            "2 ranks x 1 thread": ["--nproc", "2", "--threads", "1"]}
    wps = {name: [] for name in arms}
    diffs = []
    for r in range(args.repeats):
        curves = {}
        for name, launch in arms.items():
            out = sh([BIN / "lskd", "train-ranks", *launch, "--log-dir", work / "ranks", "--", *common,
                      *(["--update-freq", "2"] if "update-freq" in name else [])])
            wps[name].append(words_per_second(out))
            curves[name] = per_update_losses(out)
        ref = curves[next(iter(arms))]
        assert all(c.keys() == ref.keys() for c in curves.values()), {k: sorted(c) for k, c in curves.items()}
        diffs.append(max(abs(c[u] - ref[u]) for c in curves.values() for u in ref))
        results["loss_curves"] = curves
        print(f"repeat {r}: " + ", ".join(f"{name} {wps[name][-1]:.0f} words/s" for name in arms)
              + f"; max |loss difference| over {len(ref)} updates {diffs[-1]:.4f}")
    median = {name: statistics.median(v) for name, v in wps.items()}
    two = median["2 ranks x 1 thread"]
    for name, v in wps.items():
        print(f"{name}: words/s median {statistics.median(v):.0f}, min {min(v):.0f}, max {max(v):.0f}; "
              f"2 ranks / this: median {statistics.median(a / b for a, b in zip(wps['2 ranks x 1 thread'], v)):.2f}x "
              f"[{min(a / b for a, b in zip(wps['2 ranks x 1 thread'], v)):.2f}, "
              f"{max(a / b for a, b in zip(wps['2 ranks x 1 thread'], v)):.2f}] (same repeat)")
    results.update({"words_per_s": wps, "max_abs_loss_diff": max(diffs), "updates": args.updates,
                    "wps_ratio_2ranks_over_1rank_all_cores": two / median["1 rank x all cores, --update-freq 2"],
                    "wps_ratio_2ranks_over_1rank_1thread": two / median["1 rank x 1 thread, --update-freq 2"]})
    print(f"2 ranks / 1 rank with all {os.cpu_count()} cores: {results['wps_ratio_2ranks_over_1rank_all_cores']:.2f}x; "
          f"2 ranks / 1 rank with 1 thread: {results['wps_ratio_2ranks_over_1rank_1thread']:.2f}x (medians of "
          f"{args.repeats}); largest per-update loss difference {max(diffs):.4f} (losses are logged to 3 decimals)")
    (work / "scaleout.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, work / "scaleout.png")
    print(f"wrote {work / 'scaleout.json'} and {work / 'scaleout.png'}")


def plot(results, path: Path) -> None:
    """Left: per-update training loss, 1 rank vs 2 ranks. Right: peak RSS per rank vs cache size."""
    import logging

    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # the imported fairseq set the root logger to DEBUG
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for (name, curve), style in zip(results["loss_curves"].items(), ("-", ":", "--")):
        updates = sorted(curve, key=int)
        left.plot([int(u) for u in updates], [curve[u] for u in updates], style, label=name)
    left.set(xlabel="update", ylabel="train loss (base 2)", title="same global batch: 1 rank vs 2 ranks")
    left.legend()
    sizes = results["cache_train_split_mib"]
    rss = results["train_peak_rss_per_rank_mib"]
    names = [f"{float(sizes[n]):.0f} MiB cache" for n in sizes]
    for r in range(2):
        right.bar([i + 0.4 * r for i in range(len(names))], [rss[n][r] for n in rss], width=0.4, label=f"rank {r}")
    right.set_xticks([i + 0.2 for i in range(len(names))], names)
    right.set(ylabel="peak RSS per rank (MiB)", title="2 ranks training from a memory-mapped cache")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
