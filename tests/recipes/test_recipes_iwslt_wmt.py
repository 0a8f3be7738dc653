"""The IWSLT14 and WMT14 recipes end to end, as a user runs them, on archives in the real layouts served
by file:// URLs: download -> prepare -> teacher -> top-K cache -> student -> decode -> score -> report,
no step skipped; only the model and the training length are made tiny (through the environment)."""

import json
import os
import re
import subprocess

import pytest

from helpers import BIN, REPO, require_fairseq
from corpus_fixtures import wmt_archives, write_iwslt_archive
from lskd.scoring import read_generate_output

require_fairseq()  # the recipes train with fairseq-train

TINY = {
    "ARCH_ARGS": "--arch transformer --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 32 "
                 "--decoder-embed-dim 32 --encoder-ffn-embed-dim 64 --decoder-ffn-embed-dim 64 "
                 "--encoder-attention-heads 2 --decoder-attention-heads 2",
    "OPT_ARGS": "--optimizer adam --lr 1e-2 --lr-scheduler inverse_sqrt --warmup-updates 10 --max-tokens 400 --cpu --num-workers 0 "
                "--required-batch-size-multiple 1",  # the fixtures' valid sets are smaller than 8
    "TEACHER_UPDATES": "15", "STUDENT_UPDATES": "8", "TEACHER_ALPHAS": "0.1", "TEMPERATURES": "2", "TOPK": "4",
    "BEAM": "1", "GEN_ARGS": "--batch-size 64 --cpu --max-len-a 1 --max-len-b 5", "CACHE_ARGS": "--cpu", "JOBS": "1",
}


def run_recipe(name, tmp_path, **env):
    full = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", PYTHONWARNINGS="ignore",
                LSKD_CACHE=str(tmp_path / "cache"), OUT=str(tmp_path / "grid"))
    full.update(TINY, **env)
    p = subprocess.run(["bash", str(REPO / "recipes" / name / "run_all.sh")], capture_output=True, text=True,
                       env=full, cwd=REPO)
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def _steps(stdout):
    return [line.split()[1] for line in stdout.splitlines() if line.startswith(("run:", "skip:"))]


@pytest.mark.slow
def test_iwslt14_recipe_from_download_to_report(tmp_path):
    archive = write_iwslt_archive(tmp_path / "srv" / "de-en.tgz")
    # a teacher trained long enough for a BLEU well above 0, so that comparing it with fairseq's means something;
    # decoded by fairseq-generate, whose own BLEU4 line is the number to match
    p = run_recipe("iwslt14_de_en", tmp_path, IWSLT_URL=archive.as_uri(), TEACHER_UPDATES="150", DECODE_ENGINE="fairseq")
    grid = tmp_path / "grid"
    assert _steps(p.stdout) == ["prepare", "teacher_a0.1_s1", "teacher_a0.1_s1_score", "cache_a0.1_s1",
                                "student_a0.1_T2_s1", "student_a0.1_T2_s1_score"]
    assert all(line.startswith("run:") for line in p.stdout.splitlines() if line.startswith(("run:", "skip:")))
    prep_log = (grid / "logs" / "prepare.log").read_text()
    assert f"downloading {archive.as_uri()}" in prep_log and "WARNING: iwslt14 de-en: into cleaning: 96 pairs" in prep_log
    refs = (grid / "data" / "raw" / "test.en").read_text(encoding="utf-8").splitlines()
    for run in (grid / "teachers" / "a0.1_s1", grid / "students" / "a0.1_T2_s1"):
        s = json.loads((run / "score.json").read_text())
        assert s["convention"] == "tokenized" and s["n_sentences"] == 15 and 0 <= s["bleu_tok"] <= 100
        assert "bleu" not in s and "chrf" not in s
        # the same number as fairseq-generate's own BLEU4 (its scorer, on its T lines = our references)
        gen = run / "generate-test.txt"
        assert [read_generate_output(gen, "T")[i] for i in range(len(refs))] == refs
        bleu4, precisions = re.search(r"BLEU4 = ([0-9.]+), ([0-9./]+) ", gen.read_text(encoding="utf-8")).groups()
        assert s["bleu_tok"] == pytest.approx(float(bleu4), abs=0.006)
        if run.parent.name == "teachers":
            assert s["bleu_tok"] > 10 and f"BLEU = {bleu4} {precisions} " in s["bleu_tok_detail"]
    # the table is tokenised BLEU, and says so; no table claims detokenised BLEU
    md = (grid / "results_bleu_tok.md").read_text()
    assert md.startswith("### grid: de-en, test bleu_tok (teacher LS alpha x student KD temperature) — bleu_tok: "
                         "tokenised BLEU on the lowercased Moses-tokenised text")
    assert "| T=2 |" in md and md in p.stdout
    assert not (grid / "results_bleu.md").exists() and (grid / "results_bleu_tok.png").is_file()


@pytest.mark.slow
def test_wmt14_recipe_from_download_to_report(tmp_path):
    srv = wmt_archives(tmp_path / "srv", n=60)
    p = run_recipe("wmt_en_de", tmp_path, WMT_MIRROR=srv.as_uri())
    grid = tmp_path / "grid"
    assert _steps(p.stdout) == ["prepare", "teacher_a0.1_s1", "teacher_a0.1_s1_score", "cache_a0.1_s1",
                                "student_a0.1_T2_s1", "student_a0.1_T2_s1_score"]
    prep_log = (grid / "logs" / "prepare.log").read_text()
    assert f"downloading {srv.as_uri()}/test-full.tgz" in prep_log and "has 3,003" in prep_log
    s = json.loads((grid / "students" / "a0.1_T2_s1" / "score.json").read_text())
    assert s["convention"] == "wmt14" and s["n_sentences"] == 3
    assert {"bleu", "chrf", "bleu_compound_split"} <= set(s) and s["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    tables = {m: (grid / f"results_{m}.md").read_text() for m in ("bleu", "bleu_compound_split", "chrf")}
    assert "— bleu: detokenised sacreBLEU (tok 13a) of Moses-detokenised hypotheses against the untouched reference" \
        in tables["bleu"].splitlines()[0]
    assert "fairseq's compound_split_bleu.sh" in tables["bleu_compound_split"].splitlines()[0]
    assert tables["bleu"] in p.stdout
