"""`lskd nmt-features`: penultimate decoder states per gold target token, the input of `lskd diffusion` for NMT."""

import argparse

import torch

from helpers import PLUGINS, require_fairseq, run, tool

require_fairseq()
from fairseq import utils  # noqa: E402

utils.import_user_module(argparse.Namespace(user_dir=PLUGINS))


def test_nmt_features_match_the_model_in_corpus_order(tiny_data, tiny_teacher, tmp_path):
    from fairseq_plugins.nmt_features import FeaturesOptions, extract
    from fairseq_plugins.teacher import TeacherSession

    d = extract(FeaturesOptions(data=str(tiny_data / "bin"), path=str(tiny_teacher), out=tmp_path / "f.pt", split="valid",
                                top=5, max_per_word=7))
    assert len(d["classes"]) == 5 and d["features"].size(0) == sum(d["counts"]) and max(d["counts"]) <= 7
    assert d["labels"].bincount(minlength=5).tolist() == d["counts"]
    session = TeacherSession.for_data(str(tiny_data / "bin"), str(tiny_teacher), ["valid"], option="--path")
    task, (model,) = session.task, session.models
    ids = [task.target_dictionary.index(w) for w in d["classes"]]
    assert torch.equal(d["fc_weight"], model.decoder.output_projection.weight[ids].float())
    # rows in corpus order (sample id, then position), not fairseq's length-sorted batches: the first row is
    # the first occurrence of an analysed word in the split, and each word keeps its first occurrences
    dataset = task.dataset("valid")
    pos = d["positions"].tolist()
    assert pos == sorted(pos)
    hits = [(sid, p) for sid in range(len(dataset)) for p, t in enumerate(dataset.tgt[sid].tolist()) if t in ids]
    for c, word in enumerate(ids):
        first = [h for h in hits if int(dataset.tgt[h[0]][h[1]]) == word][: d["counts"][c]]
        assert [tuple(p) for p, y in zip(pos, d["labels"].tolist()) if y == c] == first
    sid, p = pos[-1]
    with torch.no_grad():
        logits = model(**dataset.collater([dataset[sid]])["net_input"])[0][0, p, ids]
    assert torch.allclose(d["logits"][-1], logits, atol=1e-4)


def test_nmt_features_refuses_unknown_words(tiny_data, tiny_teacher, tmp_path):
    proc = run([tool("lskd"), "nmt-features", "--data", tiny_data / "bin", "--path", tiny_teacher, "--words", "zzqx",
                "--out", tmp_path / "f.pt"], check=False)
    assert proc.returncode == 2 and "--words: not in the target dictionary: zzqx" in proc.stderr
    assert not (tmp_path / "f.pt").exists()
