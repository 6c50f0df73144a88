"""Usage errors exit 1 (2 means drift), bad options never end in a traceback, and the
messages say what is wrong (issue 9)."""

import json
import signal

import pytest

from conftest import ROOT

from reconciler import status

DEMO = str(ROOT / "specs" / "demo")


@pytest.mark.parametrize("argv", [
    ["--bogus"], ["--once", "--output", "xml"], ["status", "--bogus"], ["validate", "--x"],
    ["schema", "extra"], ["capture"], ["--resync-interval", "abc"],
])
def test_usage_errors_exit_1_not_2(reconcile, argv):
    code, out, err = reconcile(*argv)
    assert code == 1, err
    assert "error:" in err and "Traceback" not in err


def test_bad_log_level_is_a_clear_error(reconcile):
    code, out, err = reconcile("--simulate", "default", "--spec", DEMO, "--once",
                               "--log-level", "bogus")
    assert code == 1
    assert "unknown log level 'bogus'" in err and "DEBUG" in err and "Traceback" not in err


def test_bad_log_level_from_the_environment(reconcile, monkeypatch):
    monkeypatch.setenv("RECONCILER_LOG_LEVEL", "loud")
    code, out, err = reconcile("--simulate", "default", "--spec", DEMO, "--once")
    assert code == 1 and "RECONCILER_LOG_LEVEL: unknown log level 'loud'" in err


def test_validate_a_missing_directory_says_it_does_not_exist(reconcile, tmp_path):
    code, out, err = reconcile("validate", "--spec", str(tmp_path / "nope"))
    assert code == 1
    assert f"spec directory {tmp_path / 'nope'} does not exist" in err
    assert "invalid spec" not in err


def test_status_names_the_simulated_status_dir(reconcile, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(status, "DEFAULT_DIR", tmp_path / "run-reconciler")
    sim = status.simulated_dir()
    sim.mkdir()
    (sim / status.STATUS_FILE).write_text(json.dumps({"state": "in-sync"}))
    code, out, err = reconcile("status")
    assert code == 1
    assert f"a simulated daemon wrote its status in {sim}" in err
    assert f"reconcile status --status-dir {sim}" in err
    code, out, err = reconcile("status", "--help")
    assert code == 0 and str(sim) in out


def test_help_documents_exit_codes_and_simulated_hosts(reconcile):
    code, out, _ = reconcile("--help")
    assert code == 0
    assert "usage error" in out and "seed004" in out and "cluster" in out


def _sweep(tmp_path):
    notadir = tmp_path / "file"
    notadir.write_text("x")
    empty = tmp_path / "empty"
    empty.mkdir()
    return [
        ["--simulate", "no-such-host", "--spec", DEMO, "--once"],
        ["--simulate", str(notadir), "--spec", DEMO, "--once"],
        ["--simulate", str(empty), "--spec", DEMO, "--once"],
        ["--simulate", "cluster", "--node", "core-03", "--spec", DEMO, "--once"],
        ["--simulate", "default", "--spec", str(tmp_path / "nope"), "--once"],
        ["--simulate", "default", "--spec", str(notadir), "--once"],
        ["--simulate", "default", "--spec", str(empty), "--once"],
        ["--simulate", "default", "--spec", DEMO, "--once", "--node", ""],
        ["--simulate", "default", "--spec", DEMO, "--once", "--log-level", ""],
        ["--simulate", "default", "--spec", DEMO, "--once", "--dry-run", "--wait"],
        ["--simulate", "default", "--spec", DEMO, "--wait"],
        ["--simulate", "default", "--spec", DEMO, "--resync-interval", "-1"],
        ["--simulate", "default", "--spec", DEMO, "--resync-interval", "nan"],
        ["--spec", DEMO, "--once", "--lock-file", str(notadir / "lock")],
        ["validate", "--spec", str(notadir)],
        ["validate", "--spec", str(empty)],
        ["status", "--status-dir", str(notadir)],
        ["status", "--status-dir", str(empty)],
        ["status", "--output", "xml"],
        ["capture", str(notadir / "sub"), "--simulate", "default"],
        ["capture", str(tmp_path / "c"), "--simulate", "no-such-host"],
        ["capture", str(tmp_path / "c2"), "--simulate", str(empty)],
    ]


class _Hung(Exception):
    pass


def _hung(signum, frame):
    raise _Hung("did not return within 20 s (a daemon started on a bad option?)")


def test_no_option_ends_in_a_traceback(reconcile, tmp_path):
    old = signal.signal(signal.SIGALRM, _hung)
    try:
        for argv in _sweep(tmp_path):
            signal.alarm(20)
            try:
                code, out, err = reconcile(*argv)
            except Exception as exc:  # what would be a traceback on the command line
                pytest.fail(f"reconcile {' '.join(argv)}: {type(exc).__name__}: {exc}")
            finally:
                signal.alarm(0)
            _check(argv, code, err)
    finally:
        signal.signal(signal.SIGALRM, old)


def _check(argv, code, err):
    assert code in (0, 1, 2), argv
    assert "Traceback" not in err, (argv, err)
    if code == 1:
        assert "error" in err, (argv, err)


@pytest.mark.parametrize("argv", [["--out", "plan.json"], ["--wait-timeout", "5s"]])
def test_an_option_without_its_partner_is_refused_before_the_spec_is_read(reconcile, tmp_path,
                                                                          argv):
    """Usage first: nothing read, no lock taken, for a command line that is refused (a
    spec that is not even TOML is not reported)."""
    bad = tmp_path / "bad.toml"
    bad.write_text("this is not [ TOML")
    code, out, err = reconcile("--once", "--spec", str(bad), "--lock-file",
                               str(tmp_path / "lock"), *argv)
    assert code == 1 and "goes with" in err and "TOML" not in err
    assert not (tmp_path / "lock").exists()
