"""`lskd deploy-table`: a teacher and its students as shipped -- size, CPU speed and quality in one run.

    lskd deploy-table --data DATA_BIN --source TEST.SRC --ref TEST.TGT --exports DIR --out TABLE_DIR \\
        --model teacher=teacher:CKPT --model small=student:CKPT ... [--quantizations none int8] [--beams 1 5] \\
        [--rounds 3] [--threads 2] [--batch-size 64]

Every --model NAME=ROLE:CKPT (one teacher; any number of students) is exported by `lskd export` once per
--quantizations type into EXPORTS/NAME.QUANT (an export of the same checkpoint and type is reused), then
`lskd translate`'s own path (read raw text, prepare, search, detokenise, write) runs the whole --source at every
--beams size. Rounds are interleaved: each round runs every (model, type, beam) once in turn, so a load change hits
all alike; speed is the median over rounds (min and max beside it) of lines/s and target tokens/s. BLEU and chrF
come from the first round's translations against --ref in the data's convention (lskd score; detokenised
sacreBLEU). Retention is a student's BLEU over the teacher's at the same type and beam; an int8 row gives its
BLEU minus the float32 row's.

Output (TABLE_DIR): deploy.md (the table, the machine, the targets' status), deploy.csv (one row per model, type and
beam: model,role,params,size_bytes,compute_type,beam,lines_per_s,...,bleu,chrf,bleu_retention,...), deploy.png
(BLEU against lines/s at the largest beam, the Pareto front marked), deploy.json (command, machine, settings).
Time it on a machine doing nothing else (the load average at the start is recorded, and warned about).
"""

from __future__ import annotations

import argparse
import csv
import io
import shlex
import statistics
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple

from lskd.errors import LskdError
from lskd.fileio import atomic_path, read_json, sha256_file, write_json, write_text

ROLES = ("teacher", "student")
COLUMNS = ["model", "role", "params", "size_bytes", "compute_type", "beam", "lines_per_s", "lines_per_s_min",
           "lines_per_s_max", "tokens_per_s", "speedup_vs_teacher", "speedup_vs_teacher_float32", "bleu", "chrf", "bleu_retention",
           "int8_minus_float32_bleu"]
RETENTION_TARGET, SPEEDUP_TARGET, INT8_COST_TARGET = 0.90, 3.0, 0.3  # issue 23's targets


class Entry(NamedTuple):
    name: str
    role: str
    checkpoint: Path


def parse_model(spec: str) -> Entry:
    name, sep, rest = spec.partition("=")
    role, sep2, ckpt = rest.partition(":")
    if not (sep and sep2 and name and ckpt) or role not in ROLES:
        raise LskdError(f"--model {spec}: expected NAME=ROLE:CHECKPOINT with ROLE teacher or student")
    if not Path(ckpt).is_file():
        raise LskdError(f"--model {spec}: no such checkpoint {ckpt}")
    return Entry(name, role, Path(ckpt))


def check_models(entries: List[Entry]) -> None:
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise LskdError(f"--model: a name given twice ({', '.join(sorted(n for n in set(names) if names.count(n) > 1))})")
    if sum(e.role == "teacher" for e in entries) != 1:
        raise LskdError("--model: expected exactly one teacher (ROLE teacher) for the retention column")


def exported(entry: Entry, quantization: str, data: str, exports: Path) -> Path:
    """EXPORTS/NAME.QUANT, exported unless it already holds this checkpoint at this quantization."""
    from .export import export

    folder = exports / f"{entry.name}.{quantization}"
    manifest = folder / "export.json"
    if manifest.is_file():
        m = read_json(manifest, "an lskd export manifest")
        if m.get("quantization") == quantization and m.get("checkpoint", {}).get("sha256") == sha256_file(entry.checkpoint):
            return folder
    return export(str(entry.checkpoint), data, folder, quantization)


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


def model_bytes(folder: Path) -> int:
    """The CTranslate2 model's bytes (weights and vocabularies: what decoding loads)."""
    return sum(p.stat().st_size for p in (folder / "model").rglob("*") if p.is_file())


