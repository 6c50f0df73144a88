"""One harness for 1..N simulated nodes, each running the real pass.

``Nodes`` holds the nodes of one ``simulate.cluster.Cluster`` (the one way simulated hosts
are joined: its ``SimulatedHost``s, and its lvmlockd nodes), its virtual clock, one spec file, and for each node what one reconciler process keeps: its
``controller.Memory`` (fresh after a reboot, like a restarted process) and the passes it
ran. A pass is ``controller.reconcile_once`` itself, never a re-implementation, so the
pass's memory, requeue and stall handling run in every multi-node test.

* ``spec(text_or_dict)``: writes the spec file (TOML text dedented, or a dict rendered by
  ``support.specs``) and loads it with the real loader.
* ``one_pass(node, loaded)``: one pass on one node -> ``Pass`` (the ``PassResult`` plus the
  commands that pass ran, ``changes`` being those that change the host).
* ``round(loaded, order)``: one pass per node in ``order`` ("a first", "b first");
  ``interleave=True`` runs the passes at the same time, taking turns command by command
  (each pass in its own thread; a pass waits for its turn before each command it runs), as
  two daemons would.
* ``converge(loaded, order, max_rounds)``: rounds until no node is pending (each node's
  last pass exits 0 or 1), advancing the clock between rounds; raises after ``max_rounds``.
* ``watchers``: functions called after every command any pass runs (invariants that must
  hold at every moment, such as "never two writers").
* ``changes(node)``: every host-changing command (``Command.mutates``) the node ran, in order;
  ``crash_after(node, n)``: the node dies right after its n-th next host-changing command
  (the command took effect; the pass ends there, like a killed machine); ``reboot(node)``:
  it comes back as a reboot leaves it, with a fresh process (new ``Memory``).

A node that is down runs no pass. What a crash and a reboot do to a node is the
simulator's (``SimulatedHost.crash_after``/``recover``, with DRBD's resources going down at
the reboot; ``LockdCluster.crash``/``recover``). ``Nodes(tmp_path, cluster)``;
``of_hosts``/``of_lockd`` build the cluster for hosts or lvmlockd nodes made already.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from support import specs

from reconciler import controller, executing
from reconciler.runner import Command, CommandResult
from reconciler.simulate import SimulatedHost
from reconciler.simulate.clock import SimClock
from reconciler.simulate.cluster import Cluster
from reconciler.simulate.lockd_tools import LockdCluster
from reconciler.spec import loading


class NodeCrashed(BaseException):
    """A node the harness was told to crash went down in the middle of a pass."""


@dataclass
class Pass:
    """One pass of one node: the real pass's result, and the commands it ran."""

    node: str
    no: int
    result: controller.PassResult | None  # None: the node crashed during the pass
    commands: list[Command] = field(default_factory=list)

    @property
    def crashed(self) -> bool:
        return self.result is None

    def __getattr__(self, name: str):  # exit_code, plan, final, report, requeue_after...
        if name.startswith("_") or self.__dict__.get("result") is None:
            raise AttributeError(name)
        return getattr(self.result, name)

    @property
    def changes(self) -> list[tuple[str, ...]]:
        """The host-changing commands this pass ran (argv)."""
        return [c.argv for c in self.commands if c.mutates]

    def outcome(self, key: str) -> executing.StepResult:
        assert self.result is not None and self.result.report is not None, self
        return next(r for r in self.result.report.results if r.step.key == key)


@dataclass
class Node:
    name: str
    runner: object  # the simulated machine: run, read, openers, resolve_device
    crash: Callable[..., None]  # the machine dies now (keywords: what the test assumes)
    reboot: Callable[[], None]  # ... and comes back
    memory: controller.Memory = field(default_factory=controller.Memory)
    passes: list[Pass] = field(default_factory=list)
    log: list[Command] = field(default_factory=list)  # every command, all passes
    budget: int | None = None  # host-changing commands left before it crashes
    down: bool = False

    @property
    def last(self) -> Pass | None:
        return self.passes[-1] if self.passes else None


def host_node(name: str, host: SimulatedHost) -> Node:
    """A ``SimulatedHost`` (with its DRBD kernel, if a ``DrbdNet`` joined it)."""

    def crash() -> None:
        host.crash_after(0)

    def reboot() -> None:
        host.recover()

    return Node(name, host, crash, reboot)


def lockd_node(cluster: LockdCluster, name: str) -> Node:
    """A node of the lvmlockd simulator (its dm devices and lockspaces die with it, its
    sanlock leases stay until it comes back)."""
    return Node(name, cluster.node(name), lambda **assumed: cluster.crash(name, **assumed),
                lambda: cluster.recover(name))


