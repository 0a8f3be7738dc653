"""fairseq's beam search and sampling on CTranslate2: the same outputs as fairseq's SequenceGenerator at an
inference engine's speed (the model and its conversion: fairseq_plugins/ct2_model.py).

Used by `lskd distill-data --engine ctranslate2` (`Ct2Engine`) and `lskd ct2-generate` (fairseq-generate's
output format, for the recipes' evaluation). What makes the outputs equal to fairseq's (float32):
  - the model converted by CTranslate2's own converter (ct2_model.convert);
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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch

from . import ct2_model


def length_limit(src_len: int, max_len_a: float, max_len_b: int, max_len_cap: int) -> int:
    """fairseq's SequenceGenerator limit on the words before </s>: min(a * src_len + b, cap - 1), src_len with </s>."""
    return min(int(max_len_a * src_len + max_len_b), max_len_cap - 1)


@dataclass(frozen=True)
class SearchSettings:
    """One search in fairseq-generate's terms: what `Decoder` runs and what distill-data records."""

    beam: int = 5
    nbest: int = 1
    lenpen: float = 1.0
    sampling: bool = False
    temperature: float = 1.0
    sampling_topk: int = -1  # fairseq's -1: the whole distribution
    max_len_a: float = 0.0
    max_len_b: int = 200
    max_len_cap: int = 1024  # the model's max decoder positions: the limit is min(a * src_len + b, cap - 1)
    max_tokens: Optional[int] = None
    batch_size: Optional[int] = None
    scores: bool = True  # False: the caller reads only the tokens (greedy then skips rescoring cut hypotheses)

    def limit(self, src_len: int) -> int:
        return length_limit(src_len, self.max_len_a, self.max_len_b, self.max_len_cap)


class _Job(NamedTuple):
    """A search submitted to CTranslate2 and not yet collected."""

    words: List[List[str]]
    steps: int
    rank_lenpen: float
    search: list  # CTranslate2's async results, one per sentence
    first: Optional[list]  # first-step scores (beam search), one per sentence

UNNORMALISED = 1e-6  # a CTranslate2 length penalty that ranks by the raw score (0 would change its stopping rule)

