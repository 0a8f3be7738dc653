"""Multi-process training, kill-and-resume and determinism of `fairseq-train --criterion ls_kd` on CPU.

One reference run per teacher mode (online teacher, top-K cache): 1 rank, --update-freq 2, 8 updates,
a checkpoint every 2 updates. Against it: the same run as 2 ranks (`lskd train-ranks`), the same run
again (determinism), and the same run SIGKILLed at a random point and rerun (resume).
"""

import json
import os
import random
import re
import signal
import subprocess
import time

import pytest
import torch

from helpers import BIN, TINY_TRAIN, build_cache, require_fairseq, run, tool

require_fairseq()  # every test here runs fairseq-train

UPDATES = 8  # an epoch of the tiny corpus is 5 updates of 2 batches: the runs cross an epoch end
KD = ["--criterion", "ls_kd", "--kd-lambda", "0.9", "--kd-temperature", "2", "--label-smoothing", "0.1"]
RUN = ["--max-update", str(UPDATES), "--save-interval-updates", "2"]
# fairseq rounds logged losses to 3 decimals; 2 ranks sum gradients in another order than 1 rank
# accumulating 2 micro-batches, so parameters agree to float32 rounding: 1e-5 of the norm of all of
# them. Single tensors are held to 1e-3 only: attention's key biases get a zero gradient in exact
# arithmetic (softmax ignores them), and Adam turns the float noise in it into steps of its own.
PARAM_RTOL = 1e-5
TENSOR_RTOL = 1e-3


def records(stdout: str, prefix: str):
    """fairseq's json log records ('train_inner' per update, 'valid' per validation)."""
    out = []
    for line in stdout.splitlines():
        if f"| {prefix} | " in line:
            out.append(json.loads(line.split(f"| {prefix} | ", 1)[1]))
    return out


def losses(stdout: str):
    """{update: (loss, nll_loss, kd_loss)} from the per-update records, as logged (3 decimals)."""
    return {int(r["num_updates"]): tuple(float(r[k]) for k in ("loss", "nll_loss", "kd_loss"))
            for r in records(stdout, "train_inner")}


def params(save_dir):
    return torch.load(save_dir / "checkpoint_last.pt", map_location="cpu", weights_only=False)["model"]


def assert_params_close(a, b):
    assert a.keys() == b.keys()
    flat = [torch.cat([t[k].double().flatten() for k in a]) for t in (a, b)]
    assert (flat[0] - flat[1]).norm() <= PARAM_RTOL * flat[0].norm()
    for k in a:
        diff = (a[k].double() - b[k].double()).norm().item()
        assert diff <= TENSOR_RTOL * max(a[k].double().norm().item(), 1e-6), (k, diff)


@pytest.fixture(scope="module")
def teachers(tiny_data, tiny_teacher, tmp_path_factory):
    """--teacher-path or --kd-topk-cache (a top-4 cache of the same teacher), by mode."""

    cache = tmp_path_factory.mktemp("scale_cache") / "c"
    build_cache(tiny_data / "bin", tiny_teacher, cache, ["train", "valid"], 4, max_tokens=500, cpu=True)
    return {"online": ["--teacher-path", str(tiny_teacher)], "cache": ["--kd-topk-cache", str(cache)]}


def train_args(tiny_data, teachers, mode, save_dir):
    return [str(tiny_data / "bin"), *TINY_TRAIN, *KD, *teachers[mode], *RUN, "--save-dir", str(save_dir)]


@pytest.fixture(scope="module")
def reference(tiny_data, teachers, tmp_path_factory):
    """One uninterrupted 1-rank run per mode (--update-freq 2), made once: {mode: (save_dir, stdout)}."""
    done = {}

    def get(mode):
        if mode not in done:
            save = tmp_path_factory.mktemp(f"ref_{mode}")
            proc = run([tool("fairseq-train"), *train_args(tiny_data, teachers, mode, save), "--update-freq", "2"])
            done[mode] = (save, proc.stdout)
        return done[mode]

    return get


