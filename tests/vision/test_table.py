"""The alpha x T table (markdown, CSV, PNG) from runs' final.json files."""

import csv
import json
import os

from lskd.vision.table import write_table


def _final(d, **r):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "final.json"), "w") as f:
        json.dump(r, f)


def test_table(tmp_path, capsys):
    runs = tmp_path / "runs"
    for a, top in ((0.0, 90.0), (0.1, 90.5)):
        _final(str(runs / f"t{a}"), role="teacher", label_smoothing=a, final_top1=top, best_top1=top)
        for T in (1, 3):
            for s in (0, 1):
                _final(str(runs / f"s{a}_{T}_{s}"), role="student", label_smoothing=0.0, temperature=float(T), final_top1=80 + 10 * a - T + s,
                       best_top1=0, teacher_meta={"label_smoothing": a})
    out = write_table(str(runs), str(tmp_path / "out" / "grid"), title="demo")
    md = open(out["md"]).read()
    assert "| teacher alpha | teacher | T=1 | T=3 |" in md
    assert "| 0.1 | 90.50 (n=1) | 80.50 ± 0.71 (n=2) | 78.50 ± 0.71 (n=2) |" in md
    rows = list(csv.DictReader(open(out["csv"])))
    assert len(rows) == 6 and rows[1]["role"] == "student" and float(rows[1]["mean"]) == 79.5
    assert os.path.getsize(out["png"]) > 1000


def test_table_no_runs(tmp_path):
    import pytest

    from lskd.cli import LskdError

    with pytest.raises(LskdError, match="no final.json found under"):
        write_table(str(tmp_path), str(tmp_path / "x"))
