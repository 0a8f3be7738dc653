"""How long a recipe run took, step by step, from OUT/logs/steps.tsv (written by recipes/lib/common.sh `step`).

    python -m lskd.step_times OUT/logs/steps.tsv --profile "bible demo" --command "make demo" [--out FILE.md] [--json FILE]
    python -m lskd.step_times --estimate "bible demo" --json docs/results/profile_times.json

Prints a markdown table: each step's wall time, then the run's wall time (first start to last end: steps that ran
at once overlap) and the sum of the steps, with the machine (CPU model and cores, GPUs when visible) and the
commit. A step run twice (resumed, or failed and rerun) counts its last run. --json appends the run's totals to
a JSON file of profiles (docs/results/profile_times.json), which the recipes' --dry-run quotes as the estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

from lskd.errors import LskdError
from lskd.progress import clock


def read_steps(path: Path) -> List[Tuple[str, int, int, str]]:
    """(name, start, end, status) per step, the last run of each, in start order."""
    if not path.is_file():
        raise LskdError(f"{path}: no such file (a recipe run writes OUT/logs/steps.tsv)")
    last: Dict[str, Tuple[str, int, int, str]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        parts = line.split("\t")
        if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
            raise LskdError(f"{path}: line {n}: expected NAME<TAB>START<TAB>END<TAB>STATUS, got {line!r}")
        last[parts[0]] = (parts[0], int(parts[1]), int(parts[2]), parts[3])
    if not last:
        raise LskdError(f"{path}: no steps")
    return sorted(last.values(), key=lambda s: s[1])


def machine() -> str:
    from lskd.machine import cpu_model

    gpus = ""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            gpus = f", {len(out.stdout.strip().splitlines())} GPU(s): {out.stdout.splitlines()[0].split(' (')[0]}"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return f"{cpu_model()}, {os.cpu_count()} cores{gpus}"


def commit() -> str:
    repo = Path(__file__).resolve().parents[1]
    out = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def table(steps, profile: str, command: str, where: str, rev: str) -> Tuple[str, dict]:
    wall = max(s[2] for s in steps) - min(s[1] for s in steps)
    busy = sum(s[2] - s[1] for s in steps)
    lines = [f"Time of `{command}` ({profile}) on {where}, commit {rev}:", "", "| step | wall time | status |",
             "|---|---|---|"]
    lines += [f"| {name} | {clock(end - start)} | {status} |" for name, start, end, status in steps]
    lines += [f"| **whole run** (first start to last end) | **{clock(wall)}** | |",
              f"| sum of the steps (steps that ran at once overlap) | {clock(busy)} | |", ""]
    return "\n".join(lines), {"profile": profile, "command": command, "wall_seconds": wall, "step_seconds": busy,
                              "steps": len(steps), "machine": where, "commit": rev}


def estimate(profile: str, path: Path) -> str:
    """The line recipes print first: the recorded wall time of `profile` in the JSON file, or that there is none."""
    try:
        r = json.loads(path.read_text(encoding="utf-8"))[profile]
    except (OSError, ValueError, KeyError):
        return f"estimate: no measured time for {profile!r} (docs/results/profile_times.json; lskd/step_times.py records one)"
    w = r["wall_seconds"]
    return (f"estimate: about {w // 3600}h{w // 60 % 60:02d}m, measured for {profile!r} by `{r['command']}` on "
            f"{r['machine']} at commit {r['commit']} (docs/results/profile_times.json)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("steps", type=Path, nargs="?", help="OUT/logs/steps.tsv of a recipe run")
    p.add_argument("--profile", help="the profile's name, e.g. 'bible demo'")
    p.add_argument("--command", help="the command that ran it")
    p.add_argument("--estimate", metavar="PROFILE", help="only print the recorded estimate of PROFILE from --json")
    p.add_argument("--out", type=Path, help="write the markdown table here too")
    p.add_argument("--json", type=Path, help="record the totals under --profile in this JSON file")
    p.add_argument("--commit", help="the commit the run used (default: the checkout's HEAD now)")
    a = p.parse_args(argv)
    if a.estimate:
        print(estimate(a.estimate, a.json or Path("docs/results/profile_times.json")))
        return 0
    if not (a.steps and a.profile and a.command):
        p.error("a steps.tsv, --profile and --command are needed (or --estimate PROFILE)")
    try:
        md, record = table(read_steps(a.steps), a.profile, a.command, machine(), a.commit or commit())
    except LskdError as e:
        print(f"step_times: error: {e}", file=sys.stderr)
        return 2
    print(md)
    if a.out:
        a.out.write_text(md + "\n", encoding="utf-8")
    if a.json:
        known = json.loads(a.json.read_text(encoding="utf-8")) if a.json.is_file() else {}
        known[a.profile] = record
        a.json.write_text(json.dumps(known, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
