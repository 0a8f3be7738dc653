"""`lskd score`: BLEU and chrF of fairseq-generate output, in corpus order, in the convention the data calls for.

    lskd score --generate gen.out --ref DATA/raw/test.en [--out score.json] [--meta key=value ...]
    lskd score --hyp hyps.txt --ref DATA/raw/test.en [--convention tokenized]

The convention comes from DATA/manifest.json ("scoring", written by data_prep for the text it prepared;
--convention overrides it). Each number is stored under its own key, described in score.json "conventions":
  detok      the text is detokenised: sacreBLEU (13a) -> bleu, chrF -> chrf, with their signatures.
  tokenized  the text is tokenised (IWSLT14 as fairseq prepares it: lowercased, Moses-tokenised): BLEU on its
             white-space tokens (sacrebleu tokenize="none", no smoothing) -> bleu_tok. This is multi-bleu.perl's
             and fairseq-generate's BLEU4 (fairseq.scoring.bleu), the number fairseq and the IWSLT14 papers
             print (fairseq's libbleu can add a few n-gram matches from hash collisions; this counts exactly).
             No chrF and no detokenised BLEU: the text is not detokenised.
  wmt14      WMT14 as fairseq prepares it (tokenizer.perl -a): the hypotheses are Moses-detokenised and scored
             against the untouched newstest2014 reference (DATA/ref/test.TGT or --detok-ref) with sacreBLEU
             and chrF -> bleu, chrf; and the tokenised text with fairseq's compound_split_bleu.sh for a German
             target (-> bleu_compound_split, the convention of the 27.3 / 28.4 WMT14 en-de figures), else bleu_tok.

fairseq-generate prints hypotheses in length-sorted batches; the `D-<id>` lines (with `--post-process
sentencepiece`: the text as prepared, before any tokenisation by sentencepiece) are put back in corpus
order by id. A missing or extra id is an error: fairseq-generate drops the last sentences when
--required-batch-size-multiple does not divide the split (fairseq #5036), and a silently shorter
hypothesis file would make the score meaningless.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Dict, List, Optional

import sacrebleu

from lskd.errors import LskdError
from lskd.fileio import write_json

CONVENTIONS = ("detok", "tokenized", "wmt14")
# metric key -> what it is (report headings; score.json "conventions" may say more about the text)
METRICS = {
    "bleu": "detokenised sacreBLEU (tok 13a; signature below)",
    "bleu_tok": "tokenised BLEU on the text as prepared (sacrebleu tokenize=none = multi-bleu.perl = "
                "fairseq-generate's BLEU4)",
    "bleu_compound_split": "tokenised BLEU with compound splitting (fairseq's compound_split_bleu.sh: "
                           "the WMT14 en-de convention of the 27.3 / 28.4 figures)",
    "chrf": "chrF (sacrebleu; signature below) on detokenised text",
}
_COMPOUND = re.compile(r"(\S)-(\S)")


def read_generate_output(path: Path, prefix: str = "D") -> Dict[int, str]:
    """{sentence id: text} from the `PREFIX-<id>\\t<score>\\t<text>` lines (H, D) or the
    `PREFIX-<id>\\t<text>` lines (S, T) of fairseq-generate."""
    col = 2 if prefix in ("H", "D") else 1
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
            hyps[idx] = fields[col] if len(fields) > col else ""
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


def detok_scores(hyps: List[str], refs: List[str]) -> dict:
    """sacreBLEU (13a) and chrF of detokenised text, with signatures."""
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    b, c = bleu.corpus_score(hyps, [refs]), chrf.corpus_score(hyps, [refs])
    return {"bleu": round(b.score, 4), "chrf": round(c.score, 4),
            "signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}


def tokenized_bleu(hyps: List[str], refs: List[str], key: str) -> dict:
    """BLEU on white-space tokens, no smoothing: multi-bleu.perl's and fairseq.scoring.bleu's number,
    as {key, key_detail (precisions, brevity penalty, lengths), key_signature}."""
    bleu = sacrebleu.metrics.BLEU(tokenize="none", smooth_method="none")
    b = bleu.corpus_score(hyps, [refs])
    return {key: round(b.score, 4), f"{key}_detail": str(b), f"{key}_signature": str(bleu.get_signature())}


def compound_split(line: str) -> str:
    """fairseq's compound_split_bleu.sh: perl -ple 's{(\\S)-(\\S)}{$1 ##AT##-##AT## $2}g'."""
    return _COMPOUND.sub(r"\1 ##AT##-##AT## \2", line)


def moses_detokenize(lines: List[str], lang: str) -> List[str]:
    """detokenizer.perl -l LANG (sacremoses): joins ' @-@ ', unescapes &apos; &quot; &amp; ..."""
    from sacremoses import MosesDetokenizer

    d = MosesDetokenizer(lang=lang)
    return [d.detokenize(line.split(), unescape=True) for line in lines]


def looks_tokenised(refs: List[str]) -> Optional[str]:
    """Why these references look Moses-tokenised (escapes, or punctuation split off at most line ends), or None."""
    escapes = [e for e in ("&apos;", "&quot;", "&amp;", " @-@ ") if any(e in r for r in refs)]
    if escapes:
        return f"it holds Moses escapes ({', '.join(e.strip() for e in escapes)})"
    ended = [r for r in refs if r.rstrip()[-1:] in ".?!"]
    split = sum(r.rstrip()[-2:-1] == " " for r in ended)
    if len(ended) >= 10 and split >= 0.5 * len(ended):
        return f"{split} of {len(ended)} lines end in a separated '.', '?' or '!'"
    return None


def data_scoring_spec(ref: Path) -> Optional[dict]:
    """The "scoring" entry of the data_prep manifest above --ref (DATA/raw/test.x -> DATA/manifest.json)."""
    manifest = Path(ref).resolve().parent.parent / "manifest.json"
    try:
        spec = json.loads(manifest.read_text(encoding="utf-8")).get("scoring")
    except (OSError, ValueError, AttributeError):
        return None
    if spec is not None:
        spec = dict(spec, manifest=str(manifest))
    return spec


def score(hyps: List[str], refs: List[str], convention: str = "detok", *, text: Optional[str] = None,
          detok_refs: Optional[List[str]] = None, lang: Optional[str] = None, compound: bool = False) -> dict:
    """The numbers of one convention, each with its description under "conventions"."""
    out: dict = {"convention": convention, "n_sentences": len(refs)}
    if convention == "detok":
        out.update(detok_scores(hyps, refs))
        desc = {"bleu": METRICS["bleu"], "chrf": METRICS["chrf"]}
        if text:
            desc = {k: f"{v}; text: {text}" for k, v in desc.items()}
    elif convention == "tokenized":
        out.update(tokenized_bleu(hyps, refs, "bleu_tok"))
        desc = {"bleu_tok": f"tokenised BLEU on the {text or 'text as prepared'} (sacrebleu tokenize=none = "
                            f"multi-bleu.perl = fairseq-generate's BLEU4)"}
    elif convention == "wmt14":
        if detok_refs is None or lang is None:
            raise LskdError("--convention wmt14: needs the untouched reference (--detok-ref) and --lang")
        if len(detok_refs) != len(refs):
            raise LskdError(f"the untouched reference has {len(detok_refs)} lines, the tokenised one {len(refs)} "
                            f"(expected the same test set)")
        out.update(detok_scores(moses_detokenize(hyps, lang), detok_refs))
        desc = {"bleu": f"detokenised sacreBLEU (tok 13a) of Moses-detokenised hypotheses against the untouched "
                        f"reference ({len(detok_refs):,} lines{'; newstest2014 full' if len(detok_refs) == 3003 else ''})",
                "chrf": "chrF (sacrebleu) of the same detokenised text"}
        if compound:
            out.update(tokenized_bleu([compound_split(h) for h in hyps], [compound_split(r) for r in refs],
                                      "bleu_compound_split"))
            desc["bleu_compound_split"] = METRICS["bleu_compound_split"] + f" on the {text or 'tokenised text'}"
        else:
            out.update(tokenized_bleu(hyps, refs, "bleu_tok"))
            desc["bleu_tok"] = f"tokenised BLEU on the {text or 'tokenised text'} (= fairseq-generate's BLEU4)"
    else:
        raise LskdError(f"--convention {convention!r}: expected one of {', '.join(CONVENTIONS)}")
    out["conventions"] = desc
    return out


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


def _convention(args: argparse.Namespace, spec: dict, refs: List[str], hyps: List[str]):
    """(convention, hypotheses as scored, score()'s keyword arguments) from the options and the data manifest."""
    convention = args.convention or spec.get("convention", "detok")
    if convention == "detok" and spec.get("convention") in ("tokenized", "wmt14"):
        raise LskdError(f"--convention detok: {spec['manifest']} says {args.ref} is {spec.get('text', 'tokenised text')}; "
                        f"sacreBLEU on it would not be detokenised BLEU (use --convention {spec['convention']})")
    detokenize = args.detokenize or spec.get("detokenize", "none")
    if convention == "detok" and not spec and args.convention is None and detokenize == "none":
        why = looks_tokenised(refs)
        if why:
            raise LskdError(f"--ref {args.ref} looks Moses-tokenised ({why}) and no data manifest says how it was "
                            "prepared: give --convention tokenized (tokenised BLEU), or --convention detok with an "
                            "untouched reference (and --detokenize moses for tokenised hypotheses)")
    kw: dict = {"text": spec.get("text")}
    if detokenize == "moses":
        lang = args.lang or spec.get("lang")
        if convention != "detok" or not lang:
            raise LskdError("--detokenize moses: goes with --convention detok and needs --lang (the target language)")
        hyps = moses_detokenize(hyps, lang)
        kw["text"] = f"Moses-detokenised hypotheses ({lang}) against the untouched reference"
    if convention == "wmt14":
        lang = args.lang or spec.get("lang")
        if not lang:
            raise LskdError("--convention wmt14: expected --lang (the target language, for the Moses detokeniser)")
        detok_ref = args.detok_ref or (args.ref.resolve().parent.parent / "ref" / f"test.{lang}")
        kw.update(lang=lang, detok_refs=_read_lines(detok_ref, "--detok-ref"),
                  compound=spec.get("compound_split", lang == "de"))
    return convention, hyps, kw


def score_as_data(hyps: List[str], ref: Path) -> dict:
    """Detokenised text (what `lskd translate` writes) scored against --ref as `lskd score --hyp` would: sacreBLEU
    and chrF; data whose manifest scores tokenised text (IWSLT's tokenised BLEU, wmt14) is refused in one line."""
    ref = Path(ref)
    refs = _read_lines(ref, "--ref")
    if len(hyps) != len(refs):
        raise LskdError(f"--ref {ref}: {len(refs)} lines, {len(hyps)} translations (expected the same test set)")
    spec = data_scoring_spec(ref) or {}
    if spec.get("convention", "detok") != "detok":
        raise LskdError(f"--ref {ref}: {spec['manifest']} scores this data as {spec['convention']} (tokenised text); "
                        "detokenised translations are scored against an untouched reference: give one")
    args = argparse.Namespace(convention="detok", detokenize="none", lang=None, detok_ref=None, ref=ref)
    convention, hyps, kw = _convention(args, spec, refs, hyps)
    return score(hyps, refs, convention, **kw)


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="lskd score", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--generate", type=Path, help="fairseq-generate output (run with --post-process sentencepiece)")
    src.add_argument("--hyp", type=Path, help="hypotheses, one per line, in corpus order (the text as prepared)")
    p.add_argument("--ref", type=Path, required=True, help="references as prepared (DATA/raw/test.TGT), one per line")
    p.add_argument("--convention", choices=CONVENTIONS, default=None,
                   help="how to score (default: the data's manifest.json 'scoring', else detok)")
    p.add_argument("--detok-ref", type=Path, default=None, help="wmt14: the untouched reference (default DATA/ref/test.TGT)")
    p.add_argument("--lang", default=None, help="wmt14, --detokenize moses: the target language, for the Moses detokeniser")
    p.add_argument("--detokenize", choices=("none", "moses"), default=None,
                   help="detok: Moses-detokenise the hypotheses first (text prepared with a teacher's Moses + BPE; "
                        "default: the data manifest's 'scoring', else none)")
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
    spec = data_scoring_spec(args.ref) or {}
    convention, hyps, kw = _convention(args, spec, refs, hyps)
    result = {**meta, **score(hyps, refs, convention, **kw)}
    if spec.get("manifest"):
        result["data_manifest"] = spec["manifest"]
    for key in METRICS:
        if key in result:
            print(f"{key} = {result[key]:.2f}  ({result['conventions'][key]})")
    for key in ("signature", "chrf_signature"):
        if key in result:
            print(f"{key}: {result[key]}")
    print(f"{result['n_sentences']} sentences")
    if args.out is not None:
        result["created_by"] = "lskd score " + " ".join(shlex.quote(a) for a in argv)
        write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
