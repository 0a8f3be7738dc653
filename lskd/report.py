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

Verdicts (lskd/patterns.py applies lskd/verdicts.py's rules to the grid; the rules print under the table):
every comparison uses the seed values of its cells (Welch's t interval), "seen" only when significant in the paper's direction after Holm's
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
from typing import Dict, List, Optional, Sequence, Tuple

from lskd.errors import LskdError
from lskd.fileio import atomic_path, command_line, read_json, write_json, write_text
from lskd.patterns import Cell, Key, grid, modality_of, patterns
from lskd.scoring import METRICS
from lskd.verdicts import RULES, Summary

RUN_COLUMNS = ["role", "teacher_alpha", "temperature", "teacher_seed", "seed", "metric", "value", "file"]
CELL_COLUMNS = ["role", "teacher_alpha", "temperature", "metric", "mean", "std", "n", "seeds"]


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
                    "convention": conventions.get(metric) or METRICS.get(metric), "decoded_by": d.get("decoded_by")})
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


def markdown(agg: Dict[Key, Cell], metric: str, digits: int = 2, title: Optional[str] = None,
             signatures: Sequence[str] = (), n_files: Optional[int] = None, convention: Optional[str] = None,
             modality: Optional[str] = None, margin: float = 0.25, decoded_by: Sequence[str] = ()) -> str:
    alphas, temps = grid(agg)
    lines = []
    if convention:
        lines += [f"### {title + ' — ' if title else ''}{metric}: {convention}", ""]
    elif title:
        lines += [f"### {title}", ""]
    if decoded_by:  # the engine, compute type and device (score.json "decoded_by"): part of what the numbers are
        lines += [f"Decoded by: {'; '.join(decoded_by)}.", ""]
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
    engines = sorted({r["decoded_by"] for r in rows or [] if r.get("decoded_by")})
    md = markdown(agg, args.metric, args.digits, args.title, sigs, n_files=n_runs, convention=convention,
                  modality=modality, margin=args.equivalence_margin, decoded_by=engines)
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
