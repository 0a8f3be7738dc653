"""Compare two check.sh outputs: every hashed file equal, JSON/runs CSVs equal after the output folder's path is
replaced (report JSONs and _runs.csv name the run folders)."""
import sys
from pathlib import Path
a, b = Path(sys.argv[1]), Path(sys.argv[2])
def table(d):
    return dict(line.split(None, 1)[::-1] for line in (d / "sha256.txt").read_text().splitlines())
ta, tb = table(a), table(b)
names = sorted(set(ta) | set(tb))
same, differ = [], []
for n in names:
    n = n.strip()
for n in sorted(set(k.strip() for k in ta) | set(k.strip() for k in tb)):
    ha = {k.strip(): v for k, v in ta.items()}.get(n); hb = {k.strip(): v for k, v in tb.items()}.get(n)
    if ha == hb:
        same.append(n); continue
    if n.endswith(".json") or n.endswith("_runs.csv"):
        xa = (a / n).read_text().replace(str(a), "OUT"); xb = (b / n).read_text().replace(str(b), "OUT")
        xa = xa.replace("/tmp/r26/base", "TREE"); xb = xb.replace("/tmp/r26/tip", "TREE")
        if xa == xb:
            same.append(n + " (paths replaced)"); continue
    differ.append(n)
print(f"{len(same)} equal, {len(differ)} differ")
for n in differ: print("DIFFER", n)
for n in same: print("equal", n)
