"""Penultimate-layer analysis: the paper's template projection (its Algorithm 1) and a diffusion index.

    lskd diffusion --features T1=s_T1.pt T3=s_T3_seed0.pt,s_T3_seed1.pt --similar-from ref.pt --classes 2 4 9 --out PREFIX

Input files hold penultimate features with labels, the model's logits and its final layer, as written by
`lskd vision features` (images) or `lskd nmt-features` (NMT: decoder states per gold target token). Each
NAME=FILE[,FILE...] is one cell of the table; several files are several seeds of the same setting. The first
cell is the baseline. Output: PREFIX.md (table), PREFIX.json (every number, interval, pair), PREFIX.png
(projection panels: the first file of each cell; see lskd/projection.py).

Diffusion index -- this project's definition; the paper gives no formula. The paper's claim: with an LS
teacher and a higher T, a class's features spread *towards semantically similar classes*. So, for class c
and another class d, with centroids mu_c, mu_d, delta = mu_d - mu_c, and c's covariance Sigma_c:
  width w(c, d) = sqrt(delta' Sigma_c delta) / |delta|^2
                = (standard deviation of c along the unit axis from mu_c to mu_d) / (centroid distance),
  i.e. how far c reaches towards d in units of their separation (1 / a one-dimensional Fisher ratio).
  Similar class s(c) and dissimilar controls: from ONE reference for the whole comparison (--similar-from:
  the class a fixed model's softmax gives most mass on c's samples, and the --controls classes given the
  least; or --similar-pairs A:B,...: then every other analysed class is a control). Recorded in the output.
  Pooled over the pairs (c, s(c)) of all classes c: L_sim = log w_sim, w_sim = sqrt(mean of delta' Sigma_c delta)
  / mean of |delta|^2 (the two estimated terms are averaged before the ratio and log, which keeps small
  classes from biasing it); L_ctl the same over the pairs (c, d) of every class and its controls.
  contrast K = L_sim - L_ctl.  Against the baseline cell (the first):
  dL_sim = L_sim - L_sim(base), dL_ctl = L_ctl - L_ctl(base), and
  SYSTEMATIC DIFFUSION = dL_sim - dL_ctl = K - K(base): > 0 when classes grew wider towards their similar
  class (relative to that separation) than towards dissimilar ones. 0.69 = twice as wide, relatively.
Properties: scale-free (w is a ratio of lengths); tightening or loosening every class alike shifts L_sim
and L_ctl by the same log factor, so K does not move; a spread in a direction no class difference uses
changes no w. Unbiased in the number n_c of samples per class: |delta|^2 and delta' Sigma_c delta are
estimated without bias (sample covariances S with ddof=1, v = difference of sample means):
  |delta|^2          = |v|^2 - tr(S_c)/n_c - tr(S_d)/n_d
  delta' Sigma_c delta = v' S_c v - tr(Sigma_c^2)^/n_c - tr(S_c S_d)/n_d,
  tr(Sigma^2)^ = (n-1)^2/((n-2)(n+1)) (tr(S^2) - tr(S)^2/(n-1))   (unbiased for Gaussian features)
(the plug-in |v|^2 alone overstates the distance by tr(Sigma)/n, which in 100+ dimensions dwarfs the signal
at a few dozen samples). Classes with fewer than MIN_PER_CLASS = 10 samples in any file are left out (and
listed in the JSON: too_few_samples); a class named on the command line with fewer is an error. Pooled estimates that are not positive
(classes not separable at that n) are an error; a single pair's log width in the JSON is then null.
Intervals: normal bootstrap, value +- z * (standard deviation of B replicates) (--bootstrap B, --confidence;
percentile intervals are biased when a class has fewer samples than dimensions). Each replicate resamples the
samples of every class with replacement, the same draws in every file when all files hold the same labels
in the same order (the same test images or tokens: a paired bootstrap), and, in a cell of several seeds,
also the seeds with replacement. Every value (K, dL_sim, dL_ctl, systematic) gets its interval.
"""

from __future__ import annotations

import argparse
import math
from statistics import NormalDist
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from lskd.errors import LskdError
from lskd.fileio import command_line, sha256_file, write_json, write_text
from lskd.projection import class_axes_pca, plot_panels, project, template_basis

REQUIRED = ("features", "labels", "logits", "fc_weight", "fc_bias")
MIN_PER_CLASS = 10
Pairs = Dict[int, Tuple[int, List[int]]]  # class -> (similar class, control classes)


