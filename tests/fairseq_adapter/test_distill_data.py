"""`lskd distill-data`: equality with fairseq-generate, students on the output, shards, resume, refusals."""

import dataclasses
import argparse
import json
import re
import shutil

import pytest
import torch

from helpers import PLUGINS, distill, require_fairseq, run, tool, train

require_fairseq()
from fairseq import utils  # noqa: E402

utils.import_user_module(argparse.Namespace(user_dir=PLUGINS))
from fairseq_plugins import distill_data, distill_decode  # noqa: E402
from fairseq_plugins.teacher_command import parse  # noqa: E402
from lskd.errors import LskdError  # noqa: E402

FILES = ["train.src-tgt.src.bin", "train.src-tgt.src.idx", "train.src-tgt.tgt.bin", "train.src-tgt.tgt.idx"]


def read_bin(prefix):
    from fairseq.data import indexed_dataset

    ds = indexed_dataset.MMapIndexedDataset(str(prefix))
    return [ds[i].tolist() for i in range(len(ds))]


def same_output(a, b, split="train"):
    """Binaries and text of two distill-data outputs are identical."""
    for name in [f.replace("train.", f"{split}.") for f in FILES]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for name in (f"{split}.src", f"{split}.tgt", f"{split}.detok.tgt"):
        assert (a / "text" / name).read_text() == (b / "text" / name).read_text(), name
    ids_a, ids_b = [[line.split("\t") for line in (d / "text" / f"{split}.ids").read_text().splitlines()] for d in (a, b)]
    assert [r[:2] for r in ids_a] == [r[:2] for r in ids_b]  # same sample ids and ranks
    # scores: same hypotheses, float noise from other batch compositions only
    assert [float(r[2]) for r in ids_a] == pytest.approx([float(r[2]) for r in ids_b], abs=1e-4)


@pytest.fixture(scope="module")
def distilled(tiny_data, tiny_teacher, tmp_path_factory):
    """The train split distilled by beam search, one shard (the reference for the slow tests)."""
    out = tmp_path_factory.mktemp("distill") / "out"
    distill(tiny_data / "bin", tiny_teacher, out, "--beam", "5", "--lenpen", "1.0", "--max-tokens", "4000")
    return out


@pytest.fixture(scope="module")
def valid_one_shard(tiny_data, tiny_teacher, tmp_path_factory):
    out = tmp_path_factory.mktemp("distill_valid") / "out"
    m = distill(tiny_data / "bin", tiny_teacher, out, "--split", "valid", "--beam", "3", "--max-tokens", "200")
    return out, m


@pytest.mark.slow
def test_targets_equal_fairseq_generate_in_corpus_order(tiny_data, tiny_teacher, distilled):
    gen = run([tool("fairseq-generate"), tiny_data / "bin", "--user-dir", PLUGINS, "--path", tiny_teacher,
               "--gen-subset", "train", "--beam", "5", "--lenpen", "1.0", "--cpu", "--max-tokens", "4000",
               "--required-batch-size-multiple", "1"])
    hyps = {}
    for line in gen.stdout.splitlines():
        if line.startswith("H-"):
            head, _score, text = line.split("\t")
            hyps[int(head[2:])] = text
    assert sorted(hyps) == list(range(400))  # fairseq-generate itself decoded every sentence once
    m = json.loads((distilled / "manifest.json").read_text())
    ids = [int(line.split("\t")[0]) for line in (distilled / "text" / "train.ids").read_text().splitlines()]
    texts = (distilled / "text" / "train.tgt").read_text().splitlines()
    assert ids == sorted(ids) and len(set(ids)) == len(ids) == m["counts"]["kept"] == len(texts)
    assert [hyps[i] for i in ids] == texts
    # every source not kept was filtered, and fairseq-generate's output for it explains the filter
    for i in set(range(400)) - set(ids):
        n_out, n_in = len(hyps[i].split()), len((tiny_data / "raw" / "train.src").read_text().splitlines()[i].split())
        assert n_out == 0 or max(n_out / n_in, n_in / max(n_out, 1)) > 3.0
    # the binarised targets are those hypotheses under the teacher's (= the data dir's) dictionary, plus </s>
    from fairseq.data import Dictionary
    tgt_dict = Dictionary.load(str(tiny_data / "bin" / "dict.tgt.txt"))
    assert [tgt_dict.string(torch.tensor(t)) for t in read_bin(distilled / "train.src-tgt.tgt")] == texts
    assert all(t[-1] == tgt_dict.eos() for t in read_bin(distilled / "train.src-tgt.tgt"))
    src = read_bin(distilled / "train.src-tgt.src")
    orig = read_bin(tiny_data / "bin" / "train.src-tgt.src")
    assert src == [orig[i] for i in ids]
    assert (distilled / "dict.tgt.txt").read_bytes() == (tiny_data / "bin" / "dict.tgt.txt").read_bytes()
    assert (distilled / "valid.src-tgt.tgt.bin").read_bytes() == (tiny_data / "bin" / "valid.src-tgt.tgt.bin").read_bytes()


