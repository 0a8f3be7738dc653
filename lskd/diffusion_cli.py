"""`lskd diffusion`: the command around the index of lskd/diffusion.py -- input files, one table per
reference model, verdicts over seeds, the projection panels, and `--compare` (lskd/diffusion_compare.py).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import List, NamedTuple, Sequence, Tuple

import torch

import lskd.diffusion as index
from lskd.diffusion import MIN_PER_CLASS, REQUIRED, Pairs, sentence_ids, index_table, parse_pairs, similarity
from lskd.errors import LskdError
from lskd.fileio import command_line, sha256_file, write_json, write_text
from lskd.projection import class_axes_pca, plot_panels, project, template_basis
from lskd.verdicts import RULES, Interval, Test, decide


def load_features(name: str, path: str) -> dict:
    """A features file checked for the fields the analysis needs."""
    if not Path(path).is_file():
        raise LskdError(f"--features {name}={path}: no such file")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise LskdError(f"--features {name}={path}: not a features file ({type(e).__name__})")
    missing = [k for k in REQUIRED if not isinstance(d, dict) or k not in d]
    if missing:
        raise LskdError(f"--features {name}={path}: missing {', '.join(missing)} (write it with `lskd vision "
                        "features` or `lskd nmt-features`)")
    return d


class FeatureCell(NamedTuple):
    """One cell of the table: its name, the features of its models (one per seed), their files."""

    name: str
    models: List[dict]
    files: List[str]


def parse_cells(specs: Sequence[str]) -> List[Tuple[str, List[str]]]:
    cells = []
    for spec in specs:
        if "=" not in spec:
            raise LskdError(f"--features {spec!r}: expected NAME=FILE[,FILE...]")
        name, paths = spec.split("=", 1)
        cells.append((name, [p for p in paths.split(",") if p]))
    names = [n for n, _ in cells]
    if len(set(names)) != len(names):
        raise LskdError(f"--features: names must differ, got {names}")
    return cells


def fmt(v: dict) -> str:
    return f"{v['value']:+.3f} [{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}]"


def _parser() -> argparse.ArgumentParser:
    doc = index.__doc__
    p = argparse.ArgumentParser(prog="lskd diffusion", description=doc.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=doc.split("\n\n", 1)[1])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--features", nargs="+", metavar="NAME=FILE[,FILE...]",
                      help="one cell per argument (several files = several seeds); the first cell is the baseline")
    what.add_argument("--compare", nargs=2, metavar="NAME=PREFIX.json",
                      help="two finished tables (e.g. LS=a0.1.json non-LS=a0.json): each cell's systematic diffusion "
                           "over seeds in both, and their difference with its Welch interval (Holm over the cells)")
    p.add_argument("--classes", nargs=3, type=int, default=None, metavar="C",
                   help="the three classes of the projection (the paper: two similar, one dissimilar)")
    p.add_argument("--index-classes", nargs="+", type=int, default=None, metavar="C",
                   help=f"classes the index averages over (default: every class with >= {MIN_PER_CLASS} samples in all files)")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--similar-from", nargs="+", default=None, metavar="NAME|FILE",
                     help="the model whose softmax defines similar and control classes for the whole comparison: a "
                          "features file, or the NAME of a one-file cell (default: the first file); several: one table "
                          "each and a line on whether the verdicts change (use the same references in every table "
                          "you compare)")
    ref.add_argument("--similar-pairs", default=None, metavar="A:B,...",
                     help="similar classes given by the user (symmetric); the other analysed classes are the controls")
    p.add_argument("--controls", type=int, default=3, help="dissimilar control classes per class with --similar-from (default 3)")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="B", help="bootstrap replicates (default 1000)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval coverage (default 0.95)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap draws (default 0)")
    p.add_argument("--class-names", nargs=3, default=None, metavar="NAME", help="legend names of --classes")
    p.add_argument("--out", required=True, type=Path, help="output prefix: PREFIX.png, PREFIX.md, PREFIX.json")
    return p


def _classes(a: argparse.Namespace, models: List[dict], n_classes: int) -> Tuple[List[int], List[int], List[int]]:
    """(index classes, classes with enough samples in every file, classes present in every file), checked."""
    counts = [torch.bincount(d["labels"].long(), minlength=n_classes) for d in models]
    enough = [c for c in range(n_classes) if all(int(k[c]) >= MIN_PER_CLASS for k in counts)]
    present = [c for c in range(n_classes) if all(int(k[c]) > 0 for k in counts)]
    index_classes = a.index_classes or enough
    for c in a.classes:
        if c not in present:
            raise LskdError(f"--classes {c}: not present in every features file")
    for c in index_classes:
        if c not in enough:
            raise LskdError(f"class {c}: fewer than {MIN_PER_CLASS} samples in some features file, or not present "
                            f"(classes with enough samples in all files: {len(enough)})")
    if len(index_classes) < 3:
        raise LskdError(f"--index-classes: need at least 3 classes, got {index_classes}")
    return index_classes, enough, present


def _reference(a: argparse.Namespace, cells, index_classes: List[int], n_classes: int) -> List[Tuple[Pairs, dict]]:
    """The similar and control classes, from the user's pairs or each reference model's softmax (one per table)."""
    if a.similar_pairs:
        return [(parse_pairs(a.similar_pairs, index_classes), {"kind": "pairs", "pairs": a.similar_pairs})]
    names = [c.name for c in cells]
    out = []
    for ref_spec in a.similar_from or [None]:
        if ref_spec is None:  # the first file of the first cell
            ref_data, ref_file = cells[0].models[0], cells[0].files[0]
        elif ref_spec in names:
            cell = next(c for c in cells if c.name == ref_spec)
            if len(cell.files) != 1:
                raise LskdError(f"--similar-from {ref_spec}: that cell has {len(cell.files)} files; name one file")
            ref_data, ref_file = cell.models[0], cell.files[0]
        elif Path(ref_spec).is_file():
            ref_data, ref_file = load_features("(--similar-from)", ref_spec), ref_spec
        else:
            raise LskdError(f"--similar-from {ref_spec}: neither a --features name {names} nor a file")
        missing = [c for c in index_classes if not bool((ref_data["labels"] == c).any())]
        if missing or ref_data["logits"].size(1) != n_classes:
            raise LskdError(f"--similar-from {ref_file}: no samples of class(es) {missing} or not {n_classes} classes")
        out.append((similarity(ref_data["logits"], ref_data["labels"], index_classes, a.controls),
                    {"kind": "model", "file": str(ref_file), "sha256": sha256_file(Path(ref_file))}))
    return out


def _plot(a: argparse.Namespace, cells, known, n_classes: int) -> None:
    """One projection panel per cell (its first file), oriented by the class directions."""
    panels = []
    for name, ds, _ in cells:  # FeatureCell: name, models, files
        d = ds[0]
        try:
            basis = template_basis(d["fc_weight"], d["fc_bias"], a.classes)
        except ValueError as e:
            raise LskdError(f"--features {name}: {e}")
        keep = torch.isin(d["labels"], torch.tensor(a.classes))
        proj = project(d["features"][keep], basis)
        title = name if len(ds) == 1 else f"{name} (first of {len(ds)} files)"
        panels.append((title, class_axes_pca(proj, d["labels"][keep], a.classes)(proj), d["labels"][keep]))
    if a.class_names:
        shown = a.class_names
    elif isinstance(known, (list, tuple)) and len(known) == n_classes:
        shown = [str(known[c]) for c in a.classes]
    else:
        shown = [str(c) for c in a.classes]
    plot_panels(panels, a.classes, dict(zip(a.classes, shown)), a.out.with_name(a.out.name + ".png"))


def systematic_tests(results: dict, baseline: str, digits: int = 3) -> List[Test]:
    """One two-sided test per cell: is its systematic diffusion against the baseline non-zero, over seeds?"""
    return [Test(f"systematic diffusion, {name} vs {baseline}", None if r["systematic"]["seeds"] is None
                 else Interval(**r["systematic"]["seeds"]), None, words=("positive", "negative"), digits=digits,
                 note=f"sampling interval [{r['systematic']['ci'][0]:+.2f}, {r['systematic']['ci'][1]:+.2f}]")
            for name, r in results.items() if name != baseline]


def _seeds(v: dict) -> str:
    return "–" if v["seeds"] is None else f"[{v['seeds']['low']:+.2f}, {v['seeds']['high']:+.2f}]"


def _markdown(a: argparse.Namespace, tables: List[dict], paired: bool, baseline: str, known, n_classes: int) -> str:
    def label(c):
        return f"{c} ({known[c]})" if isinstance(known, (list, tuple)) and len(known) == n_classes else str(c)

    pct = f"{100 * a.confidence:g}%"
    out = []
    for t in tables:
        reference, pairs, results = t["reference"], t["pairs"], t["results"]
        ref_text = (f"user pairs {a.similar_pairs}" if reference["kind"] == "pairs"
                    else f"the softmax of {reference['file']} (sha256 {reference['sha256'][:12]})")
        verdict = dict(zip([n for n in results if n != baseline], [x.verdict() for x in t["tests"]]))
        rows = [f"| {n} | {r['models']} | {math.exp(r['L_sim']['value']):.3f} | {math.exp(r['L_ctl']['value']):.3f} | "
                f"{fmt(r['K'])} | {fmt(r['dL_sim'])} | {fmt(r['dL_ctl'])} | **{fmt(r['systematic'])}** | "
                f"{_seeds(r['systematic'])} | {verdict.get(n, 'baseline')} |" for n, r in results.items()]
        out += [
            f"Diffusion index (lskd's definition, `lskd diffusion --help`): {len(pairs)} classes; similar and control "
            f"classes from {ref_text}; baseline: {baseline}. Values with {pct} sampling intervals (normal bootstrap, "
            f"+- z * s.e., {a.bootstrap} replicates over {'sentences (the tokens of a sentence move together)' if t['clustered'] else 'samples within each class'}"
            f", {'paired: the same draws in every file' if paired else 'unpaired'}); the seed interval of systematic is "
            "Welch's t over the models of the cell and of the baseline (– where either has one model).",
            "",
            "| features | models | w_sim | w_ctl | K = L_sim - L_ctl | dL_sim | dL_ctl | systematic (sampling) | systematic over seeds | verdict |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "w_sim = exp(L_sim), w_ctl = exp(L_ctl): pooled width (std along the axis / centroid distance) towards the "
            "similar class and towards the controls. Similar class (controls): " + "; ".join(
                f"{label(c)} -> {label(s)} ({', '.join(map(str, ctl))})" for c, (s, ctl) in pairs.items()) + ".",
            "", "Verdicts (over seeds; Holm over this table's tests):", *t["lines"], ""]
    if len(tables) > 1:
        names = [n for n in tables[0]["results"] if n != baseline]
        words = {n: [dict(zip(names, [x.verdict() for x in t["tests"]]))[n] for t in tables] for n in names}
        changed = [n for n in names if len(set(words[n])) > 1]
        refs = " / ".join(Path(t["reference"].get("file", "pairs")).name for t in tables)
        out.append(f"Reference sensitivity ({refs}): " + ("the verdicts are the same under every reference." if not changed
                   else "the verdicts change for " + "; ".join(f"{n}: {' / '.join(words[n])}" for n in changed) + "."))
    out += ["", *(f"- {r}" for r in RULES)]
    return "\n".join(out).rstrip()


def main(argv: List[str]) -> int:
    a = _parser().parse_args(argv)
    if a.bootstrap < 10 or not 0 < a.confidence < 1:
        raise LskdError(f"--bootstrap must be >= 10 and --confidence in (0, 1), got {a.bootstrap}, {a.confidence}")
    if a.compare:
        from lskd.diffusion_compare import compare

        return compare(a.compare, a.out, a.confidence)
    if a.classes is None:
        raise LskdError("--classes: expected the three classes of the projection")
    cells = [FeatureCell(name, [load_features(name, f) for f in files], files) for name, files in parse_cells(a.features)]
    if any(not c.files for c in cells):
        raise LskdError("--features: every cell needs at least one file")
    models = [d for c in cells for d in c.models]
    n_classes = models[0]["logits"].size(1)
    index_classes, enough, present = _classes(a, models, n_classes)
    baseline, tables = cells[0].name, []
    for pairs, reference in _reference(a, cells, index_classes, n_classes):
        try:
            results, paired = index_table([(c.name, c.models) for c in cells], pairs, a.bootstrap, a.confidence, a.seed)
        except ValueError as e:
            raise LskdError(f"--features: {e}")
        tests = systematic_tests(results, baseline)
        tables.append({"reference": reference, "pairs": pairs, "results": results, "tests": tests, "lines": decide(tests),
                       "clustered": sentence_ids(models[0]) is not None})
    known = models[0].get("classes")
    _plot(a, cells, known, n_classes)
    text = _markdown(a, tables, paired, baseline, known, n_classes)
    write_text(a.out.with_name(a.out.name + ".md"), text + "\n")
    refs = [{"reference": t["reference"], "results": t["results"], "verdicts": t["lines"],
             "pairs": {str(c): {"similar": s, "controls": ctl} for c, (s, ctl) in t["pairs"].items()}} for t in tables]
    write_json(a.out.with_name(a.out.name + ".json"), {
        **refs[0], "references": refs, "baseline": baseline,
        "files": {c.name: c.files for c in cells}, "classes": a.classes, "index_classes": index_classes,
        "too_few_samples": [c for c in present if c not in enough], "clustered": tables[0]["clustered"],
        "min_per_class": MIN_PER_CLASS, "bootstrap": a.bootstrap, "confidence": a.confidence, "seed": a.seed,
        "paired": paired, "command": command_line()})
    print(text)
    return 0
