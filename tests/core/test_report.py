"""`lskd report` on a fabricated sweep: golden markdown table, CSV, PNG, and its user errors."""

import json
from pathlib import Path

import pytest

from lskd.cli import main as cli_main
from lskd.errors import LskdError
from lskd.report import main
from lskd.verdicts import RULES

SIG = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.0"


def _score(root: Path, name: str, **d):
    p = root / name / "score.json"
    p.parent.mkdir(parents=True)
    d.setdefault("signature", SIG)
    p.write_text(json.dumps(d))


@pytest.fixture
def sweep(tmp_path):
    runs = tmp_path / "runs"
    _score(runs, "teacher_a0", role="teacher", teacher_alpha=0.0, bleu=26.461, chrf=50.0, seed=1)
    _score(runs, "teacher_a0.1", role="teacher", teacher_alpha=0.1, bleu=26.75, chrf=51.0, seed=1)
    for a, vals in ((0.0, {1: [24.9, 25.1], 2: [23.1], 3: [22.0], 64: [6.564]}),
                    (0.1, {1: [25.085], 2: [23.421], 64: [6.461]})):
        for t, vs in vals.items():
            for seed, v in enumerate(vs, 1):
                _score(runs, f"student_a{a}_T{t}_s{seed}", role="student", teacher_alpha=a, temperature=float(t),
                       seed=seed, bleu=v, chrf=v + 20)
    return runs


GOLDEN = f"""\
### bleu: detokenised sacreBLEU (tok 13a; signature below)

| bleu | teacher α=0 | teacher α=0.1 |
|---|---|---|
| teacher | 26.46 | 26.75 |
| T=1 | 25.00 ± 0.14 (n=2) | 25.09 |
| T=2 | 23.10 | 23.42 |
| T=3 | 22.00 | – |
| T=64 | 6.56 | 6.46 |

10 runs; cells are means over seeds, ± sample std (n = number of seeds) where n > 1.
signature: `{SIG}`

What the table shows:
- T=1 students reach α=0 94.5%, α=0.1 93.8% of their teacher's bleu (no test: a description).
- Pattern 1 (the LS teacher's students fall as T rises), α=0.1: **one seed cannot tell** (T=1 25.09, T=2 23.42, T=64 6.46; steps with a one-seed cell: T=1→2, T=2→64).
- Pattern 2 (at T=1 the LS teacher's student beats the non-LS teacher's), α=0.1: **one seed cannot tell** (α=0.1 − α=0 +0.09).
- Pattern 4 (with the non-LS teacher a moderate T can help; the paper: CUB yes, ImageNet no), T=2: **one seed cannot tell** (T=2 − T=1 -1.90).
- Pattern 4 (with the non-LS teacher a moderate T can help; the paper: CUB yes, ImageNet no), T=3: **one seed cannot tell** (T=3 − T=1 -3.00).
- Pattern 5 (T=64 collapses: below half of T=1), α=0: **one seed cannot tell** (6.56 vs 25.00).
- Pattern 5 (T=64 collapses: below half of T=1), α=0.1: **one seed cannot tell** (6.46 vs 25.09).

How the verdicts are decided:
""" + "".join(f"- {rule}\n" for rule in RULES)


