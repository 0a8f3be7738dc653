"""`lskd report`: a sweep's scores -> the paper's alpha x T table (markdown), CSVs, a PNG plot, and verdicts.

    lskd report --runs RUNS_DIR --out results/bible_grid [--metric bleu] [--digits 2] [--title TEXT]
    lskd report --runs RUNS_DIR --list-metrics      # the BLEU/chrF keys every score.json has, headline first
    lskd report --runs TABLE_runs.csv --out ...     # a committed per-run CSV (what an earlier report wrote)
    lskd report --runs TABLE.csv --out ...          # a committed cell CSV (means, stds, n) when the runs are gone

Input: RUNS_DIR is searched recursively for files named `score.json`, one per trained model:

    {"role": "student",        # or "teacher", or "baseline" (the student's model trained on gold data alone)
     "teacher_alpha": 0.1,     # label smoothing of the teacher (of this model itself when role = teacher; none for a baseline)
     "temperature": 2.0,       # KD temperature T (students only; omitted or null for teachers)
     "seed": 1,                # optional, default 0; several seeds of one cell are averaged
     "teacher_seed": 1,        # optional: which teacher (seed) taught this student, or which seed this teacher is
     "bleu": 12.3, "chrf": 40.1, "signature": "nrefs:1|case:mixed|...",   # any metric keys
     "conventions": {"bleu": "detokenised sacreBLEU ..."}}                 # what each number is (lskd score)

--metric names the key to tabulate (bleu by default; bleu_tok, bleu_compound_split, chrf, acc1, ... as the
runs provide; see `lskd score --help` for the BLEU conventions). The table's heading names the metric's
convention (from the files' "conventions", else lskd.scoring.METRICS); files that disagree on it are an
error, so that one table never mixes conventions. Other keys are ignored. Two files for the same (role,
teacher_alpha, temperature, teacher_seed, seed) are an error. One runs folder may hold the students of
several teacher seeds: a cell pools them, and pattern 2 is then judged over teacher seeds.

Verdicts (lskd/verdicts.py; the rules are printed under the table): every comparison uses the seed values
of its cells (Welch's t interval), "seen" only when significant in the paper's direction after Holm's
correction over the table's tests; a cell of one seed cannot tell; pattern 2 with one teacher per alpha
whose own gap explains the students' is "confounded with teacher quality"; "about equal" (pattern 3, NMT)
is an equivalence test within --equivalence-margin; pattern 5 (the T = 64 collapse) is judged for NMT only
(--modality, from the metric by default).

Output:
  PREFIX.md       rows: the teacher on top, then T = 1, 2, 3, 64, ... (ascending), then "no KD" (the baselines'
                  mean, the same in every column); columns: teacher alpha (ascending). A cell is the mean over
                  seeds, "mean ± std (n=N)" when N > 1 (sample std); "–" where no run exists. Below: the
                  signature(s), the verdicts with their intervals, and the rules that decided them.
  PREFIX.csv      one row per cell: role, teacher_alpha, temperature, metric, mean, std, n, seeds
  PREFIX_runs.csv one row per run: role, teacher_alpha, temperature, teacher_seed, seed, metric, value, file
  PREFIX.png      metric vs T (log-2 axis) per teacher alpha, error bars = std, the teacher as a dashed line
  PREFIX.json     what produced these files (inputs, options, command)
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from lskd.errors import LskdError
from lskd.fileio import atomic_path, command_line, read_json, write_json, write_text
from lskd.scoring import METRICS
from lskd.verdicts import RULES, Summary, Test, contrast, decide, difference, equivalence

Key = Tuple[str, Optional[float], Optional[float]]  # (role, teacher_alpha, temperature)
RUN_COLUMNS = ["role", "teacher_alpha", "temperature", "teacher_seed", "seed", "metric", "value", "file"]
CELL_COLUMNS = ["role", "teacher_alpha", "temperature", "metric", "mean", "std", "n", "seeds"]


class Cell(NamedTuple):
    """One table cell: the mean over its runs, their sample std (None for one run), n, the seed ids, and the
    values by teacher seed ({} when the runs do not say, or when the cell was read from a cell CSV)."""
    mean: float
    std: Optional[float]
    n: int
    seeds: List[str]
    by_teacher_seed: Dict[str, List[float]]

    @property
    def summary(self) -> Summary:
        return Summary(self.mean, self.std, self.n)


def _num(path, d: dict, key: str, required: bool = True) -> Optional[float]:
    v = d.get(key)
    if v is None or v == "":
        if required:
            raise LskdError(f"{path}: missing key {key!r} (expected a number)")
        return None
    if isinstance(v, str):
        try:
            v = float(v)
        except ValueError:
            pass
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise LskdError(f"{path}: {key!r} is {v!r}, expected a finite number")
    return float(v)


def _seed(v) -> str:
    return "" if v is None else str(v)


def _run(path, d: dict, metric: str, value_key: str) -> dict:
    role = d.get("role")
    if role not in ("student", "teacher", "baseline"):
        raise LskdError(f"{path}: 'role' is {role!r}, expected \"student\", \"teacher\" or \"baseline\"")
    alpha = None if role == "baseline" else _num(path, d, "teacher_alpha")
    temp = _num(path, d, "temperature") if role == "student" else None
    return {"role": role, "teacher_alpha": alpha, "temperature": temp, "seed": _seed(d.get("seed", 0)),
            "teacher_seed": _seed(d.get("teacher_seed")), "value": _num(path, d, value_key), "path": str(path)}


def _check_unique(rows: Sequence[dict]) -> None:
    seen: Dict[tuple, str] = {}
    for r in rows:
        k = (r["role"], r["teacher_alpha"], r["temperature"], r["teacher_seed"], r["seed"])
        if k in seen:
            a, t = r["teacher_alpha"], r["temperature"]
            raise LskdError(f"{r['path']}: duplicate run (role {r['role']}, teacher_alpha "
                            f"{a if a is None else format(a, 'g')}, temperature {t if t is None else format(t, 'g')}, "
                            f"teacher_seed {r['teacher_seed'] or '-'}, seed {r['seed']}) also in {seen[k]}")
        seen[k] = r["path"]


def load_scores(runs: Path, metric: str) -> List[dict]:
    """Every score.json under `runs` as {role, teacher_alpha, temperature, seed, teacher_seed, value, signature,
    convention, path}."""
    runs = Path(runs)
    if not runs.is_dir():
        raise LskdError(f"--runs {runs}: no such directory")
    files = sorted(runs.rglob("score.json"))
    if not files:
        raise LskdError(f"--runs {runs}: no score.json files found (searched recursively)")
    out = []
    for f in files:
        d = read_json(f, "a score.json")
        if not isinstance(d, dict):
            raise LskdError(f"{f}: expected a JSON object")
        if metric not in d:
            raise LskdError(f"{f}: no {metric!r} key (--metric); keys there: {', '.join(sorted(d))}")
        conventions = d.get("conventions") if isinstance(d.get("conventions"), dict) else {}
        out.append({**_run(f, d, metric, metric), "signature": d.get(signature_key(metric)),
                    "convention": conventions.get(metric) or METRICS.get(metric)})
    _check_unique(out)
    conv = {r["convention"] for r in out}
    if len(conv) > 1:
        a, b = out[0], next(r for r in out if r["convention"] != out[0]["convention"])
        raise LskdError(f"{b['path']}: {metric!r} is {b['convention']!r} there but {a['convention']!r} in "
                        f"{a['path']}: one table cannot mix BLEU conventions")
    return out


def read_csv(path: Path, metric: str) -> Tuple[Optional[List[dict]], Dict[Key, Cell]]:
    """A committed CSV: per-run (RUN_COLUMNS: returns the runs and their cells) or per-cell (CELL_COLUMNS: no runs)."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise LskdError(f"--runs {path}: cannot read the CSV ({type(e).__name__})") from None
    columns = set(rows[0]) if rows else set()
    kind = "runs" if set(RUN_COLUMNS) <= columns else "cells" if set(CELL_COLUMNS) - {"metric", "seeds"} <= columns else None
    if kind is None:
        raise LskdError(f"--runs {path}: expected the columns of a report's per-run CSV ({', '.join(RUN_COLUMNS)}) "
                        f"or cell CSV ({', '.join(CELL_COLUMNS)}; metric and seeds may be missing)")
    rows = [r for r in rows if r.get("metric", metric) == metric]
    if not rows:
        raise LskdError(f"--runs {path}: no rows for --metric {metric}")
    where = [f"{path}, row {i}" for i in range(2, len(rows) + 2)]
    if kind == "runs":
        runs = [{**_run(w, r, metric, "value"), "path": r["file"] or w} for w, r in zip(where, rows)]
        _check_unique(runs)
        return runs, aggregate(runs)
    cells = {}
    for w, r in zip(where, rows):
        run = _run(w, {**r, "temperature": r["temperature"] or None, "teacher_alpha": r["teacher_alpha"] or None,
                       "value": r["mean"]}, metric, "value")
        n = int(_num(w, r, "n"))
        std = _num(w, r, "std", required=n > 1)
        cells[(run["role"], run["teacher_alpha"], run["temperature"])] = Cell(run["value"], std, n,
                                                                              (r.get("seeds") or "").split(), {})
    return None, cells


