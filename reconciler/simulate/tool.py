"""The one tool-handler convention of the simulator, at the bottom of its layers.

A tool is a handler ``(host, argv, ...) -> Out`` in its subsystem's table, with whether it
mutates (a crash budget counts only those); the host's ``run`` turns the ``Out`` into the
``CommandResult`` a real process would give. ``Out`` holds what the command prints and
how it exits: lvm's indented messages (``print``, ``warn``, ``fail`` with lvm's
``ECMD_FAILED``) and the plain lines of other tools (``err``). ``SimulatedCrash`` is how a
simulated host goes down, whichever tool or kernel path takes it down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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


# (host, argv[, stdin]) -> Out; each subsystem's table says which form its handlers take
Handler = Callable[..., Out]
Tool = tuple[Handler, bool]  # a handler, and whether the command mutates
