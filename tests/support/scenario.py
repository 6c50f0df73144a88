"""One simulated host run by the real pass: fixture ``scenario`` (registered in tests/conftest.py)."""

import pytest
from support.nodes import Nodes

from reconciler import controller
from reconciler.simulate import SimulatedHost
from reconciler.spec import loading

NODE = "node-1"


class Scenario:
    """One simulated host (node-1) under the one harness (``support.nodes``): its spec
    file and the real passes run against it."""

    def __init__(self, tmp_path, host: SimulatedHost):
        self.host = host
        self.nodes = Nodes.of_hosts(tmp_path, {NODE: host})

    @property
    def memory(self) -> controller.Memory:
        return self.nodes.nodes[NODE].memory

    @memory.setter
    def memory(self, memory: controller.Memory) -> None:  # a new process
        self.nodes.nodes[NODE].memory = memory

    @property
    def results(self) -> list[controller.PassResult]:
        return [p.result for p in self.nodes.nodes[NODE].passes]

    def spec(self, text) -> loading.LoadedSpec:
        """The host's spec (TOML text or a dict), through ``Nodes.spec``."""
        return self.nodes.spec(text)

    def env(self) -> controller.Environment:
        return self.nodes.env(NODE)

    def one_pass(self, loaded, *, dry_run=False, fresh_memory=False):
        return self.nodes.one_pass(NODE, loaded, dry_run=dry_run, fresh_memory=fresh_memory)

    def converge(self, loaded, max_passes=500, step_seconds=5.0):
        return self.nodes.converge_node(NODE, loaded, max_passes=max_passes,
                                        step_seconds=step_seconds)

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