def measure(models: Dict[tuple, "object"], source: Path, beams: List[int], rounds: int, search) -> Dict[tuple, dict]:
    """Every (name, quantization, beam) timed over the whole source `rounds` times, interleaved; the first
    round's translations kept."""
    import dataclasses

    from .translate import run

    results: Dict[tuple, dict] = {}
    for r in range(rounds):
        for (name, quant), model in models.items():
            for beam in beams:
                model.use_search(dataclasses.replace(search, beam=beam))
                model.target_tokens = 0
                out = io.StringIO()
                with open(source, "rb") as stream:
                    stats = run(model, stream, out, chunk=2000, name=str(source), progress=lambda *_: None)
                res = results.setdefault((name, quant, beam), {"lines_per_s": [], "tokens_per_s": []})
                res["lines_per_s"].append(stats["lines"] / stats["seconds"])
                res["tokens_per_s"].append(model.target_tokens / stats["seconds"])
                if r == 0:
                    res["hyps"] = out.getvalue().split("\n")[:-1]
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    return results


def score_rows(entries: List[Entry], info: Dict[tuple, dict], results: Dict[tuple, dict], ref: Path) -> List[dict]:
    """One row per (model, quantization, beam): speed, BLEU, chrF; retention and int8 cost filled after."""
    from lskd.scoring import score_as_data

    rows = []
    for (name, quant, beam), res in results.items():
        entry = next(e for e in entries if e.name == name)
        scores = score_as_data(res["hyps"], ref)
        lps = res["lines_per_s"]
        rows.append({"model": name, "role": entry.role, "params": info[(name, quant)]["params"],
                     "size_bytes": info[(name, quant)]["size_bytes"], "quantization": quant,
                     "compute_type": info[(name, quant)]["compute_type"], "beam": beam,
                     "lines_per_s": statistics.median(lps), "lines_per_s_min": min(lps), "lines_per_s_max": max(lps),
                     "tokens_per_s": statistics.median(res["tokens_per_s"]), "bleu": scores["bleu"],
                     "chrf": scores["chrf"], "signature": scores.get("signature", "")})
    teacher = {(r["quantization"], r["beam"]): r for r in rows if r["role"] == "teacher"}
    float32 = {(r["model"], r["beam"]): r for r in rows if r["quantization"] == "none"}
    for r in rows:
        t = teacher[(r["quantization"], r["beam"])]
        r["bleu_retention"] = r["bleu"] / t["bleu"] if t["bleu"] > 0 else float("nan")
        r["speedup_vs_teacher"] = r["lines_per_s"] / t["lines_per_s"]
        t32 = teacher.get(("none", r["beam"]))
        r["speedup_vs_teacher_float32"] = r["lines_per_s"] / t32["lines_per_s"] if t32 else None
        base = float32.get((r["model"], r["beam"]))
        r["int8_minus_float32_bleu"] = r["bleu"] - base["bleu"] if r["quantization"] != "none" and base else None
    return rows


