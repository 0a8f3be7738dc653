"""`lskd export` and `lskd translate` (issue 23): the exported folder translates raw text as ct2-generate decodes
the prepared test set, quantised exports load, exports are deterministic, and bad input is one line."""

import json
import subprocess
import sys

import pytest

from foreign_teacher import corpus, write_text
from helpers import require_fairseq, run, tool
from lskd.scoring import hypotheses_in_order, moses_detokenize

require_fairseq()


@pytest.fixture(scope="session")
def prepared(foreign_teacher, tmp_path_factory):
    """(teacher folder, data_prep output of a new corpus prepared for it)."""
    root, teacher = tmp_path_factory.mktemp("export"), foreign_teacher
    src, tgt = write_text(root / "user", "corpus", corpus(200, 21))
    run([sys.executable, "-m", "data_prep.parallel", "--src", src, "--tgt", tgt, "--src-lang", "de", "--tgt-lang", "en",
         "--valid-size", "20", "--test-size", "40", "--out", root / "data", "--teacher-dir", teacher])
    return teacher, root / "data"


def export(prepared, out, *extra):
    teacher, data = prepared
    return run([tool("lskd"), "export", "--checkpoint", teacher / "model.pt", "--data", data / "bin", "--out", out, *extra])


def translate(model, *args, beam=3, **kw):
    return run([tool("lskd"), "translate", "--model", model, "--beam", str(beam), *args], **kw)


@pytest.mark.parametrize("beam", [3, 1])
def test_translate_equals_ct2_generate_on_the_test_set(prepared, tmp_path, beam):
    teacher, data = prepared
    export(prepared, tmp_path / "exp")
    manifest = json.loads((tmp_path / "exp" / "export.json").read_text())
    bpe = manifest["tokenizer"]["kind"] == "moses+bpe"
    assert sorted(manifest["files"]) == sorted(
        ["dict.de.txt", "dict.en.txt", "bpecodes" if bpe else "spm.model"]
        + [f"model/{p.name}" for p in (tmp_path / "exp" / "model").iterdir()])
    translate(tmp_path / "exp", "--input", data / "raw" / "test.de", "--output", tmp_path / "out.txt", beam=beam)
    ours = (tmp_path / "out.txt").read_text(encoding="utf-8").splitlines()
    gen = run([tool("lskd"), "ct2-generate", data / "bin", "--path", teacher / "model.pt", "--beam", str(beam),
               "--length-limit", "per-sentence", "--post-process", "auto"])  # the data manifest's post-processing
    (tmp_path / "gen.txt").write_text(gen.stdout)
    reference = hypotheses_in_order(tmp_path / "gen.txt", 40)
    assert ours == (moses_detokenize(reference, "en") if bpe else reference)
    # streaming in chunks of 7 lines changes nothing; stdin works as a file does
    piped = translate(tmp_path / "exp", "--chunk", "7", beam=beam, input=(data / "raw" / "test.de").read_text(encoding="utf-8"))
    assert piped.stdout.splitlines() == ours and "lines/s" in piped.stderr


def test_quantised_export_translates_and_exports_are_deterministic(prepared, tmp_path):
    export(prepared, tmp_path / "int8", "--quantization", "int8")
    assert json.loads((tmp_path / "int8" / "export.json").read_text())["quantization"] == "int8"
    _, data = prepared
    out = translate(tmp_path / "int8", "--input", data / "raw" / "test.de").stdout.splitlines()
    assert len(out) == 40 and sum(bool(line) for line in out) >= 35
    first = json.loads((tmp_path / "int8" / "export.json").read_text())["files"]
    again = export(prepared, tmp_path / "int8", "--quantization", "int8")
    assert "the same files" in again.stderr and json.loads((tmp_path / "int8" / "export.json").read_text())["files"] == first


def test_empty_long_and_invalid_lines(prepared, tmp_path):
    export(prepared, tmp_path / "exp")
    long = " ".join(["Haus"] * 1500)
    text = f"Der Hund.\n\n{long}\nDie Katze.\n"
    proc = translate(tmp_path / "exp", input=text)
    out = proc.stdout.split("\n")
    assert len(out) == 5 and out[1] == "" and out[0] and out[3] and out[4] == ""
    assert "1 cut to the model's 1024 source positions" in proc.stderr
    (tmp_path / "bad.txt").write_bytes(b"Der Hund.\nDie \xff Katze.\n")
    bad = translate(tmp_path / "exp", "--input", tmp_path / "bad.txt", "--output", tmp_path / "o.txt", check=False)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith(
        f"lskd translate: error: {tmp_path / 'bad.txt'}: line 2 is not UTF-8")
    assert not (tmp_path / "o.txt").exists()  # nothing half-written under the output's name
    other = translate(tmp_path, input="x\n", check=False)
    assert other.stderr.strip().splitlines()[-1] == f"lskd translate: error: --model {tmp_path}: no export.json (not a " \
        "folder made by lskd export)"


