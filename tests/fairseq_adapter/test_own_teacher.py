"""Issue 22: a teacher lskd did not train (fairseq's released layout, Moses + BPE or sentencepiece, its training
data gone) on a corpus lskd did not prepare: data_prep --teacher-dir -> lskd cache -> a smaller word-level
student -> distill-data --source-text -> a sequence-level student -> lskd score in the data's convention; and
the inputs users get wrong."""

import argparse
import json
import shutil
import sys

import pytest
import torch

from foreign_teacher import corpus, write_text
from helpers import PLUGINS, REPO, TINY_TRAIN, build_cache, require_fairseq, run, tool

require_fairseq()
from fairseq import utils  # noqa: E402

utils.import_user_module(argparse.Namespace(user_dir=PLUGINS))
from lskd.errors import LskdError  # noqa: E402

SMALL = ["--encoder-embed-dim", "16", "--decoder-embed-dim", "16", "--encoder-ffn-embed-dim", "32",
         "--decoder-ffn-embed-dim", "32"]  # after TINY_TRAIN's 32-dim arch: a smaller student


@pytest.fixture
def teacher(foreign_teacher):
    return foreign_teacher


def prepare(root, teacher_dir, *extra, src_lang="de"):
    src, tgt = write_text(root / "user", "corpus", corpus(240, 11))
    return run([sys.executable, "-m", "data_prep.parallel", "--src", src, "--tgt", tgt, "--src-lang", src_lang,
                "--tgt-lang", "en", "--valid-size", "30", "--test-size", "30", "--out", root / "data",
                "--teacher-dir", teacher_dir, *extra], check=False)


def student(data, save, *criterion):
    run([tool("fairseq-train"), data, *TINY_TRAIN, *SMALL, "--save-dir", save, "--max-epoch", "2",
         "--criterion", "ls_kd", *criterion])
    return save / "checkpoint_last.pt"


def scored(data_root, checkpoint, tmp_path, post_process):
    gen = run([tool("fairseq-generate"), data_root / "bin", "--user-dir", PLUGINS, "--path", checkpoint,
               "--gen-subset", "test", "--beam", "2", "--cpu", "--required-batch-size-multiple", "1",
               "--batch-size", "16", "--post-process", post_process])
    (tmp_path / "gen.out").write_text(gen.stdout)
    run([tool("lskd"), "score", "--generate", tmp_path / "gen.out", "--ref", data_root / "raw" / "test.en",
         "--out", tmp_path / "score.json"])
    return json.loads((tmp_path / "score.json").read_text())


@pytest.mark.slow
def test_released_teacher_to_word_and_sequence_level_students(teacher, tmp_path):
    assert prepare(tmp_path, teacher).returncode == 0
    data = tmp_path / "data"
    manifest = json.loads((data / "manifest.json").read_text())
    bpe = (teacher / "bpecodes").is_file()
    assert manifest["post_process"] == ("subword_nmt" if bpe else "sentencepiece")
    assert manifest["preprocessing"]["subword"] == ("bpe" if bpe else "sentencepiece")
    assert manifest["scoring"].get("detokenize") == ("moses" if bpe else None)
    for lang in ("de", "en"):  # exactly the teacher's dictionaries
        assert (data / "bin" / f"dict.{lang}.txt").read_bytes() == (teacher / f"dict.{lang}.txt").read_bytes()
    assert manifest["unknown_pieces"]["train.de"]["unknown"] == 0  # same word forms as the teacher's data
    # word level: the teacher folder's top-K cache -> a smaller student
    build_cache(data / "bin", teacher, tmp_path / "cache", ["train", "valid"], 4, cpu=True)
    word = student(data / "bin", tmp_path / "word", "--kd-lambda", "0.5", "--kd-topk-cache", tmp_path / "cache")
    assert sum(p.numel() for p in torch.load(word, weights_only=False)["model"].values()) < \
        sum(p.numel() for p in torch.load(teacher / "model.pt", weights_only=False)["model"].values())
    # sequence level from monolingual source text, then a student on it, scored in the data's convention
    mono, _ = write_text(tmp_path / "user", "mono", corpus(60, 12))
    run([tool("lskd"), "distill-data", "--data", data / "bin", "--teacher-path", teacher, "--out", tmp_path / "seq",
         "--source-text", mono, "--beam", "2", "--with-original", "--cpu"])
    m = json.loads((tmp_path / "seq" / "manifest.json").read_text())
    assert m["counts"]["sources"] == 60 and m["counts"]["original"] == manifest["pairs"]["train"] == 180
    assert m["settings"]["source_text"]["path"] == str(mono.resolve())
    seq = student(tmp_path / "seq", tmp_path / "seqst", "--kd-lambda", "0", "--label-smoothing", "0.1")
    score = scored(data, seq, tmp_path, manifest["post_process"])
    assert score["convention"] == "detok" and score["n_sentences"] == 30 and 0 <= score["bleu"] <= 100
    assert ("Moses-detokenised" in score["conventions"]["bleu"]) == bpe
    # a sequence-level student with a vocabulary of its own: its own sentencepiece model on the distilled text
    text, raw = tmp_path / "seq" / "text", data / "raw"
    detok = (text / "train.detok.en").read_text(encoding="utf-8").splitlines()
    assert detok and all("@@" not in line and "\u2581" not in line for line in detok)
    run([sys.executable, "-m", "data_prep.parallel", "--src", text / "train.detok.de", "--tgt", text / "train.detok.en",
         "--src-lang", "de", "--tgt-lang", "en", "--valid-src", raw / "valid.de", "--valid-tgt", raw / "valid.en",
         "--test-src", raw / "test.de", "--test-tgt", raw / "test.en", "--vocab-size", "50", "--out", tmp_path / "own"])
    own = student(tmp_path / "own" / "bin", tmp_path / "ownst", "--kd-lambda", "0", "--label-smoothing", "0.1")
    score = scored(tmp_path / "own", own, tmp_path, "sentencepiece")
    assert score["n_sentences"] == 30 and "Moses" not in score["conventions"]["bleu"]


