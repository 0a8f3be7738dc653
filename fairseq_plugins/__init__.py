"""fairseq --user-dir for lskd: `fairseq-train --user-dir fairseq_plugins --criterion ls_kd ...`.

Importing this package registers the `ls_kd` criterion, and allow-lists `argparse.Namespace` for
torch >= 2.6's weights-only `torch.load`, so every fairseq command run with this user dir can load
checkpoints of argparse-style architectures (generate, resume, teachers).
"""

import argparse

import torch

torch.serialization.add_safe_globals([argparse.Namespace])

from . import checkpoint_io  # noqa: E402,F401  (atomic checkpoint_last.pt copies)
from . import clean_exit  # noqa: E402,F401  (no SIGABRT at exit after stopping mid-epoch)
from . import criterions  # noqa: E402,F401  (registers ls_kd)
from . import resume_batches  # noqa: E402,F401  (a resumed run draws the uninterrupted run's batches)
