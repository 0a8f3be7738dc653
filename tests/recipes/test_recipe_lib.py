"""recipes/lib/common.sh and the vision recipes' config checks, in bash (no training)."""

import subprocess

from helpers import REPO

COMMON = REPO / "recipes" / "lib" / "common.sh"


def bash(script, **kwargs):
    return subprocess.run(["bash", "-c", f"set -euo pipefail; source {COMMON}; {script}"], capture_output=True, text=True, **kwargs)


def test_pool_frees_a_slot_when_any_job_ends(tmp_path):
    # JOBS=2: a long job and a short one; the third starts when the short one ends, not after the long one
    log = tmp_path / "order"
    proc = bash(f"JOBS=2; pool_run bash -c 'sleep 3; echo long >> {log}'; pool_run bash -c 'sleep 0.1; echo short >> {log}'; "
                f"pool_run bash -c 'echo third >> {log}'; pool_wait")
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().split() == ["short", "third", "long"]


def test_pool_reports_a_failed_job_after_the_others_end(tmp_path):
    proc = bash(f"JOBS=2; pool_run false; pool_run bash -c 'sleep 0.5; touch {tmp_path}/ok'; pool_wait; echo not reached")
    assert proc.returncode == 2 and (tmp_path / "ok").exists()
    assert proc.stderr.strip() == "error: a step failed (its log's last lines are above); rerun to resume"


def test_step_skips_done_and_shows_the_log_tail_of_a_failure(tmp_path):
    proc = bash(f"LOG_DIR={tmp_path}/logs; mkdir -p {tmp_path}/one; step one {tmp_path}/one/done true; "
                f"step one {tmp_path}/one/done true; step two - bash -c 'echo boom; exit 3'")
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [f"run:  one  (log: {tmp_path}/logs/one.log)", "skip: one", f"run:  two  (log: {tmp_path}/logs/two.log)"]
    assert f"failed: two; last lines of {tmp_path}/logs/two.log:\nboom" in proc.stderr


def test_vision_recipe_refuses_an_unknown_config_key(tmp_path):
    config = tmp_path / "config.sh"
    config.write_text((REPO / "recipes" / "fashion_mnist" / "config.sh").read_text() + 'TEMPERATURES="1 2"\n')
    proc = subprocess.run(["bash", str(REPO / "recipes" / "fashion_mnist" / "run_all.sh"), "--config", str(config)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: config {config}: unknown key TEMPERATURES (known: RUNS DATA_ROOT ALPHAS")


def test_no_recipe_installs_system_packages():
    for script in (REPO / "recipes").rglob("*.sh"):
        text = script.read_text()
        assert "apt-get install -y" not in text and "apt install -y" not in text, script


def test_cell_seeds_gives_the_t1_cells_their_own_seeds():
    proc = bash('T1_STUDENT_SEEDS="1 2 3"; STUDENT_SEEDS="1 2"; for t in 1 1.0 1.00 10 2 0.1 64; do '
                'echo "$t: $(cell_seeds $t)"; done')
    assert proc.stdout.splitlines() == ["1: 1 2 3", "1.0: 1 2 3", "1.00: 1 2 3", "10: 1 2", "2: 1 2", "0.1: 1 2",
                                        "64: 1 2"], proc.stderr
