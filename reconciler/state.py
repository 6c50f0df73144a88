"""Observed state: frozen, typed, built once per observation and never mutated.

The parsers in ``adapters`` produce these objects; planning reads them; nothing writes to
them. Sizes are ``units.Size`` bytes. Mappings are plain dicts for speed (a host with 10,000
LVs is built in one pass); treat them as read-only.

The LVM part keeps what placement and long operations need: per visible LV, how many
extents each PV holds (hidden sub-LVs such as raid images are folded into their visible
parent), the raid images with their sync flags, and in-flight pvmoves with what they move.

The md part (clones) keeps the arrays of /proc/mdstat, with the sysfs details of the ones a
clone names (members by device number, sync progress and speed knobs), what the clones'
devices are used by (holders, mounts), and the clone ledger: the one fact that cannot be
observed once a non-persistent array is gone, that a clone was split after a full sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.units import Size


@dataclass(frozen=True, slots=True)
class LvAttr:
    """The 10 characters of ``lv_attr``, decoded (lvs(8), "lv_attr bits")."""

    raw: str

    @property
    def volume_type(self) -> str:
        return self.raw[0]

    @property
    def is_pvmove(self) -> bool:
        return self.raw[0] == "p"

    @property
    def is_raid(self) -> bool:
        return self.raw[0] in "rR"

    @property
    def is_mirror(self) -> bool:
        return self.raw[0] in "mM"

    @property
    def has_dependents(self) -> bool:
        """A snapshot origin or a thin pool: lvremove of it removes other LVs too."""
        return self.raw[0] in "oOt"

    @property
    def is_image(self) -> bool:
        return self.raw[0] in "iI"

    @property
    def is_image_out_of_sync(self) -> bool:
        return self.raw[0] == "I"

    @property
    def is_locked_by_pvmove(self) -> bool:
        """Allocation policy letter in capitals: extents are locked by a running pvmove."""
        return self.raw[2].isupper()

    @property
    def is_active(self) -> bool:
        return self.raw[4] == "a"

    @property
    def is_open(self) -> bool:
        return self.raw[5] == "o"

    @property
    def health(self) -> str:
        return {"-": "ok", "p": "partial", "r": "refresh needed", "m": "mismatches",
                "w": "writemostly", "X": "unknown", "R": "remove after reshape"}.get(
                    self.raw[8], self.raw[8])


@dataclass(frozen=True, slots=True)
class Pv:
    name: str
    uuid: str
    vg: str | None
    devno: tuple[int, int] | None
    dev_size: Size
    size: Size
    free: Size
    pe_count: int
    pe_alloc_count: int
    missing: bool
    allocatable: bool

    @property
    def free_extents(self) -> int:
        return self.pe_count - self.pe_alloc_count


@dataclass(frozen=True, slots=True)
class RaidImage:
    """One leg of a raid1/mirror LV."""

    name: str
    in_sync: bool
    pv_extents: dict[str, int]


@dataclass(frozen=True, slots=True)
class Lv:
    vg: str
    name: str
    uuid: str
    size: Size
    attr: LvAttr
    layout: tuple[str, ...]
    segtypes: tuple[str, ...]
    pv_extents: dict[str, int]  # PV name -> extents of this LV (sub-LVs included)
    images: tuple[RaidImage, ...] = ()
    sync_percent: float | None = None
    copy_percent: float | None = None
    raid_sync_action: str | None = None
    moving_via: str | None = None  # name of the pvmove LV its segments go through
    tags: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.vg}/{self.name}"

    @property
    def is_linear(self) -> bool:
        return not self.images and all(s in ("linear", "striped") for s in self.segtypes)

    @property
    def is_synced(self) -> bool:
        """True when every raid/mirror image is in sync (trivially true for linear LVs)."""
        if not self.images:
            return True
        pct = self.sync_percent if self.sync_percent is not None else self.copy_percent
        return (pct is not None and pct >= 100.0
                and all(img.in_sync for img in self.images))


@dataclass(frozen=True, slots=True)
class PvMove:
    """A pvmove in flight (its ``pvmoveN`` LV exists in the VG metadata)."""

    vg: str
    name: str
    source: str | None
    copy_percent: float | None
    lvs: tuple[str, ...]
    destinations: tuple[str, ...]
    size: Size = Size(0)  # what the move copies (the pvmove LV's size): 0 when unknown

    @property
    def key(self) -> str:
        return f"{self.vg}/{self.name}"


@dataclass(frozen=True, slots=True)
class Process:
    """A live process, as /proc/PID/cmdline shows it."""

    pid: int
    argv: tuple[str, ...]

    def __str__(self) -> str:
        cmd = " ".join(self.argv)
        return f"pid {self.pid} ({cmd if len(cmd) <= 80 else cmd[:77] + '...'})"


@dataclass(frozen=True, slots=True)
class Pollers:
    """Who drives in-flight pvmoves, read from /proc (only while a pvmove is in flight).

    lvm2 polls a pvmove from a process: the one ``pvmove`` forks (``--background``), or,
    when lvm.conf's ``use_lvmpolld`` is on and lvmpolld's socket answers, an
    ``lvm lvpoll --polloperation pvmove VG/pvmoveN`` that lvmpolld spawns (lvmpolld keeps
    one per move and ignores a second request for it). Without a poller the kernel finishes
    at most the segment it is copying and the move never completes.
    """

    # (process, the move it polls as "vg/pvmoveN", or "" for every move: a pvmove process)
    processes: tuple[tuple[Process, str], ...] = ()
    lvmpolld: Process | None = None
    lvmpolld_socket: bool = False
    use_lvmpolld: bool = True  # lvm2's default when built with lvmpolld (Debian's is)

    @property
    def lvmpolld_in_use(self) -> bool:
        """A pvmove run now would hand its polling to lvmpolld."""
        return self.use_lvmpolld and self.lvmpolld_socket

    def polling(self, key: str) -> tuple[Process, ...]:
        """The live processes that poll move ``key`` ("vg/pvmoveN")."""
        return tuple(p for p, target in self.processes if target in ("", key))


@dataclass(frozen=True, slots=True)
class Vg:
    name: str
    uuid: str
    extent_size: Size
    extent_count: int
    free_count: int
    lock_type: str
    missing_pv_count: int
    pvs: tuple[str, ...]
    lvs: dict[str, Lv]
    pvmoves: tuple[PvMove, ...] = ()


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
class BlockDevice:
    """What clone planning needs to know about a device a clone names."""

    path: str
    devno: tuple[int, int] | None  # None: the path does not exist (or is not a block device)
    name: str = ""  # kernel name (its uevent DEVNAME)
    size: Size | None = None
    holders: tuple[str, ...] = ()  # what is stacked on it or on its partitions ("md100", "dm-0")
    mounts: tuple[str, ...] = ()  # where it or one of its partitions is mounted

    @property
    def exists(self) -> bool:
        return self.devno is not None


@dataclass(frozen=True, slots=True)
class CloneRecord:
    """A ledger entry: clone ``source`` → ``target`` through ``md`` was split after a full
    sync, at ``split_at`` (seconds since the epoch)."""

    source: str
    target: str
    md: str
    split_at: float


@dataclass(frozen=True, slots=True)
class Ledger:
    """The clone ledger file as read. ``problem`` says why it could not be understood."""

    path: str
    clones: dict[str, CloneRecord] = field(default_factory=dict)
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class HostState:
    host: str
    vgs: dict[str, Vg] = field(default_factory=dict)
    pvs: dict[str, Pv] = field(default_factory=dict)
    # The block-device identity (major, minor) of every device path the spec names, or None
    # when the path does not exist: spec paths are matched to PVs by identity, not spelling.
    devices: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    observed_at: float = 0.0
    md: dict[str, MdArray] = field(default_factory=dict)  # by kernel name, "md100"
    blockdevs: dict[str, BlockDevice] = field(default_factory=dict)  # by spec path
    ledger: Ledger | None = None  # read only when the spec declares clones
    # Who polls pvmoves: read only while one is in flight; None when not read or unreadable.
    pollers: Pollers | None = None
    _by_devno: dict[tuple[int, int], Pv] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_devno", {pv.devno: pv for pv in self.pvs.values()
                                               if pv.devno is not None})

    def pv_for(self, device: str) -> Pv | None:
        """The PV that ``device`` (as a spec spells it) is, matched by device number first."""
        devno = self.devices.get(device)
        if devno is not None and devno in self._by_devno:
            return self._by_devno[devno]
        return self.pvs.get(device)
