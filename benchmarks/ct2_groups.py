"""What ct2_time_split.py and ct2_batching.py both measure on: a converted model decoding --split in fairseq-generate's
batches, each batch one length-limit group (as `lskd ct2-generate` decodes it), and CTranslate2's own search on them."""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Tuple

REPO = Path(__file__).resolve().parents[1]


def add_group_arguments(p: argparse.ArgumentParser) -> None:
    """The options both benchmarks take: the model, the data and fairseq-generate's grouping."""
    p.add_argument("--data", required=True)
    p.add_argument("--path", required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128, help="fairseq-generate's --batch-size (the groups)")


@contextmanager
def generate_groups(data: str, path: str, split: str, beam: int, batch_size: int, max_len_a: float,
                    max_len_b: int) -> Iterator[Tuple[object, list, List[int]]]:
    """(Decoder on CTranslate2 float32, sources in fairseq-generate's batch order, each source's batch limit),
    with torch kept off CTranslate2's threads while the caller decodes."""
    from fairseq import utils

    utils.import_user_module(argparse.Namespace(user_dir=str(REPO / "fairseq_plugins")))
    from fairseq_plugins import ct2_model
    from fairseq_plugins.ct2_search import Decoder, SearchSettings
    from fairseq_plugins.teacher import TeacherSession

    with ct2_model.torch_threads_restored():
        threads = ct2_model.take_threads_from_torch()
        session = TeacherSession.for_data(data, path, [split], option="--path")
        task, model = session.task, session.models[0]
        model_dir = ct2_model.convert(path, data, task.cfg.source_lang, task.cfg.target_lang)
        dataset = task.dataset(split)
        search = SearchSettings(beam=beam, max_len_a=max_len_a, max_len_b=max_len_b,
                                max_len_cap=model.max_decoder_positions(), batch_size=batch_size)
        decoder = Decoder(ct2_model.load(model_dir, "cpu", "float32", threads), task.source_dictionary,
                          task.target_dictionary, search)
        batches = dataset.batch_by_size(dataset.ordered_indices(), max_sentences=batch_size,
                                        required_batch_size_multiple=1)
        sources = [dataset.src[int(i)] for b in batches for i in b]
        limits = [search.limit(int(dataset.src.sizes[b].max())) for b in batches for _ in b]
        yield decoder, sources, limits


def ct2_search_only(decoder, words: List[List[str]], limits: List[int], batching: dict, longest_first: bool) -> None:
    """CTranslate2's translate_batch alone on each limit group (no first-step scoring, no rescoring, no second
    searches), all submitted at once, longest or shortest limit first; returns when every sentence is done."""
    groups = {lim: [i for i, x in enumerate(limits) if x == lim] for lim in sorted(set(limits), reverse=longest_first)}
    jobs = [decoder.translator.translate_batch([words[i] for i in idx], asynchronous=True, **batching,
                                               **decoder._options(lim, 1.0)) for lim, idx in groups.items()]
    for job in jobs:
        for pending in job:
            pending.result()
