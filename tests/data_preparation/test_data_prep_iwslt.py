"""data_prep.iwslt on an archive in the real 2014-01 layout, served through file:// URLs: fairseq's
prepare-iwslt14.sh filters, the count checks, the download cache, atomic unpacking and the errors."""

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from corpus_fixtures import iwslt_files, write_iwslt_archive, write_tgz
from data_prep import iwslt, moses
from data_prep.text import filter_pairs

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--vocab-size", "60", "--no-binarize", "--jobs", "1"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "data_prep.iwslt", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)


@pytest.fixture
def archive(tmp_path):
    return write_iwslt_archive(tmp_path / "srv" / "de-en.tgz")


def test_fairseq_preparation_from_file_url(archive, tmp_path, capsys):
    out, cache = tmp_path / "out", tmp_path / "cache"
    assert iwslt.main(["--url", archive.as_uri(), "--cache-dir", str(cache), "--out", str(out)] + FAST) == 0
    err = capsys.readouterr().err
    # 3 talks x 30 lines + their <title> and <description> lines; fairseq's clean-corpus drops 3
    assert "iwslt train.tags: kept 93 of 96 pairs; dropped: empty 1 (e.g. pair 23); length 1 (e.g. pair 45); " \
           "ratio 1 (e.g. pair 13)" in err
    # not the official archive: every count differs from fairseq's, loudly, with both numbers
    assert "WARNING: iwslt14 de-en: into cleaning: 96 pairs, but fairseq's prepare-iwslt14.sh gives 174,443" in err
    assert "kept: 93 pairs, but fairseq's prepare-iwslt14.sh gives 167,522" in err
    assert "train: 89 pairs, but fairseq's prepare-iwslt14.sh gives 160,239" in err
    assert "valid: 4 pairs, but fairseq's prepare-iwslt14.sh gives 7,283" in err
    assert "test: 15 pairs, but fairseq's prepare-iwslt14.sh gives 6,750" in err
    man = json.loads((out / "raw" / "manifest.json").read_text())
    assert man["stats"]["fairseq_counts"]["kept"] == {"got": 93, "fairseq": 167522}
    assert man["stats"]["pairs"] == {"train": 89, "valid": 4, "test": 15}
    assert man["stats"]["test_sets"] == {s: 3 for s in iwslt.TEST_SETS}

    raw = {f"{s}.{lang}": (out / "raw" / f"{s}.{lang}").read_text(encoding="utf-8").splitlines()
           for s in ("train", "valid", "test") for lang in ("de", "en")}
    # <url>, <talkid>, <keywords> lines dropped; <title>/<description> tags deleted, their text kept
    assert raw["train.de"][:2] == ["jane doe : über die welt", "ted talk subtitles and transcript : über die welt 1 ."]
    assert not any("<" in line or "http" in line or "talks , science" in line for line in raw["train.de"] + raw["train.en"])
    # tokenizer.perl's default escaping, then lowercase.perl
    assert 'he said : &quot; i &apos;m coming 2 times . &quot;' in raw["train.en"]
    assert "a &#124; b is equal ." in raw["train.en"]  # '|' survives as &#124; (clean-corpus would delete a bare one)
    # valid = every 23rd kept pair: the 23rd is line 22 of talk 1 (2 header lines, lines 10 and 20 dropped)
    assert raw["valid.de"][0] == "das wetter ist heute 22 grad warm ."
    assert len(raw["valid.de"]) == 4 and len(raw["train.de"]) == 89
    # test = dev2010, TEDX dev2012, tst2010, tst2011, tst2012 in that order; ’ -> ' before tokenising
    assert raw["test.en"][0] == "that &apos;s it , she said ."
    assert raw["test.de"][0] == "das ist &apos; s , sagte sie ."
    assert raw["test.en"][3] == "we see 103 houses and a tree ."  # the first of TEDX dev2012
    assert raw["test.en"][-1] == "this is sentence number 114 about the world ."  # the last of tst2012
    summary = json.loads((out / "manifest.json").read_text())
    assert summary["scoring"]["convention"] == "tokenized"
    assert summary["scoring"]["text"].startswith("lowercased Moses-tokenised")


def test_test_segments_as_fairseqs_sed():
    f = iwslt_files()["de-en/IWSLT14.TED.dev2010.de-en.en.xml"]
    lines = [line for line in f.splitlines() if "<seg id" in line]
    assert lines[0] == '<seg id="1"> That’s it, she said. </seg>'