class Decoder:
    """Beam search or sampling with fairseq's semantics on a CTranslate2 Translator, in fairseq token ids."""

    def __init__(self, translator, src_dict, tgt_dict, search: SearchSettings):
        self.translator, self.src_dict, self.tgt_dict, self.search = translator, src_dict, tgt_dict, search
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
        if self.search.max_tokens:
            total = sum(len(w) + 1 for w in words)
            share = -(-total // (2 * workers)) if workers > 1 else self.search.max_tokens
            return dict(max_batch_size=max(1, min(self.search.max_tokens, share)), batch_type="tokens")
        share = -(-len(words) // (2 * workers)) if workers > 1 else len(words)
        return dict(max_batch_size=max(1, min(self.search.batch_size or share, share)), batch_type="examples")

    def _options(self, limit: int, lenpen: float) -> dict:
        opts = dict(max_decoding_length=limit, min_decoding_length=1, return_end_token=True, return_scores=True,
                    max_input_length=0, length_penalty=lenpen)
        if self.search.sampling:
            # fairseq's -1 (the whole distribution) is CTranslate2's 0; fairseq samples with <pad> (the converter's
            # <blank>) at probability 0, i.e. from the others renormalised, which suppressing it does. (Beam search
            # keeps it: suppressing renormalises the log-probabilities, fairseq's scores are not renormalised.)
            opts.update(suppress_sequences=[["<blank>"]])
            opts.update(beam_size=1, num_hypotheses=self.search.nbest, sampling_temperature=self.search.temperature,
                        sampling_topk=0 if self.search.sampling_topk < 0 else self.search.sampling_topk)
        else:  # every finished hypothesis back, so that the ones cut by the limit can be rescored and re-ranked
            opts.update(beam_size=self.search.beam, num_hypotheses=self.search.beam)
        return opts

    def _submit(self, words: List[List[str]], steps: int, batching: dict, rank_lenpen: Optional[float] = None):
        """Start CTranslate2's search of `words` with at most `steps` tokens (</s> included), and the first-step
        scoring that beam search needs, without waiting: what is submitted runs on all workers at once.
        `rank_lenpen` (default --lenpen) chooses which `beam` hypotheses come back: CTranslate2's length penalty
        only ranks the finished ones (the search is the same for any penalty > 0); scores stay --lenpen's."""
        rank_lenpen = self.search.lenpen if rank_lenpen is None else rank_lenpen
        first = None
        # first: short, it fills no tail; greedy needs it for fairseq's scores only (one hypothesis: no ranking)
        if not self.search.sampling and (self.search.beam > 1 or self.search.scores):
            first = self.translator.score_batch(words, [[] for _ in words], max_input_length=0, asynchronous=True,
                                                **batching)
        search = self.translator.translate_batch(words, asynchronous=True, **batching,
                                                 **self._options(steps, rank_lenpen))
        return _Job(words, steps, rank_lenpen, search, first)

    def _collect(self, job: _Job, limits: List[int], batching: dict,
                 known: Optional[List[dict]] = None) -> Tuple[List[List[list]], List[List[float]]]:
        """A submitted search's hypotheses [ids ending in </s>, score]; each one without </s>, or longer than its
        sentence's limit (`limits`, one per sentence), is cut to that many words and given </s>, as fairseq forces
        it, and (beam search) rescored so that its score has fairseq's
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
                score = score * len(h) ** (rank_lenpen - self.search.lenpen)
                if len(h) == steps:
                    at_last.append(float(score))
                if not ids or ids[-1] != self.eos or len(ids) > limits[i] + 1:
                    ids = ids[:limits[i]] + [self.eos]
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
                    h[1] -= shift / len(h[0]) ** self.search.lenpen
        if cut and not self.search.sampling and (self.search.scores or self.search.beam > 1):  # beams: rank by them
            sources = [words[i] for i, _ in cut]
            rescored = self.translator.score_batch(sources,
                                                   [[self.tgt_dict[t] for t in out[i][j][0][:-1]] for i, j in cut],
                                                   max_input_length=0, **self._batching(sources))
            for (i, j), s in zip(cut, rescored):
                out[i][j][1] = float(sum(s.log_probs)) / (len(out[i][j][0]) ** self.search.lenpen)
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
        bound = min(at_last) * (limit / (limit + 1)) ** self.search.lenpen
        scores = sorted((score for _, score in hyps), reverse=True)
        if len(scores) >= self.search.nbest and scores[self.search.nbest - 1] > bound:
            return False, False
        live_seen = len(at_last) == self.search.beam and sum(len(ids) == limit + 1 for ids, _ in hyps) == self.search.beam
        return True, not live_seen

    def _search_again(self, idx: List[int], words: List[List[str]], hyps: List[List[list]], at_last: List[List[float]],
                      limit: int) -> List[Tuple[List[int], _Job, dict, int]]:
        """For one limit group's sentences (`idx`) whose n-best may hold what the search did not return (_unseen),
        submit the searches that find it: to the limit with a length penalty near 0, which returns the hypotheses
        with the best unnormalised scores, i.e. those that finished early; and, if live beams were not all seen,
        one step longer, where every live beam is extended and the `beam` best next words are registered (their
        prefixes get </s>). Submitted as soon as the group is collected, they fill the workers while other groups
        still run. Returns (sentence indices, job, its batching, limit) per search."""
        unseen = [self._unseen(h, last, limit) for h, last in zip(hyps, at_last)]
        searches = []
        for position, (extra, lenpen) in enumerate([(0, UNNORMALISED), (1, None)]):
            pick = [k for k, u in enumerate(unseen) if u[position]]
            if pick:
                batching = self._batching([words[k] for k in pick])
                job = self._submit([words[k] for k in pick], limit + extra, batching, lenpen)
                searches.append(([idx[k] for k in pick], job, batching, limit))
        return searches

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
        sentence is searched again (_search_again)."""
        return self.decode_words([self._source_words(s) for s in sources], limits)

    def decode_words(self, words: List[List[str]], limits: Optional[List[int]] = None) -> List[List[Tuple[torch.Tensor, float]]]:
        """decode() of sources given as source-dictionary symbols without </s> (what CTranslate2 takes)."""
        if limits is None:
            limits = [self.search.limit(len(w) + 1) for w in words]
        if self.search.beam == 1 and not self.search.sampling:
            # greedy: a longer limit changes no step before a shorter one, so one search to the longest limit, each
            # hypothesis cut to its own (full batches instead of one small group per limit)
            groups = {max(limits, default=0): list(range(len(words)))}
        else:  # longest limit first: the longest batches start first and the short ones fill the workers' tails
            groups = {limit: [i for i, lim in enumerate(limits) if lim == limit] for limit in sorted(set(limits), reverse=True)}
        batching = self._batching(words)
        jobs = {limit: self._submit([words[i] for i in idx], limit, batching) for limit, idx in groups.items()}
        out: List[list] = [None] * len(words)
        again: List[Tuple[List[int], _Job, dict, int]] = []
        for limit, idx in groups.items():
            hyps, at_last = self._collect(jobs[limit], [limits[i] for i in idx], batching)
            for i, h in zip(idx, hyps):
                out[i] = h
            if self.search.beam > 1 and not self.search.sampling:  # with one beam the live beam is the one returned
                again.extend(self._search_again(idx, [words[i] for i in idx], hyps, at_last, limit))
        for idx, job, again_batching, limit in again:  # in submission order: a sentence's first search, then its second
            known = [{tuple(ids): score for ids, score in out[i]} for i in idx]
            for i, hyps in zip(idx, self._collect(job, [limit] * len(idx), again_batching, known)[0]):
                out[i] = out[i] + hyps
        if not self.search.sampling:
            out = [self._ranked(hyps) for hyps in out]
        return [[(torch.tensor(ids, dtype=torch.int32), score) for ids, score in hyps[:self.search.nbest]] for hyps in out]


class DecodedBatch(NamedTuple):
    """What an engine returns per batch: fairseq's hypothesis dicts per sample, source lengths with </s>."""

    ids: List[int]
    hypos: List[List[dict]]
    src_lengths: List[int]
    seconds: float


class Ct2Engine:
    """A converted teacher decoding fairseq batches on CTranslate2 with fairseq's search (distill-data's engine)."""

    name = "ctranslate2"

    def __init__(self, model: ct2_model.Ct2Model, compute_type: str, search: SearchSettings, src_dict, tgt_dict):
        self.model, self.compute_type = model, compute_type
        # sampling: a seeded Translator per shard (reseed)
        translator = None if search.sampling else ct2_model.load(model.path, model.device, compute_type, model.threads)
        self.decoder = Decoder(translator, src_dict, tgt_dict, search)
        self.max_len, self.strip = search.max_len_cap, {tgt_dict.eos()}  # as FairseqEngine's

    def reseed(self, seed: int) -> None:
        """Sampling: CTranslate2 seeds a worker once, when it first samples, so a new seed takes a new Translator."""
        if self.decoder.search.sampling:
            m = self.model
            self.decoder.translator = ct2_model.load(m.path, m.device, self.compute_type, m.threads, parallel=False,
                                                     seed=seed)

    def decode_batches(self, dataset, batches, bar) -> Iterable[DecodedBatch]:
        """One DecodedBatch per chunk of fairseq batches (CTranslate2 re-batches them itself)."""
        ids = [int(i) for batch in batches for i in batch]
        chunk = 4096  # sentences per call: large enough for CTranslate2's own batching, small enough for progress
        for lo in range(0, len(ids), chunk):
            part = ids[lo:lo + chunk]
            sources = [dataset.src[i] for i in part]
            t0 = time.perf_counter()
            hypos = self.decoder.decode(sources)
            dt = time.perf_counter() - t0
            yield DecodedBatch(part, [[{"tokens": t, "score": s} for t, s in h] for h in hypos],
                               [len(s) for s in sources], dt)
            bar.update(len(part))

    def record(self) -> dict:
        """The manifest's account of the engine."""
        return {"name": self.name, "version": ct2_model.version(), "compute_type": self.compute_type,
                "device": self.model.device, "model": str(self.model.path)}

