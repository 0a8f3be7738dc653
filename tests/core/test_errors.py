"""The error model: user errors are one line and exit 2; anything else is a bug and keeps its traceback."""

import subprocess
import sys

import pytest

from lskd.cli import run_entry
from lskd.errors import LskdError, OptionError
from lskd.fileio import read_json
from lskd.losses import LSKDLoss


def test_user_error_is_one_line_and_exit_2(capsys):
    def entry(argv):
        raise LskdError("--thing x: expected y")

    assert run_entry("lskd t", entry, []) == 2
    assert capsys.readouterr().err == "lskd t: error: --thing x: expected y\n"


@pytest.mark.parametrize("exc", [ValueError("Expecting value: line 1 column 1"), FileNotFoundError("x"), KeyError("k")])
def test_a_bug_keeps_its_traceback(exc):
    def entry(argv):
        raise exc

    with pytest.raises(type(exc)):
        run_entry("lskd t", entry, [])


def test_missing_fairseq_gives_an_install_hint(capsys):
    def entry(argv):
        raise ModuleNotFoundError("No module named 'fairseq'", name="fairseq")

    assert run_entry("lskd cache", entry, []) == 2
    err = capsys.readouterr().err
    assert err.startswith("lskd cache: error: fairseq is not installed for ") and "requirements-fairseq.txt" in err


def test_lskd_cache_without_fairseq_says_how_to_install_it():
    blocked = "import sys; sys.modules['fairseq'] = None; from lskd.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", blocked, "cache", "--data", "d", "--teacher-path", "t.pt", "--out", "o"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("lskd cache: error: fairseq is not installed for ")


def test_other_missing_module_is_a_bug():
    def entry(argv):
        raise ModuleNotFoundError("No module named 'nosuch'", name="nosuch")

    with pytest.raises(ModuleNotFoundError):
        run_entry("lskd t", entry, [])


def test_loss_core_names_fields_and_adapters_name_flags():
    with pytest.raises(OptionError) as info:
        LSKDLoss(kd_lambda=1.5)
    assert info.value.field == "kd_lambda" and str(info.value) == "kd_lambda must be in [0, 1], got 1.5"
    assert str(info.value.with_flag({"kd_lambda": "--kd-x"})) == "--kd-x must be in [0, 1], got 1.5"
    assert str(info.value.with_flag({})) == str(info.value)


def test_read_json_names_the_file(tmp_path):
    bad = tmp_path / "manifest.json"
    bad.write_text("")
    with pytest.raises(LskdError, match=rf"^{bad}: cannot read an lskd manifest \(JSONDecodeError: Expecting value"):
        read_json(bad, "an lskd manifest")
    with pytest.raises(LskdError, match=rf"^{tmp_path / 'nope.json'}: cannot read a JSON file \(FileNotFoundError"):
        read_json(tmp_path / "nope.json")
