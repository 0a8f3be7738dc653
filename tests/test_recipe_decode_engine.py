"""The recipes' evaluate step with either decoder (DECODE_ENGINE in the config): same score files."""

import json

import pytest

from test_recipe import recipe, tiny_config


@pytest.mark.slow
def test_evaluate_with_either_engine_gives_the_same_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("LSKD_CACHE", str(tmp_path / "cache"))
    config = tiny_config(tmp_path, TEACHER_ALPHAS="0.1", JOBS=1, DECODE_ENGINE="ctranslate2")
    for step in ("prepare", "teachers"):
        proc = recipe("--config", config, "--only", step)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    run = tmp_path / "grid" / "teachers" / "a0.1_s1"
    ct2 = run.joinpath("generate-test.txt").read_text()
    assert "with CTranslate2 4.8.5 float32 on cpu" in ct2.splitlines()[-1]
    assert list((tmp_path / "cache" / "ct2").iterdir())  # the converted teacher is in the cache
    score_ct2 = json.loads((run / "score.json").read_text())

    (run / "score.json").unlink()  # evaluate again with fairseq-generate
    proc = recipe("--config", tiny_config(tmp_path, TEACHER_ALPHAS="0.1", JOBS=1, DECODE_ENGINE="fairseq"),
                  "--only", "teachers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skip: teacher_a0.1_s1\n" in proc.stdout and "run:  teacher_a0.1_s1_score" in proc.stdout
    fairseq = run.joinpath("generate-test.txt").read_text()
    assert "CTranslate2" not in fairseq
    score_fs = json.loads((run / "score.json").read_text())
    assert set(score_fs) == set(score_ct2) and score_fs["n_sentences"] == score_ct2["n_sentences"] == 30
    d_lines = lambda text: sorted(l.split("\t")[::2] for l in text.splitlines() if l.startswith("D-"))  # noqa: E731,E741
    assert d_lines(fairseq) == d_lines(ct2)  # greedy, one length limit: the same hypotheses
    assert score_fs["bleu"] == score_ct2["bleu"] and score_fs["chrf"] == score_ct2["chrf"]


def test_unknown_decode_engine_is_refused(tmp_path):
    config = tiny_config(tmp_path, DECODE_ENGINE="onnx")
    proc = recipe("--config", config)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: config {config}: DECODE_ENGINE must be fairseq or ctranslate2, got onnx"
