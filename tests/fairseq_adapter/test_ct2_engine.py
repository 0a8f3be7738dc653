"""The CTranslate2 engine (fairseq_plugins/ct2_model.py, ct2_search.py, ct2_generate.py): same beam search as fairseq on the tiny teacher, sampling
from the same distribution, the engine switch and manifest of distill-data, the cache, fallbacks and refusals,
`lskd ct2-generate` in fairseq-generate's format."""

import argparse
import collections
import json
import sys

import pytest
import torch

from helpers import PLUGINS, distill, require_fairseq, run, tool

require_fairseq()
from fairseq import utils  # noqa: E402

utils.import_user_module(argparse.Namespace(user_dir=PLUGINS))
from fairseq_plugins import ct2_model, ct2_search, distill_data  # noqa: E402
from lskd.errors import LskdError  # noqa: E402


@pytest.fixture(autouse=True)
def cache(tmp_path_factory, monkeypatch):
    """Converted models go to a per-session cache, never to the user's ~/.cache."""
    root = tmp_path_factory.getbasetemp() / "lskd_cache"
    monkeypatch.setenv("LSKD_CACHE", str(root))
    return root / "ct2"


def rows(out, split):
    """(sample id, rank, hypothesis, score) per kept pair."""
    ids = [line.split("\t") for line in (out / "text" / f"{split}.ids").read_text().splitlines()]
    hyps = (out / "text" / f"{split}.tgt").read_text().splitlines()
    return [(int(i), int(r), h, float(s)) for (i, r, s), h in zip(ids, hyps)]


@pytest.mark.parametrize("split, extra", [
    ("test", ["--beam", "5"]),  # every test sentence, the default length limit (200)
    # a limit most hypotheses reach, per sentence (a > 0), n-best 2: fairseq's forced </s> at the limit
    ("train", ["--beam", "4", "--nbest", "2", "--lenpen", "0.8", "--max-len-a", "0.5", "--max-len-b", "1",
               "--max-ratio", "0", "--keep-max-len"]),
    # greedy, the same limits: one search to the longest limit, each hypothesis cut to its own (Decoder.decode_words)
    ("train", ["--beam", "1", "--max-len-a", "0.5", "--max-len-b", "1", "--max-ratio", "0", "--keep-max-len"]),
])
def test_beam_search_equals_fairseq(tiny_data, tiny_teacher, tmp_path, split, extra):
    m_fs = distill(tiny_data / "bin", tiny_teacher, tmp_path / "fs", "--split", split, *extra)
    m_ct = distill(tiny_data / "bin", tiny_teacher, tmp_path / "ct", "--split", split, "--engine", "ctranslate2", *extra)
    a, b = rows(tmp_path / "fs", split), rows(tmp_path / "ct", split)
    best_a, best_b = ({i: (h, s) for i, r, h, s in rs if r == 0} for rs in (a, b))
    assert sorted(best_a) == sorted(best_b) and len(best_a) == m_fs["counts"]["sources"]
    differ = [i for i in best_a if best_a[i][0] != best_b[i][0]]
    same = [i for i in best_a if best_a[i][0] == best_b[i][0]]
    # the same scores (base 2, length-normalised) up to float32 rounding
    assert [best_a[i][1] for i in same] == pytest.approx([best_b[i][1] for i in same], abs=1e-3)
    if "--keep-max-len" not in extra:
        assert differ == [] and m_fs["counts"]["filtered"] == m_ct["counts"]["filtered"]
    else:  # most sentences reach the limit: at most 1% differ, each where one engine's best reached it
        limits = {i: int(0.5 * (len(s.split()) + 1) + 1)
                  for i, s in enumerate((tiny_data / "raw" / "train.src").read_text().splitlines())}
        assert sum(len(best_b[i][0].split()) == limits[i] for i in best_b) > 100
        assert len(differ) <= 4, [(best_a[i], best_b[i]) for i in differ]
        assert all(limits[i] in (len(best_a[i][0].split()), len(best_b[i][0].split())) for i in differ)
    assert (tmp_path / "fs" / f"{split}.src-tgt.src.bin").read_bytes() == (tmp_path / "ct" / f"{split}.src-tgt.src.bin").read_bytes()


