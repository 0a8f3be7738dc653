"""The NMT grid recipe (recipes/lib/nmt_grid.sh) on a tiny corpus: 2 teachers, 2 students, report, resume."""

import json
import os
import random
import shutil
import signal
import subprocess
import time

import pytest

from helpers import BIN, REPO, require_fairseq, write_tiny_corpus

require_fairseq()  # the grid trains with fairseq-train

RUN_ALL = REPO / "recipes" / "bible" / "run_all.sh"


def recipe_env():
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONWARNINGS="ignore")


def recipe(*args, cwd=None):
    return subprocess.run(["bash", str(RUN_ALL), *map(str, args)], capture_output=True, text=True, env=recipe_env(), cwd=cwd)


def tiny_config(tmp_path, **overrides):
    write_tiny_corpus(tmp_path / "raw")
    raw = tmp_path / "raw"
    keys = {
        "OUT": tmp_path / "grid", "SRC": "src", "TGT": "tgt",
        "PREPARE_CMD": f"python -m data_prep.parallel --src {raw}/train.src --tgt {raw}/train.tgt --src-lang src "
                       f"--tgt-lang tgt --valid-size 30 --test-size 30 --vocab-size 60 --workers 1",
        "ARCH_ARGS": "--arch transformer --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 "
                     "--decoder-embed-dim 32 --encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64 "
                     "--encoder-attention-heads 2 --decoder-attention-heads 2",
        "OPT_ARGS": "--optimizer adam --lr 1e-2 --lr-scheduler inverse_sqrt --warmup-updates 10 --max-tokens 400 --cpu --num-workers 0",
        "TEACHER_UPDATES": 20, "STUDENT_UPDATES": 10, "TEACHER_ALPHAS": "0 0.1", "TEMPERATURES": "2", "SEEDS": 1,
        "KD_LAMBDA": 0.9, "STUDENT_EPS": 0.1, "TOPK": 4, "PURE_KD": 0, "BEAM": 1, "GEN_ARGS": "--batch-size 64 --cpu",
        "CACHE_ARGS": "--cpu", "JOBS": 2,
    }
    keys.update(overrides)
    config = tmp_path / "config.sh"
    config.write_text("".join(f'{k}="{v}"\n' for k, v in keys.items() if v is not None))  # None: key left out
    return config


