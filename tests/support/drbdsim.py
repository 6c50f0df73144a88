"""Two simulated nodes joined by a simulated DRBD link, each with its own reconciler: the
one harness (``support.nodes``) with the DRBD pair's spec and accessors."""

from __future__ import annotations

from support import M
from support.nodes import Nodes, Pass

from reconciler.runner import Command
from reconciler.simulate import SimulatedHost
from reconciler.simulate.cluster import Cluster
from reconciler.spec import loading

SPEC = """
[drbd.r0]
protocol = "C"
{extra}
[drbd.r0.nodes.node-a]
disk = "{disk_a}"
address = "169.254.101.1"
role = "{role_a}"
{wipe_a}
[drbd.r0.nodes.node-b]
disk = "{disk_b}"
address = "169.254.101.2"
role = "{role_b}"
{wipe_b}
"""


class Pair(Nodes):
    def __init__(self, tmp_path):
        cluster = Cluster()
        for name in ("node-a", "node-b"):
            h = cluster.add_host(name)
            h.add_device("/dev/vdb", 64 * M)
            h.add_device("/dev/vdc", 64 * M)
        for name in cluster.hosts:  # commands run as "local"; DRBD knows host names (uname -n)
            cluster.join_drbd(name)
        self.net = cluster.drbd
        self.hosts: dict[str, SimulatedHost] = cluster.hosts
        super().__init__(tmp_path, cluster)

    def node(self, name: str):
        return self.net.nodes[name]

    def spec(self, *, role_a="primary", role_b="secondary", disk_a="/dev/vdb", disk_b="/dev/vdb",
             extra='initial_sync_from = "node-a"', wipe_a="", wipe_b="") -> loading.LoadedSpec:
        return super().spec(SPEC.format(role_a=role_a, role_b=role_b, disk_a=disk_a,
                                        disk_b=disk_b, extra=extra, wipe_a=wipe_a,
                                        wipe_b=wipe_b))

    def one_pass(self, name: str, loaded, *, as_node: str | None = None, **kw) -> Pass:
        """``name``'s reconciler pass (``--node name``, or ``as_node`` for a wrong unit)."""
        return super().one_pass(name, loaded, as_node=as_node, **kw)

    def converge(self, loaded, max_rounds: int = 60, seconds: float = 5.0, **kw):
        return super().converge(loaded, max_rounds=max_rounds, seconds=seconds, **kw)

    def by_hand(self, name: str, *argv: str):
        """An operator's command on ``name`` (outside the reconciler)."""
        res = self.hosts[name].run(Command(argv=tuple(argv)))
        assert res.ok, res
        return res

    def reboot(self, name: str) -> None:
        """``name`` reboots: the host crashes and comes back (DRBD down, module unloaded),
        its reconciler with an empty memory."""
        self.crash(name)
        super().reboot(name)

    def res(self, name: str):
        return self.net.nodes[name].res[0]

    def drbdadm_calls(self, name: str) -> list[tuple[str, ...]]:
        """The drbdadm and modprobe commands ``name`` ran that change something (get-gi reads)."""
        return [c.argv for c in self.hosts[name].calls
                if c.argv[0] in ("drbdadm", "modprobe") and c.mutates]
