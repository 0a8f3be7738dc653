"""Peak memory of data_prep.wmt's extraction (streamed) vs the corpus size, against holding the corpus.

    .venv/bin/python benchmarks/wmt_stream_memory.py [--pairs 20000] [--jobs 2]

Writes a synthetic WMT raw folder (europarl-v7.de-en.{de,en}, test-full newstest2014) of N and 4N pairs,
then runs in fresh processes, alternating: (a) the extract step of data_prep.wmt (tokenise, split, clean,
write OUT/raw) and (b) the baseline: the same corpus read into a list of pairs (what the extraction held
before it was streamed). Prints each process's peak RSS (ru_maxrss) and the 4N/N ratio of each: a
streamed extraction stays flat, the list grows with the corpus.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

EXTRACT = """
import resource, sys
from pathlib import Path
from data_prep import wmt
from data_prep.pipeline import extract_step
raw, out, jobs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
files = [(raw / "training" / "europarl-v7.de-en.en", raw / "training" / "europarl-v7.de-en.de")]
test = wmt.find_test([raw], "en", "de")
extract_step(out, "en", "de", name="wmt", inputs=[f for p in files for f in p], options={},
             make_splits=lambda: wmt.extract(files, test, "en", "de", jobs=jobs))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""
BASELINE = """
import resource, sys
from pathlib import Path
from data_prep.text import read_parallel
raw = Path(sys.argv[1])
pairs = read_parallel(raw / "training" / "europarl-v7.de-en.en", raw / "training" / "europarl-v7.de-en.de")
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_raw(folder: Path, n: int) -> Path:
    from corpus_fixtures import DE, EN, lines, wmt_sgm, WMT_TEST_DE, WMT_TEST_EN

    (folder / "training").mkdir(parents=True)
    (folder / "test-full").mkdir()
    (folder / "training" / "europarl-v7.de-en.de").write_text("\n".join(lines(n, DE)) + "\n", encoding="utf-8")
    (folder / "training" / "europarl-v7.de-en.en").write_text("\n".join(lines(n, EN)) + "\n", encoding="utf-8")
    (folder / "test-full" / "newstest2014-deen-src.en.sgm").write_text(wmt_sgm("src", "en", WMT_TEST_EN), encoding="utf-8")
    (folder / "test-full" / "newstest2014-deen-ref.de.sgm").write_text(wmt_sgm("ref", "de", WMT_TEST_DE), encoding="utf-8")
    return folder


def peak_kib(code: str, *args) -> int:
    p = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                       env={"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent)})
    if p.returncode != 0:
        raise SystemExit(p.stderr[-2000:])
    return int(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=20000, help="N (default 20000); the large corpus is 4N")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        raws = {n: make_raw(tmp / f"raw{n}", n) for n in (args.pairs, 4 * args.pairs)}
        res = {}
        for n, raw in raws.items():  # alternating per size: extraction, then the baseline
            res[("streamed extraction", n)] = peak_kib(EXTRACT, raw, tmp / f"out{n}", args.jobs)
            res[("corpus held in a list", n)] = peak_kib(BASELINE, raw)
        n1, n4 = args.pairs, 4 * args.pairs
        for what in ("streamed extraction", "corpus held in a list"):
            a, b = res[(what, n1)], res[(what, n4)]
            print(f"{what:24s} peak RSS {a / 1024:7.1f} MiB at {n1:,} pairs, {b / 1024:7.1f} MiB at {n4:,} pairs: "
                  f"ratio {b / a:.2f}")


if __name__ == "__main__":
    main()
