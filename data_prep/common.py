"""Shared plumbing: user errors + CLI wrapper, atomic writes, manifests, skip-when-done steps."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from lskd.errors import LskdError
from lskd.fileio import command_line, sha256_file, write_json


class DataPrepError(LskdError):
    """A user error of data preparation (bad file, option, language...): an LskdError, so one line on stderr, exit 2."""


def default_cache_dir() -> Path:
    """Downloads and unpacked archives: $LSKD_CACHE, else ~/.cache/lskd."""
    return Path(os.environ.get("LSKD_CACHE") or Path.home() / ".cache" / "lskd")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------- CLI
def run_cli(parser: argparse.ArgumentParser, run: Callable[[argparse.Namespace], object],
            argv: Optional[Sequence[str]] = None) -> int:
    """Parse argv and call run(args) through lskd's run_entry: a user error becomes `<prog>: error: <msg>`, exit 2."""
    from lskd.cli import run_entry

    args = parser.parse_args(None if argv is None else list(argv))
    try:
        return run_entry(parser.prog, lambda _: run(args) and 0, [])
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130


# ------------------------------------------------------------------------- manifests and steps
def count_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        for _ in f:
            n += 1
    return n


def _files_of(path: Path) -> List[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("manifest"))
    return [path]


def fingerprint(paths: Sequence[Path]) -> List[Dict[str, object]]:
    """What a step read: path, size and sha256 of each file (directories: every file inside)."""
    out = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise DataPrepError(f"{p}: input file not found")
        for f in _files_of(p):
            out.append({"path": str(f), "bytes": f.stat().st_size, "sha256": sha256_file(f)})
    return out


def describe_outputs(paths: Sequence[Path], text_suffixes=None) -> List[Dict[str, object]]:
    """What a step wrote: path and size of each file, line count of the text files."""
    out = []
    for p in paths:
        for f in _files_of(Path(p)):
            d: Dict[str, object] = {"path": str(f), "bytes": f.stat().st_size}
            if f.suffix not in (".bin", ".idx", ".model", ".pt", ".db"):
                d["lines"] = count_lines(f)
            out.append(d)
    return out


def _normalise(obj):
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def step_is_done(manifest: Path, inputs_fp, options, outputs: Sequence[Path]) -> bool:
    try:
        m = json.loads(Path(manifest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if m.get("options") != _normalise(options):
        return False
    if [i["sha256"] for i in m.get("inputs", [])] != [i["sha256"] for i in inputs_fp]:
        return False
    for p in outputs:
        if not Path(p).exists():
            return False
    recorded = m.get("outputs", [])
    if not recorded:
        return False
    for o in recorded:
        f = Path(o["path"])
        if not f.is_file() or f.stat().st_size != o["bytes"]:
            return False
    return True


def run_step(name: str, *, manifest: Path, inputs: Sequence[Path], options: dict,
             outputs: Sequence[Path], action: Callable[[], Optional[dict]]) -> dict:
    """Run `action` unless `manifest` says the same inputs and options already made `outputs`.

    `action` writes `outputs` (atomically, each) and may return a dict of statistics, stored in the
    manifest under "stats". The manifest is written last, so it marks a complete step. Returns the
    manifest (the earlier one when the step is skipped).
    """
    manifest = Path(manifest)
    fp = fingerprint(inputs)
    if step_is_done(manifest, fp, options, outputs):
        log(f"skip: {name} (done; {manifest})")
        return json.loads(manifest.read_text(encoding="utf-8"))
    if manifest.exists():
        manifest.unlink()
    log(f"run: {name}")
    t0 = time.time()
    stats = action() or {}
    m = {
        "step": name,
        "created_by": command_line(),
        "cwd": os.getcwd(),
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.time() - t0, 2),
        "inputs": fp,
        "options": _normalise(options),
        "outputs": describe_outputs(outputs),
        "stats": _normalise(stats),
    }
    write_json(manifest, m)
    log(f"done: {name} ({m['seconds']} s)")
    return m
