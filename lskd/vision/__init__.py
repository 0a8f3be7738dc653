"""Image classification side of lskd: LS teachers and KD students with torchvision.

Modules: `models` (architectures by name), `data` (dataset readers by name), `train` (the training
loop shaped like torchvision's reference: `train_one_epoch`, `evaluate`, `run`; checkpoints),
`distributed` (the torchrun process group), `features` (penultimate-layer features), `cli`
(`lskd vision ...`). The LS/KD math lives in `lskd.losses` only; tables come from `lskd report`.
"""