@pytest.mark.slow
def test_manifest_counts_add_up(distilled, tiny_teacher):
    m = json.loads((distilled / "manifest.json").read_text())
    c = m["counts"]
    assert c["sources"] == 400 and c["hypotheses"] == 400
    assert c["kept"] + sum(c["filtered"].values()) == c["hypotheses"]
    assert set(c["filtered"]) == {"too_long", "empty", "max_len", "ratio", "not_selected"}
    assert c["target_tokens"] == sum(len(t) for t in read_bin(distilled / "train.src-tgt.tgt"))
    assert c["source_tokens"] == sum(len(t) for t in read_bin(distilled / "train.src-tgt.src"))
    from lskd.fileio import sha256_file
    assert m["settings"]["teachers"][0]["sha256"] == sha256_file(tiny_teacher)
    assert m["settings"]["decoding"]["beam"] == 5 and m["settings"]["decoding"]["search"] == "beam"
    assert "distill-data" in m["created_by"] or "pytest" in m["created_by"]
    assert m["throughput"]["sentences_per_s"] > 0 and m["post_process"] == "none"


@pytest.mark.slow
def test_end_to_end_seq_kd_and_seq_plus_word_kd_students(tiny_data, tiny_teacher, distilled, tmp_path):
    """Teacher -> distilled data -> students: pure seq-KD (ls_kd, kd_lambda 0) -> fairseq-generate on test ->
    lskd score; and seq-KD + word-KD (kd_lambda 0.5 with the teacher) for a few updates."""
    save = tmp_path / "seq"
    train(distilled, save, ["--kd-lambda", "0", "--label-smoothing", "0.1"], epochs=1)
    gen = run([tool("fairseq-generate"), distilled, "--user-dir", PLUGINS, "--path", save / "checkpoint_last.pt",
               "--gen-subset", "test", "--beam", "2", "--cpu", "--required-batch-size-multiple", "1", "--batch-size", "16"])
    (tmp_path / "gen.out").write_text(gen.stdout)
    run([tool("lskd"), "score", "--generate", tmp_path / "gen.out", "--ref", tiny_data / "raw" / "test.tgt",
         "--out", tmp_path / "score.json", "--meta", "role=seq_kd_student"])
    score = json.loads((tmp_path / "score.json").read_text())
    assert score["n_sentences"] == 30 and 0 <= score["bleu"] <= 100

    proc = train(distilled, tmp_path / "seq_word", ["--kd-lambda", "0.5", "--teacher-path", str(tiny_teacher)],
                 epochs=1, extra=["--max-update", "3"])
    assert (tmp_path / "seq_word" / "checkpoint_last.pt").is_file()
    assert '"num_updates": "3"' in proc.stdout and "kd_loss" in proc.stdout


