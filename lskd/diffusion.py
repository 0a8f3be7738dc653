"""Penultimate-layer analysis: the paper's template projection (its Algorithm 1) and a diffusion index.

    lskd diffusion --features t1=s_a0.1_T1.pt t3=s_a0.1_T3.pt --classes 3 5 9 --out results/diffusion

Input files hold penultimate features with labels, the model's logits and its final layer, as written by
`lskd vision features` (images) or `lskd nmt-features` (NMT: decoder states per gold target token).

Projection (PAPER.md, after Mueller et al.): append a constant 1 to each feature, take the final-layer rows
[w_k, b_k] of three classes as templates, project onto an orthonormal basis of their span (QR), then PCA
to 2-D. One scatter panel per file.

Diffusion index -- this project's own definition, NOT the paper's (the paper gives no formula):
  spread s_c        root-mean-square distance of class c's features to their centroid mu_c
  separation(c, d)  |mu_c - mu_d| / sqrt((s_c^2 + s_d^2) / 2), a Fisher-style ratio (scale-free)
  similar class     sim(c) = the class that the REFERENCE model's softmax gives the most mass on class c's
                    samples (besides c); dissimilar controls = the classes given the least mass
  sep_sim, sep_dis  mean over the analysed classes of separation(c, sim(c)) and of separation(c, d) over
                    the controls; focus = sep_sim / sep_dis (< 1: similar classes sit relatively closer)
  diffusion of file F against the baseline file B (the first one):
                    loss_sim = 1 - sep_sim(F) / sep_sim(B), loss_dis = 1 - sep_dis(F) / sep_dis(B),
                    systematic diffusion = loss_sim - loss_dis: > 0 when F lost more separation towards
                    similar classes than towards dissimilar ones, which is what the paper describes for an
                    LS teacher's students as T grows.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch

from lskd.errors import LskdError
from lskd.fileio import atomic_path, command_line, write_json, write_text

Tensor = torch.Tensor
REQUIRED = ("features", "labels", "logits", "fc_weight", "fc_bias")


def template_basis(weight: Tensor, bias: Tensor, classes: Sequence[int]) -> Tensor:
    """Orthonormal basis (D+1, 3) of the span of the templates [w_k, b_k] of `classes` (QR of their transpose)."""
    templates = torch.cat([weight[list(classes)], bias[list(classes)].unsqueeze(1)], dim=1).double()
    q, r = torch.linalg.qr(templates.T)
    if r.diagonal().abs().min() < 1e-9 * r.diagonal().abs().max():
        raise ValueError(f"the final-layer templates of classes {list(classes)} are linearly dependent")
    return q


def project(features: Tensor, basis: Tensor) -> Tensor:
    """Features with a constant 1 appended, projected onto the template basis: (N, 3)."""
    ones = torch.ones(features.size(0), 1, dtype=torch.float64)
    return torch.cat([features.double(), ones], dim=1) @ basis


class PCA2:
    """Two-component PCA (fit on one set of points, applied to others as the paper does for validation)."""

    def __init__(self, x: Tensor):
        self.mean = x.mean(0)
        _, _, vh = torch.linalg.svd(x - self.mean, full_matrices=False)
        self.components = vh[:2]

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) @ self.components.T


def class_stats(features: Tensor, labels: Tensor, classes: Sequence[int]) -> Tuple[Dict[int, Tensor], Dict[int, float]]:
    """Centroid and RMS spread (distance to the centroid) of each class's features."""
    centroids, spreads = {}, {}
    for c in classes:
        x = features[labels == c].double()
        if len(x) < 2:
            raise ValueError(f"class {c} has {len(x)} sample(s); the analysis needs at least 2 per class")
        centroids[c] = x.mean(0)
        spreads[c] = float(((x - centroids[c]) ** 2).sum(1).mean().sqrt())
    return centroids, spreads


def separation(centroids: Dict[int, Tensor], spreads: Dict[int, float], a: int, b: int) -> float:
    """Centroid distance over the pooled RMS spread: how many 'class widths' apart a and b are."""
    pooled = math.sqrt((spreads[a] ** 2 + spreads[b] ** 2) / 2)
    return float((centroids[a] - centroids[b]).norm()) / max(pooled, 1e-12)


def similarity(logits: Tensor, labels: Tensor, classes: Sequence[int], n_controls: int = 3) -> Dict[int, Tuple[int, List[int]]]:
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


def separation_summary(features: Tensor, labels: Tensor, similar: Dict[int, Tuple[int, List[int]]]) -> dict:
    """sep_sim, sep_dis, focus and the per-class numbers, for the classes in `similar`."""
    classes = sorted({c for c in similar} | {d for s, ctl in similar.values() for d in [s, *ctl]})
    centroids, spreads = class_stats(features, labels, classes)
    per_class = {}
    for c, (sim, controls) in similar.items():
        per_class[c] = {"similar": sim, "controls": controls, "spread": spreads[c],
                        "sep_sim": separation(centroids, spreads, c, sim),
                        "sep_dis": sum(separation(centroids, spreads, c, d) for d in controls) / len(controls)}
    sep_sim = sum(v["sep_sim"] for v in per_class.values()) / len(per_class)
    sep_dis = sum(v["sep_dis"] for v in per_class.values()) / len(per_class)
    return {"sep_sim": sep_sim, "sep_dis": sep_dis, "focus": sep_sim / sep_dis, "per_class": per_class}


