"""`lskd nmt-features`: penultimate decoder states of an NMT model, per gold target token, for `lskd diffusion`.

    lskd nmt-features --data DATA_BIN --path student/checkpoint_best.pt --split valid --top 30 --out s.pt

With teacher forcing over a binarised split (fairseq's own task and batch iterator), the decoder's output
features (what the output projection sees) are kept at every position whose gold token is one of the
analysed words, up to --max-per-word positions each, in corpus order. A "class" is a target vocabulary
entry: the --top most frequent gold tokens of the split (specials excluded; at least 2 occurrences), or the pieces given by --words.
The file has the layout of `lskd vision features` with classes renumbered 0..n-1: features (N, D),
labels (N,), logits (N, n) = the model's logits restricted to the analysed words (their softmax is the
model's distribution renormalised over them), fc_weight (n, D) and fc_bias (n,) = the output projection's
rows of those words, classes = the word pieces.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import torch
from tqdm import tqdm

from lskd.errors import LskdError
from lskd.fileio import atomic_path, command_line

from .teacher import TeacherSession


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


@torch.no_grad()
def extract(data: str, path: str, split: str, top: int = 30, words=None,
            max_per_word: int = 500, max_tokens: int = 4096) -> dict:
    session = TeacherSession.for_data(data, path, [split], option="--path")
    if len(session.models) != 1:
        raise LskdError("--path: one checkpoint (features of an ensemble are not defined)")
    task, model = session.task, session.models[0]
    dictionary = task.target_dictionary
    ids = word_ids(dictionary, task.dataset(split).tgt, top, words)
    column = torch.full((len(dictionary),), -1, dtype=torch.long)
    column[torch.tensor(ids)] = torch.arange(len(ids))
    counts = torch.zeros(len(ids), dtype=torch.long)
    projection = model.decoder.output_projection
    feats, labels = [], []
    bar = tqdm(total=len(task.dataset(split)), unit="sent", desc=f"features {split}", dynamic_ncols=True, mininterval=1.0)
    for sample in session.batches(split, max_tokens):
        if not sample:
            continue
        x, _ = model(**sample["net_input"], features_only=True)
        cls = column[sample["target"]].reshape(-1)
        x = x.reshape(-1, x.size(-1))
        keep = (cls >= 0).nonzero().squeeze(1)
        for pos in keep.tolist():  # corpus order, at most max_per_word per word
            c = int(cls[pos])
            if counts[c] < max_per_word:
                counts[c] += 1
                feats.append(x[pos])
                labels.append(c)
        bar.update(len(sample["id"]))
        if bool((counts >= max_per_word).all()):
            break
    bar.close()
    if not feats:
        raise LskdError(f"split {split}: none of the analysed words occurs as a target token")
    f = torch.stack(feats).float()
    w = projection.weight[ids].float()
    b = projection.bias[ids].float() if getattr(projection, "bias", None) is not None else torch.zeros(len(ids))
    return {"features": f, "labels": torch.tensor(labels), "logits": f @ w.T + b, "fc_weight": w, "fc_bias": b,
            "classes": [dictionary[i] for i in ids], "counts": counts.tolist(),
            "meta": {"checkpoint": str(path), "split": split, "created_by": command_line()}}


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="lskd nmt-features", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--data", required=True, help="fairseq binarised data dir")
    p.add_argument("--path", required=True, help="model checkpoint (teacher or student)")
    p.add_argument("--split", default="valid", help="split to run over (default valid)")
    p.add_argument("--top", type=int, default=30, help="analyse the N most frequent target words (default 30)")
    p.add_argument("--words", nargs="+", default=None, help="analyse these target pieces instead (e.g. ▁he ▁she ▁God)")
    p.add_argument("--max-per-word", type=int, default=500, help="positions kept per word (default 500)")
    p.add_argument("--max-tokens", type=int, default=4096)
    p.add_argument("--out", required=True, type=Path, help="output .pt file")
    a = p.parse_args(argv)
    if a.max_per_word < 2:
        raise LskdError(f"--max-per-word must be >= 2, got {a.max_per_word}")
    d = extract(a.data, a.path, a.split, top=a.top, words=a.words, max_per_word=a.max_per_word, max_tokens=a.max_tokens)
    with atomic_path(a.out) as tmp:
        torch.save(d, tmp)
    print(f"[lskd nmt-features] {d['features'].shape[0]} x {d['features'].shape[1]} features of "
          f"{len(d['classes'])} words -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