def signature_key(metric: str) -> str:
    return "signature" if metric == "bleu" else f"{metric}_signature"


def list_metrics(runs: Path) -> List[str]:
    """The score keys of lskd.scoring.METRICS that every score.json under `runs` has (headline first)."""
    files = sorted(Path(runs).rglob("score.json"))
    if not files:
        raise LskdError(f"--runs {runs}: no score.json files found (searched recursively)")
    keys = None
    for f in files:
        d = read_json(f, "a score.json")
        keys = set(d) if keys is None else keys & set(d)
    found = [m for m in METRICS if m in keys]
    if not found:
        raise LskdError(f"--runs {runs}: no score key of {', '.join(METRICS)} is in every score.json")
    return found


def aggregate(rows: Sequence[dict]) -> Dict[Key, Cell]:
    runs: Dict[Key, List[dict]] = {}
    for r in rows:
        runs.setdefault((r["role"], r["teacher_alpha"], r["temperature"]), []).append(r)
    agg = {}
    for k, rs in runs.items():
        s = Summary.of([r["value"] for r in rs])
        by_teacher: Dict[str, List[float]] = {}
        if all(r["teacher_seed"] for r in rs):
            for r in rs:
                by_teacher.setdefault(r["teacher_seed"], []).append(r["value"])
        agg[k] = Cell(s.mean, s.sd, s.n, sorted((r["seed"] for r in rs), key=str), by_teacher)
    return agg


