"""What word-level KD costs: plain label-smoothed training vs ls_kd with an online teacher vs the top-K cache.

    python benchmarks/kd_cost.py [--out runs/bench_kd_cost] [--rounds 2] [--max-train 2000]

On the same data (Bible de-en subset, sentencepiece 8k joint), model (transformer 3+3 layers, 256-dim,
ffn 1024, 4 heads) and batches (--max-tokens 4096, same seed), each run trains exactly one epoch with
  (a) fairseq's label_smoothed_cross_entropy,
  (b) ls_kd with an online teacher of the same size (full vocabulary),
  (c) ls_kd from a top-K cache (K = 8, built once by `lskd cache`),
interleaved a b c a b c ... over --rounds, so that a noisy machine slows all three alike. Each run is a
fresh fairseq-train process; words/s and words/update come from fairseq's own end-of-epoch stats (start-up
excluded; seconds/update = words per update / words per second, as fairseq rounds updates/s to 2 digits),
peak RSS from the kernel (os.wait4) for that process. The ratios b/a and c/a are computed per round (runs
next to each other in time) and their median is reported with the range. Also prints the cache build time
against one plain epoch and the cache's bytes per target token.
Writes OUT/kd_cost.json with every measurement and the command.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lskd.fileio import command_line, write_json  # noqa: E402

BIN = Path(sys.executable).parent
MODEL = [
    "--arch", "transformer", "--encoder-layers", "3", "--decoder-layers", "3",
    "--encoder-embed-dim", "256", "--decoder-embed-dim", "256",
    "--encoder-ffn-embed-dim", "1024", "--decoder-ffn-embed-dim", "1024",
    "--encoder-attention-heads", "4", "--decoder-attention-heads", "4", "--share-decoder-input-output-embed",
    "--dropout", "0.1", "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "5e-4",
    "--lr-scheduler", "inverse_sqrt", "--warmup-updates", "100", "--max-tokens", "4096", "--seed", "1",
    "--cpu", "--num-workers", "0", "--user-dir", str(REPO / "fairseq_plugins"), "--task", "translation",
    "--log-format", "json", "--no-progress-bar", "--no-save", "--disable-validation",
]


def run_measured(cmd, log: Path):
    """Run cmd; return (seconds, peak RSS in MiB, stdout)."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONWARNINGS="ignore")
    start = time.time()
    with open(log, "w") as f:
        proc = subprocess.Popen([str(c) for c in cmd], stdout=f, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"benchmark step failed ({proc.returncode}): see {log}")
    return time.time() - start, usage.ru_maxrss / 1024, log.read_text()


