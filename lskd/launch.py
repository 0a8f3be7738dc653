"""`lskd train-ranks`: fairseq-train with N processes on one CPU machine (gloo), for ls_kd or anything else.

    lskd train-ranks --nproc 2 -- DATA --user-dir fairseq_plugins --criterion ls_kd ... --save-dir DIR

Why a launcher: with fairseq 0.12 on a machine without GPUs, `torchrun ... fairseq-train --cpu` dies in
fairseq's own launch code (it takes the rank modulo torch.cuda.device_count(), which is 0), and ranks
started by hand die in DistributedDataParallel under the default --ddp-backend (it passes device_ids
[0] with CPU parameters). The path that works is fairseq's own distributed engine with an explicit
TCP rendezvous, one process per rank and `--ddp-backend legacy_ddp` (fairseq's all-reduce of
gradients, which works on CPU tensors). This command starts those ranks with a free port, gives each
nproc/N threads, streams rank 0's output and writes every rank's to DIR/rank<R>.log, and stops all
ranks as soon as one fails (its exit status is the command's) or the launcher itself is stopped
(SIGINT, SIGTERM, even SIGKILL). On GPUs use torchrun/SLURM with nccl
(README, "Scaling out"): fairseq's standard launch works there.

Each rank runs the whole criterion: every rank loads its own frozen teacher (--teacher-path) or
memory-maps the shared cache read-only (--kd-topk-cache); fairseq sums the logging outputs over
ranks (ls_kd's are all sums), so logged losses are per token of the global batch.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

from lskd.errors import LskdError

# options the launcher sets itself; a user who gives them wants another launch, not this one
OWN_OPTIONS = ("--distributed-init-method", "--distributed-rank", "--distributed-world-size", "--distributed-no-spawn",
               "--distributed-backend", "--distributed-port", "--device-id", "--ddp-backend", "--distributed-num-procs")


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it); rank 0 binds it a moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def option_value(args: List[str], name: str, default: Optional[str] = None) -> Optional[str]:
    """The value of `--name V` or `--name=V` in an argument list (last one wins, as argparse does)."""
    value = default
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            value = args[i + 1]
        elif a.startswith(name + "="):
            value = a.split("=", 1)[1]
    return value


def rank_command(train_args: List[str], rank: int, world: int, port: int) -> List[str]:
    """fairseq-train for one rank: the user's arguments plus the CPU distributed settings."""
    cmd = [sys.executable, "-m", "fairseq_cli.train", *train_args,
           "--distributed-init-method", f"tcp://127.0.0.1:{port}", "--distributed-rank", str(rank),
           "--distributed-world-size", str(world), "--distributed-no-spawn", "--distributed-backend", "gloo",
           "--ddp-backend", "legacy_ddp"]
    if "--cpu" not in train_args:
        cmd.append("--cpu")
    return cmd


