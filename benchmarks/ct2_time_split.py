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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--max-len-a", type=float, default=1.2)
    p.add_argument("--max-len-b", type=int, default=10)
    a = p.parse_args()
    import argparse as ap

    from fairseq import utils

    utils.import_user_module(ap.Namespace(user_dir=str(REPO / "fairseq_plugins")))
    from fairseq_plugins import ct2_model
    from fairseq_plugins.ct2_search import Decoder, SearchSettings
    from fairseq_plugins.teacher import TeacherSession
    from lskd.machine import cpu_model, load_at_start

    load = load_at_start()
    with ct2_model.torch_threads_restored():
        threads = ct2_model.take_threads_from_torch()
        session = TeacherSession.for_data(a.data, a.path, [a.split], option="--path")
        task, model = session.task, session.models[0]
        model_dir = ct2_model.convert(a.path, a.data, task.cfg.source_lang, task.cfg.target_lang)
        dataset = task.dataset(a.split)
        cap = model.max_decoder_positions()
        search = SearchSettings(beam=a.beam, max_len_a=a.max_len_a, max_len_b=a.max_len_b, max_len_cap=cap,
                                batch_size=a.batch_size)
        decoder = Decoder(ct2_model.load(model_dir, "cpu", "float32", threads), task.source_dictionary,
                          task.target_dictionary, search)
        indices = dataset.ordered_indices()
        batches = dataset.batch_by_size(indices, max_sentences=a.batch_size, required_batch_size_multiple=1)
        sources = [dataset.src[int(i)] for b in batches for i in b]
        limits = [search.limit(int(dataset.src.sizes[b].max())) for b in batches for _ in b]
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
            groups = {lim: [i for i, x in enumerate(limits) if x == lim] for lim in sorted(set(limits), reverse=True)}
            batching = decoder._batching(words)
            jobs = [decoder.translator.translate_batch([words[i] for i in idx], asynchronous=True, **batching,
                                                       **decoder._options(lim, 1.0)) for lim, idx in groups.items()]
            for job in jobs:
                for pending in job:
                    pending.result()

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
