"""recipes/lib/common.sh and the vision recipes' config checks, in bash (no training)."""

import json
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
    steps = [line for line in proc.stdout.splitlines() if not line.startswith("[")]
    assert steps == [f"run:  one  (log: {tmp_path}/logs/one.log)", "skip: one", f"run:  two  (log: {tmp_path}/logs/two.log)"]
    finals = [line.split(":")[0] for line in proc.stdout.splitlines() if line.startswith("[")]
    assert finals == ["[one] done", "[two] FAILED (exit 3)"]
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


def _jobs(tmp_path, setup, n_fail=1):
    """Five pool jobs (one failing after 0.1 s) that log when they start and end and which devices they saw."""
    events = tmp_path / "events"
    job = (f"job() {{ echo \"$1 start $(date +%s.%N) ${{CUDA_VISIBLE_DEVICES:-none}}\" >> {events}; sleep $2; "
           f"echo \"$1 end $(date +%s.%N) ${{CUDA_VISIBLE_DEVICES:-none}}\" >> {events}; [[ $1 != fail ]]; }}; ")
    proc = bash(f"{setup}; {job} pool_run job a 0.8; pool_run job fail 0.1; pool_run job c 0.8; pool_run job d 0.4; "
                f"pool_run job e 0.2; pool_wait")
    spans = {}
    for line in events.read_text().splitlines():
        name, what, t, devices = line.split()
        spans.setdefault(name, {})[what] = float(t)
        spans[name]["devices"] = devices
    return proc, spans


def test_gpu_pool_gives_each_running_job_its_own_device(tmp_path):
    """GPUS lists devices: one job per device at a time (CUDA_VISIBLE_DEVICES), a failed job frees its device for
    the next, and the pool's exit status says a job failed once every job has ended."""
    proc, spans = _jobs(tmp_path, 'GPUS="0 1 2"')
    assert proc.returncode == 2 and "a step failed" in proc.stderr
    assert sorted(spans) == ["a", "c", "d", "e", "fail"] and {s["devices"] for s in spans.values()} <= {"0", "1", "2"}
    for x in spans:
        for y in spans:
            overlap = spans[x]["start"] < spans[y]["end"] and spans[y]["start"] < spans[x]["end"]
            assert x == y or not overlap or spans[x]["devices"] != spans[y]["devices"], (x, y, spans)
    # the failed job's device went to the next job (d) long before the first long job ended
    assert spans["d"]["devices"] == spans["fail"]["devices"] and spans["d"]["start"] < spans["a"]["end"]


def test_gpus_per_run_gives_each_job_a_group_of_devices(tmp_path):
    proc, spans = _jobs(tmp_path, 'GPUS="0,1,2,3"; GPUS_PER_RUN=2')
    assert proc.returncode == 2 and {s["devices"] for s in spans.values()} == {"0,1", "2,3"}
    too_few = bash('GPUS="0"; GPUS_PER_RUN=2; pool_run true')
    assert too_few.returncode == 2 and too_few.stderr.strip() == "error: GPUS=0: 1 device(s), fewer than GPUS_PER_RUN=2"


def test_a_step_prints_progress_while_it_runs(tmp_path):
    """A toy training step (fairseq's log lines, one a second): at least two progress lines while it runs, with
    the update of the total, the loss, the elapsed time and the time left, then a final one."""
    fake = ("fake() { for i in 1 2 3 4; do echo \"epoch 001:  $((i*100)) / 400 loss=$((5-i)).5, nll_loss=9, "
            "num_updates=$((i*100)), lr=1\"; sleep 1; done; }")
    proc = bash(f"LOG_DIR={tmp_path}/logs; PROGRESS_EVERY=1; {fake}; step toy - fake --max-update 400")
    assert proc.returncode == 0, proc.stderr
    running = [line for line in proc.stdout.splitlines() if line.startswith("[toy] running: update ")]
    assert len(running) >= 2 and all("/400, loss " in line and " elapsed" in line for line in running)
    assert any(" left" in line for line in running)
    assert proc.stdout.splitlines()[-1].startswith("[toy] done: update 400/400, loss 1.500, ")


