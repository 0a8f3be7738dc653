"""The GPU profiles (recipes/gpu/, docs/GPU.md) at toy size on a CPU: prepare.sh's data part, each entry
script end to end with its time guard, and the results folder that a device call brings back."""

import importlib.util
import json
import os
import subprocess
import tarfile

import pytest

from helpers import BIN, REPO, fairseq_installed, FAIRSEQ_MISSING, write_fake_fashion_mnist, write_tiny_corpus

GPU = REPO / "recipes" / "gpu"
IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def load_gpu_profile():
    spec = importlib.util.spec_from_file_location("gpu_profile", GPU / "gpu_profile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def script(name, *args, **env):
    """Run recipes/gpu/NAME with the test venv's tools first on PATH; OUT (a device tool's variable) unset."""
    e = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONWARNINGS="ignore", **env)
    e.pop("OUT", None)
    return subprocess.run(["bash", str(GPU / name), *map(str, args)], capture_output=True, text=True, env=e, cwd=REPO)


def steps(results):
    return [line.split("\t") for line in (results / "timing.tsv").read_text().splitlines()]


def check_results_folder(results, headline, *extra):
    """What a device call brings back: at most 8 plain files, no folder; tables, timing, summary, logs."""
    entries = sorted(p.name for p in results.iterdir())
    assert all((results / p).is_file() for p in entries) and len(entries) <= 8, entries
    assert entries == sorted(["console.log", "logs.tar.gz", "summary.md", "timing.tsv", f"{headline}.md",
                              f"{headline}.csv", f"{headline}.png", *extra])
    assert (results / f"{headline}.png").stat().st_size > 1000
    summary = (results / "summary.md").read_text()
    assert "- card: no GPU (nvidia-smi found none): a CPU run" in summary
    assert (results / f"{headline}.md").read_text() in summary
    assert all(float(seconds) >= 0 for _, seconds, _ in steps(results))
    assert "[gpu] done in " in (results / "console.log").read_text()
    return summary, tarfile.open(results / "logs.tar.gz").getnames()


@pytest.mark.slow
def test_fashion_mnist_profile_at_toy_size(tmp_path):
    write_fake_fashion_mnist(tmp_path / "fm")
    carry, results, work = tmp_path / "carry", tmp_path / "results", tmp_path / "work"
    prep = script("prepare.sh", "--carry", carry, "--only", "fashion_mnist", "--fashion-mnist", tmp_path / "fm")
    assert prep.returncode == 0, prep.stdout + prep.stderr
    for name in IDX:  # copied as they are
        assert (carry / "fashion_mnist" / f"{name}.gz").read_bytes() == (tmp_path / "fm" / f"{name}.gz").read_bytes()
    assert f'carry: ["{carry}/fashion_mnist"]' in prep.stdout and "bash recipes/gpu/fashion_mnist.sh --results \"$OUT\"" in prep.stdout

    # a budget that a slow CI machine cannot exhaust (the planning itself is tested with hand-computed values)
    proc = script("fashion_mnist.sh", "--toy", "--results", results, "--work", work, "--carry", carry, "--budget", 3000)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary, archived = check_results_folder(results, "table")
    # the students' epochs come from the teachers' measured time: all of the configured 2 fit in the budget
    assert [(name, status) for name, _, status in steps(results)] == [
        ("setup", "ok"), ("data", "ok"), ("teachers", "ok"), ("students (2 epochs each)", "ok"), ("report", "ok")]
    table = (results / "table.md").read_text()
    assert table.startswith("### Fashion-MNIST, GPU profile (config.fashion_mnist_toy.sh): resnet50 teachers -> resnet18 students")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:4]] for line in table.splitlines()
            if line.startswith("| teacher |") or line.startswith("| T=")}
    assert set(rows) == {"teacher", "T=1", "T=64"} and all(0 <= float(c) <= 100 for r in rows.values() for c in r)
    for a in ("0.0", "0.1"):
        assert f"| teacher | teacher_a{a}_s0 | 1/1 | finished |" in summary
        for t in ("1", "64"):
            assert f"| student | student_a{a}_T{t}_s0 | 2/2 | finished |" in summary
            config = json.loads((work / f"student_a{a}_T{t}_s0" / "config.json").read_text())
            final = json.loads((work / f"student_a{a}_T{t}_s0" / "final.json").read_text())
            assert config["arch"] == "resnet18" and config["augment"] and config["data_root"] == str(carry / "fashion_mnist")
            assert final["teacher_meta"]["arch"] == "resnet50" and final["teacher_meta"]["small_input"]
            assert f"./logs/student_a{a}_T{t}_s0.log" in archived and f"./student_a{a}_T{t}_s0/metrics.jsonl" in archived
    assert not any(name.endswith(".pt") for name in archived)


