"""`lskd score` in the published conventions (IWSLT tokenised BLEU, WMT14 detokenised + compound-split BLEU), each
checked against fairseq's own scorer (fairseq.scoring.bleu, what fairseq-score prints): a test of the adapter
between lskd's scoring and fairseq's numbers, so it lives with the fairseq tests (core scoring: tests/core)."""

import json
import random

import pytest

from helpers import require_fairseq
from lskd.errors import LskdError
from lskd.scoring import compound_split, main, score

require_fairseq()


# ------------------------------------------------------------------------- the published conventions


def _data_dir(root, spec, refs, tgt="en", untouched=None):
    """A data_prep output directory as `lskd score` finds it from --ref DATA/raw/test.TGT."""
    (root / "raw").mkdir(parents=True)
    (root / "raw" / f"test.{tgt}").write_text("\n".join(refs) + "\n", encoding="utf-8")
    if untouched is not None:
        (root / "ref").mkdir()
        (root / "ref" / f"test.{tgt}").write_text("\n".join(untouched) + "\n", encoding="utf-8")
    (root / "manifest.json").write_text(json.dumps({"scoring": spec}))
    return root / "raw" / f"test.{tgt}"


def _noisy(refs, seed, drop=0.15):
    rng = random.Random(seed)
    out = []
    for r in refs:
        words = [w for w in r.split() if rng.random() > drop]
        if words and rng.random() < 0.3:
            words[rng.randrange(len(words))] = "xyz"
        out.append(" ".join(words))
    return out


def fairseq_bleu(hyps, refs, order=4):
    """fairseq-score's number (fairseq_cli/score.py): fairseq.scoring.bleu on Dictionary-encoded lines."""
    from fairseq.data.dictionary import Dictionary
    from fairseq.scoring import bleu

    d = Dictionary()
    scorer = bleu.Scorer(bleu.BleuConfig(pad=d.pad(), eos=d.eos(), unk=d.unk()))
    for h, r in zip(hyps, refs):
        scorer.add(d.encode_line(r), d.encode_line(h))
    return scorer.score(order)


IWSLT_REFS = ["we see 103 houses and a tree .", "that &apos;s it , she said .",
              "he said : &quot; i &apos;m coming 104 times . &quot;", "the weather is 106 degrees warm today .",
              "children play in the garden with 107 balls .", "she has read 111 books , and she likes them ."] * 4


@pytest.mark.parametrize("seed, drop", [(1, 0.1), (2, 0.4), (3, 0.0)])
def test_tokenized_bleu_equals_fairseqs_scorer(seed, drop):
    hyps = _noisy(IWSLT_REFS, seed, drop)
    ours = score(hyps, IWSLT_REFS, "tokenized")["bleu_tok"]
    assert ours == pytest.approx(fairseq_bleu(hyps, IWSLT_REFS), abs=1e-4)
    assert 0 < ours < 100 or (drop == 0 and ours > 0)


def test_tokenized_bleu_zero_4gram_matches_is_zero_as_fairseq():
    hyps, refs = ["a b c x", "d e"], ["a b c d", "d f"]  # no matching 4-gram: fairseq and multi-bleu say 0
    assert fairseq_bleu(hyps, refs) == 0 and score(hyps, refs, "tokenized")["bleu_tok"] == 0


