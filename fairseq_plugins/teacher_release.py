"""Teacher releases: a trained teacher as a small file that a grid can start from instead of training it.

`lskd teacher-release export` keeps what decoding and distillation need from a fairseq checkpoint (the
config, the weights in float16, the update count) and records the SHA-256 of the dictionaries it was
trained with; the optimizer state (two thirds of a checkpoint) is dropped. `lskd teacher-release import`
checks those dictionaries against a data directory and writes an ordinary float32 fairseq checkpoint
(checkpoint_best.pt and checkpoint_last.pt) that every fairseq and lskd command reads as usual. The
demo ships its two teachers this way (recipes/bible/make_demo_teachers.sh makes them), so its minutes go
to the students.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Dict, List, Optional

from fairseq.data import data_utils
from omegaconf import OmegaConf

from fairseq_plugins.teacher import read_checkpoint
from lskd.errors import LskdError
from lskd.fileio import sha256_file, write_torch

KEY = "lskd_release"


def dictionary_digests(data_bin: str, state: dict) -> Dict[str, str]:
    """{dict.<lang>.txt: sha256} for the checkpoint's source and target languages in data_bin."""
    task = state["cfg"].task
    langs = (task.source_lang, task.target_lang)
    if None in langs:  # fairseq-train infers the pair from the data's file names when it is not given
        langs = data_utils.infer_language_pair(data_bin)
        if None in langs:
            raise LskdError(f"--data {data_bin}: no binarised train split to tell its language pair from")
    digests = {}
    for lang in langs:
        path = Path(data_bin) / f"dict.{lang}.txt"
        if not path.is_file():
            raise LskdError(f"--data {data_bin}: no {path.name} (expected the binarised data the teacher was trained on)")
        digests[path.name] = sha256_file(path)
    return digests


def _as_saved(state: dict) -> dict:
    """The checkpoint dict as fairseq saves it: its config as plain containers (torch's weights-only load)."""
    return dict(state, cfg=OmegaConf.to_container(state["cfg"], resolve=True, enum_to_str=True))


def export_release(checkpoint: str, data_bin: str, out: str) -> None:
    state = read_checkpoint(checkpoint, option="--checkpoint")
    release = {k: v for k, v in state.items() if k != "last_optimizer_state"}  # "args" too: CTranslate2 reads it
    release.update({
        "model": {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()},
        "optimizer_history": state["optimizer_history"][-1:],
        KEY: {"dictionaries": dictionary_digests(data_bin, state), "from": os.path.basename(checkpoint)},
    })
    write_torch(Path(out), _as_saved(release))


def import_release(release_path: str, data_bin: str, save_dir: str) -> None:
    state = read_checkpoint(release_path, option="--release")
    recorded = state.get(KEY, {}).get("dictionaries")
    if recorded is None:
        raise LskdError(f"--release {release_path}: not a teacher release (made by `lskd teacher-release export`)")
    found = dictionary_digests(data_bin, state)
    for name, digest in recorded.items():
        if found.get(name) != digest:
            raise LskdError(f"--release {release_path}: trained with another {name} than {Path(data_bin) / name} "
                            f"(sha256 {digest[:12]}... vs {found.get(name, 'missing')[:12]}...); prepare the data "
                            "with the command the release was made with, or train the teacher")
    del state[KEY]
    state["model"] = {k: v.float() if v.is_floating_point() else v for k, v in state["model"].items()}
    state["cfg"].task.data = str(data_bin)  # the dictionaries are checked identical: point at them
    if getattr(state.get("args"), "data", None) is not None:
        state["args"].data = str(data_bin)
    state["last_optimizer_state"] = None
    state = _as_saved(state)
    for name in ("checkpoint_best.pt", "checkpoint_last.pt"):
        write_torch(Path(save_dir) / name, state)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="lskd teacher-release", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="action", required=True)
    e = sub.add_parser("export", help="write a release file from a trained teacher's checkpoint")
    e.add_argument("--checkpoint", required=True, help="the teacher's fairseq checkpoint (e.g. checkpoint_best.pt)")
    e.add_argument("--data", required=True, help="the binarised data it was trained on (its dictionaries are recorded)")
    e.add_argument("--out", required=True, help="the release file to write")
    i = sub.add_parser("import", help="write checkpoint_best.pt and checkpoint_last.pt from a release file")
    i.add_argument("--release", required=True, help="a file written by `lskd teacher-release export`")
    i.add_argument("--data", required=True, help="binarised data with the dictionaries the release was trained with")
    i.add_argument("--save-dir", required=True, help="where to write the checkpoints")
    args = p.parse_args(argv)
    if args.action == "export":
        export_release(args.checkpoint, args.data, args.out)
    else:
        import_release(args.release, args.data, args.save_dir)
    return 0