def _fmt(cell: Optional[Cell], digits: int) -> str:
    if cell is None:
        return "–"
    s = f"{cell.mean:.{digits}f}"
    if cell.n > 1:
        s += f" ± {cell.std:.{digits}f} (n={cell.n})"
    return s


def grid(agg: Dict[Key, Cell]) -> Tuple[List[float], List[float]]:
    alphas = sorted({k[1] for k in agg if k[1] is not None})
    temps = sorted({k[2] for k in agg if k[0] == "student"})
    return alphas, temps


def markdown(agg: Dict[Key, Cell], metric: str, digits: int = 2, title: Optional[str] = None,
             signatures: Sequence[str] = (), n_files: Optional[int] = None, convention: Optional[str] = None,
             modality: Optional[str] = None, margin: float = 0.25) -> str:
    alphas, temps = grid(agg)
    lines = []
    if convention:
        lines += [f"### {title + ' — ' if title else ''}{metric}: {convention}", ""]
    elif title:
        lines += [f"### {title}", ""]
    lines.append(f"| {metric} | " + " | ".join(f"teacher α={a:g}" for a in alphas) + " |")
    lines.append("|---|" + "---|" * len(alphas))
    lines.append("| teacher | " + " | ".join(_fmt(agg.get(("teacher", a, None)), digits) for a in alphas) + " |")
    for t in temps:
        lines.append(f"| T={t:g} | " + " | ".join(_fmt(agg.get(("student", a, t)), digits) for a in alphas) + " |")
    if ("baseline", None, None) in agg:
        lines.append("| no KD | " + " | ".join(_fmt(agg[("baseline", None, None)], digits) for _ in alphas) + " |")
    lines.append("")
    if n_files is not None:
        lines.append(f"{n_files} runs; cells are means over seeds, ± sample std (n = number of seeds) where n > 1.")
    for s in signatures:
        lines.append(f"signature: `{s}`")
    shown = patterns(agg, metric, modality, margin, digits)
    if shown:
        lines += ["", "What the table shows:", *shown, "", "How the verdicts are decided:", *(f"- {r}" for r in RULES)]
    return "\n".join(lines).rstrip() + "\n"


