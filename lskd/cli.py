"""`lskd SUBCOMMAND ...`: the commands that are not fairseq commands.

Subcommands are registered by name -> "module:function"; modules are imported only when their
command runs, so `lskd --help` stays fast and a command's heavy imports (fairseq) cost nothing
to the others. Each entry point takes argv (list of str) and returns an exit code.
"""

from __future__ import annotations

import importlib
import sys
from typing import Dict, List, Optional, Tuple

# name -> (entry point, one-line help)
COMMANDS: Dict[str, Tuple[str, str]] = {
    "score": ("lskd.scoring:main", "score fairseq-generate output (or a hypothesis file) with sacrebleu BLEU and chrF"),
    "cache": ("fairseq_plugins.topk_cache:main", "run a teacher once over a split and store its top-K logits per token"),
    "distill-data": ("fairseq_plugins.distill_data:main", "sequence-level KD data: decode the train split with a teacher, re-binarise"),
    "ct2-generate": ("fairseq_plugins.ct2_engine:generate_main", "fairseq-generate's output, decoded by CTranslate2 (recipes' DECODE_ENGINE)"),
    "report": ("lskd.report:main", "collect a sweep's scores into an alpha x T table (markdown, CSV, PNG)"),
    "nmt-features": ("fairseq_plugins.nmt_features:main", "penultimate decoder states per gold target token, for `lskd diffusion`"),
    "diffusion": ("lskd.diffusion:main", "template projection plots and a diffusion index from penultimate features"),
    "vision": ("lskd.vision.cli:main", "image classification: LS teachers and KD students with torchvision"),
}


class LskdError(Exception):
    """A user error: printed as one line, exit status 2, no traceback."""


def _usage() -> str:
    lines = ["usage: lskd COMMAND [options]", "", "commands:"]
    width = max(len(n) for n in COMMANDS)
    lines += [f"  {n.ljust(width)}  {h}" for n, (_, h) in sorted(COMMANDS.items())]
    lines += ["", "`lskd COMMAND --help` documents each command."]
    return "\n".join(lines)


def run_entry(prog: str, fn, argv: List[str]) -> int:
    """Call a command's entry point, turning user errors into one line on stderr and exit 2."""
    try:
        return int(fn(argv) or 0)
    except (LskdError, ValueError, FileNotFoundError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # the fairseq plugin's one-line errors (fairseq_plugins.errors.PluginError)
        if not hasattr(e, "message"):
            raise
        print(f"{prog}: error: {e.message}", file=sys.stderr)
        return 2


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"lskd: error: unknown command {name!r}; expected one of: {', '.join(sorted(COMMANDS))}", file=sys.stderr)
        return 2
    module, func = COMMANDS[name][0].split(":")
    fn = getattr(importlib.import_module(module), func)
    return run_entry(f"lskd {name}", fn, rest)


if __name__ == "__main__":
    sys.exit(main())
