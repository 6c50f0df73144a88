"""A cluster of simulated hosts: the one way hosts are joined, on top of the simulator.

``Cluster`` holds what several hosts have in common, each kind of joint one view of it:

* one virtual clock every host, DRBD resync and pvmove moves with;
* its hosts (``SimulatedHost``s, by node name), each with its own kernel and tools;
* the network: iSCSI portals and the disks two hosts see while a session is logged in
  (``fabric``: ``iscsi_model.Fabric``, whose ``shared.Link``s carry LVM metadata written on
  one side to the other), and the DRBD links that can be cut and restored (``drbd``:
  ``drbd_model.DrbdNet``); ``cut``/``restore`` act on the network as a whole;
* shared disks under lvmlockd (``lockd``: ``lockd_tools.LockdCluster``): the disks every
  node sees with the one LVM model on them, the lockspaces and the cluster's lock table.

The views are made on first use, so a cluster of one host costs nothing more. Tests join
hosts only through a ``Cluster`` (``tests/support/nodes.py``: ``Nodes.of_cluster``).
"""

from __future__ import annotations

from .clock import SimClock
from .drbd_model import DrbdNet, DrbdNode
from .host import SimulatedHost
from .iscsi_model import Fabric, IscsiSide
from .lockd_tools import LockdCluster


class Cluster:
    """Simulated hosts joined by a network, shared disks and lockspaces."""

    def __init__(self, clock: SimClock | None = None):
        self.clock = clock or SimClock()
        self.hosts: dict[str, SimulatedHost] = {}
        self._fabric: Fabric | None = None
        self._drbd: DrbdNet | None = None
        self._lockd: LockdCluster | None = None

    @classmethod
    def of_hosts(cls, hosts: dict[str, SimulatedHost],
                 clock: SimClock | None = None) -> Cluster:
        """A cluster of hosts built already (on one clock, which becomes the cluster's)."""
        cluster = cls(clock or next(iter(hosts.values())).clock)
        for name, host in hosts.items():
            cluster.add_host(name, host)
        return cluster

    @classmethod
    def of_lockd(cls, lockd: LockdCluster) -> Cluster:
        """A cluster whose nodes share a VG under lvmlockd (the ``LockdCluster`` built)."""
        cluster = cls(lockd.clock)
        cluster._lockd = lockd
        return cluster

    # -- hosts ---------------------------------------------------------------------------

    def add_host(self, name: str, host: SimulatedHost | None = None, *,
                 seed: str | None = None, **kw) -> SimulatedHost:
        """Host ``name`` joins (a new ``SimulatedHost`` on the cluster's clock, with
        ``seed`` if given, unless one is given); its commands still run as "local"."""
        if name in self.names:
            raise ValueError(f"the cluster has a node {name} already")
        if host is None:
            if seed is not None:
                kw["seed"] = seed
            host = SimulatedHost(clock=self.clock, **kw)
        elif host.clock is not self.clock:
            raise ValueError(f"host {name} has a clock of its own: the nodes share one")
        self.hosts[name] = host
        return host

    @property
    def names(self) -> list[str]:
        """Every node's name: the hosts', then the lvmlockd nodes'."""
        return [*self.hosts, *(self._lockd.nodes if self._lockd is not None else ())]

    # -- the network ---------------------------------------------------------------------

    @property
    def fabric(self) -> Fabric:
        """iSCSI: who answers at which portal; the disks two hosts see (``fabric.links``)."""
        if self._fabric is None:
            self._fabric = Fabric()
        return self._fabric

    def join_iscsi(self, name: str, initiator: str = "") -> IscsiSide:
        """Host ``name`` gets LIO and open-iscsi on the fabric (``initiator``: its IQN)."""
        return self.fabric.join(self.hosts[name], initiator=initiator)

    @property
    def drbd(self) -> DrbdNet:
        """DRBD: the links between the hosts' DRBD kernels."""
        if self._drbd is None:
            self._drbd = DrbdNet(self.clock)
        return self._drbd

    def join_drbd(self, name: str, hostname: str | None = None) -> DrbdNode:
        """Host ``name`` gets a DRBD kernel; ``hostname`` (default: the node's name) is its
        uname -n, which drbdadm matches the resource file's ``on`` sections against."""
        return self.drbd.join(self.hosts[name], hostname or name)

    def cut(self, a: str, b: str) -> None:
        """The network between ``a`` and ``b`` goes down (their DRBD link)."""
        self.drbd.cut(a, b)

    def restore(self, a: str, b: str) -> None:
        self.drbd.restore(a, b)

    # -- shared disks under lvmlockd -----------------------------------------------------

    def join_lockd(self, nodes: dict[str, int | None]) -> LockdCluster:
        """Nodes sharing disks under lvmlockd + sanlock: ``nodes`` is name -> host_id
        (None: not set in lvmlocal.conf). Their disks come with ``add_shared_disk``."""
        if self._lockd is not None:
            raise ValueError("the cluster has its lvmlockd nodes already")
        clash = set(nodes) & set(self.hosts)
        if clash:
            raise ValueError(f"nodes {sorted(clash)} are hosts of the cluster already")
        self._lockd = LockdCluster(nodes, clock=self.clock)
        return self._lockd

    @property
    def lockd(self) -> LockdCluster:
        """The lvmlockd nodes: the one LVM model on their shared disks, lockspaces, locks."""
        if self._lockd is None:
            raise ValueError("no lvmlockd nodes in this cluster (join_lockd)")
        return self._lockd

    def add_shared_disk(self, path: str, size: int) -> None:
        """A disk every lvmlockd node sees at ``path`` (a SAN LUN)."""
        self.lockd.add_disk(path, size)
