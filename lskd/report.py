"""`lskd report`: a sweep's scores -> the paper's alpha x T table (markdown), a CSV and a PNG plot.

    lskd report --runs RUNS_DIR --out results/bible_grid [--metric bleu] [--digits 2] [--title TEXT]
    lskd report --runs RUNS_DIR --list-metrics      # the BLEU/chrF keys every score.json has, headline first

Input: RUNS_DIR is searched recursively for files named `score.json`, one per trained model:

    {"role": "student",        # or "teacher", or "baseline" (the student's model trained on gold data alone)
     "teacher_alpha": 0.1,     # label smoothing of the teacher (of this model itself when role = teacher; none for a baseline)
     "temperature": 2.0,       # KD temperature T (students only; omitted or null for teachers)
     "seed": 1,                # optional, default 0; several seeds of one cell are averaged
     "bleu": 12.3, "chrf": 40.1, "signature": "nrefs:1|case:mixed|...",   # any metric keys
     "conventions": {"bleu": "detokenised sacreBLEU ..."}}                 # what each number is (lskd score)

--metric names the key to tabulate (bleu by default; bleu_tok, bleu_compound_split, chrf, acc1, ... as the
runs provide; see `lskd score --help` for the BLEU conventions). The table's heading names the metric's
convention (from the files' "conventions", else lskd.scoring.METRICS); files that disagree on it are an
error, so that one table never mixes conventions. Other keys are ignored. Two files for the same (role,
teacher_alpha, temperature, seed) are an error.

Output:
  PREFIX.md   rows: the teacher on top, then T = 1, 2, 3, 64, ... (ascending), then "no KD" (the baselines'
              mean, the same in every column: what each column's students are compared with); columns: teacher alpha
              (ascending). A cell is the mean over seeds, "mean ± std (n=N)" when N > 1 (sample std);
              "–" where no run exists. The heading names the convention; the sacrebleu signature(s) of the
              metric and the input count are listed below the table.
  PREFIX.csv  one row per cell: role, teacher_alpha, temperature, metric, mean, std, n, seeds
  PREFIX.png  metric vs T (log-2 axis) per teacher alpha, error bars = std, the teacher as a dashed line
  PREFIX.json what produced these files (inputs, options, command)
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import shlex
import sys
import textwrap
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from lskd.errors import LskdError
from lskd.scoring import METRICS

Key = Tuple[str, float, Optional[float]]  # (role, teacher_alpha, temperature)


def _num(path: Path, d: dict, key: str, required: bool = True) -> Optional[float]:
    v = d.get(key)
    if v is None:
        if required:
            raise LskdError(f"{path}: missing key {key!r} (expected a number)")
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
        raise LskdError(f"{path}: {key!r} is {v!r}, expected a finite number")
    return float(v)


def load_scores(runs: Path, metric: str) -> List[dict]:
    """Every score.json under `runs` as {role, teacher_alpha, temperature, seed, value, signature, path}."""
    runs = Path(runs)
    if not runs.is_dir():
        raise LskdError(f"--runs {runs}: no such directory")
    files = sorted(runs.rglob("score.json"))
    if not files:
        raise LskdError(f"--runs {runs}: no score.json files found (searched recursively)")
    out, seen = [], {}
    for f in files:
        try:
            d = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise LskdError(f"{f}: not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise LskdError(f"{f}: expected a JSON object")
        role = d.get("role")
        if role not in ("student", "teacher", "baseline"):
            raise LskdError(f"{f}: 'role' is {role!r}, expected \"student\", \"teacher\" or \"baseline\"")
        if metric not in d:
            raise LskdError(f"{f}: no {metric!r} key (--metric); keys there: {', '.join(sorted(d))}")
        value = _num(f, d, metric)
        alpha = None if role == "baseline" else _num(f, d, "teacher_alpha")
        temp = _num(f, d, "temperature", required=(role == "student")) if role == "student" else None
        seed = d.get("seed", 0)
        k = (role, alpha, temp, seed)
        if k in seen:
            raise LskdError(f"{f}: duplicate run (role {role}, teacher_alpha {alpha if alpha is None else format(alpha, 'g')}, "
                            f"temperature {temp if temp is None else format(temp, 'g')}, seed {seed}) also in {seen[k]}")
        seen[k] = f
        conventions = d.get("conventions") if isinstance(d.get("conventions"), dict) else {}
        out.append({"role": role, "teacher_alpha": alpha, "temperature": temp, "seed": seed, "value": value,
                    "signature": d.get(signature_key(metric)), "path": str(f),
                    "convention": conventions.get(metric) or METRICS.get(metric)})
    conv = {r["convention"] for r in out}
    if len(conv) > 1:
        a, b = out[0], next(r for r in out if r["convention"] != out[0]["convention"])
        raise LskdError(f"{b['path']}: {metric!r} is {b['convention']!r} there but {a['convention']!r} in "
                        f"{a['path']}: one table cannot mix BLEU conventions")
    return out


def signature_key(metric: str) -> str:
    return "signature" if metric == "bleu" else f"{metric}_signature"


def list_metrics(runs: Path) -> List[str]:
    """The score keys of lskd.scoring.METRICS that every score.json under `runs` has (headline first)."""
    files = sorted(Path(runs).rglob("score.json"))
    if not files:
        raise LskdError(f"--runs {runs}: no score.json files found (searched recursively)")
    keys = None
    for f in files:
        try:
            d = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise LskdError(f"{f}: not valid JSON ({e})") from None
        keys = set(d) if keys is None else keys & set(d)
    found = [m for m in METRICS if m in keys]
    if not found:
        raise LskdError(f"--runs {runs}: no score key of {', '.join(METRICS)} is in every score.json")
    return found


def aggregate(rows: Sequence[dict]) -> Dict[Key, dict]:
    cells: Dict[Key, List[dict]] = {}
    for r in rows:
        cells.setdefault((r["role"], r["teacher_alpha"], r["temperature"]), []).append(r)
    agg = {}
    for k, rs in cells.items():
        vals = [r["value"] for r in rs]
        n = len(vals)
        mean = sum(vals) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else None
        agg[k] = {"mean": mean, "std": std, "n": n, "seeds": sorted((r["seed"] for r in rs), key=str)}
    return agg


def _fmt(cell: Optional[dict], digits: int) -> str:
    if cell is None:
        return "–"
    s = f"{cell['mean']:.{digits}f}"
    if cell["n"] > 1:
        s += f" ± {cell['std']:.{digits}f} (n={cell['n']})"
    return s


def grid(agg: Dict[Key, dict]) -> Tuple[List[float], List[float]]:
    alphas = sorted({k[1] for k in agg if k[1] is not None})
    temps = sorted({k[2] for k in agg if k[0] == "student"})
    return alphas, temps


def markdown(agg: Dict[Key, dict], metric: str, digits: int = 2, title: Optional[str] = None,
             signatures: Sequence[str] = (), n_files: Optional[int] = None, convention: Optional[str] = None) -> str:
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
    shown = patterns(agg, metric)
    if shown:
        lines += ["", "What the table shows:", *shown]
    return "\n".join(lines).rstrip() + "\n"


def _cell(agg: Dict[Key, dict], role: str, a: float, t: Optional[float]) -> Optional[float]:
    c = agg.get((role, a, t))
    return None if c is None else c["mean"]


def patterns(agg: Dict[Key, dict], metric: str) -> List[str]:
    """What the table shows, in the paper's terms (docs/PAPER.md, patterns 1, 2 and 5), one line each;
    only the lines the grid has the cells for."""
    alphas, temps = grid(agg)
    ls = [a for a in alphas if a > 0]
    lines = []
    if 1 in temps:
        ratios = [f"α={a:g} {100 * s / t:.0f}%" for a in alphas
                  if (s := _cell(agg, "student", a, 1)) is not None and (t := _cell(agg, "teacher", a, None))]
        if ratios:
            lines.append(f"- T=1 students reach {', '.join(ratios)} of their teacher's {metric}.")
    base = agg.get(("baseline", None, None))
    if base is not None and 1 in temps:
        gains = [f"α={a:g} {v - base['mean']:+.2f}" for a in alphas if (v := _cell(agg, "student", a, 1)) is not None]
        if gains:
            lines.append(f"- KD at T=1 against no KD ({base['mean']:.2f}, n={base['n']}): {', '.join(gains)}.")
    for a in ls:
        vals = [(t, v) for t in temps if (v := _cell(agg, "student", a, t)) is not None]
        if len(vals) >= 3:
            falls = all(x[1] > y[1] for x, y in zip(vals, vals[1:]))
            chain = " > ".join(f"T={t:g} {v:.2f}" for t, v in vals) if falls else ", ".join(f"T={t:g} {v:.2f}" for t, v in vals)
            lines.append(f"- Pattern 1 (the LS teacher's students fall as T rises), α={a:g}: "
                         f"{'seen' if falls else 'not seen'} ({chain}).")
    if 0 in alphas and 1 in temps:
        for a in ls:
            plain, smooth = agg.get(("student", 0, 1)), agg.get(("student", a, 1))
            if plain is not None and smooth is not None:
                spread = (f"seed std {smooth['std']:.2f} and {plain['std']:.2f}" if min(plain["n"], smooth["n"]) > 1
                          else "one seed in a cell: no spread to compare the margin with")
                lines.append(f"- Pattern 2 (at T=1 the LS teacher's student beats the non-LS teacher's): "
                             f"{'seen' if smooth['mean'] > plain['mean'] else 'not seen'} (α={a:g} {smooth['mean']:.2f} "
                             f"vs α=0 {plain['mean']:.2f}, {smooth['mean'] - plain['mean']:+.2f}; {spread}).")
    if 1 in temps and 64 in temps:
        pairs = [(a, _cell(agg, "student", a, 1), _cell(agg, "student", a, 64)) for a in alphas]
        pairs = [(a, one, high) for a, one, high in pairs if one is not None and high is not None]
        if pairs:
            collapsed = all(high < 0.5 * one for _, one, high in pairs)
            lines.append(f"- Pattern 5 (T=64 collapses: below half of T=1): {'seen' if collapsed else 'not seen'} ("
                         + ", ".join(f"α={a:g} {high:.2f} vs {one:.2f}" for a, one, high in pairs) + ").")
    return lines


def csv_text(agg: Dict[Key, dict], metric: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["role", "teacher_alpha", "temperature", "metric", "mean", "std", "n", "seeds"])
    order = {"teacher": 0, "student": 1, "baseline": 2}
    for (role, a, t), c in sorted(agg.items(), key=lambda kv: (order[kv[0][0]], kv[0][2] or 0.0, kv[0][1] or 0.0)):
        w.writerow([role, "" if a is None else f"{a:g}", "" if t is None else f"{t:g}", metric, repr(round(c["mean"], 6)),
                    "" if c["std"] is None else repr(round(c["std"], 6)), c["n"], " ".join(map(str, c["seeds"]))])
    return buf.getvalue()


def plot(agg: Dict[Key, dict], metric: str, path: Path, title: Optional[str] = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alphas, temps = grid(agg)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for i, a in enumerate(alphas):
        color = f"C{i}"
        pts = [(t, agg[("student", a, t)]) for t in temps if ("student", a, t) in agg]
        if pts:
            ax.errorbar([t for t, _ in pts], [c["mean"] for _, c in pts], yerr=[c["std"] or 0.0 for _, c in pts],
                        marker="o", capsize=3, color=color, label=f"student, teacher α={a:g}")
        if ("teacher", a, None) in agg:
            ax.axhline(agg[("teacher", a, None)]["mean"], color=color, ls="--", lw=1, label=f"teacher α={a:g}")
    if ("baseline", None, None) in agg:
        ax.axhline(agg[("baseline", None, None)]["mean"], color="k", ls=":", lw=1, label="no KD (gold only)")
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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lskd report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=Path, required=True, help="folder searched recursively for score.json files")
    p.add_argument("--out", type=Path, help="output prefix: writes PREFIX.md, .csv, .png, .json")
    p.add_argument("--list-metrics", action="store_true",
                   help="print the BLEU/chrF keys every score.json under --runs has (headline first), and stop")
    p.add_argument("--metric", default="bleu", help="score key to tabulate (default bleu)")
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
    rows = load_scores(args.runs, args.metric)
    agg = aggregate(rows)
    sigs = sorted({r["signature"] for r in rows if r.get("signature")})
    md = markdown(agg, args.metric, args.digits, args.title, sigs, n_files=len(rows), convention=rows[0]["convention"])
    prefix = args.out
    outs = {"md": prefix.with_name(prefix.name + ".md"), "csv": prefix.with_name(prefix.name + ".csv"),
            "png": prefix.with_name(prefix.name + ".png"), "json": prefix.with_name(prefix.name + ".json")}
    _write(outs["md"], md)
    _write(outs["csv"], csv_text(agg, args.metric))
    if not args.no_plot:
        plot(agg, args.metric, outs["png"], args.title)
    manifest = {"created_by": shlex.join(getattr(sys, "orig_argv", sys.argv)), "metric": args.metric,
                "convention": rows[0]["convention"],
                "inputs": [r["path"] for r in rows], "outputs": {k: str(v) for k, v in outs.items() if k != "json"}}
    _write(outs["json"], json.dumps(manifest, indent=2) + "\n")
    print(md, end="")
    print(f"wrote {outs['md']}, {outs['csv']}" + ("" if args.no_plot else f", {outs['png']}"), file=sys.stderr)
    return 0
