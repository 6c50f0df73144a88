"""md transitions for clones (seed 002): build the array over the source, tune its sync
speed, add the target, record a completed copy in the ledger, stop the array.

Each is checked against observed state like any other action; the array and its members
are matched by device number, so a spec saying ``/dev/disk/by-id/...`` and md saying ``vdb``
agree on which disk is which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from reconciler import errors, state
from reconciler.actions.base import Action, Progress, Symbol
from reconciler.state.taking import Effect, Take
from reconciler.adapters import md
from reconciler.runner import Command, CommandResult


def _array(st: state.HostState, path: str) -> state.MdArray | None:
    return st.md.get(md.md_name(path))


def _devno(st: state.HostState, path: str) -> tuple[int, int] | None:
    dev = st.blockdevs.get(path)
    return dev.devno if dev is not None else st.devices.get(path)


@dataclass(frozen=True, slots=True, kw_only=True)
class MdAction(Action):
    """Base of the md actions: their failures are classified by the md adapter."""

    def failure(self, result: CommandResult) -> errors.CommandFailed:
        return md.failure(result)


@dataclass(frozen=True, slots=True, kw_only=True)
class CloneAction(MdAction):
    """An action on one clone (``clone`` is its name in the spec)."""

    clone: str

    @property
    def object(self) -> str:
        return f"clone {self.clone}"


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildMdClone(CloneAction):
    """``mdadm --build``: a RAID1 without superblock over ``source``, its second slot empty.

    Nothing is written to the source (no superblock), so the array's content is the
    source's. Planned only when the array does not exist and the source is unused. Done
    when the array exists with the source as a member.
    """

    md: str
    source: str
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "mdadm"

    @property
    def key(self) -> str:
        return f"clone:{self.clone}:build"

    def describe(self) -> str:
        return f"build {self.md} (RAID1, no superblock) over {self.source}"

    def commands(self) -> tuple[Command, ...]:
        return (md.build(self.md, self.source, host=self.host),)

    def takes_devices(self) -> tuple[Take, ...]:
        # A process writing the source directly while md copies it writes around the copy.
        return (Take(self.source, Effect.COPIES, "the source"),)

    def needs(self) -> tuple[str, ...]:
        return (self.source,)

    def provides(self) -> tuple[str, ...]:
        return (self.md,)

    def is_done(self, st: state.HostState) -> bool:
        arr = _array(st, self.md)
        return arr is not None and arr.member(_devno(st, self.source)) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMdSyncSpeed(CloneAction):
    """Write the array's ``sync_speed_min`` or ``sync_speed_max`` (KiB/s) through sysfs.

    Done when the array shows that value as its own ("(local)"), not the system-wide one.
    """

    md: str
    which: str  # "min" or "max"
    kib: int
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "tee"

    @property
    def key(self) -> str:
        return f"clone:{self.clone}:speed-{self.which}"

    def describe(self) -> str:
        return f"sync_speed_{self.which} of {self.md} = {self.kib} KiB/s"

    def commands(self) -> tuple[Command, ...]:
        return (md.set_sync_speed(self.md, self.which, self.kib, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        arr = _array(st, self.md)
        return arr is not None and getattr(arr, f"speed_{self.which}") == (self.kib, True)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddMdMember(CloneAction):
    """``mdadm MD --add TARGET``: md then recovers the target from the source, in the
    kernel, while the array stays usable.

    Started when the target is a (non-faulty) member; done when it is in sync and the array
    is no longer degraded.
    """

    md: str
    target: str
    source: str = ""
    # The spec's ``recopy`` value when this add copies again over a completed copy
    # ("" for a first copy onto a target nobody declared holding data).
    recopy: str = ""
    long: ClassVar[bool] = True
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "mdadm"

    @property
    def key(self) -> str:
        return f"clone:{self.clone}:add"

    def describe(self) -> str:
        return f"add {self.target} to {self.md}; md copies the source onto it"

    def gives_up(self) -> str:
        return (f"the completed copy on {self.target} is copied over again "
                f"(recopy = \"{self.recopy}\")" if self.recopy else "")

    def commands(self) -> tuple[Command, ...]:
        return (md.add(self.md, self.target, host=self.host),)

    def takes_devices(self) -> tuple[Take, ...]:
        # md overwrites all of the target; a process writing the source directly while md
        # copies it writes around the copy.
        return (Take(self.target, Effect.OVERWRITES, "the target"),) + (
            (Take(self.source, Effect.COPIES, "the source"),) if self.source else ())

    def needs(self) -> tuple[str, ...]:
        return (self.md, self.target)

    def _member(self, st: state.HostState) -> tuple[state.MdArray | None, state.MdMember | None]:
        arr = _array(st, self.md)
        return arr, (arr.member(_devno(st, self.target)) if arr is not None else None)

    def is_started(self, st: state.HostState) -> bool:
        _, member = self._member(st)
        return member is not None and not member.is_faulty

    def is_done(self, st: state.HostState) -> bool:
        arr, member = self._member(st)
        return (arr is not None and member is not None and member.is_in_sync
                and arr.degraded == 0)

    def progress(self, st: state.HostState) -> Progress | None:
        arr, member = self._member(st)
        if arr is None or member is None:
            return None
        return Progress(arr.sync_percent, "md recovery")


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteCloneLedger(MdAction):
    """Replace the clone ledger with ``records`` (every entry, kept ones included, by
    ``CloneRecord.key``).

    The ledger remembers which targets received a complete copy: the one fact that cannot be
    observed once a non-persistent array is gone. One such step per plan, however many clones
    change, so two entries never race. Done when the ledger reads back as ``records`` (and
    ``used``: every recopy value used before on each target, ``state.Ledger.used``; and
    ``running``: the recopy copies started, ``state.Ledger.running``), in the current format.
    A plan that starts a copy asked by ``recopy`` (``mdadm --add`` over a target with a
    record) orders the add after this step, which marks the value used and running first.
    """

    path: str
    records: tuple[tuple[str, state.CloneRecord], ...]
    note: str = ""
    used: tuple[tuple[str, tuple[str, ...]], ...] = ()
    running: tuple[tuple[str, str], ...] = ()
    # The split records, written after the plain ledger step (synced records, forgotten and
    # undeclared ones) and right before the arrays are stopped.
    split: bool = False
    # (device, role): what the stops that follow need unopened. The split record is refused
    # exactly when its stop would be, so a "complete copy" is never recorded for a copy
    # that an opener of the array or the source may still change.
    exclusive: tuple[tuple[str, str], ...] = ()
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "ledger"

    def takes_devices(self) -> tuple[Take, ...]:
        return tuple(Take(d, Effect.COPIES if role == "the source" else Effect.TAKES_AWAY, role)
                     for d, role in self.exclusive)

    @property
    def key(self) -> str:
        return "ledger:clones:split" if self.split else "ledger:clones"

    @property
    def object(self) -> str:
        return f"ledger {self.path}"

    def describe(self) -> str:
        return self.note or f"write {len(self.records)} clone record(s)"

    def commands(self) -> tuple[Command, ...]:
        return md.write_ledger(self.path, md.ledger_text(dict(self.records), dict(self.used),
                                                         dict(self.running)),
                               host=self.host)

    def is_done(self, st: state.HostState) -> bool:
        return (st.ledger is not None and st.ledger.problem is None and not st.ledger.legacy
                and st.ledger.records == dict(self.records)
                and st.ledger.used == dict(self.used)
                and st.ledger.running == dict(self.running))


@dataclass(frozen=True, slots=True, kw_only=True)
class StopMd(CloneAction):
    """``mdadm --stop``: the array goes, its members stay as they are.

    Planned after a complete sync (the target is then an exact copy of the source), or for
    an abandoned clone. Right before it runs, the sync is checked again on the state the
    executor last observed (after the ledger write): a target that left the sync meanwhile
    defers the stop. Done when the array no longer exists.
    """

    md: str
    target: str
    source: str = ""
    abandoned: bool = False
    symbol: ClassVar[Symbol] = Symbol.DELETE
    verb: ClassVar[str] = "mdadm"

    @property
    def key(self) -> str:
        return f"clone:{self.clone}:stop"

    def describe(self) -> str:
        if self.abandoned:
            return f"stop {self.md} (clone abandoned; the target's content is meaningless)"
        return f"stop {self.md}: split, the target is a complete copy"

    def commands(self) -> tuple[Command, ...]:
        return (md.stop(self.md, host=self.host),)

    def takes_devices(self) -> tuple[Take, ...]:
        # A split with the source open: whatever writes it directly is not in the copy.
        array = Take(self.md, Effect.TAKES_AWAY, "the array")
        if self.abandoned or not self.source or self.source == self.md:
            return (array,)
        return (array, Take(self.source, Effect.COPIES, "the source"))

    def is_done(self, st: state.HostState) -> bool:
        return _array(st, self.md) is None

    def waiting_for(self, st: state.HostState) -> str | None:
        arr = _array(st, self.md)
        if self.abandoned or arr is None:
            return None
        member = arr.member(_devno(st, self.target))
        if (member is None or not member.is_in_sync or arr.degraded
                or arr.sync_action not in ("idle", "")):
            return f"{self.target} is no longer in sync in {self.md}; not stopping it"
        return None
