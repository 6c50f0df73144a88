"""Command-line conventions (issue 19): --version, the subcommands in the usage line, "did
you mean" for a misspelt subcommand, a closed pipe ends quietly with the exit code the run
earned, a bare ``reconcile`` prints usage instead of managing the host, and an explicit
--node the spec never names is an error."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT

from reconciler import __version__, cli, daemon

DEMO = str(ROOT / "specs" / "demo")
CLUSTER = str(ROOT / "specs" / "examples" / "cluster.toml")


def test_version_from_the_source_when_not_installed(reconcile, monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", missing)
    code, out, _ = reconcile("--version")
    assert code == 0 and out == f"reconcile {__version__}\n"


def test_version_from_the_package_metadata_when_installed(reconcile, monkeypatch):
    from importlib import metadata
    monkeypatch.setattr(metadata, "version",
                        lambda name: "9.8.7" if name == "reconciler" else None)
    code, out, _ = reconcile("--version")
    assert code == 0 and out == "reconcile 9.8.7\n"


def test_the_source_version_is_the_one_pyproject_declares():
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "reconciler.__version__"}


def test_usage_lists_the_subcommands(reconcile):
    code, out, _ = reconcile("--help")
    usage = out.split("\n\n")[0]
    assert code == 0
    assert "reconcile {status,validate,schema,capture,adopt} ..." in usage
    assert "--spec PATH" in usage and "--once" in usage


@pytest.mark.parametrize("typo,meant", [("valdiate", "validate"), ("stauts", "status"),
                                        ("schem", "schema"), ("captur", "capture")])
def test_a_misspelt_subcommand_says_what_was_meant(reconcile, typo, meant):
    code, out, err = reconcile(typo, "--spec", DEMO)
    assert code == 1  # a usage error; 2 would read as "drift found"
    assert f"unknown subcommand '{typo}'; did you mean '{meant}'?" in err
    assert "reconcile {status,validate,schema,capture,adopt}" in err  # the usage, to stderr
    assert out == "" and "Traceback" not in err


def test_an_unknown_word_lists_the_subcommands(reconcile):
    code, _, err = reconcile("frobnicate")
    assert code == 1
    assert "unknown subcommand 'frobnicate'; subcommands: status, validate, schema, capture" in err


def test_bare_reconcile_prints_usage_and_does_not_touch_the_host(reconcile, monkeypatch):
    started = []
    monkeypatch.setattr(daemon.Daemon, "run", lambda self: started.append(self) or 0)
    monkeypatch.setattr(cli, "_environment",
                        lambda args: pytest.fail("bare `reconcile` built a host to act on"))
    for argv in ([], ["--node", "node-1"], ["--log-level", "DEBUG"], ["--dry-run"]):
        code, out, err = reconcile(*argv)
        assert code == 1, argv
        assert err.startswith("usage: reconcile"), err
        assert "no --spec: the daemon needs the spec named" in err
        assert "reconcile --once" in err
    assert not started


def test_the_daemon_with_its_spec_named_still_starts(reconcile, monkeypatch, tmp_path):
    started = []
    monkeypatch.setattr(daemon.Daemon, "run", lambda self: started.append(self) or 0)
    code, _, err = reconcile("--simulate", "default", "--spec", DEMO,
                             "--status-dir", str(tmp_path))
    assert code == 0, err
    assert len(started) == 1 and started[0].settings.spec == ROOT / "specs" / "demo"


def test_once_without_spec_still_uses_the_default_spec(reconcile, monkeypatch):
    monkeypatch.setattr(cli, "DEFAULT_SPEC", "/nonexistent/reconciler-specs")
    code, _, err = reconcile("--simulate", "default", "--once", "--dry-run")
    assert code == 1
    assert "spec directory /nonexistent/reconciler-specs does not exist" in err


def test_an_explicit_node_the_spec_never_names_is_an_error(reconcile):
    code, out, err = reconcile("--simulate", "default", "--node", "core-9", "--spec", CLUSTER,
                               "--once")
    assert code == 1
    assert ("error: --node core-9: the spec never names node core-9 (no VG, clone, DRBD "
            "resource, iSCSI target or session for it); it names node(s) core-01, core-02"
            ) in err
    assert "in sync" not in out


def test_an_explicit_node_is_an_error_in_every_mode(reconcile):
    for extra in (["--dry-run"], ["--wait"], ["--output", "json"]):
        code, _, err = reconcile("--simulate", "default", "--node", "core-9", "--spec",
                                 CLUSTER, "--once", *extra)
        assert code == 1 and "the spec never names node core-9" in err, extra


def test_a_named_node_is_not_an_error(reconcile):
    code, out, err = reconcile("--simulate", "cluster", "--node", "core-01", "--spec", CLUSTER,
                               "--once", "--dry-run")
    assert code in (0, 2), err
    assert "never names" not in err


def _pipe_to_head(argv: list[str], lines: int = 1) -> tuple[int, str, str]:
    """``reconcile ARGV | head -LINES`` with real processes and a real pipe: reconcile's
    exit code (not head's), what head printed, reconcile's stderr."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    env.pop("RECONCILER_LOG_LEVEL", None)
    rec = subprocess.Popen([sys.executable, "-m", "reconciler", *argv], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, cwd=ROOT)
    head = subprocess.Popen(["head", f"-{lines}"], stdin=rec.stdout, stdout=subprocess.PIPE)
    rec.stdout.close()  # head alone holds the read end: when it exits, the pipe is closed
    shown, _ = head.communicate(timeout=120)
    err = rec.stderr.read().decode()
    rec.stderr.close()
    return rec.wait(timeout=120), shown.decode(), err


def _reader_gone(argv: list[str]) -> tuple[int, str]:
    """``reconcile ARGV`` writing into a real pipe whose reader has already gone (the read
    end closed before it starts): its first write fails, every one. Exit code, stderr."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_COLOR="1")
    env.pop("RECONCILER_LOG_LEVEL", None)
    r, w = os.pipe()
    os.close(r)
    try:
        res = subprocess.run([sys.executable, "-m", "reconciler", *argv], stdout=w,
                             stderr=subprocess.PIPE, env=env, cwd=ROOT, timeout=120)
    finally:
        os.close(w)
    return res.returncode, res.stderr.decode()


RUNS = [
    (["--simulate", "default", "--spec", DEMO, "--once", "--dry-run"], 2),
    (["--simulate", "default", "--spec", DEMO, "--once", "--wait"], 0),
    (["--simulate", "default", "--spec", DEMO, "--once", "--wait", "--output", "json"], 0),
    (["--simulate", "default", "--spec", DEMO, "--once"], 2),  # a pvmove left in flight
    (["schema"], 0),
    (["validate", "--spec", DEMO], 0),
    (["status", "--status-dir", str(ROOT / "nonexistent")], 1),
    (["--version"], 0),
    (["--help"], 0),
]


@pytest.mark.real_process
@pytest.mark.parametrize("argv,earned", RUNS)
def test_a_closed_pipe_ends_quietly_with_the_exit_code_earned(argv, earned):
    code, err = _reader_gone(argv)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert "Exception ignored" not in err, err
    assert code == earned, err[-2000:]


@pytest.mark.real_process
@pytest.mark.parametrize("argv,earned", RUNS[:2])
def test_piped_to_head_the_run_ends_with_its_own_exit_code(argv, earned):
    code, shown, err = _pipe_to_head(argv)
    assert shown.count("\n") == 1
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert code == earned, err[-2000:]


def test_output_after_the_reader_left_is_dropped_and_the_run_goes_on(monkeypatch):
    class Gone:
        writes = 0

        def write(self, text):
            Gone.writes += 1
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(32, "Broken pipe")

        def fileno(self):
            raise OSError("no descriptor")

    seen = []

    def run(argv):
        print("the plan")
        print("the result", flush=True)
        seen.append("finished")
        return 2

    monkeypatch.setattr(cli, "_dispatch", run)
    monkeypatch.setattr(sys, "stdout", Gone())
    assert cli.main([]) == 2
    assert seen == ["finished"] and Gone.writes == 1


def test_the_license_pyproject_names_is_shipped():
    import tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    text = (ROOT / "LICENSE").read_text()
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
