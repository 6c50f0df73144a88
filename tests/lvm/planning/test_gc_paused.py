"""Planning 10,000 LVs builds tens of thousands of objects, none in a cycle: the cyclic
garbage collector is paused meanwhile (as for the two parsers), and on again after; what a
pause built goes to the oldest generation, and the garbage that defers stays bounded."""

from __future__ import annotations

import gc
import sys

from reconciler import gc_pause, planning, state
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


class _Built:
    """An object a pause builds (tracked by the cyclic collector)."""

    __slots__ = ("me",)


def _live(kind: type) -> int:
    return sum(1 for o in gc.get_objects() if type(o) is kind)


def test_what_a_pause_built_goes_to_the_oldest_generation_unscanned():
    # The next young collection would otherwise scan all of it at once (a 10,000-LV spec's
    # models, the observed state), and a middle-generation one again.
    with gc_pause.paused():
        built = [_Built() for _ in range(1000)]
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert all(id(o) in oldest for o in built)
    assert not any(type(o) is _Built for g in (0, 1) for o in gc.get_objects(generation=g))
    assert gc.isenabled()


def test_a_long_loop_of_passes_leaving_cyclic_garbage_does_not_grow():
    # A daemon's passes: each pause builds what replaces the previous pass's objects, and
    # leaves 2,000 cycles of garbage, which only a full collection frees. Moved to the oldest
    # generation uncounted by the collector, they would pile up (600,000 here); the pause's
    # own rule runs a full collection once the heap is a quarter larger.
    gc.collect()
    start = sys.getallocatedblocks()
    kept: list = []
    peak = 0
    for _ in range(300):
        with gc_pause.paused():
            kept = [_Built() for _ in range(2000)]  # the pass's state: the last one freed
            for _ in range(2000):
                cycle = _Built()
                cycle.me = cycle
            del cycle
        peak = max(peak, sys.getallocatedblocks())
    cycles = _live(_Built) - len(kept)
    assert cycles <= (gc_pause.GROWTH - 1) * start + 3 * 2000, cycles
    assert peak <= gc_pause.GROWTH * start + 3 * 2 * 2000, (peak, start)
    gc.collect()
    assert _live(_Built) == len(kept)


def test_cycles_holding_large_buffers_are_collected_once_the_process_grows():
    # A large buffer is one block of the interpreter's heap: cycles holding 4 MiB each barely
    # grow the block count, so the rule also watches the process's resident pages
    # (storage-engineer review of issue 22: 400 MB kept by 100 such cycles).
    gc.collect()
    gc_pause._Heap.blocks = None
    for _ in range(100):
        with gc_pause.paused():
            cycle = _Built()
            cycle.me = [cycle, bytearray(4 << 20)]
            del cycle
    kept = _live(_Built)
    gc.collect()
    assert kept <= 40, kept  # without the pages' rule all 100 (400 MiB) were still there