def test_two_shards_plus_merge_equal_one_shard(tiny_data, tiny_teacher, valid_one_shard, tmp_path):
    one, m1 = valid_one_shard
    common = ["--split", "valid", "--beam", "3", "--max-tokens", "200"]
    # shards one by one (as on two machines), then an explicit --merge
    out = tmp_path / "two"
    distill_data.main(["--data", str(tiny_data / "bin"), "--teacher-path", str(tiny_teacher), "--out", str(out), "--cpu",
                       *common, "--num-shards", "2", "--shard-id", "1"])
    assert not (out / "manifest.json").exists()  # shard 0 missing: no merge yet
    with pytest.raises(LskdError, match=r"--merge: shard\(s\) 0 of 2 are not finished"):
        distill_data.main(["--data", str(tiny_data / "bin"), "--teacher-path", str(tiny_teacher), "--out", str(out),
                           *common, "--num-shards", "2", "--merge"])
    distill_data.main(["--data", str(tiny_data / "bin"), "--teacher-path", str(tiny_teacher), "--out", str(out), "--cpu",
                       *common, "--num-shards", "2", "--shard-id", "0"])  # last shard: merges automatically
    m2 = json.loads((out / "manifest.json").read_text())
    same_output(one, out, "valid")
    assert m2["counts"] == {**m1["counts"], "generated_tokens": m2["counts"]["generated_tokens"]}
    assert sum(s["sources"] for s in m2["shards"]) == 40 and min(s["sources"] for s in m2["shards"]) > 0
    assert not (out / "shards").exists()  # merged: the shards are gone


def test_interrupted_shard_is_redone_and_finished_ones_skipped(tiny_data, tiny_teacher, valid_one_shard, tmp_path, monkeypatch):
    one, _ = valid_one_shard
    out = tmp_path / "three"
    argv = ["--data", str(tiny_data / "bin"), "--teacher-path", str(tiny_teacher), "--out", str(out), "--cpu",
            "--split", "valid", "--beam", "3", "--max-tokens", "200", "--batch-size", "4", "--num-shards", "3"]
    real = distill_decode.FairseqEngine.decode_batches
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        for i, batch in enumerate(real(*args, **kwargs)):
            if len(calls) == 2 and i == 1:  # in the middle of shard 1
                raise KeyboardInterrupt
            yield batch

    monkeypatch.setattr(distill_decode.FairseqEngine, "decode_batches", interrupted)
    with pytest.raises(KeyboardInterrupt):
        distill_data.main(argv)
    names = sorted(p.name for p in (out / "shards").iterdir())
    assert names == ["valid-00000-of-00003"]  # shard 1 left no directory, no temporary
    assert not (out / "manifest.json").exists()

    done = []
    real_shard = distill_data.decode_shard
    monkeypatch.setattr(distill_decode.FairseqEngine, "decode_batches", real)
    monkeypatch.setattr(distill_data, "decode_shard", lambda *a, **k: done.append(a[5]) or real_shard(*a, **k))
    distill_data.main(argv)
    assert done == [1, 2]
    same_output(one, out, "valid")
    done.clear()
    distill_data.main(argv)  # complete: nothing decoded again
    assert done == []


def test_sampling_nbest_in_corpus_order(tiny_data, tiny_teacher, tmp_path):
    m = distill(tiny_data / "bin", tiny_teacher, tmp_path / "s", "--split", "valid", "--sampling", "--temperature", "0.7",
                "--nbest", "2", "--max-tokens", "200", "--seed", "3")
    c = m["counts"]
    assert c["sources"] == 40 and c["hypotheses"] == 80 and c["kept"] + sum(c["filtered"].values()) == 80
    assert m["settings"]["decoding"]["beam"] == 2 and m["settings"]["decoding"]["temperature"] == 0.7
    rows = [tuple(map(int, line.split("\t")[:2])) for line in (tmp_path / "s" / "text" / "valid.ids").read_text().splitlines()]
    assert rows == sorted(rows) and len(rows) == c["kept"]
    assert len(read_bin(tmp_path / "s" / "valid.src-tgt.tgt")) == c["kept"]


def test_detokenised_text_is_fairseq_sentencepiece_post_process():
    from fairseq.data import Dictionary

    d = Dictionary()
    for s in ("\u2581Hel", "lo", "\u2581world"):
        d.add_symbol(s)
    assert distill_decode.detok_mode(argparse.Namespace(post_process="auto"), d) == "sentencepiece"
    from fairseq.data.data_utils import post_process
    assert post_process("\u2581Hel lo \u2581world", "sentencepiece") == "Hello world"