def test_iwslt_run_scored_in_the_tokenized_convention(tmp_path):
    spec = {"convention": "tokenized", "text": "lowercased Moses-tokenised text (&apos; escapes)"}
    ref = _data_dir(tmp_path / "data", spec, IWSLT_REFS)
    hyps = _noisy(IWSLT_REFS, 5)
    gen = "".join(f"S-{i}\tx\nD-{i}\t-0.1\t{h}\n" for i, h in reversed(list(enumerate(hyps))))
    (tmp_path / "gen.out").write_text(gen, encoding="utf-8")
    assert main(["--generate", str(tmp_path / "gen.out"), "--ref", str(ref), "--out", str(tmp_path / "s.json")]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["bleu_tok"] == pytest.approx(fairseq_bleu(hyps, IWSLT_REFS), abs=1e-4)
    assert "bleu" not in s and "chrf" not in s  # nothing claims to be detokenised
    assert s["conventions"]["bleu_tok"].startswith("tokenised BLEU on the lowercased Moses-tokenised text")
    assert s["bleu_tok_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:none|smooth:none|")
    assert s["data_manifest"] == str((tmp_path / "data" / "manifest.json").resolve())
    with pytest.raises(LskdError, match=r"--convention detok: .* says .* is lowercased Moses-tokenised text .*"
                                        r"would not be detokenised BLEU \(use --convention tokenized\)"):
        main(["--generate", str(tmp_path / "gen.out"), "--ref", str(ref), "--convention", "detok"])


def test_compound_split_is_fairseqs_perl_rule():
    assert compound_split("ein allseits @-@ bekannter Test-Fall") == \
        "ein allseits @ ##AT##-##AT## @ bekannter Test ##AT##-##AT## Fall"
    # perl's s///g resumes after the consumed "y", so the second hyphen of x-y-z stays: as in fairseq's script
    assert compound_split("a - b x-y-z") == "a - b x ##AT##-##AT## y-z"


def test_wmt14_convention_detok_and_compound_split(tmp_path):
    from data_prep import moses

    untouched = ["Ein allseits bekannter Test des Systems.", "Er sagte: \u201eWir werden sehen.\u201c",
                 "Die Preise stiegen um 5 % im Vor-Jahr."] * 3
    tokenised = moses.tokenize([u.replace("\u2019", "'") for u in untouched], "de", aggressive=True)
    ref = _data_dir(tmp_path / "data", {"convention": "wmt14", "text": "Moses-tokenised text (tokenizer.perl -a, escaped)",
                                        "lang": "de", "compound_split": True}, tokenised, "de", untouched)
    # perfect hypotheses: detokenised, they are the untouched reference itself
    s = score(tokenised, tokenised, "wmt14", detok_refs=untouched, lang="de", compound=True)
    assert s["bleu"] == 100 and s["chrf"] == 100 and s["bleu_compound_split"] == 100
    hyps = _noisy(tokenised, 7, 0.2)
    (tmp_path / "hyp.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    assert main(["--hyp", str(tmp_path / "hyp.txt"), "--ref", str(ref), "--out", str(tmp_path / "s.json")]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    split = [compound_split(h) for h in hyps], [compound_split(r) for r in tokenised]
    assert s["bleu_compound_split"] == pytest.approx(fairseq_bleu(*split), abs=1e-4)
    from sacremoses import MosesDetokenizer
    detok = [MosesDetokenizer("de").detokenize(h.split()) for h in hyps]
    import sacrebleu
    assert s["bleu"] == pytest.approx(sacrebleu.corpus_bleu(detok, [untouched]).score, abs=1e-4)
    assert s["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|")
    assert "@-@" not in "".join(detok) and "&quot;" not in "".join(detok)
    assert set(s["conventions"]) == {"bleu", "chrf", "bleu_compound_split"}


def test_fairseqs_libbleu_hash_collisions_are_not_copied():
    """fairseq's libbleu hashes n-grams with FNV-1a over *signed* chars: on x86, ids >= 128 make distinct
    n-grams collide ((120, 121) and (134, 135) here), so fairseq-generate's BLEU4 can count n-gram matches
    that do not exist. bleu_tok counts exact matches (multi-bleu.perl); the two agree whenever no collision
    is hit (test_tokenized_bleu_equals_fairseqs_scorer, and the IWSLT recipe test's trained teacher)."""
    from fairseq.data.dictionary import Dictionary
    from fairseq.scoring import bleu

    d = Dictionary()
    for i in range(140):
        d.add_symbol(f"w{i}")
    assert [d.index(w) for w in ("w116", "w117", "w130", "w131")] == [120, 121, 134, 135]
    scorer = bleu.Scorer(bleu.BleuConfig(pad=d.pad(), eos=d.eos(), unk=d.unk()))
    scorer.add(d.encode_line("w130 w131"), d.encode_line("w116 w117"))
    assert (scorer.stat.match1, scorer.stat.match2) == (0, 1)  # a bigram "match" between different bigrams
    assert score(["w116 w117"], ["w130 w131"], "tokenized")["bleu_tok_detail"].startswith("BLEU = 0.00 0.0/0.0/")