def _student(agg: Dict[Key, Cell], a: float, t: float) -> Optional[Cell]:
    return agg.get(("student", a, t))


def _teacher_confound(agg: Dict[Key, Cell], a: float, gap: float) -> Optional[str]:
    """With one teacher per alpha: the reason the students' gap cannot be credited to LS, if the teachers'
    own gap (same sign, at least half as large) explains it; None when it does not or cannot be known."""
    t_ls, t_0 = agg.get(("teacher", a, None)), agg.get(("teacher", 0.0, None))
    if t_ls is None or t_0 is None:
        return None
    teacher_gap = t_ls.mean - t_0.mean
    if teacher_gap * gap > 0 and abs(teacher_gap) >= 0.5 * abs(gap):
        return f"the teachers themselves differ by {teacher_gap:+.2f}"
    return None


def _pattern2(agg: Dict[Key, Cell], a: float, digits: int) -> Optional[Test]:
    smooth, plain = _student(agg, a, 1.0), _student(agg, 0.0, 1.0)
    if smooth is None or plain is None:
        return None
    claim = f"Pattern 2 (at T=1 the LS teacher's student beats the non-LS teacher's), α={a:g}"
    what = f"α={a:g} − α=0"
    if len(smooth.by_teacher_seed) > 1 and len(plain.by_teacher_seed) > 1:  # the unit is the teacher
        per = [Summary.of([Summary.of(v).mean for v in c.by_teacher_seed.values()]) for c in (smooth, plain)]
        note = (f"over teacher seeds: means of each teacher's T=1 students, {per[0].n} and {per[1].n} teachers; "
                f"by teacher seed " + ", ".join(f"{k}: {Summary.of(smooth.by_teacher_seed[k]).mean - Summary.of(v).mean:+.{digits}f}"
                                                for k, v in sorted(plain.by_teacher_seed.items()) if k in smooth.by_teacher_seed))
        return Test(claim, difference(*per), +1, what, note=note, digits=digits)
    iv = difference(smooth.summary, plain.summary)
    gap = smooth.mean - plain.mean
    confound = _teacher_confound(agg, a, gap)
    if iv is not None and confound:
        return Test(claim, iv, +1, what, fixed="confounded with teacher quality",
                    note=f"{confound}, and each alpha has one teacher: the students' {gap:+.{digits}f} follows it",
                    digits=digits)
    note = "" if iv is None else "one teacher per alpha: teacher-seed variation is not in this interval"
    if iv is None:
        note = f"{what} {gap:+.{digits}f}"
    return Test(claim, iv, +1, what, note=note, digits=digits)


