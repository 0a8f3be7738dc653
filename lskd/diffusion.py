"""Penultimate-layer analysis: the paper's template projection (its Algorithm 1) and a diffusion index.

    lskd diffusion --features T1=s_T1.pt T3=s_T3_seed0.pt,s_T3_seed1.pt --similar-from ref.pt --classes 2 4 9 --out PREFIX

Several --similar-from models give one table each and say whether any verdict changes with the reference
(use a reference outside the compared families, or both teachers: the alpha = 0 teacher's own students copy
its softmax, so its similar classes are biased towards the claims made about them). `--compare` reads two
finished tables and states LS vs non-LS as a difference with its interval (lskd/diffusion_compare.py).

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
  Similar class s(c) and dissimilar controls: from the same reference for every table of a comparison
  (--similar-from: the class a fixed model's softmax gives most mass on c's samples, and the --controls
  classes given the least; one table per reference when several are given; or --similar-pairs A:B,...: then
  every other analysed class is a control). Recorded in the output.
  Pooled over the pairs (c, s(c)) of all classes c: L_sim = log w_sim, w_sim = sqrt(mean of delta' Sigma_c delta)
  / mean of |delta|^2 (the two estimated terms are averaged before the ratio and log, which keeps small
  classes from biasing it); L_ctl the same over the pairs (c, d) of every class and its controls.
  contrast K = L_sim - L_ctl.  Against the baseline cell (the first):
  dL_sim = L_sim - L_sim(base), dL_ctl = L_ctl - L_ctl(base), and
  SYSTEMATIC DIFFUSION = dL_sim - dL_ctl = K - K(base): > 0 when classes grew wider towards their similar
  class (relative to that separation) than towards dissimilar ones. 0.69 = twice as wide, relatively.
Properties: scale-free (w is a ratio of lengths); tightening or loosening every class alike shifts L_sim
and L_ctl by the same log factor, so K does not move; a spread in a direction no class difference uses
changes no w. Unbiased in the number n_c of samples per class when the samples are independent (images):
|delta|^2 and delta' Sigma_c delta are estimated without bias (sample covariances S with ddof=1,
v = difference of sample means):
  |delta|^2          = |v|^2 - tr(S_c)/n_c - tr(S_d)/n_d
  delta' Sigma_c delta = v' S_c v - tr(Sigma_c^2)^/n_c - tr(S_c S_d)/n_d,
  tr(Sigma^2)^ = (n-1)^2/((n-2)(n+1)) (tr(S^2) - tr(S)^2/(n-1))   (unbiased for Gaussian features)
(the plug-in |v|^2 alone overstates the distance by tr(Sigma)/n, which in 100+ dimensions dwarfs the signal
at a few dozen samples). NMT tokens are not independent: `lskd nmt-features` keeps the first occurrences of
each word piece in corpus order, and the tokens of one sentence (of one class or of several) are correlated,
so the 1/n corrections there assume more independent information than the tokens carry; the estimate is
then approximately, not exactly, unbiased, and the sampling interval resamples whole sentences (below).
Classes with fewer than MIN_PER_CLASS = 10 samples in any file are left out (and listed in the JSON:
too_few_samples); a class named on the command line with fewer is an error. Pooled estimates that are not
positive (classes not separable at that n) are an error; a single pair's log width in the JSON is then null.
Two intervals, for two questions:
- sampling: how much would this model's value move with other test samples? Normal bootstrap, value +- z *
  (standard deviation of B replicates) (--bootstrap B, --confidence; percentile intervals are biased when a
  class has fewer samples than dimensions). Images: each class's samples resampled within it; NMT features
  (files with `positions`): whole sentences resampled, each token weighted by its sentence's draw count (a
  cluster bootstrap: tokens of one sentence move together). The same draws in every file when all files hold
  the same samples in the same order (paired). A cell of several models takes the mean of their replicates.
- seeds: would another training seed give the same? Student's t over the models of a cell (K, L_sim, L_ctl)
  and Welch's t against the baseline's models (dL_sim, dL_ctl, systematic); none with one model per cell.
  The verdict on each cell's systematic diffusion is the seed interval's, Holm-corrected over the table's
  cells (lskd/verdicts.py): "positive", "negative", "not shown", or "one seed cannot tell".
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from lskd.errors import LskdError
from lskd.verdicts import Interval, Summary, contrast, difference

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
    """Per replicate (rows of w, sample counts summing to m_b): the resampled class's mean shift e, tr(S),
    tr(S^2) and size m_b (m_b = n except under the cluster bootstrap, where a class's size varies).

    With A = Y' diag(w) Y the resampled covariance is S = (A - m e e')/(m-1), e = w Y / m; tr(A^2) is
    w' ((Y Y')**2) w, so nothing D x D is formed per replicate.
    """
    m = w.sum(1)
    gram = cs.y @ cs.y.T
    e = w @ cs.y / m[:, None]
    ye = gram @ w.T / m  # (n, B): y_i . e_b
    ee = (e ** 2).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tr_s = (w @ cs.sq - m * ee) / (m - 1)
        tr_a2 = ((w @ (gram ** 2)) * w).sum(1)
        tr_s2 = (tr_a2 - 2 * m * (w.T * ye ** 2).sum(0) + m ** 2 * ee ** 2) / (m - 1) ** 2
        tr_sigma2 = (m - 1) ** 2 / ((m - 2) * (m + 1)) * (tr_s2 - tr_s ** 2 / (m - 1))
    return {"e": e, "tr_s": tr_s, "tr_sigma2": np.where(m > 2, tr_sigma2, np.nan), "m": m}


def pair_terms(c: ClassSamples, d: ClassSamples, wc: np.ndarray, wd: np.ndarray, mc: dict, md: dict) -> Tuple[np.ndarray, np.ndarray]:
    """Unbiased estimates of delta' Sigma_c delta and |delta|^2 per replicate (see the module docstring)."""
    cross = c.y @ d.y.T
    nc, nd = mc["m"], md["m"]
    v = (d.mean - c.mean) + md["e"] - mc["e"]  # (B, D): difference of the resampled means
    yv = c.y @ v.T  # (n_c, B)
    ev = (mc["e"] * v).sum(1)
    # tr(S_c S_d) of the resampled classes: tr(A_c A_d) - n_d e_d'A_c e_d - n_c e_c'A_d e_c + n_c n_d (e_c.e_d)^2
    y_c_ed = cross @ wd.T / nd  # (n_c, B): y_ci . e_d
    y_d_ec = cross.T @ wc.T / nc
    tr_ab = ((wc @ (cross ** 2)) * wd).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        dist2 = (v ** 2).sum(1) - mc["tr_s"] / nc - md["tr_s"] / nd
        vsv = ((wc.T * yv ** 2).sum(0) - nc * ev ** 2) / (nc - 1)
        tr_scsd = (tr_ab - nd * (wc.T * y_c_ed ** 2).sum(0) - nc * (wd.T * y_d_ec ** 2).sum(0)
                   + nc * nd * (mc["e"] * md["e"]).sum(1) ** 2) / ((nc - 1) * (nd - 1))
    return vsv - mc["tr_sigma2"] / nc - tr_scsd / nd, dist2


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


