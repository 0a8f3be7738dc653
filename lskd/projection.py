"""The paper's template projection of penultimate features (its Algorithm 1, after Mueller et al.) and its panels.

Append a constant 1 to each feature, take the final-layer rows [w_k, b_k] of three classes as templates,
project onto an orthonormal basis of their span (QR), then PCA to 2-D. One scatter panel per model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch

from lskd.fileio import atomic_path

Tensor = torch.Tensor


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
    """Two-component PCA of the points it is fitted on; `pca(y)` applies the same map to other points.

    `lskd diffusion` fits each panel on the points it shows (that model's features of the given split), unlike
    the authors, who fit on training features and plot validation ones. A principal axis is only defined up
    to its sign, so the sign is fixed: each component points along whichever of the `anchors` (e.g. vectors
    between class centroids) it is most aligned with, or, without anchors, has its largest loading positive.
    Panels of the same model therefore never come out mirrored.
    """

    def __init__(self, x: Tensor, anchors: Sequence[Tensor] = ()):
        self.mean = x.mean(0)
        _, _, vh = torch.linalg.svd(x - self.mean, full_matrices=False)
        components = vh[:2].clone()
        for k in range(components.size(0)):
            dots = [float(components[k] @ v) / max(float(v.norm()), 1e-300) for v in anchors]
            dot = max(dots, key=abs) if dots else 0.0
            if abs(dot) < 1e-9:
                dot = float(components[k][components[k].abs().argmax()])
            if dot < 0:
                components[k] = -components[k]
        self.components = components

    def __call__(self, x: Tensor) -> Tensor:
        return (x - self.mean) @ self.components.T


def class_axes_pca(points: Tensor, labels: Tensor, classes: Sequence[int]) -> PCA2:
    """PCA2 of the projected points of three classes (a, b, c), each axis oriented by the class direction it
    follows most: from the midpoint of a and b towards c (the paper's dissimilar class), or from a to b."""
    a, b, c = (points[labels == k].mean(0) for k in classes)
    return PCA2(points, anchors=[c - (a + b) / 2, b - a])


def plot_panels(panels: List[Tuple[str, Tensor, Tensor]], classes: Sequence[int], class_names: Dict[int, str], path: Path) -> None:
    """One scatter panel per (title, 2-D points, labels), centroids marked, with axis ticks (scales differ by model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.8), squeeze=False)
    for ax, (title, xy, labels) in zip(axes[0], panels):
        for i, c in enumerate(classes):
            pts = xy[labels == c]
            color = colors[i % len(colors)]
            ax.scatter(pts[:, 0], pts[:, 1], s=4, alpha=0.4, color=color, label=class_names[c])
            centre = pts.mean(0)  # the class centroid, marked
            ax.scatter([centre[0]], [centre[1]], marker="X", s=80, color=color, edgecolors="black")
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelsize=7)
        ax.set_xlabel("PC1", fontsize=8)
        ax.set_ylabel("PC2", fontsize=8)
    axes[0][0].legend(fontsize=8, markerscale=3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
