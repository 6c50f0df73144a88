"""The one boundary where processes are started.

Everything that touches the host goes through a ``Runner``: the real ``SubprocessRunner``,
or the simulator (a dry run never reaches apply: it stops after planning). This is
the only module that imports ``subprocess`` (checked by an import contract), so an audit
of what the reconciler can execute starts and ends here.

Rules kept here, not by callers: argv lists only (never a shell), ``LC_ALL=C`` so that
messages and number formats are the ones the parsers expect, a timeout on every command
with the whole process group killed when it expires (an orphaned ``lvs`` holding a VG lock
is worse than a failed pass).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


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
    """

    def run(self, cmd: Command) -> CommandResult: ...

    def read(self, path: str, *, host: str = "local") -> str | None: ...


class SubprocessRunner:
    """Runs commands on this machine with ``LC_ALL=C`` and a hard timeout.

    ``prefix`` lets a deployment run tools in another namespace (``nsenter -t 1 -m --``)
    without any module knowing about it.
    """

    def __init__(self, prefix: tuple[str, ...] = (), extra_env: dict[str, str] | None = None):
        self.prefix = prefix
        self.env = dict(os.environ, LC_ALL="C", LANG="C")
        # lvm2 prints a warning per inherited descriptor otherwise; we close them anyway.
        self.env["LVM_SUPPRESS_FD_WARNINGS"] = "1"
        if extra_env:
            self.env.update(extra_env)
        self.started = 0  # processes started, for the per-pass process budget

    def run(self, cmd: Command) -> CommandResult:
        argv = self.prefix + cmd.argv
        t0 = time.monotonic()
        self.started += 1
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE if cmd.input is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env, text=True,
                close_fds=True, start_new_session=True)
        except FileNotFoundError:
            return CommandResult(command=cmd, rc=127, stdout="",
                                 stderr=f"{argv[0]}: command not found in PATH", duration=0.0)
        try:
            out, err = proc.communicate(cmd.input, timeout=cmd.timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            timed_out = True
            err = (err or "") + f"\nkilled after {cmd.timeout:.0f} s timeout"
        return CommandResult(command=cmd, rc=proc.returncode if not timed_out else 124,
                             stdout=out, stderr=err, duration=time.monotonic() - t0,
                             timed_out=timed_out)

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