class _Turns:
    """Passes running at the same time, one command each in turn (see ``round``)."""

    def __init__(self, order: Sequence[str]):
        self.cv = threading.Condition()
        self.live = list(order)
        self.turn = self.live[0]

    def _wait(self, me: str) -> None:
        if not self.cv.wait_for(lambda: self.turn == me, timeout=60):
            raise AssertionError(f"interleaved passes: {me} never got its turn back")

    def start(self, me: str) -> None:
        with self.cv:
            self._wait(me)

    def step(self, me: str) -> None:
        """Before a command: the next live pass runs up to its next command first."""
        with self.cv:
            i = self.live.index(me)
            self.turn = self.live[(i + 1) % len(self.live)]
            self.cv.notify_all()
            self._wait(me)

    def leave(self, me: str) -> None:
        with self.cv:
            i = self.live.index(me)
            self.live.remove(me)
            if self.live:
                self.turn = self.live[i % len(self.live)]
            self.cv.notify_all()


@dataclass
class _NodeRunner:
    """What a pass runs on: the node's machine, every command recorded, the crash budget
    spent on host-changing commands, and (interleaved) a turn taken before each command."""

    harness: "Nodes"
    node: Node
    into: list[Command]
    turns: _Turns | None = None

    def run(self, cmd: Command) -> CommandResult:
        if self.turns is not None:
            self.turns.step(self.node.name)
        res = self.node.runner.run(cmd)
        self.node.log.append(cmd)
        self.into.append(cmd)
        crash = False
        if cmd.mutates and self.node.budget is not None:
            self.node.budget -= 1
            if self.node.budget <= 0:
                self.node.budget, crash = None, True
                self.harness.crash(self.node.name)
        for watch in self.harness.watchers:
            watch(self.node.name, cmd)
        if crash:
            raise NodeCrashed(f"{self.node.name} crashed right after: {' '.join(cmd.argv)}")
        return res

    def read(self, path: str, *, host: str = "local") -> str | None:
        return self.node.runner.read(path, host=host)

    def read_bytes(self, path: str, offset: int, length: int, *,
                   host: str = "local") -> bytes | None:
        return self.node.runner.read_bytes(path, offset, length, host=host)

    def openers(self, paths, *, host: str = "local"):
        return self.node.runner.openers(paths, host=host)

    def claimed(self, paths, *, host: str = "local"):
        return self.node.runner.claimed(paths, host=host)


