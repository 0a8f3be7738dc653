"""Compare two check.sh outputs: every hashed file equal, the report JSONs and per-run CSVs after the output
folder's and worktree's paths are replaced (they name the run folders and the command).

    python docs/results/refactor26/compare.py BASE_OUT TIP_OUT
"""
import sys
from pathlib import Path


def hashes(folder: Path) -> dict:
    rows = (line.split(None, 1) for line in (folder / "sha256.txt").read_text().splitlines())
    return {name.strip(): digest for digest, name in rows}


def same_but_paths(a: Path, b: Path, name: str) -> bool:
    texts = [(d / name).read_text().replace(str(d), "OUT").replace(str(d).replace("-out", ""), "TREE") for d in (a, b)]
    return texts[0] == texts[1]


def main(a: Path, b: Path) -> int:
    ha, hb = hashes(a), hashes(b)
    same, differ = [], []
    for name in sorted(set(ha) | set(hb)):
        if ha.get(name) == hb.get(name):
            same.append(name)
        elif name.endswith((".json", "_runs.csv")) and name in ha and name in hb and same_but_paths(a, b, name):
            same.append(name + " (paths replaced)")
        else:
            differ.append(name)
    print(f"{len(same)} equal, {len(differ)} differ")
    for name in differ:
        print("DIFFER", name)
    for name in same:
        print("equal", name)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