def test_report_golden_table_csv_png(sweep, tmp_path, capsys):
    out = tmp_path / "res" / "grid"
    assert main(["--runs", str(sweep), "--out", str(out)]) == 0
    assert (tmp_path / "res" / "grid.md").read_text() == GOLDEN
    assert capsys.readouterr().out == GOLDEN
    csv_lines = (tmp_path / "res" / "grid.csv").read_text().splitlines()
    assert csv_lines[0] == "role,teacher_alpha,temperature,metric,mean,std,n,seeds"
    assert csv_lines[1] == "teacher,0,,bleu,26.461,,1,1"
    assert "student,0,1,bleu,25.0,0.141421,2,1 2" in csv_lines
    assert len(csv_lines) == 1 + 2 + 7
    runs_lines = (tmp_path / "res" / "grid_runs.csv").read_text().splitlines()
    assert runs_lines[0] == "role,teacher_alpha,temperature,teacher_seed,seed,metric,value,file"
    assert "student,0,1,,2,bleu,25.1,student_a0.0_T1_s2/score.json" in runs_lines and len(runs_lines) == 11
    png = (tmp_path / "res" / "grid.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    man = json.loads((tmp_path / "res" / "grid.json").read_text())
    assert len(man["inputs"]) == 10 and man["metric"] == "bleu"


def test_report_other_metric(sweep, tmp_path, capsys):
    assert main(["--runs", str(sweep), "--out", str(tmp_path / "c"), "--metric", "chrf", "--no-plot", "--digits", "1"]) == 0
    md = (tmp_path / "c.md").read_text()
    assert md.splitlines()[0] == "### chrf: chrF (sacrebleu; signature below) on detokenised text"
    assert md.splitlines()[4] == "| teacher | 50.0 | 51.0 |"
    assert not (tmp_path / "c.png").exists()


def test_report_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LskdError, match=r"--runs .*empty: no score.json files found"):
        main(["--runs", str(empty), "--out", str(tmp_path / "x")])
    runs = tmp_path / "runs"
    _score(runs, "a", role="student", teacher_alpha=0.1, temperature=1.0, bleu=3.0)
    _score(runs, "b", role="student", teacher_alpha=0.1, temperature=2.0, chrf=3.0)
    with pytest.raises(LskdError, match=r"b/score.json: no 'bleu' key \(--metric\); keys there: chrf"):
        main(["--runs", str(runs), "--out", str(tmp_path / "x")])
    (runs / "b" / "score.json").write_text('{"role": "student", "teacher_alpha": 0.1, "bleu": 2}')
    with pytest.raises(LskdError, match=r"b/score.json: missing key 'temperature'"):
        main(["--runs", str(runs), "--out", str(tmp_path / "x")])
    (runs / "b" / "score.json").write_text('{"role": "student", "teacher_alpha": 0.1, "temperature": 1, "bleu": 2}')
    with pytest.raises(LskdError, match=r"duplicate run"):
        main(["--runs", str(runs), "--out", str(tmp_path / "x")])
    (runs / "b" / "score.json").write_text("{oops")
    with pytest.raises(LskdError, match=r"b/score.json: cannot read a score.json \(JSONDecodeError"):
        main(["--runs", str(runs), "--out", str(tmp_path / "x")])