class ClassSamples:
    """One class's features, centred at their mean (float64), for weighted (bootstrap) moments."""

    def __init__(self, x: np.ndarray):
        self.n = len(x)
        self.mean = x.mean(0)
        self.y = x - self.mean
        self.sq = (self.y ** 2).sum(1)


def class_moments(cs: ClassSamples, w: np.ndarray) -> dict:
    """Per replicate (rows of w, sample counts summing to n): mean shift e, tr(S) and tr(S^2) of the resampled class.

    With A = Y' diag(w) Y the resampled covariance is S = (A - n e e')/(n-1), e = w Y / n; tr(A^2) is
    w' ((Y Y')**2) w, so nothing D x D is formed per replicate.
    """
    n = cs.n
    gram = cs.y @ cs.y.T
    e = w @ cs.y / n
    ye = gram @ w.T / n  # (n, B): y_i . e_b
    ee = (e ** 2).sum(1)
    tr_s = (w @ cs.sq - n * ee) / (n - 1)
    tr_a2 = ((w @ (gram ** 2)) * w).sum(1)
    tr_s2 = (tr_a2 - 2 * n * (w.T * ye ** 2).sum(0) + n ** 2 * ee ** 2) / (n - 1) ** 2
    tr_sigma2 = (n - 1) ** 2 / ((n - 2) * (n + 1)) * (tr_s2 - tr_s ** 2 / (n - 1))
    return {"e": e, "tr_s": tr_s, "tr_sigma2": tr_sigma2}


def pair_terms(c: ClassSamples, d: ClassSamples, wc: np.ndarray, wd: np.ndarray, mc: dict, md: dict) -> Tuple[np.ndarray, np.ndarray]:
    """Unbiased estimates of delta' Sigma_c delta and |delta|^2 per replicate (see the module docstring)."""
    cross = c.y @ d.y.T
    v = (d.mean - c.mean) + md["e"] - mc["e"]  # (B, D): difference of the resampled means
    dist2 = (v ** 2).sum(1) - mc["tr_s"] / c.n - md["tr_s"] / d.n
    yv = c.y @ v.T  # (n_c, B)
    ev = (mc["e"] * v).sum(1)
    vsv = ((wc.T * yv ** 2).sum(0) - c.n * ev ** 2) / (c.n - 1)
    # tr(S_c S_d) of the resampled classes: tr(A_c A_d) - n_d e_d'A_c e_d - n_c e_c'A_d e_c + n_c n_d (e_c.e_d)^2
    y_c_ed = cross @ wd.T / d.n  # (n_c, B): y_ci . e_d
    y_d_ec = cross.T @ wc.T / c.n
    tr_ab = ((wc @ (cross ** 2)) * wd).sum(1)
    tr_scsd = (tr_ab - d.n * (wc.T * y_c_ed ** 2).sum(0) - c.n * (wd.T * y_d_ec ** 2).sum(0)
               + c.n * d.n * (mc["e"] * md["e"]).sum(1) ** 2) / ((c.n - 1) * (d.n - 1))
    return vsv - mc["tr_sigma2"] / c.n - tr_scsd / d.n, dist2


