"""Collect a grid of runs (each run directory's final.json) into an alpha x T table: markdown, CSV, PNG.

Rows: teacher LS alpha; columns: the teacher's own top-1, then the students' top-1 per temperature T.
Cells are mean +- sample std over seeds (n shown when it differs between cells).
"""

from __future__ import annotations

import csv
import glob
import json
import os
import statistics
from collections import defaultdict
from typing import Dict, List, Tuple

from lskd.cli import LskdError


def collect(runs_dir: str, metric: str = "final_top1") -> Tuple[Dict, Dict]:
    """teachers[alpha] -> [values]; students[(alpha, T)] -> [values]."""
    paths = sorted(glob.glob(os.path.join(runs_dir, "**", "final.json"), recursive=True))
    if not paths:
        raise LskdError(f"--runs: no final.json found under {runs_dir} (finished runs write one)")
    teachers, students = defaultdict(list), defaultdict(list)
    for p in paths:
        with open(p) as f:
            r = json.load(f)
        if metric not in r:
            raise LskdError(f"--metric: {p} has no {metric!r}; expected one of final_top1, best_top1, final_top5")
        if r["role"] == "teacher":
            teachers[float(r["label_smoothing"])].append(r[metric])
        else:
            alpha = float((r.get("teacher_meta") or {}).get("label_smoothing", float("nan")))
            students[(alpha, float(r["temperature"]))].append(r[metric])
    return teachers, students


def _fmt(v: List[float]) -> str:
    if not v:
        return "-"
    m = statistics.mean(v)
    return f"{m:.2f} ± {statistics.stdev(v):.2f} (n={len(v)})" if len(v) > 1 else f"{m:.2f} (n=1)"


def _tfmt(t: float) -> str:
    return f"{t:g}"


def write_table(runs_dir: str, out_prefix: str, metric: str = "final_top1", title: str = "") -> dict:
    teachers, students = collect(runs_dir, metric)
    alphas = sorted(set(teachers) | {a for a, _ in students})
    temps = sorted({t for _, t in students})
    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    head = ["teacher alpha", "teacher"] + [f"T={_tfmt(t)}" for t in temps]
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    for a in alphas:
        cells = [f"{a:g}", _fmt(teachers.get(a, []))] + [_fmt(students.get((a, t), [])) for t in temps]
        lines.append(f"| {' | '.join(cells)} |")
    md = (f"{title}\n\n" if title else "") + f"Metric: {metric} (val/test top-1 %, mean ± std over seeds)\n\n" + "\n".join(lines) + "\n"
    with open(out_prefix + ".md", "w") as f:
        f.write(md)
    with open(out_prefix + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["teacher_alpha", "role", "temperature", "mean", "std", "n", "values"])
        for a in alphas:
            v = teachers.get(a, [])
            if v:
                w.writerow([a, "teacher", "", f"{statistics.mean(v):.4f}", f"{statistics.stdev(v):.4f}" if len(v) > 1 else "", len(v), " ".join(f"{x:.4f}" for x in v)])
            for t in temps:
                v = students.get((a, t), [])
                if v:
                    w.writerow([a, "student", t, f"{statistics.mean(v):.4f}", f"{statistics.stdev(v):.4f}" if len(v) > 1 else "", len(v), " ".join(f"{x:.4f}" for x in v)])
    png = out_prefix + ".png"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for a in alphas:
            ts = [t for t in temps if students.get((a, t))]
            if not ts:
                continue
            means = [statistics.mean(students[(a, t)]) for t in ts]
            errs = [statistics.stdev(students[(a, t)]) if len(students[(a, t)]) > 1 else 0.0 for t in ts]
            xs = list(range(len(ts)))
            ax.errorbar(xs, means, yerr=errs, marker="o", capsize=3, label=f"student, teacher alpha={a:g}")
            if teachers.get(a):
                ax.axhline(statistics.mean(teachers[a]), linestyle=":", color=ax.lines[-1].get_color(), label=f"teacher alpha={a:g}")
        ax.set_xticks(range(len(temps)))
        ax.set_xticklabels([_tfmt(t) for t in temps])
        ax.set_xlabel("KD temperature T")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(title or "student top-1 vs T", fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(png, dpi=120)
        plt.close(fig)
    except ImportError:
        png = ""
    print(md)
    return {"md": out_prefix + ".md", "csv": out_prefix + ".csv", "png": png}