MODES = ["online", "cache"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_two_ranks_equal_one_rank_with_update_freq(tiny_data, teachers, reference, mode, tmp_path):
    ref_dir, ref_out = reference(mode)
    save = tmp_path / "r2"
    proc = run([tool("lskd"), "train-ranks", "--nproc", "2", "--threads", "1", "--",
                *train_args(tiny_data, teachers, mode, save)])
    assert "all 2 ranks finished" in proc.stderr
    assert (save / "rank0.log").is_file() and (save / "rank1.log").is_file()
    two, one = losses(proc.stdout), losses(ref_out)
    assert sorted(two) == list(range(1, UPDATES + 1)) and two.keys() == one.keys()
    for u in one:  # loss, nll_loss, kd_loss per update: summed over ranks = summed over micro-batches
        assert two[u] == pytest.approx(one[u], abs=1.5e-3), (u, two[u], one[u])
    ref_valid, valid = records(ref_out, "valid"), records(proc.stdout, "valid")
    assert len(valid) == len(ref_valid) >= 1
    for a, b in zip(valid, ref_valid):
        for k in ("valid_loss", "valid_nll_loss", "valid_kd_loss"):
            assert float(a[k]) == pytest.approx(float(b[k]), abs=1.5e-3)
    assert_params_close(params(save), params(ref_dir))


def test_launcher_refuses_its_own_options(tmp_path):
    proc = run([tool("lskd"), "train-ranks", "--nproc", "2", "--", "data", "--ddp-backend", "c10d"], check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("lskd train-ranks: error: --ddp-backend is set by lskd train-ranks itself; "
                                   "drop it (or launch fairseq-train yourself)")


@pytest.mark.parametrize("argv, message", [
    (["--nproc", "0", "--", "data"], "--nproc must be >= 1, got 0"),
    (["--nproc", "2"], "no fairseq-train arguments; usage: lskd train-ranks --nproc N -- DATA [fairseq-train options]"),
])
def test_launcher_refuses_bad_arguments(tmp_path, argv, message):
    proc = run([tool("lskd"), "train-ranks", *argv], check=False, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == f"lskd train-ranks: error: {message}"
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["rank1", "launcher"])
def test_no_rank_outlives_a_failure(tiny_data, teachers, tmp_path, victim):
    """SIGKILL rank 1 mid-training (an OOM kill): rank 0 is stopped, the launcher exits 128 + 9.
    SIGKILL the launcher itself: the kernel kills both ranks (PR_SET_PDEATHSIG)."""
    save = tmp_path / "r2"
    args = train_args(tiny_data, teachers, "cache", save) + ["--max-update", "100000"]
    env = dict(os.environ, PYTHONWARNINGS="ignore", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    launcher = subprocess.Popen([tool("lskd"), "train-ranks", "--nproc", "2", "--threads", "1", "--", *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in launcher.stdout:
        if "| train_inner | " in line:
            break
    ranks = [int(pid) for pid in open(f"/proc/{launcher.pid}/task/{launcher.pid}/children").read().split()]
    assert len(ranks) == 2

    def rank_of(pid):
        argv = open(f"/proc/{pid}/cmdline").read().split("\0")
        return int(argv[argv.index("--distributed-rank") + 1])

    if victim == "rank1":
        os.kill(next(pid for pid in ranks if rank_of(pid) == 1), signal.SIGKILL)
        _, err = launcher.communicate(timeout=120)
        assert launcher.returncode == 128 + signal.SIGKILL
        assert "lskd train-ranks: rank 1 failed (exit status -9); stopping ranks [0]" in err
    else:
        launcher.kill()
        launcher.communicate(timeout=60)
    deadline = time.time() + 60
    while any(map(alive, ranks)) and time.time() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, ranks))


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting for whoever inherited it)."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_same_seed_gives_bit_identical_runs(tiny_data, teachers, reference, mode, tmp_path):
    ref_dir, ref_out = reference(mode)
    proc = run([tool("fairseq-train"), *train_args(tiny_data, teachers, mode, tmp_path / "again"), "--update-freq", "2"])
    assert losses(proc.stdout) == losses(ref_out)
    a, b = params(tmp_path / "again"), params(ref_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def tensors_named(obj, prefix=""):
    """Every (dotted name, tensor) inside a checkpoint dict."""
    if torch.is_tensor(obj):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from tensors_named(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from tensors_named(v, f"{prefix}.{i}")


@pytest.mark.slow
@pytest.mark.parametrize("stop", [5, 6])  # the end of epoch 1; mid-epoch 2
def test_resume_in_a_later_epoch_draws_the_same_batches(tiny_data, teachers, reference, stop, tmp_path):
    """A run stopped at `stop` updates and resumed to the end equals the uninterrupted run: fairseq alone
    regroups the examples under the resumed epoch's seed (fairseq_plugins/resume_batches.py)."""
    ref_dir, ref_out = reference("cache")
    args = [tool("fairseq-train"), *train_args(tiny_data, teachers, "cache", tmp_path), "--update-freq", "2"]
    run(args + ["--max-update", str(stop)])
    resumed = run(args)
    assert re.search(rf"Loaded checkpoint .* \(epoch 2 @ {stop} updates\)", resumed.stdout)
    after = losses(resumed.stdout)
    assert sorted(after) == list(range(stop + 1, UPDATES + 1))
    assert after == {u: loss for u, loss in losses(ref_out).items() if u > stop}
    a, b = params(tmp_path), params(ref_dir)
    assert all(torch.equal(a[k], b[k]) for k in b)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_sigkill_mid_epoch_and_resume(tiny_data, tiny_teacher, teachers, reference, mode, tmp_path):
    ref_dir, ref_out = reference(mode)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    # a random update of the first 6 (an epoch is 5) and a random moment in the next update, validation or
    # checkpoint save; not at the end: fairseq resuming a checkpoint already at --max-update trains one
    # update more (docs/SCALING.md)
    kill_after, delay = rng.randint(2, 6), rng.uniform(0.0, 0.05)
    save = tmp_path / "killed"
    cmd = [tool("fairseq-train"), *train_args(tiny_data, teachers, mode, save), "--update-freq", "2"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONWARNINGS="ignore", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen = 0
    for line in proc.stdout:
        if "| train_inner | " in line:
            seen = int(json.loads(line.split("| train_inner | ", 1)[1])["num_updates"])
            if seen >= kill_after:
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait()
    proc.stdout.close()
    where = f"(random seed {seed}: SIGKILL {delay:.2f} s after update {kill_after})"
    assert proc.returncode == -signal.SIGKILL, where
    resumed = run(cmd)
    loaded = re.findall(r"Loaded checkpoint .* \(epoch \d+ @ (\d+) updates\)", resumed.stdout)
    start = int(loaded[0]) if loaded else 0  # killed before the first checkpoint: a fresh start
    assert start < UPDATES, where
    first = min(losses(resumed.stdout))
    assert first == start + 1, where
    ref = losses(ref_out)
    assert all(losses(resumed.stdout)[u] == ref[u] for u in range(first, UPDATES + 1)), where
    a, b = params(save), params(ref_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), where
    # no checkpoint holds teacher weights: only the student's tensors (plus optimizer state of them)
    student = {k: v.shape for k, v in b.items()}
    for ckpt in save.glob("*.pt"):
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        assert set(state["model"]) == set(student) and not state.get("criterion"), ckpt
        assert not any("teacher" in name for name, _ in tensors_named(state)), ckpt
        numel = sum(t.numel() for _, t in tensors_named(state))
        assert numel <= 4 * sum(v.numel() for v in b.values()), ckpt  # model + Adam's two moments + slack
