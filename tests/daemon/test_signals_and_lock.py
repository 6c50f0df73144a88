import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from reconciler import daemon, executing, status
from reconciler.simulate import demo

from .conftest import GROW_MYGFS, REPO, TWO_STEPS, Recorder, wait_for, write_spec


@pytest.fixture
def handlers_of(request):
    installed = []

    def install(d: daemon.Daemon) -> None:
        installed.append(d.install_signal_handlers())

    yield install
    for previous in installed:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_sigterm_mid_step_finishes_the_step_starts_no_other_and_exits_zero(
        start_daemon, spec_dir, handlers_of):
    host = demo.default_host()
    runner = Recorder(host, gate_match=("lvextend",))
    r = start_daemon(host=host, runner=runner)
    handlers_of(r.daemon)
    write_spec(spec_dir / "vgglobal.toml", TWO_STEPS)
    assert runner.gate_entered.wait(5)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.3)
    assert r.thread.is_alive(), "the daemon abandoned a command half way"
    runner.gate_release.set()
    r.thread.join(5)
    assert r.result == [0]
    ran = [a[0] for a in runner.argvs(mutating_only=True)]
    assert ran == ["lvextend"]
    assert [res.ok for res in runner.finished if res.command.argv[0] == "lvextend"] == [True]
    assert host.lv("vgglobal", "mygfs").extents * 4 * 2**20 == 330 * 2**30
    assert "newlv" not in host.vg("vgglobal").lvs
    outcomes = {a.step.key: a.outcome for a in r.daemon.last.report.results}
    assert executing.Outcome.DEFERRED in outcomes.values()
    assert sorted(map(str, outcomes.values())) == ["deferred", "done"]
    doc = status.read(r.settings.status_dir)
    assert doc["state"] == status.STOPPED


def test_a_spec_edit_mid_pass_defers_the_steps_planned_from_the_old_spec(start_daemon, spec_dir):
    host = demo.default_host()
    runner = Recorder(host, gate_match=("lvextend",))
    r = start_daemon(host=host, runner=runner)
    write_spec(spec_dir / "vgglobal.toml", TWO_STEPS)
    assert runner.gate_entered.wait(5)
    write_spec(spec_dir / "vgglobal.toml", GROW_MYGFS)  # newlv withdrawn mid-pass
    wait_for(lambda: r.daemon.wakeup.pending("spec changed"))  # the watcher saw it
    runner.gate_release.set()
    wait_for(lambda: r.daemon.passes >= 3, timeout=10)  # the pass from the new spec
    assert r.stop() == 0
    ran = [a[0] for a in runner.argvs(mutating_only=True)]
    assert ran == ["lvextend"]  # the lvcreate of the old spec never ran
    assert "newlv" not in host.vg("vgglobal").lvs
    assert host.lv("vgglobal", "mygfs").extents * 4 * 2**20 == 330 * 2**30


def test_sighup_forces_a_pass(start_daemon, handlers_of):
    r = start_daemon()
    handlers_of(r.daemon)
    os.kill(os.getpid(), signal.SIGHUP)
    wait_for(lambda: r.daemon.passes == 2, timeout=3)
    # (the pass is counted when it starts; its status is written when it ends)
    wait_for(lambda: status.read(r.settings.status_dir)["last_pass"]["number"] == 2)
    assert "SIGHUP" in status.read(r.settings.status_dir)["last_pass"]["reason"]


def test_second_instance_is_refused_naming_the_holder(start_daemon, tmp_path):
    r = start_daemon()
    other = daemon.Daemon(r.daemon.env, r.settings)
    with pytest.raises(daemon.AlreadyRunning, match=rf"PID {os.getpid()} holds .*lock"):
        other.run()
    assert r.thread.is_alive()


def test_lock_is_free_again_after_a_stop(start_daemon):
    first = start_daemon()
    assert first.stop() == 0
    second = start_daemon()
    assert second.daemon.passes == 1


def _cli(tmp_path, spec_dir, *extra):
    return [sys.executable, "-m", "reconciler", "--simulate", "default", "--node", "node-1",
            "--spec", str(spec_dir), "--status-dir", str(tmp_path / "run"),
            "--lock-file", str(tmp_path / "lock"), *extra]


def _wait_status(tmp_path, predicate, timeout=10.0):
    def ok():
        try:
            doc = status.read(tmp_path / "run")
        except (OSError, ValueError):
            return None
        return doc if predicate(doc) else None
    return wait_for(ok, timeout=timeout, interval=0.05)


@pytest.mark.real_process
def test_cli_daemon_sighup_sigterm_and_a_refused_second_instance(tmp_path, spec_dir):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(_cli(tmp_path, spec_dir), cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # A fresh interpreter's start-up, not the behaviour under test: generous under load.
        _wait_status(tmp_path, lambda d: d["passes"] == 1, timeout=30.0)
        second = subprocess.run(_cli(tmp_path, spec_dir), cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=20)
        assert second.returncode == 1
        assert f"PID {proc.pid} holds" in second.stderr
        proc.send_signal(signal.SIGHUP)
        _wait_status(tmp_path, lambda d: d["passes"] == 2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopping on request" in err
    assert "\x1b[" not in err  # no colour codes off a TTY
    assert status.read(tmp_path / "run")["state"] == status.STOPPED


def test_wakeup_signal_flags_are_safe_from_the_waiting_thread():
    w = daemon.Wakeup()
    got = []
    t = threading.Thread(target=lambda: got.append(w.wait(time.monotonic() + 5)))
    t.start()
    time.sleep(0.05)
    w.signal_hup()
    t.join(2)
    assert got and got[0][0][0] == "SIGHUP"
    w.signal_stop()
    assert w.wait(time.monotonic() + 5) == []
