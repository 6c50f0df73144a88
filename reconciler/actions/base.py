"""The action base class and progress type; see ``reconciler.actions``."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar

from reconciler import errors, state
from reconciler.state.taking import Effect, Take
from reconciler.runner import Command, CommandResult


class Symbol(enum.StrEnum):
    CREATE = "+"
    CHANGE = "~"
    MOVE = ">"
    DELETE = "-"


@dataclass(frozen=True, slots=True)
class Progress:
    percent: float | None
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    host: str = "local"
    long: ClassVar[bool] = False
    # A long action already in flight is adopted rather than issued again; an action whose
    # effect cannot be observed as "started" (resuming a poller) is never adopted.
    adoptable: ClassVar[bool] = True
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = ""

    @property
    def key(self) -> str:
        raise NotImplementedError

    @property
    def object(self) -> str:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def commands(self) -> tuple[Command, ...]:
        raise NotImplementedError

    def gives_up(self) -> str:
        """What data this step overwrites or gives up, in words ("" when none): the one
        place the plan, the forecast and their JSON read it from (an LV removed, DRBD
        metadata forced over a disk, ``primary --force``, ``--discard-my-data``, a clone's
        recopy over a completed copy, an LV shrunk)."""
        return ""

    def is_done(self, st: state.HostState) -> bool:
        raise NotImplementedError

    def is_started(self, st: state.HostState) -> bool:
        return self.is_done(st)

    def progress(self, st: state.HostState) -> Progress | None:
        return None

    def provides(self) -> tuple[str, ...]:
        """Device paths this step makes appear (an LV, an array, the disks of an iSCSI
        login). Planning orders every step that ``needs`` one of them after this one, and a
        planner that finds such a device missing does not block on it."""
        return ()

    def needs(self) -> tuple[str, ...]:
        """Device paths this step requires to exist when it runs."""
        return ()

    def releases(self) -> tuple[str, ...]:
        """Device paths this step stops using or exporting (a VG exported off them, an
        iSCSI export removed). Planning orders every step that ``needs_free`` one of them
        after this one, and a planner that finds such a device in use does not block on it."""
        return ()

    def needs_free(self) -> tuple[str, ...]:
        """Device paths nothing else may use or export when this step runs."""
        return ()

    def waiting_for(self, st: state.HostState) -> str | None:
        """A precondition checked again right before running: if observed state says the
        step must not run yet, the reason (the step is deferred, not failed)."""
        return None

    def takes_devices(self) -> tuple[Take, ...]:
        """The devices this step takes away, overwrites, exports or copies from
        (``state.taking``): planning blocks it while the observed state shows one in use,
        and the executor refuses it right before its first command while one is in use or
        open by a process (``Runner.openers``). The default is the older declaration,
        ``exclusive_devices``."""
        return tuple(Take(d, Effect.TAKES_AWAY, self.exclusive_role(d))
                     for d in self.exclusive_devices())

    def takes_before(self, index: int) -> tuple[Take, ...]:
        """What the step takes, checked again by the executor right before its command
        ``index`` (after the first; the first's check is ``takes_devices``): a command that
        should have freed a device is verified to have, before the one that gives it away
        (``ExportVg``: ``vgchange -an``, then ``vgexport``). None by default."""
        return ()

    def exclusive_devices(self) -> tuple[str, ...]:
        """The older form of ``takes_devices`` (devices it overwrites or stops); declare
        ``takes_devices`` instead."""
        return ()

    def exclusive_role(self, device: str) -> str:
        """What ``device`` is to this step, for the refusal message ("the target")."""
        return "the device"

    def failure(self, result: CommandResult) -> errors.CommandFailed:
        """Classify a failed command of this action; subsystems override with their adapter."""
        return errors.CommandFailed(result.command.host, result.command.argv, result.rc,
                                    result.stderr)


