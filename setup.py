import re
from pathlib import Path

from setuptools import find_packages, setup

VERSION = re.search(r'^__version__ = "([^"]+)"', (Path(__file__).parent / "lskd" / "__init__.py").read_text(), re.M).group(1)

setup(
    name="lskd",
    version=VERSION,
    description="Knowledge distillation with label-smoothed teachers for fairseq NMT and torchvision",
    python_requires=">=3.11",
    packages=find_packages(include=["lskd", "lskd.*", "fairseq_plugins", "fairseq_plugins.*", "data_prep", "data_prep.*"]),
    # fairseq comes from a fork installed with --no-deps (see requirements-fairseq.txt and the Makefile),
    # so it is not listed here: pip would drag in a torchaudio that does not match torch.
    install_requires=[
        "torch>=2.6",
        "torchvision",
        "numpy",
        "sacrebleu>=2",
        "sentencepiece",
        "sacremoses",
        "tqdm",
        "matplotlib",
    ],
    entry_points={"console_scripts": ["lskd=lskd.cli:main"]},
)
