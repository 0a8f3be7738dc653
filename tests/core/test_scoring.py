"""`lskd score`: corpus order from fairseq-generate output, sacrebleu scores, and its refusals."""

import json

import pytest

from lskd.errors import LskdError
from lskd.scoring import main

GEN = """S-1\tein haus
T-1\ta small house in the village
H-1\t-0.5\t\u2581a \u2581small \u2581house
D-1\t-0.5\ta small house in the village
P-1\t-0.1 -0.2
S-0\tder hund bellt
D-0\t-0.3\tthe old dog barks at night
"""


def test_scores_in_corpus_order(tmp_path):
    (tmp_path / "gen.out").write_text(GEN)
    (tmp_path / "ref.txt").write_text("the old dog barks at night\na small house in the village\n")
    assert main(["--generate", str(tmp_path / "gen.out"), "--ref", str(tmp_path / "ref.txt"),
                 "--out", str(tmp_path / "score.json"), "--meta", "role=student", "temperature=2"]) == 0
    score = json.loads((tmp_path / "score.json").read_text())
    assert score["bleu"] == 100.0 and score["chrf"] == 100.0 and score["n_sentences"] == 2
    assert score["role"] == "student" and score["temperature"] == 2
    assert score["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")


def test_missing_hypothesis_is_refused(tmp_path):
    (tmp_path / "gen.out").write_text(GEN)
    (tmp_path / "ref.txt").write_text("the old dog barks at night\na small house in the village\nthird\n")
    with pytest.raises(LskdError, match=r"2 hypotheses for 3 references \(missing ids \[2\].*--required-batch-size-multiple 1"):
        main(["--generate", str(tmp_path / "gen.out"), "--ref", str(tmp_path / "ref.txt"), "--out", str(tmp_path / "s.json")])
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize("args, message", [
    (["--hyp", "{d}/hyp.txt", "--ref", "{d}/ref.txt"], "--hyp {d}/hyp.txt: 1 lines, --ref {d}/ref.txt: 2 lines (expected equal)"),
    (["--generate", "{d}/nope.out", "--ref", "{d}/ref.txt"], "--generate {d}/nope.out: no such file"),
    (["--generate", "{d}/hyp.txt", "--ref", "{d}/ref.txt"], "--generate {d}/hyp.txt: no 'D-<id>' lines"),
    (["--hyp", "{d}/hyp.txt", "--ref", "{d}/ref.txt", "--meta", "role"], "--meta 'role': expected KEY=VALUE"),
])
def test_bad_input(tmp_path, args, message):
    (tmp_path / "hyp.txt").write_text("one line\n")
    (tmp_path / "ref.txt").write_text("two\nlines\n")
    with pytest.raises(LskdError) as info:
        main([a.format(d=tmp_path) for a in args])
    assert message.format(d=tmp_path) in str(info.value)


def test_tokenised_references_without_a_manifest_are_refused(tmp_path):
    refs = ["He said : &quot; yes &quot; .", "It &apos;s here ."] * 3
    (tmp_path / "ref.txt").write_text("\n".join(refs) + "\n")
    (tmp_path / "hyp.txt").write_text("\n".join(refs) + "\n")
    with pytest.raises(LskdError, match=r"looks Moses-tokenised \(it holds Moses escapes \(&apos;, &quot;\)\)"):
        main(["--hyp", str(tmp_path / "hyp.txt"), "--ref", str(tmp_path / "ref.txt")])
    assert main(["--hyp", str(tmp_path / "hyp.txt"), "--ref", str(tmp_path / "ref.txt"), "--convention", "tokenized"]) == 0


def test_moses_tokenised_hypotheses_against_untouched_references(tmp_path, capsys):
    (tmp_path / "ref.txt").write_text('He said: "yes".\nIt\'s here.\n')
    (tmp_path / "hyp.txt").write_text("He said : &quot; yes &quot; .\nIt &apos;s here .\n")
    assert main(["--hyp", str(tmp_path / "hyp.txt"), "--ref", str(tmp_path / "ref.txt"), "--detokenize", "moses",
                 "--lang", "en", "--out", str(tmp_path / "s.json")]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["bleu"] == 100 and "Moses-detokenised hypotheses (en)" in s["conventions"]["bleu"]