def _pattern1(agg: Dict[Key, Cell], a: float, temps: Sequence[float], digits: int) -> Optional[Test]:
    cells = [(t, c) for t in temps if (c := _student(agg, a, t)) is not None]
    if len(cells) < 3:
        return None
    chain = ", ".join(f"T={t:g} {c.mean:.{digits}f}" for t, c in cells)
    (t_lo, lo), (t_hi, hi) = cells[0], cells[-1]
    rising, inside, untold = [], [], []
    for (t1, c1), (t2, c2) in zip(cells, cells[1:]):
        step = difference(c2.summary, c1.summary)
        name = f"T={t1:g}→{t2:g}"
        if step is None:
            untold.append(name)
        elif step.low > 0:
            rising.append(f"{name} rises beyond the noise ({step.estimate:+.{digits}f}, [{step.low:+.{digits}f}, {step.high:+.{digits}f}])")
        elif step.high >= 0:
            inside.append(name)
    notes = [chain]
    if inside:
        notes.append("steps inside the noise: " + ", ".join(inside))
    if untold:
        notes.append("steps with a one-seed cell: " + ", ".join(untold))
    return Test(f"Pattern 1 (the LS teacher's students fall as T rises), α={a:g}", difference(lo.summary, hi.summary),
                +1, f"T={t_lo:g} − T={t_hi:g}", note="; ".join(notes), veto="; ".join(rising), digits=digits)


def _pattern3(agg: Dict[Key, Cell], a: float, modality: str, margin: float, digits: int) -> Optional[Test]:
    cells = [_student(agg, x, t) for x in (a, 0.0) for t in (3.0, 1.0)]
    if any(c is None for c in cells):
        return None
    terms = [(1.0, cells[0].summary), (-1.0, cells[1].summary), (-1.0, cells[2].summary), (1.0, cells[3].summary)]
    drops = f"drops T=1→3: α={a:g} {cells[0].mean - cells[1].mean:+.{digits}f}, α=0 {cells[2].mean - cells[3].mean:+.{digits}f}"
    what = f"(α={a:g} drop) − (α=0 drop)"
    if modality == "vision":
        return Test(f"Pattern 3 (images: the T=1→3 drop is steeper with the LS teacher), α={a:g}", contrast(terms), -1,
                    what, note=drops, digits=digits)
    size = 0.5 * (abs(cells[0].mean - cells[1].mean) + abs(cells[2].mean - cells[3].mean))
    m = margin * size
    return Test(f"Pattern 3 (NMT: the T=1→3 drop is about equal for both teachers), α={a:g}", equivalence(terms, m), 0,
                what, note=f"{drops}; equivalence margin ±{m:.{digits}f} = {margin:g} x the mean drop", digits=digits)


def _pattern4(agg: Dict[Key, Cell], temps: Sequence[float], digits: int) -> List[Test]:
    one = _student(agg, 0.0, 1.0)
    if one is None:
        return []
    return [Test(f"Pattern 4 (with the non-LS teacher a moderate T can help; the paper: CUB yes, ImageNet no), T={t:g}",
                 difference(c.summary, one.summary), None, f"T={t:g} − T=1", words=("helps", "hurts"), digits=digits,
                 note=f"T={t:g} − T=1 {c.mean - one.mean:+.{digits}f}" if min(c.n, one.n) < 2 else "")
            for t in temps if 2 <= t <= 3 and (c := _student(agg, 0.0, t)) is not None]


def modality_of(metric: str) -> str:
    """nmt for the BLEU/chrF keys of lskd.scoring.METRICS, vision for any other (top1, acc1, ...)."""
    return "nmt" if metric in METRICS else "vision"


