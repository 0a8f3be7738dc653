"""`lskd teacher-release`: a trained teacher as a small file and back to a checkpoint fairseq reads."""

import shutil

import torch

from helpers import require_fairseq, run, tool

require_fairseq()


def export(tiny_data, tiny_teacher, out):
    run([tool("lskd"), "teacher-release", "export", "--checkpoint", tiny_teacher, "--data", tiny_data / "bin", "--out", out])


def test_export_then_import_gives_the_teacher_in_float16_precision(tiny_data, tiny_teacher, tmp_path):
    from fairseq import checkpoint_utils

    import fairseq_plugins  # noqa: F401  (as --user-dir does: torch.load allows argparse-style configs)

    release = tmp_path / "a0_s1.pt"
    export(tiny_data, tiny_teacher, release)
    assert release.stat().st_size < 0.5 * tiny_teacher.stat().st_size  # no optimizer state, float16
    save = tmp_path / "imported"
    run([tool("lskd"), "teacher-release", "import", "--release", release, "--data", tiny_data / "bin", "--save-dir", save])
    original = torch.load(tiny_teacher, map_location="cpu", weights_only=False)
    for name in ("checkpoint_best.pt", "checkpoint_last.pt"):
        state = torch.load(save / name, map_location="cpu", weights_only=False)
        assert state["model"].keys() == original["model"].keys()
        for k, v in original["model"].items():
            assert state["model"][k].dtype == v.dtype and torch.equal(state["model"][k], v.half().to(v.dtype)), k
        assert state["optimizer_history"][-1]["num_updates"] == original["optimizer_history"][-1]["num_updates"]
        assert state["cfg"]["task"]["data"] == str(tiny_data / "bin") and "lskd_release" not in state
    # fairseq builds it as it builds any checkpoint
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(save / "checkpoint_best.pt")])
    assert len(models) == 1 and len(task.target_dictionary) == models[0].decoder.embed_tokens.weight.shape[0]


def test_import_refuses_other_dictionaries_in_one_line(tiny_data, tiny_teacher, tmp_path):
    release = tmp_path / "r.pt"
    export(tiny_data, tiny_teacher, release)
    other = tmp_path / "bin"
    shutil.copytree(tiny_data / "bin", other)
    tgt_dict = next(other.glob("dict.tgt.txt"))
    lines = tgt_dict.read_text().splitlines()
    tgt_dict.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")  # two symbols swapped
    proc = run([tool("lskd"), "teacher-release", "import", "--release", release, "--data", other,
                "--save-dir", tmp_path / "out"], check=False)
    last = proc.stderr.strip().splitlines()[-1]  # after fairseq's import-time INFO line, no traceback
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert last.startswith(f"lskd teacher-release: error: --release {release}: trained with another dict.tgt.txt "
                           f"than {other / 'dict.tgt.txt'} (sha256 ")
    assert not (tmp_path / "out").exists()


def test_import_refuses_a_plain_checkpoint(tiny_data, tiny_teacher, tmp_path):
    proc = run([tool("lskd"), "teacher-release", "import", "--release", tiny_teacher, "--data", tiny_data / "bin",
                "--save-dir", tmp_path / "out"], check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (f"lskd teacher-release: error: --release {tiny_teacher}: not a teacher release "
                                   "(made by `lskd teacher-release export`)")


def test_import_refuses_data_without_dictionaries(tiny_data, tiny_teacher, tmp_path):
    release = tmp_path / "r.pt"
    export(tiny_data, tiny_teacher, release)
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run([tool("lskd"), "teacher-release", "import", "--release", release, "--data", empty,
                "--save-dir", tmp_path / "out"], check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (f"lskd teacher-release: error: --data {empty}: no binarised train "
                                                    "split to tell its language pair from")
    assert not (tmp_path / "out").exists()
