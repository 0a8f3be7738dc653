"""The fairseq-preprocess call (run as `python -m fairseq_cli.preprocess` of this interpreter)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import List

from lskd.fileio import atomic_dir

from .common import DataPrepError, log


def preprocess_command(src: str, tgt: str, prefix_dir: Path, destdir: Path, *, joint: bool,
                       workers: int = 2, splits=("train", "valid", "test"), dicts=None) -> List[str]:
    """fairseq-preprocess's command line; `dicts` (source, target): existing dictionaries (no new symbol)."""
    cmd = [sys.executable, "-m", "fairseq_cli.preprocess", "--source-lang", src, "--target-lang", tgt]
    for split in splits:
        cmd += [f"--{split}pref", str(Path(prefix_dir) / split)]
    cmd += ["--destdir", str(destdir), "--workers", str(workers)]
    if dicts:
        cmd += ["--srcdict", str(dicts[0]), "--tgtdict", str(dicts[1])]
    elif joint:
        cmd.append("--joined-dictionary")
    return cmd


def binarize(src: str, tgt: str, prefix_dir: Path, destdir: Path, *, joint: bool, workers: int = 2,
             dicts=None) -> List[str]:
    """Binarise prefix_dir/{train,valid,test}.{src,tgt} into destdir (replaced atomically)."""
    if importlib.util.find_spec("fairseq_cli") is None:
        raise DataPrepError(f"fairseq is not installed for {sys.executable} (needed by fairseq-preprocess); "
                            "install it (see requirements-fairseq.txt) or pass --no-binarize")
    destdir = Path(destdir)
    with atomic_dir(destdir) as tmp:
        cmd = preprocess_command(src, tgt, prefix_dir, tmp, joint=joint, workers=workers, dicts=dicts)
        log("run: " + " ".join(cmd))
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        (tmp / "preprocess.stdout.log").write_text(p.stdout, encoding="utf-8")
        if p.returncode != 0:
            tail = " | ".join(p.stdout.strip().splitlines()[-3:])
            raise DataPrepError(f"fairseq-preprocess failed (exit {p.returncode}) on {prefix_dir}: {tail}")
    return preprocess_command(src, tgt, prefix_dir, destdir, joint=joint, workers=workers, dicts=dicts)