def patterns(agg: Dict[Key, Cell], metric: str, modality: Optional[str] = None, margin: float = 0.25,
             digits: int = 2) -> List[str]:
    """What the table shows, in the paper's terms (docs/PAPER.md, patterns 1-5), one line each with its
    verdict (lskd/verdicts.py); only the lines the grid has the cells for."""
    modality = modality or modality_of(metric)
    alphas, temps = grid(agg)
    ls = [a for a in alphas if a > 0]
    lines = []
    if 1 in temps:
        ratios = [f"α={a:g} {100 * s.mean / t.mean:.1f}%" for a in alphas
                  if (s := _student(agg, a, 1.0)) is not None and (t := agg.get(("teacher", a, None))) and t.mean]
        if ratios:
            lines.append(f"- T=1 students reach {', '.join(ratios)} of their teacher's {metric} (no test: a description).")
    tests: List[Test] = []
    base = agg.get(("baseline", None, None))
    if base is not None:
        tests += [Test(f"KD at T=1 beats no KD ({base.mean:.{digits}f}, n={base.n}), α={a:g}",
                       difference(c.summary, base.summary), +1, "KD − no KD",
                       note=f"KD − no KD {c.mean - base.mean:+.{digits}f}" if min(c.n, base.n) < 2 else "", digits=digits)
                  for a in alphas if (c := _student(agg, a, 1.0)) is not None]
    tests += [t for a in ls if (t := _pattern1(agg, a, temps, digits)) is not None]
    if 0 in alphas:
        tests += [t for a in ls if (t := _pattern2(agg, a, digits)) is not None]
        tests += [t for a in ls if (t := _pattern3(agg, a, modality, margin, digits)) is not None]
        tests += _pattern4(agg, temps, digits)
    collapse = [(a, one, high) for a in alphas
                if (one := _student(agg, a, 1.0)) is not None and (high := _student(agg, a, 64.0)) is not None]
    if modality == "nmt":
        tests += [Test(f"Pattern 5 (T=64 collapses: below half of T=1), α={a:g}",
                       contrast([(1.0, high.summary), (-0.5, one.summary)]), -1, "T=64 − T=1/2",
                       note=f"{high.mean:.{digits}f} vs {one.mean:.{digits}f}", digits=digits)
                  for a, one, high in collapse]
    lines += decide(tests)
    if collapse and modality != "nmt":
        lines.append("- Pattern 5 (T=64 collapses): **not judged**: the paper states it for NMT only.")
    return lines


def csv_text(agg: Dict[Key, Cell], metric: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CELL_COLUMNS)
    order = {"teacher": 0, "student": 1, "baseline": 2}
    for (role, a, t), c in sorted(agg.items(), key=lambda kv: (order[kv[0][0]], kv[0][2] or 0.0, kv[0][1] or 0.0)):
        w.writerow([role, "" if a is None else f"{a:g}", "" if t is None else f"{t:g}", metric, repr(round(c.mean, 6)),
                    "" if c.std is None else repr(round(c.std, 6)), c.n, " ".join(c.seeds)])
    return buf.getvalue()


