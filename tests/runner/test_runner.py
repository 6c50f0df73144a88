"""The real runner with real processes: what happens when a command's timeout expires
(SIGTERM, a grace, SIGKILL, a bounded reap, a stuck process abandoned and named), and who
has a device open (/proc/*/fd and swap).

The commands are short Python scripts that record the signals they receive in a file, so
the order TERM -> grace -> KILL is read from the process's own side.
"""

import errno
import fcntl
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from reconciler import runner as runner_mod
from reconciler.adapters import lvm, md
from reconciler.runner import Command, RecordingRunner, SubprocessRunner

PY = sys.executable
# Timeouts long enough for a Python to start and install its signal handlers on a loaded
# machine: a signal that arrives before would test nothing.
START = 4.0  # the child is a Python start-up: slow on a busy 2-core machine


def script(body: str) -> tuple[str, ...]:
    return (PY, "-c", textwrap.dedent(body))


def wait_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return
        except FileNotFoundError:
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still alive")


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.real_process
def test_sigterm_comes_first_and_a_command_that_finishes_its_work_is_not_killed(tmp_path):
    log = tmp_path / "signals"
    cmd = Command(argv=script(f"""
        import signal, sys, time
        def term(sig, frame):
            open({str(log)!r}, "a").write("TERM\\n")
            time.sleep(0.3)  # lvm leaving its critical section: commit or roll back
            open({str(log)!r}, "a").write("clean exit\\n")
            sys.exit(3)
        signal.signal(signal.SIGTERM, term)
        open({str(log)!r}, "a").write("started\\n")
        time.sleep(30)
        """), timeout=START)
    r = SubprocessRunner(term_grace=5.0, reap_wait=2.0).run(cmd)
    assert log.read_text() == "started\nTERM\nclean exit\n"
    assert r.timed_out and r.rc == 124 and r.stuck_pid is None
    assert f"timed out after {START:g} s: sent SIGTERM" in r.stderr
    assert "exited within the 5 s grace (exit 3)" in r.stderr and "SIGKILL" not in r.stderr
    assert START + 0.2 < r.duration < START + 5.0


@pytest.mark.real_process
def test_a_command_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    log = tmp_path / "signals"
    cmd = Command(argv=script(f"""
        import os, signal, time
        signal.signal(signal.SIGTERM, lambda s, f: open({str(log)!r}, "a").write(
            "TERM %.3f\\n" % time.monotonic()))
        open({str(log)!r}, "a").write("pid %d\\n" % os.getpid())
        time.sleep(30)
        """), timeout=START)
    t0 = time.monotonic()
    r = SubprocessRunner(term_grace=1.5, reap_wait=2.0).run(cmd)
    elapsed = time.monotonic() - t0
    lines = log.read_text().splitlines()
    pid = int(lines[0].split()[1])
    assert lines[1].startswith("TERM") and len(lines) == 2  # TERM was seen, once
    term_at = float(lines[1].split()[1])
    # the grace was given in full: the child stamps TERM when its handler runs, which on a
    # loaded machine is up to ~150 ms after the runner sent it (seen: 1.35 s), so the
    # stamp is allowed that much scheduling latency; the total is bounded below as well
    assert time.monotonic() - term_at >= 1.5 - 0.5
    assert r.timed_out and r.rc == 124
    assert "still running after 1.5 s: killed with SIGKILL" in r.stderr
    assert START + 1.5 <= elapsed < START + 1.5 + 2.0  # bounded: timeout + grace + reap
    wait_gone(pid)


@pytest.mark.real_process
@pytest.mark.parametrize("mutates", [True, False])
def test_a_changing_lvm_command_is_never_killed_only_abandoned(tmp_path, mutates):
    """lvm blocks signals in its suspend/commit section: a mutating lvm command that
    outlives SIGTERM and the grace is left running (abandoned, every later command refused
    while it lives), never SIGKILLed. A read-only one may still be killed."""
    log = tmp_path / "signals"
    tool = tmp_path / "lvconvert"  # an lvm tool by its name
    tool.write_text(f"#!{PY}\n" + textwrap.dedent(f"""
        import os, signal, time
        signal.signal(signal.SIGTERM, lambda s, f: open({str(log)!r}, "a").write("TERM\\n"))
        open({str(log)!r}, "a").write("pid %d\\n" % os.getpid())
        time.sleep(30)
        """))
    tool.chmod(0o755)
    r = SubprocessRunner(term_grace=1.0, reap_wait=1.0)
    res = r.run(Command(argv=(str(tool), "--type", "raid1"), mutates=mutates, timeout=START))
    pid = int(log.read_text().splitlines()[0].split()[1])
    try:
        assert res.timed_out and "TERM" in log.read_text()
        if mutates:
            assert "not killed" in res.stderr and res.stuck_pid == pid
            assert Path(f"/proc/{pid}").exists()  # still alive: no SIGKILL was sent
            later = r.run(Command(argv=("true",), mutates=False))
            assert later.rc == 124 and "not started" in later.stderr
        else:
            assert "killed with SIGKILL" in res.stderr
            wait_gone(pid)
    finally:
        kill_all([pid])