def test_teacher_folder_refusals(teacher, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(teacher, bad)
    subword = bad / ("bpecodes" if (bad / "bpecodes").is_file() else "spm.model")
    subword.unlink()
    proc = prepare(tmp_path / "a", bad)
    assert proc.returncode != 0 and "no bpecodes and no sentencepiece *.model" in proc.stderr.strip().splitlines()[-1]
    shutil.copy(teacher / subword.name, subword)
    (bad / "dict.en.txt").unlink()
    proc = prepare(tmp_path / "b", bad)
    assert "no dict.en.txt for de-en" in proc.stderr.strip().splitlines()[-1]
    proc = prepare(tmp_path / "c", teacher, src_lang="fr")
    last = proc.stderr.strip().splitlines()[-1]
    assert "no dict.fr.txt for fr-en (it has dict.de.txt, dict.en.txt: another language pair?)" in last


def test_a_teacher_with_other_dictionaries_is_refused(teacher, tmp_path):
    assert prepare(tmp_path, teacher).returncode == 0
    other = tmp_path / "other"
    shutil.copytree(teacher, other)
    with open(other / "dict.en.txt", "a", encoding="utf-8") as f:
        f.write("zzzz 1\n")
    with pytest.raises(LskdError, match=r"teacher target dictionary \(.*dict\.en\.txt, \d+ symbols\) differs from the "
                                        r"task's"):
        build_cache(tmp_path / "data" / "bin", other, tmp_path / "cache", ["valid"], 4, cpu=True)


class NotAllowed:
    """A class a weights-only load refuses (what a checkpoint of other code may pickle)."""


def test_older_checkpoint_layouts(tiny_data, tiny_teacher, tmp_path):
    """fairseq <= 0.10's `args` layout loads for teaching; an unknown pickled class is refused naming the class
    and --trust-checkpoint, which then loads it."""
    from fairseq import options

    args = options.parse_args_and_arch(options.get_training_parser(), [
        str(tiny_data / "bin"), *map(str, TINY_TRAIN), "--criterion", "ls_kd", "--kd-lambda", "0"])
    state = torch.load(tiny_teacher, weights_only=False)
    state["args"], state["cfg"] = args, None
    torch.save(state, tmp_path / "old.pt")
    caches = build_cache(tiny_data / "bin", tmp_path / "old.pt", tmp_path / "c_old", ["valid"], 4, cpu=True)
    reference = build_cache(tiny_data / "bin", tiny_teacher, tmp_path / "c_new", ["valid"], 4, cpu=True)
    assert (caches["valid"] / "values.npy").read_bytes() == (reference["valid"] / "values.npy").read_bytes()
    state = torch.load(tiny_teacher, weights_only=False)
    state["extra"] = NotAllowed()
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(LskdError, match=r"odd\.pt: the checkpoint needs the class \S*NotAllowed, which a weights-only "
                                        r"load refuses; if you trust the file, add --trust-checkpoint"):
        build_cache(tiny_data / "bin", tmp_path / "odd.pt", tmp_path / "c_odd", ["valid"], 4, cpu=True)
    build_cache(tiny_data / "bin", tmp_path / "odd.pt", tmp_path / "c_odd", ["valid"], 4, cpu=True, trust_checkpoint=True)
    assert (tmp_path / "c_odd" / "valid" / "values.npy").read_bytes() == (reference["valid"] / "values.npy").read_bytes()


def test_word_level_kd_with_another_student_dictionary_says_why(teacher, tiny_data, tmp_path):
    src, tgt = write_text(tmp_path / "user", "corpus", corpus(240, 11))
    run([sys.executable, "-m", "data_prep.parallel", "--src", src, "--tgt", tgt, "--src-lang", "de", "--tgt-lang", "en",
         "--valid-size", "30", "--test-size", "30", "--vocab-size", "50", "--out", tmp_path / "own"])  # its own vocabulary
    proc = run([tool("fairseq-train"), tmp_path / "own" / "bin", *TINY_TRAIN, "--save-dir", tmp_path / "s",
                "--max-update", "1", "--criterion", "ls_kd", "--kd-lambda", "0.5", "--teacher-path", teacher], check=False)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode != 0 and "differs from the task's" in last and "word-level KD" in last, last
    assert "lskd distill-data" in last
    wrong_pair = run([tool("fairseq-train"), tiny_data / "bin", *TINY_TRAIN, "--save-dir", tmp_path / "t",
                      "--max-update", "1", "--criterion", "ls_kd", "--kd-lambda", "0.5", "--teacher-path", teacher],
                     check=False)
    assert "no dict.src.txt" in wrong_pair.stderr and "it has dict.de.txt, dict.en.txt: a teacher of another " \
        "language pair?" in wrong_pair.stderr


def test_recipe_refuses_student_arch_args_fairseq_rejects(tmp_path):
    config = tmp_path / "config.sh"
    config.write_text(f'OUT={tmp_path / "out"}\nsource {REPO}/recipes/bible/config.demo.sh\n'
                      'STUDENT_ARCH_ARGS="--arch transformer --encoder-layerz 1"\n')
    proc = run(["bash", "recipes/bible/run_all.sh", "--config", config], check=False, cwd=REPO)
    assert proc.returncode != 0 and "unrecognized arguments: --encoder-layerz 1" in proc.stderr
    assert "STUDENT_ARCH_ARGS" in proc.stderr.strip().splitlines()[-1] and not (tmp_path / "out" / "logs").exists()


@pytest.mark.slow
def test_recipe_grid_from_data_bin_and_teacher_paths_with_smaller_students(teacher, tmp_path):
    """The NMT grid started from what the user has: their prepared data (DATA_BIN), their teacher folder
    (TEACHER_PATHS), students of another architecture (STUDENT_ARCH_ARGS); references and post-processing
    from the data's manifest."""
    assert prepare(tmp_path, teacher).returncode == 0
    small = " ".join(["--arch", "transformer", "--encoder-layers", "1", "--decoder-layers", "1", *SMALL,
                      "--encoder-attention-heads", "2", "--decoder-attention-heads", "2"])
    config = tmp_path / "config.sh"
    config.write_text(f'OUT={tmp_path / "grid"}\nSRC=de\nTGT=en\nDATA_BIN={tmp_path / "data" / "bin"}\n'
                      f'TEACHER_PATHS="a0_s1={teacher}"\nTEACHER_ALPHAS=0\nTEMPERATURES=1\nTEACHER_RELEASES=\n'
                      f'STUDENT_UPDATES=5\nDECODE_ENGINE=fairseq\nJOBS=1\nSTUDENT_ARCH_ARGS="{small}"\n'
                      f'source {REPO}/recipes/bible/config.demo.sh\n')
    run(["bash", "recipes/bible/run_all.sh", "--config", config], cwd=REPO)
    grid = tmp_path / "grid"
    assert not (grid / "data").exists() and (grid / "results_bleu.md").is_file()
    for run_dir in (grid / "teachers" / "a0_s1", grid / "students" / "a0_T1_s1"):
        score = json.loads((run_dir / "score.json").read_text())
        assert score["n_sentences"] == 30 and score["data_manifest"] == str((tmp_path / "data" / "manifest.json").resolve())
    student = torch.load(grid / "students" / "a0_T1_s1" / "checkpoint_best.pt", weights_only=False)
    assert student["cfg"]["model"].encoder_embed_dim == 16
    assert (grid / "teachers" / "a0_s1" / "teacher_path").read_text().strip() == str(teacher / "model.pt")