def targets(rows: List[dict]) -> List[str]:
    """The issue's targets, each as one sentence: speed at >= 90 % BLEU (float32, largest beam) and int8's cost."""
    beam = max(r["beam"] for r in rows)
    same = [r for r in rows if r["beam"] == beam and r["quantization"] == "none"]
    keep = [r for r in same if r["role"] == "student" and r["bleu_retention"] >= RETENTION_TARGET]
    lines = []
    if keep:
        best = max(keep, key=lambda r: r["speedup_vs_teacher"])
        met = "MET" if best["speedup_vs_teacher"] >= SPEEDUP_TARGET else "NOT MET"
        lines.append(f"speed: {met} -- the fastest student keeping >= {RETENTION_TARGET:.0%} of the teacher's BLEU "
                     f"(float32, beam {beam}) is {best['model']}: {best['speedup_vs_teacher']:.2f}x the teacher's "
                     f"lines/s at {best['bleu_retention']:.1%} of its BLEU (target {SPEEDUP_TARGET:g}x)")
    else:
        best = max((r for r in same if r["role"] == "student"), key=lambda r: r["bleu_retention"], default=None)
        lines.append(f"speed: NOT MET -- no student keeps >= {RETENTION_TARGET:.0%} of the teacher's BLEU at float32, "
                     f"beam {beam}" + (f" (the best, {best['model']}, keeps {best['bleu_retention']:.1%} at "
                                       f"{best['speedup_vs_teacher']:.2f}x the teacher's lines/s)" if best else ""))
    costs = [r for r in rows if r["int8_minus_float32_bleu"] is not None and r["role"] == "student"]
    if costs:
        over = [r for r in costs if -r["int8_minus_float32_bleu"] > INT8_COST_TARGET]
        worst = min(costs, key=lambda r: r["int8_minus_float32_bleu"])
        lines.append(f"int8: {'NOT MET' if over else 'MET'} -- int8 minus float32 BLEU per student and beam ranges "
                     f"{worst['int8_minus_float32_bleu']:+.2f} ({worst['model']}, beam {worst['beam']}) to "
                     f"{max(r['int8_minus_float32_bleu'] for r in costs):+.2f}; target: costs <= {INT8_COST_TARGET} "
                     f"BLEU" + (f"; over it: {', '.join(sorted({r['model'] for r in over}))}" if over else ""))
    return lines


def pareto(points: List[tuple]) -> List[tuple]:
    """The (speed, bleu) points no other point beats on both, by speed."""
    return sorted(p for p in points if not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in points))