def test_train_tag_filter_is_fairseqs():
    assert iwslt.clean_train_line("<url>http://www.ted.com/x</url>") is None
    assert iwslt.clean_train_line("<talkid>12</talkid>") is None
    assert iwslt.clean_train_line("  <keywords>a, b</keywords>") is None
    assert iwslt.clean_train_line("<title>Jane: A title</title>") == "Jane: A title"
    assert iwslt.clean_train_line("<description>Text</description>") == "Text"
    assert iwslt.clean_train_line("Er sagte <title> zweimal.") == "Er sagte  zweimal."  # sed s/<title>//g anywhere
    assert iwslt.clean_train_line("<speaker>Jane Doe</speaker>") == "<speaker>Jane Doe</speaker>"  # fairseq keeps it


def test_clean_corpus_n_semantics():
    # clean-corpus-n.perl: '|' deleted unless the first pair has one; white space collapsed; 1000-char words
    kept, rep = filter_pairs([("a  b\t", "x y"), ("c|d e", "z w"), ("a " + "w" * 1001, "x y"), ("a b c", "x")],
                             min_len=1, max_len=175, ratio=1.5, moses=True)
    assert kept == [("a b", "x y"), ("cd e", "z w")]
    assert rep["dropped"] == {"empty": 0, "length": 0, "ratio": 1, "word_length": 1}
    kept, _ = filter_pairs([("a | b", "x | y"), ("c|d", "z")], max_len=175, ratio=9, moses=True)
    assert kept == [("a | b", "x | y"), ("c|d", "z")]  # a factored corpus keeps its bars


def test_download_cache_is_keyed_by_content(archive, tmp_path, capsys):
    cache = tmp_path / "cache"
    args = ["--cache-dir", str(cache), "--test-sets", "tst2010"] + FAST
    assert iwslt.main(["--url", archive.as_uri(), "--out", str(tmp_path / "a")] + args) == 0
    first = capsys.readouterr().err
    assert f"downloading {archive.as_uri()}" in first and "unpacking" in first
    assert iwslt.main(["--url", archive.as_uri(), "--out", str(tmp_path / "b")] + args) == 0
    second = capsys.readouterr().err
    assert "downloading" not in second and "unpacking" not in second and f"cached: {archive.as_uri()}" in second
    # another archive with the same file name is unpacked anew, never confused with the cached one
    files = iwslt_files()
    files["de-en/IWSLT14.TED.tst2010.de-en.en.xml"] = files["de-en/IWSLT14.TED.tst2010.de-en.en.xml"].replace(
        "The weather is 106", "Another reference 106")
    other = write_tgz(tmp_path / "elsewhere" / "de-en.tgz", files)
    assert iwslt.main(["--local", str(other), "--out", str(tmp_path / "c")] + args) == 0
    assert "unpacking" in capsys.readouterr().err
    assert len(list((cache / "unpacked").iterdir())) == 2
    assert (tmp_path / "c" / "raw" / "test.en").read_text() != (tmp_path / "a" / "raw" / "test.en").read_text()


