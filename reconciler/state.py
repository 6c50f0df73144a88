"""Observed state: frozen, typed, built once per observation and never mutated.

The parsers in ``adapters`` produce these objects; planning reads them; nothing writes to
them. Sizes are ``units.Size`` bytes. Mappings are plain dicts for speed (a host with 10,000
LVs is built in one pass); treat them as read-only.

The LVM part keeps what placement and long operations need: per visible LV, how many
extents each PV holds (hidden sub-LVs such as raid images are folded into their visible
parent), the raid images with their sync and health flags, in-flight pvmoves with what they
move, and each VG's LVM system ID (the host that owns it). ``split_problems`` is the one
rule for dropping a mirror leg: every field lvm2 reports must say the kept leg is a
complete, healthy copy on present PVs; sync percent alone is no proof (a raid1 whose new
leg's disk fails mid-sync reports 100.00, health "partial" and the PV as [unknown]).

The md part (clones) keeps the arrays of /proc/mdstat, with the sysfs details of the ones a
clone names (members by device number, sync progress and speed knobs), what the clones'
devices are used by (holders, mounts) and who they are (a stable identity), and the clone
ledger: the one fact that cannot be observed once a non-persistent array is gone, that a
target received a complete copy when its clone was split.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.state_iscsi import IscsiState
from reconciler.state_drbd import (DrbdBacking, DrbdHost, DrbdLedger, DrbdMetaRecord,  # noqa: F401
                                   DrbdMinor, DrbdResourceState, DrbdSync, Gi, JUST_CREATED_GI)
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
    def is_image_in_sync(self) -> bool:
        """Only the letter lvm prints for an in-sync image counts; any other is not proof."""
        return self.raw[0] == "i"

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
        """Bit 9 of lv_attr in words (lvs(8)); "ok" for '-'."""
        return _ATTR_HEALTH.get(self.health_char, f"unknown flag {self.health_char!r}")

    @property
    def health_char(self) -> str:
        return self.raw[8] if len(self.raw) > 8 else "?"

    @property
    def is_healthy(self) -> bool:
        return self.health_char == "-"


_ATTR_HEALTH = {
    "-": "ok", "p": "partial: a PV of it is missing", "r": "refresh needed: the kernel "
    "counts a device of it as failed", "m": "mismatches exist between its copies",
    "w": "writemostly", "X": "unknown: lvm could not tell", "R": "remove after reshape",
    "F": "failed", "D": "out of data space", "M": "metadata read only", "E": "error",
}


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
    pe_start: Size = Size(0)  # where the first extent starts (0: not reported)
    mda_count: int = 0
    mda_size: Size = Size(0)

    @property
    def free_extents(self) -> int:
        return self.pe_count - self.pe_alloc_count

    def extents_once_added(self, extent_size: int) -> int:
        """Extents this orphan PV will hold once it is in a VG of ``extent_size``: an orphan
        reports none. Counted as lvm does at vgextend (lab: a 200 MiB orphan gives 49 extents
        of 4 MiB), on the conservative side: 1 MiB of data alignment when ``pe_start`` is not
        reported, and a second metadata area at the end of the device when there is one."""
        if self.vg is not None:
            return 0
        return self.extents_on_device(extent_size)

    def extents_on_device(self, extent_size: int) -> int:
        """Extents the whole device can hold (what ``pvresize`` gives a PV of a VG whose
        device grew; compared with ``pe_count``, not ``size``: lvm's pv_size is whole
        extents, a little less than the device)."""
        if self.missing or extent_size <= 0:
            return 0
        start = int(self.pe_start) or 1024**2
        tail = int(self.mda_size) if self.mda_count > 1 else 0
        return max(0, (int(self.dev_size) - start - tail) // extent_size)


MISSING_PV_NAME = "[unknown]"  # lvm's name for a PV whose device it cannot find


@dataclass(frozen=True, slots=True)
class LegPart:
    """A hidden sub-LV of a leg (its image, its raid metadata) as lvm reports it."""

    name: str
    attr: LvAttr
    health_status: str = ""  # lv_health_status
    is_image: bool = False  # the leg's data (``_rimage_N``/``_mimage_N``), not its metadata


@dataclass(frozen=True, slots=True)
class RaidImage:
    """One leg of a raid1/mirror LV."""

    name: str
    in_sync: bool  # the image's lv_attr says 'i'; any other letter (or none) is not in sync
    pv_extents: dict[str, int]
    parts: tuple[LegPart, ...] = ()


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
    health_status: str = ""  # lv_health_status: "" when lvm sees nothing wrong

    @property
    def key(self) -> str:
        return f"{self.vg}/{self.name}"

    @property
    def is_linear(self) -> bool:
        return not self.images and all(s in ("linear", "striped") for s in self.segtypes)

    @property
    def percent(self) -> float | None:
        return self.sync_percent if self.sync_percent is not None else self.copy_percent

    @property
    def is_synced(self) -> bool:
        """True when every raid/mirror image is in sync (trivially true for linear LVs): the
        percent is 100, every image says 'i', and a raid LV's sync action is idle. Whether
        the copies are *healthy* is ``split_problems``'s question."""
        if not self.images:
            return True
        pct = self.percent
        return (pct is not None and pct >= 100.0
                and all(img.in_sync for img in self.images)
                and (not self.attr.is_raid or self.raid_sync_action == "idle"))


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
    system_id: str = ""  # vg_systemid: the host that owns the VG ("" = none, any host may)
    exported: bool = False  # vg_attr 'x': vgexport'ed, waiting for vgimport on some host
    tags: tuple[str, ...] = ()


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


