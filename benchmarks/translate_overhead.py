"""What `lskd translate` costs on top of CTranslate2, and whether its memory stays flat in the input's length.

    .venv/bin/python benchmarks/translate_overhead.py --model runs/bible_deploy/exports/teacher.none \\
        --source runs/bible_deploy/data/raw/test.de --out docs/results/deploy_bible/translate_overhead.json

1. Overhead: the whole --source translated (a) by `lskd translate`'s own path (raw lines read, tokenised, searched
   with fairseq's semantics through fairseq_plugins/ct2_search.py, detokenised, written) and (b) by one call of
   CTranslate2's `translate_batch` on the same pre-tokenised pieces (same Translator, threads, beam, batch size,
   length limit = the longest sentence's), nothing else. Interleaved rounds; the ratio (a)/(b) per round, its
   median, min and max, at each --beams size. Target (issue 23): <= 1.10.
2. Memory: `lskd translate` as a separate process on the first --small and --large lines of --source repeated
   (default 1,000 and 20,000), peak RSS of each (os.wait4) and the ratio large/small. Target: <= 1.10.
Time it on a machine doing nothing else (the load average at the start is recorded).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def overhead(folder: Path, lines, beams, rounds: int, threads: int, batch_size: int) -> dict:
    import io

    from fairseq_plugins import ct2_model
    from fairseq_plugins.ct2_search import SearchSettings
    from fairseq_plugins.translate import ExportedModel, run

    ct2_model.take_threads_from_torch()
    search = SearchSettings(batch_size=batch_size, max_len_a=1.2, max_len_b=10)
    model = ExportedModel(folder, search, "cpu", "default", threads)
    pieces = [p.split() for p in model.encode([line for line in lines if line.strip()])]
    limit = max(search.limit(len(p) + 1) for p in pieces)
    raw = ("\n".join(lines) + "\n").encode("utf-8")
    run(model, io.BytesIO(raw), io.StringIO(), chunk=2000, name="source", progress=lambda *_: None)  # warm-up
    ratios = {b: [] for b in beams}
    times = {b: {"lskd_translate": [], "translate_batch": []} for b in beams}
    for _ in range(rounds):
        for beam in beams:
            model.use_search(SearchSettings(beam=beam, batch_size=batch_size, max_len_a=1.2, max_len_b=10))
            start = time.perf_counter()
            run(model, io.BytesIO(raw), io.StringIO(), chunk=2000, name="source", progress=lambda *_: None)
            a = time.perf_counter() - start
            start = time.perf_counter()
            model.decoder.translator.translate_batch(pieces, beam_size=beam, max_batch_size=batch_size,
                                                     batch_type="examples", max_decoding_length=limit)
            b = time.perf_counter() - start
            times[beam]["lskd_translate"].append(a)
            times[beam]["translate_batch"].append(b)
            ratios[beam].append(a / b)
            print(f"beam {beam}: lskd translate {a:.2f} s, translate_batch {b:.2f} s, ratio {a / b:.3f}", flush=True)
    return {str(b): {"ratio_median": statistics.median(r), "ratio_min": min(r), "ratio_max": max(r),
                     "seconds": times[b]} for b, r in ratios.items()}


def peak_rss(folder: Path, lines, n: int, beam: int, threads: int) -> dict:
    """Peak RSS (MiB) of `lskd translate` on n lines (the source repeated), as its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.txt"
        src.write_text("".join(line + "\n" for line in itertools.islice(itertools.cycle(lines), n)), encoding="utf-8")
        cmd = [str(Path(sys.executable).parent / "lskd"), "translate", "--model", str(folder), "--input", str(src),
               "--output", str(Path(tmp) / "out.txt"), "--beam", str(beam), "--threads", str(threads), "--cpu"]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        err = proc.stderr.read().decode()
        if status != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{err[-2000:]}")
    return {"lines": n, "peak_rss_mib": usage.ru_maxrss / 1024, "seconds": seconds}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, type=Path, help="an lskd export folder")
    p.add_argument("--source", required=True, type=Path, help="raw source text (a whole test set)")
    p.add_argument("--out", type=Path, help="the results as JSON")
    p.add_argument("--beams", nargs="+", type=int, default=[1, 5])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--small", type=int, default=1000)
    p.add_argument("--large", type=int, default=20000)
    p.add_argument("--rss-beam", type=int, default=1, help="beam of the memory runs (default 1: greedy)")
    a = p.parse_args()
    from lskd.machine import cpu_model, load_at_start

    lines = a.source.read_text(encoding="utf-8").rstrip("\n").split("\n")
    load = load_at_start()
    result = {"command": " ".join(sys.argv), "cpu": cpu_model(), "load_at_start": load, "threads": a.threads,
              "source_lines": len(lines), "rounds": a.rounds,
              "overhead": overhead(a.model, lines, a.beams, a.rounds, a.threads, a.batch_size)}
    small, large = (peak_rss(a.model, lines, n, a.rss_beam, a.threads) for n in (a.small, a.large))
    result["memory"] = {"beam": a.rss_beam, "small": small, "large": large,
                        "ratio": large["peak_rss_mib"] / small["peak_rss_mib"]}
    for beam, o in result["overhead"].items():
        print(f"overhead, beam {beam}: lskd translate / translate_batch = {o['ratio_median']:.3f} "
              f"({o['ratio_min']:.3f}-{o['ratio_max']:.3f}) over {a.rounds} rounds (target <= 1.10)")
    print(f"peak RSS: {small['peak_rss_mib']:.0f} MiB on {a.small} lines, {large['peak_rss_mib']:.0f} MiB on "
          f"{a.large} lines: ratio {result['memory']['ratio']:.3f} (target <= 1.10)")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
