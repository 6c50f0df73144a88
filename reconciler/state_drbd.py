"""Observed DRBD state (issue 11): what /proc/drbd says per minor, what the resource files
under /etc/drbd.d/ hold, whether the kernel reported a split brain, and what a declared
backing disk holds when that must be known (before creating metadata on it).

Kept apart from ``state.py`` so the DRBD subsystem stays in its own files; ``HostState.drbd``
holds one ``DrbdHost`` (None when the spec declares no DRBD resource: nothing was read).
Words are DRBD 8.4's own (``Connected``, ``UpToDate``...); the adapter maps a DRBD 9
kernel's words onto them so that planning never sees the version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

    @property
    def connected(self) -> bool:
        return self.cstate in CONNECTED

    @property
    def syncing(self) -> bool:
        return self.cstate in SYNCING


@dataclass(frozen=True, slots=True)
class DrbdBacking:
    """A declared backing disk, probed only when metadata may have to be created on it."""

    path: str
    signatures: tuple[str, ...] = ()  # wipefs' types: ("drbd",) = DRBD metadata, ("ext4",)...
    error: str | None = None  # unreadable (a failed disk), or missing

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
    split_brain: bool = False  # the kernel called the split-brain handler (its marker exists)
    holders: tuple[str, ...] = ()  # /sys/block/drbdN/holders
    mounts: tuple[str, ...] = ()  # mount points of /dev/drbdN


@dataclass(frozen=True, slots=True)
class DrbdHost:
    loaded: bool  # /proc/drbd exists (the module is loaded)
    version: str = ""
    minors: dict[int, DrbdMinor] = field(default_factory=dict)
    resources: dict[str, DrbdResourceState] = field(default_factory=dict)
    backing: dict[str, DrbdBacking] = field(default_factory=dict)  # by spec path
