"""The diffusion index on the known geometries of tests/core/test_diffusion.py, as markdown tables (docs/DIFFUSION.md).

    PYTHONPATH=.:tests:tests/core python docs/results/diffusion/geometries.py          # index vs the baseline, with intervals
    PYTHONPATH=.:tests:tests/core python docs/results/diffusion/geometries.py --bias   # bias of K against its true value by n
"""
import sys

import numpy as np

from lskd.diffusion import point_summary
from test_diffusion import CENTRES, PAIRS, geometry, index_table


def fmt(v):
    return f"{v['value']:+.3f} [{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}]"


def intervals():
    base = geometry(150, 0)
    cases = {"(a) every class stretched x3 towards its similar class": geometry(150, 1, stretch="similar"),
             "(b) the same stretch along a direction no centroid uses": geometry(150, 1, stretch="neutral"),
             "(c) all features x5 + 3 (same samples)": {"features": 5 * base["features"] + 3, "labels": base["labels"]},
             "(d) every class tightened x0.5": geometry(150, 1, tight=0.5),
             "(d) every class loosened x2": geometry(150, 1, tight=2.0),
             "(e) the baseline distribution, 12 samples per class": geometry(12, 2),
             "(f) centroids pulled 25 % towards the similar class": geometry(150, 1, pull=0.25),
             "the baseline distribution, a new draw": geometry(150, 1)}
    print("| geometry (vs the baseline) | dL_sim | dL_ctl | systematic [95 % CI] |\n|---|---|---|---|")
    for name, model in cases.items():
        r = index_table([("base", [base]), ("m", [model])], PAIRS, 100, 0.95, 0)[0]["m"]
        print(f"| {name} | {fmt(r['dL_sim'])} | {fmt(r['dL_ctl'])} | {fmt(r['systematic'])} |")


def bias(draws=60):
    # isotropic unit variance: delta' Sigma_c delta = |delta|^2, so the pooled log width is -0.5 log mean |delta|^2
    def true_l(pairs):
        return -0.5 * np.log(np.mean([np.sum((CENTRES[d] - CENTRES[c]) ** 2) for c, d in pairs]))
    k_true = (true_l([(c, s) for c, (s, _) in PAIRS.items()])
              - true_l([(c, d) for c, (_, ctl) in PAIRS.items() for d in ctl]))
    print(f"| samples per class | mean K - true K ({draws} draws) | standard error | sd of K |\n|---|---|---|---|")
    for n in (10, 15, 30, 100):
        k = np.array([point_summary(**geometry(n, 2000 + s), pairs=PAIRS)["K"] for s in range(draws)])
        print(f"| {n} | {k.mean() - k_true:+.3f} | {k.std(ddof=1) / np.sqrt(draws):.3f} | {k.std(ddof=1):.3f} |")


if __name__ == "__main__":
    bias() if "--bias" in sys.argv[1:] else intervals()
