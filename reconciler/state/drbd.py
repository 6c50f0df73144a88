"""Observed DRBD state (issue 11): what /proc/drbd says per minor, what the resource files
under /etc/drbd.d/ hold, whether the kernel reported a split brain, and what a declared
backing disk holds when that must be known (before creating metadata on it).

Metadata identity: a disk's DRBD metadata is this resource's when the DRBD ledger
(``DrbdLedger``, /var/lib/reconciler/drbd.json) has a record for the resource and node naming
that disk's stable identity: the reconciler writes one when it creates metadata, and when it
finds the resource up in the kernel on the declared disk (a host upgraded while running).
Generation identifiers (``Gi``) are read only when they decide something: a down disk that
holds DRBD metadata (drbdmeta get-gi), an up resource without a record, a split brain.

Kept in its own module so the DRBD subsystem stays in its own files; ``HostState.drbd``
holds one ``DrbdHost`` (None when the spec declares no DRBD resource: nothing was read).
Words are DRBD 8.4's own (``Connected``, ``UpToDate``...); the adapter maps a DRBD 9
kernel's words onto them so that planning never sees the version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler import paths

DEFAULT_LEDGER = paths.DRBD_LEDGER
# drbdmeta create-md's generation identifiers (lab recording 19, dump-md): nothing generated yet
JUST_CREATED_GI = "0000000000000004:0000000000000000:0000000000000000:0000000000000000"

# Connection states in which the two nodes talk to each other (8.4's drbd_conns).
CONNECTED = frozenset({"Connected", "StartingSyncS", "StartingSyncT", "WFBitMapS", "WFBitMapT",
                       "WFSyncUUID", "SyncSource", "SyncTarget", "VerifyS", "VerifyT",
                       "PausedSyncS", "PausedSyncT", "Ahead", "Behind"})
SYNCING = frozenset({"StartingSyncS", "StartingSyncT", "WFBitMapS", "WFBitMapT", "WFSyncUUID",
                     "SyncSource", "SyncTarget", "PausedSyncS", "PausedSyncT"})


@dataclass(frozen=True, slots=True)
class DrbdSync:
    """A resync's progress as /proc/drbd prints it (KiB, KiB/s, seconds)."""

    percent: float
    left_kib: int | None = None
    total_kib: int | None = None
    speed_kib: int | None = None
    eta: float | None = None


@dataclass(frozen=True, slots=True)
class DrbdMinor:
    minor: int
    cstate: str  # Connected, StandAlone, WFConnection, SyncSource, SyncTarget, Unconfigured...
    role: str  # Primary, Secondary, Unknown
    peer_role: str
    disk: str  # UpToDate, Inconsistent, Diskless, DUnknown, Outdated, Consistent...
    peer_disk: str
    protocol: str = ""  # blank while StandAlone
    oos_kib: int = 0  # out of sync, KiB
    sync: DrbdSync | None = None
    # what the minor sent to and received from its peer, KiB (ns:, nr:), since it was
    # created (drbdadm up, a module load); None: not shown (an unconfigured minor)
    ns_kib: int | None = None
    nr_kib: int | None = None

    @property
    def connected(self) -> bool:
        return self.cstate in CONNECTED

    @property
    def syncing(self) -> bool:
        return self.cstate in SYNCING


@dataclass(frozen=True, slots=True)
class Gi:
    """DRBD 8.4's generation identifiers: the four UUIDs (16 hex digits, upper case)."""

    current: str
    bitmap: str
    history1: str
    history2: str

    def __str__(self) -> str:
        return f"{self.current}:{self.bitmap}:{self.history1}:{self.history2}"

    @property
    def just_created(self) -> bool:
        """create-md's set: no data generation was ever started on this metadata."""
        return (int(self.current, 16) & ~1) == 4 and not any(
            int(u, 16) for u in (self.bitmap, self.history1, self.history2))

    @property
    def generation(self) -> str:
        """The current generation (DRBD's lowest bit, a flag, masked): with the loss's
        ordinal (``DrbdLoss``), what a ``fenced`` declaration is bound to."""
        return f"{int(self.current, 16) & ~1:016X}"

    @property
    def incident(self) -> str:
        """A split brain's identifier: the generation both sides held when they parted (the
        bitmap UUID each keeps from then on; DRBD's lowest bit is a flag, masked)."""
        return f"{int(self.bitmap, 16) & ~1:016X}"


@dataclass(frozen=True, slots=True)
class DrbdBacking:
    """A declared backing disk, probed only when metadata may have to be created on it."""

    path: str
    signatures: tuple[str, ...] = ()  # wipefs' types: ("drbd",) = DRBD metadata, ("ext4",)...
    error: str | None = None  # unreadable (a failed disk), or missing
    gi: Gi | None = None  # its metadata's generation identifiers (when it holds DRBD metadata)
    gi_error: str | None = None  # drbdmeta could not read them

    @property
    def has_drbd_metadata(self) -> bool:
        return "drbd" in self.signatures

    @property
    def foreign(self) -> tuple[str, ...]:
        return tuple(s for s in self.signatures if s != "drbd")


