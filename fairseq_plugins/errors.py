"""User errors inside fairseq commands: one line on stderr and a non-zero exit, no traceback.

fairseq-train/-generate call our code (the criterion) deep inside their own main; a SystemExit
carrying the message is the one exception they let through untouched. lskd code raises
`lskd.errors.LskdError` everywhere; `fairseq_exit_on_user_error` is the one place that turns it
into that exit, naming the loss core's fields by their fairseq flags. The `lskd` commands built on
fairseq (cache, distill-data, nmt-features) need no wrapper: `lskd.cli.run_entry` prints the error.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Mapping, Optional

from lskd.errors import LskdError, OptionError

# the loss core's field -> the ls_kd criterion's flag
FAIRSEQ_FLAGS = {
    "kd_lambda": "--kd-lambda",
    "kd_temperature": "--kd-temperature",
    "label_smoothing": "--label-smoothing",
    "kd_topk": "--kd-topk",
}

@contextlib.contextmanager
def fairseq_exit_on_user_error(flags: Optional[Mapping[str, str]] = None) -> Iterator[None]:
    """Run a block of plugin code called by fairseq; a user error leaves as `SystemExit("error: ...")`.
    `flags` overrides FAIRSEQ_FLAGS for some fields (the criterion names an old flag the user gave)."""
    try:
        yield
    except OptionError as e:
        raise SystemExit(f"error: {e.with_flag({**FAIRSEQ_FLAGS, **(flags or {})})}") from e
    except LskdError as e:
        raise SystemExit(f"error: {e}") from e