def token_counts(out, split):
    c = collections.Counter()
    for line in (out / "text" / f"{split}.tgt").read_text().splitlines():
        c.update(line.split() + ["</s>"])  # </s> once per hypothesis: the length distribution too
    return c


@pytest.mark.slow
def test_sampling_matches_fairseq_token_frequencies(tiny_data, tiny_teacher, tmp_path):
    """1,600 samples per engine (400 sources x 4) at T = 1.5, fixed seeds: a chi-square test of homogeneity of the
    token frequencies must not reject (p > 0.001), and the same test does reject fairseq at T = 0.7 (p < 1e-6),
    so it can tell distributions apart."""
    from scipy.stats import chi2_contingency

    common = ["--split", "train", "--sampling", "--nbest", "4", "--max-ratio", "0", "--keep-max-len", "--seed", "7"]
    distill(tiny_data / "bin", tiny_teacher, tmp_path / "fs", *common, "--temperature", "1.5")
    m = distill(tiny_data / "bin", tiny_teacher, tmp_path / "ct", *common, "--temperature", "1.5", "--engine", "ctranslate2")
    distill(tiny_data / "bin", tiny_teacher, tmp_path / "cold", *common, "--temperature", "0.7")
    assert m["settings"]["decoding"]["engine"] == "ctranslate2" and m["counts"]["kept"] == 1600
    fs, ct, cold = (token_counts(tmp_path / d, "train") for d in ("fs", "ct", "cold"))
    vocab = sorted(set(fs) | set(ct) | set(cold))

    def p_value(x, y):
        table = [[x[t] for t in vocab if x[t] + y[t]], [y[t] for t in vocab if x[t] + y[t]]]
        return chi2_contingency(table)[1]

    tv = 0.5 * sum(abs(fs[t] / sum(fs.values()) - ct[t] / sum(ct.values())) for t in vocab)
    assert p_value(fs, ct) > 1e-3, (tv, fs, ct)
    assert tv < 0.05
    assert p_value(fs, cold) < 1e-6
    assert (tmp_path / "fs" / "text" / "train.tgt").read_text() != (tmp_path / "ct" / "text" / "train.tgt").read_text()


@pytest.mark.parametrize("engine", ["fairseq", "ctranslate2"])
def test_sampling_is_reproducible_per_seed(tiny_data, tiny_teacher, tmp_path, engine):
    """The same --seed (and --num-shards) gives the same samples, another seed others, with either engine (runs
    in one process: the dataset's random tie-breaking of lengths and CTranslate2's per-worker generators)."""
    common = ["--split", "valid", "--sampling", "--nbest", "2", "--temperature", "1.5", "--max-ratio", "0",
              "--keep-max-len", "--engine", engine, "--max-tokens", "100"]  # several batches: both shards get some
    for run_dir, seed, shards in (("a", 3, 1), ("b", 3, 1), ("c", 4, 1), ("d", 3, 2), ("e", 3, 2)):
        distill(tiny_data / "bin", tiny_teacher, tmp_path / run_dir, *common, "--seed", seed, "--num-shards", shards)
    text = {d: (tmp_path / d / "text" / "valid.tgt").read_text() for d in "abcde"}
    assert text["a"] == text["b"] != text["c"]
    assert text["d"] == text["e"] != text["a"]  # shard 1 is seeded 3 + 1