def _fmt(value, digits=2) -> str:
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def markdown(rows: List[dict], machine: dict, target_lines: List[str], command: str) -> str:
    head = ["model", "role", "params", "size (bytes)", "compute type", "beam", "lines/s (min-max)", "tokens/s",
            "x teacher", "x teacher float32", "BLEU", "chrF", "retention", "int8 - float32 BLEU"]
    out = [f"Deployment table: `lskd translate` on {machine['lines']} test lines, {machine['threads']} CPU threads, "
           f"median of {machine['rounds']} interleaved rounds; {machine['cpu']} (load average at start "
           f"{machine['load_at_start']:.2f}).", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        out.append("| " + " | ".join([
            r["model"], r["role"], _fmt(r["params"]), _fmt(r["size_bytes"]), r["compute_type"], str(r["beam"]),
            f"{r['lines_per_s']:.1f} ({r['lines_per_s_min']:.1f}-{r['lines_per_s_max']:.1f})",
            f"{r['tokens_per_s']:.0f}", f"{r['speedup_vs_teacher']:.2f}", _fmt(r["speedup_vs_teacher_float32"]),
            _fmt(r["bleu"]), _fmt(r["chrf"]),
            f"{r['bleu_retention']:.1%}", _fmt(r["int8_minus_float32_bleu"])]) + " |")
    out += ["", f"BLEU: {rows[0]['signature']}", "", "Targets:"] + [f"- {t}" for t in target_lines]
    out += ["", f"Command: `{command}`", ""]
    return "\n".join(out)


def plot(rows: List[dict], path: Path) -> None:
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # fairseq's logging config lets its DEBUG through
    import matplotlib.pyplot as plt

    beam = max(r["beam"] for r in rows)
    chosen = [r for r in rows if r["beam"] == beam]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for quant, marker in (("none", "o"), ("int8", "s")):
        pts = [r for r in chosen if r["quantization"] == quant]
        ax.scatter([r["lines_per_s"] for r in pts], [r["bleu"] for r in pts], marker=marker,
                   label="float32" if quant == "none" else quant)
    for r in [r for r in chosen if r["quantization"] not in ("none", "int8")]:
        ax.scatter(r["lines_per_s"], r["bleu"], marker="^")
    for r in chosen:
        ax.annotate(r["model"], (r["lines_per_s"], r["bleu"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = pareto([(r["lines_per_s"], r["bleu"]) for r in chosen])
    ax.plot([p[0] for p in front], [p[1] for p in front], "k--", lw=1, label="Pareto front")
    ax.set_xlabel(f"lines/s (lskd translate, beam {beam}, median)")
    ax.set_ylabel("BLEU")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def write_outputs(out: Path, rows: List[dict], machine: dict, command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    target_lines = targets(rows)
    plot(rows, out / "deploy.png")
    write_json(out / "deploy.json", {"command": command, "machine": machine, "targets": target_lines, "rows": rows})
    write_text(out / "deploy.md", markdown(rows, machine, target_lines, command))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                     for r in rows)
    write_text(out / "deploy.csv", buf.getvalue())  # written last: the recipe's marker
    print(markdown(rows, machine, target_lines, command))


def main(argv: List[str]) -> int:
    doc = __doc__.split("\n\n", 1)
    p = argparse.ArgumentParser(prog="lskd deploy-table", description=doc[0], epilog=doc[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the data dir the models were trained on (dictionaries, tokenizer)")
    p.add_argument("--source", required=True, type=Path, help="raw test source text, one sentence per line")
    p.add_argument("--ref", required=True, type=Path, help="its reference translations (DATA/raw/test.TGT)")
    p.add_argument("--model", required=True, action="append", metavar="NAME=ROLE:CKPT",
                   help="a model to measure (ROLE teacher or student); one teacher; repeat for each")
    p.add_argument("--exports", required=True, type=Path, help="where the exports go (EXPORTS/NAME.QUANT)")
    p.add_argument("--out", required=True, type=Path, help="the table's folder (deploy.md/.csv/.png/.json)")
    p.add_argument("--quantizations", nargs="+", default=["none", "int8"], help="export types (default none int8)")
    p.add_argument("--beams", nargs="+", type=int, default=[1, 5], help="beam sizes (default 1 5)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (default 3)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of each model (default 2)")
    p.add_argument("--batch-size", type=int, default=64, help="lskd translate's --batch-size (default 64)")
    p.add_argument("--max-len-a", type=float, default=1.2, help="max output length a * src_len + b (default 1.2)")
    p.add_argument("--max-len-b", type=int, default=10, help="(default 10: the demo recipe's)")
    a = p.parse_args(argv)
    return build(a, "lskd deploy-table " + shlex.join(argv))


def build(a: argparse.Namespace, command: str) -> int:
    from lskd.machine import cpu_model, load_at_start

    from . import ct2_model
    from .ct2_search import SearchSettings
    from .export import QUANTIZATIONS
    from .translate import ExportedModel

    entries = [parse_model(m) for m in a.model]
    check_models(entries)
    for q in a.quantizations:
        if q not in QUANTIZATIONS:
            raise LskdError(f"--quantizations {q}: expected among {', '.join(QUANTIZATIONS)}")
    if min(a.beams) < 1 or a.rounds < 1 or a.threads < 1:
        raise LskdError(f"--beams {a.beams} --rounds {a.rounds} --threads {a.threads}: expected each >= 1")
    for option, path in (("--source", a.source), ("--ref", a.ref)):
        if not path.is_file():
            raise LskdError(f"{option} {path}: no such file")
    lines = count_lines(a.source)
    if lines != count_lines(a.ref):
        raise LskdError(f"--source {a.source} and --ref {a.ref}: different numbers of lines (expected one test set)")
    folders = {(e.name, q): exported(e, q, a.data, a.exports) for e in entries for q in a.quantizations}
    search = SearchSettings(max_len_a=a.max_len_a, max_len_b=a.max_len_b, batch_size=a.batch_size)
    load = load_at_start()
    with ct2_model.torch_threads_restored():
        ct2_model.take_threads_from_torch()
        models = {k: ExportedModel(f, search, "cpu", "default", a.threads) for k, f in folders.items()}
        info = {k: {"params": read_json(f / "export.json")["parameters"], "size_bytes": model_bytes(f),
                    "compute_type": models[k].compute_type} for k, f in folders.items()}
        results = measure(models, a.source, sorted(a.beams), a.rounds, search)
    rows = score_rows(entries, info, results, a.ref)
    machine = {"cpu": cpu_model(), "load_at_start": load, "threads": a.threads, "rounds": a.rounds, "lines": lines}
    write_outputs(a.out, rows, machine, command)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
