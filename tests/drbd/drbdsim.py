"""Two simulated nodes joined by a simulated DRBD link, each with its own reconciler."""

from __future__ import annotations

import textwrap

from reconciler import controller
from reconciler.runner import Command
from reconciler.simulate import SimulatedHost
from reconciler.simulate.clock import SimClock
from reconciler.simulate.drbd_model import DrbdNet
from reconciler.spec import loading

M = 1024**2

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


class Pair:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.clock = SimClock()
        self.net = DrbdNet(self.clock)
        self.hosts = {}
        self.memory = {}
        for name in ("node-a", "node-b"):
            h = SimulatedHost(name="local", clock=self.clock)
            h.add_device("/dev/vdb", 64 * M)
            h.add_device("/dev/vdc", 64 * M)
            self.hosts[name] = h
            self.memory[name] = controller.Memory()
        for name, h in self.hosts.items():  # commands run as "local"; DRBD knows host names
            self.net.join(h, name)
            h.hostname = name  # uname -n: what drbdadm matches the 'on' sections against
        self.results: dict[str, list[controller.PassResult]] = {"node-a": [], "node-b": []}

    def node(self, name: str):
        return self.net.nodes[name]

    def spec(self, *, role_a="primary", role_b="secondary", disk_a="/dev/vdb", disk_b="/dev/vdb",
             extra='initial_sync_from = "node-a"', wipe_a="", wipe_b="") -> loading.LoadedSpec:
        text = SPEC.format(role_a=role_a, role_b=role_b, disk_a=disk_a, disk_b=disk_b, extra=extra,
                           wipe_a=wipe_a, wipe_b=wipe_b)
        (self.tmp / "spec.toml").write_text(textwrap.dedent(text))
        return loading.load(self.tmp / "spec.toml")

    def one_pass(self, name: str, loaded, *, as_node: str | None = None) -> controller.PassResult:
        """``name``'s reconciler pass (``--node name``, or ``as_node`` for a wrong unit)."""
        h = self.hosts[name]
        env = controller.Environment(runner=h, node=as_node or name, resolve=h.resolve_device,
                                     clock=self.clock)
        r = controller.reconcile_once(loaded, env, memory=self.memory[name],
                                      pass_no=len(self.results[name]) + 1)
        self.results[name].append(r)
        return r

    def rounds(self, loaded, n: int = 1, seconds: float = 5.0) -> dict[str, controller.PassResult]:
        out = {}
        for _ in range(n):
            for name in ("node-a", "node-b"):
                out[name] = self.one_pass(name, loaded)
            self.clock.advance(seconds)
        return out

    def converge(self, loaded, max_rounds: int = 60, seconds: float = 5.0) -> dict[str, controller.PassResult]:
        for _ in range(max_rounds):
            out = self.rounds(loaded, 1, seconds)
            if all(r.exit_code != controller.EXIT_PENDING for r in out.values()):
                return out
        raise AssertionError(f"not converged: {[str(r.final) for r in out.values()]}")

    def by_hand(self, name: str, *argv: str):
        """An operator's command on ``name`` (outside the reconciler)."""
        res = self.hosts[name].run(Command(argv=tuple(argv)))
        assert res.ok, res
        return res

    def reboot(self, name: str) -> None:
        """``name`` reboots: the host crashes and comes back (DRBD down, module unloaded)."""
        h = self.hosts[name]
        h.crash_after(0)
        h.recover()

    def res(self, name: str):
        return self.net.nodes[name].res[0]

    def drbdadm_calls(self, name: str) -> list[tuple[str, ...]]:
        """The drbdadm and modprobe commands ``name`` ran that change something (get-gi reads)."""
        return [c.argv for c in self.hosts[name].calls
                if c.argv[0] in ("drbdadm", "modprobe") and c.mutates]
