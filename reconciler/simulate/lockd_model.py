"""A shared VG across several simulated nodes: one metadata area, lvmlockd's lock rules.

What the lab recorded (lvm2 2.03.16 + lvmlockd + sanlock, tests/fixtures/outputs/lvmlockd)
and this model keeps:

* the VG metadata is one (``SharedStorage``): every node that reads it sees the same VG,
  PVs and LVs, whether or not it started the lockspace;
* each node has its own daemons (lvmlockd, sanlock), host_id, started lockspaces, dm devices
  (name, table length, what holds them) and locks; lvmlockd's lock table is the cluster's:
  an LV is held ``ex`` by one node or ``sh`` by several;
* a node that crashes keeps its locks (sanlock leases stay on the disk until the node comes
  back and its lockspace is gone, or its host lease expires once it is known dead: ``expire``);
  its dm devices go with it.

The commands that act on this model are in ``lockd_tools``; anything they do not model
raises ``UnsupportedCommand``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

EXTENT = 4 * 1024**2
LVMLOCK_EXTENTS = 64  # the hidden lvmlock LV sanlock keeps its leases on: 256 MiB
SECTOR = 512


def dashed(hex32: str) -> str:
    """lvm's uuid spelling: 6-4-4-4-4-4-6."""
    parts, i = [], 0
    for n in (6, 4, 4, 4, 4, 4, 6):
        parts.append(hex32[i:i + n])
        i += n
    return "-".join(parts)


@dataclass
class SharedLv:
    name: str
    uuid: str  # dashed
    extents: int
    pv: str  # the PV holding its extents (linear, one segment)
    start: int
    kind: str = "linear"  # or "raid1" (for the refusal of a shared activation)
    hidden: bool = False


@dataclass
class SharedPv:
    path: str
    uuid: str
    devno: tuple[int, int]
    pe_count: int


@dataclass
class SharedVg:
    name: str
    uuid: str
    lock_type: str
    pvs: dict[str, SharedPv] = field(default_factory=dict)
    lvs: dict[str, SharedLv] = field(default_factory=dict)

    def used(self, pv: str) -> list[tuple[int, int]]:
        return sorted((lv.start, lv.extents) for lv in self.lvs.values() if lv.pv == pv)

    def free_on(self, pv: str, n: int) -> int | None:
        """First start of ``n`` free extents on ``pv`` (None: no room)."""
        at = 0
        for start, length in self.used(pv):
            if start - at >= n:
                return at
            at = max(at, start + length)
        return at if self.pvs[pv].pe_count - at >= n else None


@dataclass
class Device:
    path: str
    size: int
    devno: tuple[int, int]


@dataclass
class SharedStorage:
    """The disks every node sees, their PV labels and the shared VGs' metadata."""

    devices: dict[str, Device] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)  # device -> PV uuid (pvcreate'd)
    vgs: dict[str, SharedVg] = field(default_factory=dict)
    counter: int = 0

    def uuid(self, what: str) -> str:
        self.counter += 1
        h = hashlib.sha256(f"{what}:{self.counter}".encode()).hexdigest()
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "".join(alphabet[int(h[i:i + 2], 16) % len(alphabet)] for i in range(0, 64, 2))


@dataclass
class DmDev:
    name: str
    uuid: str
    minor: int
    sectors: int
    mounts: list[str] = field(default_factory=list)
    holders: list[str] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return bool(self.mounts or self.holders)


@dataclass
class Node:
    name: str
    host_id: int | None
    lvmlockd: bool = True
    sanlock: bool = True
    up: bool = True
    lockspaces: set[str] = field(default_factory=set)
    dm: dict[str, DmDev] = field(default_factory=dict)
    next_minor: int = 0
    # The node's own files under LOCAL_STATE_DIR (the reconciler's clone ledger): none yet
    # on a node that never split a clone, which is what reading it then says.
    files: dict[str, str] = field(default_factory=dict)
    # Processes holding a device open with a plain open() (no mount, no holder), by the path
    # a step names: what Runner.openers answers. Tests add to it; they die with the node.
    opened: dict[str, list[str]] = field(default_factory=dict)


LOCAL_STATE_DIR = "/var/lib/reconciler/"


@dataclass
class LockTable:
    """lvmlockd's LV locks as the cluster sees them: LV uuid -> {node: "ex" | "sh"}."""

    held: dict[str, dict[str, str]] = field(default_factory=dict)

    def holders(self, uuid: str) -> dict[str, str]:
        return self.held.get(uuid, {})

    def others(self, uuid: str, node: str) -> dict[str, str]:
        return {n: m for n, m in self.holders(uuid).items() if n != node}

    def take(self, uuid: str, node: str, mode: str) -> None:
        self.held.setdefault(uuid, {})[node] = mode

    def drop(self, uuid: str, node: str) -> None:
        self.held.get(uuid, {}).pop(node, None)
        if uuid in self.held and not self.held[uuid]:
            del self.held[uuid]

    def drop_node(self, node: str) -> None:
        for uuid in list(self.held):
            self.drop(uuid, node)
