"""Planning 10,000 LVs builds tens of thousands of objects, none in a cycle: the cyclic
garbage collector is paused meanwhile (as for the two parsers), and on again after."""

from __future__ import annotations

import gc

from reconciler import planning, state
from reconciler.planning import lvm as lvm_planning
from tests.support import specs


def test_planning_runs_with_the_cyclic_collector_paused(monkeypatch):
    seen = []
    real = lvm_planning.plan_vgs

    def spy(*args, **kwargs):
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(lvm_planning, "plan_vgs", spy)
    spec = specs.spec(vg={"vg0": {"nodes": ["n1"], "pvs": ["/dev/sdb"]}})
    assert gc.isenabled()
    planning.plan(spec, state.HostState(host="n1"), node="n1")
    assert seen and not any(seen)
    assert gc.isenabled()
