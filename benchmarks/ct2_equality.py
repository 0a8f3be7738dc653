"""How often CTranslate2's beam search gives fairseq's output, and why not when it does not.

    .venv/bin/python benchmarks/ct2_equality.py --data runs/bible_demo/data/bin \\
        --teacher runs/bible_demo/teachers/a0.1_s1/checkpoint_best.pt --split test --out runs/ct2_equality

`lskd distill-data --split SPLIT --beam 5 --max-len-a 1.2 --max-len-b 10` with `--engine fairseq` and with
`--engine ctranslate2` (--compute-type, default float32; --gpu decodes both on the GPU, where CTranslate2's
default is float16; no filter, so every source has its best hypothesis), then the best hypotheses
are compared sentence by sentence. Each one that differs is scored by fairseq's own SequenceScorer (the model's
length-normalised log-probability, base 2, as fairseq-generate prints it), and classified:
  tie      fairseq scores CTranslate2's choice within --tie of its own: a near tie that float rounding
           (CTranslate2's kernels vs PyTorch's) decides either way
  limit    one of the two reached the length limit (where the engines' searches are known to differ a little)
  other    neither: a real difference in the search
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def best(out: Path, split: str):
    tgt = json.loads((out / "manifest.json").read_text())["settings"]["target_lang"]
    ids = [line.split("\t") for line in (out / "text" / f"{split}.ids").read_text().splitlines()]
    hyps = (out / "text" / f"{split}.{tgt}").read_text().splitlines()
    return {int(i): (h, float(s)) for (i, r, s), h in zip(ids, hyps) if r == "0"}


def fairseq_scores(data: Path, teacher: Path, split: str, pairs):
    """fairseq's SequenceScorer score (base 2, / length with </s>) of each (sample id, hypothesis text)."""
    from fairseq import checkpoint_utils, utils
    from fairseq.sequence_scorer import SequenceScorer

    utils.import_user_module(argparse.Namespace(user_dir=str(REPO / "fairseq_plugins")))
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(teacher)], arg_overrides={"data": str(data)})
    task.load_dataset(split)
    ds, tgt_dict = task.dataset(split), task.target_dictionary
    model = models[0].eval()
    scorer = SequenceScorer(tgt_dict)
    out = []
    with torch.inference_mode():
        for sid, text in pairs:
            item = dict(ds[sid])
            item["target"] = tgt_dict.encode_line(text, add_if_not_exist=False, append_eos=True).long()
            sample = ds.collater([item])
            hypo = scorer.generate([model], sample)[0][0]
            out.append(float(hypo["score"]) / np.log(2))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--teacher", type=Path, required=True)
    p.add_argument("--split", default="test")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--gen", default="--max-len-a 1.2 --max-len-b 10", help="length limit options")
    p.add_argument("--tie", type=float, default=0.01, help="score difference (base 2) called a tie (default 0.01)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--gpu", action="store_true", help="decode on the GPU (fairseq in float32; CTranslate2 in "
                                                      "--compute-type) instead of the CPU")
    p.add_argument("--compute-type", default="float32", help="CTranslate2's compute type (float16 on a GPU: the "
                                                             "engine's default there)")
    args = p.parse_args(argv)
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    for engine in ("fairseq", "ctranslate2"):
        if not (args.out / engine / "manifest.json").is_file():
            extra = [] if args.gpu else ["--cpu"]
            if engine == "ctranslate2":
                extra += ["--compute-type", args.compute_type]
            subprocess.run([BIN / "lskd", "distill-data", "--data", args.data, "--teacher-path", args.teacher,
                            "--out", args.out / engine, "--split", args.split, "--engine", engine, "--beam",
                            str(args.beam), *args.gen.split(), "--max-ratio", "0", "--keep-empty", "--keep-max-len",
                            *extra], check=True, env=env, capture_output=True)
    fs, ct = best(args.out / "fairseq", args.split), best(args.out / "ctranslate2", args.split)
    differ = sorted(i for i in fs if fs[i][0] != ct[i][0])
    m = json.loads((args.out / "fairseq" / "manifest.json").read_text())
    a, b = (float(x) for x in args.gen.split()[1::2])
    src_sizes = {}
    from fairseq.data import data_utils, indexed_dataset
    s, t = data_utils.infer_language_pair(str(args.data))
    src = indexed_dataset.MMapIndexedDataset(str(args.data / f"{args.split}.{s}-{t}.{s}"))
    for i in differ:
        src_sizes[i] = len(src[i])
    rescored = fairseq_scores(args.data, args.teacher, args.split, [(i, ct[i][0]) for i in differ])
    kinds = {"tie": [], "limit": [], "other": []}
    rows = []
    for i, ct_by_fairseq in zip(differ, rescored):
        limit = int(a * src_sizes[i] + b)
        gap = fs[i][1] - ct_by_fairseq
        if limit in (len(fs[i][0].split()), len(ct[i][0].split())):
            kind = "limit"
        elif abs(gap) <= args.tie:
            kind = "tie"
        else:
            kind = "other"
        kinds[kind].append(i)
        rows.append(f"| {i} | {kind} | {fs[i][1]:.4f} | {ct_by_fairseq:.4f} | {gap:+.4f} | {ct[i][1]:.4f} |")
    n = len(fs)
    print(f"{args.split}: {n} sentences, beam {args.beam}, {args.gen}, CTranslate2 {args.compute_type} on "
          f"{'GPU' if args.gpu else 'CPU'}; best hypotheses identical: {n - len(differ)} "
          f"({100 * (n - len(differ)) / n:.1f}%); differing: " + ", ".join(f"{k} {len(v)}" for k, v in kinds.items()))
    print(f"(fairseq's teacher: {m['settings']['teachers'][0]['path']})")
    if rows:
        print("\n| id | kind | fairseq best (fairseq score) | CTranslate2 best (fairseq score) | gap | "
              "CTranslate2 best (its score) |\n|---|---|---|---|---|---|\n" + "\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
