"""Shared fixtures: a tiny synthetic parallel corpus binarised by fairseq, and a tiny teacher.

Everything else the tests share (paths, commands, the tiny model) is in tests/helpers.py.
"""

import pytest

from helpers import FAIRSEQ_MISSING, fairseq_installed, preprocess, train, write_tiny_corpus


@pytest.fixture(scope="session", autouse=True)
def lskd_cache(tmp_path_factory):
    """Downloads, unpacked archives and converted CTranslate2 models of the tests go to a temporary
    $LSKD_CACHE, never to the user's ~/.cache/lskd."""
    with pytest.MonkeyPatch.context() as mp:
        root = tmp_path_factory.mktemp("lskd_cache")
        mp.setenv("LSKD_CACHE", str(root))
        yield root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    if not fairseq_installed():
        pytest.skip(FAIRSEQ_MISSING)
    root = tmp_path_factory.mktemp("tiny")
    write_tiny_corpus(root / "raw")
    preprocess(root / "raw", root / "bin")
    return root


@pytest.fixture(scope="session")
def tiny_teacher(tiny_data, tmp_path_factory):
    """A label-smoothed (eps 0.1) teacher checkpoint trained on the tiny corpus."""
    save = tmp_path_factory.mktemp("teacher")
    train(tiny_data / "bin", save, ["--kd-lambda", "0", "--label-smoothing", "0.1"], epochs=8)
    return save / "checkpoint_last.pt"


@pytest.fixture(scope="session", params=["bpe", "spm"])
def foreign_teacher(request, tmp_path_factory):
    """A teacher lskd did not train, in fairseq's released layout (tests/foreign_teacher.py): Moses + BPE, or
    sentencepiece; shared by the own-teacher and export tests."""
    if not fairseq_installed():
        pytest.skip(FAIRSEQ_MISSING)
    from foreign_teacher import make_teacher

    return make_teacher(tmp_path_factory.mktemp(f"foreign_{request.param}"), request.param)
