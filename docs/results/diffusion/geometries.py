"""The diffusion index on the known geometries of tests/test_diffusion.py, as a markdown table (docs/DIFFUSION.md).

    PYTHONPATH=.:tests python docs/results/diffusion/geometries.py
"""
from test_diffusion import PAIRS, geometry, index_table

base = geometry(150, 0)
cases = {"(a) every class stretched x3 towards its similar class": geometry(150, 1, stretch="similar"),
         "(b) the same stretch along a direction no centroid uses": geometry(150, 1, stretch="neutral"),
         "(c) all features x5 + 3 (same samples)": {"features": 5 * base["features"] + 3, "labels": base["labels"]},
         "(d) every class tightened x0.5": geometry(150, 1, tight=0.5),
         "(d) every class loosened x2": geometry(150, 1, tight=2.0),
         "(e) the baseline distribution, 12 samples per class": geometry(12, 2),
         "(f) centroids pulled 25 % towards the similar class": geometry(150, 1, pull=0.25),
         "the baseline distribution, a new draw": geometry(150, 1)}


def fmt(v):
    return f"{v['value']:+.3f} [{v['ci'][0]:+.2f}, {v['ci'][1]:+.2f}]"


print("| geometry (vs the baseline) | dL_sim | dL_ctl | systematic [95 % CI] |\n|---|---|---|---|")
for name, model in cases.items():
    r = index_table([("base", [base]), ("m", [model])], PAIRS, 100, 0.95, 0)[0]["m"]
    print(f"| {name} | {fmt(r['dL_sim'])} | {fmt(r['dL_ctl'])} | {fmt(r['systematic'])} |")
