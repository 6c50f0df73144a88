"""lvmlockd's layer over the one LVM model: a lock table and lockspaces per node.

What the lab recorded (lvm2 2.03.16 + lvmlockd + sanlock, tests/fixtures/outputs/lvmlockd)
and this model keeps:

* the VG metadata is one: the shared disks' LVM metadata is a ``model.Model`` (the same
  LVM model a ``SimulatedHost`` keeps: devices, PV labels, VGs, LVs and their extents), so
  every node that reads it sees the same VG, PVs and LVs, whether or not it started the
  lockspace;
* each node has its own daemons (lvmlockd, sanlock), host_id, started lockspaces, dm devices
  (name, table length, what holds them) and locks; lvmlockd's lock table is the cluster's:
  an LV is held ``ex`` by one node or ``sh`` by several;
* a node that crashes keeps its locks (sanlock leases stay on the disk until the node comes
  back and its lockspace is gone, or its host lease expires once it is known dead: ``expire``);
  its dm devices go with it.

The commands that act on it are in ``lockd_tools``; anything they do not model raises
``UnsupportedCommand``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .model import MiB

EXTENT = 4 * MiB  # vgcreate's default extent size (what the recordings show)
LVMLOCK_EXTENTS = 64  # the hidden lvmlock LV sanlock keeps its leases on: 256 MiB
LVMLOCK = "lvmlock"  # its name and its ``LV.kind`` (role private,lockd,sanlock)
SECTOR = 512


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