# ------------------------------------------------------------------------------------------ bad input
def bad_data(tiny_data, tmp_path, drop_train=False, extra_symbol=False):
    data = tmp_path / "bin"
    shutil.copytree(tiny_data / "bin", data)
    if drop_train:
        for p in data.glob("train.*"):
            p.unlink()
    if extra_symbol:
        with open(data / "dict.tgt.txt", "a") as f:
            f.write("tXX 1\n")
    return data


def refuses(argv, tmp_path, exc=LskdError):
    with pytest.raises(exc) as info:
        distill_data.main(argv)
    assert not (tmp_path / "out").exists()  # nothing written
    return str(info.value)


def test_refuses_teacher_with_other_dictionaries(tiny_data, tiny_teacher, tmp_path):
    data = bad_data(tiny_data, tmp_path, extra_symbol=True)
    msg = refuses(["--data", str(data), "--teacher-path", str(tiny_teacher), "--out", str(tmp_path / "out"), "--cpu"],
                  tmp_path)
    assert f"--teacher-path {tiny_teacher}: teacher target dictionary" in msg and "differs from the task's" in msg


@pytest.mark.parametrize("extra, message", [
    (["--sampling", "--temperature", "0"], "--temperature must be > 0, got 0.0"),
    (["--sampling", "--temperature", "-1"], "--temperature must be > 0, got -1.0"),
    (["--sampling", "--beam", "4"], "--sampling with --beam 4 and no --nbest is contradictory"),
    (["--nbest", "6"], "--nbest 6 is larger than --beam 5"),
    (["--num-shards", "2", "--shard-id", "2"], "--shard-id must be in [0, 1] for --num-shards 2, got 2"),
    (["--split", "nosuch"], "no 'nosuch' split"),
])
def test_refuses_bad_options(tiny_data, tiny_teacher, tmp_path, extra, message):
    msg = refuses(["--data", str(tiny_data / "bin"), "--teacher-path", str(tiny_teacher), "--out", str(tmp_path / "out"),
                   "--cpu", *extra], tmp_path)
    assert message in msg


def test_cli_refuses_data_without_train_split_in_one_line(tiny_data, tiny_teacher, tmp_path):
    data = bad_data(tiny_data, tmp_path, drop_train=True)
    proc = run([tool("lskd"), "distill-data", "--data", data, "--teacher-path", tiny_teacher, "--out", tmp_path / "out",
                "--cpu"], check=False)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"lskd distill-data: error: --data \S+: no 'train' split \(expected train\.src-tgt\.src\.bin.*", last)
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def test_refuses_out_with_other_settings(tiny_data, tiny_teacher, valid_one_shard, tmp_path):
    one, _ = valid_one_shard
    out = tmp_path / "copy"
    shutil.copytree(one, out)
    with pytest.raises(LskdError, match=r"was made with other settings \(decoding\.beam: 3 there, 4 now\)"):
        distill_data.main(["--data", str(tiny_data / "bin"), "--teacher-path", str(tiny_teacher), "--out", str(out),
                           "--split", "valid", "--beam", "4", "--cpu"])


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        distill_data.main(["--help"])
    text = capsys.readouterr().out
    for opt in ("--data", "--teacher-path", "--out", "--split", "--beam", "--lenpen", "--sampling", "--temperature",
                "--nbest", "--max-len-a", "--max-len-b", "--max-ratio", "--num-shards", "--shard-id", "--merge",
                "--max-tokens", "--cpu", "--seed", "--force", "--post-process", "--engine", "--compute-type"):
        assert opt in text


@pytest.mark.parametrize("n_out, n_in, limit, rule, reason", [
    (0, 5, 200, distill_decode.FilterRule(), "empty"),
    (0, 5, 200, distill_decode.FilterRule(drop_empty=False, max_ratio=0), None),
    (9, 5, 9, distill_decode.FilterRule(), "max_len"),       # reached the length limit
    (8, 5, 9, distill_decode.FilterRule(), None),
    (9, 5, 9, distill_decode.FilterRule(drop_max_len=False), None),
    (16, 5, 200, distill_decode.FilterRule(max_ratio=3.0), "ratio"),   # 16 > 3 * 5
    (15, 5, 200, distill_decode.FilterRule(max_ratio=3.0), None),      # 15 = 3 * 5 is kept
    (2, 7, 200, distill_decode.FilterRule(max_ratio=3.0), "ratio"),    # the other way: 7 > 3 * 2
    (1, 0, 200, distill_decode.FilterRule(max_ratio=1.0), None),       # an empty source counts as length 1
    (100, 1, 200, distill_decode.FilterRule(max_ratio=0), None),       # 0: no ratio filter
])
def test_filter_rule(n_out, n_in, limit, rule, reason):
    assert rule.reason(n_out, n_in, limit) == reason