@pytest.mark.slow
def test_bible_profile_at_toy_size_with_the_student_time_guard(tmp_path):
    if not fairseq_installed():
        pytest.skip(FAIRSEQ_MISSING)
    raw, carry, results, work = tmp_path / "raw", tmp_path / "carry", tmp_path / "results", tmp_path / "work"
    write_tiny_corpus(raw)
    corpus = dict(SRC="src", TGT="tgt", PREPARE_CMD=(
        f"python -m data_prep.parallel --src {raw}/train.src --tgt {raw}/train.tgt --src-lang src --tgt-lang tgt "
        "--valid-size 30 --test-size 30 --vocab-size 60 --workers 1"))
    prep = script("prepare.sh", "--carry", carry, "--only", "bible", "--bible-config", GPU / "config.bible_toy.sh",
                  "--bible-work", tmp_path / "prep", **corpus)
    assert prep.returncode == 0, prep.stdout + prep.stderr
    data = carry / "bible" / "data"  # what the grid reads, not the training text
    assert sorted(p.name for p in data.iterdir()) == ["bin", "manifest.json", "raw", "spm"]
    assert sorted(p.name for p in (data / "raw").iterdir()) == ["test.src", "test.tgt"]
    assert (data / "bin" / "train.src-tgt.tgt.bin").is_file() and (data / "spm" / "spm.model").is_file()
    assert len((data / "raw" / "test.tgt").read_text().splitlines()) == 30

    # students get as many updates as their teachers reached (20, under the toy config's cap of 40) and may train
    # for a millisecond: fairseq's --stop-time-hours stops each after its first update
    proc = script("bible.sh", "--toy", "--results", results, "--work", work, "--carry", carry,
                  "--student-seconds", "0.001", "--budget", 3000, **corpus)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary, archived = check_results_folder(results, "results_bleu", "ct2_equality.md")
    assert [(name, status) for name, _, status in steps(results)] == [
        ("setup", "ok"), ("data", "ok"), ("teachers", "ok"), ("caches", "ok"), ("students", "ok"), ("report", "ok"),
        ("ct2_equality_float32", "ok")]  # float16 as well on a GPU (not at toy size: no float16 on a CPU)
    equality = (results / "ct2_equality.md").read_text()
    assert "best hypotheses identical:" in equality and "CTranslate2 float32 on CPU" in equality
    assert "[gpu] students: at most 20 updates each (as many as their teachers) or 0.001s of training" in proc.stdout
    for a in ("0", "0.1"):
        assert "'max_update': 20," in (work / "logs" / f"student_a{a}_T1_s1.log").read_text()
        assert f"| teacher | a{a}_s1 | 20 | max-update reached |" in summary
        assert f"| student | a{a}_T1_s1 | 1 | stopped by the time guard |" in summary
        assert f"./students/a{a}_T1_s1/score.json" in archived and f"./logs/student_a{a}_T1_s1.log" in archived
        assert f"./teachers/a{a}_s1/generate-test.txt" in archived
        score = json.loads((work / "students" / f"a{a}_T1_s1" / "score.json").read_text())
        assert score["n_sentences"] == 30 and score["temperature"] == 1
    table = (results / "results_bleu.md").read_text()
    assert "| teacher |" in table and "| T=1 |" in table
    assert not any(name.endswith(".pt") or "/data/" in name for name in archived)


@pytest.mark.slow
def test_the_entry_scripts_refuse_bad_input_with_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    common = ("--results", tmp_path / "r", "--work", tmp_path / "w", "--carry", empty)
    for name, args, message in (
        ("bible.sh", ("--budget", "soon"), "error: --budget: expected whole seconds, got soon"),
        ("bible.sh", ("--student-seconds", "-3"), "error: --student-seconds: expected seconds, got -3"),
        ("fashion_mnist.sh", ("--teacher-seconds", "5"), "error: unknown argument --teacher-seconds"),
        ("fashion_mnist.sh", ("--config", tmp_path / "none.sh"), f"error: --config {tmp_path / 'none.sh'}: no such file"),
        ("fashion_mnist.sh", ("--toy", *common), f"error: {empty}/fashion_mnist: no train-images-idx3-ubyte[.gz]: run recipes/gpu/prepare.sh first"),
        ("bible.sh", ("--toy", *common), f"error: {empty}/bible/data: no prepared de-en data (bin/dict.de.txt, raw/test.en): run recipes/gpu/prepare.sh first"),
        ("prepare.sh", ("--only", "everything"), "error: --only everything: expected wheels, bible or fashion_mnist"),
        ("prepare.sh", ("--only", "fashion_mnist", "--carry", tmp_path / "c", "--fashion-mnist", empty),
         f"error: --fashion-mnist {empty}: no train-images-idx3-ubyte[.gz]"),
    ):
        proc = script(name, *args)
        assert proc.returncode == 2, (name, args, proc.stdout, proc.stderr)
        assert proc.stderr.strip().splitlines()[-1].startswith(message), (proc.stdout, proc.stderr)


