"""`lskd diffusion --compare A=a.json B=b.json --out PREFIX`: LS vs non-LS systematic diffusion as a difference.

Two tables of `lskd diffusion` (one per teacher) are compared cell by cell from the per-model values their
JSON files keep, so a committed table can be compared again without its features: for a cell c with
baseline b, each table's systematic diffusion is mean K(c) - mean K(b) over its models (seeds), and the
difference between the tables is the contrast (K_A(c) - K_A(b)) - (K_B(c) - K_B(b)) with Welch's interval
(Welch-Satterthwaite degrees of freedom over the four groups). Each table's own systematic gets its seed
interval too, and so does the difference of the baselines' L_sim (their width towards the similar class:
the tables share the reference, so it compares across them). The tests of one comparison (one per cell and table, one per difference) are Holm-corrected
together (lskd/verdicts.py). Tables with several references are compared reference by reference (they
must use the same references, in the same order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from lskd.errors import LskdError
from lskd.fileio import command_line, read_json, write_json, write_text
from lskd.verdicts import RULES, Summary, Test, contrast, decide, difference


def _tables(name: str, path: str) -> Tuple[str, List[dict]]:
    """(baseline, [{reference, results}, ...]) of one `lskd diffusion` JSON (older files: one reference)."""
    if not Path(path).is_file():
        raise LskdError(f"--compare {name}={path}: no such file")
    d = read_json(Path(path), "an `lskd diffusion` JSON")
    if not isinstance(d, dict) or "results" not in d or "baseline" not in d:
        raise LskdError(f"--compare {name}={path}: not the JSON of `lskd diffusion` (no results/baseline)")
    return d["baseline"], d.get("references") or [{"reference": d.get("reference"), "results": d["results"]}]


def _k(results: dict, cell: str, key: str = "K") -> Summary:
    return Summary.of([m[key] for m in results[cell]["per_model"]])


def _tests(names: Sequence[str], base: str, a: dict, b: dict, confidence: float) -> List[Test]:
    cells = [c for c in a if c != base and c in b]
    # the baselines' own width towards the similar class (the tables share the reference, so it compares):
    # the paper's "tighter clusters" of the LS teacher's students at low T
    tests = [Test(f"{base}: width towards the similar class, {names[0]} − {names[1]}",
                  difference(_k(a, base, "L_sim"), _k(b, base, "L_sim"), confidence), None, "L_sim", digits=3,
                  words=(f"wider with {names[0]}", f"narrower with {names[0]}"))]
    for c in cells:
        for name, r in zip(names, (a, b)):
            tests.append(Test(f"{c}: systematic diffusion with {name}", difference(_k(r, c), _k(r, base), confidence),
                              None, f"K({c}) − K({base})", words=("positive", "negative"), digits=3,
                              note=f"{r[c]['models']} and {r[base]['models']} models"))
        iv = contrast([(1.0, _k(a, c)), (-1.0, _k(a, base)), (-1.0, _k(b, c)), (1.0, _k(b, base))], confidence)
        tests.append(Test(f"{c}: {names[0]} − {names[1]}", iv, None, "difference of systematic", digits=3,
                          words=(f"larger with {names[0]}", f"larger with {names[1]}")))
    return tests


def compare(specs: Sequence[str], out: Path, confidence: float) -> int:
    pairs = []
    for spec in specs:
        if "=" not in spec:
            raise LskdError(f"--compare {spec!r}: expected NAME=PREFIX.json")
        pairs.append(spec.split("=", 1))
    names = [n for n, _ in pairs]
    if names[0] == names[1]:
        raise LskdError(f"--compare: the two names must differ, got {names}")
    (base_a, tables_a), (base_b, tables_b) = (_tables(n, p) for n, p in pairs)
    if base_a != base_b or len(tables_a) != len(tables_b):
        raise LskdError(f"--compare: the tables differ in baseline ({base_a} vs {base_b}) or number of references "
                        f"({len(tables_a)} vs {len(tables_b)})")
    lines: List[str] = [f"Systematic diffusion compared: {names[0]} ({pairs[0][1]}) vs {names[1]} ({pairs[1][1]}); "
                        f"baseline {base_a}; intervals {100 * confidence:g} % over seeds (Welch).", ""]
    record: Dict[str, List[str]] = {}
    for ta, tb in zip(tables_a, tables_b):
        ra, rb = ta.get("reference") or {}, tb.get("reference") or {}
        if ra.get("sha256") != rb.get("sha256") or ra.get("pairs") != rb.get("pairs"):
            raise LskdError(f"--compare: the tables use other similar classes ({ra.get('file') or ra.get('pairs')} vs "
                            f"{rb.get('file') or rb.get('pairs')}): compare tables made with the same reference")
        tests = _tests(names, base_a, ta["results"], tb["results"], confidence)
        ref = ra.get("file") or f"pairs {ra.get('pairs')}"
        record[ref] = decide(tests)
        lines += [f"Similar classes from {ref}:", *record[ref], ""]
    lines += [f"- {r}" for r in RULES]
    text = "\n".join(lines)
    write_text(out.with_name(out.name + ".md"), text + "\n")
    write_json(out.with_name(out.name + ".json"), {"compared": dict(pairs), "baseline": base_a, "verdicts": record,
                                                   "confidence": confidence, "command": command_line()})
    print(text)
    return 0