def diffusion(summary: dict, baseline: dict) -> dict:
    """Loss of separation of `summary` against `baseline`, towards similar and dissimilar classes."""
    loss_sim = 1 - summary["sep_sim"] / baseline["sep_sim"]
    loss_dis = 1 - summary["sep_dis"] / baseline["sep_dis"]
    return {"loss_sim": loss_sim, "loss_dis": loss_dis, "systematic": loss_sim - loss_dis}


def load_features(spec: str) -> Tuple[str, dict]:
    """NAME=FILE -> (NAME, the file's dict), checked for the fields the analysis needs."""
    if "=" not in spec:
        raise LskdError(f"--features {spec!r}: expected NAME=FILE")
    name, path = spec.split("=", 1)
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
    return name, d


def plot_panels(panels: List[Tuple[str, Tensor, Tensor]], classes: Sequence[int], class_names: Dict[int, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, (title, xy, labels) in zip(axes[0], panels):
        for i, c in enumerate(classes):
            pts = xy[labels == c]
            color = colors[i % len(colors)]
            ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.4, color=color, label=class_names[c])
            centre = pts.mean(0)  # the class centroid, marked
            ax.scatter([centre[0]], [centre[1]], marker="X", s=80, color=color, edgecolors="black")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(fontsize=8, markerscale=3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(prog="lskd diffusion", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--features", nargs="+", required=True, metavar="NAME=FILE",
                   help="features files; the first is the baseline of the diffusion numbers")
    p.add_argument("--classes", nargs=3, type=int, required=True, metavar="C",
                   help="the three classes of the projection (the paper: two similar, one dissimilar)")
    p.add_argument("--index-classes", nargs="+", type=int, default=None, metavar="C",
                   help="classes the diffusion index averages over (default: every class present in all files)")
    p.add_argument("--similar-from", default=None, metavar="NAME",
                   help="whose logits define similar and control classes (default: the first file)")
    p.add_argument("--controls", type=int, default=3, help="dissimilar control classes per class (default 3)")
    p.add_argument("--class-names", nargs=3, default=None, metavar="NAME", help="legend names of --classes")
    p.add_argument("--out", required=True, type=Path, help="output prefix: PREFIX.png, PREFIX.md, PREFIX.json")
    a = p.parse_args(argv)

    files = [load_features(s) for s in a.features]
    names = [n for n, _ in files]
    if len(set(names)) != len(names):
        raise LskdError(f"--features: names must differ, got {names}")
    data = dict(files)
    ref = a.similar_from or names[0]
    if ref not in data:
        raise LskdError(f"--similar-from {ref}: not one of the --features names {names}")
    n_classes = data[ref]["logits"].size(1)
    present = sorted(set.intersection(*(set(d["labels"].unique().tolist()) for d in data.values())))
    index_classes = a.index_classes or present
    for c in [*a.classes, *index_classes]:
        if not (0 <= c < n_classes) or c not in present:
            raise LskdError(f"class {c}: not present in every features file (labels found in all: {len(present)} classes)")
    if len(index_classes) < 3:
        raise LskdError(f"--index-classes: need at least 3 classes, got {index_classes}")
    similar = similarity(data[ref]["logits"], data[ref]["labels"], index_classes, a.controls)

    panels, rows, results = [], [], {}
    baseline = None
    for name, d in files:
        try:
            basis = template_basis(d["fc_weight"], d["fc_bias"], a.classes)
            keep = torch.isin(d["labels"], torch.tensor(a.classes))
            proj = project(d["features"][keep], basis)
            panels.append((name, PCA2(proj)(proj), d["labels"][keep]))
            summary = separation_summary(d["features"], d["labels"], similar)
        except ValueError as e:
            raise LskdError(f"--features {name}: {e}")
        baseline = baseline or summary
        diff = diffusion(summary, baseline)
        results[name] = {**summary, **diff}
        rows.append(f"| {name} | {summary['sep_sim']:.3f} | {summary['sep_dis']:.3f} | {summary['focus']:.3f} | "
                    f"{diff['loss_sim']:+.3f} | {diff['loss_dis']:+.3f} | {diff['systematic']:+.3f} |")
    known = files[0][1].get("classes")
    if a.class_names:
        shown = a.class_names
    elif isinstance(known, (list, tuple)) and len(known) == n_classes:
        shown = [str(known[c]) for c in a.classes]
    else:
        shown = [str(c) for c in a.classes]
    class_names = dict(zip(a.classes, shown))
    plot_panels(panels, a.classes, class_names, a.out.with_name(a.out.name + ".png"))
    table = "\n".join([
        f"Diffusion index (lskd's own definition; see `lskd diffusion --help`), {len(index_classes)} classes, "
        f"similar/control classes from {ref}'s logits; baseline for the losses: {names[0]}.",
        "",
        "| features | sep_sim | sep_dis | focus | loss_sim | loss_dis | systematic |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ])
    write_text(a.out.with_name(a.out.name + ".md"), table + "\n")
    write_json(a.out.with_name(a.out.name + ".json"), {
        "results": results, "classes": a.classes, "index_classes": index_classes, "similar_from": ref,
        "baseline": names[0], "command": command_line()})
    print(table)
    return 0