def test_progress_line_reads_fairseq_and_tqdm_logs():
    from lskd.progress import line

    fairseq = ("2026 | INFO | train_inner | epoch 001:    100 / 618 loss=7.688, nll_loss=9.365, num_updates=100, lr=1\n"
               "2026 | INFO | train | epoch 001 | loss 5.5 | nll_loss 4.2 | num_updates 500 | lr 0\n")
    assert line(fairseq, "s", 50, 2000) == "[s] running: update 500/2000, loss 5.500, 0m50s elapsed, ~2m30s left"
    bar = "cache train:  10%|#  | 100/1000 [00:01<00:09]\rcache train:  25%|##  | 250/1000 [00:02<00:06]"
    assert line(bar, "c", 20, None) == "[c] running: 250/1000, 0m20s elapsed, ~1m00s left"
    assert line("nothing yet", "x", 3725, None, final=1) == "[x] FAILED (exit 1): 1h02m elapsed"
    vision = ("epoch 1/4 train_loss 0.8895 train_top1 68.84 val_top1 71.42\n"
              "epoch 2/4 step 100/400 loss 0.5000 lr 0.1 900 img/s\n")
    assert line(vision, "v", 125, None) == "[v] running: epoch 2/4 step 100/400, loss 0.500, 2m05s elapsed, ~4m35s left"  # 1.25 of 4 epochs in 125 s
    assert line(vision.splitlines()[0], "v", 60, None) == "[v] running: epoch 1/4 done, loss 0.889, 1m00s elapsed, ~3m00s left"


def test_dry_run_prints_the_paper_settings_and_one_device_per_job(tmp_path):
    """The IWSLT recipes' --dry-run: the settings (the paper's model, K, direction), every step with the devices it
    would get from GPUS, and nothing run or written."""
    import os

    from helpers import BIN

    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", GPUS="0 1", OUT=str(tmp_path / "out"))
    for entry, pair in (("iwslt14_de_en", ("de", "en")), ("iwslt14_en_de", ("en", "de"))):
        proc = subprocess.run(["bash", str(REPO / "recipes" / entry / "run_all.sh"), "--dry-run"], capture_output=True,
                              text=True, env=env)
        assert proc.returncode == 0, proc.stderr
        out = proc.stdout.splitlines()
        assert f"  SRC={pair[0]}" in out and f"  TGT={pair[1]}" in out and "  TOPK=4" in out
        assert "  DECODE_ENGINE=fairseq" in out and any(line.startswith("  ARCH_ARGS=--arch transformer "
                                                                         "--encoder-layers 2") for line in out)
        would = [line for line in out if line.startswith("would run:")]
        assert would[0].startswith(f"would run: prepare [CPU]: python -m data_prep.iwslt --src {pair[0]} --tgt {pair[1]}")
        trains = [line for line in would if line.split()[2].startswith(("teacher_a", "student_a"))]
        assert len(trains) == 2 * 2 + 8 * 2 and all(" [GPU 0]: " in line or " [GPU 1]: " in line for line in trains)
        assert not (tmp_path / "out").exists()


def test_steps_record_their_times_and_the_time_table_reads_them(tmp_path):
    proc = bash(f"LOG_DIR={tmp_path}/logs; PROGRESS_EVERY=100; step one - sleep 1; step two - true; step one - true")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split("\t") for line in (tmp_path / "logs" / "steps.tsv").read_text().splitlines()]
    assert [r[0] for r in rows] == ["one", "two", "one"] and all(r[3] == "ok" for r in rows)
    assert int(rows[0][2]) - int(rows[0][1]) >= 1

    from lskd.step_times import main, read_steps, table

    steps = read_steps(tmp_path / "logs" / "steps.tsv")
    assert [s[0] for s in steps] == ["two", "one"]  # a step run twice counts its last run
    md, record = table([("a", 100, 160, "ok"), ("b", 130, 3830, "ok")], "bible demo", "make demo", "cpu", "abc")
    assert "| a | 1m00s | ok |" in md and "| **whole run** (first start to last end) | **1h02m** | |" in md
    assert record["wall_seconds"] == 3730 and record["step_seconds"] == 3760
    from lskd.step_times import estimate

    (tmp_path / "times.json").write_text(json.dumps({"bible demo": record}))
    assert estimate("bible demo", tmp_path / "times.json") == (
        "estimate: about 1h02m, measured for 'bible demo' by `make demo` on cpu at commit abc "
        "(docs/results/profile_times.json)")
    assert estimate("bible cpu", tmp_path / "times.json").startswith("estimate: no measured time for 'bible cpu'")
    (tmp_path / "bad.tsv").write_text("one\t1\n")
    assert main([str(tmp_path / "bad.tsv"), "--profile", "p", "--command", "c"]) == 2
    # a run made at an earlier commit is recorded under that commit
    assert main([str(tmp_path / "logs" / "steps.tsv"), "--profile", "p", "--command", "c", "--commit", "d80e87d",
                 "--json", str(tmp_path / "times.json")]) == 0
    assert json.loads((tmp_path / "times.json").read_text())["p"]["commit"] == "d80e87d"


def test_a_step_reads_its_here_document(tmp_path):
    """step runs its command in the background (for the progress lines) with the caller's stdin, not /dev/null."""
    proc = bash(f"LOG_DIR={tmp_path}/logs; step heredoc - python3 - <<'PY'\nprint('from the here-document')\nPY\n")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "logs" / "heredoc.log").read_text().strip() == "from the here-document"
