"""Where `lskd ct2-generate`'s time goes: the exact engine against CTranslate2's own beam search, same sentences.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/ct2_time_split.py --data DATA_BIN --path CKPT [--beam 5] [--rounds 2]

On the whole --split (fairseq-generate's batches and per-batch length limits, as ct2-generate), interleaved
--rounds times: (full) the engine as ct2-generate runs it; (no-second) the same without the second searches of
sentences whose n-best may hold what the first search left out (outputs may then differ); (ct2-only)
CTranslate2's translate_batch alone on the same groups, limits and order (longest limit first), no first-step
scoring, no rescoring of hypotheses cut at the limit. Prints seconds per variant (median, min, max), how many
sentences were searched again and how many returned hypotheses were cut at the limit. Time it on a quiet machine (lskd/machine.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    from ct2_groups import add_group_arguments, ct2_search_only, generate_groups

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_group_arguments(p)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--max-len-a", type=float, default=1.2)
    p.add_argument("--max-len-b", type=int, default=10)
    a = p.parse_args()
    from lskd.machine import cpu_model, load_at_start

    load = load_at_start()
    with generate_groups(a.data, a.path, a.split, a.beam, a.batch_size, a.max_len_a, a.max_len_b) as (
            decoder, sources, limits):
        counts = {"searched again": 0, "hypotheses cut at the limit": 0}
        unseen, collect = decoder._unseen, decoder._collect

        def counting_unseen(*args):
            r = unseen(*args)
            counts["searched again"] += int(r[0])
            return r

        def counting_collect(job, sentence_limits, *args, **kw):
            out = collect(job, sentence_limits, *args, **kw)
            counts["hypotheses cut at the limit"] += sum(1 for limit, hyps in zip(sentence_limits, out[0])
                                                         for ids, _ in hyps if len(ids) == limit + 1)
            return out

        def ct2_only():
            words = [decoder._source_words(s) for s in sources]
            ct2_search_only(decoder, words, limits, decoder._batching(words), longest_first=True)

        def full():
            decoder._unseen, decoder._collect = counting_unseen, counting_collect
            decoder.decode(sources, limits)

        def no_second():
            decoder._unseen, decoder._collect = (lambda *args: (False, False)), collect
            decoder.decode(sources, limits)

        variants = {"full": full, "no-second": no_second, "ct2-only": ct2_only}
        seconds = {name: [] for name in variants}
        for r in range(a.rounds):
            for name, fn in variants.items():
                counts.update({k: 0 for k in counts})
                t0 = time.perf_counter()
                fn()
                seconds[name].append(time.perf_counter() - t0)
                if name == "full":
                    seen = dict(counts)
                print(f"round {r + 1}: {name} {seconds[name][-1]:.1f} s", file=sys.stderr, flush=True)
    print(f"CPU: {cpu_model()}; load average at start {load:.2f}; {len(sources)} sentences of {a.split}, beam {a.beam}, "
          f"{a.rounds} interleaved rounds; full: {seen['searched again']} sentences searched again, "
          f"{seen['hypotheses cut at the limit']} hypotheses returned cut at the limit (given </s>; rescored unless known)")
    print("\n| variant | seconds (median [min, max]) | / ct2-only |\n|---|---|---|")
    base = statistics.median(seconds["ct2-only"])
    for name, v in seconds.items():
        print(f"| {name} | {statistics.median(v):.1f} [{min(v):.1f}, {max(v):.1f}] | {statistics.median(v) / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
