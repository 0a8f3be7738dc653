"""CTranslate2's own beam search on fairseq-generate's length-limit groups, by submission order and batch size.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ct2_batching.py --data DATA_BIN --path CKPT \\
        [--variants desc128 asc128 desc64 desc32]

The whole --split in fairseq-generate's batches of --batch-size sentences, each group with its own length limit
(as `lskd ct2-generate` decodes it), searched by CTranslate2's translate_batch alone (no first-step scoring, no
second searches): `desc` submits the longest limit first (the engine's order), `asc` the shortest; the number is
CTranslate2's max_batch_size. Prints each variant's wall seconds and the process's CPU time over wall time (2.0:
both workers busy throughout on 2 cores). Variants run in the order given: repeat one to see the noise. Time it
on a quiet machine (lskd/machine.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    from ct2_groups import add_group_arguments, ct2_search_only, generate_groups

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_group_arguments(p)
    p.add_argument("--variants", nargs="+", default=["desc128", "asc128", "desc64", "desc32"])
    a = p.parse_args()
    from lskd.machine import cpu_model, load_at_start

    load = load_at_start()
    with generate_groups(a.data, a.path, a.split, a.beam, a.batch_size, 1.2, 10) as (decoder, sources, limits):
        words = [decoder._source_words(s) for s in sources]
        print(f"CPU: {cpu_model()}; load average at start {load:.2f}; {len(words)} sentences of {a.split}, beam "
              f"{a.beam}, {len(set(limits))} limit groups\n\n| variant | seconds | CPU / wall |\n|---|---|---|")
        for v in a.variants:
            order, size = ("desc", v[4:]) if v.startswith("desc") else ("asc", v[3:])
            if order == "asc" and not v.startswith("asc") or not size.isdigit():
                p.error(f"--variants {v}: expected desc<N> or asc<N>")
            t0, c0 = time.perf_counter(), os.times()
            ct2_search_only(decoder, words, limits, dict(max_batch_size=int(size), batch_type="examples"),
                            longest_first=order == "desc")
            wall, c1 = time.perf_counter() - t0, os.times()
            cpu = (c1.user - c0.user) + (c1.system - c0.system)
            print(f"| {v} | {wall:.1f} | {cpu / wall:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