UNSTABLE_IDENTITY = "devno:"  # the prefix of an identity made of device number and size


def is_stable_identity(identity: str) -> bool:
    """Whether an identity names the device itself (dm/md uuid, WWID, serial) rather than its
    device number, which a reboot or a rescan may give to another device."""
    return bool(identity) and not identity.startswith(UNSTABLE_IDENTITY)


@dataclass(frozen=True, slots=True)
class BlockDevice:
    """What clone planning needs to know about a device a clone names."""

    path: str
    devno: tuple[int, int] | None  # None: the path does not exist (or is not a block device)
    name: str = ""  # kernel name (its uevent DEVNAME)
    size: Size | None = None
    holders: tuple[str, ...] = ()  # what is stacked on it or on its partitions ("md100", "dm-0")
    mounts: tuple[str, ...] = ()  # where it or one of its partitions is mounted
    # Who the device is, whatever path names it: "dm-uuid:LVM-...", "wwid:naa.6...",
    # "serial:d1", "md-uuid:...", "<disk's identity>/part1", or, when the kernel shows nothing
    # stable, "devno:M:m,size:BYTES". "" when the device does not exist.
    identity: str = ""

    @property
    def exists(self) -> bool:
        return self.devno is not None


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
    identities, by clone name), to be rewritten in the current format."""

    path: str
    records: dict[str, CloneRecord] = field(default_factory=dict)
    problem: str | None = None
    legacy: bool = False


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
    ledger: Ledger | None = None  # None: not read (the caller asked for no md observation)
    # This host's LVM system ID (``lvm systemid``; "" = none configured). Asked only when
    # some VG carries a system ID; None = not asked.
    lvm_system_id: str | None = None
    # Who polls pvmoves: read only while one is in flight; None when not read or unreadable.
    pollers: Pollers | None = None
    iscsi: IscsiState | None = None  # None: the spec declares no iSCSI table (not read)
    # lvmlockd's view on this node (shared VGs); None = not asked (no shared VG in the spec).
    lockd: "Lockd | None" = None
    drbd: DrbdHost | None = None  # -- drbd -- (state_drbd); None: no DRBD resource declared
    # VG names lvm reported for two VGs (a local one and a foreign one, with --foreign):
    # name -> the system IDs of each ("" = none). ``vgs`` holds one of them only.
    vg_names_twice: dict[str, tuple[str, ...]] = field(default_factory=dict)
    _by_devno: dict[tuple[int, int], Pv] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_devno", {pv.devno: pv for pv in self.pvs.values()
                                               if pv.devno is not None})

    def foreign_owner(self, vg: Vg) -> str | None:
        """The system ID of the other host that owns ``vg``, or None when this host may use
        it (no system ID on the VG, or this host's own). Unknown ownership counts as foreign."""
        if not vg.system_id or vg.system_id == self.lvm_system_id:
            return None
        return vg.system_id

    def device_key(self, path: str) -> object:
        """What identifies the device at ``path``: its device number when known (from the
        spec's paths, or a PV of that name), else the path itself."""
        devno = self.devices.get(path)
        if devno is None and path in self.pvs:
            devno = self.pvs[path].devno
        return devno if devno is not None else path

    def pv_for(self, device: str) -> Pv | None:
        """The PV that ``device`` (as a spec spells it) is, matched by device number first."""
        devno = self.devices.get(device)
        if devno is not None and devno in self._by_devno:
            return self._by_devno[devno]
        return self.pvs.get(device)


# -- lockd ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DmDevice:
    """A device-mapper device as sysfs shows it (``/sys/block/dm-N``), no process."""

    kernel: str  # "dm-1"
    name: str  # dm/name: "vgs-lv1" (a '-' inside a VG or LV name is doubled)
    uuid: str  # dm/uuid: "LVM-<vg uuid><lv uuid>" without dashes for an LV
    size: Size  # the table's length (size, 512-byte sectors, in bytes here)
    holders: tuple[str, ...] = ()
    mounts: tuple[str, ...] = ()

    @property
    def in_use(self) -> tuple[str, ...]:
        return (*(f"held by {h}" for h in self.holders), *(f"mounted on {m}" for m in self.mounts))


@dataclass(frozen=True, slots=True)
class Lockd:
    """What lvmlockd says on this node (``lvmlockctl --info``) and the dm devices.

    lvm2 2.03.16's report cannot tell a shared activation from an exclusive one, nor see
    other nodes (lab, tests/fixtures/outputs/lvmlockd/INDEX.md): the lock mode per LV is
    lvmlockd's. ``running`` False: lvmlockd could not be reached (``problem`` says how).
    """

    running: bool
    lockspaces: dict[str, str] = field(default_factory=dict)  # VG name -> lock manager
    locks: dict[str, str] = field(default_factory=dict)  # LV uuid (dashed) -> "ex" | "sh"
    dm: dict[str, DmDevice] = field(default_factory=dict)  # by dm name
    problem: str = ""

    def lockspace_started(self, vg: str) -> bool:
        """lvmlockd's word only: the ``<vg>-lvmlock`` dm device is no proof (a lock-start
        with a host_id another live node holds leaves it there without a lockspace; lab)."""
        return vg in self.lockspaces

    def dm_for(self, vg: str, lv: str) -> DmDevice | None:
        return self.dm.get(dm_name(vg, lv))


def dm_name(vg: str, lv: str) -> str:
    """The dm name lvm gives ``vg/lv`` (libdm's dm_build_dm_name: '-' doubled)."""
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


# -- the rule for dropping a mirror leg ---------------------------------------------------------

_SYNC_WORDS = {"recover": "a new leg is still being copied", "resync": "the legs are being "
               "resynchronised", "check": "a scrub (check) is running", "repair": "a scrub "
               "(repair) is running", "frozen": "the sync is frozen", "reshape": "a reshape is "
               "running"}


def needs_refresh(lv: Lv) -> bool:
    """lvm says a device of the raid LV failed and is back: only ``lvchange --refresh`` makes
    the kernel take it again (lv_attr health 'r', lv_health_status "refresh needed")."""
    return lv.attr.health_char == "r" or lv.health_status == "refresh needed" or any(
        p.attr.health_char == "r" or p.health_status == "refresh needed"
        for img in lv.images for p in img.parts)


def split_problems(lv: Lv, pvs: dict[str, Pv], drop: frozenset[str] | None = None) -> list[str]:
    """Why ``lv`` must not lose a leg now, in the operator's words, each naming the lvm field
    seen; empty when every field says each leg is a complete, healthy copy on present PVs.

    ``drop``: names of the PVs whose leg would be dropped; the other leg(s) are the kept one(s)
    and must lie on present PVs none of which is in ``drop``. A sync that has not finished
    is not a problem here (the caller waits: ``Lv.is_synced``); a failed device, a missing
    PV, an image state lvm does not document, a frozen sync are, whatever the percent says.
    """
    out: list[str] = []
    if lv.health_status:
        out.append(f"lvm reports lv_health_status {lv.health_status!r} for the LV")
    if not lv.attr.is_healthy:
        out.append(f"the LV's lv_attr health flag is {lv.attr.health_char!r} ({lv.attr.health})")
    # A sync that has not finished (below 100 %, an image still 'I', a scrub running) is
    # waited for by the caller; what a wait will not cure is a problem: a sync lvm reports
    # as frozen or in a state it does not document, or no sync state at all.
    action = lv.raid_sync_action or ""
    if lv.attr.is_raid and action not in ("idle", "recover", "resync", "check", "repair"):
        out.append(f"raid_sync_action is {action!r}"
                   + (f" ({_SYNC_WORDS[action]})" if action in _SYNC_WORDS else ""))
    for img in lv.images:
        kept = drop is None or not (set(img.pv_extents) & drop)
        for part in img.parts:
            if part.health_status:
                out.append(f"{part.name} reports lv_health_status {part.health_status!r}")
            if not part.attr.is_healthy:
                out.append(f"{part.name} has lv_attr health flag {part.attr.health_char!r} "
                           f"({part.attr.health})")
        image = next((p for p in img.parts if p.is_image), None)
        if image is None:
            out.append(f"leg {img.name} has no image in lvm's report")
        elif image.attr.volume_type not in "iI":
            out.append(f"{image.name} has lv_attr {image.attr.raw!r}: image state "
                       f"{image.attr.volume_type!r} is not one lvm documents, so it does not "
                       f"count as in sync")
        if not img.pv_extents:
            out.append(f"leg {img.name} holds no extent on any PV")
        for name in sorted(img.pv_extents):
            pv = pvs.get(name)
            if name == MISSING_PV_NAME or pv is None or pv.missing:
                out.append(f"leg {img.name} lies on a PV lvm cannot find ({name}, pv_missing)")
        if kept and drop is not None and not img.pv_extents:
            out.append(f"the kept leg {img.name} is empty")
    if drop is not None:
        kept_legs = [img for img in lv.images if not (set(img.pv_extents) & drop)]
        if not kept_legs:
            out.append(f"every leg has extents on {', '.join(sorted(drop))}: none would be left")
    return list(dict.fromkeys(out))
