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

With DLM (``lock_type = "dlm"``, tests/fixtures/outputs/dlm: corosync 3.1.7 two-node,
dlm-controld 4.2.0) a node's lockspaces live in the DLM, which needs corosync quorate on
that node (``Corosync``: the membership each running corosync sees and votequorum's
verdict, as corosync-quorumtool prints it) and dlm_controld running. lvmlockd starts a
``lvm_global`` lockspace beside the first VG's (the global lock is DLM's own, not in a
VG). dlm_controld runs as the lab runs it, ``--enable_fencing 0``: the DLM drops a node that
leaves at once (with fencing on, the default, every lockspace waits until it is fenced:
not modelled). What no recording shows fails loudly in ``lockd_tools``: a lockspace start
or a lock request without quorum (dlm_controld waits for quorum), a DLM command on a node
whose dlm_controld is not running after its start, a cluster of more than two nodes.

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
    # -- corosync and DLM (lock_type dlm) --------------------------------------------------
    corosync: bool = False  # corosync running here
    dlm_controld: bool = False
    enabled: set[str] = field(default_factory=set)  # of those, what starts at boot
    # corosync's view: the members of this node's ring, its ring id's sequence number, and
    # whether every node of the nodelist was seen at once since corosync started here
    # (votequorum's wait_for_all)
    members: frozenset[str] = frozenset()
    ring_seq: int = 1
    seen_all: bool = False
    # lvmlockd's DLM lockspaces that failed to start here (``LS dlm REM:lvm_VG``; "" is
    # lvm_global's), the global lockspace started here, the VG lock's version this node last
    # read of each VG, and the LVs whose lock it asked for and did not get (``LK LV un``)
    rem: set[str] = field(default_factory=set)
    dlm_global: bool = False
    vg_ver: dict[str, int] = field(default_factory=dict)
    lv_un: set[str] = field(default_factory=set)


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


class Corosync:
    """corosync's membership and votequorum's verdict per node (votequorum(5)).

    The nodelist is every node of the cluster, one vote each, in the order given (node ids
    1, 2, ...); ``two_node`` (the lab's ``two_node: 1``) sets quorum to 1 and turns on
    wait_for_all: a node whose corosync started is quorate only once it has seen every
    node at the same time, and stays quorate after that with one node (its peer crashed).
    A membership is the set of running nodes (no network partition is modelled); each new
    one gets a ring id (its lowest node id, and a sequence number 4 above the highest its
    members had: the recordings' 1.5 alone, 1.9 with both)."""

    def __init__(self, nodes: dict[str, Node], *, two_node: bool = True):
        self.nodes = nodes
        self.ids = {name: i for i, name in enumerate(nodes, 1)}
        self.two_node = two_node

    @property
    def expected(self) -> int:
        return len(self.ids)

    @property
    def quorum(self) -> int:
        return 1 if self.two_node else self.expected // 2 + 1

    def changed(self) -> None:
        """Recompute each running node's membership after a node's corosync started or
        stopped (or the node went down)."""
        running = frozenset(n for n, node in self.nodes.items() if node.up and node.corosync)
        for name, node in self.nodes.items():
            if name not in running:
                node.members, node.seen_all = frozenset(), False
        if running and any(self.nodes[n].members != running for n in running):
            seq = max(self.nodes[n].ring_seq for n in running) + 4
            for n in running:
                self.nodes[n].members, self.nodes[n].ring_seq = running, seq
                self.nodes[n].seen_all |= running == frozenset(self.ids)

    def quorate(self, name: str) -> bool:
        node = self.nodes[name]
        if not (node.up and node.corosync):
            return False
        wait_for_all = self.two_node
        return len(node.members) >= self.quorum and (node.seen_all or not wait_for_all)
