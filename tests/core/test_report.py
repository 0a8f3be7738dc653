"""`lskd report` on a fabricated sweep: golden markdown table, CSV, PNG, and its user errors."""

import json
from pathlib import Path

import pytest

from lskd.cli import main as cli_main
from lskd.errors import LskdError
from lskd.report import main

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
- T=1 students reach α=0 94%, α=0.1 94% of their teacher's bleu.
- Pattern 1 (the LS teacher's students fall as T rises), α=0.1: seen (T=1 25.09 > T=2 23.42 > T=64 6.46).
- Pattern 2 (at T=1 the LS teacher's student beats the non-LS teacher's): seen (α=0.1 25.09 vs α=0 25.00, +0.09; one seed in a cell: no spread to compare the margin with).
- Pattern 5 (T=64 collapses: below half of T=1): seen (α=0 6.56 vs 25.00, α=0.1 6.46 vs 25.09).
"""


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
    png = (tmp_path / "res" / "grid.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    man = json.loads((tmp_path / "res" / "grid.json").read_text())
    assert len(man["inputs"]) == 10 and man["metric"] == "bleu"


def test_patterns_name_what_is_not_seen():
    from lskd.report import patterns

    def cells(**means):  # s<alpha*10>_<T>=mean, t<alpha*10>=teacher mean; n=2 with std 0.5 everywhere
        agg = {}
        for k, v in means.items():
            role, a, t = ("teacher", int(k[1:]) / 10, None) if k[0] == "t" else ("student", int(k[1]) / 10, float(k[3:]))
            agg[(role, a, t)] = {"mean": v, "std": 0.5, "n": 2}
        return agg

    lines = patterns(cells(t0=10, t1=10, s0_1=5, s1_1=4, s1_2=4.5, s1_3=3, s0_64=3, s1_64=1), "bleu")
    assert lines == [
        "- T=1 students reach α=0 50%, α=0.1 40% of their teacher's bleu.",
        "- Pattern 1 (the LS teacher's students fall as T rises), α=0.1: not seen (T=1 4.00, T=2 4.50, T=3 3.00, T=64 1.00).",
        "- Pattern 2 (at T=1 the LS teacher's student beats the non-LS teacher's): not seen (α=0.1 4.00 vs α=0 5.00, "
        "-1.00; seed std 0.50 and 0.50).",
        "- Pattern 5 (T=64 collapses: below half of T=1): not seen (α=0 3.00 vs 5.00, α=0.1 1.00 vs 4.00).",
    ]
    assert patterns(cells(t1=10, s1_2=4), "bleu") == []  # no T=1, no alpha 0, fewer than three temperatures


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
    with pytest.raises(LskdError, match=r"b/score.json: not valid JSON"):
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
    assert "- KD at T=1 against no KD (20.00, n=2): α=0 +5.00, α=0.1 +5.09." in md
    assert (tmp_path / "b.csv").read_text().splitlines()[-1] == "baseline,,,bleu,20.0,1.414214,2,1 2"
