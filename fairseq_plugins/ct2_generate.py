"""`lskd ct2-generate`: fairseq-generate's output (S-/T-/H-/D- lines, scores in base 2) decoded by CTranslate2.

    lskd ct2-generate DATA_BIN --path ckpt.pt [--gen-subset test] [--beam 5] [--post-process sentencepiece] ...

For `lskd score` and the recipes' evaluate step (DECODE_ENGINE=ctranslate2). With the default
--length-limit per-batch the limit a * src_len + b takes the longest source of fairseq-generate's own batch
(same options), so the outputs are fairseq-generate's (float32, up to score ties: fairseq_plugins/ct2_search.py).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List

import numpy as np

from lskd.errors import LskdError
from lskd.fileio import read_json

from . import ct2_model
from .ct2_search import Decoder, SearchSettings


def generate_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lskd ct2-generate",
        description="fairseq-generate's output (S-/T-/H-/D- lines, scores in base 2) decoded by CTranslate2, for "
                    "`lskd score` and the recipes' evaluate step (DECODE_ENGINE=ctranslate2). Takes the "
                    "fairseq-generate options listed here.")
    p.add_argument("data", help="fairseq binarised data dir")
    p.add_argument("--path", required=True, help="model checkpoint (one; an ensemble is refused)")
    p.add_argument("--gen-subset", default="test", help="split to translate (default test)")
    p.add_argument("--user-dir", default=None, help="accepted for fairseq-generate compatibility (lskd's plugins are used)")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--nbest", type=int, default=1)
    p.add_argument("--lenpen", type=float, default=1.0)
    p.add_argument("--max-len-a", type=float, default=0.0)
    p.add_argument("--max-len-b", type=int, default=200)
    p.add_argument("--max-tokens", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--required-batch-size-multiple", type=int, default=1, help="accepted; every sentence is decoded")
    p.add_argument("--post-process", "--remove-bpe", default=None,
                   help="sentencepiece, subword_nmt, ... (as fairseq); auto: what the data_prep manifest above DATA "
                        "says its text needs")
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--compute-type", default="auto", choices=ct2_model.COMPUTE_TYPES,
                   help="CTranslate2 compute type (auto: float32 on CPU, float16 on GPU)")
    p.add_argument("--quiet", action="store_true", help="only the summary line (as fairseq-generate --quiet)")
    p.add_argument("--length-limit", choices=["per-batch", "per-sentence"], default="per-batch",
                   help="a * src_len + b with src_len the longest source of fairseq-generate's batch (per-batch, "
                        "default: the same outputs as fairseq-generate) or each sentence's own (per-sentence)")
    return p


def write_generate_output(out, task, dataset, order, hypos, args) -> int:
    """S-/T-/H-/D- lines as fairseq-generate writes them (nothing with --quiet); returns the hypotheses' tokens."""
    src_dict, tgt_dict = task.source_dictionary, task.target_dictionary
    n_tokens = 0
    for sid, hyps in zip(order, hypos):
        if not args.quiet:
            out.write(f"S-{sid}\t{src_dict.string(dataset.src[sid], args.post_process)}\n")
            if dataset.tgt is not None:
                out.write(f"T-{sid}\t{tgt_dict.string(dataset.tgt[sid], args.post_process, escape_unk=True)}\n")
        for tokens, score in hyps:
            n_tokens += len(tokens)
            if args.quiet:
                continue
            text = tgt_dict.string(tokens, args.post_process, extra_symbols_to_ignore={tgt_dict.eos()})
            out.write(f"H-{sid}\t{score / np.log(2):.6f}\t{text}\n")
            out.write(f"D-{sid}\t{score / np.log(2):.6f}\t{text}\n")
    return n_tokens


