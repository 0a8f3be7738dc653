"""`lskd SUBCOMMAND ...`: the commands that are not fairseq commands.

Subcommands are registered by name -> "module:function"; modules are imported only when their
command runs, so `lskd --help` stays fast and a command's heavy imports (fairseq) cost nothing
to the others. Each entry point takes argv (list of str) and returns an exit code.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Dict, List, Optional, Tuple

from lskd.errors import LskdError  # noqa: F401  (also importable from here, its old home)

# name -> (entry point, one-line help)
COMMANDS: Dict[str, Tuple[str, str]] = {
    "score": ("lskd.scoring:main", "score fairseq-generate output (or a hypothesis file) with sacrebleu BLEU and chrF"),
    "cache": ("fairseq_plugins.cache_build:main", "run a teacher once over a split and store its top-K logits per token"),
    "teacher-release": ("fairseq_plugins.teacher_release:main", "a trained teacher as a small file, and back to a checkpoint a grid starts from"),
    "distill-data": ("fairseq_plugins.distill_data:main", "sequence-level KD data: decode the train split with a teacher, re-binarise"),
    "ct2-generate": ("fairseq_plugins.ct2_generate:main", "fairseq-generate's output, decoded by CTranslate2 (recipes' DECODE_ENGINE)"),
    "export": ("fairseq_plugins.export:main", "a trained model as a self-contained CTranslate2 folder with its tokenizer"),
    "translate": ("fairseq_plugins.translate:main", "raw text in, translations out, with a folder made by lskd export"),
    "deploy-table": ("fairseq_plugins.deploy_table:main", "size, CPU speed and BLEU of a teacher and its students as exported (lskd translate)"),
    "report": ("lskd.report:main", "collect a sweep's scores into an alpha x T table (markdown, CSV, PNG)"),
    "nmt-features": ("fairseq_plugins.nmt_features:main", "penultimate decoder states per gold target token, for `lskd diffusion`"),
    "diffusion": ("lskd.diffusion_cli:main", "template projection plots and a diffusion index from penultimate features"),
    "train-ranks": ("lskd.launch:main", "fairseq-train as N processes on a CPU machine (gloo): multi-process ls_kd"),
    "vision": ("lskd.vision.cli:main", "image classification: LS teachers and KD students with torchvision"),
    "user-dir": ("lskd.cli:user_dir", "print the fairseq plugin directory: fairseq-train --user-dir \"$(lskd user-dir)\" ..."),
}

FAIRSEQ_HINT = ("fairseq is not installed for {python}; install it as the README says "
                "(pip install --no-deps -r requirements-fairseq.txt, or `make venv`)")


def _usage() -> str:
    lines = ["usage: lskd COMMAND [options]", "", "commands:"]
    width = max(len(n) for n in COMMANDS)
    lines += [f"  {n.ljust(width)}  {h}" for n, (_, h) in sorted(COMMANDS.items())]
    lines += ["", "`lskd COMMAND --help` documents each command."]
    return "\n".join(lines)


def run_entry(prog: str, fn, argv: List[str]) -> int:
    """Call a command's entry point, turning user errors (lskd.errors) into one line on stderr and exit 2.

    Any other exception is a bug and keeps its traceback; a missing fairseq gets an install hint.
    """
    try:
        return int(fn(argv) or 0)
    except LskdError as e:
        print(f"{prog}: error: {user_line(e)}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "fairseq":
            raise
        print(f"{prog}: error: {FAIRSEQ_HINT.format(python=sys.executable)}", file=sys.stderr)
        return 2


def user_line(e: LskdError) -> str:
    """The error's own line; a DataLoader worker's re-raised copy ("Caught LskdError in DataLoader worker process
    0. Original Traceback ...") gives the line the worker raised."""
    text = str(e)
    if text.startswith("Caught ") and "Original Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        return last.split(": ", 1)[1] if last.split(": ", 1)[0].endswith("Error") else last
    return text


def user_dir(argv: List[str]) -> int:
    """Print the directory of the installed fairseq plugin package (found without importing it: no torch, no fairseq)."""
    if argv:
        raise LskdError(f"lskd user-dir takes no arguments, got {' '.join(argv)}")
    spec = importlib.util.find_spec("fairseq_plugins")
    if spec is None or not spec.submodule_search_locations:
        raise LskdError("the fairseq_plugins package is not installed with lskd (reinstall: pip install -e .)")
    print(list(spec.submodule_search_locations)[0])
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        from lskd import __version__

        print(f"lskd {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"lskd: error: unknown command {name!r}; expected one of: {', '.join(sorted(COMMANDS))}", file=sys.stderr)
        return 2
    module, func = COMMANDS[name][0].split(":")

    def entry(args: List[str]) -> int:  # imported inside run_entry, so a missing fairseq gets its hint
        return getattr(importlib.import_module(module), func)(args)

    return run_entry(f"lskd {name}", entry, rest)


if __name__ == "__main__":
    sys.exit(main())
