"""TeacherSession: the one way lskd's fairseq commands and the criterion set up and run teachers."""

import argparse

import pytest

from helpers import PLUGINS, require_fairseq

require_fairseq()
from fairseq import utils  # noqa: E402

utils.import_user_module(argparse.Namespace(user_dir=PLUGINS))
from fairseq_plugins import teacher  # noqa: E402
from lskd.errors import LskdError  # noqa: E402


def test_ensemble_reads_each_checkpoint_once_and_batches_cover_the_split(tiny_data, tiny_teacher, monkeypatch):
    reads = []
    real = teacher.read_checkpoint
    monkeypatch.setattr(teacher, "read_checkpoint", lambda path, *args: reads.append(path) or real(path, *args))
    session = teacher.TeacherSession.for_data(str(tiny_data / "bin"), f"{tiny_teacher}:{tiny_teacher}", ["valid"])
    assert reads == [str(tiny_teacher)] * 2 and len(session.models) == 2
    assert all(not m.training and not any(p.requires_grad for p in m.parameters()) for m in session.models)
    ids = [i for batch in session.batches("valid", max_tokens=100) for i in batch["id"].tolist()]
    assert sorted(ids) == list(range(len(session.task.dataset("valid"))))  # every sentence once, none dropped


def test_missing_second_checkpoint_is_named_before_any_is_read(tiny_data, tiny_teacher, tmp_path):
    with pytest.raises(LskdError, match=rf"^--path {tmp_path / 'nope.pt'}: no such file"):
        teacher.TeacherSession.for_data(str(tiny_data / "bin"), f"{tiny_teacher}:{tmp_path / 'nope.pt'}", ["valid"], option="--path")
