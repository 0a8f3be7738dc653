"""`python -m fairseq_plugins.arch_check ARCH_ARGS...`: exit 0 when fairseq-train accepts the options as a model
architecture for the translation task, else one line saying what it rejects (the recipes check STUDENT_ARCH_ARGS
with it before any step runs)."""

from __future__ import annotations

import contextlib
import io
import sys
from typing import List


def rejection(arch_args: List[str]) -> str:
    """'' when fairseq-train's parser accepts the options (with a placeholder data dir), else its complaint."""
    from fairseq import options

    if "--arch" not in arch_args and "-a" not in arch_args:
        return "no --arch (STUDENT_ARCH_ARGS replaces ARCH_ARGS for the students: give the whole architecture)"
    parser = options.get_training_parser()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            options.parse_args_and_arch(parser, ["DATA", "--task", "translation", *arch_args])
        except SystemExit:
            lines = [line for line in err.getvalue().splitlines() if "error:" in line]
            return lines[-1].split("error:", 1)[1].strip()[:300] if lines else "rejected by fairseq-train's parser"
    return ""


def main(argv: List[str]) -> int:
    problem = rejection(argv)
    if problem:
        print(f"fairseq-train would reject these architecture options ({' '.join(argv)}): {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