def _die_with_launcher() -> None:
    """Runs in each rank before exec: the kernel SIGKILLs the rank when the launcher dies, however it
    dies (Linux prctl PR_SET_PDEATHSIG), so a killed job never leaves ranks writing checkpoints."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def _stop(procs, sig=signal.SIGTERM, grace: float = 10.0) -> None:
    """Signal every rank still running, then SIGKILL the ones that do not exit within `grace` s."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(sig)
    deadline = time.time() + grace
    for p in procs:
        try:
            p.wait(timeout=max(deadline - time.time(), 0.1))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(train_args: List[str], nproc: int, log_dir: Path, threads: Optional[int] = None) -> int:
    """Run fairseq-train as `nproc` ranks; returns 0, or the exit status of the first rank that failed."""
    if nproc < 1:
        raise LskdError(f"--nproc must be >= 1, got {nproc}")
    given = [o for o in OWN_OPTIONS if any(a == o or a.startswith(o + "=") for a in train_args)]
    if given:
        raise LskdError(f"{given[0]} is set by lskd train-ranks itself; drop it (or launch fairseq-train yourself)")
    if not train_args:
        raise LskdError("no fairseq-train arguments; usage: lskd train-ranks --nproc N -- DATA [fairseq-train options]")
    threads = threads or max((os.cpu_count() or 1) // nproc, 1)
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    procs, logs, files = [], [], []
    signal.signal(signal.SIGTERM, _terminated)  # SLURM/recipes stop jobs with SIGTERM: stop the ranks too
    print(f"lskd train-ranks: {nproc} ranks x {threads} threads, rendezvous tcp://127.0.0.1:{port}, "
          f"logs {log_dir}/rank<R>.log", file=sys.stderr, flush=True)
    try:
        for rank in range(nproc):
            log = log_dir / f"rank{rank}.log"
            f = open(log, "w", buffering=1)  # line-buffered: `tail -f` shows progress
            files.append(f)
            logs.append(log)
            procs.append(subprocess.Popen(rank_command(train_args, rank, nproc, port), env=env, stdout=subprocess.PIPE
                                          if rank == 0 else f, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                          preexec_fn=_die_with_launcher))
        return _watch(procs, logs, files[0])
    except KeyboardInterrupt:
        _stop(procs, signal.SIGINT)
        return 130
    finally:
        _stop(procs)
        for f in files:
            f.close()


def _watch(procs, logs, rank0_log) -> int:
    """Copy rank 0's output to stdout and its log; return when all ranks end or one fails."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(procs[0].stdout, selectors.EVENT_READ)
    rank0_open = True
    peak_rss = {}
    while True:
        if rank0_open:
            for _key, _ in sel.select(timeout=0.2):
                line = procs[0].stdout.readline()
                if not line:
                    sel.unregister(procs[0].stdout)
                    rank0_open = False
                    break
                sys.stdout.write(line)
                rank0_log.write(line)
            sys.stdout.flush()
        else:
            time.sleep(0.2)
        for rank, p in enumerate(procs):
            if p.returncode is not None or rank in peak_rss:
                continue
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid == 0:
                continue
            p.returncode = os.waitstatus_to_exitcode(status)
            peak_rss[rank] = usage.ru_maxrss / 1024  # KiB on Linux
            if p.returncode != 0:
                code = p.returncode if p.returncode > 0 else 128 - p.returncode
                others = [r for r, q in enumerate(procs) if q.returncode is None]
                print(f"lskd train-ranks: rank {rank} failed (exit status {p.returncode}); stopping ranks "
                      f"{others}; last lines of {logs[rank]}:\n{_tail(logs[rank])}", file=sys.stderr, flush=True)
                return code
        if len(peak_rss) == len(procs) and not rank0_open:
            summary = ", ".join(f"rank {r} {peak_rss[r]:.0f} MiB" for r in sorted(peak_rss))
            print(f"lskd train-ranks: all {len(procs)} ranks finished; peak RSS {summary}", file=sys.stderr, flush=True)
            return 0


def main(argv: List[str]) -> int:
    if "--" in argv:
        split = argv.index("--")
        own, train_args = argv[:split], argv[split + 1:]
    else:
        own, train_args = argv, []
    p = argparse.ArgumentParser(prog="lskd train-ranks", description=__doc__.split("\n\n")[0],
                                usage="lskd train-ranks --nproc N [--threads T] [--log-dir DIR] -- DATA [fairseq-train options]",
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--nproc", type=int, required=True, help="number of ranks (processes) on this machine")
    p.add_argument("--threads", type=int, default=None, help="torch threads per rank (default: CPU cores / nproc)")
    p.add_argument("--log-dir", type=Path, default=None,
                   help="where rank<R>.log go (default: the fairseq --save-dir, fairseq's default 'checkpoints')")
    args = p.parse_args(own)
    log_dir = args.log_dir or Path(option_value(train_args, "--save-dir", "checkpoints"))
    return launch(train_args, args.nproc, log_dir, args.threads)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