def data_post_process(data: str) -> str:
    """The post-processing the data_prep manifest above a data dir names (data prepared before it named one:
    sentencepiece, data_prep's own subwords)."""
    manifest = Path(data).resolve().parent / "manifest.json"
    if not manifest.is_file():
        raise LskdError(f"--post-process auto: no data_prep manifest above {data} ({manifest}); name the post-processing")
    return read_json(manifest, "a data_prep manifest").get("post_process", "sentencepiece")


def main(argv: List[str]) -> int:
    args, unknown = generate_parser().parse_known_args(argv)
    if unknown:
        raise LskdError(f"{' '.join(unknown)}: not supported by the CTranslate2 engine (decode with fairseq-generate)")
    if args.beam < 1 or not 1 <= args.nbest <= args.beam or args.lenpen <= 0:
        raise LskdError(f"--beam {args.beam} --nbest {args.nbest} --lenpen {args.lenpen}: expected beam >= nbest >= 1 "
                        "and lenpen > 0")
    if ":" in args.path:
        raise LskdError(f"--path {args.path}: an ensemble cannot run on CTranslate2 (decode with fairseq-generate)")
    if args.post_process == "auto":
        args.post_process = data_post_process(args.data)
    with ct2_model.torch_threads_restored():
        return _generate(args, ct2_model.take_threads_from_torch())  # torch only loads the model for the checks


def _generate(args: argparse.Namespace, threads: int) -> int:
    from .teacher import TeacherSession

    session = TeacherSession.for_data(args.data, args.path, [args.gen_subset], option="--path")  # checks the dictionaries
    task, model = session.task, session.models[0]
    src, tgt = task.cfg.source_lang, task.cfg.target_lang
    try:
        model_dir = ct2_model.convert(args.path, args.data, src, tgt)
    except ct2_model.Unconvertible as e:
        raise LskdError(f"--path {args.path}: CTranslate2 cannot convert this model ({e}); decode with fairseq-generate")
    device = ct2_model.device_of(args.cpu)
    compute_type = ct2_model.resolve_compute_type(args.compute_type, device)
    max_positions = session.max_positions()
    dataset = task.dataset(args.gen_subset)
    search = SearchSettings(beam=args.beam, nbest=args.nbest, lenpen=args.lenpen, max_len_a=args.max_len_a,
                            max_len_b=args.max_len_b, max_len_cap=model.max_decoder_positions(),
                            max_tokens=args.max_tokens, batch_size=args.batch_size)
    decoder = Decoder(ct2_model.load(model_dir, device, compute_type, threads), task.source_dictionary,
                      task.target_dictionary, search)
    indices = dataset.ordered_indices()
    indices, ignored = dataset.filter_indices_by_size(indices, max_positions)
    if len(ignored):
        raise LskdError(f"{len(ignored)} sentences of {args.gen_subset} are longer than the model's max positions "
                        f"(first id {ignored[0]}); fairseq-generate would refuse them too")
    order = [int(i) for i in indices]
    limits = None
    if args.length_limit == "per-batch":  # fairseq-generate's batches (same options), each with one limit
        sizes = dataset.src.sizes
        batches = dataset.batch_by_size(indices, max_tokens=args.max_tokens, max_sentences=args.batch_size,
                                        required_batch_size_multiple=args.required_batch_size_multiple)
        order = [int(i) for b in batches for i in b]
        limits = [search.limit(int(sizes[b].max())) for b in batches for _ in b]
    t0 = time.perf_counter()
    hypos = decoder.decode([dataset.src[i] for i in order], limits)
    elapsed = time.perf_counter() - t0
    n_tokens = write_generate_output(sys.stdout, task, dataset, order, hypos, args)
    print(f"Translated {len(order):,} sentences ({n_tokens:,} tokens) in {elapsed:.1f}s "
          f"({len(order) / max(elapsed, 1e-9):.2f} sentences/s, {n_tokens / max(elapsed, 1e-9):.2f} tokens/s) "
          f"with CTranslate2 {ct2_model.version()} {compute_type} on {device}", file=sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
