"""lskd: knowledge distillation with label-smoothed teachers.

The pure-torch core (`lskd.losses`, and later the diffusion analysis) is imported by both the
fairseq plugin (`fairseq_plugins`) and the torchvision companion, so the math lives in one place.
"""

__version__ = "0.1.0"
