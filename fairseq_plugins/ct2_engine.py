"""CTranslate2 as a decoding engine for lskd: the same beam search and sampling as fairseq's SequenceGenerator,
at an inference engine's speed.

Used by `lskd distill-data --engine ctranslate2` and `lskd ct2-generate` (fairseq-generate's output format, for
the recipes' evaluation). What makes the outputs equal to fairseq's (float32):
  - the model is converted by CTranslate2's own FairseqConverter (decoding starts from </s>, as fairseq's
    decoders do; </s> is appended to the source), once per checkpoint, into a cache keyed by the checkpoint's
    sha256 (`$LSKD_CACHE/ct2`, default ~/.cache/lskd/ct2), written in a temporary directory and renamed;
  - the length limit is fairseq's min(a * src_len + b, max positions - 1) with src_len counting </s>, applied
    per sentence: sentences are decoded in groups that share one limit;
  - scores are normalised by length ** lenpen with </s> counted (return_end_token), the minimum length is 1
    (its renormalisation of the first step taken out), and a hypothesis cut by the limit ends like fairseq's:
    CTranslate2 searches up to the limit, its last step's candidates without </s> are fairseq's live beams,
    which get </s> and are rescored with CTranslate2's scorer; a sentence whose n-best may hold something that
    search did not return (Decoder._unseen: early finishers pushed out of the `beam` returned, live beams
    displaced by </s> candidates) is searched again, and the n-best list is re-ranked over all of it.
What can still differ: the n-best list below the first (fairseq keeps the first `beam` finished hypotheses,
finalised step by step; CTranslate2 ranks all it finished: the best is the same, those after it may not be),
score ties and float rounding (another GEMM library, approximate exp/log; the search path also depends slightly
on how CTranslate2's batches are made up), and at the length limit whatever the second searches still miss.
Sampled scores are CTranslate2's (log-probabilities at T; a sample cut by the limit keeps its last sampled
word's term instead of </s>'s).
On CPU, beam search runs one single-threaded CTranslate2 worker per thread (`load`), and loading a model sets
glibc's malloc to keep freed memory for reuse (`keep_freed_memory`: 3x faster beam search on a 6+6/512 model
whose hypotheses run to the length limit, little gain on short outputs, docs/SEQ_KD.md); LSKD_CT2_MALLOC=0
leaves the allocator as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch

from lskd.errors import LskdError
from lskd.fileio import sha256_file

ENGINES = ("fairseq", "ctranslate2")
COMPUTE_TYPES = ("auto", "float32", "int8", "int8_float32", "float16", "int8_float16", "bfloat16", "int8_bfloat16")
CONVERSION_FORMAT = "fairseq-converter/1"  # bump when the conversion recipe here changes


class Unconvertible(Exception):
    """The checkpoint cannot run on CTranslate2 (ensemble, architecture or option the converter refuses)."""


def version() -> str:
    import ctranslate2

    return ctranslate2.__version__


def cache_root() -> Path:
    return Path(os.environ.get("LSKD_CACHE") or Path.home() / ".cache" / "lskd") / "ct2"


def device_of(cpu: bool) -> str:
    import ctranslate2

    return "cuda" if not cpu and ctranslate2.get_cuda_device_count() > 0 else "cpu"


def resolve_compute_type(requested: str, device: str) -> str:
    """'auto' -> the fastest exact type (float32 on CPU, float16 on GPU); refuse one the device lacks."""
    import ctranslate2

    if requested not in COMPUTE_TYPES:
        raise LskdError(f"--compute-type {requested}: expected one of {', '.join(COMPUTE_TYPES)}")
    chosen = ("float16" if device == "cuda" else "float32") if requested == "auto" else requested
    supported = sorted(ctranslate2.get_supported_compute_types(device))
    if chosen not in supported:
        raise LskdError(f"--compute-type {chosen}: not supported by CTranslate2 on this {device} "
                        f"(supported: {', '.join(supported)})")
    return chosen


def length_limit(src_len: int, max_len_a: float, max_len_b: int, max_len_cap: int) -> int:
    """fairseq's SequenceGenerator limit on the words before </s>: min(a * src_len + b, cap - 1), src_len with </s>."""
    return min(int(max_len_a * src_len + max_len_b), max_len_cap - 1)


