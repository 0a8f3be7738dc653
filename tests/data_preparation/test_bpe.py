"""data_prep/bpe.py applies BPE codes as subword-nmt's apply_bpe does: golden outputs made with subword-nmt 0.3.8
(tests/data_preparation/data/bpe_golden.json), and the installed subword-nmt itself on random text and codes
(requirements.txt pins it as the reference), for both code versions and fastBPE's counted format."""

import io
import json
import random
from pathlib import Path

import pytest

from data_prep.bpe import BpeCodes
from data_prep.common import DataPrepError

GOLDEN = json.loads((Path(__file__).parent / "data" / "bpe_golden.json").read_text(encoding="utf-8"))


def codes_file(tmp_path, text, name="codes"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return BpeCodes(path)


def test_golden_outputs_of_subword_nmt(tmp_path):
    bpe = codes_file(tmp_path, GOLDEN["codes"])
    assert bpe.version == (0, 2)
    assert [bpe.line(line) for line in GOLDEN["lines"]] == GOLDEN["segmented"]


def test_hand_worked_merges(tmp_path):
    # merges by rank: "l o" first, then "lo w</w>", then "e r</w>"; v0.2 marks the last character
    bpe = codes_file(tmp_path, "#version: 0.2\nl o\nlo w</w>\ne r</w>\n")
    assert bpe.line("low lower lowest") == "low lo@@ w@@ er lo@@ w@@ e@@ s@@ t"
    # overlapping occurrences merge left to right (x x x -> xx x)
    assert codes_file(tmp_path, "#version: 0.2\nx x\n", "c2").line("xxx") == "xx@@ x"


@pytest.mark.parametrize("version", ["0.2", "0.1", "fastbpe"])
def test_equal_to_subword_nmt_on_random_text(tmp_path, version):
    from subword_nmt.apply_bpe import BPE
    from subword_nmt.learn_bpe import learn_bpe

    rng = random.Random(version)
    alphabet = "abcdefgh\u00e9\u00df"
    words = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10))) for _ in range(500)]
    corpus = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 15))) for _ in range(400)]
    out = io.StringIO()
    learn_bpe(io.StringIO("\n".join(corpus)), out, 300, min_frequency=2, is_dict=False)
    text = out.getvalue()
    if version == "0.1":
        text = "\n".join(text.splitlines()[1:]) + "\n"
    ours_text = text
    if version == "fastbpe":  # fastBPE: no header, each merge with its count; segments as subword-nmt 0.2
        ours_text = "".join(f"{line} {100 - i}\n" for i, line in enumerate(text.splitlines()[1:]))
    ours = codes_file(tmp_path, ours_text)
    ref = BPE(io.StringIO(text))
    lines = corpus[:100] + [" ".join(rng.choice(alphabet) * 2 + rng.choice(words) for _ in range(5)) for _ in range(100)]
    assert [ours.line(line) for line in lines] == [ref.segment(line) for line in lines]


@pytest.mark.parametrize("text, message", [
    ("#version: 0.2\na b c d\n", "line 2 is not a BPE merge"),
    ("#version: 0.3\na b\n", "BPE codes version 0.3; expected 0.1 or 0.2"),
    ("#version: 0.2\n", "no BPE merges"),
])
def test_bad_codes_are_one_line(tmp_path, text, message):
    with pytest.raises(DataPrepError, match=message):
        codes_file(tmp_path, text)
