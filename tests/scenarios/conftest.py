import textwrap

import pytest

from reconciler import controller
from reconciler.simulate import SimulatedHost
from reconciler.spec import loading

M = 1024**2
G = 1024**3


class Scenario:
    """A simulated host, a spec directory and the passes run against them."""

    def __init__(self, tmp_path, host: SimulatedHost):
        self.tmp = tmp_path
        self.host = host
        self.memory = controller.Memory()
        self.results: list[controller.PassResult] = []

    def spec(self, text: str) -> loading.LoadedSpec:
        (self.tmp / "spec.toml").write_text(textwrap.dedent(text))
        return loading.load(self.tmp / "spec.toml")

    def env(self) -> controller.Environment:
        return controller.Environment(runner=self.host, node="node-1",
                                      resolve=self.host.resolve_device, clock=self.host.clock)

    def one_pass(self, loaded, *, dry_run=False, fresh_memory=False) -> controller.PassResult:
        if fresh_memory:
            self.memory = controller.Memory()
        r = controller.reconcile_once(loaded, self.env(), dry_run=dry_run, memory=self.memory,
                                      pass_no=len(self.results) + 1)
        self.results.append(r)
        return r

    def converge(self, loaded, max_passes=500, step_seconds=5.0) -> controller.PassResult:
        for _ in range(max_passes):
            r = self.one_pass(loaded)
            if r.exit_code != controller.EXIT_PENDING:
                return r
            self.host.clock.advance(r.requeue_after or step_seconds)
        raise AssertionError(f"not converged after {max_passes} passes: {r.final}")

    def assert_settled(self, loaded):
        """A further pass plans nothing and starts exactly one process."""
        before = self.host.started
        r = self.one_pass(loaded)
        assert r.exit_code == 0, str(r.plan)
        assert r.plan.converged and not r.plan.steps
        assert self.host.started - before == 1 == r.processes

    def mutations(self) -> list[tuple[str, ...]]:
        """The commands that changed the host (not the report, nor a read-only probe)."""
        return [c.argv for c in self.host.calls if c.mutates]


@pytest.fixture
def scenario(tmp_path):
    def make(host: SimulatedHost | None = None) -> Scenario:
        return Scenario(tmp_path, host or SimulatedHost())
    return make
