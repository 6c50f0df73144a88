"""The one boundary where processes are started.

Everything that touches the host goes through a ``Runner``: the real ``SubprocessRunner``,
or the simulator (a dry run never reaches apply: it stops after planning). This is
the only module that imports ``subprocess`` (checked by an import contract), so an audit
of what the reconciler can execute starts and ends here.

Rules kept here, not by callers: argv lists only (never a shell), ``LC_ALL=C`` so that
messages and number formats are the ones the parsers expect, and a timeout on every command
(each builder in the adapters sets one suited to what the command does).

When a timeout expires, the command's whole process group is asked to stop with SIGTERM
first: lvm blocks signals inside its critical sections (a suspended LV, a metadata commit),
so a polite signal lets it finish or roll back that section and exit, where an immediate
SIGKILL could leave an LV suspended and every I/O to it hanging. Only after
``TERM_GRACE_SECONDS`` does SIGKILL follow, and the reap is waited for ``REAP_SECONDS`` at
most: a process stuck in the kernel (state D, e.g. reading a suspended device-mapper
device) cannot die, and a pass must never hang on it. A mutating lvm command is never sent
SIGKILL at all: after SIGTERM and the grace it is abandoned as below (a kill inside its
suspend/commit section is the worst outcome); read-only commands may still be killed. Such a process is abandoned with an
error that names it, and while it is still there no new command is started at all: it
holds whatever lock it took, the next lvm or mdadm would block on the same device or lock
and pile up behind it, and a host with a device that does not answer is no place to move
data. Every pass then fails at once with that reason until the process is gone; with a
``stuck_file`` the process is remembered (pid and start time) for the next reconciler
process too (a new ``--once``, a restarted daemon). An
orphaned ``lvs`` holding a VG lock is worse than a failed pass. The command's whole
process group is waited for, not only the command: a helper it started in its group
(drbdsetup under drbdadm) is part of it, killed with it after the timeout (unless the
command is a changing lvm one) and abandoned like it if it cannot die.

A command's output goes to anonymous files (``_capture_file``), read once it has exited,
and its exit is seen the moment it happens (a pidfd): a process it started in a session of
its own (a daemon) cannot delay that by keeping its output open.

``openers`` answers who has a block device open right now (every process's descriptors
in /proc, and swap): a plain ``open()`` of a raw disk (a VM, a database) is invisible to
mounts and sysfs holders. The scan costs no process but touches every descriptor on the
host, so the executor asks only right before a step that overwrites or stops a device.
"""

from __future__ import annotations

import errno
import fcntl
import math
import os
import select
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn, Protocol

# After a command's timeout: how long SIGTERM is given to work before SIGKILL, and how long
# the reap of a killed process is waited for before it is abandoned as stuck.
TERM_GRACE_SECONDS = 10.0
# How long an exclusive-open probe (``SubprocessRunner.claimed``) may take for one device.
PROBE_SECONDS = 10.0
REAP_SECONDS = 10.0
# ``run`` returns at most this long after a command's own timeout expired.
KILL_BOUND_SECONDS = TERM_GRACE_SECONDS + REAP_SECONDS
# ``read_bytes`` reads a few blocks (a superblock), never a device's content.
MAX_READ_BYTES = 64 * 1024


