"""The Fashion-MNIST grid recipe (recipes/fashion_mnist/run_all.sh, diffusion.sh) on fake idx files: the
ResNet CPU profile's shape at toy size, with more student seeds at T = 1 than elsewhere."""

import json
import os
import subprocess

import pytest

from helpers import BIN, REPO, write_fake_fashion_mnist

RECIPE = REPO / "recipes" / "fashion_mnist"


@pytest.mark.slow
def test_resnet_profile_grid_with_three_seeds_at_t1(tmp_path):
    write_fake_fashion_mnist(tmp_path / "fm", n_train=256, n_test=100)
    small = "--width 0.125 --small-input false --epochs 1 --batch-size 64 --lr 0.05 --nesterov --schedule cosine"
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONWARNINGS="ignore",
               RUNS=str(tmp_path / "runs"), DATA_ROOT=str(tmp_path / "fm"), TEMPS="1 3", STUDENT_SEEDS="0",
               T1_STUDENT_SEEDS="0 1 2", TEACHER_ARGS=f"--arch resnet50 {small}",
               STUDENT_ARGS=f"--arch resnet18 {small} --clip-grad-norm 1", BOOTSTRAP="20")
    profile = ["--config", str(RECIPE / "config.resnet_cpu.sh")]
    grid = subprocess.run(["bash", str(RECIPE / "run_all.sh"), *profile], capture_output=True, text=True, env=env)
    assert grid.returncode == 0, grid.stdout + grid.stderr
    runs = tmp_path / "runs"
    for a in ("0.0", "0.1"):
        students = sorted(p.name for p in runs.glob(f"student_a{a}_*"))
        assert students == [f"student_a{a}_T1_s0", f"student_a{a}_T1_s1", f"student_a{a}_T1_s2", f"student_a{a}_T3_s0"]
        for name in students:
            config = json.loads((runs / name / "config.json").read_text())
            assert config["arch"] == "resnet18" and config["augment"] and config["temperature"] == float(name.split("_T")[1].split("_")[0])
    table = (runs / "table.md").read_text()
    assert table.startswith("### Fashion-MNIST: ResNet-50 teachers -> ResNet-18 students at width 1/4 (pure KD, CPU), test top-1")
    assert "(n=3)" in table
    diffusion = subprocess.run(["bash", str(RECIPE / "diffusion.sh"), *profile], capture_output=True, text=True, env=env)
    assert diffusion.returncode == 0, diffusion.stdout + diffusion.stderr
    for a in ("0.0", "0.1"):
        result = json.loads((runs / "diffusion" / f"a{a}.json").read_text())
        assert {cell: r["models"] for cell, r in result["results"].items()} == {"T1": 3, "T3": 1, "teacher": 1}
        assert len(result["references"]) == 2  # both teachers' softmax, one table each
    assert (runs / "diffusion" / "compare_a0.1_vs_a0.0.md").is_file()
