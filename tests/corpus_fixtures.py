"""Tiny IWSLT14 and WMT14 archives in the real layouts (file names, tag lines, XML/SGM formats),
built by the tests themselves (nothing downloaded, no binaries committed)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Dict, List, Sequence

DE = ["Das ist Satz Nummer {i} über die Welt.", "Wir sehen {i} Häuser und einen Baum.",
      "Er sagte: „Ich komme {i} Mal.“", "Sie hat {i} Bücher gelesen, und sie mag sie.",
      "Das Wetter ist heute {i} Grad warm.", "Kinder spielen im Garten mit {i} Bällen."]
EN = ["This is sentence number {i} about the world.", "We see {i} houses and a tree.",
      "He said: \"I'm coming {i} times.\"", "She has read {i} books, and she likes them.",
      "The weather is {i} degrees warm today.", "Children play in the garden with {i} balls."]

IWSLT_SETS = [("TED", "dev2010"), ("TEDX", "dev2012"), ("TED", "tst2010"), ("TED", "tst2011"), ("TED", "tst2012")]
LANG_NAME = {"de": "german", "en": "english"}


def lines(n: int, templates: Sequence[str], start: int = 0) -> List[str]:
    return [templates[i % len(templates)].format(i=i) for i in range(start, start + n)]


def _add(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode("utf-8")
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_tgz(path: Path, files: Dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as t:
        for name, text in files.items():
            _add(t, name, text)
    return path


# ------------------------------------------------------------------------------------------ IWSLT14
def talk_header(talk: int, lang: str) -> List[str]:
    """The tag lines that open each talk in the 2014 release's train.tags.de-en.* files."""
    title = "Über die Welt" if lang == "de" else "About the world"
    return [f"<url>http://www.ted.com/talks/lang/{lang}/jane_doe_{talk}.html</url>",
            "<keywords>talks, science, world</keywords>",
            f"<talkid>{talk}</talkid>",
            f"<title>Jane Doe: {title}</title>",
            f"<description>TED Talk Subtitles and Transcript: {title} {talk}.</description>"]


def iwslt_xml(lang: str, set_name: str, talk: int, segs: Sequence[str]) -> str:
    """An IWSLT14.TED*.de-en.LANG.xml file: the source side is a <srcset>, the target side a <refset>."""
    setid = f"IWSLT14.{set_name}"
    opener = (f'<srcset setid="{setid}" srclang="german">' if lang == "de" else
              f'<refset setid="{setid}" srclang="german" trglang="english" refid="ref">')
    head = ['<?xml version="1.0" encoding="UTF-8"?>', "<mteval>", opener,
            f'<doc docid="{talk}" genre="lectures">',
            f"<url>http://www.ted.com/talks/talk_{talk}.html</url>",
            "<description>TED Talk Subtitles and Transcript: a talk</description>",
            "<keywords>talks, science</keywords>", f"<talkid>{talk}</talkid>", "<title>A talk</title>"]
    body = [f'<seg id="{i}"> {s} </seg>' for i, s in enumerate(segs, 1)]
    close = "</srcset>" if lang == "de" else "</refset>"
    return "\n".join(head + body + ["</doc>", close, "</mteval>"]) + "\n"


def iwslt_sides(n_train: int = 90):
    """(train de lines, train en lines, {set: (de segs, en segs)}) with the cases the filters must meet."""
    de, en = lines(n_train, DE), lines(n_train, EN)
    de[10], en[10] = "Ja.", "Yes, and this English side is far far far too long for its German side."  # ratio
    de[20], en[20] = "", "Only one side has text."  # empty -> dropped by clean-corpus
    de[30], en[30] = "A | B ist gleich.", "A | B is equal."  # '|' is escaped by the tokenizer, so kept
    de[40], en[40] = " ".join(["Wort"] * 180), " ".join(["word"] * 180)  # over 175 words
    tests = {}
    for k, (kind, name) in enumerate(IWSLT_SETS):
        d = lines(3, DE, start=100 + 3 * k)
        e = lines(3, EN, start=100 + 3 * k)
        if name == "dev2010":
            d[0], e[0] = "Das ist’s, sagte sie.", "That’s it, she said."  # ’ -> '
        tests[name] = (d, e)
    return de, en, tests