def test_counts_add_and_add_up():
    a = distill_decode.Counts(sources=2, hypotheses=4, kept=3, filtered={"empty": 1}, generated_tokens=10)
    b = distill_decode.Counts(sources=1, hypotheses=2, kept=0, filtered={"ratio": 1, "too_long": 1}, target_tokens=5)
    c = a + b
    assert (c.sources, c.hypotheses, c.kept, c.generated_tokens, c.target_tokens) == (3, 6, 3, 10, 5)
    assert c.filtered == {"too_long": 1, "empty": 1, "max_len": 0, "ratio": 1, "not_selected": 0} and c.add_up()
    assert not distill_decode.Counts(hypotheses=1).add_up()
    assert distill_decode.Counts(**c.as_dict()) == c


def test_options_are_validated_into_a_frozen_object(tmp_path):
    opts = distill_data.validate(parse(distill_data.DistillOptions, ["--data", "d", "--teacher-path", "t.pt", "--out",
                                                                     str(tmp_path), "--sampling", "--nbest", "3"], "p", "d"))
    assert (opts.beam, opts.nbest, opts.sampling) == (3, 3, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.beam = 5


def test_select_by_keeps_the_hypothesis_closest_to_the_reference(tiny_data, tiny_teacher, tmp_path):
    """--select-by chrf with --nbest 3: per source the one of the 3 best whose sentence chrF against the reference is
    highest (first on ties), as sacrebleu scores them; the others are counted as not selected."""
    import sacrebleu

    common = ["--split", "valid", "--beam", "3", "--nbest", "3", "--max-ratio", "0", "--keep-empty", "--keep-max-len"]
    nbest = distill(tiny_data / "bin", tiny_teacher, tmp_path / "all", *common)
    picked = distill(tiny_data / "bin", tiny_teacher, tmp_path / "sel", *common, "--select-by", "chrf")
    assert picked["counts"]["kept"] == 40 and picked["counts"]["filtered"]["not_selected"] == 80
    hyps = {}
    for ids, text in zip((tmp_path / "all" / "text" / "valid.ids").read_text().splitlines(),
                         (tmp_path / "all" / "text" / "valid.detok.tgt").read_text().splitlines()):
        hyps.setdefault(int(ids.split("\t")[0]), []).append(text)
    refs = (tiny_data / "raw" / "valid.tgt").read_text().splitlines()
    expected = [max(hyps[i], key=lambda h: (sacrebleu.sentence_chrf(h, [refs[i]]).score, -hyps[i].index(h)))
                for i in sorted(hyps)]
    assert (tmp_path / "sel" / "text" / "valid.detok.tgt").read_text().splitlines() == expected
    assert nbest["counts"]["kept"] == 120


def test_select_by_needs_a_reference_and_an_nbest(tiny_data, tiny_teacher, tmp_path):
    (tmp_path / "mono.txt").write_text("s1 s2\n")
    for extra, message in ((["--nbest", "1"], "--select-by chrf chooses among the n-best: give --nbest N > 1"),
                           (["--beam", "3", "--nbest", "2", "--source-text", tmp_path / "mono.txt"],
                            "--select-by compares hypotheses with the reference; --source-text has none")):
        with pytest.raises(LskdError, match=re.escape(message)):
            distill(tiny_data / "bin", tiny_teacher, tmp_path / "x", "--split", "valid", "--select-by", "chrf", *extra)


def test_source_text_must_exist(tiny_data, tiny_teacher, tmp_path):
    with pytest.raises(LskdError, match=re.escape(f"--source-text {tmp_path / 'none.txt'}: no such file")):
        distill(tiny_data / "bin", tiny_teacher, tmp_path / "x", "--source-text", tmp_path / "none.txt")
    assert not (tmp_path / "x").exists()