@dataclass(frozen=True, slots=True)
class DrbdResourceState:
    name: str
    config_path: str
    config: str | None  # the file's text; None: no such file
    # What observation read in that file (adapters.drbd parses it there, once): whether its
    # first line is the reconciler's marker for this resource, and the backing disk it gives
    # this node (``on <node> { disk X; }``; None: no file, or no such line).
    managed: bool = False
    config_disk: str | None = None
    split_brain: bool = False  # the kernel called the split-brain handler (its marker exists)
    holders: tuple[str, ...] = ()  # /sys/block/drbdN/holders
    mounts: tuple[str, ...] = ()  # mount points of /dev/drbdN
    # /dev/drbdN and its device number (DRBD's block major, the minor) while the minor is
    # configured: the device-in-use rule (state.taking) finds its mounts and holders by them
    device: str | None = None
    devno: tuple[int, int] | None = None
    disk_id: str | None = None  # the declared backing disk's identity (the md ledger's kind)
    gi: Gi | None = None  # read while up: during a split brain, or to record metadata
    gi_error: str | None = None


@dataclass(frozen=True, slots=True)
class DrbdMetaRecord:
    """The reconciler created (or adopted) ``resource``'s metadata for ``node`` on a disk."""

    resource: str
    node: str
    disk_id: str  # the disk's stable identity when the record was written
    disk: str  # its path as the spec spelt it
    gi: str  # the generation identifiers read then (CURRENT:BITMAP:H1:H2)
    how: str  # "created" or "adopted"

    @property
    def key(self) -> tuple[str, str]:
        return (self.resource, self.node)


@dataclass(frozen=True, slots=True)
class DrbdSpentFence:
    """A ``fenced = "NODE@INCIDENT"`` declaration of ``resource`` that is spent on ``node``
    (the survivor it was to promote): ``how = "used"`` (the fenced promotion ran, or this node
    was seen primary without its peer while it was declared) or ``"connected"`` (the nodes
    were seen connected while it was declared: the incident it was written for is over). The
    incident's loss ordinal (``DrbdLoss``) already keeps a declaration from matching a later
    loss; this record says why one still in the spec promotes nothing ("already spent")."""

    resource: str
    node: str
    fenced: str  # "NODE@INCIDENT", the incident in upper case
    how: str  # "used" or "connected"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.resource, self.node, self.fenced)


@dataclass(frozen=True, slots=True)
class DrbdLoss:
    """The last loss of its peer that ``node`` recorded for ``resource`` (issue 20): the
    ``ordinal``-th of its ledger (1, 2, ...: never reused), first seen by a pass while
    ``node`` held ``generation``, and ``open`` until a pass sees the nodes connected again,
    or sees that this node exchanged data with its peer since the loss was recorded: in the
    same boot (``boot_id``), /proc/drbd's ns:/nr: differ from ``ns``/``nr`` (a reconnection
    no pass saw). A ``fenced`` declaration names it as its incident, ``incident``
    ("GENERATION-EPOCH-N", ``epoch`` the ledger's): bound to that one loss of that one ledger,
    so a declaration left in the spec never applies to a later one, even at the same
    generation (a Secondary that loses its peer keeps its generation), nor to a loss a
    re-created ledger numbers the same."""

    resource: str
    node: str
    ordinal: int
    generation: str  # 16 hex digits, upper case, DRBD's flag bit masked
    open: bool
    epoch: str = ""  # the ledger's epoch ("": a ledger of the earlier format, which had none)
    boot_id: str = ""  # /proc/sys/kernel/random/boot_id when recorded ("": not recorded)
    ns: int | None = None  # /proc/drbd's ns: and nr: for the resource's minor then
    nr: int | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.resource, self.node)

    @property
    def incident(self) -> str:
        return f"{self.generation}-{self.epoch}-{self.ordinal}"

    def traffic_since(self, boot_id: str | None, m: DrbdMinor | None) -> bool | None:
        """Whether this node exchanged data with its peer since the loss was recorded: True
        in the same boot with other counters (or counters that cannot be read), False in the
        same boot with the same ones, None after a reboot (the counters began again at 0)."""
        if boot_id is None or boot_id != self.boot_id:
            return None
        return m is None or (m.ns_kib, m.nr_kib) != (self.ns, self.nr)


@dataclass(frozen=True, slots=True)
class DrbdLedger:
    path: str
    records: dict[tuple[str, str], DrbdMetaRecord] = field(default_factory=dict)
    spent: dict[tuple[str, str, str], DrbdSpentFence] = field(default_factory=dict)
    losses: dict[tuple[str, str], DrbdLoss] = field(default_factory=dict)
    problem: str | None = None  # the file cannot be read: nothing is trusted or created
    # drawn at random when the ledger is created, part of every incident: a re-created
    # ledger (lost, reinstalled) never reproduces an old one. None: no file yet, or one of
    # the earlier format; its next write takes ``new_epoch`` (drawn by observation then)
    epoch: str | None = None
    new_epoch: str | None = None

    @property
    def write_epoch(self) -> str | None:
        """The epoch the next write of the ledger carries."""
        return self.epoch or self.new_epoch


@dataclass(frozen=True, slots=True)
class DrbdHost:
    loaded: bool  # /proc/drbd exists (the module is loaded)
    version: str = ""
    minors: dict[int, DrbdMinor] = field(default_factory=dict)
    resources: dict[str, DrbdResourceState] = field(default_factory=dict)
    backing: dict[str, DrbdBacking] = field(default_factory=dict)  # by spec path
    hostname: str | None = None  # uname -n (/proc/sys/kernel/hostname): DRBD's 'on' name
    boot_id: str | None = None  # /proc/sys/kernel/random/boot_id: a new one at every boot
    ledger: DrbdLedger = field(default_factory=lambda: DrbdLedger(DEFAULT_LEDGER))
