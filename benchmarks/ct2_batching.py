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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128, help="fairseq-generate's --batch-size (the groups)")
    p.add_argument("--variants", nargs="+", default=["desc128", "asc128", "desc64", "desc32"])
    a = p.parse_args()
    from fairseq import utils

    utils.import_user_module(argparse.Namespace(user_dir=str(REPO / "fairseq_plugins")))
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
        search = SearchSettings(beam=a.beam, max_len_a=1.2, max_len_b=10, max_len_cap=model.max_decoder_positions(),
                                batch_size=a.batch_size)
        decoder = Decoder(ct2_model.load(model_dir, "cpu", "float32", threads), task.source_dictionary,
                          task.target_dictionary, search)
        batches = dataset.batch_by_size(dataset.ordered_indices(), max_sentences=a.batch_size,
                                        required_batch_size_multiple=1)
        words = [decoder._source_words(dataset.src[int(i)]) for b in batches for i in b]
        limits = [search.limit(int(dataset.src.sizes[b].max())) for b in batches for _ in b]
        print(f"CPU: {cpu_model()}; load average at start {load:.2f}; {len(words)} sentences of {a.split}, beam "
              f"{a.beam}, {len(set(limits))} limit groups\n\n| variant | seconds | CPU / wall |\n|---|---|---|")
        for v in a.variants:
            order, size = ("desc", v[4:]) if v.startswith("desc") else ("asc", v[3:])
            if order == "asc" and not v.startswith("asc") or not size.isdigit():
                p.error(f"--variants {v}: expected desc<N> or asc<N>")
            groups = {lim: [i for i, x in enumerate(limits) if x == lim]
                      for lim in sorted(set(limits), reverse=order == "desc")}
            t0, c0 = time.perf_counter(), os.times()
            jobs = [decoder.translator.translate_batch([words[i] for i in idx], asynchronous=True,
                                                       max_batch_size=int(size), batch_type="examples",
                                                       **decoder._options(lim, 1.0)) for lim, idx in groups.items()]
            for job in jobs:
                for pending in job:
                    pending.result()
            wall, c1 = time.perf_counter() - t0, os.times()
            cpu = (c1.user - c0.user) + (c1.system - c0.system)
            print(f"| {v} | {wall:.1f} | {cpu / wall:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
