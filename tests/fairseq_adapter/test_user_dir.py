"""`lskd user-dir`: the installed plugin directory, usable as fairseq's --user-dir from any working directory."""

from pathlib import Path

from helpers import require_fairseq, run, tool

require_fairseq()


def test_user_dir_works_from_outside_the_checkout(tmp_path):
    proc = run([tool("lskd"), "user-dir"], cwd=tmp_path)
    path = Path(proc.stdout.strip())
    assert path.is_absolute() and (path / "criterions" / "ls_kd.py").is_file()
    helped = run([tool("fairseq-train"), "--user-dir", path, "--criterion", "ls_kd", "--help"], cwd=tmp_path)
    assert "--kd-temperature" in helped.stdout and "--teacher-path" in helped.stdout


def test_version_is_the_package_version():
    import lskd

    assert run([tool("lskd"), "--version"]).stdout.strip() == f"lskd {lskd.__version__}"
