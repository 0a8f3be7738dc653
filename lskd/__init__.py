"""lskd: knowledge distillation with label-smoothed teachers.

The pure-torch core -- `lskd.losses` (label smoothing, KD at temperature T, top-K teachers) and
`lskd.diffusion` (the penultimate-layer analysis) -- is shared by the fairseq plugin
(`fairseq_plugins`, `--user-dir "$(lskd user-dir)"`) and the torchvision side (`lskd.vision`), so
the math lives in one place. `lskd.errors` holds the user-error types every command prints as one
line; `lskd.cli` dispatches the `lskd` commands; the paper's definitions are in docs/PAPER.md.
"""

__version__ = "0.1.0"  # the one version string (setup.py reads it from here)
