"""sentencepiece + fairseq-preprocess on tiny data (joint and separate vocabularies), and skip-when-done."""

import json

import pytest

from data_prep import parallel
from data_prep.subword import decode_lines
from helpers import require_fairseq

require_fairseq()  # fairseq-preprocess

DE = ["Das ist Satz Nummer {i} über die Welt.", "Wir sehen {i} Häuser und einen Baum.", "Er sagte: Ich komme {i} Mal."]
EN = ["This is sentence number {i} about the world.", "We see {i} houses and a tree.", "He said: I come {i} times."]


@pytest.mark.slow
def test_sentencepiece_and_fairseq_preprocess(tmp_path, capsys):
    src, tgt = tmp_path / "c.de", tmp_path / "c.en"
    src.write_text("\n".join(DE[i % 3].format(i=i) for i in range(90)) + "\n", encoding="utf-8")
    tgt.write_text("\n".join(EN[i % 3].format(i=i) for i in range(90)) + "\n", encoding="utf-8")
    out = tmp_path / "joint"
    argv = ["--src", str(src), "--tgt", str(tgt), "--src-lang", "de", "--tgt-lang", "en", "--valid-size", "5",
            "--test-size", "7", "--vocab-size", "80", "--workers", "1", "--out", str(out)]
    assert parallel.main(argv) == 0
    b = out / "bin"
    for split, n in (("train", 78), ("valid", 5), ("test", 7)):
        for lang in ("de", "en"):
            assert (b / f"{split}.de-en.{lang}.bin").is_file() and (b / f"{split}.de-en.{lang}.idx").is_file()
            assert len((out / "spm" / f"{split}.{lang}").read_text().splitlines()) == n
    assert (b / "dict.de.txt").read_text() == (b / "dict.en.txt").read_text()  # joined dictionary
    pieces = (out / "spm" / "test.en").read_text(encoding="utf-8").splitlines()
    assert decode_lines(out / "spm" / "spm.model", pieces) == (out / "raw" / "test.en").read_text(encoding="utf-8").splitlines()
    from fairseq.data import data_utils, Dictionary

    d = Dictionary.load(str(b / "dict.en.txt"))
    ds = data_utils.load_indexed_dataset(str(b / "test.de-en.en"), d)
    assert len(ds) == 7 and d.string(ds[0]) == pieces[0]
    summary = json.loads((out / "manifest.json").read_text())
    assert summary["bin"] == str(b) and summary["pairs"] == {"train": 78, "valid": 5, "test": 7}
    bm = json.loads((out / "manifest.bin.json").read_text())
    assert "--joined-dictionary" in bm["stats"]["fairseq_preprocess"]
    capsys.readouterr()
    assert parallel.main(argv) == 0  # all four steps skipped: fast
    assert capsys.readouterr().err.count("skip: ") == 4

    sep = tmp_path / "sep"
    assert parallel.main(argv[:-2] + ["--out", str(sep), "--separate"]) == 0
    assert (sep / "spm" / "spm.de.model").is_file() and (sep / "spm" / "spm.en.model").is_file()
    assert (sep / "bin" / "dict.de.txt").read_text() != (sep / "bin" / "dict.en.txt").read_text()
    assert "--joined-dictionary" not in json.loads((sep / "manifest.bin.json").read_text())["stats"]["fairseq_preprocess"]