def test_unconvertible_model_is_one_line(prepared, tmp_path, monkeypatch):
    from ctranslate2.converters import FairseqConverter

    from fairseq_plugins import export as export_module
    from lskd.errors import LskdError

    def refuse(self, *args, **kwargs):
        raise NotImplementedError("Option --arch lstm is not supported")

    monkeypatch.setattr(FairseqConverter, "convert", refuse)
    teacher, data = prepared
    with pytest.raises(LskdError, match=r"CTranslate2 cannot convert this model \(NotImplementedError: Option --arch "
                                        r"lstm is not supported\)"):
        export_module.export(str(teacher / "model.pt"), str(data / "bin"), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_export_needs_the_data_manifest(prepared, tmp_path):
    teacher, data = prepared
    import shutil

    shutil.copytree(data / "bin", tmp_path / "bin")
    proc = subprocess.run([str(tool("lskd")), "export", "--checkpoint", str(teacher / "model.pt"), "--data",
                           str(tmp_path / "bin"), "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert proc.returncode == 2 and "no data_prep manifest" in proc.stderr.strip().splitlines()[-1]


def test_an_older_fairseq_checkpoint_exports_the_same_model(prepared, tmp_path):
    """fairseq <= 0.10's layout (an `args` Namespace, no `cfg`) exports to the same CTranslate2 model."""
    import torch
    from fairseq import options

    from helpers import PLUGINS, TINY_TRAIN

    teacher, data = prepared
    args = options.parse_args_and_arch(options.get_training_parser(), [
        str(data / "bin"), *map(str, TINY_TRAIN), "--user-dir", PLUGINS, "--criterion", "ls_kd", "--kd-lambda", "0"])
    state = torch.load(teacher / "model.pt", weights_only=False)
    state["args"], state["cfg"] = args, None
    torch.save(state, tmp_path / "old.pt")
    run([tool("lskd"), "export", "--checkpoint", tmp_path / "old.pt", "--data", data / "bin", "--out", tmp_path / "old"])
    export(prepared, tmp_path / "new")
    files = [json.loads((tmp_path / d / "export.json").read_text())["files"] for d in ("old", "new")]
    assert files[0]["model/model.bin"] == files[1]["model/model.bin"]


@pytest.mark.parametrize("args, message", [
    (["--beam", "0"], "--beam 0 --lenpen 1.0 --batch-size 64 --chunk 2000: expected beam, batch size and chunk >= 1"),
    (["--input", "NOPE"], "--input NOPE: no such file"),
])
def test_translate_option_errors_are_one_line(prepared, tmp_path, args, message):
    export(prepared, tmp_path / "exp")
    proc = translate(tmp_path / "exp", *args, check=False, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(f"lskd translate: error: {message}")


def test_deploy_table_measures_what_translate_gives(prepared, tmp_path):
    """`lskd deploy-table` (issue 23, item 4): one row per model, export type and beam, the issue's columns; a student
    that is the teacher's own checkpoint keeps 100 %; BLEU is `lskd score` of `lskd translate`'s output."""
    import csv

    teacher, data = prepared
    ckpt, raw = teacher / "model.pt", data / "raw"
    cmd = [tool("lskd"), "deploy-table", "--data", data / "bin", "--source", raw / "test.de", "--ref", raw / "test.en",
           "--exports", tmp_path / "exports", "--out", tmp_path / "table", "--rounds", "2", "--beams", "1", "3",
           "--threads", "1", "--model", f"big=teacher:{ckpt}", "--model", f"copy=student:{ckpt}"]
    run(cmd)
    with open(tmp_path / "table" / "deploy.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:5] == ["model", "role", "params", "size_bytes", "compute_type"]
    assert {"lines_per_s", "bleu", "bleu_retention", "chrf", "tokens_per_s", "int8_minus_float32_bleu"} <= set(rows[0])
    assert sorted((r["model"], r["compute_type"], r["beam"]) for r in rows) == sorted(
        (m, c, b) for m in ("big", "copy") for c in ("float32", "int8_float32") for b in ("1", "3"))
    by = {(r["model"], r["compute_type"], r["beam"]): r for r in rows}
    for r in rows:
        assert float(r["bleu_retention"]) == 1.0 and float(r["lines_per_s"]) > 0
        assert (r["int8_minus_float32_bleu"] == "") == (r["compute_type"] == "float32")
    float32, int8 = by[("copy", "float32", "3")], by[("copy", "int8_float32", "3")]
    assert int(int8["size_bytes"]) < int(float32["size_bytes"]) and int8["params"] == float32["params"]
    assert float(int8["int8_minus_float32_bleu"]) == pytest.approx(float(int8["bleu"]) - float(float32["bleu"]), abs=1e-3)
    translate(tmp_path / "exports" / "copy.none", "--input", raw / "test.de", "--output", tmp_path / "out.txt")
    run([tool("lskd"), "score", "--hyp", tmp_path / "out.txt", "--ref", raw / "test.en", "--detokenize", "none",
         "--out", tmp_path / "s.json"])
    assert float(float32["bleu"]) == pytest.approx(json.loads((tmp_path / "s.json").read_text())["bleu"], abs=1e-3)
    md = (tmp_path / "table" / "deploy.md").read_text()
    assert "Targets:" in md and "speed: NOT MET" in md and (tmp_path / "table" / "deploy.png").stat().st_size > 1000
    again = run(cmd + ["--beams", "1", "--rounds", "1"])  # the exports are reused, not made again
    assert "exported to" not in again.stderr


@pytest.mark.parametrize("models, extra, message", [
    (["a=teacher:{ckpt}", "b=teacher:{ckpt}"], [], "--model: expected exactly one teacher"),
    (["a={ckpt}"], [], "--model a={ckpt}: expected NAME=ROLE:CHECKPOINT with ROLE teacher or student"),
    (["a=teacher:{ckpt}", "a=student:{ckpt}"], [], "--model: a name given twice (a)"),
    (["a=teacher:NOPE.pt"], [], "--model a=teacher:NOPE.pt: no such checkpoint NOPE.pt"),
    (["a=teacher:{ckpt}"], ["--ref", "{valid}"], "different numbers of lines (expected one test set)"),
])
def test_deploy_table_bad_input_is_one_line(prepared, tmp_path, models, extra, message):
    from fairseq_plugins import deploy_table
    from lskd.errors import LskdError

    teacher, data = prepared
    fill = {"ckpt": teacher / "model.pt", "valid": data / "raw" / "valid.en"}
    argv = ["--data", str(data / "bin"), "--source", str(data / "raw" / "test.de"), "--ref", str(data / "raw" / "test.en"),
            "--exports", str(tmp_path / "e"), "--out", str(tmp_path / "t")]
    argv += [a.format(**fill) for a in extra] + [x for m in models for x in ("--model", m.format(**fill))]
    with pytest.raises(LskdError) as e:
        deploy_table.main(argv)
    assert message.format(**fill) in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "e").exists() and not (tmp_path / "t").exists()


def test_deploy_targets_and_pareto_front():
    """The targets' sentences on constructed rows (float32, beam 5): a student at 92 % and 3.2x meets the speed
    target; int8 costing 0.4 BLEU does not meet its target; the Pareto front drops dominated points."""
    from fairseq_plugins.deploy_table import pareto, targets

    def row(model, role, quant, speed, bleu, retention, int8_cost=None):
        return {"model": model, "role": role, "quantization": quant, "beam": 5, "speedup_vs_teacher": speed,
                "bleu": bleu, "bleu_retention": retention, "int8_minus_float32_bleu": int8_cost}

    rows = [row("t", "teacher", "none", 1.0, 20.0, 1.0), row("fast", "student", "none", 3.2, 18.4, 0.92),
            row("faster", "student", "none", 5.0, 15.0, 0.75), row("fast", "student", "int8", 5.5, 18.0, 0.9, -0.4)]
    speed, int8 = targets(rows)
    assert speed.startswith("speed: MET") and "fast: 3.20x" in speed and "92.0%" in speed
    assert int8.startswith("int8: NOT MET") and "over it: fast" in int8
    rows[1]["speedup_vs_teacher"] = 2.5
    assert targets(rows)[0].startswith("speed: NOT MET -- the fastest student keeping >= 90% of the teacher's BLEU")
    assert pareto([(1, 20), (3, 18), (2, 17), (5, 15), (5, 14)]) == [(1, 20), (3, 18), (5, 15)]