def test_manifest_records_engine_and_cache_is_reused(tiny_data, tiny_teacher, tmp_path, cache, capsys):
    m = distill(tiny_data / "bin", tiny_teacher, tmp_path / "a", "--split", "valid", "--engine", "ctranslate2",
                "--beam", "2")
    import ctranslate2
    engine = m["engine"]
    assert engine["name"] == "ctranslate2" and engine["version"] == ctranslate2.__version__ == "4.8.5"
    assert engine["compute_type"] == "float32" and engine["device"] == "cpu"
    assert m["settings"]["decoding"]["engine"] == "ctranslate2" and m["settings"]["decoding"]["compute_type"] == "float32"
    # the converted model lives in the cache (keyed by the checkpoint's sha256), nothing beside the teacher
    model = engine["model"]
    assert model.startswith(str(cache)) and (cache / model.split("/")[-1] / "model.bin").is_file()
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(".")) == []  # no temporary left
    assert sorted(p.name for p in tiny_teacher.parent.iterdir() if "ct2" in p.name or p.is_dir()) == []
    capsys.readouterr()
    m2 = distill(tiny_data / "bin", tiny_teacher, tmp_path / "b", "--split", "valid", "--engine", "ctranslate2",
                 "--beam", "2", "--compute-type", "int8")
    assert "converted" not in capsys.readouterr().err  # made once
    assert m2["engine"]["model"] == model and m2["engine"]["compute_type"] == "int8"
    # resuming with the other engine is refused: its outputs are not guaranteed equal
    with pytest.raises(LskdError, match=r"other settings \(decoding\.compute_type: 'float32' there, 'int8' now\)"):
        distill_data.main(["--data", str(tiny_data / "bin"), "--teacher-path", str(tiny_teacher), "--out",
                           str(tmp_path / "a"), "--cpu", "--split", "valid", "--engine", "ctranslate2", "--beam", "2",
                           "--compute-type", "int8"])
    with pytest.raises(LskdError, match=r"other settings \(decoding\.engine: 'ctranslate2' there, 'fairseq' now\)"):
        distill_data.main(["--data", str(tiny_data / "bin"), "--teacher-path", str(tiny_teacher), "--out",
                           str(tmp_path / "a"), "--cpu", "--split", "valid", "--beam", "2"])


def test_conversion_is_atomic(tiny_data, tiny_teacher, tmp_path, monkeypatch):
    """A conversion that dies leaves no model directory (and no temporary) in the cache; the next one succeeds."""
    monkeypatch.setenv("LSKD_CACHE", str(tmp_path / "c"))
    from ctranslate2.converters import FairseqConverter

    def dies(self, output_dir, **kwargs):
        (tmp_path / "started").touch()
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(FairseqConverter, "convert", dies)
        with pytest.raises(KeyboardInterrupt):
            ct2_model.convert(str(tiny_teacher), str(tiny_data / "bin"), "src", "tgt")
    assert (tmp_path / "started").exists() and list((tmp_path / "c" / "ct2").iterdir()) == []
    model = ct2_model.convert(str(tiny_teacher), str(tiny_data / "bin"), "src", "tgt")
    assert [p.name for p in (tmp_path / "c" / "ct2").iterdir()] == [model.name]


def test_ensemble_falls_back_to_fairseq_with_a_notice(tiny_data, tiny_teacher, tmp_path, capsys):
    m = distill(tiny_data / "bin", f"{tiny_teacher}:{tiny_teacher}", tmp_path / "o", "--split", "valid",
                "--engine", "ctranslate2", "--beam", "2")
    err = capsys.readouterr().err
    assert "notice: --engine ctranslate2: the teacher is an ensemble; decoding with fairseq" in err
    assert m["engine"]["name"] == "fairseq" and m["settings"]["decoding"]["engine"] == "fairseq"


@pytest.fixture(scope="module")
def tanh_teacher(tiny_teacher, tmp_path_factory):
    """The tiny teacher relabelled with --activation-fn tanh: fairseq runs it, CTranslate2's converter refuses it."""
    state = torch.load(tiny_teacher, weights_only=True)
    state["cfg"]["model"].activation_fn = "tanh"
    path = tmp_path_factory.mktemp("tanh") / "checkpoint.pt"
    torch.save(state, path)
    return path