def test_interrupted_unpack_never_looks_complete(archive, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    real = tarfile.TarFile.extractall

    def half_then_interrupt(self, path, *a, **k):
        members = self.getmembers()
        real(self, path, members=members[:2], *a, **k)
        raise KeyboardInterrupt

    monkeypatch.setattr(tarfile.TarFile, "extractall", half_then_interrupt)
    argv = ["--local", str(archive), "--cache-dir", str(cache), "--out", str(tmp_path / "o"), "--test-sets", "tst2010"] + FAST
    assert iwslt.main(argv) == 130
    assert list((cache / "unpacked").iterdir()) == []  # no half folder, no temporary left behind
    monkeypatch.setattr(tarfile.TarFile, "extractall", real)
    assert iwslt.main(argv) == 0


def test_archive_errors_are_one_line(archive, tmp_path):
    broken = tmp_path / "srv2" / "de-en.tgz"
    broken.parent.mkdir()
    broken.write_bytes(archive.read_bytes()[:400])  # a truncated download
    p = _cli("--local", broken, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "o", *FAST)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    err = [line for line in p.stderr.strip().splitlines() if not line.startswith("unpacking")]
    assert len(err) == 1 and err[0].startswith(f"python -m data_prep.iwslt: error: {broken}: not a readable .tgz/.zip archive")
    assert not list((tmp_path / "cache" / "unpacked").iterdir())
    # the same bytes downloaded: the bad download is deleted, so that a rerun fetches it again
    p = _cli("--url", broken.as_uri(), "--cache-dir", tmp_path / "cache", "--out", tmp_path / "o", *FAST)
    assert p.returncode == 2 and "the download is not a readable archive" in p.stderr and "rerun" in p.stderr
    assert not list((tmp_path / "cache" / "downloads").rglob("de-en.tgz"))


def test_unreachable_network_is_one_line(tmp_path):
    url = "http://127.0.0.1:9/fairseq/data/iwslt14/de-en.tgz"  # nothing listens on the discard port
    p = _cli("--url", url, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "o", *FAST)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    err = [line for line in p.stderr.strip().splitlines() if not line.startswith("downloading")]
    assert len(err) == 1 and err[0].startswith(f"python -m data_prep.iwslt: error: cannot download {url} (")
    assert err[0].endswith("download the IWSLT14 archive elsewhere and pass --local FILE")
    missing = (tmp_path / "nothing.tgz").as_uri()
    p = _cli("--url", missing, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "o", *FAST)
    assert p.returncode == 2 and f"cannot download {missing}" in p.stderr and "--local FILE" in p.stderr


def test_pairs_without_a_live_host_are_refused(tmp_path, capsys):
    assert iwslt.main(["--src", "fr", "--tgt", "en", "--cache-dir", str(tmp_path), "--out", str(tmp_path / "o")] + FAST) == 2
    err = capsys.readouterr().err.strip()
    assert "no live download for IWSLT14 fr-en: wit3.fbk.eu no longer serves the 2014-01 archives" in err
    assert "pass --local FILE" in err and len(err.splitlines()) == 1
    assert iwslt.default_url("en", "de") == iwslt.FAIRSEQ_URL  # fairseq's mirror of de-en.tgz, either direction


def test_reverse_pair_and_missing_sets(archive, tmp_path, capsys):
    folder = tmp_path / "unpacked"
    with tarfile.open(archive) as t:
        t.extractall(folder, filter="data")
    assert iwslt.main(["--src", "en", "--tgt", "de", "--local", str(folder), "--test-sets", "tst2010",
                       "--out", str(tmp_path / "ende")] + FAST) == 0
    assert (tmp_path / "ende" / "raw" / "test.en").read_text().splitlines()[0] == "the weather is 106 degrees warm today ."
    (folder / "de-en" / "IWSLT14.TED.tst2012.de-en.de.xml").unlink()
    assert iwslt.main(["--local", str(folder), "--out", str(tmp_path / "o")] + FAST) == 2
    assert f"test set tst2012: no IWSLT*.tst2012.de-en.de.xml in {folder / 'de-en'}" in capsys.readouterr().err


# --------------------------------------------------------------------------- Moses parity (perl)
def test_moses_parity_with_the_perl_scripts():
    # remove-non-printing-char.perl turns \p{C} into a space (sacremoses' option deletes it)
    assert moses.remove_non_printing("a\x07b\tc\u200bd\u00ade") == "a b c d e"
    assert moses.tokenize(["Glocke\x07läutet"], "de", normalize=True) == ["Glocke läutet"]
    # normalize-punctuation.perl maps a lone ’ to " (sacremoses does so only with perl_parity)
    assert moses.tokenize(["’Hallo’ sagte er"], "de", normalize=True) == ["&quot; Hallo &quot; sagte er"]
    # tokenizer.perl always splits the period of the last word, non-breaking prefix or not
    assert moses.tokenize(["Das steht in Kapitel 1."], "de") == ["Das steht in Kapitel 1 ."]
    assert moses.tokenize(["Er kam am 3. Mai."], "de") == ["Er kam am 3. Mai ."]
    assert moses.tokenize(["Hello Mr. Smith."], "en") == ["Hello Mr. Smith ."]
    # tokenizer.perl pads the line with spaces, so line-initial and line-final apostrophes split
    assert moses.tokenize(["'Tis the dogs'"], "en", escape=False) == ["' Tis the dogs '"]
    assert moses.tokenize(["It's 1990's"], "en", escape=False) == ["It 's 1990 's"]
    # default escaping as tokenizer.perl; -no-escape
    assert moses.tokenize(["a|b & 'c' d"], "en") == ["a &#124; b &amp; &apos; c &apos; d"]
    assert moses.tokenize(["a|b & 'c' d"], "en", escape=False) == ["a | b & ' c ' d"]