def check_read_bounds(offset: int, length: int) -> None:
    if offset < 0 or not 0 < length <= MAX_READ_BYTES:
        raise ValueError(f"read_bytes reads 1 to {MAX_READ_BYTES} bytes from offset >= 0, "
                         f"not {length} from {offset}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """A command to run on a host. ``mutates`` is set by the adapter that builds it."""

    argv: tuple[str, ...]
    host: str = "local"
    mutates: bool = True
    timeout: float = 120.0
    input: str | None = None

    def __post_init__(self) -> None:
        if not self.argv or not all(isinstance(a, str) for a in self.argv):
            raise TypeError(f"argv must be a non-empty tuple of str, got {self.argv!r}")

    def __str__(self) -> str:
        return " ".join(self.argv)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    command: Command
    rc: int
    stdout: str
    stderr: str
    duration: float = 0.0
    timed_out: bool = False
    stuck_pid: int | None = None  # a process abandoned after its timeout (see the module doc)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out


class Runner(Protocol):
    """The host, as the reconciler may touch it.

    ``run`` runs one command and reports how it ended (never raises for a non-zero exit).
    ``read`` returns the text of a kernel interface file (``/proc/mdstat``, a sysfs
    attribute), or None when it does not exist: where the kernel already says something,
    reading it costs no process. A path ending in ``/`` names a directory: ``read`` then
    returns its entries, sorted, one per line (what ``ls -1`` prints), e.g. the holders of a
    block device. Listing through ``read`` rather than a method of its own keeps every
    wrapper of a runner (dry run, recording, the daemon's keep-alive) working unchanged.

    ``openers(paths)`` says, for each device path, who has it open right now as short
    human strings ("pid 4242 (qemu-system-x86)", "swap"); an empty tuple means nobody.
    Asked only right before a step that overwrites or stops a device; wrappers forward it.

    ``claimed(paths)`` says, for each device path, whether the kernel refuses an exclusive
    open of it right now (True: something holds it exclusively, False: nothing does, or the
    path does not exist), or, when the probe could not tell, the error it met ("ENXIO: No
    such device or address"). Asked with ``openers``; wrappers forward it.

    ``read_bytes(path, offset, length)`` returns at most ``length`` bytes (never more than
    ``MAX_READ_BYTES``) of a file or block device from ``offset`` (fewer at its end), or None
    when it does not exist: a file system's superblock, read with no process.
    """

    def run(self, cmd: Command) -> CommandResult: ...

    def read(self, path: str, *, host: str = "local") -> str | None: ...

    def read_bytes(self, path: str, offset: int, length: int, *,
                   host: str = "local") -> bytes | None: ...

    def openers(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, tuple[str, ...]]: ...

    def claimed(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, bool | str]: ...


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to a process group that may be gone already."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# memfd_create's MFD_NOEXEC_SEAL (Linux 6.3; older kernels refuse it with EINVAL, newer
# ones warn once without it or without MFD_EXEC), not in ``os`` before Python 3.12.
_MFD_NOEXEC_SEAL = 0x0008


def _capture_file(name: str) -> int:
    """An anonymous file in memory for one stream of a command's output.

    A command writes its output to a file, not to a pipe this process reads while it runs:
    on one busy CPU every write to a pipe can wake this process to read a few kilobytes,
    and ``lvm fullreport`` on 1,000 LVs (0.8 MB of JSON) took about 5 % longer through a
    pipe than written to a file (bench/bench_lab.py's guest). The output is read once the
    command has exited (``_captured``); a process it started that keeps the descriptor
    cannot delay that. A tool that opens ``/dev/stdout`` anew writes from the start of the
    file (``>`` truncates it); none of those the adapters run does.
    """
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        try:
            return os.memfd_create(f"reconciler-{name}", flags | _MFD_NOEXEC_SEAL)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            return os.memfd_create(f"reconciler-{name}", flags)
    except (AttributeError, OSError):  # no memfd (kernel < 3.17): an unlinked temporary file
        import tempfile

        with tempfile.TemporaryFile() as f:
            return os.dup(f.fileno())


def _captured(fd: int) -> str:
    """What a command that has exited wrote to ``fd`` (a ``_capture_file``), as text: UTF-8
    with invalid bytes replaced (a tool may print a label or a path in another encoding),
    and line ends as ``text=True`` gave them.

    The file is sealed first (a memfd): a process the command left behind that still
    writes to it gets EPERM (through a pipe it got EPIPE once the pipe was closed), so the
    size read is the size there is and nothing grows behind it; emptied after, once
    nothing can write to it."""
    sealed = False
    for seals in (fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE, fcntl.F_SEAL_GROW):
        try:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
            sealed = bool(seals & fcntl.F_SEAL_WRITE)
            break
        except OSError as exc:  # EBUSY: a writable mapping of it; else not a memfd
            if exc.errno != errno.EBUSY:
                break
    size = os.fstat(fd).st_size
    chunks, offset = [], 0
    while offset < size and (chunk := os.pread(fd, size - offset, offset)):
        chunks.append(chunk)
        offset += len(chunk)
    if sealed:  # nothing writes to it any more: its memory goes now, not with the last fd
        os.ftruncate(fd, 0)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


class _Exit:
    """Waits for a command's process to exit without reaping it, writing its input
    meanwhile: a pidfd (Linux 5.3) wakes ``poll`` at the exit itself; without one, ``waitid``
    is asked after sleeps of 0.5 ms growing to 50 ms (what ``Popen.wait`` does). Unreaped,
    the process keeps its process group id from being reused while the group is signalled
    and looked for (``SubprocessRunner._stop``)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.fd: int | None = None

    def __enter__(self) -> _Exit:
        try:
            self.fd = os.pidfd_open(self.proc.pid)
        except (AttributeError, OSError):
            self.fd = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def exited(self) -> bool:
        try:
            flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
            return os.waitid(os.P_PID, self.proc.pid, flags) is not None
        except ChildProcessError:  # reaped already
            return True

    def _close_input(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass

    def wait(self, timeout: float, data: bytes | None = None) -> bool:
        """True once the process has exited, False when ``timeout`` seconds pass first.
        ``data`` is written to its stdin, which is closed once written (or once the process
        stops reading it); with no ``data`` its stdin, if a pipe, is closed at once."""
        deadline = time.monotonic() + timeout
        poller = select.poll()
        if self.fd is not None:
            poller.register(self.fd, select.POLLIN)
        view, stdin = memoryview(data or b""), None
        if view and self.proc.stdin is not None and not self.proc.stdin.closed:
            stdin = self.proc.stdin.fileno()
            os.set_blocking(stdin, False)
            poller.register(stdin, select.POLLOUT)
        else:
            self._close_input()
        delay, pidfd = 0.0005, self.fd
        while not self.exited():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if pidfd is None:
                left, delay = min(left, delay), min(delay * 2, 0.05)
            for fd, _ in poller.poll(max(1, math.ceil(left * 1000))):
                if fd == pidfd:
                    if not self.exited():  # a tracer (gdb) holds the exit: poll would spin
                        poller.unregister(fd)
                        pidfd = None
                    continue
                if fd != stdin:
                    continue
                try:
                    view = view[os.write(stdin, view[:_PIPE_CHUNK]):]
                except BlockingIOError:
                    continue
                except OSError:  # EPIPE: it closed its input; what it read is its answer
                    view = view[:0]
                if not view:
                    poller.unregister(stdin)
                    stdin = None
                    self._close_input()
        self._close_input()
        return True


# How much of a command's input one write offers its pipe (a pipe holds 64 KiB).
_PIPE_CHUNK = 64 * 1024


def _live(pid: int, state: str) -> bool:
    """Whether a process in ``state`` (/proc/PID/stat field 3) is still running: a zombie is
    not, unless only its main thread has ended (``pthread_exit``) and other threads of it
    run on (/proc/PID/task lists them)."""
    if state != "Z":
        return True
    try:
        tasks = [t for t in os.listdir(f"/proc/{pid}/task") if t != str(pid)]
    except OSError:
        return False
    for tid in tasks:  # a thread that has ended but is not reaped yet (a tracer's) runs nothing
        line = _proc_field(pid, f"task/{tid}/stat")
        fields = line.rsplit(")", 1)[1].split() if line else []
        if fields and fields[0] not in ("Z", "X", "x"):
            return True
    return False


def _group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` other than its leader (from /proc:
    the group is field 5 of /proc/PID/stat, the state field 3)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == pgid:
            continue
        line = _proc_field(int(name), "stat")
        fields = line.rsplit(")", 1)[1].split() if line else []
        if len(fields) > 2 and fields[2] == str(pgid) and _live(int(name), fields[0]):
            found.append(int(name))
    return sorted(found)


def _group_left(leader: _Exit, timeout: float) -> list[int]:
    """After a signal to a command's process group: [] once the command has exited and no
    other process of its group is left, within ``timeout`` seconds; else the pids still
    there, the command's own first. The command is not reaped here."""
    deadline = time.monotonic() + timeout
    if not leader.wait(timeout):
        return [leader.proc.pid, *_group_members(leader.proc.pid)]
    while members := _group_members(leader.proc.pid):
        left = deadline - time.monotonic()
        if left <= 0:
            return members
        time.sleep(min(0.05, left))
    return []


def _group_gone(pgid: int, deadline: float) -> bool:
    """Whether process group ``pgid``, its leader reaped, is empty by ``deadline``
    (``time.monotonic``): one ``kill(-pgid, 0)`` when it is, as it nearly always is. While a
    process of the group lives, its id is not given to another process."""
    delay = 0.0005
    while True:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # a member that is not ours to signal: it is there
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)


def _proc_field(pid: int, name: str) -> str:
    try:
        with open(f"/proc/{pid}/{name}", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> int | None:
    """A process's start time (clock ticks since boot, /proc/PID/stat field 22): with the
    pid, what tells the same process from a later one that reused its number."""
    line = _proc_field(pid, "stat")
    try:
        fields = line.rsplit(")", 1)[1].split() if line else []
        if not fields or not _live(pid, fields[0]):  # gone (a zombie waits for its reap)
            return None
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _describe_stuck(pid: int) -> str:
    """'pid 4242 (lvm) in state D, waiting in io_schedule' from /proc, as far as it says."""
    comm = _proc_field(pid, "comm") or "?"
    stat_line = _proc_field(pid, "stat")
    # the state is the first field after the parenthesised command name
    state = stat_line.rsplit(")", 1)[-1].split()[:1] if stat_line else []
    wchan = _proc_field(pid, "wchan")
    text = f"pid {pid} ({comm})"
    if state:
        text += f" in state {state[0]}"
    if wchan and wchan != "0":
        text += f", waiting in {wchan}"
    return text


class SubprocessRunner:
    """Runs commands on this machine with ``LC_ALL=C`` and a hard timeout.

    ``prefix`` lets a deployment run tools in another namespace (``nsenter -t 1 -m --``)
    without any module knowing about it.
    """

    def __init__(self, prefix: tuple[str, ...] = (), extra_env: dict[str, str] | None = None,
                 *, term_grace: float = TERM_GRACE_SECONDS, reap_wait: float = REAP_SECONDS,
                 stuck_file: str | None = None):
        self.prefix = prefix
        # Where an abandoned process is remembered (pid, start time, argv) for the next
        # process: a new --once or a restarted daemon must not start lvm behind it either.
        self.stuck_file = stuck_file
        self.term_grace = term_grace
        self.probe_seconds = PROBE_SECONDS
        self.reap_wait = reap_wait
        # abandoned, maybe alive: the command, its process, the pid abandoned (that process's
        # or one of its group's) and that pid's start time
        self._stuck: list[tuple[Command, subprocess.Popen, int, int | None]] = []
        self.env = dict(os.environ, LC_ALL="C", LANG="C")
        # lvm2 prints a warning per inherited descriptor otherwise; we close them anyway.
        self.env["LVM_SUPPRESS_FD_WARNINGS"] = "1"
        if extra_env:
            self.env.update(extra_env)
        self.started = 0  # processes started, for the per-pass process budget
        self.sys_root = "/sys"  # where sysfs is (tests point it at a made-up tree)

    def run(self, cmd: Command) -> CommandResult:
        argv = self.prefix + cmd.argv
        t0 = time.monotonic()
        blocked = self._blocked_by_stuck(cmd)
        if blocked is not None:
            return CommandResult(command=cmd, rc=124, stdout="", stderr=blocked[1],
                                 duration=0.0, timed_out=True, stuck_pid=blocked[0])
        data = None if cmd.input is None else cmd.input.encode()
        out_fd = err_fd = -1
        try:
            out_fd = _capture_file("stdout")
            err_fd = _capture_file("stderr")
            self.started += 1
            try:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL if data is None else subprocess.PIPE,
                    stdout=out_fd, stderr=err_fd, env=self.env, close_fds=True,
                    start_new_session=True)
            except FileNotFoundError:
                return CommandResult(command=cmd, rc=127, stdout="",
                                     stderr=f"{argv[0]}: command not found in PATH",
                                     duration=0.0)
            with _Exit(proc) as leader:
                if not leader.wait(cmd.timeout, data):
                    return self._stop(cmd, proc, leader, t0, out_fd, err_fd)
                proc.wait()
                # A helper still running in its process group (it did not wait for it):
                # the command is not done until the helper is, as through a pipe it held.
                if not _group_gone(proc.pid, t0 + cmd.timeout):
                    return self._stop(cmd, proc, leader, t0, out_fd, err_fd)
                return CommandResult(command=cmd, rc=proc.returncode,
                                     stdout=_captured(out_fd), stderr=_captured(err_fd),
                                     duration=time.monotonic() - t0)
        finally:
            for fd in (out_fd, err_fd):
                if fd >= 0:
                    os.close(fd)

    def _stop(self, cmd: Command, proc: subprocess.Popen, leader: _Exit, t0: float,
              out_fd: int, err_fd: int) -> CommandResult:
        """The timeout expired: SIGTERM the group, wait the grace, SIGKILL, wait the reap;
        a process that is still there then is abandoned (never waited for again).

        The group is waited for, not only the command: a helper it started (drbdsetup under
        drbdadm) that ignores SIGTERM is killed too, and one that outlives SIGKILL is
        abandoned like the command. A changing lvm command's group is never sent SIGKILL,
        whether lvm itself or a helper of it (fsadm, a file system check) is what is left.
        The group is signalled while the command's process is unreaped or one of the group
        lives, so its id cannot have been reused.
        """
        if proc.returncode is None:
            said = [f"timed out after {cmd.timeout:g} s: sent SIGTERM to its process group"]
        else:
            said = [f"it exited (exit {proc.returncode}) but its process group was still "
                    f"running after {cmd.timeout:g} s: sent SIGTERM to the group"]
        _signal_group(proc.pid, signal.SIGTERM)
        left = _group_left(leader, self.term_grace)
        if not left:
            proc.wait()
            said.append(f"it exited within the {self.term_grace:g} s grace (exit {proc.returncode})")
            return self._timed_out(cmd, _captured(out_fd), _captured(err_fd), said, t0)
        others = "" if left[0] == proc.pid else \
            f"it exited, but {_describe_stuck(left[0])} of its process group was "
        if cmd.mutates and _is_lvm(cmd.argv):
            # lvm blocks signals in its suspend/commit section: a SIGKILL there would leave
            # an LV suspended (all I/O to it hanging). It is left to finish; the guard
            # below keeps every other command off while it lives.
            said.append(f"{others}still running after {self.term_grace:g} s; not killed (a "
                        f"changing lvm command may be inside its suspend/commit section, "
                        f"where a kill would leave an LV suspended)")
            return self._abandon(cmd, proc, left, said, t0, "was left running after SIGTERM")
        said.append(f"{others}still running after {self.term_grace:g} s: "
                    f"{'the group ' if others else ''}killed with SIGKILL")
        _signal_group(proc.pid, signal.SIGKILL)
        left = _group_left(leader, self.reap_wait)
        if not left:
            proc.wait()
            return self._timed_out(cmd, _captured(out_fd), _captured(err_fd), said, t0)
        return self._abandon(cmd, proc, left, said, t0,
                             f"did not exit {self.reap_wait:g} s after SIGKILL")

    def _abandon(self, cmd: Command, proc: subprocess.Popen, pids: list[int],
                 said: list[str], t0: float, how: str) -> CommandResult:
        """Give up on ``pids`` (the command's process first if it is there, then those of its
        group that outlived it): never waited for again, and no command starts while one of
        them lives (``_blocked_by_stuck``). The command's process is reaped if it is not
        one of them."""
        # Close our end of its input pipe (a writer gets EPIPE). Its output goes to files of
        # its own (``_capture_file``), left open and unsealed for it: a write must not fail
        # inside lvm's own section.
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
        if proc.pid not in pids:
            proc.wait()
        stuck = [(pid, start) for pid in pids
                 if (start := _start_time(pid)) is not None or pid == proc.pid]
        if not stuck:
            said.append("what was left of its process group exited meanwhile")
            return self._timed_out(cmd, "", "", said, t0)
        for pid, start in stuck:
            self._stuck.append((cmd, proc, pid, start))
        self._remember_stuck(cmd, stuck)
        first = stuck[0][0]
        who = _describe_stuck(first)
        if first != proc.pid:
            who += ", of its process group,"
        if len(stuck) > 1:
            who += f" (and {len(stuck) - 1} more of its group: " \
                   f"{', '.join(str(pid) for pid, _ in stuck[1:])})"
        said.append(
            f"{who} {how} and was abandoned: it is stuck in the kernel or "
            f"in lvm's own section (state D is uninterruptible I/O, e.g. on a suspended "
            f"device-mapper device or a disk that does not answer) and keeps any lock it "
            f"took; no further command runs here until it is gone. Check "
            f"`dmsetup info -c` for a suspended device and `cat /proc/{first}/stack`; "
            f"resume or fail the device and the process ends by itself")
        return self._timed_out(cmd, "", "", said, t0, stuck_pid=first)

    @staticmethod
    def _timed_out(cmd: Command, out: str | None, err: str | None, said: list[str], t0: float,
                   stuck_pid: int | None = None) -> CommandResult:
        text = (err or "").rstrip("\n")
        text = (text + "\n" if text else "") + "; ".join(said)
        return CommandResult(command=cmd, rc=124, stdout=out or "", stderr=text,
                             duration=time.monotonic() - t0, timed_out=True, stuck_pid=stuck_pid)

    def _blocked_by_stuck(self, cmd: Command) -> tuple[int, str] | None:
        """A process abandoned earlier and still alive: its pid and the reason not to start
        ``cmd``. Processes that have gone meanwhile are reaped here."""
        self._stuck = [(c, proc, pid, start) for c, proc, pid, start in self._stuck
                       if (proc.poll() is None if pid == proc.pid
                           else start is not None and _start_time(pid) == start)]
        if self._stuck:
            old, _, pid, _ = self._stuck[0]
            argv = " ".join(old.argv)
        else:
            remembered = self._remembered_stuck()
            if remembered is None:
                return None
            pid, argv = remembered
        return pid, (
            f"not started: {_describe_stuck(pid)} (`{_short(argv)}`), "
            f"abandoned after its timeout, is still stuck in the kernel; a new command "
            f"would block behind it. Resume or fail the device it waits on "
            f"(`cat /proc/{pid}/stack`), and the next pass goes on")

    def _remember_stuck(self, cmd: Command, stuck: list[tuple[int, int | None]]) -> None:
        """Write the abandoned processes (pid and start time of each, on the first line) and
        the command to ``stuck_file``."""
        known = [(pid, start if start is not None else _start_time(pid)) for pid, start in stuck]
        pairs = " ".join(f"{pid} {start}" for pid, start in known if start is not None)
        if not self.stuck_file or not pairs:
            return
        try:
            os.makedirs(os.path.dirname(self.stuck_file) or ".", exist_ok=True)
            tmp = f"{self.stuck_file}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(f"{pairs}\n{' '.join(cmd.argv)}\n")
            os.replace(tmp, self.stuck_file)
        except OSError:
            pass  # the in-memory guard still holds for this process

    def _remembered_stuck(self) -> tuple[int, str] | None:
        """The first process another reconciler process abandoned that is still alive (the
        same pid and start time), if any; the file goes once none is."""
        if not self.stuck_file or not os.path.exists(self.stuck_file):
            return None
        try:
            with open(self.stuck_file, encoding="utf-8") as f:
                first, _, argv = f.read().partition("\n")
            numbers = [int(x) for x in first.split()]
        except (OSError, ValueError):
            return None
        for pid, start in zip(numbers[::2], numbers[1::2]):
            if _start_time(pid) == start:
                return pid, argv.strip()
        try:
            os.unlink(self.stuck_file)
        except OSError:
            pass
        return None

    def read(self, path: str, *, host: str = "local") -> str | None:
        if host != "local":
            raise ValueError(f"SubprocessRunner reads local files only, not on {host!r}")
        try:
            if path.endswith("/"):
                return "".join(f"{name}\n" for name in sorted(os.listdir(path)))
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def read_bytes(self, path: str, offset: int, length: int, *,
                   host: str = "local") -> bytes | None:
        if host != "local":
            raise ValueError(f"SubprocessRunner reads local files only, not on {host!r}")
        check_read_bounds(offset, length)
        try:
            # buffered: a mounted ext4's superblock lives in the device's page cache, so a
            # resize done on-line is seen before it is written back
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read(length)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def openers(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, tuple[str, ...]]:
        """Who has each path open: every process's descriptors (/proc/PID/fd) and swap.

        A block device is matched by device number (``st_rdev``), so another name of the
        same disk (a by-id link, a partition node made elsewhere) is seen, and so are its
        partitions and, for a partition, its disk (sysfs: ``/sys/dev/block/M:m/<part>/dev``,
        ``/sys/dev/block/M:m/partition`` then ``../dev``); any other file by (``st_dev``,
        ``st_ino``). A path that does not exist has no openers. This process is
        left out. Kernel users (mounts, md, device-mapper) are seen through sysfs holders
        and mountinfo by the planner, not here.
        """
        if host != "local":
            raise ValueError(f"SubprocessRunner checks local devices only, not on {host!r}")
        wanted: dict[tuple[int, ...], list[str]] = {}
        by_name: dict[str, list[str]] = {}
        for path in paths:
            key = _identity(path)
            if key is None:
                continue
            # A partition held open is the whole disk in use (and the reverse): md or a dd
            # onto the disk overwrites the partition.
            keys = ([(0, n) for n in _family(key[1], self.sys_root)] if key[0] == 0
                    else [key])
            for k in keys:
                wanted.setdefault(k, []).append(path)
            if key[0] == 1:  # a plain file (an image): matched by its name, never stat'ed
                by_name.setdefault(os.path.realpath(path), []).append(path)
        found: dict[str, list[str]] = {path: [] for path in paths}
        if not wanted:
            return {path: () for path in paths}
        me = os.getpid()
        try:
            pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
        except OSError:
            pids = []
        for pid in sorted(pids):
            if pid == me:
                continue
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:  # gone, or a kernel thread we may not look at
                continue
            hits: set[str] = set()
            for fd in fds:
                # The link's text first: a stat through it would reach the open file, which
                # can hang on a dead NFS or FUSE mount. Only /dev nodes are stat'ed (their
                # number is what counts); pipes, sockets, memfd and anon inodes never are.
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("/dev/"):
                    key = _identity(f"/proc/{pid}/fd/{fd}")
                    if key is not None and key in wanted:
                        hits.update(wanted[key])
                elif target in by_name:
                    hits.update(by_name[target])
            if hits:
                who = f"pid {pid} ({_proc_field(pid, 'comm') or '?'})"
                for path in hits:
                    found[path].append(who)
        for line in (self.read("/proc/swaps") or "").splitlines()[1:]:
            fields = line.split()
            key = _identity(fields[0].replace("\\040", " ")) if fields else None
            if key is not None and key in wanted:
                for path in wanted[key]:
                    found[path].append("swap")
        return {path: tuple(who) for path, who in found.items()}

    def claimed(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, bool | str]:
        """For each block device path, whether the kernel holds it exclusively right now:
        ``open(path, O_RDONLY | O_EXCL | O_NONBLOCK | O_CLOEXEC)``, closed at once.

        On Linux, O_EXCL without O_CREAT on a block device asks for an exclusive claim
        (blkdev_open: FMODE_EXCL, the open file as the holder); the kernel checks the claim
        before the driver opens the disk and refuses it with EBUSY while anything else holds
        the device, or one of its partitions, or (for a partition) its whole disk, exclusively:
        a mounted file system (btrfs' every member too), device-mapper and md (their tables
        and arrays claim their legs), DRBD's attached backing disk (8.4's attach claims it;
        the lab's kernel also lists drbdN among its holders), a LIO iblock backstore, an
        active swap area, ZFS and bcache, a process with its own O_EXCL open (mkfs,
        pvcreate, mdadm, wipefs...). Of those, device-mapper, md and DRBD leave a holder
        link; none leaves a descriptor in /proc. Not claims, so not seen here: a plain ``open()`` (qemu, dd, a database:
        ``openers`` finds those) and a loop device over the device (loop opens its backing
        file without a claim; /sys/block/loopN/loop/backing_file names it).

        Answers: True for EBUSY; False when the open succeeded, when the path does not exist
        (ENOENT: nothing there to take) or is not a block device (a file: O_EXCL without
        O_CREAT means nothing for it, it is never opened), or is a node whose device sysfs
        does not list (not opened: that open would load a module or create an empty md
        array or loop device); any other error is said, not
        guessed: "ENXIO: No such device or address" (the driver refused to open the disk
        after the claim check passed, e.g. a SCSI disk set transport-offline: the caller
        decides what that means), "EACCES: ..." (not root), "EIO: ...".

        Side effects, all of an instant: while the probe holds its claim, another exclusive
        opener (a mkfs, pvcreate, mount or mdadm started at that very moment) fails with
        EBUSY; the open is read-only, so its close makes udev emit no "change" event (udev
        watches for a close after a write open) and writes nothing; O_NONBLOCK keeps a
        removable drive's open from waiting for media.

        The probe can wait in the kernel, mostly in the open itself: a disk's partition scan
        holds its open mutex while the disk stops answering right after a login (up to the
        iSCSI replacement timeout), SCSI error handling on the HBA keeps ``sd_open`` waiting,
        md waits for a stuck ioctl's mutex; more rarely in a last close that flushes dirty
        pages whose I/O no longer completes. So each probe is a forked child
        (``_probe_child``), waited for ``probe_seconds`` at most (past it the answer is an
        ETIMEDOUT error), never a thread of ours: a thread stuck in the kernel cannot be
        killed, would keep this process from exiting (its thread-group leader stays a zombie
        until that thread returns), would keep every descriptor of ours open (threads share
        one descriptor table: the instance lock's too, so the next reconciler would find
        the host locked), and a new one would pile up each pass. The child closes every
        descriptor (0-2 too) before it opens anything, so it holds nothing of ours; this
        process can exit and its lock be taken by the next one while such a child waits.
        Not a new interpreter (``subprocess`` running Python or a helper): its start-up
        costs seconds under TCG emulation, per device and step, where a fork costs a few
        milliseconds. A child still waiting at the limit is remembered per device path
        (``_STUCK_PROBES``, its pid and start; with a ``stuck_file``, also in
        ``<stuck_file>.probes`` for the next reconciler process, by pid and start time);
        while it lives a later probe of that path starts no other (it would wait on the same
        thing, and one that returns late holds its claim until its close) and answers that
        it is still stuck; once it has ended it is reaped and the path probed again.
        """
        if host != "local":
            raise ValueError(f"SubprocessRunner checks local devices only, not on {host!r}")
        _reap_probes()
        earlier = self._remembered_probes()
        out: dict[str, bool | str] = {}
        for path in paths:
            if path in earlier and path not in _STUCK_PROBES:
                out[path] = _still_stuck(path, *earlier[path][::2])
            else:
                out[path] = _claim_probe(path, self.probe_seconds)
        self._remember_probes(earlier)
        return out

    def _probes_file(self) -> str | None:
        return f"{self.stuck_file}.probes" if self.stuck_file else None

    def _remembered_probes(self) -> dict[str, tuple[int, int, float]]:
        """The stuck probes another reconciler process left (path -> pid, start time,
        started at), those still alive (same pid and start time) only."""
        name = self._probes_file()
        out: dict[str, tuple[int, int, float]] = {}
        try:
            with open(name or "", encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError:
            return out
        for line in lines:
            try:
                pid, start, since, path = line.split(" ", 3)
                entry = (int(pid), int(start), float(since))
            except ValueError:
                continue
            if _start_time(entry[0]) == entry[1]:
                out[path] = entry
        return out

    def _remember_probes(self, earlier: dict[str, tuple[int, int, float]]) -> None:
        """Write this process's stuck probes with the others' still alive, for the next
        process (a --once started by a timer, a restarted daemon); no file when none."""
        name = self._probes_file()
        if not name:
            return
        entries = dict(earlier)
        for path, (pid, since) in _STUCK_PROBES.items():
            start = _start_time(pid)
            if start is not None:
                entries[path] = (pid, start, since)
        text = "".join(f"{pid} {start} {since!r} {path}\n"
                       for path, (pid, start, since) in sorted(entries.items()))
        try:
            if not text:
                if os.path.exists(name):
                    os.unlink(name)
                return
            with open(name, encoding="utf-8") as f:
                if f.read() == text:
                    return
        except FileNotFoundError:
            pass
        except OSError:
            return
        try:
            os.makedirs(os.path.dirname(name) or ".", exist_ok=True)
            with open(f"{name}.tmp", "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(f"{name}.tmp", name)
        except OSError:
            pass  # the in-memory guard still holds for this process


# Probes still waiting in the kernel past their limit, per device path: (pid, started at,
# wall clock). Process-wide: a child is this process's, whichever runner forked it.
_STUCK_PROBES: dict[str, tuple[int, float]] = {}


def _reap_probes() -> None:
    """Forget (and reap) the stuck probes that have ended since."""
    for path, (pid, _) in list(_STUCK_PROBES.items()):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            del _STUCK_PROBES[path]


def _still_stuck(path: str, pid: int, since: float) -> str:
    at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(since))
    return (f"ETIMEDOUT: an earlier exclusive-open probe of {path} ({_describe_stuck(pid)}), "
            f"started at {at}, is still stuck in the kernel (I/O to the device not "
            "completing); no other probe of it is started while it waits")


def _errno_text(code: int) -> str:
    return f"{errno.errorcode.get(code, code)}: {os.strerror(code)}"


def _claim_probe(path: str, limit: float) -> bool | str:
    """One exclusive-open probe (``SubprocessRunner.claimed``), in a forked child."""
    if path in _STUCK_PROBES:
        return _still_stuck(path, *_STUCK_PROBES[path])
    try:
        st = os.stat(path)
        if not stat.S_ISBLK(st.st_mode):
            return False  # a file: O_EXCL without O_CREAT means nothing for it
    except FileNotFoundError:
        return False
    except OSError as exc:
        return _errno_text(exc.errno or 0)
    if os.path.isdir("/sys/dev/block") and not os.path.exists(
            f"/sys/dev/block/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"):
        # a stale node with no device behind it: nothing to claim, and its open would make
        # the kernel load a module or create the device (an empty md array, a loop device)
        return False
    max_fd = os.sysconf("SC_OPEN_MAX")
    since = time.time()
    try:
        pid = os.fork()
    except OSError as exc:  # EAGAIN: the unit's TasksMax, the pid limit
        return f"{_errno_text(exc.errno or 0)} (the exclusive-open probe could not be forked)"
    if pid == 0:
        _probe_child(path, max_fd)
    deadline = time.monotonic() + limit
    pause = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            _STUCK_PROBES[path] = (pid, since)
            return (f"ETIMEDOUT: the exclusive open of {path} or its close did not return "
                    f"within {limit:g} s (I/O to it stuck?); the probe "
                    f"({_describe_stuck(pid)}) is left waiting, holding nothing of this "
                    "process")
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)
    if os.WIFSIGNALED(status):
        return f"EINTR: the exclusive-open probe of {path} was killed by signal " \
               f"{os.WTERMSIG(status)}"
    code = os.WEXITSTATUS(status)
    if code in (0, errno.ENOENT):
        return False
    if code == errno.EBUSY:
        return True
    if code == _CHILD_FAILED:
        return f"the exclusive-open probe of {path} failed in its child (exit {code})"
    return _errno_text(code)


_CHILD_FAILED = 255  # the probe's child exit status for anything but an open's errno


def _probe_child(path: str, max_fd: int) -> NoReturn:
    """The forked probe: close every descriptor (the instance lock's, and 0-2 too: a
    caller reading a ``--once``'s output until its end must not wait for a stuck probe),
    open the device exclusively, close it, exit with the open's errno (0: it opened). Only
    these calls: no logging, nothing of the parent's state touched; never returns."""
    code = 0
    try:
        os.closerange(0, max_fd)
        fd = os.open(path, os.O_RDONLY | os.O_EXCL | os.O_NONBLOCK | os.O_CLOEXEC)
        os.close(fd)
    except OSError as exc:
        code = exc.errno if exc.errno and exc.errno < _CHILD_FAILED else _CHILD_FAILED
    except BaseException:
        code = _CHILD_FAILED
    finally:
        os._exit(code)


_LVM_TOOLS = ("lv", "vg", "pv")


def _is_lvm(argv: Sequence[str]) -> bool:
    """An lvm2 command: ``lvm ...`` or one of its tools (lvconvert, vgcreate, pvmove, ...)."""
    name = os.path.basename(argv[0]) if argv else ""
    return name == "lvm" or (name[:2] in _LVM_TOOLS and name[2:].isalpha() and len(name) > 3)


def _family(rdev: int, sys_root: str = "/sys") -> list[int]:
    """A block device's number with those of its partitions, or of its disk when it is a
    partition (read from sysfs; what cannot be read is left out)."""
    base = f"{sys_root}/dev/block/{os.major(rdev)}:{os.minor(rdev)}"
    out = [rdev]

    def devno(d: str) -> int | None:
        try:
            with open(f"{d}/dev", encoding="ascii") as f:
                major, minor = f.read().strip().split(":")
            return os.makedev(int(major), int(minor))
        except (OSError, ValueError):
            return None

    related: list[int | None] = []
    if os.path.exists(f"{base}/partition"):
        related.append(devno(f"{base}/.."))
    try:
        names = sorted(os.listdir(base))
    except OSError:
        names = []
    related += [devno(f"{base}/{n}") for n in names if os.path.exists(f"{base}/{n}/partition")]
    out += [n for n in related if n is not None and n not in out]
    return out


def _identity(path: str) -> tuple[int, ...] | None:
    """What makes two names the same open object: a block device's number, else the inode."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if stat.S_ISBLK(st.st_mode):
        return (0, st.st_rdev)
    return (1, st.st_dev, st.st_ino)


@dataclass
class RecordingRunner:
    """Wraps a runner and calls ``on_result`` after each command (logging, capture, counts)."""

    inner: Runner
    on_result: Callable[[CommandResult], None]

    def run(self, cmd: Command) -> CommandResult:
        res = self.inner.run(cmd)
        self.on_result(res)
        return res

    def read(self, path: str, *, host: str = "local") -> str | None:
        return self.inner.read(path, host=host)

    def read_bytes(self, path: str, offset: int, length: int, *,
                   host: str = "local") -> bytes | None:
        return self.inner.read_bytes(path, offset, length, host=host)

    def openers(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, tuple[str, ...]]:
        return self.inner.openers(paths, host=host)

    def claimed(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, bool | str]:
        return self.inner.claimed(paths, host=host)


def _short(argv: str, width: int = 100) -> str:
    """A command line for a message: the program by its base name (a long path would push
    the arguments that say what it does out of the message), cut at ``width``."""
    prog, _, rest = argv.partition(" ")
    text = f"{os.path.basename(prog)} {rest}".rstrip()
    return text if len(text) <= width else text[:width - 3] + "..."
