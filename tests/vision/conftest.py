import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture
def tiny_cfg(tmp_path):
    """A fast digits config (mlp, CPU, deterministic)."""
    from lskd.vision.train import TrainConfig

    def make(**kw):
        base = dict(role="teacher", out_dir=str(tmp_path / "run"), dataset="digits", arch="mlp", epochs=1, batch_size=64,
                    lr=0.1, schedule="constant", device="cpu", deterministic=True, progress=False, seed=0)
        base.update(kw)
        return TrainConfig(**base)

    return make
