"""The exception hierarchy.

Few classes, each meaning one thing to the caller (kopf's split between temporary and
permanent errors): only ``CommandFailed`` of kind ``BUSY`` or ``LOCKED`` is worth retrying
within a pass; everything else is permanent for this pass and reported. Messages follow a
"summary, expected/observed, what to do" pattern because they end up in front of an
operator, not a developer.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence


class ReconcilerError(Exception):
    """Base of every error the reconciler raises on purpose."""


class SpecError(ReconcilerError):
    """A spec file is wrong. Carries every problem found, each with file and key path."""

    def __init__(self, problems: Sequence[tuple[str, str, str]]):
        self.problems = tuple(problems)  # (file, key path, message)
        lines = [f"{f}: {key or '(top level)'}: {msg}" for f, key, msg in self.problems]
        super().__init__("invalid spec:\n  " + "\n  ".join(lines))


class ObservationError(ReconcilerError):
    """A tool's output could not be understood."""

    def __init__(self, argv: Sequence[str], problem: str, excerpt: str = ""):
        self.argv = tuple(argv)
        self.problem = problem
        self.excerpt = excerpt[:400]
        msg = f"cannot read output of {' '.join(self.argv)}: {problem}"
        if self.excerpt:
            msg += f"\n  output begins: {self.excerpt!r}"
        super().__init__(msg)


class FailureKind(enum.StrEnum):
    NOT_FOUND = "not-found"
    BUSY = "busy"
    LOCKED = "locked"
    TIMEOUT = "timeout"
    MISSING_TOOL = "missing-tool"
    FATAL = "fatal"
    # Another node holds the lock (lvmlockd: "LV locked by other host"): the step waits for
    # that node and is deferred, neither retried in a loop nor an error.
    PEER = "held by another node"

    @property
    def is_transient(self) -> bool:
        return self in (FailureKind.BUSY, FailureKind.LOCKED)


class CommandFailed(ReconcilerError):
    """A command exited non-zero (or timed out). ``kind`` is classified by the adapter.
    ``peer``, for a ``PEER`` failure whose node is known: (that node, what it must do)."""

    peer: tuple[str, str] | None = None

    def __init__(self, host: str, argv: Sequence[str], rc: int, stderr: str,
                 kind: FailureKind = FailureKind.FATAL):
        self.host = host
        self.argv = tuple(argv)
        self.rc = rc
        self.stderr = stderr
        self.kind = kind
        tail = "\n".join(stderr.strip().splitlines()[-5:])
        super().__init__(
            f"[{host}] {' '.join(self.argv)} failed (exit {rc}, {kind}): {tail or 'no message'}")


class UnsafePlan(ReconcilerError):
    """The spec asks for something that cannot be done without risking data."""


class DeviceInUse(UnsafePlan):
    """A step would take away, overwrite or export a device in use here: each of
    ``refused`` is (what the device is to the step, the device, the processes that have it
    open, the whole refusal in words: "the disk /dev/sdb is mounted at /mnt, open by pid
    42 (qemu)"). ``lead``: what was not run ("not run": the step; between two of its
    commands, the command not run and those done). ``only_processes``: every use found is
    a process's open (one may soon be gone)."""

    def __init__(self, refused: Sequence[tuple[str, str, tuple[str, ...], str]],
                 advice: str = "stop it first", *, lead: str = "not run",
                 only_processes: bool = False):
        self.refused = tuple(refused)
        self.device = self.refused[0][1]
        self.openers = tuple(p for r in self.refused for p in r[2])
        self.only_processes = only_processes
        super().__init__(f"{lead}: {'; '.join(r[3] for r in self.refused)}; {advice} (the "
                         f"step takes the device away, writes over it, exports it or copies "
                         f"it: never under a user of it)")


class NotConverged(ReconcilerError):
    """A step's commands succeeded but the re-observed state is not what the step promised."""

    def __init__(self, what: str, expected: str, observed: str):
        self.expected = expected
        self.observed = observed
        super().__init__(f"{what}: expected {expected}, observed {observed}")


class UnsupportedCommand(BaseException):
    """The simulator was asked for a command or flag it does not model. Never silenced: not
    a ``ReconcilerError`` (the executor would report it as an ordinary failed step, so a
    model gap would look like a tool failure) and not even an ``Exception`` (the daemon's
    loop logs those and carries on); like ``SimulatedCrash`` it ends the test. Only
    ``offline``'s capture, which asks a simulated host for every subsystem, catches it by
    name."""
