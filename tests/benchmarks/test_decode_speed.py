"""benchmarks/decode_speed.py, the script behind docs/SEQ_KD.md's speed table: its rows, ratios and refusals
(the engine itself: tests/fairseq_adapter/test_ct2_engine.py)."""

import subprocess
import sys

import pytest

from helpers import REPO, require_fairseq, run

require_fairseq()


@pytest.mark.slow
def test_decode_speed_benchmark_table(tiny_data, tiny_teacher, tmp_path):
    """benchmarks/decode_speed.py on the tiny teacher: every engine row, ratios to fairseq, equal outputs in float32."""
    run([sys.executable, REPO / "benchmarks" / "decode_speed.py", "--data", tiny_data / "bin", "--ref",
         tiny_data / "raw" / "test.tgt", "--model", f"tiny={tiny_teacher}", "--rounds", "1", "--beams", "5",
         "--compute-types", "float32", "--allocator-rows", "--threads", "1", "--work", tmp_path / "w",
         "--out", tmp_path / "table"])
    rows = [line.split(" | ") for line in (tmp_path / "table.md").read_text().splitlines() if line.startswith("| tiny")]
    assert [(r[1], r[2]) for r in rows] == [("5", e) for e in
                                           ("fairseq", "ct2-float32", "fairseq+tuned-malloc", "ct2-float32+glibc-malloc")]
    assert rows[0][5] == "1.00" and all(float(r[5]) > 0 for r in rows)
    assert all(r[7] == "100.0% |" for r in rows)  # float32 outputs equal fairseq's, whatever the allocator
    assert (tmp_path / "table.png").stat().st_size > 0
    assert "(the whole split)" in (tmp_path / "table.md").read_text()
    small = subprocess.run([sys.executable, REPO / "benchmarks" / "decode_speed.py", "--data", tiny_data / "bin", "--ref",
                            tiny_data / "raw" / "test.tgt", "--model", f"tiny={tiny_teacher}", "--n", "3", "--work",
                            tmp_path / "w2"], capture_output=True, text=True)
    assert small.returncode != 0 and "--n 3: below the whole test split" in small.stderr


@pytest.mark.slow
def test_ct2_time_split_rows(tiny_data, tiny_teacher):
    """benchmarks/ct2_time_split.py on the tiny teacher: one row per variant, ct2-only the unit."""
    out = run([sys.executable, REPO / "benchmarks" / "ct2_time_split.py", "--data", tiny_data / "bin",
               "--path", tiny_teacher, "--rounds", "1"]).stdout
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| ") and "variant" not in line
            and "---" not in line]
    assert [r[0] for r in rows] == ["| full", "| no-second", "| ct2-only"]
    assert rows[2][2] == "1.00 |" and all(float(r[1].split()[0]) >= 0 for r in rows)
    assert "sentences searched again" in out


@pytest.mark.slow
def test_ct2_batching_rows(tiny_data, tiny_teacher):
    """benchmarks/ct2_batching.py on the tiny teacher: one row per variant, in order; a malformed variant is refused."""
    out = run([sys.executable, REPO / "benchmarks" / "ct2_batching.py", "--data", tiny_data / "bin",
               "--path", tiny_teacher, "--variants", "desc8", "asc8", "desc2"]).stdout
    rows = [line.split(" | ") for line in out.splitlines() if line.startswith("| ") and "variant" not in line
            and "---" not in line]
    assert [r[0] for r in rows] == ["| desc8", "| asc8", "| desc2"] and all(float(r[1]) >= 0 for r in rows)
    bad = run([sys.executable, REPO / "benchmarks" / "ct2_batching.py", "--data", tiny_data / "bin",
               "--path", tiny_teacher, "--variants", "sideways4"], check=False)
    assert bad.returncode == 2 and "--variants sideways4: expected desc<N> or asc<N>" in bad.stderr