@pytest.mark.slow
def test_tiny_grid_end_to_end_and_resume(tmp_path):
    config = tiny_config(tmp_path)
    first = recipe("--config", config)
    assert first.returncode == 0, first.stdout + first.stderr
    grid = tmp_path / "grid"
    table = (grid / "results_bleu.md").read_text()
    assert "| teacher |" in table and "| T=2 |" in table
    for alpha in ("0", "0.1"):
        score = json.loads((grid / "students" / f"a{alpha}_T2_s1" / "score.json").read_text())
        assert score["role"] == "student" and score["teacher_alpha"] == float(alpha) and score["temperature"] == 2
        assert score["n_sentences"] == 30 and score["kd_lambda"] == 0.9 and score["teacher_seed"] == 1
        assert (grid / "caches" / f"a{alpha}_s1" / "train" / "manifest.json").is_file()
    assert (grid / "results_bleu.png").stat().st_size > 1000 and (grid / "results_chrf.csv").is_file()
    # A rerun does no work: data_prep skips its own steps, every other step is skipped.
    again = recipe("--config", config)
    assert again.returncode == 0
    assert again.stdout.count("skip:") == 2 * 2 + 2 + 2 * 2
    assert [line for line in again.stdout.splitlines() if line.startswith("run:")] == [
        f"run:  prepare  (log: {tmp_path / 'grid'}/logs/prepare.log)"]
    assert (tmp_path / "grid" / "logs" / "prepare.log").read_text().count("skip: ") >= 3
    # The penultimate-layer analysis of the finished grid: one table and plot per teacher
    diff = recipe("--config", config, "--only", "diffusion")
    assert diff.returncode == 0, diff.stdout + diff.stderr
    for alpha in ("0", "0.1"):  # the same two references (both teachers) for both tables, one table each
        result = json.loads((grid / "diffusion" / f"a{alpha}.json").read_text())
        assert set(result["results"]) == {"T2", "teacher"} and result["reference"]["file"] == str(grid / "diffusion" / "a0_s1.pt")
        assert [r["reference"]["file"] for r in result["references"]] == [str(grid / "diffusion" / f"a{a}_s1.pt") for a in ("0", "0.1")]
        assert (grid / "diffusion" / f"a{alpha}.png").is_file()
    assert "Reference sensitivity" in (grid / "diffusion" / "a0.1.md").read_text()
    assert json.loads((grid / "diffusion" / "compare_a0.1_vs_a0.json").read_text())["baseline"] == "T2"
    # SIGKILL inside a student step (recipe, fairseq-train and all): the rerun does only that student's
    # remaining work and the report equals the uninterrupted run's.
    table = (grid / "results_bleu.md").read_text()
    shutil.rmtree(grid / "students" / "a0.1_T2_s1")
    (grid / "results_bleu.md").unlink()
    log = grid / "logs" / "student_a0.1_T2_s1.log"
    log.unlink()
    killed = subprocess.Popen(["bash", str(RUN_ALL), "--config", str(config)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=recipe_env(), start_new_session=True)
    deadline = time.time() + 300
    while not (log.is_file() and "ls_kd: top-" in log.read_text()) and time.time() < deadline and killed.poll() is None:
        time.sleep(0.2)
    assert killed.poll() is None, "the recipe ended before its student step started training"
    time.sleep(random.Random(0).uniform(0, 3))
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    resumed = recipe("--config", config)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    ran = [line.split()[1] for line in resumed.stdout.splitlines() if line.startswith("run:")]
    assert ran[0] == "prepare" and set(ran[1:]) <= {"student_a0.1_T2_s1", "student_a0.1_T2_s1_score"}, ran
    assert "student_a0.1_T2_s1_score" in ran or (grid / "students" / "a0.1_T2_s1" / "score.json").is_file()
    assert (grid / "results_bleu.md").read_text() == table
    # A student that fails while others run in parallel stops the recipe with its log's tail;
    # the finished students stay finished.
    bad = recipe("--config", tiny_config(tmp_path, TEMPERATURES="2 -1"))
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "failed: student_a0_T-1_s1" in bad.stderr and "--kd-temperature must be > 0" in bad.stderr
    assert bad.stderr.strip().endswith("error: a step failed (its log's last lines are above); rerun to resume")
    assert bad.stdout.count("skip: student_a0_T2_s1\n") == 1


@pytest.mark.slow
def test_grid_starts_from_teacher_releases(tmp_path):
    """make_demo_teachers.sh trains the teachers and exports them; a grid with TEACHER_RELEASES imports them
    (no teacher training) and distils from them, with T1_STUDENT_SEEDS students at T = 1 and the teacher's
    seed elsewhere, and trains the no-KD baseline (BASELINE_SEEDS); a missing release stops the grid naming
    the file."""
    config = tiny_config(tmp_path, OUT=None, TEMPERATURES="1 2", T1_STUDENT_SEEDS="1 2", BASELINE_SEEDS="1")
    env = dict(recipe_env(), OUT=str(tmp_path / "made"), RELEASE_DIR=str(tmp_path / "releases"))
    made = subprocess.run(["bash", str(REPO / "recipes" / "bible" / "make_demo_teachers.sh"), "--config", str(config)],
                          capture_output=True, text=True, env=env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == ["a0.1_s1.pt", "a0_s1.pt"]
    env = dict(recipe_env(), OUT=str(tmp_path / "grid"), TEACHER_RELEASES=str(tmp_path / "releases"))
    grid = subprocess.run(["bash", str(RUN_ALL), "--config", str(config)], capture_output=True, text=True, env=env)
    assert grid.returncode == 0, grid.stdout + grid.stderr
    for alpha in ("0", "0.1"):
        assert "fairseq_cli.train" not in (tmp_path / "grid" / "logs" / f"teacher_a{alpha}_s1.log").read_text()
        made_score = json.loads((tmp_path / "made" / "teachers" / f"a{alpha}_s1" / "score.json").read_text())
        score = json.loads((tmp_path / "grid" / "teachers" / f"a{alpha}_s1" / "score.json").read_text())
        assert score["bleu"] == pytest.approx(made_score["bleu"], abs=1.0)  # float16 weights: near, not equal
        students = sorted(p.name for p in (tmp_path / "grid" / "students").glob(f"a{alpha}_T*"))
        assert students == [f"a{alpha}_T1_s1", f"a{alpha}_T1_s1_r2", f"a{alpha}_T2_s1"]
        assert all((tmp_path / "grid" / "students" / name / "score.json").is_file() for name in students)
    baseline = json.loads((tmp_path / "grid" / "baselines" / "s1" / "score.json").read_text())
    assert baseline["role"] == "baseline" and baseline["teacher_alpha"] is None and baseline["kd_lambda"] == 0
    assert "kd_loss 0 " in (tmp_path / "grid" / "logs" / "baseline_s1.log").read_text()  # no teacher term
    assert "| no KD | " in (tmp_path / "grid" / "results_bleu.md").read_text()
    (tmp_path / "releases" / "a0.1_s1.pt").unlink()
    env["OUT"] = str(tmp_path / "grid2")
    missing = subprocess.run(["bash", str(RUN_ALL), "--config", str(config)], capture_output=True, text=True, env=env)
    assert missing.returncode != 0
    assert f"--release {tmp_path / 'releases' / 'a0.1_s1.pt'}: no such file" in missing.stderr


def test_unknown_config_key_is_refused_before_any_step(tmp_path):
    config = tiny_config(tmp_path, TEMPERATURE="2")
    proc = recipe("--config", config)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: config {config}: unknown key TEMPERATURE (known: " + proc.stderr.split("(known: ")[1].strip()
    assert not (tmp_path / "grid").exists()


def test_unknown_profile_and_step(tmp_path):
    proc = recipe("--profile", "nosuch")
    assert proc.returncode == 2 and "--profile nosuch: no " in proc.stderr and "(profiles: " in proc.stderr
    proc = recipe("--only", "bake")
    assert proc.returncode == 2 and "--only bake: unknown step" in proc.stderr


@pytest.mark.parametrize("jobs", ["0", "two"])
def test_bad_jobs_value(tmp_path, jobs):
    config = tiny_config(tmp_path, JOBS=jobs)
    proc = recipe("--config", config)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: config {config}: JOBS must be a positive integer, got {jobs}"


def test_old_key_kd_alpha_is_named(tmp_path):
    config = tiny_config(tmp_path)
    config.write_text(config.read_text().replace("KD_LAMBDA=", "KD_ALPHA="))
    proc = recipe("--config", config)
    assert proc.returncode == 2 and proc.stderr.strip() == (f"error: config {config}: KD_ALPHA is now called KD_LAMBDA "
                                                            "(the weight of the KD term; alpha is the teacher's label smoothing)")


def test_missing_config_key(tmp_path):
    config = tiny_config(tmp_path)
    config.write_text("\n".join(line for line in config.read_text().splitlines() if not line.startswith("ARCH_ARGS=")) + "\n")
    proc = recipe("--config", config)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: config {config}: ARCH_ARGS is not set"


@pytest.mark.parametrize("ranks", ["0", "two"])
def test_recipe_refuses_a_bad_ranks_value(tmp_path, ranks):
    config = tiny_config(tmp_path, RANKS=ranks)
    proc = recipe("--config", config)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: config {config}: RANKS must be a positive integer, got {ranks}"


@pytest.mark.slow
def test_evaluate_with_either_engine_gives_the_same_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("LSKD_CACHE", str(tmp_path / "cache"))
    config = tiny_config(tmp_path, TEACHER_ALPHAS="0.1", JOBS=1, DECODE_ENGINE="ctranslate2")
    for step in ("prepare", "teachers"):
        proc = recipe("--config", config, "--only", step)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    run = tmp_path / "grid" / "teachers" / "a0.1_s1"
    ct2 = run.joinpath("generate-test.txt").read_text()
    assert "with CTranslate2 4.8.5 float32 on cpu" in ct2.splitlines()[-1]
    assert list((tmp_path / "cache" / "ct2").iterdir())  # the converted teacher is in the cache
    score_ct2 = json.loads((run / "score.json").read_text())

    (run / "score.json").unlink()  # evaluate again with fairseq-generate
    proc = recipe("--config", tiny_config(tmp_path, TEACHER_ALPHAS="0.1", JOBS=1, DECODE_ENGINE="fairseq"),
                  "--only", "teachers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skip: teacher_a0.1_s1\n" in proc.stdout and "run:  teacher_a0.1_s1_score" in proc.stdout
    fairseq = run.joinpath("generate-test.txt").read_text()
    assert "CTranslate2" not in fairseq
    score_fs = json.loads((run / "score.json").read_text())
    assert set(score_fs) == set(score_ct2) and score_fs["n_sentences"] == score_ct2["n_sentences"] == 30
    d_lines = lambda text: sorted(line.split("\t")[::2] for line in text.splitlines() if line.startswith("D-"))  # noqa: E731
    assert d_lines(fairseq) == d_lines(ct2)  # greedy, one length limit: the same hypotheses
    assert score_fs["bleu"] == score_ct2["bleu"] and score_fs["chrf"] == score_ct2["chrf"]


def test_unknown_decode_engine_is_refused(tmp_path):
    config = tiny_config(tmp_path, DECODE_ENGINE="onnx")
    proc = recipe("--config", config)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: config {config}: DECODE_ENGINE must be fairseq or ctranslate2, got onnx"