@pytest.mark.real_process
def test_a_stuck_process_is_remembered_by_the_next_runner(tmp_path):
    """A new --once or a restarted daemon (a new runner) must not start commands behind a
    process an earlier one abandoned: the pid and its start time are kept in a file; once
    that process is gone (or the pid reused by another), commands run again."""
    stuck_file = tmp_path / "run" / "stuck-command"
    tool = tmp_path / "lvchange"
    tool.write_text(f"#!{PY}\nimport signal, time\n"
                    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(30)\n")
    tool.chmod(0o755)
    first = SubprocessRunner(term_grace=0.5, reap_wait=0.5, stuck_file=str(stuck_file))
    res = first.run(Command(argv=(str(tool), "--addtag", "x", "vg/lv"), timeout=START))
    pid = res.stuck_pid
    assert pid is not None
    try:
        second = SubprocessRunner(stuck_file=str(stuck_file))  # another process, later
        blocked = second.run(Command(argv=("true",), mutates=False))
        assert blocked.rc == 124 and blocked.stuck_pid == pid
        assert f"not started: pid {pid}" in blocked.stderr and "--addtag" in blocked.stderr
    finally:
        os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    first._stuck.clear()  # (this test's own process reaps it)
    assert SubprocessRunner(stuck_file=str(stuck_file)).run(
        Command(argv=("true",), mutates=False)).rc == 0
    assert not stuck_file.exists()


@pytest.mark.real_process
def test_a_killed_command_returns_at_its_kill_though_a_descendant_keeps_the_output(tmp_path):
    """A killed command whose child escaped its process group and holds stdout: run()
    returns once the command itself is reaped (its output goes to a file, not a pipe whose
    last writer would have to close it), with what it wrote before it was killed."""
    pidfile = tmp_path / "child"
    cmd = Command(argv=script(f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen(["sleep", "60"], start_new_session=True)
        open({str(pidfile)!r}, "w").write(str(child.pid))
        print("written before the kill", flush=True)
        time.sleep(60)
        """), timeout=START)
    try:
        t0 = time.monotonic()
        r = SubprocessRunner(term_grace=0.5, reap_wait=30.0).run(cmd)
        # the timeout, the grace and slack for a loaded machine: not the 30 s reap wait,
        # nor the 60 s the child keeps the output open
        assert time.monotonic() - t0 < START + 0.5 + 5.0
        assert r.timed_out and r.stuck_pid is None and r.rc == 124
        assert r.stderr.endswith("still running after 0.5 s: killed with SIGKILL")
        assert r.stdout == "written before the kill\n"
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


@pytest.mark.real_process
def test_a_command_that_exits_returns_at_once_though_what_it_started_keeps_its_output(tmp_path):
    """A command that starts a daemon of its own (its own session, stdout inherited) and
    exits 0 is done when it exits: through a pipe, run() would have waited for the daemon
    to close it, then timed the command out."""
    pidfile = tmp_path / "child"
    cmd = Command(argv=script(f"""
        import subprocess
        child = subprocess.Popen(["sleep", "60"], start_new_session=True)
        open({str(pidfile)!r}, "w").write(str(child.pid))
        print("started")
        """), timeout=30.0)
    try:
        t0 = time.monotonic()
        r = SubprocessRunner().run(cmd)
        assert time.monotonic() - t0 < 15.0
        assert r.ok and r.stdout == "started\n" and not r.timed_out
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


@pytest.mark.real_process
def test_output_is_text_as_the_tools_wrote_it_and_input_reaches_the_command(monkeypatch):
    """Input is written to the command's stdin; stdout and stderr come back apart, line
    ends made plain, bytes that are not UTF-8 replaced rather than failing the pass, and
    an output far larger than a pipe's buffer complete. The exit is waited for with a
    pidfd (this kernel has them)."""
    opened = []
    real = os.pidfd_open
    monkeypatch.setattr(runner_mod.os, "pidfd_open",
                        lambda pid, flags=0: opened.append(pid) or real(pid, flags))
    r = SubprocessRunner().run(Command(argv=script("""
        import sys
        data = sys.stdin.read()
        sys.stdout.buffer.write(data.upper().encode() + b"a\\r\\nb\\rc\\n" + b"x" * 3_000_000)
        sys.stderr.buffer.write(b"label \\xff\\xfe\\n")
        sys.exit(3)
        """), input="pvs\n", mutates=False, timeout=60.0))
    assert r.rc == 3 and not r.timed_out
    assert r.stdout.startswith("PVS\na\nb\nc\n") and len(r.stdout) == 10 + 3_000_000
    assert r.stderr == "label \ufffd\ufffd\n"
    assert len(opened) == 1
    missing = SubprocessRunner().run(Command(argv=("no-such-tool-here",), mutates=False))
    assert missing.rc == 127 and "not found" in missing.stderr


# A helper's end whose main thread ends (pthread_exit) while another thread of it runs on:
# /proc/PID/stat then says 'Z', and the process is still there.
MAIN_THREAD_ENDS = ("import ctypes, threading; "
                    "threading.Thread(target=time.sleep, args=(60,)).start(); "
                    "ctypes.CDLL(None).pthread_exit(None)")


def with_helpers(tmp_path: Path, n: int = 1, leader: str = "time.sleep(60)",
                 helper: str = "time.sleep(60)") -> str:
    """A command's body that starts ``n`` helpers in its own process group, each ignoring
    SIGTERM and writing its pid to ``tmp_path/helper.I`` once it does (then running
    ``helper``), waits for them, then runs ``leader``."""
    return textwrap.dedent(f"""
        import os, subprocess, sys, time
        for i in range({n}):
            subprocess.Popen([sys.executable, "-c",
                "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                f"open({str(tmp_path)!r} + '/helper.{{i}}.tmp', 'w').write(str(os.getpid())); "
                f"os.rename({str(tmp_path)!r} + '/helper.{{i}}.tmp', "
                f"{str(tmp_path)!r} + '/helper.{{i}}'); "
                {helper!r}])
        while not all(os.path.exists(f"{tmp_path}/helper.{{i}}") for i in range({n})):
            time.sleep(0.05)
        """) + leader + "\n"


def helper_pids(tmp_path: Path) -> list[int]:
    return [int(p.read_text()) for p in sorted(tmp_path.glob("helper.[0-9]"))]


@pytest.mark.real_process
def test_a_helper_in_the_group_that_ignores_sigterm_is_killed_after_the_command_exits(tmp_path):
    """The command dies on SIGTERM, a helper it started in its own process group (as
    drbdadm starts drbdsetup) ignores it: the group is waited for, not only the command,
    so the helper gets SIGKILL after the grace and is gone when run() returns."""
    cmd = Command(argv=(PY, "-c", with_helpers(tmp_path)), mutates=False, timeout=2 * START)
    r = SubprocessRunner(term_grace=1.0, reap_wait=5.0).run(cmd)
    helpers = helper_pids(tmp_path)
    try:
        assert len(helpers) == 1 and r.timed_out and r.stuck_pid is None
        assert "it exited, but pid" in r.stderr and "of its process group was still running " \
            "after 1 s: the group killed with SIGKILL" in r.stderr
        wait_gone(helpers[0])
    finally:
        kill_all(helpers)


@pytest.mark.real_process
def test_helpers_that_outlive_sigkill_are_all_abandoned_and_block_the_next_command(
        tmp_path, monkeypatch):
    """Helpers of the group still there after SIGKILL (here the SIGKILL is withheld, as
    for processes in state D) are named and abandoned like the command itself, every one
    of them: no command starts while one lives, and commands run again once all are gone."""
    real = runner_mod._signal_group
    monkeypatch.setattr(runner_mod, "_signal_group",
                        lambda pgid, sig: None if sig == signal.SIGKILL else real(pgid, sig))
    cmd = Command(argv=(PY, "-c", with_helpers(tmp_path, 2)), mutates=False,
                  timeout=2 * START)
    runner = SubprocessRunner(term_grace=0.5, reap_wait=0.5)
    r = runner.run(cmd)
    first, second = helpers = helper_pids(tmp_path)
    try:
        assert r.timed_out and r.stuck_pid == min(helpers)
        assert f"pid {min(helpers)} (python" in r.stderr
        assert f"of its process group, (and 1 more of its group: {max(helpers)}) did not " \
            f"exit 0.5 s after SIGKILL and was abandoned" in r.stderr
        os.kill(min(helpers), signal.SIGKILL)
        wait_gone(min(helpers))
        blocked = runner.run(Command(argv=("true",), mutates=False))
        assert blocked.rc == 124 and blocked.stuck_pid == max(helpers)
    finally:
        kill_all(helpers)
    wait_gone(first)
    wait_gone(second)
    assert runner.run(Command(argv=("true",), mutates=False)).ok


@pytest.mark.real_process
def test_a_changing_lvm_commands_helper_is_never_killed_even_once_lvm_has_exited(tmp_path):
    """``lvextend --resizefs`` runs fsadm in lvm's group: when lvm exits on SIGTERM but the
    helper goes on, the group is not sent SIGKILL (it may be finishing what lvm started);
    the helper is abandoned, and blocks the next command, as lvm itself would be."""
    fake = tmp_path / "lvm"
    fake.write_text(f"#!{PY}\n" + with_helpers(tmp_path))
    fake.chmod(0o755)
    runner = SubprocessRunner(term_grace=0.5, reap_wait=0.5)
    r = runner.run(Command(argv=(str(fake), "lvextend", "--resizefs"), timeout=2 * START))
    helpers = helper_pids(tmp_path)
    try:
        assert len(helpers) == 1 and r.timed_out and r.stuck_pid == helpers[0]
        assert "still running after 0.5 s; not killed (a changing lvm command" in r.stderr
        assert "SIGKILL" not in r.stderr
        assert runner_mod._start_time(helpers[0]) is not None  # alive: never killed
        assert runner.run(Command(argv=("true",), mutates=False)).stuck_pid == helpers[0]
    finally:
        kill_all(helpers)


@pytest.mark.real_process
def test_a_helper_whose_main_thread_has_ended_is_still_running(tmp_path):
    """/proc says 'Z' for a process whose main thread has ended while another thread of it
    runs on: it is still there, so lvm's helper is abandoned and blocks the next command
    (taken for gone, the next lvm would start beside it)."""
    fake = tmp_path / "lvm"
    fake.write_text(f"#!{PY}\n" + with_helpers(tmp_path, helper=MAIN_THREAD_ENDS))
    fake.chmod(0o755)
    runner = SubprocessRunner(term_grace=0.5, reap_wait=0.5)
    r = runner.run(Command(argv=(str(fake), "lvextend", "--resizefs"), timeout=2 * START))
    helpers = helper_pids(tmp_path)
    try:
        stat_line = Path(f"/proc/{helpers[0]}/stat").read_text()
        assert stat_line.rsplit(")", 1)[1].split()[0] == "Z"
        assert len(helpers) == 1 and r.timed_out and r.stuck_pid == helpers[0], r.stderr
        assert runner.run(Command(argv=("true",), mutates=False)).stuck_pid == helpers[0]
    finally:
        kill_all(helpers)


@pytest.mark.real_process
def test_a_command_is_done_when_the_helpers_in_its_group_are(tmp_path):
    """A command that exits while a helper it started in its own group still runs: run()
    waits for the helper (as it did through a pipe the helper held), then returns the
    command's own exit code; a helper still there at the command's timeout is stopped with
    the group, and the result says the command itself had exited."""
    quick = Command(argv=script("""
        import subprocess, sys
        subprocess.Popen(["sleep", "1"])
        print("done", flush=True)
        sys.exit(4)
        """), mutates=False, timeout=30.0)
    t0 = time.monotonic()
    r = SubprocessRunner().run(quick)
    assert time.monotonic() - t0 >= 1.0
    assert r.rc == 4 and not r.timed_out and r.stdout == "done\n"
    slow = Command(argv=(PY, "-c", with_helpers(tmp_path, leader="sys.exit(0)")),
                   mutates=False, timeout=START)
    r = SubprocessRunner(term_grace=0.5, reap_wait=5.0).run(slow)
    helpers = helper_pids(tmp_path)
    try:
        assert r.timed_out and r.stuck_pid is None
        assert r.stderr.startswith(f"it exited (exit 0) but its process group was still "
                                   f"running after {START:g} s: sent SIGTERM to the group")
        wait_gone(helpers[0])
    finally:
        kill_all(helpers)


@pytest.mark.real_process
def test_what_a_command_leaves_behind_cannot_write_to_its_output_once_it_is_read(tmp_path):
    """A daemon the command started (its own session, stdout inherited) that keeps writing:
    the output is read as it was when the command exited, and the daemon's later writes
    fail (EPERM on the sealed file, as they got EPIPE on a closed pipe), so nothing grows
    in memory behind the pass."""
    errfile = tmp_path / "daemon"
    daemon = textwrap.dedent(f"""
        import os, time
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.write(1, b"x" * 4096)
            except OSError as exc:
                open({str(errfile)!r}, "w").write(str(exc.errno))
                break
            time.sleep(0.01)
        """)
    cmd = Command(argv=script(f"""
        import subprocess, sys
        print("started", flush=True)
        subprocess.Popen([sys.executable, "-c", {daemon!r}], start_new_session=True)
        """), mutates=False, timeout=30.0)
    r = SubprocessRunner().run(cmd)
    assert r.ok and r.stdout.startswith("started\n")
    deadline = time.monotonic() + 20
    while not errfile.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert errfile.read_text() == str(errno.EPERM)


@pytest.mark.real_process
def test_no_descriptor_is_left_open_on_any_way_out(monkeypatch):
    """A command that ran, one not found, one that timed out, and the second output file
    failing to be made: the descriptors this process holds are the same after each."""
    def fds() -> set[str]:
        return set(os.listdir("/proc/self/fd"))

    before = fds()
    runner = SubprocessRunner(term_grace=0.2, reap_wait=2.0)
    assert runner.run(Command(argv=("true",), mutates=False)).ok
    assert runner.run(Command(argv=("no-such-tool-here",), mutates=False)).rc == 127
    assert runner.run(Command(argv=("sleep", "30"), mutates=False, timeout=0.2)).timed_out
    made = []
    real = runner_mod._capture_file

    def second_fails(name):
        if made:
            raise OSError(errno.EMFILE, "Too many open files")
        made.append(name)
        return real(name)

    monkeypatch.setattr(runner_mod, "_capture_file", second_fails)
    with pytest.raises(OSError):
        runner.run(Command(argv=("true",), mutates=False))
    assert fds() == before


@pytest.mark.real_process
def test_without_a_pidfd_the_exit_is_still_seen_and_input_still_written(monkeypatch):
    """On a kernel without pidfd_open (before 5.3) the runner asks waitid after short
    sleeps instead: the same answers."""
    def no_pidfd(pid, flags=0):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(runner_mod.os, "pidfd_open", no_pidfd)
    r = SubprocessRunner().run(Command(argv=("cat",), input="a" * 200_000, mutates=False))
    assert r.ok and r.stdout == "a" * 200_000
    t = SubprocessRunner(term_grace=0.2).run(
        Command(argv=("sleep", "30"), mutates=False, timeout=0.3))
    assert t.timed_out and "it exited within the 0.2 s grace (exit -15)" in t.stderr


@pytest.mark.real_process
def test_a_process_that_cannot_die_is_abandoned_named_and_not_piled_up(tmp_path, monkeypatch):
    """A process in state D does not die on SIGKILL; here the SIGKILL is withheld to get
    one. run() returns in bounded time, names the pid, and no other command starts while
    it lives; once it is gone, commands run again."""
    real = runner_mod._signal_group
    monkeypatch.setattr(runner_mod, "_signal_group",
                        lambda pgid, sig: None if sig == signal.SIGKILL else real(pgid, sig))
    pidfile = tmp_path / "pid"
    cmd = Command(argv=script(f"""
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open({str(pidfile)!r}, "w").write(str(os.getpid()))
        time.sleep(60)
        """), timeout=START)
    r = SubprocessRunner(term_grace=0.5, reap_wait=0.5)
    pid = None
    try:
        t0 = time.monotonic()
        res = r.run(cmd)
        assert time.monotonic() - t0 < START + 0.5 + 0.5 + 1.0
        pid = int(pidfile.read_text())
        assert res.timed_out and res.rc == 124 and res.stuck_pid == pid
        assert f"pid {pid} (" in res.stderr and "was abandoned" in res.stderr
        assert "stuck in the kernel" in res.stderr and f"/proc/{pid}/stack" in res.stderr
        assert lvm.classify(res).value == "timeout"

        started = r.started
        again = r.run(Command(argv=(PY, "-c", "pass"), timeout=5))
        assert r.started == started  # not started at all
        assert again.timed_out and again.stuck_pid == pid
        assert again.stderr.startswith(f"not started: pid {pid} (")
        assert not r.run(Command(argv=("true",), timeout=5)).ok and r.started == started

        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        assert r.run(Command(argv=(PY, "-c", "pass"), timeout=5)).ok
    finally:
        if pid is None and pidfile.exists():
            pid = int(pidfile.read_text())
        if pid is not None:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_timeouts_suit_each_command():
    """A metadata change is not given a long report's or a data operation's timeout."""
    vg, lv = "vg0", "data"
    assert lvm.fullreport().timeout == lvm.REPORT_TIMEOUT <= 120
    assert lvm.version().timeout <= 30
    metadata = [lvm.pvcreate("/dev/vdb"), lvm.vgcreate(vg, ("/dev/vdb",)),
                lvm.vgextend(vg, ("/dev/vdb",)), lvm.vgreduce(vg, "/dev/vdb"), lvm.vgremove(vg),
                lvm.lvcreate(vg, lv, 2**20), lvm.lvextend(vg, lv, 2**20),
                lvm.pvmove(vg, lv, "/dev/vdb", ("/dev/vdc",)), lvm.pvmove_resume(),
                lvm.drop_legs_on(vg, lv, ("/dev/vdb",)), lvm.add_tag(vg, lv, "t"),
                lvm.del_tag(vg, lv, "t")]
    assert {c.timeout for c in metadata} == {lvm.METADATA_TIMEOUT} and lvm.METADATA_TIMEOUT <= 120
    assert lvm.add_raid1_leg(vg, lv, ("/dev/vdc",)).timeout == lvm.CONVERT_TIMEOUT
    assert lvm.METADATA_TIMEOUT < lvm.CONVERT_TIMEOUT < lvm.DISCARD_TIMEOUT
    assert lvm.lvremove(vg, lv).timeout == lvm.lvreduce(vg, lv, 2**20).timeout == lvm.DISCARD_TIMEOUT
    assert md.build("/dev/md1", "/dev/vdb").timeout == md.add("/dev/md1", "/dev/vdc").timeout <= 60
    assert md.set_sync_speed("/dev/md1", "max", 1024).timeout <= 60
    assert md.stop("/dev/md1").timeout == md.STOP_TIMEOUT > 60


# -- openers ---------------------------------------------------------------------------------


def holder(path: Path | str, flags: int = os.O_RDONLY) -> subprocess.Popen:
    """A process that opens ``path`` (plain open, no mount, no O_EXCL) and sleeps."""
    proc = subprocess.Popen(
        [PY, "-c", f"import os, sys, time; os.open({str(path)!r}, {flags}); "
                   "print('open', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "open\n"
    return proc


@pytest.mark.real_process
def test_openers_of_a_file_held_by_another_process(tmp_path):
    f = tmp_path / "disk.img"
    f.write_bytes(b"\0" * 4096)
    other = tmp_path / "other.img"
    other.write_bytes(b"")
    r = SubprocessRunner()
    assert r.openers([str(f)]) == {str(f): ()}
    proc = holder(f, os.O_RDWR)
    try:
        comm = Path(f"/proc/{proc.pid}/comm").read_text().strip()
        got = r.openers([str(f), str(other), str(tmp_path / "missing")])
        assert got == {str(f): (f"pid {proc.pid} ({comm})",), str(other): (),
                       str(tmp_path / "missing"): ()}
        # through a symlink too (a by-id name)
        link = tmp_path / "by-id-link"
        link.symlink_to(f)
        assert r.openers([str(link)])[str(link)] == (f"pid {proc.pid} ({comm})",)
        # the reconciler's own descriptors are not openers
        fd = os.open(other, os.O_RDONLY)
        try:
            assert r.openers([str(other)]) == {str(other): ()}
        finally:
            os.close(fd)
    finally:
        proc.kill()
        proc.wait()
    assert r.openers([str(f)]) == {str(f): ()}


def _a_block_device() -> tuple[str, int] | None:
    """A block device this machine can open (a loop device: unbound ones open fine)."""
    for name in sorted(os.listdir("/dev")):
        path = f"/dev/{name}"
        if not name.startswith("loop") or not name[4:].isdigit():
            continue
        try:
            st = os.stat(path)
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        os.close(fd)
        if stat.S_ISBLK(st.st_mode):
            return path, st.st_rdev
    return None


def _no_block_device() -> None:
    """No openable block device on this machine: a skip on a developer's laptop, a failure
    under CI (CI's machine has loop devices; a skip there would prove nothing)."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail("no openable block device (loop) under CI: these tests never skip there",
                    pytrace=False)
    pytest.skip("no openable block device (loop) here")


@pytest.mark.real_process
def test_openers_of_a_block_device_by_another_name_of_it(tmp_path):
    """Matched by device number: a holder of /dev/loopN is seen through another node of
    the same device (as a holder of /dev/sdb is through /dev/disk/by-id/...)."""
    found = _a_block_device()
    if found is None:
        _no_block_device()
    dev, rdev = found
    alias = tmp_path / "same-disk"
    os.mknod(alias, 0o600 | stat.S_IFBLK, rdev)
    r = SubprocessRunner()
    proc = holder(dev)
    try:
        comm = Path(f"/proc/{proc.pid}/comm").read_text().strip()
        assert r.openers([str(alias)]) == {str(alias): (f"pid {proc.pid} ({comm})",)}
    finally:
        proc.kill()
        proc.wait()
    assert r.openers([str(alias)]) == {str(alias): ()}


@pytest.mark.real_process
def test_openers_of_a_disk_include_its_partitions_and_the_reverse(tmp_path):
    """A partition held open is its disk in use, and the reverse: found through sysfs
    (a made-up tree here, naming a real loop device as partition 1 of a disk 7:250)."""
    found = _a_block_device()
    if found is None:
        _no_block_device()
    dev, rdev = found
    disk = os.makedev(7, 250)
    base = tmp_path / "sys" / "dev" / "block"
    (base / "7:250" / "loopp1").mkdir(parents=True)
    (base / "7:250" / "dev").write_text("7:250\n")
    (base / "7:250" / "loopp1" / "dev").write_text(f"{os.major(rdev)}:{os.minor(rdev)}\n")
    (base / "7:250" / "loopp1" / "partition").write_text("1\n")
    (base / f"{os.major(rdev)}:{os.minor(rdev)}").symlink_to(base / "7:250" / "loopp1")
    disk_node = tmp_path / "disk"
    os.mknod(disk_node, 0o600 | stat.S_IFBLK, disk)
    part_node = tmp_path / "part"
    os.mknod(part_node, 0o600 | stat.S_IFBLK, rdev)
    r = SubprocessRunner()
    r.sys_root = str(tmp_path / "sys")
    proc = holder(dev)  # the "partition" is held open
    try:
        comm = Path(f"/proc/{proc.pid}/comm").read_text().strip()
        assert r.openers([str(disk_node)]) == {str(disk_node): (f"pid {proc.pid} ({comm})",)}
    finally:
        proc.kill()
        proc.wait()
    assert r.openers([str(disk_node)]) == {str(disk_node): ()}
    # and the reverse: the partition's disk family is read from its own sysfs entry
    from reconciler.runner import _family
    assert sorted(_family(rdev, str(tmp_path / "sys"))) == sorted([rdev, disk])
    assert sorted(_family(disk, str(tmp_path / "sys"))) == sorted([disk, rdev])


@pytest.mark.real_process
def test_openers_stat_only_descriptors_that_name_a_dev_node(tmp_path, monkeypatch):
    """A stat through /proc/PID/fd/N reaches the open file and can hang on a dead NFS or
    FUSE mount: the link is read first, and only /dev targets are stat'ed."""
    f = tmp_path / "disk.img"
    f.write_bytes(b"")
    stated: list[str] = []
    real = runner_mod._identity

    def spy(path):
        if path.startswith("/proc/"):
            try:  # what the link names at the moment of the stat (a busy machine's
                stated.append((path, os.readlink(path)))  # processes reuse fd numbers)
            except FileNotFoundError:
                pass  # gone meanwhile
        return real(path)

    monkeypatch.setattr(runner_mod, "_identity", spy)
    proc = holder(f)  # it also holds pipes (its stdout) and whatever Python opened
    try:
        comm = Path(f"/proc/{proc.pid}/comm").read_text().strip()
        assert SubprocessRunner().openers([str(f)]) == {str(f): (f"pid {proc.pid} ({comm})",)}
        for path, target in stated:
            assert target.startswith("/dev/"), (path, target)
    finally:
        proc.kill()
        proc.wait()


def test_openers_include_swap(tmp_path):
    area = tmp_path / "swapfile"
    area.write_bytes(b"")

    class Swapping(SubprocessRunner):
        def read(self, path, *, host="local"):
            if path == "/proc/swaps":
                return ("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
                        f"{area}\tfile\t\t1024\t\t0\t\t-2\n")
            return super().read(path, host=host)

    assert Swapping().openers([str(area)]) == {str(area): ("swap",)}


def test_recording_runner_forwards_openers(tmp_path):
    f = tmp_path / "x"
    f.write_text("")
    rec = RecordingRunner(SubprocessRunner(), lambda res: None)
    assert rec.openers([str(f)]) == {str(f): ()}


def test_read_bytes_is_bounded_and_says_none_for_a_missing_path(tmp_path):
    f = tmp_path / "disk"
    f.write_bytes(bytes(range(256)) * 16)
    r = RecordingRunner(SubprocessRunner(), lambda res: None)  # wrappers forward it
    assert r.read_bytes(str(f), 1024, 4) == bytes([0, 1, 2, 3])
    assert r.read_bytes(str(f), 4094, 16) == bytes([254, 255])  # fewer at the end
    assert r.read_bytes(str(tmp_path / "none"), 0, 16) is None
    for offset, length in ((0, 0), (-1, 16), (0, 64 * 1024 + 1)):
        with pytest.raises(ValueError):
            r.read_bytes(str(f), offset, length)


@pytest.mark.real_process  # the probe is a forked child
def test_claimed_is_ebusy_while_another_exclusive_open_holds_the_device(tmp_path):
    """The exclusive-open probe on this machine's kernel, with no process: this test's own
    O_EXCL descriptor of a loop device is another holder, so the probe's open is refused
    (EBUSY); once it is closed, the probe opens and closes it; its own open is released at
    once (a second probe opens it too). A missing path or a plain file is not claimed."""
    found = _a_block_device()
    if found is None:
        _no_block_device()
    dev, _ = found
    f = tmp_path / "disk.img"
    f.write_bytes(b"\0" * 4096)
    r = SubprocessRunner()
    assert r.claimed([dev, str(f), str(tmp_path / "missing")]) == {
        dev: False, str(f): False, str(tmp_path / "missing"): False}
    assert r.claimed([dev]) == {dev: False}  # the probe let go of its own claim
    fd = os.open(dev, os.O_RDONLY | os.O_EXCL)
    try:
        assert r.claimed([dev]) == {dev: True}
    finally:
        os.close(fd)
    assert r.claimed([dev]) == {dev: False}


@pytest.mark.real_process  # the probe is a forked child
def test_claimed_says_an_error_it_cannot_read_as_a_claim(monkeypatch):
    found = _a_block_device()
    if found is None:
        _no_block_device()
    dev, _ = found

    def offline(path, flags, *a):  # sd_open of a transport-offline SCSI disk
        assert flags & os.O_EXCL and not flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        raise OSError(errno.ENXIO, "No such device or address")

    monkeypatch.setattr(os, "open", offline)
    assert SubprocessRunner().claimed([dev]) == {dev: "ENXIO: No such device or address"}


@pytest.mark.real_process  # the probe is a forked child
def test_claimed_does_not_wait_past_its_limit_for_a_stuck_open(monkeypatch):
    """An open (or a last close) waiting on I/O that never completes: the probe answers an
    error after ``probe_seconds`` (the step is then refused, quoting it), not never."""
    found = _a_block_device()
    if found is None:
        _no_block_device()
    dev, _ = found
    release = threading.Event()
    real_open = os.open

    def stuck(path, flags, *a):
        release.wait(5)
        return real_open(path, flags, *a)

    monkeypatch.setattr(os, "open", stuck)
    r = SubprocessRunner()
    r.probe_seconds = 0.05
    t0 = time.monotonic()
    try:
        got = r.claimed([dev])[dev]
        assert time.monotonic() - t0 < 2
    finally:
        for pid, _ in runner_mod._STUCK_PROBES.values():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        runner_mod._STUCK_PROBES.clear()
    assert isinstance(got, str) and got.startswith("ETIMEDOUT: the exclusive open of ") \
        and "did not return within 0.05 s" in got, got


def _stuck_opens_of(dev: str, tmp_path, monkeypatch):
    """(stuck, forks, fifo): while ``stuck["on"]``, an open of ``dev`` (in the probe's child)
    opens ``fifo``, which nobody writes, instead: a real wait in the kernel, which a write
    open of ``fifo`` ends. ``forks``: the pids of the children forked."""
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    real_open, real_fork = os.open, os.fork
    stuck = {"on": True}
    forks: list[int] = []

    def blocking_open(path, flags, *a):
        if stuck["on"] and path == dev:
            return real_open(fifo, os.O_RDONLY)  # waits in the kernel for a writer
        return real_open(path, flags, *a)

    def counting_fork():
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(os, "open", blocking_open)
    monkeypatch.setattr(os, "fork", counting_fork)
    return stuck, forks, fifo


@pytest.mark.real_process
def test_a_stuck_probe_is_a_child_holding_nothing_of_ours_and_is_not_started_twice(
        tmp_path, monkeypatch):
    """A probe whose open never returns (here: the child's open waits on a FIFO no one has
    opened for writing, a real wait in the kernel) is a forked child, not a thread of ours:
    ``claimed`` answers within its limit, leaves no thread behind, and the child holds no
    descriptor of ours (not the instance lock, nor 0-2: whoever reads our output to its
    end must not wait for it). While
    it lives, a later probe of that device starts no second child and says so; once it has
    ended it is reaped and the device is probed again."""
    found = _a_block_device()
    if found is None:
        _no_block_device()
    dev, _ = found
    lock = os.open(tmp_path / "instance.lock", os.O_RDWR | os.O_CREAT)  # stands for ours
    stuck, forks, fifo = _stuck_opens_of(dev, tmp_path, monkeypatch)
    threads = threading.active_count()
    r = SubprocessRunner()
    r.probe_seconds = 0.5
    try:
        t0 = time.monotonic()
        got = r.claimed([dev])[dev]
        assert time.monotonic() - t0 < 3
        assert isinstance(got, str) and got.startswith("ETIMEDOUT: the exclusive open of "), got
        assert threading.active_count() == threads  # no thread of ours waits on it
        assert len(forks) == 1
        child = forks[0]
        fds = sorted(int(n) for n in os.listdir(f"/proc/{child}/fd"))
        assert fds == [], fds  # neither the lock nor any other of ours, not even 0-2
        # A second probe of the same device: no second child, an answer naming the first.
        got = r.claimed([dev])[dev]
        assert len(forks) == 1
        assert isinstance(got, str) and f"probe of {dev}" in got and f"pid {child}" in got \
            and "still stuck in the kernel" in got, got
        # The open returns (a writer appears): the child ends, is reaped, the device probed.
        stuck["on"] = False
        w = os.open(fifo, os.O_WRONLY)
        os.close(w)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive_unreaped(child):
            time.sleep(0.02)
        assert r.claimed([dev]) == {dev: False}
        assert len(forks) == 2
        with pytest.raises(ChildProcessError):
            os.waitpid(child, os.WNOHANG)  # reaped by the runner, no zombie left
    finally:
        os.close(lock)
        for pid in forks:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        runner_mod._STUCK_PROBES.clear()


def _alive_unreaped(pid: int) -> bool:
    """The process is running (not yet a zombie waiting for its reap)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.real_process
def test_a_process_with_a_stuck_probe_exits_and_leaves_its_lock_free(tmp_path):
    """A reconciler whose probe is stuck in the kernel (its child's open waits on a FIFO)
    exits at once all the same, its output ends (a caller reading it to its end is not kept
    waiting), and its flock (the instance lock) is free for the next one: the stuck child
    holds no descriptor of it."""
    found = _a_block_device()
    if found is None:
        _no_block_device()
    dev, _ = found
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    lock = tmp_path / "instance.lock"
    pidfile = tmp_path / "probe.pid"
    body = f"""
        import fcntl, os, sys
        sys.path.insert(0, {str(Path(runner_mod.__file__).parents[1])!r})
        from reconciler import runner
        fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        real_open = os.open
        os.open = lambda p, f, *a: real_open({str(fifo)!r}, os.O_RDONLY) if p == {dev!r} \\
            else real_open(p, f, *a)
        r = runner.SubprocessRunner()
        r.probe_seconds = 0.2
        print(r.claimed([{dev!r}]), flush=True)
        with open({str(pidfile)!r}, "w") as f:
            f.write(str(runner._STUCK_PROBES[{dev!r}][0]))
    """
    child = None
    try:
        t0 = time.monotonic()
        out = subprocess.run(script(body), capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert "ETIMEDOUT" in out.stdout
        assert time.monotonic() - t0 < 25
        child = int(pidfile.read_text())
        assert _alive_unreaped(child) or os.path.exists(f"/proc/{child}")  # still waiting
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: nobody holds it any more
        finally:
            os.close(fd)
    finally:
        if child is not None:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.real_process
def test_a_stuck_probe_is_remembered_for_the_next_reconciler_process(tmp_path, monkeypatch):
    """With a ``stuck_file``, a probe stuck in the kernel is remembered (pid, start time) for
    the next process too (a --once started by a timer, a restarted daemon): it starts no
    second probe of that device while that very process lives, and forgets it once gone."""
    found = _a_block_device()
    if found is None:
        _no_block_device()
    dev, _ = found
    stuck, forks, fifo = _stuck_opens_of(dev, tmp_path, monkeypatch)
    stuck_file = str(tmp_path / "run" / "stuck-command")
    first = SubprocessRunner(stuck_file=stuck_file)
    first.probe_seconds = 0.3
    try:
        assert first.claimed([dev])[dev].startswith("ETIMEDOUT: the exclusive open of ")
        (child,) = forks
        runner_mod._STUCK_PROBES.clear()  # what the next process knows: the file only
        second = SubprocessRunner(stuck_file=stuck_file)
        second.probe_seconds = 0.3
        got = second.claimed([dev])[dev]
        assert f"an earlier exclusive-open probe of {dev} (pid {child}" in got, got
        assert forks == [child]
        stuck["on"] = False
        os.close(os.open(fifo, os.O_WRONLY))  # its open returns: it ends (unreaped here)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive_unreaped(child):
            time.sleep(0.02)
        assert second.claimed([dev]) == {dev: False} and len(forks) == 2
        assert not os.path.exists(f"{stuck_file}.probes")
    finally:
        for pid in forks:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        runner_mod._STUCK_PROBES.clear()


@pytest.mark.real_process
def test_a_node_with_no_device_behind_it_is_not_opened(tmp_path, monkeypatch):
    """REVIEW7c F6: a stale node (a static /dev, one mdadm made without udev) whose device
    sysfs does not list: opening it would make the kernel load a module or create the
    device (md, loop). Nothing there to claim: False, with no probe started."""
    ghost = tmp_path / "ghost"
    major, minor = 7, 1048000  # a loop minor nobody has
    if os.path.exists(f"/sys/dev/block/{major}:{minor}"):
        pytest.fail("that loop device exists here")
    try:
        os.mknod(ghost, stat.S_IFBLK | 0o600, os.makedev(major, minor))
    except PermissionError:
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            raise
        pytest.skip("mknod needs root")
    forks: list[int] = []
    monkeypatch.setattr(os, "fork", lambda: forks.append(1) or (_ for _ in ()).throw(
        AssertionError("forked")))
    assert SubprocessRunner().claimed([str(ghost)]) == {str(ghost): False}
    assert forks == []


def test_a_probe_that_cannot_be_forked_says_so(monkeypatch):
    """At the unit's TasksMax (or the pid limit) fork fails EAGAIN: the probe could not
    tell, which is said (the step is then refused quoting it), not a crash of the pass."""
    found = _a_block_device()
    if found is None:
        _no_block_device()
    dev, _ = found

    def no_fork():
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    assert SubprocessRunner().claimed([dev]) == {dev: (
        "EAGAIN: Resource temporarily unavailable (the exclusive-open probe could not be "
        "forked)")}