def test_unconvertible_model_falls_back_or_is_refused(tiny_data, tanh_teacher, tmp_path, capsys):
    m = distill(tiny_data / "bin", tanh_teacher, tmp_path / "o", "--split", "valid", "--engine", "ctranslate2",
                "--beam", "2", "--max-len-b", "5")
    err = capsys.readouterr().err
    assert "notice: --engine ctranslate2: the teacher is not convertible (ValueError: " in err
    assert "Option --activation-fn tanh is not supported" in err and m["engine"]["name"] == "fairseq"
    proc = run([tool("lskd"), "ct2-generate", tiny_data / "bin", "--path", tanh_teacher, "--cpu"], check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"--path {tanh_teacher}: CTranslate2 cannot convert this model (ValueError: " in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("extra, message", [
    (["--engine", "ctranslate2", "--compute-type", "float16"],
     "--compute-type float16: not supported by CTranslate2 on this cpu (supported: "),
    (["--engine", "ctranslate2", "--compute-type", "int4"], "--compute-type int4: expected one of auto, float32"),
    (["--compute-type", "int8"], "--compute-type int8 needs --engine ctranslate2"),
])
def test_refuses_bad_engine_options(tiny_data, tiny_teacher, tmp_path, extra, message):
    with pytest.raises(LskdError) as info:
        distill_data.main(["--data", str(tiny_data / "bin"), "--teacher-path", str(tiny_teacher),
                           "--out", str(tmp_path / "out"), "--cpu", *extra])
    assert message in str(info.value) and not (tmp_path / "out").exists()


def test_ct2_generate_is_fairseq_generate_output(tiny_data, tiny_teacher, tmp_path):
    """Same D- lines as fairseq-generate (beam 5, every test sentence), readable by `lskd score`."""
    common = [tiny_data / "bin", "--user-dir", PLUGINS, "--path", tiny_teacher, "--gen-subset", "test", "--beam", "5",
              "--required-batch-size-multiple", "1", "--batch-size", "8", "--cpu"]
    fs = run([tool("fairseq-generate"), *common]).stdout
    ct = run([tool("lskd"), "ct2-generate", *common]).stdout
    lines = lambda out, p: sorted(tuple(l.split("\t")[::2]) for l in out.splitlines() if l.startswith(p))  # noqa: E731,E741
    for prefix in ("S-", "T-", "D-"):
        assert lines(fs, prefix) == lines(ct, prefix) and len(lines(ct, prefix)) == 30
    assert "with CTranslate2 4.8.5 float32 on cpu" in ct.splitlines()[-1]
    (tmp_path / "gen.out").write_text(ct)
    run([tool("lskd"), "score", "--generate", tmp_path / "gen.out", "--ref", tiny_data / "raw" / "test.tgt",
         "--out", tmp_path / "score.json"])
    assert json.loads((tmp_path / "score.json").read_text())["n_sentences"] == 30
    bad = run([tool("lskd"), "ct2-generate", *common, "--unkpen", "1"], check=False)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == (
        "lskd ct2-generate: error: --unkpen 1: not supported by the CTranslate2 engine (decode with fairseq-generate)")


def decoder(translator=None, src_dict=None, tgt_dict=None, **kw):
    """A beam-search Decoder (beam 3, lenpen 1, n-best 1 unless `kw` says otherwise)."""
    from fairseq.data import Dictionary

    search = ct2_search.SearchSettings(**{"beam": 3, **kw})
    return ct2_search.Decoder(translator, Dictionary() if src_dict is None else src_dict,
                              Dictionary() if tgt_dict is None else tgt_dict, search)


@pytest.mark.parametrize("hyps, at_last, nbest, expected", [
    # finished before the limit (nothing registered at the last step): nothing unseen
    ([([5, 2], -0.5), ([6, 2], -0.6), ([7, 2], -0.9)], [], 1, (False, False)),
    # best -0.3 above the bound -1.0 * (4 / 5): nothing unseen can beat it
    ([([5, 2], -0.3), ([1, 1, 1, 1, 2], -1.2), ([1, 1, 1, 2, 2], -1.3)], [-1.0, -1.1], 1, (False, False)),
    # ... but the second of an n-best of 2 (-1.2) is below it
    ([([5, 2], -0.3), ([1, 1, 1, 1, 2], -1.2), ([1, 1, 1, 2, 2], -1.3)], [-1.0, -1.1], 2, (True, True)),
    # all 3 live beams came back (cut, given </s>): only early finishers may be missing
    ([([1, 1, 1, 1, 2], -1.2), ([1, 1, 1, 3, 2], -1.3), ([1, 1, 3, 3, 2], -1.4)], [-0.7, -0.75, -0.8], 1, (True, False)),
    # 3 from the last step, one of them </s> (4 tokens): a live beam was pushed out
    ([([1, 1, 1, 1, 2], -1.2), ([1, 1, 1, 2], -1.3), ([1, 1, 3, 3, 2], -1.4)], [-0.7, -0.75, -0.8], 1, (True, True)),
    # a bound of exactly the best score: a tie may go either way, searched again
    ([([5, 2], -1.0), ([1, 1, 1, 1, 2], -1.2), ([1, 1, 1, 3, 2], -1.3)], [-1.0, -1.25], 1, (True, True)),
])
def test_what_the_search_to_the_limit_may_have_left_out(hyps, at_last, nbest, expected):
    """Golden cases of Decoder._unseen at limit 4 (beam 3, lenpen 1): (early finishers, live beams) to search for."""
    assert decoder(nbest=nbest)._unseen([list(h) for h in hyps], at_last, 4) == expected


def test_ranking_by_raw_score_keeps_fairseq_scores(tiny_data, tiny_teacher):
    """The search that ranks by the unnormalised score (to find early finishers) reports --lenpen's scores: a
    hypothesis both rankings return has the same score in both; and it returns the shortest ones."""
    from fairseq_plugins.teacher import TeacherSession

    session = TeacherSession.for_data(str(tiny_data / "bin"), str(tiny_teacher), ["train"], option="--teacher-path")
    task = session.task
    model_dir = ct2_model.convert(str(tiny_teacher), str(tiny_data / "bin"), task.cfg.source_lang,
                                   task.cfg.target_lang, quiet=True)
    dec = decoder(ct2_model.load(model_dir, "cpu", "float32", 1), task.source_dictionary, task.target_dictionary,
                  beam=4, lenpen=0.8)
    dataset = task.dataset("train")
    words = [dec._source_words(dataset.src[i]) for i in range(40)]
    batching = dec._batching(words)
    normal, _ = dec._collect(dec._submit(words, 12, batching), [12] * len(words), batching)
    raw, _ = dec._collect(dec._submit(words, 12, batching, ct2_search.UNNORMALISED), [12] * len(words), batching)
    both = 0
    for a, b in zip(normal, raw):
        scores = {tuple(ids): score for ids, score in a}
        for ids, score in b:
            if tuple(ids) in scores:
                assert score == pytest.approx(scores[tuple(ids)], abs=1e-4)
                both += 1
        assert min(len(ids) for ids, _ in b) <= min(len(ids) for ids, _ in a)
    assert both >= 40


FREED_BLOCK_RSS = """
import ctypes, sys
from fairseq_plugins import ct2_model
kept = ct2_model.keep_freed_memory() if sys.argv[1] == "keep" else None
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
page = 4096
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * page // 2 ** 20  # noqa: E731
before = rss()
block = libc.malloc(256 * 2 ** 20)
ctypes.memset(block, 1, 256 * 2 ** 20)
libc.free(ctypes.c_void_p(block))
print(kept, rss() - before)
"""


def test_keep_freed_memory_keeps_a_freed_block_for_reuse():
    """glibc's default hands a freed 256 MiB block back to the kernel (the next one page-faults in again); after
    keep_freed_memory() it stays in the process for the next allocation."""
    kept, default = (run([sys.executable, "-c", FREED_BLOCK_RSS, mode]).stdout.split() for mode in ("keep", "default"))
    assert kept[0] == "True" and int(kept[1]) >= 250
    assert default[0] == "None" and int(default[1]) < 16


def test_the_engine_takes_torch_threads_while_it_decodes(tiny_data, tiny_teacher, tmp_path, monkeypatch):
    """CTranslate2 gets torch's thread count and torch stays on one thread while it decodes (its OpenMP pool slows
    CTranslate2 down); torch has its threads back afterwards, also when the teacher falls back to fairseq."""
    seen = []
    load = ct2_model.load

    def spy(model_dir, device, compute_type, threads=None, parallel=True):
        seen.append((threads, torch.get_num_threads()))
        return load(model_dir, device, compute_type, threads, parallel)

    monkeypatch.setattr(ct2_model, "load", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        distill(tiny_data / "bin", tiny_teacher, tmp_path / "ct", "--split", "valid", "--engine", "ctranslate2")
        assert seen == [(2, 1)] and torch.get_num_threads() == 2
        ensemble = f"{tiny_teacher}:{tiny_teacher}"
        distill(tiny_data / "bin", ensemble, tmp_path / "fb", "--split", "valid", "--engine", "ctranslate2")
        assert seen == [(2, 1)] and torch.get_num_threads() == 2  # fell back to fairseq: no CTranslate2 loaded
    finally:
        torch.set_num_threads(before)