class Nodes:
    """The 1..N nodes of one simulated cluster, each with its own reconciler process."""

    def __init__(self, tmp_path: Path, cluster: Cluster):
        self.tmp = Path(tmp_path)
        self.cluster = cluster
        self.clock = cluster.clock
        nodes = [host_node(n, h) for n, h in cluster.hosts.items()]
        if cluster.names != list(cluster.hosts):
            nodes += [lockd_node(cluster.lockd, n) for n in cluster.lockd.nodes]
        self.nodes: dict[str, Node] = {n.name: n for n in nodes}
        self.order: tuple[str, ...] = tuple(self.nodes)
        # called as watch(node, command) after every command any node's pass runs (and
        # after the crash it may cause): invariants that must hold at every moment
        self.watchers: list[Callable[[str, Command], None]] = []

    @classmethod
    def of_hosts(cls, tmp_path: Path, hosts: dict[str, SimulatedHost],
                 clock: SimClock | None = None) -> "Nodes":
        return cls(tmp_path, Cluster.of_hosts(hosts, clock))

    @classmethod
    def of_lockd(cls, tmp_path: Path, cluster: LockdCluster) -> "Nodes":
        return cls(tmp_path, Cluster.of_lockd(cluster))

    @property
    def results(self) -> dict[str, list[controller.PassResult]]:
        """Each node's pass results so far, in order (passes a crash cut short left out)."""
        return {n: [p.result for p in node.passes if p.result is not None]
                for n, node in self.nodes.items()}

    @property
    def memory(self) -> "_Memories":
        """Each node's ``controller.Memory`` by name; assigning one is a process restart."""
        return _Memories(self)

    # -- the spec ------------------------------------------------------------------------

    def spec(self, doc: str | Mapping, name: str = "spec.toml") -> loading.LoadedSpec:
        """The spec file ``name`` of every node (TOML text, dedented, or a dict rendered as
        TOML), loaded by the real loader (``support.specs``)."""
        return specs.load(doc, directory=self.tmp, name=name)

    # -- passes --------------------------------------------------------------------------

    def env(self, name: str, runner=None) -> controller.Environment:
        node = self.nodes[name]
        runner = runner if runner is not None else node.runner
        return controller.Environment(runner=runner, node=name,
                                      resolve=node.runner.resolve_device, clock=self.clock)

    def one_pass(self, name: str, loaded: loading.LoadedSpec, *, dry_run: bool = False,
                 fresh_memory: bool = False, as_node: str | None = None,
                 memo: str | None = None, _turns: _Turns | None = None) -> Pass:
        """One pass of ``name``'s reconciler (run as ``--node as_node``: a wrong unit).
        ``memo``: a ``reconcile --once`` process's pass instead (no memory of earlier
        passes), keeping its last no-op pass in that file (``noop_memo``)."""
        node = self.nodes[name]
        if node.down:
            raise AssertionError(f"{name} is down: reboot it first")
        if fresh_memory:
            node.memory = controller.Memory()
        p = Pass(name, len(node.passes) + 1, None)
        node.passes.append(p)
        runner = _NodeRunner(self, node, p.commands, _turns)
        try:
            env = self.env(name, runner)
            env.node = as_node or name
            p.result = controller.reconcile_once(
                loaded, env, dry_run=dry_run, memory=None if memo else node.memory,
                pass_no=p.no, memo=memo)
        except NodeCrashed:  # (the simulator's own crash_after raises its own exception)
            pass
        return p

    def round(self, loaded: loading.LoadedSpec, order: Sequence[str] | None = None, *,
              interleave: bool = False) -> dict[str, Pass]:
        """One pass on every node that is up, in ``order`` (default: as given)."""
        order = [n for n in (order or self.order) if not self.nodes[n].down]
        if not interleave or len(order) < 2:
            return {n: self.one_pass(n, loaded) for n in order}
        turns = _Turns(order)
        out: dict[str, Pass] = {}
        errors: list[BaseException] = []

        def work(n: str) -> None:
            try:
                turns.start(n)
                out[n] = self.one_pass(n, loaded, _turns=turns)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
                errors.append(exc)
            finally:
                turns.leave(n)

        threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in order]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        if errors:
            raise errors[0]
        return {n: out[n] for n in order}

    def rounds(self, loaded, n: int = 1, seconds: float = 5.0, order=None, *,
               interleave: bool = False) -> dict[str, Pass]:
        out: dict[str, Pass] = {}
        for _ in range(n):
            out.update(self.round(loaded, order, interleave=interleave))
            self.clock.advance(seconds)
        return out

    def converge(self, loaded, order: Sequence[str] | None = None, *, max_rounds: int = 60,
                 seconds: float | None = None, interleave: bool = False,
                 reboot_crashed: bool = False) -> dict[str, Pass]:
        """Rounds until no node that is up is pending. Between rounds the clock advances by
        ``seconds``, or (None) by the soonest re-pass a pending node asked for. A node that
        crashes is rebooted at once with ``reboot_crashed``; otherwise ``NodeCrashed``."""
        out: dict[str, Pass] = {}
        for _ in range(max_rounds):
            out = self.round(loaded, order, interleave=interleave)
            crashed = [n for n, p in out.items() if p.crashed]
            for n in crashed:
                if not reboot_crashed:
                    raise NodeCrashed(f"{n} crashed during its pass")
                self.reboot(n)
            if not crashed and all(p.exit_code != controller.EXIT_PENDING
                                   for p in out.values()):
                return out
            waits = [p.requeue_after for p in out.values() if not p.crashed and p.requeue_after]
            self.clock.advance(seconds if seconds is not None else min(waits, default=5.0))
        raise AssertionError("not converged after %d rounds: %s" % (max_rounds, {
            n: (p.exit_code, str(p.final)) for n, p in out.items() if not p.crashed}))

    def converge_node(self, name: str, loaded, *, max_passes: int = 500,
                      step_seconds: float = 5.0) -> Pass:
        """One node alone, pass after pass (the clock advancing by what it asks for)."""
        for _ in range(max_passes):
            p = self.one_pass(name, loaded)
            if p.crashed:
                raise NodeCrashed(f"{name} crashed during its pass")
            if p.exit_code != controller.EXIT_PENDING:
                return p
            self.clock.advance(p.requeue_after or step_seconds)
        raise AssertionError(f"{name} not converged after {max_passes} passes: {p.final}")

    # -- what nodes ran, crashes, reboots --------------------------------------------------

    def changes(self, name: str) -> list[tuple[str, ...]]:
        """Every host-changing command ``name`` ran, in order, over all its passes."""
        return [c.argv for c in self.nodes[name].log if c.mutates]

    def crash_after(self, name: str, n: int) -> None:
        """``name`` dies right after its ``n``-th next host-changing command (n >= 1)."""
        if n < 1:
            raise ValueError("n must be >= 1 (crash now: crash())")
        self.nodes[name].budget = n

    def crash(self, name: str, **assumed: bool) -> None:
        """``name`` dies now. ``assumed``: what the test assumes of a crash the simulator
        has no recording of, named for it (the lvmlockd simulator's
        ``no_fencing_assumed=True``)."""
        node = self.nodes[name]
        node.crash(**assumed)
        node.down, node.budget = True, None

    def reboot(self, name: str) -> None:
        """The machine comes back; the reconciler starts again with an empty memory."""
        node = self.nodes[name]
        node.reboot()
        node.down = False
        node.memory = controller.Memory()


@dataclass
class _Memories:
    """``nodes.memory[name]`` (read or replace), as the older per-test harnesses had it."""

    nodes: Nodes

    def __getitem__(self, name: str) -> controller.Memory:
        return self.nodes.nodes[name].memory

    def __setitem__(self, name: str, memory: controller.Memory) -> None:
        self.nodes.nodes[name].memory = memory