def pooled_log_width(terms: List[Tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """log w over pairs: 0.5 log(mean Q) - log(mean |delta|^2); NaN where an estimate is not positive."""
    q = np.mean([t[0] for t in terms], axis=0)
    dist2 = np.mean([t[1] for t in terms], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = 0.5 * np.log(q) - np.log(dist2)
    return np.where((q > 0) & (dist2 > 0), out, np.nan)


def width_summary(samples: Dict[int, ClassSamples], weights: Dict[int, np.ndarray], pairs: Pairs) -> dict:
    """L_sim, L_ctl (B,) and the per-pair log widths (B,) for one model and one set of class weights."""
    moments = {c: class_moments(samples[c], weights[c]) for c in samples}
    terms: Dict[Tuple[int, int], Tuple[np.ndarray, np.ndarray]] = {}
    for c, (s, controls) in pairs.items():
        for d in [s, *controls]:
            terms[(c, d)] = pair_terms(samples[c], samples[d], weights[c], weights[d], moments[c], moments[d])
    return {"L_sim": pooled_log_width([terms[(c, s)] for c, (s, _) in pairs.items()]),
            "L_ctl": pooled_log_width([terms[(c, d)] for c, (_, ctl) in pairs.items() for d in ctl]),
            "log_width": {pair: pooled_log_width([t]) for pair, t in terms.items()}}


def class_samples(features: torch.Tensor, labels: torch.Tensor, classes: Sequence[int]) -> Dict[int, ClassSamples]:
    x, y = features.double().numpy(), labels.numpy()
    return {c: ClassSamples(x[y == c]) for c in classes}


def point_summary(features: torch.Tensor, labels: torch.Tensor, pairs: Pairs) -> dict:
    """The index's per-model numbers on the samples as given (no resampling): L_sim, L_ctl, K, log widths."""
    classes = sorted({c for c in pairs} | {d for s, ctl in pairs.values() for d in [s, *ctl]})
    samples = class_samples(features, labels, classes)
    small = [c for c in classes if samples[c].n < MIN_PER_CLASS]
    if small:
        raise ValueError(f"class(es) {small} have fewer than {MIN_PER_CLASS} samples")
    s = width_summary(samples, {c: np.ones((1, samples[c].n)) for c in classes}, pairs)
    if not (np.isfinite(s["L_sim"][0]) and np.isfinite(s["L_ctl"][0])):
        raise ValueError("the pooled unbiased squared centroid distance or axis variance is not positive (classes "
                         "not separable at this sample size)")
    return {"L_sim": float(s["L_sim"][0]), "L_ctl": float(s["L_ctl"][0]), "K": float(s["L_sim"][0] - s["L_ctl"][0]),
            "log_width": {f"{c}-{d}": float(v[0]) if np.isfinite(v[0]) else None for (c, d), v in s["log_width"].items()}}


def bootstrap_weights(rng: np.random.Generator, labels: np.ndarray, classes: Sequence[int], b: int) -> Dict[int, np.ndarray]:
    """Per class, B rows of resampling counts (multinomial, summing to the class size)."""
    out = {}
    for c in classes:
        n = int((labels == c).sum())
        out[c] = rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64)
    return out


def index_table(cells: List[Tuple[str, List[dict]]], pairs: Pairs, n_boot: int, confidence: float, seed: int) -> Tuple[dict, bool]:
    """Point values and bootstrap intervals of L_sim, L_ctl, K, dL_sim, dL_ctl and systematic for every cell
    (a cell's value = the mean over its models). Returns (results by cell name, paired?).

    BLAS runs single-threaded: the matrices are at most samples-per-class square, and threaded BLAS on a
    busy machine spins (20x slower measured on 2 shared cores)."""
    with threadpool_limits(limits=1, user_api="blas"):
        return _index_table(cells, pairs, n_boot, confidence, seed)


def _index_table(cells, pairs, n_boot, confidence, seed):
    classes = sorted({c for c in pairs} | {d for s, ctl in pairs.values() for d in [s, *ctl]})
    models = [d for _, ds in cells for d in ds]
    first = models[0]
    paired = all(torch.equal(d["labels"], first["labels"]) and torch.equal(d.get("positions", torch.zeros(0)),
                                                                           first.get("positions", torch.zeros(0)))
                 for d in models)
    rng = np.random.default_rng(seed)
    shared = bootstrap_weights(rng, first["labels"].numpy(), classes, n_boot) if paired else {}
    point, boot = {}, {}
    for name, ds in cells:
        pts, reps = [], []
        for d in ds:
            pts.append(point_summary(d["features"], d["labels"], pairs))
            weights = shared or bootstrap_weights(rng, d["labels"].numpy(), classes, n_boot)
            s = width_summary(class_samples(d["features"], d["labels"], classes), weights, pairs)
            reps.append(np.stack([s["L_sim"], s["L_ctl"]]))  # (2, B)
        pick = rng.integers(0, len(ds), size=(n_boot, len(ds)))  # seeds resampled with replacement
        reps_arr = np.stack(reps)  # (models, 2, B)
        boot[name] = np.take_along_axis(reps_arr.transpose(2, 0, 1), pick[:, :, None], axis=1).mean(1).T  # (2, B)
        point[name] = {"models": len(ds), "L_sim": float(np.mean([p["L_sim"] for p in pts])),
                       "L_ctl": float(np.mean([p["L_ctl"] for p in pts])), "per_model": pts}
    base = cells[0][0]
    z = float(NormalDist().inv_cdf((1 + confidence) / 2))
    results = {}
    for name, _ in cells:
        p, bp, bb = point[name], boot[name], boot[base]
        values = {"L_sim": (p["L_sim"], bp[0]), "L_ctl": (p["L_ctl"], bp[1]),
                  "K": (p["L_sim"] - p["L_ctl"], bp[0] - bp[1]),
                  "dL_sim": (p["L_sim"] - point[base]["L_sim"], bp[0] - bb[0]),
                  "dL_ctl": (p["L_ctl"] - point[base]["L_ctl"], bp[1] - bb[1])}
        values["systematic"] = (values["dL_sim"][0] - values["dL_ctl"][0], values["dL_sim"][1] - values["dL_ctl"][1])
        results[name] = {"models": p["models"], "per_model": p["per_model"]}
        for key, (value, reps) in values.items():
            finite = reps[np.isfinite(reps)]
            se = float(finite.std(ddof=1)) if len(finite) > 1 else math.nan
            results[name][key] = {"value": value, "se": se, "ci": [value - z * se, value + z * se],
                                  "invalid_replicates": int(len(reps) - len(finite))}
    return results, paired


def similarity(logits: torch.Tensor, labels: torch.Tensor, classes: Sequence[int], n_controls: int = 3) -> Pairs:
    """Per class c: (the most similar class, the n_controls least similar), by the mean softmax mass a model
    puts on each other class (among `classes`) for the samples of c."""
    probs = torch.softmax(logits.double(), dim=-1)
    out = {}
    for c in classes:
        others = [d for d in classes if d != c]
        mass = probs[labels == c][:, others].mean(0)
        order = [others[i] for i in mass.argsort(descending=True).tolist()]
        out[c] = (order[0], order[::-1][: max(1, min(n_controls, len(order) - 1))])
    return out


def parse_pairs(text: str, classes: Sequence[int]) -> Pairs:
    """'A:B,C:D' -> each listed class with its partner as similar class and every other class of `classes`
    (that is not its partner) as control."""
    partner: Dict[int, int] = {}
    for item in text.split(","):
        try:
            a, b = (int(v) for v in item.split(":"))
        except ValueError:
            raise LskdError(f"--similar-pairs {text!r}: expected A:B[,C:D...] with class numbers")
        for x, y in ((a, b), (b, a)):
            if x == y or partner.get(x, y) != y:
                raise LskdError(f"--similar-pairs: class {x} is given two similar classes or itself")
            partner[x] = y
    missing = sorted(c for c in partner if c not in classes)
    if missing:
        raise LskdError(f"--similar-pairs: class(es) {missing} not among the analysed classes (present with >= {MIN_PER_CLASS} "
                        "samples in every file)")
    return {c: (s, [d for d in classes if d not in (c, s)]) for c, s in sorted(partner.items())}


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
    p = argparse.ArgumentParser(prog="lskd diffusion", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--features", nargs="+", required=True, metavar="NAME=FILE[,FILE...]",
                   help="one cell per argument (several files = several seeds); the first cell is the baseline")
    p.add_argument("--classes", nargs=3, type=int, required=True, metavar="C",
                   help="the three classes of the projection (the paper: two similar, one dissimilar)")
    p.add_argument("--index-classes", nargs="+", type=int, default=None, metavar="C",
                   help=f"classes the index averages over (default: every class with >= {MIN_PER_CLASS} samples in all files)")
    ref = p.add_mutually_exclusive_group()
    ref.add_argument("--similar-from", default=None, metavar="NAME|FILE",
                     help="the ONE model whose softmax defines similar and control classes for the whole comparison: "
                          "a features file, or the NAME of a one-file cell (default: the first file; use the same "
                          "reference in every table you compare)")
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


def _reference(a: argparse.Namespace, cells, index_classes: List[int], n_classes: int) -> Tuple[Pairs, dict]:
    """The similar and control classes of every table, from the user's pairs or ONE reference model's softmax."""
    if a.similar_pairs:
        return parse_pairs(a.similar_pairs, index_classes), {"kind": "pairs", "pairs": a.similar_pairs}
    names = [n for n, _, _ in cells]
    ref_spec = a.similar_from
    if ref_spec is None:  # the first file of the first cell
        ref_data, ref_file = cells[0][1][0], cells[0][2][0]
    elif ref_spec in names:
        cell = next(c for c in cells if c[0] == ref_spec)
        if len(cell[1]) != 1:
            raise LskdError(f"--similar-from {ref_spec}: that cell has {len(cell[1])} files; name one file")
        ref_data, ref_file = cell[1][0], cell[2][0]
    elif Path(ref_spec).is_file():
        ref_data, ref_file = load_features("(--similar-from)", ref_spec), ref_spec
    else:
        raise LskdError(f"--similar-from {ref_spec}: neither a --features name {names} nor a file")
    missing = [c for c in index_classes if not bool((ref_data["labels"] == c).any())]
    if missing or ref_data["logits"].size(1) != n_classes:
        raise LskdError(f"--similar-from {ref_file}: no samples of class(es) {missing} or not {n_classes} classes")
    pairs = similarity(ref_data["logits"], ref_data["labels"], index_classes, a.controls)
    return pairs, {"kind": "model", "file": str(ref_file), "sha256": sha256_file(Path(ref_file))}


def _plot(a: argparse.Namespace, cells, known, n_classes: int) -> None:
    """One projection panel per cell (its first file), oriented by the class directions."""
    panels = []
    for name, ds, _ in cells:
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


def _markdown(a: argparse.Namespace, results: dict, paired: bool, pairs: Pairs, reference: dict, baseline: str,
              known, n_classes: int) -> str:
    def label(c):
        return f"{c} ({known[c]})" if isinstance(known, (list, tuple)) and len(known) == n_classes else str(c)

    ref_text = (f"user pairs {a.similar_pairs}" if reference["kind"] == "pairs"
                else f"the softmax of {reference['file']} (sha256 {reference['sha256'][:12]})")
    pct = f"{100 * a.confidence:g}%"
    rows = [f"| {n} | {r['models']} | {math.exp(r['L_sim']['value']):.3f} | {math.exp(r['L_ctl']['value']):.3f} | "
            f"{fmt(r['K'])} | {fmt(r['dL_sim'])} | {fmt(r['dL_ctl'])} | **{fmt(r['systematic'])}** |"
            for n, r in results.items()]
    return "\n".join([
        f"Diffusion index (lskd's definition, `lskd diffusion --help`): {len(pairs)} classes; similar and control "
        f"classes from {ref_text}; baseline: {baseline}. Values with {pct} normal bootstrap intervals (+- z * bootstrap s.e.; {a.bootstrap} "
        f"replicates, {'paired: same samples in every file' if paired else 'unpaired'}; seeds resampled in cells of several).",
        "",
        "| features | models | w_sim | w_ctl | K = L_sim - L_ctl | dL_sim | dL_ctl | systematic |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "w_sim = exp(L_sim), w_ctl = exp(L_ctl): pooled width (std along the axis / centroid distance) towards the "
        "similar class and towards the controls. Similar class (controls): " + "; ".join(f"{label(c)} -> {label(s)} ({', '.join(map(str, ctl))})"
                                                           for c, (s, ctl) in pairs.items()) + ".",
    ])


def main(argv: List[str]) -> int:
    a = _parser().parse_args(argv)
    if a.bootstrap < 10 or not 0 < a.confidence < 1:
        raise LskdError(f"--bootstrap must be >= 10 and --confidence in (0, 1), got {a.bootstrap}, {a.confidence}")
    cells = [(name, [load_features(name, f) for f in files], files) for name, files in parse_cells(a.features)]
    if any(not files for _, _, files in cells):
        raise LskdError("--features: every cell needs at least one file")
    models = [d for _, ds, _ in cells for d in ds]
    n_classes = models[0]["logits"].size(1)
    index_classes, enough, present = _classes(a, models, n_classes)
    pairs, reference = _reference(a, cells, index_classes, n_classes)
    try:
        results, paired = index_table([(n, ds) for n, ds, _ in cells], pairs, a.bootstrap, a.confidence, a.seed)
    except ValueError as e:
        raise LskdError(f"--features: {e}")
    known = models[0].get("classes")
    _plot(a, cells, known, n_classes)
    baseline = cells[0][0]
    table = _markdown(a, results, paired, pairs, reference, baseline, known, n_classes)
    write_text(a.out.with_name(a.out.name + ".md"), table + "\n")
    write_json(a.out.with_name(a.out.name + ".json"), {
        "results": results, "baseline": baseline, "reference": reference,
        "pairs": {str(c): {"similar": s, "controls": ctl} for c, (s, ctl) in pairs.items()},
        "files": {n: files for n, _, files in cells}, "classes": a.classes, "index_classes": index_classes,
        "too_few_samples": [c for c in present if c not in enough],
        "min_per_class": MIN_PER_CLASS, "bootstrap": a.bootstrap, "confidence": a.confidence, "seed": a.seed,
        "paired": paired, "command": command_line()})
    print(table)
    return 0