def epoch_stats(stdout: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if "| train | " in line:
            return json.loads(line.split("| train | ", 1)[1])
    raise SystemExit("no end-of-epoch train stats in the fairseq log")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "runs" / "bench_kd_cost")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-train", type=int, default=2000, help="training pairs of the Bible subset (default 2000)")
    p.add_argument("--k", type=int, default=8)
    args = p.parse_args()
    out = args.out
    (out / "logs").mkdir(parents=True, exist_ok=True)
    data = out / "data"
    # data_prep skips its own finished steps, and redoes them when --max-train changes
    run_measured([sys.executable, "-m", "data_prep.bible", "--src", "de", "--tgt", "en", "--out", data,
                      "--max-train", args.max_train, "--vocab-size", "8000"], out / "logs" / "prepare.log")
    train = [BIN / "fairseq-train", data / "bin", *MODEL]
    teacher = out / "teacher" / "checkpoint_last.pt"
    if not teacher.is_file():  # any weights of the right size will do for timing
        ckpt = [a for a in train if a != "--no-save"]
        run_measured([*ckpt, "--criterion", "ls_kd", "--kd-lambda", "0", "--label-smoothing", "0.1", "--max-update", "5",
                      "--save-dir", out / "teacher", "--no-epoch-checkpoints"], out / "logs" / "teacher.log")
    cache = out / "cache"
    cache_s, cache_rss, _ = run_measured([BIN / "lskd", "cache", "--data", data / "bin", "--teacher-path", teacher,
                                          "--out", cache, "--splits", "train", "--k", args.k, "--cpu", "--force"],
                                         out / "logs" / "cache.log")
    cache_manifest = json.loads((cache / "train" / "manifest.json").read_text())
    variants = {
        "a": ["--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1"],
        "b": ["--criterion", "ls_kd", "--kd-lambda", "0.9", "--label-smoothing", "0.1", "--teacher-path", teacher],
        "c": ["--criterion", "ls_kd", "--kd-lambda", "0.9", "--label-smoothing", "0.1", "--kd-topk-cache", cache],
    }
    from lskd.machine import cpu_model, load_at_start

    load = load_at_start()  # before the timed runs (later, their own work is in the 1-minute average)
    runs = []
    for r in range(args.rounds):
        for name, crit in variants.items():
            wall, rss, stdout = run_measured([*train, "--max-epoch", "1", *crit], out / "logs" / f"{name}{r}.log")
            s = epoch_stats(stdout)
            wps, wpb, updates = float(s["train_wps"]), float(s["train_wpb"]), int(s["train_num_updates"])
            runs.append({"variant": name, "round": r, "s_per_update": wpb / wps, "wps": wps, "wpb": wpb,
                         "updates": updates, "epoch_seconds": updates * wpb / wps,
                         "peak_rss_mib": rss, "process_seconds": wall})
            print(f"round {r} {name}: {wpb / wps:.3f} s/update, {wps:.0f} words/s, peak RSS {rss:.0f} MiB", flush=True)

    def med(v, key):
        return statistics.median(x[key] for x in runs if x["variant"] == v)

    def paired(v, key):  # per-round ratios v/a: each pair ran next to each other, so shared noise cancels
        by_round = {(x["variant"], x["round"]): x[key] for x in runs}
        return [by_round[v, r] / by_round["a", r] for r in range(args.rounds)]

    names = {"a": "label_smoothed_cross_entropy", "b": "ls_kd, online teacher", "c": f"ls_kd, top-{args.k} cache"}
    lines = ["| run | s/update | words/s | peak RSS MiB | step time / (a) | peak RSS / (a) |", "|---|---|---|---|---|---|"]
    for v in "abc":
        st, rs = paired(v, "s_per_update"), paired(v, "peak_rss_mib")
        lines.append(f"| ({v}) {names[v]} | {med(v, 's_per_update'):.3f} | {med(v, 'wps'):.0f} | {med(v, 'peak_rss_mib'):.0f} | "
                     f"{statistics.median(st):.3f} ({min(st):.2f}-{max(st):.2f}) | {statistics.median(rs):.3f} ({min(rs):.2f}-{max(rs):.2f}) |")
    epoch_a = med("a", "epoch_seconds")
    summary = {
        "ratio_step_b_over_a": statistics.median(paired("b", "s_per_update")),
        "ratio_step_c_over_a": statistics.median(paired("c", "s_per_update")),
        "ratio_rss_b_over_a": statistics.median(paired("b", "peak_rss_mib")),
        "ratio_rss_c_over_a": statistics.median(paired("c", "peak_rss_mib")),
        "per_round_step_b_over_a": paired("b", "s_per_update"),
        "per_round_step_c_over_a": paired("c", "s_per_update"),
        "cache_build_seconds": cache_manifest["build_seconds"],
        "cache_process_seconds": cache_s,
        "plain_epoch_seconds": epoch_a,
        "cache_build_over_plain_epoch": cache_manifest["build_seconds"] / epoch_a,
        "cache_bytes_per_target_token": cache_manifest["bytes_per_token"],
        "cache_target_tokens": cache_manifest["n_tokens"],
    }
    lines += [
        "",
        f"step time ratios (median of {args.rounds} per-round ratios): b/a = {summary['ratio_step_b_over_a']:.3f}, "
        f"c/a = {summary['ratio_step_c_over_a']:.3f}; peak RSS b/a = {summary['ratio_rss_b_over_a']:.3f}, "
        f"c/a = {summary['ratio_rss_c_over_a']:.3f}",
        f"cache build: {summary['cache_build_seconds']:.1f} s for {summary['cache_target_tokens']} target tokens "
        f"= {summary['cache_build_over_plain_epoch']:.2f} x one plain epoch ({epoch_a:.1f} s); "
        f"{summary['cache_bytes_per_target_token']} bytes per target token (K={args.k})",
    ]
    print("\n".join(lines))
    write_json(out / "kd_cost.json", {"summary": summary, "runs": runs, "table": lines, "command": command_line(),
                                      "cpu": cpu_model(), "load_average_at_start": round(load, 2)})


if __name__ == "__main__":
    main()