def test_report_cli_error_is_one_line(tmp_path, capsys):
    assert cli_main(["report", "--runs", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lskd report: error: --runs ") and "no score.json" in err[0]


def test_report_names_the_runs_convention_and_refuses_a_mix(tmp_path, capsys):
    runs = tmp_path / "runs"
    tok = "tokenised BLEU on the lowercased Moses-tokenised text (sacrebleu tokenize=none = multi-bleu.perl = " \
          "fairseq-generate's BLEU4)"
    for name, role, t in (("t", "teacher", None), ("s", "student", 2.0)):
        _score(runs, name, role=role, teacher_alpha=0.1, temperature=t, bleu_tok=34.5, signature=None,
               bleu_tok_signature="nrefs:1|case:mixed|eff:no|tok:none|smooth:none|version:2.6.0",
               conventions={"bleu_tok": tok})
    assert main(["--runs", str(runs), "--list-metrics"]) == 0
    assert capsys.readouterr().out == "bleu_tok\n"
    assert main(["--runs", str(runs), "--metric", "bleu_tok", "--out", str(tmp_path / "r"), "--title", "iwslt14",
                 "--no-plot"]) == 0
    md = (tmp_path / "r.md").read_text()
    assert md.splitlines()[0] == f"### iwslt14 — bleu_tok: {tok}"
    assert "signature: `nrefs:1|case:mixed|eff:no|tok:none|smooth:none|version:2.6.0`" in md
    assert json.loads((tmp_path / "r.json").read_text())["convention"] == tok
    _score(runs, "s2", role="student", teacher_alpha=0.1, temperature=3.0, bleu_tok=30.0,
           conventions={"bleu_tok": "tokenised BLEU on cased text"})
    with pytest.raises(LskdError, match=r"s2/score.json: 'bleu_tok' is .* one table cannot mix BLEU conventions"):
        main(["--runs", str(runs), "--metric", "bleu_tok", "--out", str(tmp_path / "r")])


def test_baseline_is_a_row_and_a_comparison(sweep, tmp_path, capsys):
    for seed, v in ((1, 19.0), (2, 21.0)):  # the student's model on gold data alone, two seeds
        _score(sweep, f"baseline_s{seed}", role="baseline", seed=seed, bleu=v, chrf=v + 20)
    assert main(["--runs", str(sweep), "--out", str(tmp_path / "b"), "--no-plot"]) == 0
    md = (tmp_path / "b.md").read_text().splitlines()
    assert md[md.index("| T=64 | 6.56 | 6.46 |") + 1] == "| no KD | 20.00 ± 1.41 (n=2) | 20.00 ± 1.41 (n=2) |"
    assert "- KD at T=1 beats no KD (20.00, n=2), α=0: **not shown** (KD − no KD +5.00, 95 % [-7.19, +17.19], " \
           "Welch df 1.0; p 0.123, Holm-adjusted over 1 tests 0.123)." in md
    assert "- KD at T=1 beats no KD (20.00, n=2), α=0.1: **one seed cannot tell** (KD − no KD +5.09)." in md
    assert (tmp_path / "b.csv").read_text().splitlines()[-1] == "baseline,,,bleu,20.0,1.414214,2,1 2"


def test_report_from_its_committed_csvs(sweep, tmp_path):
    """The per-run CSV gives back the same table and verdicts; the cell CSV the same cells and verdicts."""
    for seed, v in ((1, 19.0), (2, 21.0)):
        _score(sweep, f"baseline_s{seed}", role="baseline", seed=seed, bleu=v, chrf=v + 20)
    assert main(["--runs", str(sweep), "--out", str(tmp_path / "a"), "--no-plot"]) == 0
    assert main(["--runs", str(tmp_path / "a_runs.csv"), "--out", str(tmp_path / "b"), "--no-plot"]) == 0
    a, b = (tmp_path / "a.md").read_text().splitlines(), (tmp_path / "b.md").read_text().splitlines()
    assert [x for x in a if not x.startswith("signature")] == b
    assert (tmp_path / "a_runs.csv").read_text() == (tmp_path / "b_runs.csv").read_text()
    assert main(["--runs", str(tmp_path / "a.csv"), "--out", str(tmp_path / "c"), "--no-plot"]) == 0
    assert (tmp_path / "c.md").read_text() == (tmp_path / "b.md").read_text()
    assert not (tmp_path / "c_runs.csv").exists()  # a cell CSV has no runs to list
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(LskdError, match=r"--runs .*bad.csv: expected the columns of a report's per-run CSV"):
        main(["--runs", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "d")])
    with pytest.raises(LskdError, match=r"--runs .*a.csv: no rows for --metric chrf"):
        main(["--runs", str(tmp_path / "a.csv"), "--metric", "chrf", "--out", str(tmp_path / "d")])


def test_students_of_several_teacher_seeds_in_one_folder(tmp_path):
    """The same student seed under two teachers is two runs (teacher_seed is part of the key), pooled in the
    cell, and pattern 2 is judged over the teachers."""
    runs = tmp_path / "runs"
    for ts, (t0, t1, s0, s1) in {1: (4.9, 5.8, [4.7, 4.8], [5.6, 5.7]), 2: (4.2, 3.1, [4.1, 4.2], [3.2, 3.3])}.items():
        for a, tv, svals in ((0.0, t0, s0), (0.1, t1, s1)):
            _score(runs, f"t_a{a}_s{ts}", role="teacher", teacher_alpha=a, seed=ts, teacher_seed=ts, bleu=tv)
            for seed, v in enumerate(svals, 1):
                _score(runs, f"s_a{a}_s{ts}_r{seed}", role="student", teacher_alpha=a, temperature=1.0, seed=seed,
                       teacher_seed=ts, bleu=v)
    assert main(["--runs", str(runs), "--out", str(tmp_path / "r"), "--no-plot"]) == 0
    md = (tmp_path / "r.md").read_text()
    assert "| T=1 | 4.45 ± 0.35 (n=4) | 4.45 ± 1.39 (n=4) |" in md
    line = next(x for x in md.splitlines() if x.startswith("- Pattern 2"))
    assert "**not shown**" in line and "over teacher seeds" in line and "1: +0.90, 2: -0.90" in line
    _score(runs, "dup", role="student", teacher_alpha=0.1, temperature=1.0, seed=1, teacher_seed=2, bleu=1.0)
    with pytest.raises(LskdError, match=r"s_a0.1_s2_r1/score.json: duplicate run .*teacher_seed 2, seed 1\) also in .*dup/score.json"):
        main(["--runs", str(runs), "--out", str(tmp_path / "r")])


def test_report_refuses_bad_new_options(sweep, tmp_path):
    with pytest.raises(LskdError, match=r"--equivalence-margin 1.5: expected a fraction in \(0, 1\)"):
        main(["--runs", str(sweep), "--out", str(tmp_path / "x"), "--equivalence-margin", "1.5"])
    with pytest.raises(LskdError, match=r"--signature: only with a CSV as --runs"):
        main(["--runs", str(sweep), "--out", str(tmp_path / "x"), "--signature", "nrefs:1"])
    assert not list(tmp_path.glob("x*"))  # refused before anything is written
