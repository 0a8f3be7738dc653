"""Make `fairseq-train --user-dir fairseq_plugins --criterion ls_kd --help` list ls_kd's options.

fairseq's parse_args_and_arch adds criterion options only after a first parse_known_args, and
`--help` exits inside that first parse, so no criterion's options ever appear in --help. When
--help is asked for with `--criterion ls_kd`, fairseq.options.parse_args_and_arch is wrapped to add our dataclass
options before that first parse; in every other run nothing is touched.
"""

import functools
import sys


def _criterion_from_argv(argv):
    for i, a in enumerate(argv):
        if a == "--criterion" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--criterion="):
            return a.split("=", 1)[1]
    return None


def add_ls_kd_options_to_help(config_cls, name: str = "ls_kd") -> None:
    argv = sys.argv[1:]
    if not ({"-h", "--help"} & set(argv)) or _criterion_from_argv(argv) != name:
        return
    from fairseq import options
    from fairseq.dataclass.utils import gen_parser_from_dataclass

    original = options.parse_args_and_arch

    @functools.wraps(original)
    def parse_with_criterion_help(parser, *args, **kwargs):
        gen_parser_from_dataclass(parser.add_argument_group(f"criterion {name}"), config_cls())
        return original(parser, *args, **kwargs)

    options.parse_args_and_arch = parse_with_criterion_help
