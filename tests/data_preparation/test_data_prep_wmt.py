"""data_prep.wmt on the statmt.org archives in their real layout, served by a file:// mirror: which files
are used (news-commentary by version number, test-full's newstest2014), the untouched reference,
normalisation on training text only, streaming extraction, and the errors."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

from corpus_fixtures import WMT_TEST_DE, wmt_archives, wmt_sgm, write_tgz
from data_prep import wmt

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--vocab-size", "60", "--no-binarize", "--jobs", "1"]


def test_wmt_from_a_mirror(tmp_path, capsys):
    srv = wmt_archives(tmp_path / "srv")
    out = tmp_path / "out"
    assert wmt.main(["--mirror", srv.as_uri(), "--cache-dir", str(tmp_path / "cache"), "--out", str(out)] + FAST) == 0
    err = capsys.readouterr().err
    assert f"downloading {srv.as_uri()}/training-parallel-nc-v12.tgz" in err  # fairseq's default: WMT17's v12
    assert "news commentary: news-commentary-v12.de-en (v12: not the WMT14 release; v9 is)" in err
    assert "but sacrebleu records a8cd784e006feb32ac6f3d9ec7eb389a for WMT14's test-full.tgz" in err
    assert "3 segments, but newstest2014 (WMT14 test-full) has 3,003" in err
    raw = {f"{s}.{lang}": (out / "raw" / f"{s}.{lang}").read_text(encoding="utf-8").splitlines()
           for s in ("train", "valid", "test") for lang in ("en", "de")}
    assert [len(raw[f"{s}.de"]) for s in ("train", "valid", "test")] == [357, 3, 3]  # 360 pairs, every 100th -> valid
    # training text: normalize-punctuation (quotes, NBSP), non-printing characters -> space, tokenizer -a, escaped
    assert "Er sagte : &quot; Ja &quot; und ging ." in raw["train.de"]
    # test: tokenizer -a only, never normalised („ “ stay); the untouched reference as sacrebleu reads the sgm
    assert raw["test.de"][1] == "Er sagte : „ Wir werden sehen . “"
    assert raw["test.en"][0] == "A well @-@ known test of the system ."
    assert (out / "ref" / "test.de").read_text(encoding="utf-8").splitlines() == \
        [" ".join(s.split()) for s in WMT_TEST_DE]
    ref_man = json.loads((out / "ref" / "manifest.json").read_text())
    assert ref_man["stats"]["segments"] == {"got": 3, "newstest2014": 3003}
    assert ref_man["stats"]["test_full_md5"]["ok"] is False
    scoring = json.loads((out / "manifest.json").read_text())["scoring"]
    assert scoring["convention"] == "wmt14" and scoring["compound_split"] is True and scoring["lang"] == "de"
    stats = json.loads((out / "raw" / "manifest.json").read_text())["stats"]
    assert stats["train_filter"]["input"] == 357 and stats["valid_filter"]["kept"] == 3
    # the spm sample is seeded and the normalisation identity: hypotheses stay in the references' characters
    spm = json.loads((out / "spm" / "manifest.train.json").read_text())["options"]
    assert spm["normalization"] == "identity" and spm["seed"] == 1


def _unpack_all(srv: Path, raw: Path):
    for a in srv.glob("*.tgz"):
        with tarfile.open(a) as t:
            t.extractall(raw, filter="data")


def test_raw_dir_versions_and_the_pinned_test_set(tmp_path, capsys):
    raw = tmp_path / "raw"
    _unpack_all(wmt_archives(tmp_path / "srv", nc_versions=(9, 12)), raw)
    # WMT17's dev.tgz carries a 2,737-segment newstest2014 under dev/: never the one used
    write_tgz(tmp_path / "dev.tgz", {"dev/newstest2014-deen-ref.de.sgm": wmt_sgm("ref", "de", ["Falsch."]),
                                     "dev/newstest2014-deen-src.en.sgm": wmt_sgm("src", "en", ["Wrong."])})
    with tarfile.open(tmp_path / "dev.tgz") as t:
        t.extractall(raw, filter="data")
    (raw / "test-full.tgz").write_bytes((tmp_path / "srv" / "test-full.tgz").read_bytes())
    out = tmp_path / "out"
    assert wmt.main(["--raw-dir", str(raw), "--out", str(out)] + FAST) == 0
    err = capsys.readouterr().err
    assert "news-commentary-v12.de-en (v12" in err  # 12 > 9 as numbers
    assert f"WARNING: {raw / 'test-full.tgz'}: md5 " in err  # an archive kept in --raw-dir is checked too
    assert (out / "ref" / "test.de").read_text(encoding="utf-8").splitlines()[0] == WMT_TEST_DE[0]
    assert wmt.main(["--raw-dir", str(raw), "--news-commentary-version", "9", "--out", str(tmp_path / "o9")] + FAST) == 0
    assert "news-commentary-v9.de-en (v9: WMT14 proper)" in capsys.readouterr().err
    assert wmt.nc_version_of(Path("news-commentary-v12.de-en.de")) == 12


def test_errors_are_one_line(tmp_path, capsys):
    raw = tmp_path / "raw"
    _unpack_all(wmt_archives(tmp_path / "srv"), raw)
    en = raw / "training" / "europarl-v7.de-en.en"
    en.write_text(en.read_text() + "one more line\n")
    assert wmt.main(["--raw-dir", str(raw), "--out", str(tmp_path / "o")] + FAST) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"python -m data_prep.wmt: error: parallel files are misaligned: {raw / 'training' / 'europarl-v7.de-en.de'} "
                   f"ends at line 120, {en} goes on")
    assert wmt.main(["--local", str(tmp_path / "srv" / "test-full.tgz"), "--local", str(en),
                     "--out", str(tmp_path / "o")] + FAST) == 2
    assert f"--local {en}: not one of the archives needed" in capsys.readouterr().err
    assert wmt.main(["--raw-dir", str(raw), "--corpora", "europarl,paracrawl", "--out", str(tmp_path / "o")] + FAST) == 2
    assert "--corpora 'europarl,paracrawl': expected names from europarl, commoncrawl, news-commentary" in capsys.readouterr().err
    mirror = "http://127.0.0.1:9/wmt"
    p = subprocess.run([sys.executable, "-m", "data_prep.wmt", "--mirror", mirror, "--cache-dir", str(tmp_path / "c"),
                        "--out", str(tmp_path / "o"), *FAST], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith(f"python -m data_prep.wmt: error: cannot download {mirror}/training-parallel-europarl-v7.tgz (")
    assert "pass --local FILE (or the unpacked WMT files with --raw-dir DIR)" in last


def test_training_corpus_is_streamed(tmp_path):
    """extract() hands the pipeline streams, read as they are written: the corpus is never held whole."""
    raw = tmp_path / "raw"
    _unpack_all(wmt_archives(tmp_path / "srv"), raw)
    files = [(raw / "training" / "europarl-v7.de-en.en", raw / "training" / "europarl-v7.de-en.de")]
    test = wmt.find_test([raw], "en", "de")
    splits, stats = wmt.extract(files, test, "en", "de", jobs=1)
    assert not isinstance(splits["train"], list) and callable(stats["filters"])
    first = next(iter(splits["train"]))
    assert first == ("This is sentence number 0 about the world .", "Das ist Satz Nummer 0 über die Welt .")


def test_local_archives_need_no_network(tmp_path, capsys):
    srv = wmt_archives(tmp_path / "srv", nc_versions=(9,))
    local = [a for name in ("training-parallel-europarl-v7.tgz", "training-parallel-commoncrawl.tgz",
                            "training-parallel-nc-v9.tgz", "test-full.tgz") for a in ("--local", str(srv / name))]
    out = tmp_path / "out"
    argv = local + ["--news-commentary-version", "9", "--mirror", "http://127.0.0.1:9/none",
                    "--cache-dir", str(tmp_path / "cache"), "--out", str(out)] + FAST
    assert wmt.main(argv) == 0
    err = capsys.readouterr().err
    assert "downloading" not in err and "news-commentary-v9.de-en (v9: WMT14 proper)" in err
    assert len(list((tmp_path / "cache" / "unpacked").iterdir())) == 4
    assert wmt.main(argv) == 0  # a rerun reuses the unpacked archives and skips every finished step
    err = capsys.readouterr().err
    assert "unpacking" not in err and err.count("skip: ") == 4
