"""`lskd score`: detokenised BLEU and chrF (sacrebleu) of fairseq-generate output, in corpus order.

    lskd score --generate gen.out --ref raw/test.en [--out score.json] [--meta key=value ...]
    lskd score --hyp hyps.txt --ref raw/test.en

fairseq-generate prints hypotheses in length-sorted batches; the `D-<id>` lines (detokenised with
`--post-process sentencepiece`) are put back in corpus order by id. A missing or extra id is an error:
fairseq-generate drops the last sentences when --required-batch-size-multiple does not divide the
split (fairseq #5036), and a silently shorter hypothesis file would make the score meaningless.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Dict, List

import sacrebleu

from lskd.errors import LskdError
from lskd.fileio import write_json


def read_generate_output(path: Path, prefix: str = "D") -> Dict[int, str]:
    """{sentence id: text} from the `PREFIX-<id>\\t<score>\\t<text>` lines of fairseq-generate."""
    hyps: Dict[int, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith(prefix + "-"):
                continue
            fields = line.rstrip("\n").split("\t")
            head = fields[0][len(prefix) + 1:]
            if not head.isdigit():
                continue
            idx = int(head)
            if idx in hyps:  # --nbest > 1: keep the first (best) hypothesis
                continue
            hyps[idx] = fields[2] if len(fields) > 2 else ""
    return hyps


def hypotheses_in_order(generate_out: Path, n_refs: int) -> List[str]:
    hyps = read_generate_output(generate_out)
    if not hyps:
        raise LskdError(f"--generate {generate_out}: no 'D-<id>' lines (expected fairseq-generate output)")
    missing = [i for i in range(n_refs) if i not in hyps]
    extra = [i for i in hyps if not 0 <= i < n_refs]
    if missing or extra:
        raise LskdError(
            f"--generate {generate_out}: {len(hyps)} hypotheses for {n_refs} references "
            f"(missing ids {missing[:5]}{'...' if len(missing) > 5 else ''}, extra ids {extra[:5]}); "
            f"decode with --required-batch-size-multiple 1"
        )
    return [hyps[i] for i in range(n_refs)]


def score(hyps: List[str], refs: List[str]) -> dict:
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    b, c = bleu.corpus_score(hyps, [refs]), chrf.corpus_score(hyps, [refs])
    return {
        "bleu": round(b.score, 4),
        "chrf": round(c.score, 4),
        "signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "n_sentences": len(refs),
    }


def _read_lines(path: Path, option: str) -> List[str]:
    if not path.is_file():
        raise LskdError(f"{option} {path}: no such file")
    return path.read_text(encoding="utf-8").rstrip("\n").split("\n")


def _meta(items: List[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise LskdError(f"--meta {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="lskd score", description=__doc__.split("\n\n")[0])
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--generate", type=Path, help="fairseq-generate output (run with --post-process sentencepiece)")
    src.add_argument("--hyp", type=Path, help="detokenised hypotheses, one per line, in corpus order")
    p.add_argument("--ref", type=Path, required=True, help="detokenised references, one per line")
    p.add_argument("--out", type=Path, help="write the scores (plus --meta) as JSON here, e.g. RUN/score.json")
    p.add_argument("--meta", nargs="*", default=[], metavar="KEY=VALUE",
                   help="extra fields for the JSON (role=student teacher_alpha=0.1 temperature=2 seed=1)")
    args = p.parse_args(argv)
    meta = _meta(args.meta)
    refs = _read_lines(args.ref, "--ref")
    if args.generate is not None:
        if not args.generate.is_file():
            raise LskdError(f"--generate {args.generate}: no such file")
        hyps = hypotheses_in_order(args.generate, len(refs))
    else:
        hyps = _read_lines(args.hyp, "--hyp")
        if len(hyps) != len(refs):
            raise LskdError(f"--hyp {args.hyp}: {len(hyps)} lines, --ref {args.ref}: {len(refs)} lines (expected equal)")
    result = {**meta, **score(hyps, refs)}
    print(f"BLEU = {result['bleu']:.2f}  chrF = {result['chrf']:.2f}  ({result['n_sentences']} sentences)")
    print(f"BLEU signature: {result['signature']}")
    print(f"chrF signature: {result['chrf_signature']}")
    if args.out is not None:
        result["created_by"] = "lskd score " + " ".join(shlex.quote(a) for a in argv)
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
