"""Image classification side of lskd: LS teachers and KD students with torchvision.

Modules: `models` (architectures by name), `data` (dataset readers by name), `train` (the training
loop, checkpoints, DDP), `features` (penultimate-layer features), `table` (grid table and plot),
`cli` (`lskd vision ...`). The LS/KD math lives in `lskd.losses` only.
"""