def test_student_epochs_fit_the_time_left():
    epochs = load_gpu_profile().student_epochs
    # teachers: 8 epochs in 135 s, two at once -> (135 - 15) / 8 = 15 s an epoch; eight students at once make a
    # student epoch 15 * 8 / 2 = 60 s; 340 s left, less 15 s start-up and 30 s for the report -> 295 / 60 -> 4
    assert epochs(135, 8, 2, 8, 8, 340, cap=8) == 4
    assert epochs(135, 8, 2, 8, 8, 10_000, cap=8) == 8  # never more than the configuration's
    assert epochs(135, 8, 2, 8, 8, 100, cap=8) == 0  # 55 s usable: not one epoch
    # four at a time: two waves of 15 * 4 / 2 = 30 s an epoch each, 340 - 2 * 15 - 30 = 280 -> 280 / 60 -> 4
    assert epochs(135, 8, 2, 8, 4, 340, cap=8) == 4


def test_training_state_is_read_from_fairseq_logs(tmp_path):
    read = load_gpu_profile().nmt_training
    log = tmp_path / "student.log"
    log.write_text(
        "2026-11-27 13:49:21 | INFO | fairseq_cli.train | Stopping training due to cumulative_training_time: 0.0017 > "
        "stop_time_hours: 2.8e-07 hour(s)\n"
        "2026-11-27 13:49:21 | INFO | valid | epoch 003 | valid on 'valid' subset | loss 4.469 | wps 0 | num_updates 211\n"
        "2026-11-27 13:49:21 | INFO | train | epoch 003 | loss 4.483 | wps 6647.5 | ups 21.74 | num_updates 211 | lr 0.001\n")
    assert read(log) == {"state": "stopped by the time guard", "updates": 211, "wps": 6647.5}
    log.write_text("epoch 001:     50 / 130 loss=8.9, num_updates=50, lr=0.0001\n"
                   "fairseq_cli.train | Stopping training due to num_updates: 20 >= max_update: 20\n")
    assert read(log) == {"state": "max-update reached", "updates": 50, "wps": None}
    assert read(tmp_path / "none.log") == {"state": "not started"}


def test_students_get_the_fewest_updates_a_teacher_reached(tmp_path):
    gp = load_gpu_profile()
    assert gp.teacher_updates(tmp_path) == 0
    (tmp_path / "logs").mkdir()
    for name, updates in (("a0_s1", 211), ("a0.1_s1", 190)):
        (tmp_path / "teachers" / name).mkdir(parents=True)
        (tmp_path / "logs" / f"teacher_{name}.log").write_text(f"| train | epoch 009 | loss 2.1 | num_updates {updates} | lr 1e-3\n")
    assert gp.teacher_updates(tmp_path) == 190


def test_prepare_fetches_each_pinned_wheel_once_for_python_312(tmp_path):
    """The wheel part with a stand-in for `python -m pip` (the real one needs the network): the pip commands,
    the versions of requirements*.txt, one version per package, nothing fetched twice."""
    log, fake, carry = tmp_path / "pip.log", tmp_path / "fakepython", tmp_path / "carry"
    fake.write_text(f"""#!/usr/bin/env bash
echo "$*" >> {log}
dir="" prev=""
for a in "$@"; do if [[ $prev == -d || $prev == -w ]]; then dir=$a; fi; prev=$a; done
spec=${{@: -1}} tag=cp312-cp312-manylinux_2_28_x86_64
[[ $3 == wheel ]] && tag=py3-none-any
touch "$dir/$(echo "${{spec%%==*}}" | tr 'A-Z-' 'a-z_')-${{spec##*==}}-$tag.whl"
""")
    fake.chmod(0o755)
    pins = {line.split("==")[0].lower(): line.strip() for f in ("requirements.txt", "requirements-fairseq.txt")
            for line in (REPO / f).read_text().splitlines() if "==" in line and not line.startswith("#")}
    wanted = [pins[n] for n in ("ve_fairseq", "hydra-core", "omegaconf", "bitarray", "sacremoses")]

    first = script("prepare.sh", "--only", "wheels", "--carry", carry, PYTHON=str(fake))
    assert first.returncode == 0, first.stdout + first.stderr
    calls = log.read_text().splitlines()
    assert [c.split()[-1] for c in calls] == wanted + ["antlr4-python3-runtime==4.9.3"]
    for call in calls[:-1]:
        assert call.startswith("-m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp ")
        assert "--platform manylinux_2_28_x86_64" in call and "--platform manylinux2014_x86_64" in call
    assert calls[-1].startswith("-m pip wheel -q --no-deps -w ")
    assert len(list((carry / "wheels").iterdir())) == 6

    (carry / "wheels" / "hydra_core-1.0.0-py3-none-any.whl").touch()  # a stale version would break the install
    again = script("prepare.sh", "--only", "wheels", "--carry", carry, PYTHON=str(fake))
    assert again.returncode == 0 and log.read_text().splitlines() == calls  # nothing fetched again
    assert again.stdout.count("[prepare] have ") == 6 and "removing " in again.stdout
    assert sorted(p.name.split("-")[0] for p in (carry / "wheels").iterdir()) == [
        "antlr4_python3_runtime", "bitarray", "hydra_core", "omegaconf", "sacremoses", "ve_fairseq"]
