import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from reconciler import status
from reconciler.runner import SubprocessRunner

from .conftest import IN_SYNC, REPO, Recorder, wait_for, write_spec


class ShortTimeouts:
    """Every command gets a 0.5 s timeout, so a hang is killed within the test's time."""

    def __init__(self, inner):
        self.inner = inner

    def run(self, cmd):
        return self.inner.run(dataclasses.replace(cmd, timeout=0.5))

    def read(self, path, *, host="local"):
        return self.inner.read(path, host=host)

    def openers(self, paths, *, host="local"):
        return self.inner.openers(paths, host=host)

    def claimed(self, paths, *, host="local"):
        return self.inner.claimed(paths, host=host)


@pytest.mark.real_process
def test_a_tool_missing_from_path_is_reported_and_the_loop_goes_on(start_daemon, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    runner = Recorder(SubprocessRunner(extra_env={"PATH": str(empty)}))
    r = start_daemon(runner=runner)
    assert r.daemon.state == status.ERROR
    doc = status.read(r.settings.status_dir)
    assert "lvm: command not found in PATH" in doc["last_pass"]["error"]
    assert "missing-tool" in doc["last_pass"]["error"]
    wait_for(lambda: r.daemon.passes >= 3, timeout=5)  # retried with backoff, never fatal
    assert r.daemon.next_reason == "retry after an error"
    assert r.thread.is_alive()


@pytest.mark.real_process
def test_a_hanging_command_is_killed_by_its_timeout_and_reported(start_daemon, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    pidfile = tmp_path / "lvm.pid"
    fake = bindir / "lvm"
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 30\n")
    fake.chmod(0o755)
    path = f"{bindir}:/usr/bin:/bin"
    runner = Recorder(ShortTimeouts(SubprocessRunner(extra_env={"PATH": path})))
    t0 = time.monotonic()
    r = start_daemon(runner=runner)
    assert time.monotonic() - t0 < 5
    doc = status.read(r.settings.status_dir)
    assert doc["state"] == status.ERROR
    assert "timeout" in doc["last_pass"]["error"] and "timed out after" in doc["last_pass"]["error"]
    pid = int(pidfile.read_text())
    wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
             open(f"/proc/{pid}/stat").read().split()[2] == "Z", timeout=3)
    wait_for(lambda: r.daemon.passes >= 2, timeout=5)
    assert r.thread.is_alive()


def test_a_missing_spec_directory_is_reported_then_picked_up_when_created(start_daemon,
                                                                         tmp_path):
    where = tmp_path / "later" / "specs"
    (tmp_path / "later").mkdir()
    r = start_daemon(spec=where, resync_seconds=30, error_backoff_seconds=30)
    assert r.daemon.state == status.NO_SPEC
    assert "no such file or directory" in r.daemon.spec_error
    assert r.runner.started == []
    staging = tmp_path / "later" / "staging"
    staging.mkdir()
    os.chmod(staging, 0o755)
    write_spec(staging / "vgglobal.toml", IN_SYNC)
    os.rename(staging, where)
    # (the pass count goes up as a pass starts, its state when it ends: wait for the state)
    wait_for(lambda: r.daemon.state == status.IN_SYNC, timeout=3)
    assert r.daemon.passes == 1 and r.daemon.spec_error is None


@pytest.mark.real_process
def test_an_unreadable_spec_directory_is_reported_and_the_loop_goes_on(tmp_path, spec_dir):
    run = tmp_path / "run"
    argv = [sys.executable, "-m", "reconciler", "--simulate", "default", "--node", "node-1",
            "--spec", str(spec_dir), "--status-dir", str(run), "--lock-file",
            str(tmp_path / "lock")]
    if os.geteuid() == 0:
        # root reads anything; without these two capabilities it obeys the mode bits
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to test this as root"
        argv = [setpriv, "--bounding-set=-dac_override,-dac_read_search",
                "--inh-caps=-dac_override,-dac_read_search", *argv]
    os.chmod(spec_dir, 0o000)
    proc = subprocess.Popen(argv, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def doc():
            try:
                return status.read(run)
            except (OSError, ValueError):
                return None
        first = wait_for(lambda: (d := doc()) and d["state"] != status.STARTING and d,
                         timeout=15, interval=0.05)
        assert first["state"] == status.NO_SPEC
        assert "cannot read the spec directory: Permission denied" in first["spec"]["error"]
        os.chmod(spec_dir, 0o755)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: (d := doc()) and d["state"] == status.IN_SYNC, timeout=10,
                 interval=0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        os.chmod(spec_dir, 0o755)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "cannot read the spec directory" in err
