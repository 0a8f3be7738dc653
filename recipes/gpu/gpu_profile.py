"""What the GPU entry scripts (recipes/gpu/bible.sh, fashion_mnist.sh) compute besides running the recipes.

    python3 recipes/gpu/gpu_profile.py student-epochs --runs RUNS --phase-seconds S --teacher-epochs E \
        --teachers 2 --students 8 --jobs 8 --seconds-left L --cap N
    python3 recipes/gpu/gpu_profile.py teacher-updates --work DIR
    python3 recipes/gpu/gpu_profile.py summary --kind nmt|vision --work DIR --timing FILE --card TEXT \
        --budget S --title TEXT [--headline FILE.md] --out summary.md

student-epochs: how many epochs the image students can train in the time left, from the teachers' phase as
measured on this machine (the time guard of the vision profile, whose runs cannot stop mid-schedule).
teacher-updates: the fewest updates a teacher of an NMT grid trained (the students' budget: as long as their teachers).
summary: one Markdown page with the card, the wall time of each step, what every run trained (updates or
epochs, and whether the time guard stopped it) with its score, and the headline table.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import List, Optional

# fixed cost of a vision phase outside its epochs (interpreter and torch start-up, data load, cuDNN
# autotuning), and what a student phase must leave for the report and the packing of the results
PHASE_START_S = 15.0
REPORT_RESERVE_S = 30.0


def student_epochs(phase_seconds: float, teacher_epochs: int, teachers: int, students: int, jobs: int,
                   seconds_left: float, cap: int) -> int:
    """Epochs for every student so that the student phase ends within `seconds_left`.

    One teacher epoch took (phase - start-up) / epochs of wall time while min(teachers, jobs) runs shared the
    GPU. A student epoch is costed as a teacher epoch (conservative: a ResNet-18 step plus the ResNet-50
    teacher's forward pass is 0.77 of a ResNet-50 step in FLOPs), scaled by how many runs share the GPU at
    once, for each wave of `jobs` runs. 0 means not even one epoch fits.
    """
    per_epoch = max(phase_seconds - PHASE_START_S, 1e-3) / max(teacher_epochs, 1)
    together_t, together_s = min(teachers, jobs), min(students, jobs)
    waves = math.ceil(students / jobs)
    per_student_epoch = per_epoch * together_s / together_t * waves
    usable = seconds_left - PHASE_START_S * waves - REPORT_RESERVE_S
    return max(0, min(cap, int(usable // per_student_epoch)))


# ------------------------------------------------------------------ what each run trained

_UPDATES = re.compile(r"num_updates[ =](\d+)")
_TRAIN_WPS = re.compile(r"\| train \| epoch \d+ \|.*\| wps (\d+(?:\.\d+)?) \|")  # an epoch's training words/s


def nmt_training(log: Path) -> dict:
    """Updates reached, why fairseq stopped and the last epoch's words/s, from a train step's log."""
    if not log.is_file():
        return {"state": "not started"}
    text = log.read_text(errors="replace")
    updates = _UPDATES.findall(text)
    wps = _TRAIN_WPS.findall(text)
    if "Stopping training due to cumulative_training_time" in text:
        state = "stopped by the time guard"
    elif "Stopping training due to num_updates" in text or "already at" in text:
        state = "max-update reached"
    else:
        state = "unfinished"
    return {"state": state, "updates": int(updates[-1]) if updates else 0, "wps": float(wps[-1]) if wps else None}


def teacher_updates(work: Path) -> int:
    """The fewest updates any teacher of the grid in `work` reached (0 without teachers)."""
    runs = sorted((work / "teachers").glob("*")) if (work / "teachers").is_dir() else []
    return min((nmt_training(work / "logs" / f"teacher_{run.name}.log").get("updates", 0) for run in runs), default=0)


def nmt_rows(work: Path) -> List[List[str]]:
    rows = []
    for role, folder in (("teacher", "teachers"), ("student", "students")):
        for run in sorted((work / folder).glob("*")) if (work / folder).is_dir() else []:
            t = nmt_training(work / "logs" / f"{role}_{run.name}.log")
            score = _read(run / "score.json")
            rows.append([role, run.name, str(t.get("updates", 0)), t["state"],
                         _fmt(t.get("wps"), 0), _fmt(score.get("bleu"), 2), _fmt(score.get("chrf"), 2)])
    return rows


def vision_rows(work: Path) -> List[List[str]]:
    rows = []
    runs = [p for p in work.glob("*") if p.is_dir() and p.name.startswith(("teacher_", "student_"))]
    for run in sorted(runs, key=lambda p: (not p.name.startswith("teacher_"), p.name)):
        metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                   if line.strip()] if (run / "metrics.jsonl").is_file() else []
        final = _read(run / "final.json")
        config = _read(run / "config.json")
        planned = config.get("epochs", "?")
        state = "finished" if final else ("unfinished" if metrics else "not started")
        last = metrics[-1] if metrics else {}
        rows.append([run.name.split("_")[0], run.name, f"{len(metrics)}/{planned}", state,
                     _fmt(last.get("images_per_s"), 0), _fmt(final.get("final_top1", last.get("val_top1")), 2)])
    return rows


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _fmt(v: Optional[float], digits: int) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def markdown_table(header: List[str], rows: List[List[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def summary(kind: str, work: Path, timing: Path, card: str, budget: float, title: str, headline: Optional[Path]) -> str:
    steps = [line.split("\t") for line in timing.read_text().splitlines() if line.strip()] if timing.is_file() else []
    total = sum(float(s[1]) for s in steps)
    out = [f"# {title}", "", f"- card: {card}", f"- wall time of the steps below: {total:.0f} s "
           f"(time budget {budget:.0f} s; the device's start and the file transfers are not included)", "",
           "## Steps", "", markdown_table(["step", "seconds", "status"], steps), "## Runs", ""]
    if kind == "nmt":
        out.append(markdown_table(["role", "run", "updates", "stopped because", "train words/s (last epoch)", "test BLEU", "test chrF"],
                                  nmt_rows(work)))
    else:
        out.append(markdown_table(["role", "run", "epochs (done/planned)", "state", "train images/s (last epoch)", "test top-1"], vision_rows(work)))
    if headline is not None and headline.is_file():
        out += ["## Table", "", headline.read_text()]
    else:
        out += ["## Table", "", "No table: no run finished.", ""]
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="gpu_profile.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("student-epochs", help="epochs for the image students in the time left")
    e.add_argument("--phase-seconds", type=float, required=True, help="wall time of the teachers' phase")
    e.add_argument("--teacher-epochs", type=int, required=True)
    e.add_argument("--teachers", type=int, required=True)
    e.add_argument("--students", type=int, required=True)
    e.add_argument("--jobs", type=int, required=True, help="runs at once (the recipe's JOBS)")
    e.add_argument("--seconds-left", type=float, required=True)
    e.add_argument("--cap", type=int, required=True, help="the configuration's epochs (never more)")
    u = sub.add_parser("teacher-updates", help="the fewest updates a teacher trained")
    u.add_argument("--work", type=Path, required=True, help="the grid's folder")
    s = sub.add_parser("summary", help="the results page")
    s.add_argument("--kind", choices=("nmt", "vision"), required=True)
    s.add_argument("--work", type=Path, required=True, help="the grid's folder")
    s.add_argument("--timing", type=Path, required=True, help="step<TAB>seconds<TAB>status lines")
    s.add_argument("--card", required=True)
    s.add_argument("--budget", type=float, required=True)
    s.add_argument("--title", required=True)
    s.add_argument("--headline", type=Path, default=None, help="the headline table (markdown)")
    s.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    if a.cmd == "student-epochs":
        if min(a.teacher_epochs, a.teachers, a.students, a.jobs) < 1:
            p.error("--teacher-epochs, --teachers, --students and --jobs must be at least 1")
        print(student_epochs(a.phase_seconds, a.teacher_epochs, a.teachers, a.students, a.jobs, a.seconds_left, a.cap))
        return 0
    if a.cmd == "teacher-updates":
        print(teacher_updates(a.work))
        return 0
    text = summary(a.kind, a.work, a.timing, a.card, a.budget, a.title, a.headline)
    tmp = a.out.with_name(a.out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(a.out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
