"""User errors: what every lskd command and adapter prints as one line and a non-zero exit, no traceback.

Anything else that escapes a command is a bug in lskd and keeps its traceback: `lskd.cli.run_entry`
catches these types only.

The loss core (`lskd.losses`) knows its settings by field name (`kd_lambda`, `kd_temperature`, ...),
not by any command line's flag: it raises `OptionError(field, problem)`, and each adapter (the fairseq
criterion, the vision CLI) names the field with its own flag through `OptionError.with_flag`.
"""

from __future__ import annotations

from typing import Mapping


class LskdError(Exception):
    """A user error (bad option, missing or malformed file): one line on stderr, exit status 2."""


class OptionError(LskdError, ValueError):
    """A bad value of a setting known by its field name. A ValueError too, as the loss core's
    argument checks always were."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem

    def with_flag(self, flags: Mapping[str, str]) -> LskdError:
        """The same error worded with an adapter's flag for the field (unchanged if it has none)."""
        return LskdError(f"{flags.get(self.field, self.field)} {self.problem}")


class FileFormatError(LskdError):
    """A file that exists but does not hold what it should; the message names the file."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = path