# ------------------------------------------------------------------------------------------ conversion
def _cache_key(checkpoint: str, data_dir: str, src: str, tgt: str) -> str:
    h = hashlib.sha256()
    h.update(sha256_file(Path(checkpoint)).encode())
    for lang in (src, tgt):  # the converter takes the vocabularies from the data dir's dictionaries
        h.update(f"{lang}:".encode() + sha256_file(Path(data_dir) / f"dict.{lang}.txt").encode())
    h.update(f"{CONVERSION_FORMAT} ctranslate2 {version()}".encode())
    return h.hexdigest()[:32]


def convert(checkpoint: str, data_dir: str, src: str, tgt: str, quiet: bool = False) -> Path:
    """The checkpoint converted to a CTranslate2 model directory (cached; built atomically on first use)."""
    from ctranslate2.converters import FairseqConverter

    root = cache_root()
    final = root / _cache_key(checkpoint, data_dir, src, tgt)
    if (final / "model.bin").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=root))
    try:
        plugins = str(Path(__file__).resolve().parent)
        # torch.load(weights_only=True) inside the converter: importing the user dir allow-lists argparse.Namespace
        converter = FairseqConverter(checkpoint, data_dir, source_lang=src, target_lang=tgt, user_dir=plugins)
        t0 = time.perf_counter()
        try:
            converter.convert(str(tmp / "model"), force=True)
        except (ValueError, NotImplementedError, KeyError, AttributeError, TypeError) as e:
            text = " ".join(line.strip(" -") for line in str(e).strip().splitlines() if line.strip())
            raise Unconvertible(f"{type(e).__name__}: {text[:300]}") from None
        (tmp / "model" / "lskd-source.txt").write_text(
            f"{os.path.abspath(checkpoint)}\n{data_dir}\n{src}-{tgt}\nctranslate2 {version()}\n")
        try:
            os.rename(tmp / "model", final)
        except OSError:  # another process finished the same conversion first
            if not (final / "model.bin").is_file():
                raise
        if not quiet:
            print(f"converted {checkpoint} for CTranslate2 in {time.perf_counter() - t0:.1f} s: {final}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def keep_freed_memory() -> bool:
    """Make glibc's malloc reuse freed memory (one arena, no mmap, no trimming); False where libc has no mallopt.

    CTranslate2 reallocates its beams' attention caches at every step. Under glibc's defaults the big ones are
    mmap'ed and unmapped, and the decoding thread gets an arena of its own whose heaps are handed back, so every
    step page-faults them in again: at beam 5 on a 6+6/512 model whose hypotheses ran to the length limit over
    half the time went to the kernel, and these settings made beam search 3x faster (little on short outputs,
    whose caches stay small; docs/SEQ_KD.md). Process-wide; the memory kept is at most the peak the process had
    anyway.
    """
    import ctypes
    import ctypes.util

    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl): their allocators are left alone
        return False
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # glibc's <malloc.h>
    return all(mallopt(option, value) == 1 for option, value in
               ((m_arena_max, 1), (m_mmap_max, 0), (m_trim_threshold, 2 ** 31 - 1)))


