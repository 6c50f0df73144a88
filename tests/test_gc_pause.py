"""The cyclic collector's pause around the parsers (``reconciler.gc_pause``, issue 22)."""

from __future__ import annotations

import gc
import weakref

from reconciler import gc_pause


class _Node:
    def __init__(self) -> None:
        self.other: object = None


def _generation_of(obj: object) -> int | None:
    for generation in range(3):
        if any(o is obj for o in gc.get_objects(generation=generation)):
            return generation
    return None


def test_what_a_pause_built_goes_to_the_oldest_generation_and_the_collector_is_on_again():
    assert gc.isenabled()
    with gc_pause.paused():
        assert not gc.isenabled()
        kept = [_Node() for _ in range(3)]
    assert gc.isenabled()
    assert _generation_of(kept[0]) == 2  # no young collection will scan it again
    assert gc.get_freeze_count() == 0


def test_a_cycle_built_in_a_pause_is_still_collected():
    with gc_pause.paused():
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        probe = weakref.ref(a)
    del a, b
    assert probe() is not None  # a cycle: its reference counts never free it
    gc.collect()
    assert probe() is None


def test_objects_someone_else_froze_stay_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_pause.paused():
            _Node()
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_a_pause_inside_a_pause_leaves_the_collector_off_until_the_outer_one_ends():
    with gc_pause.paused():
        with gc_pause.paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
