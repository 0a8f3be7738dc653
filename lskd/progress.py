"""One progress line for a recipe step from its log (recipes/lib/common.sh `step` calls it while the step runs).

    python -m lskd.progress --log OUT/logs/NAME.log --name NAME --elapsed SECONDS [--total UPDATES] [--final RC]

What the log shows last: fairseq-train's update (`num_updates=N` / `num_updates N`) and loss, with an estimate
of the time left from the rate so far when the total (--max-update) is known; `lskd vision`'s epoch (and step)
lines; or a tqdm bar's `done/total` (lskd cache, distill-data, nmt-features); else only the elapsed time. Standard library only: it runs every
few seconds next to the training it reports on.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Optional

UPDATE = re.compile(r"num_updates[ =](\d+)")
LOSS = re.compile(r"\bloss[ =]([0-9.]+)")
BAR = re.compile(r"(\d+)/(\d+) \[")
EPOCH = re.compile(r"^epoch (\d+)/(\d+)(?: step (\d+)/(\d+))? (?:train_)?loss ([0-9.]+)", re.M)  # lskd vision
TAIL_BYTES = 64 * 1024  # the end of the log is enough: progress is its last lines


def clock(seconds: float) -> str:
    seconds = int(seconds)
    h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - TAIL_BYTES))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def line(text: str, name: str, elapsed: float, total: Optional[int], final: Optional[int] = None) -> str:
    """The progress line for a log's text."""
    head = f"[{name}] " + ("done" if final == 0 else f"FAILED (exit {final})" if final is not None else "running")
    updates = UPDATE.findall(text)
    if updates:
        n = int(updates[-1])
        losses = [m for ln in text.splitlines() if UPDATE.search(ln) for m in LOSS.findall(ln)[:1]]
        parts = [f"update {n}" + (f"/{total}" if total else "")]
        if losses:
            parts.append(f"loss {float(losses[-1]):.3f}")
        parts.append(f"{clock(elapsed)} elapsed")
        if total and 0 < n < total and final is None:
            parts.append(f"~{clock(elapsed * (total - n) / n)} left")
        return f"{head}: " + ", ".join(parts)
    epochs = EPOCH.findall(text)
    if epochs:
        e, n, step, steps, loss = epochs[-1]
        done = (int(e) - (0 if not step else 1) + (int(step) / int(steps) if step else 0)) / int(n)
        where = f"epoch {e}/{n}" + (f" step {step}/{steps}" if step else " done")
        rest = f", ~{clock(elapsed * (1 - done) / done)} left" if 0 < done < 1 and final is None else ""
        return f"{head}: {where}, loss {float(loss):.3f}, {clock(elapsed)} elapsed{rest}"
    bars = BAR.findall(text.replace("\r", "\n"))
    if bars:
        done, of = map(int, bars[-1])
        rest = f", ~{clock(elapsed * (of - done) / done)} left" if 0 < done < of and final is None else ""
        return f"{head}: {done}/{of}, {clock(elapsed)} elapsed{rest}"
    return f"{head}: {clock(elapsed)} elapsed"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--log", required=True, type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--elapsed", required=True, type=float)
    p.add_argument("--total", type=int, default=None, help="the step's --max-update, when it trains")
    p.add_argument("--final", type=int, default=None, help="the step's exit status, once it has ended")
    a = p.parse_args(argv)
    print(line(tail(a.log), a.name, a.elapsed, a.total, a.final))
    return 0


if __name__ == "__main__":
    sys.exit(main())