def take_threads_from_torch() -> int:
    """Set torch to one thread and return the count it had (OMP_NUM_THREADS, as fairseq uses): CTranslate2's.

    Once torch has run a CPU op on two or more OpenMP threads (building the fairseq model that the callers load
    for their checks does), CTranslate2 decodes about 15% slower in the same process (docs/SEQ_KD.md); with
    torch on one thread its OpenMP pool never starts. Callers that decode with torch after all restore it;
    torch_threads_restored gives them back at the end.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    return threads


@contextlib.contextmanager
def torch_threads_restored():
    """torch's thread count after the block as it was before, whatever take_threads_from_torch did inside."""
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load(model_dir: Path, device: str, compute_type: str, threads: Optional[int] = None, parallel: bool = True,
         seed: Optional[int] = None):
    """A Translator on `threads` CPU threads (default torch's count, i.e. OMP_NUM_THREADS, as fairseq).

    `parallel` (CPU): one single-threaded worker per thread, each decoding its own batches (Decoder._batching);
    on 2 cores 1.4x the beam-search speed of one worker on 2 threads (docs/SEQ_KD.md); the workers share the
    weights. Sampling keeps one worker: which worker draws which batch would otherwise vary from run to run.
    `seed`: CTranslate2's sampling seed. Its workers seed their generator once, when they first sample, so a
    new seed needs a new Translator.
    """
    import ctranslate2

    if seed is not None:
        ctranslate2.set_random_seed(seed)

    if device == "cpu" and os.environ.get("LSKD_CT2_MALLOC", "1") != "0":
        keep_freed_memory()
    if device != "cpu":
        return ctranslate2.Translator(str(model_dir), device=device, compute_type=compute_type)
    threads = threads or torch.get_num_threads()
    workers = threads if parallel else 1
    return ctranslate2.Translator(str(model_dir), device=device, compute_type=compute_type,
                                  inter_threads=workers, intra_threads=threads // workers)


# ------------------------------------------------------------------------------------------ decoding
UNNORMALISED = 1e-6  # a CTranslate2 length penalty that ranks by the raw score (0 would change its stopping rule)

class Decoder:
    """Beam search or sampling with fairseq's semantics on a CTranslate2 Translator, in fairseq token ids."""

    def __init__(self, translator, src_dict, tgt_dict, *, beam: int, nbest: int, lenpen: float, sampling: bool,
                 temperature: float, sampling_topk: int, max_len_a: float, max_len_b: int, max_len_cap: int,
                 max_tokens: Optional[int], batch_size: Optional[int]):
        self.translator, self.src_dict, self.tgt_dict = translator, src_dict, tgt_dict
        self.beam, self.nbest, self.lenpen, self.sampling = beam, nbest, lenpen, sampling
        self.temperature, self.sampling_topk = temperature, sampling_topk
        self.max_len_a, self.max_len_b, self.max_len_cap = max_len_a, max_len_b, max_len_cap
        self.max_tokens, self.batch_size = max_tokens, batch_size
        self.eos = tgt_dict.eos()
        self._tgt_index = {s: i for i, s in enumerate(tgt_dict.symbols)}
        self._tgt_index["<blank>"] = tgt_dict.pad()  # the converter renames <pad>

    def _source_words(self, tokens: torch.Tensor) -> List[str]:
        ids = tokens.tolist()
        if ids and ids[-1] == self.src_dict.eos():
            ids = ids[:-1]  # CTranslate2 appends </s> itself (add_source_eos)
        return [self.src_dict[i] for i in ids]

    def _ids(self, words: Sequence[str]) -> List[int]:
        unk = self.tgt_dict.unk()
        return [self._tgt_index.get(w, unk) for w in words]

    def _batching(self, words: List[List[str]]) -> dict:
        """CTranslate2's batches for `words`, all submitted at once: at most --max-tokens / --batch-size each, and,
        with several workers (CPU), small enough that every worker gets about two, so that none idles while a
        long one runs."""
        workers = self.translator.num_translators
        if self.max_tokens:
            total = sum(len(w) + 1 for w in words)
            share = -(-total // (2 * workers)) if workers > 1 else self.max_tokens
            return dict(max_batch_size=max(1, min(self.max_tokens, share)), batch_type="tokens")
        share = -(-len(words) // (2 * workers)) if workers > 1 else len(words)
        return dict(max_batch_size=max(1, min(self.batch_size or share, share)), batch_type="examples")

    def _options(self, limit: int, lenpen: float) -> dict:
        opts = dict(max_decoding_length=limit, min_decoding_length=1, return_end_token=True, return_scores=True,
                    max_input_length=0, length_penalty=lenpen)
        if self.sampling:
            # fairseq's -1 (the whole distribution) is CTranslate2's 0; fairseq samples with <pad> (the converter's
            # <blank>) at probability 0, i.e. from the others renormalised, which suppressing it does. (Beam search
            # keeps it: suppressing renormalises the log-probabilities, fairseq's scores are not renormalised.)
            opts.update(suppress_sequences=[["<blank>"]])
            opts.update(beam_size=1, num_hypotheses=self.nbest, sampling_temperature=self.temperature,
                        sampling_topk=0 if self.sampling_topk < 0 else self.sampling_topk)
        else:  # every finished hypothesis back, so that the ones cut by the limit can be rescored and re-ranked
            opts.update(beam_size=self.beam, num_hypotheses=self.beam)
        return opts

    def _submit(self, words: List[List[str]], steps: int, batching: dict, rank_lenpen: Optional[float] = None):
        """Start CTranslate2's search of `words` with at most `steps` tokens (</s> included), and the first-step
        scoring that beam search needs, without waiting: what is submitted runs on all workers at once.
        `rank_lenpen` (default --lenpen) chooses which `beam` hypotheses come back: CTranslate2's length penalty
        only ranks the finished ones (the search is the same for any penalty > 0); scores stay --lenpen's."""
        rank_lenpen = self.lenpen if rank_lenpen is None else rank_lenpen
        first = None
        if not self.sampling and self.beam > 1:  # first: short, it fills no tail
            first = self.translator.score_batch(words, [[] for _ in words], max_input_length=0, asynchronous=True,
                                                **batching)
        search = self.translator.translate_batch(words, asynchronous=True, **batching,
                                                 **self._options(steps, rank_lenpen))
        return words, steps, rank_lenpen, search, first

    def _collect(self, job, limit: int, batching: dict,
                 known: Optional[List[dict]] = None) -> Tuple[List[List[list]], List[List[float]]]:
        """A submitted search's hypotheses [ids ending in </s>, score]; each one without </s> is cut to `limit`
        words and given </s>, as fairseq forces it, and (beam search) rescored so that its score has fairseq's
        </s> term, unless `known` (per sentence, {ids: score}) has it already. Also, per sentence, CTranslate2's
        own scores of the returned hypotheses it registered at its last step (`steps` tokens; none if the
        sentence finished before)."""
        words, steps, rank_lenpen, search, first = job
        out: List[List[list]] = []
        last: List[List[float]] = []
        cut: List[Tuple[int, int]] = []
        reused: List[Tuple[int, int, float]] = []
        for i, pending in enumerate(search):
            r = pending.result()
            hyps, at_last = [], []
            for h, score in zip(r.hypotheses, r.scores):
                ids = self._ids(h)
                score = score * len(h) ** (rank_lenpen - self.lenpen)
                if len(h) == steps:
                    at_last.append(float(score))
                if not ids or ids[-1] != self.eos:
                    ids = ids[:limit] + [self.eos]
                    if known and tuple(ids) in known[i]:  # rescored before: same hypothesis, same score
                        reused.append((i, len(hyps), known[i][tuple(ids)]))
                    else:
                        cut.append((i, len(hyps)))
                hyps.append([ids, float(score)])
            out.append(hyps)
            last.append(at_last)
        if first is not None:
            # CTranslate2's minimum length 1 disables </s> before its log-softmax at the first step, fairseq sets it
            # to -inf after: every CTranslate2 score has +log(1 / (1 - p(</s> first))), whose share of the
            # length-normalised score favours short hypotheses. Taken out (one scoring step per sentence).
            for i, pending in enumerate(first):
                shift = -np.log1p(-min(np.exp(pending.result().log_probs[0]), 1 - 1e-7))
                for h in out[i]:
                    h[1] -= shift / len(h[0]) ** self.lenpen
        if cut and not self.sampling:
            sources = [words[i] for i, _ in cut]
            rescored = self.translator.score_batch(sources,
                                                   [[self.tgt_dict[t] for t in out[i][j][0][:-1]] for i, j in cut],
                                                   max_input_length=0, **self._batching(sources))
            for (i, j), s in zip(cut, rescored):
                out[i][j][1] = float(sum(s.log_probs)) / (len(out[i][j][0]) ** self.lenpen)
        for i, j, score in reused:
            out[i][j][1] = score
        return out, last

    def _unseen(self, hyps: List[list], at_last: List[float], limit: int) -> Tuple[bool, bool]:
        """For a sentence searched to the limit: whether fairseq's n-best may hold (a hypothesis that finished
        earlier, a live beam) that the search did not return. CTranslate2 registers at its last step (`limit`
        tokens) its `beam` best candidates: fairseq's live beams, which fairseq gives </s> next, unless </s>
        candidates took some of those places; and it returns only the `beam` best of all it registered, so the
        long ones can push out some that finished earlier. If all `beam` of the last step came back without </s>,
        every live beam was seen. Anything unseen has a CTranslate2 score at most the lowest returned from the
        last step, so (scores <= 0, one more token for </s>, the first-step correction only lowers it) a final
        score at most that times (limit / (limit + 1)) ** lenpen: if the n-best are above that, nothing unseen
        can enter them."""
        if not at_last:
            return False, False  # finished before the limit: nothing registered at the limit, nothing left out
        bound = min(at_last) * (limit / (limit + 1)) ** self.lenpen
        scores = sorted((score for _, score in hyps), reverse=True)
        if len(scores) >= self.nbest and scores[self.nbest - 1] > bound:
            return False, False
        live_seen = len(at_last) == self.beam and sum(len(ids) == limit + 1 for ids, _ in hyps) == self.beam
        return True, not live_seen

    @staticmethod
    def _ranked(hyps: List[list]) -> List[list]:
        """Best score first (stable: CTranslate2's order on ties), each token sequence once."""
        seen, unique = set(), []
        for ids, score in sorted(hyps, key=lambda h: -h[1]):
            if tuple(ids) not in seen:
                seen.add(tuple(ids))
                unique.append([ids, score])
        return unique

    def decode(self, sources: List[torch.Tensor], limits: Optional[List[int]] = None) -> List[List[Tuple[torch.Tensor, float]]]:
        """n-best (tokens ending in </s>, length-normalised natural-log score) per source, in order. Sources are
        grouped by their length limit (default: per sentence, as the rule says; `limits` gives others, e.g.
        fairseq-generate's per batch), every group submitted at once. Up to its limit CTranslate2 searches as
        fairseq does, and stops there: its last step's candidates without </s> are fairseq's live beams, which
        get </s> here (as fairseq forces it). Where that may miss part of fairseq's n-best (_unseen), the
        sentence is searched again: to the limit with a length penalty near 0, which returns the hypotheses with
        the best unnormalised scores, i.e. those that finished early; and, if live beams were not all seen, one
        step longer, where every live beam is extended and the `beam` best next words are registered (their
        prefixes get </s>)."""
        if limits is None:
            limits = [length_limit(len(s), self.max_len_a, self.max_len_b, self.max_len_cap) for s in sources]
        groups = {limit: [i for i, lim in enumerate(limits) if lim == limit] for limit in sorted(set(limits))}
        words = [self._source_words(s) for s in sources]
        batching = self._batching(words)
        jobs = {limit: self._submit([words[i] for i in idx], limit, batching) for limit, idx in groups.items()}
        out: List[list] = [None] * len(sources)
        at_last: List[list] = [None] * len(sources)
        for limit, idx in groups.items():
            for i, hyps, last in zip(idx, *self._collect(jobs[limit], limit, batching)):
                out[i], at_last[i] = hyps, last
        if not self.sampling:
            if self.beam > 1:  # with one beam the live beam is the one returned
                unseen = [self._unseen(out[i], at_last[i], limits[i]) for i in range(len(sources))]
                for position, (extra, lenpen) in enumerate([(0, UNNORMALISED), (1, None)]):
                    again = {limit: [i for i in idx if unseen[i][position]] for limit, idx in groups.items()}
                    again = {limit: idx for limit, idx in again.items() if idx}
                    batching = self._batching([words[i] for idx in again.values() for i in idx])
                    jobs = {limit: self._submit([words[i] for i in idx], limit + extra, batching, lenpen)
                            for limit, idx in again.items()}
                    for limit, idx in again.items():
                        known = [{tuple(ids): score for ids, score in out[i]} for i in idx]
                        for i, hyps in zip(idx, self._collect(jobs[limit], limit, batching, known)[0]):
                            out[i] = out[i] + hyps
            out = [self._ranked(hyps) for hyps in out]
        return [[(torch.tensor(ids, dtype=torch.int32), score) for ids, score in hyps[:self.nbest]] for hyps in out]


def decode_batches(decoder: Decoder, dataset, batches, bar) -> Iterable[Tuple[list, list, list, float]]:
    """distill-data's decoding loop on CTranslate2: yields (sample ids, hypotheses as fairseq's dicts, source
    lengths with </s>, seconds) per chunk of fairseq batches (CTranslate2 re-batches them itself)."""
    ids = [int(i) for batch in batches for i in batch]
    chunk = 4096  # sentences per call: large enough for CTranslate2's own batching, small enough for progress
    for lo in range(0, len(ids), chunk):
        part = ids[lo:lo + chunk]
        sources = [dataset.src[i] for i in part]
        t0 = time.perf_counter()
        hypos = decoder.decode(sources)
        dt = time.perf_counter() - t0
        yield part, [[{"tokens": t, "score": s} for t, s in h] for h in hypos], [len(s) for s in sources], dt
        bar.update(len(part))


# ------------------------------------------------------------------------------------------ ct2-generate
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
    p.add_argument("--post-process", "--remove-bpe", default=None, help="sentencepiece, subword_nmt, ... (as fairseq)")
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--compute-type", default="auto", choices=COMPUTE_TYPES,
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


def generate_main(argv: List[str]) -> int:
    args, unknown = generate_parser().parse_known_args(argv)
    if unknown:
        raise LskdError(f"{' '.join(unknown)}: not supported by the CTranslate2 engine (decode with fairseq-generate)")
    if args.beam < 1 or not 1 <= args.nbest <= args.beam or args.lenpen <= 0:
        raise LskdError(f"--beam {args.beam} --nbest {args.nbest} --lenpen {args.lenpen}: expected beam >= nbest >= 1 "
                        "and lenpen > 0")
    if ":" in args.path:
        raise LskdError(f"--path {args.path}: an ensemble cannot run on CTranslate2 (decode with fairseq-generate)")
    with torch_threads_restored():
        return _generate(args, take_threads_from_torch())  # torch only loads the model for the checks


def _generate(args: argparse.Namespace, threads: int) -> int:
    from .teacher import TeacherSession

    session = TeacherSession.for_data(args.data, args.path, [args.gen_subset], option="--path")  # checks the dictionaries
    task, model = session.task, session.models[0]
    src, tgt = task.cfg.source_lang, task.cfg.target_lang
    try:
        model_dir = convert(args.path, args.data, src, tgt)
    except Unconvertible as e:
        raise LskdError(f"--path {args.path}: CTranslate2 cannot convert this model ({e}); decode with fairseq-generate")
    device = device_of(args.cpu)
    compute_type = resolve_compute_type(args.compute_type, device)
    max_positions = session.max_positions()
    dataset = task.dataset(args.gen_subset)
    decoder = Decoder(load(model_dir, device, compute_type, threads), task.source_dictionary, task.target_dictionary,
                      beam=args.beam, nbest=args.nbest, lenpen=args.lenpen, sampling=False, temperature=1.0,
                      sampling_topk=-1, max_len_a=args.max_len_a, max_len_b=args.max_len_b, max_len_cap=model.max_decoder_positions(),
                      max_tokens=args.max_tokens, batch_size=args.batch_size)
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
        limits = [length_limit(int(sizes[b].max()), args.max_len_a, args.max_len_b, model.max_decoder_positions())
                  for b in batches for _ in b]
    t0 = time.perf_counter()
    hypos = decoder.decode([dataset.src[i] for i in order], limits)
    elapsed = time.perf_counter() - t0
    n_tokens = write_generate_output(sys.stdout, task, dataset, order, hypos, args)
    print(f"Translated {len(order):,} sentences ({n_tokens:,} tokens) in {elapsed:.1f}s "
          f"({len(order) / max(elapsed, 1e-9):.2f} sentences/s, {n_tokens / max(elapsed, 1e-9):.2f} tokens/s) "
          f"with CTranslate2 {version()} {compute_type} on {device}", file=sys.stdout)
    return 0