def iwslt_files(n_train: int = 90, talk_size: int = 30) -> Dict[str, str]:
    """The members of de-en.tgz (2014-01 release layout)."""
    de, en, tests = iwslt_sides(n_train)
    files = {}
    for lang, body in (("de", de), ("en", en)):
        out = []
        for start in range(0, len(body), talk_size):
            out += talk_header(start // talk_size + 1, lang) + body[start:start + talk_size]
        files[f"de-en/train.tags.de-en.{lang}"] = "\n".join(out) + "\n"
    for k, (kind, name) in enumerate(IWSLT_SETS):
        for i, lang in enumerate(("de", "en")):
            files[f"de-en/IWSLT14.{kind}.{name}.de-en.{lang}.xml"] = iwslt_xml(lang, f"{kind}.{name}", 500 + k, tests[name][i])
    files["de-en/README"] = "IWSLT 2014 evaluation campaign: TED talks, German-English.\n"
    files["de-en/train.en"] = "\n".join(lines(5, EN)) + "\n"
    return files


def write_iwslt_archive(path: Path, **kw) -> Path:
    return write_tgz(path, iwslt_files(**kw))


# -------------------------------------------------------------------------------------------- WMT14
def wmt_sgm(kind: str, lang: str, segs: Sequence[str], setid: str = "newstest2014") -> str:
    """A WMT14 test-full .sgm file (srcset or refset, documents with <p> paragraphs)."""
    opener = (f'<srcset setid="{setid}" srclang="any">' if kind == "src" else
              f'<refset setid="{setid}" srclang="any" trglang="{lang}">')
    out = [opener, '<doc sysid="ref" docid="1012-bbc" genre="news" origlang="en">', "<p>"]
    out += [f'<seg id="{i}">{s}</seg>' for i, s in enumerate(segs, 1)]
    out += ["</p>", "</doc>", "</srcset>" if kind == "src" else "</refset>"]
    return "\n".join(out) + "\n"


WMT_TEST_EN = ["A well-known test of the system.", "He said: \u201cWe will see.\u201d", "Prices rose  by 5 %."]
WMT_TEST_DE = ["Ein allseits bekannter Test des Systems.", "Er sagte: \u201eWir werden sehen.\u201c",
               "Die Preise stiegen  um 5 %."]


def wmt_archives(folder: Path, n: int = 120, nc_versions=(12,), test_en=WMT_TEST_EN, test_de=WMT_TEST_DE) -> Path:
    """The statmt.org archives fairseq's prepare-wmt14en2de.sh downloads, under their own file names."""
    folder.mkdir(parents=True, exist_ok=True)
    de, en = lines(n, DE), lines(n, EN)
    de[5] = "Er sagte:\u00a0\u201eJa\u201c\u2009\x07und ging."  # normalize-punctuation + non-printing chars
    write_tgz(folder / "training-parallel-europarl-v7.tgz", {
        "training/europarl-v7.de-en.de": "\n".join(de) + "\n", "training/europarl-v7.de-en.en": "\n".join(en) + "\n",
        "training/europarl-v7.fr-en.fr": "Bonjour.\n", "training/europarl-v7.fr-en.en": "Hello.\n"})
    write_tgz(folder / "training-parallel-commoncrawl.tgz", {
        "commoncrawl.de-en.de": "\n".join(lines(n, DE, 7)) + "\n",
        "commoncrawl.de-en.en": "\n".join(lines(n, EN, 7)) + "\n",
        "commoncrawl.de-en.annotation": "x\n" * n})
    for v in nc_versions:
        name = "training-parallel-nc-v12.tgz" if v == 12 else f"training-parallel-nc-v{v}.tgz"
        write_tgz(folder / name, {
            f"training/news-commentary-v{v}.de-en.de": "\n".join(lines(n, DE, 3 + v)) + "\n",
            f"training/news-commentary-v{v}.de-en.en": "\n".join(lines(n, EN, 3 + v)) + "\n"})
    write_tgz(folder / "test-full.tgz", {
        "test-full/newstest2014-deen-src.en.sgm": wmt_sgm("src", "en", test_en),
        "test-full/newstest2014-deen-ref.de.sgm": wmt_sgm("ref", "de", test_de),
        "test-full/newstest2014-deen-src.de.sgm": wmt_sgm("src", "de", test_de),
        "test-full/newstest2014-deen-ref.en.sgm": wmt_sgm("ref", "en", test_en)})
    return folder