def runs_csv_text(rows: Sequence[dict], metric: str, base: Optional[Path] = None) -> str:
    """One row per run: what every cell's mean, std and the verdicts come from (files relative to `base`)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(RUN_COLUMNS)
    order = {"teacher": 0, "student": 1, "baseline": 2}
    for r in sorted(rows, key=lambda r: (order[r["role"]], r["temperature"] or 0.0, r["teacher_alpha"] or 0.0,
                                         r["teacher_seed"], r["seed"])):
        a, t = r["teacher_alpha"], r["temperature"]
        w.writerow([r["role"], "" if a is None else f"{a:g}", "" if t is None else f"{t:g}", r["teacher_seed"], r["seed"],
                    metric, repr(r["value"]), Path(r["path"]).relative_to(base) if base else r["path"]])
    return buf.getvalue()


def plot(agg: Dict[Key, Cell], metric: str, path: Path, title: Optional[str] = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas, temps = grid(agg)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, a in enumerate(alphas):
        color = f"C{i}"
        pts = [(t, agg[("student", a, t)]) for t in temps if ("student", a, t) in agg]
        if pts:
            ax.errorbar([t for t, _ in pts], [c.mean for _, c in pts], yerr=[c.std or 0.0 for _, c in pts],
                        marker="o", capsize=3, color=color, label=f"student, teacher α={a:g}")
        if ("teacher", a, None) in agg:
            ax.axhline(agg[("teacher", a, None)].mean, color=color, ls="--", lw=1, label=f"teacher α={a:g}")
    if ("baseline", None, None) in agg:
        ax.axhline(agg[("baseline", None, None)].mean, color="k", ls=":", lw=1, label="no KD (gold only)")
    if temps and min(temps) > 0:
        ax.set_xscale("log", base=2)
        ax.set_xticks(temps)
        ax.set_xticklabels([f"{t:g}" for t in temps])
    ax.set_xlabel("KD temperature T")
    ax.set_ylabel(metric)
    if title:  # wrapped to the figure's width: a long title is cut off otherwise
        ax.set_title("\n".join(textwrap.wrap(title, 55)), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lskd report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, required=True,
                   help="folder searched recursively for score.json files, or a report's per-run or cell CSV")
    p.add_argument("--out", type=Path, help="output prefix: writes PREFIX.md, .csv, _runs.csv, .png, .json")
    p.add_argument("--list-metrics", action="store_true",
                   help="print the BLEU/chrF keys every score.json under --runs has (headline first), and stop")
    p.add_argument("--metric", default="bleu", help="score key to tabulate (default bleu)")
    p.add_argument("--modality", choices=("nmt", "vision"), default=None,
                   help="which of the paper's patterns apply (3: NMT about equal, images steeper; 5: NMT only); "
                        "default: nmt for the BLEU/chrF keys, vision otherwise")
    p.add_argument("--equivalence-margin", type=float, default=0.25, metavar="FRACTION",
                   help="pattern 3 (NMT): the drops are 'about equal' when their difference is within this fraction "
                        "of the mean drop (default 0.25)")
    p.add_argument("--signature", nargs="+", default=[], metavar="SIG",
                   help="with a CSV as --runs: the sacrebleu signature(s) its scores were computed with (a CSV does "
                        "not carry them; score.json files do)")
    p.add_argument("--digits", type=int, default=2, help="decimals in the markdown table (default 2)")
    p.add_argument("--title", default=None, help="heading of the table and plot")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG")
    return p


def main(argv: List[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.list_metrics:
        print(" ".join(list_metrics(args.runs)))
        return 0
    if args.out is None:
        raise LskdError("--out: expected an output prefix (or --list-metrics)")
    if not 0 <= args.digits <= 10:
        raise LskdError(f"--digits {args.digits}: expected 0..10")
    if not 0 < args.equivalence_margin < 1:
        raise LskdError(f"--equivalence-margin {args.equivalence_margin:g}: expected a fraction in (0, 1)")
    modality = args.modality or modality_of(args.metric)
    if args.runs.is_file():
        rows, agg = read_csv(args.runs, args.metric)
        sigs, convention, inputs = args.signature, METRICS.get(args.metric), [str(args.runs)]
    else:
        if args.signature:
            raise LskdError("--signature: only with a CSV as --runs (score.json files carry their own)")
        rows = load_scores(args.runs, args.metric)
        agg = aggregate(rows)
        sigs = sorted({r["signature"] for r in rows if r.get("signature")})
        convention, inputs = rows[0]["convention"], [r["path"] for r in rows]
    n_runs = len(rows) if rows is not None else sum(c.n for c in agg.values())
    md = markdown(agg, args.metric, args.digits, args.title, sigs, n_files=n_runs, convention=convention,
                  modality=modality, margin=args.equivalence_margin)
    prefix = args.out
    outs = {"md": prefix.with_name(prefix.name + ".md"), "csv": prefix.with_name(prefix.name + ".csv"),
            "runs_csv": prefix.with_name(prefix.name + "_runs.csv"),
            "png": prefix.with_name(prefix.name + ".png"), "json": prefix.with_name(prefix.name + ".json")}
    write_text(outs["md"], md)
    write_text(outs["csv"], csv_text(agg, args.metric))
    if rows is not None:
        write_text(outs["runs_csv"], runs_csv_text(rows, args.metric, None if args.runs.is_file() else args.runs))
    else:
        del outs["runs_csv"]
    if args.no_plot:
        del outs["png"]
    else:
        plot(agg, args.metric, outs["png"], args.title)
    write_json(outs["json"], {"created_by": command_line(), "metric": args.metric, "convention": convention,
                              "modality": modality, "equivalence_margin": args.equivalence_margin, "inputs": inputs,
                              "outputs": {k: str(v) for k, v in outs.items() if k != "json"}})
    print(md, end="")
    print("wrote " + ", ".join(str(v) for k, v in outs.items() if k != "json"), file=sys.stderr)
    return 0