def bootstrap_weights(rng: np.random.Generator, labels: np.ndarray, classes: Sequence[int], b: int,
                      clusters: Optional[np.ndarray] = None) -> Dict[int, np.ndarray]:
    """Per class, B rows of resampling counts. Independent samples (images): each class resampled within itself
    (multinomial, summing to the class size). Clustered samples (NMT tokens, `clusters` = their sentence ids):
    whole sentences resampled, every token weighted by its sentence's count (class sizes then vary)."""
    if clusters is None:
        out = {}
        for c in classes:
            n = int((labels == c).sum())
            out[c] = rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64)
        return out
    ids, index = np.unique(clusters, return_inverse=True)
    counts = rng.multinomial(len(ids), np.full(len(ids), 1.0 / len(ids)), size=b).astype(np.float64)  # (B, sentences)
    token = counts[:, index]
    return {c: token[:, labels == c] for c in classes}


def sentence_ids(d: dict) -> Optional[np.ndarray]:
    """The sentence id of every row of an NMT features file (`positions` column 0); None for images."""
    pos = d.get("positions")
    return None if pos is None or pos.numel() == 0 else pos[:, 0].numpy()



def seed_intervals(per_model: Dict[str, List[dict]], base: str, confidence: float) -> Dict[str, Dict[str, Optional[Interval]]]:
    """Per cell, Welch/t intervals over its models (seeds) of every value of the index: L_sim, L_ctl, K of the
    cell (one-sample t), dL_sim, dL_ctl and systematic against the baseline cell (Welch); None with one model."""
    def cell(name, key):
        return Summary.of([m[key] for m in per_model[name]])

    out = {}
    for name in per_model:
        own = {k: contrast([(1.0, cell(name, k))], confidence) for k in ("L_sim", "L_ctl", "K")}
        if name != base:
            own.update({"dL_sim": difference(cell(name, "L_sim"), cell(base, "L_sim"), confidence),
                        "dL_ctl": difference(cell(name, "L_ctl"), cell(base, "L_ctl"), confidence),
                        "systematic": difference(cell(name, "K"), cell(base, "K"), confidence)})
        out[name] = own
    return out


def index_table(cells: List[Tuple[str, List[dict]]], pairs: Pairs, n_boot: int, confidence: float, seed: int) -> Tuple[dict, bool]:
    """Point values, sampling intervals (bootstrap over samples) and seed intervals (t over models) of L_sim,
    L_ctl, K, dL_sim, dL_ctl and systematic for every cell (a cell's value = the mean over its models).
    Returns (results by cell name, paired?).

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
    draw = lambda d: bootstrap_weights(rng, d["labels"].numpy(), classes, n_boot, sentence_ids(d))  # noqa: E731
    shared = draw(first) if paired else {}
    point, boot = {}, {}
    for name, ds in cells:
        pts, reps = [], []
        for d in ds:
            pts.append(point_summary(d["features"], d["labels"], pairs))
            s = width_summary(class_samples(d["features"], d["labels"], classes), shared or draw(d), pairs)
            reps.append(np.stack([s["L_sim"], s["L_ctl"]]))  # (2, B)
        boot[name] = np.mean(reps, axis=0)  # the cell's mean over its models, per replicate: sampling noise only
        point[name] = {"models": len(ds), "L_sim": float(np.mean([p["L_sim"] for p in pts])),
                       "L_ctl": float(np.mean([p["L_ctl"] for p in pts])), "per_model": pts}
    base = cells[0][0]
    z = float(NormalDist().inv_cdf((1 + confidence) / 2))
    seeds = seed_intervals({name: point[name]["per_model"] for name, _ in cells}, base, confidence)
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
            iv = seeds[name].get(key)
            results[name][key] = {"value": value, "se": se, "ci": [value - z * se, value + z * se],
                                  "invalid_replicates": int(len(reps) - len(finite)),
                                  "seeds": None if iv is None else iv._asdict()}
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
