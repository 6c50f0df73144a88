"""The one tool-handler convention of the simulator, at the bottom of its layers.

A tool is a ``Tool`` in its subsystem's table (each tool module's ``lookup(argv)`` finds it,
or None): a handler ``(host, argv, stdin) -> Out``, whether it mutates (a crash budget
counts only those) and whether it reads stdin; the host's ``run`` turns the ``Out`` into
the ``CommandResult`` a real process would give. ``Out`` holds what the command prints and
how it exits: lvm's indented messages (``print``, ``warn``, ``fail`` with lvm's
``ECMD_FAILED``) and the plain lines of other tools (``err``). ``SimulatedCrash`` is how a
simulated host goes down, whichever tool or kernel path takes it down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ECMD_FAILED = 5  # lvm's exit code for a command that failed (lib/commands/errors.h)


class SimulatedCrash(BaseException):
    """The simulated host went down. A BaseException so that no ``except Exception`` in
    the code under test can swallow it: it must end the pass like a killed process."""


@dataclass
class Out:
    """What a command prints and how it exits."""

    rc: int = 0
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def print(self, line: str) -> Out:
        """An lvm message on stdout (lvm indents its messages by two spaces)."""
        self.stdout.append(f"  {line}\n")
        return self

    def warn(self, line: str) -> Out:
        """An lvm message on stderr."""
        self.stderr.append(f"  {line}\n")
        return self

    def fail(self, *lines: str, rc: int = ECMD_FAILED) -> Out:
        """lvm's error messages, and its exit code."""
        for line in lines:
            self.warn(line)
        self.rc = rc
        return self

    def err(self, *lines: str, rc: int = 1) -> Out:
        """Another tool's error lines as it prints them (no indent), and its exit code."""
        self.stderr.extend(f"{line}\n" for line in lines)
        self.rc = rc
        return self


# (host, argv, stdin) -> Out: every handler of every tool takes the command's stdin (None
# when it has none); the host refuses stdin before the call for a tool that reads none
Handler = Callable[[Any, tuple[str, ...], "str | None"], Out]


@dataclass(frozen=True, slots=True)
class Tool:
    """A command the simulator models: its handler, whether it mutates (a crash budget
    counts those), whether it reads stdin (any other is refused, before it runs or counts),
    and whether it writes LVM metadata (which an iSCSI fabric then shares with the hosts
    that see the disk)."""

    handler: Handler
    mutates: bool
    stdin: bool = False
    lvm: bool = False
