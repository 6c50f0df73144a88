"""Observed md state (clones): the arrays of /proc/mdstat, with the sysfs details of the
ones a clone names (members by device number, sync progress and speed knobs), and the clone
ledger: the one fact that cannot be observed once a non-persistent array is gone, that a
target received a complete copy when its clone was split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.units import Size


@dataclass(frozen=True, slots=True)
class MdMember:
    """One member of an md array (``/sys/block/mdN/md/dev-NAME``)."""

    name: str  # kernel name: "vdb", "dm-3"
    index: int  # descriptor number, the "[2]" of /proc/mdstat
    devno: tuple[int, int] | None = None
    slot: int | None = None  # role in the array; None for a spare not yet placed, or faulty
    flags: tuple[str, ...] = ()  # dev-NAME/state: in_sync, spare, faulty, write_error, ...

    @property
    def is_in_sync(self) -> bool:
        return "in_sync" in self.flags and not self.is_faulty

    @property
    def is_faulty(self) -> bool:
        return "faulty" in self.flags


@dataclass(frozen=True, slots=True)
class MdArray:
    """An md array: what /proc/mdstat says, and for arrays a clone names, its sysfs details.

    Sync progress counts bytes of one member; ``sync_speed`` is md's recent average.
    """

    name: str  # "md100"
    level: str
    metadata: str  # "none" for a --build array ("super non-persistent" in /proc/mdstat)
    size: Size
    members: tuple[MdMember, ...]
    raid_disks: int = 0
    array_state: str = ""  # clean, active, read-auto, readonly, ...
    sync_action: str = ""  # idle, recover, resync, check, ... ("" when not read)
    degraded: int = 0
    sync_done: Size | None = None
    sync_total: Size | None = None
    sync_speed: float | None = None  # bytes/s
    speed_min: tuple[int, bool] | None = None  # (KiB/s, set on this array rather than system-wide)
    speed_max: tuple[int, bool] | None = None
    holders: tuple[str, ...] = ()  # devices stacked on the array
    mounts: tuple[str, ...] = ()  # where the array itself is mounted

    @property
    def is_non_persistent(self) -> bool:
        return self.metadata == "none"

    def member(self, devno: tuple[int, int] | None) -> MdMember | None:
        if devno is None:
            return None
        return next((m for m in self.members if m.devno == devno), None)

    @property
    def sync_percent(self) -> float | None:
        if self.sync_done is None or not self.sync_total:
            return None
        return min(100.0, 100.0 * self.sync_done / self.sync_total)

    @property
    def sync_eta(self) -> float | None:
        """Seconds left at md's current speed."""
        if self.sync_done is None or not self.sync_total or not self.sync_speed:
            return None
        return max(0, self.sync_total - self.sync_done) / self.sync_speed


@dataclass(frozen=True, slots=True)
class CloneRecord:
    """A ledger entry: a completed copy. The target (``target_id``) received a complete copy
    of the source (``source_id``, ``size`` bytes) when the array was split, at ``split_at``
    (seconds since the epoch). Such a target is never written again unless a clone asks with
    a ``recopy`` token other than the one recorded here.

    Paths, ``clone`` and ``md`` are as the spec spelt them then: information only.
    ``declared`` stays true while the clone that made the copy stays in the spec over the same
    devices; once false, the record still protects the target. ``target_id`` is "" only for
    an entry of a format-1 ledger whose target could not be identified yet.
    """

    clone: str
    source: str
    target: str
    md: str
    split_at: float
    source_id: str = ""
    target_id: str = ""
    size: Size | None = None
    recopy: str = ""
    declared: bool = True
    # False: the sync was seen complete (at ``split_at``) but the array not yet split. The
    # target may be in use from then on: once the array is gone it is never rebuilt over.
    split: bool = True

    @property
    def key(self) -> str:
        """What the ledger is keyed by: the target's identity (its path while unknown)."""
        return self.target_id or f"path:{self.target}"


@dataclass(frozen=True, slots=True)
class Ledger:
    """The clone ledger file as read, records by ``CloneRecord.key``. ``problem`` says why it
    could not be understood. ``legacy``: read from a format-1 file (records without
    identities, by clone name), to be rewritten in the current format. ``used``: every
    ``recopy`` value ever used for a copy onto a target, by the target's key (as
    ``CloneRecord.key``), besides the one its record holds: a value asks once, ever.
    ``running``: by target key, the recopy value whose copy was started (recorded, also in
    ``used``, right before ``mdadm --add``) while the target's record still stands; it goes
    with that record once md is seen writing the target."""

    path: str
    records: dict[str, CloneRecord] = field(default_factory=dict)
    problem: str | None = None
    legacy: bool = False
    used: dict[str, tuple[str, ...]] = field(default_factory=dict)
    running: dict[str, str] = field(default_factory=dict)

    def used_for(self, key: str) -> tuple[str, ...]:
        """Every recopy value used onto the target ``key``, in the order they were used."""
        rec = self.records.get(key)
        return recopies_used(self.used.get(key, ()), rec.recopy if rec else "")


def recopies_used(earlier: tuple[str, ...], current: str) -> tuple[str, ...]:
    """``earlier`` then ``current`` (when set and new): the recopy values used on a target."""
    return earlier + ((current,) if current and current not in earlier else ())
