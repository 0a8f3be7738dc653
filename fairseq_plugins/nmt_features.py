"""`lskd nmt-features`: penultimate decoder states of an NMT model, per gold target token, for `lskd diffusion`.

    lskd nmt-features --data DATA_BIN --path student/checkpoint_best.pt --split valid --top 30 --out s.pt

With teacher forcing over a binarised split (fairseq's own task and batch iterator), the decoder's output
features (what the output projection sees) are kept at every position whose gold token is one of the
analysed words: the first --max-per-word occurrences of each in corpus order (sample id, then position;
not fairseq's length-sorted batch order), so every model of a grid is read at the same tokens. A "class" is a target vocabulary
entry: the --top most frequent gold tokens of the split (specials excluded; at least 2 occurrences), or the pieces given by --words.
The file has the layout of `lskd vision features` with classes renumbered 0..n-1: features (N, D),
labels (N,), logits (N, n) = the model's logits restricted to the analysed words (their softmax is the
model's distribution renormalised over them), fc_weight (n, D) and fc_bias (n,) = the output projection's
rows of those words, classes = the word pieces, positions (N, 2) = (sample id, target position) of each row.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import torch
from fairseq import utils
from tqdm import tqdm

from lskd.errors import LskdError
from lskd.fileio import atomic_path, command_line
from lskd.options import option

from .teacher import TeacherSession
from .teacher_command import ModelRunOptions, parse


def word_ids(dictionary, targets, top: int, words: Optional[Sequence[str]]) -> List[int]:
    """The analysed words: the given pieces, or the `top` most frequent gold tokens of the split (specials excluded)."""
    if words:
        ids = [dictionary.index(w) for w in words]
        unknown = [w for w, i in zip(words, ids) if i == dictionary.unk()]
        if unknown:
            raise LskdError(f"--words: not in the target dictionary: {' '.join(unknown)}")
        return ids
    if top < 3:
        raise LskdError(f"--top must be >= 3, got {top}")
    counts = torch.bincount(torch.cat([targets[i] for i in range(len(targets))]).long(), minlength=len(dictionary))
    counts[: dictionary.nspecial] = 0
    return [i for i in counts.argsort(descending=True)[:top].tolist() if counts[i] >= 2]  # a class needs 2 samples


def corpus_order_positions(targets, column: torch.Tensor, max_per_word: int) -> dict:
    """{sample id: {position: class}} of the first `max_per_word` occurrences of each analysed word in corpus
    order (sample id, then position), read from the binarised targets, independent of batching."""
    counts = torch.zeros(int(column.max()) + 1, dtype=torch.long)
    wanted = {}
    for sid in range(len(targets)):
        cls = column[targets[sid].long()]
        for pos in (cls >= 0).nonzero().squeeze(1).tolist():
            c = int(cls[pos])
            if counts[c] < max_per_word:
                counts[c] += 1
                wanted.setdefault(sid, {})[pos] = c
        if bool((counts >= max_per_word).all()):
            break
    return wanted


@dataclass(frozen=True)
class FeaturesOptions(ModelRunOptions):
    """The settings of one `lskd nmt-features` run."""

    path: str = option(None, "model checkpoint (teacher or student)", group="input and output", required=True)
    split: str = option("valid", "split to run over (default valid)", group="input and output")
    out: Path = option(None, "output .pt file", group="input and output", type=Path, required=True)
    top: int = option(30, "analyse the N most frequent target words (default 30)", group="words")
    words: Optional[List[str]] = option(None, "analyse these target pieces instead (e.g. \u2581he \u2581she "
                                        "\u2581God)", group="words", type=str, nargs="+")
    max_per_word: int = option(500, "positions kept per word (default 500)", group="words")

    def check(self) -> None:
        super().check()
        if self.max_per_word < 2:
            raise LskdError(f"--max-per-word must be >= 2, got {self.max_per_word}")


@torch.no_grad()
def extract(opts: FeaturesOptions) -> dict:
    opts.check()
    data, path, split, top, words, max_per_word = opts.data, opts.path, opts.split, opts.top, opts.words, opts.max_per_word
    device = opts.device()
    session = TeacherSession.for_data(data, path, [split], option="--path", trust=opts.trust_checkpoint)
    session.to(device, opts.fp16)
    if len(session.models) != 1:
        raise LskdError("--path: one checkpoint (features of an ensemble are not defined)")
    task, model = session.task, session.models[0]
    dictionary = task.target_dictionary
    ids = word_ids(dictionary, task.dataset(split).tgt, top, words)
    column = torch.full((len(dictionary),), -1, dtype=torch.long)
    column[torch.tensor(ids)] = torch.arange(len(ids))
    wanted = corpus_order_positions(task.dataset(split).tgt, column, max_per_word)
    counts = torch.bincount(torch.tensor([c for per in wanted.values() for c in per.values()], dtype=torch.long),
                            minlength=len(ids))
    projection = model.decoder.output_projection
    kept = {}  # (sample id, position) -> feature
    bar = tqdm(total=len(wanted), unit="sent", desc=f"features {split}", dynamic_ncols=True, mininterval=1.0)
    for sample in session.batches(split, opts.max_tokens):
        rows = [(j, int(sid)) for j, sid in enumerate(sample["id"].tolist()) if int(sid) in wanted] if sample else []
        if not rows:  # fairseq's batches are length-sorted: skip those without a selected position
            continue
        x, _ = model(**utils.move_to_cuda(sample["net_input"]) if device.type == "cuda" else sample["net_input"],
                     features_only=True)
        for j, sid in rows:
            for pos in wanted[sid]:
                kept[(sid, pos)] = x[j, pos].float().cpu()
        bar.update(len(rows))
        if len(kept) == int(counts.sum()):
            break
    bar.close()
    order = sorted(kept)  # corpus order: the file is the same sequence of tokens for every model
    feats = [kept[k] for k in order]
    labels = [wanted[sid][pos] for sid, pos in order]
    if not feats:
        raise LskdError(f"split {split}: none of the analysed words occurs as a target token")
    f = torch.stack(feats).float()
    w = projection.weight[ids].float().cpu()
    b = projection.bias[ids].float().cpu() if getattr(projection, "bias", None) is not None else torch.zeros(len(ids))
    return {"features": f, "labels": torch.tensor(labels), "logits": f @ w.T + b, "fc_weight": w, "fc_bias": b,
            "classes": [dictionary[i] for i in ids], "counts": counts.tolist(), "positions": torch.tensor(order),
            "meta": {"checkpoint": str(path), "split": split, "created_by": command_line()}}


def main(argv: List[str]) -> int:
    opts = parse(FeaturesOptions, argv, "lskd nmt-features", __doc__)
    d = extract(opts)
    with atomic_path(opts.out) as tmp:
        torch.save(d, tmp)
    print(f"[lskd nmt-features] {d['features'].shape[0]} x {d['features'].shape[1]} features of "
          f"{len(d['classes'])} words -> {opts.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
