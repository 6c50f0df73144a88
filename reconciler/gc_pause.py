"""A pause of the cyclic garbage collector while a parser builds a large, acyclic object graph.

Parsing a 10,000-LV report or spec allocates hundreds of thousands of objects in a burst;
the generational collector then rescans them again and again although none of them forms
a cycle. Pausing it for the burst cuts parse time by 10-20 % (see bench/bench_plan.py).
Used around the parsers of the two inputs that grow with the host: the spec files
(``spec.loading``) and LVM's report (``adapters.lvm``), and around planning; it sits in the
bottom layer so that all of them can.

At the end of a pause, what it built is moved straight to the collector's oldest generation
(``gc.freeze()`` then ``gc.unfreeze()``, each a constant-time splice of the collector's
lists): otherwise the next young collection scans all of it at once (the spec's models,
the observed state: 20 to 30 ms of a 10,000-LV pass), and a middle-generation collection
scans it again. Objects moved so are not counted by the collector's own rule for a full
collection (it counts only what its young collections promote), so cyclic garbage made in
or before a pause would wait for one that nothing brings nearer: ``paused`` keeps its own
rule, the collector's in kind. It notes the heap's size (``sys.getallocatedblocks()``, and
the resident pages, which large buffers grow) after each full collection, its own or the
collector's; once either is a quarter larger, it runs a full collection at the end of the
pause. Garbage a pause defers is so never more than a
quarter of the heap, however many passes a daemon runs
(tests/lvm/planning/test_gc_paused.py).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

GROWTH = 1.25  # the heap may grow by this factor since the last full collection


class _Heap:
    """What the rule remembers: the heap's size after the last full collection (in the
    interpreter's blocks, and the process's resident pages: a large buffer is one block, so
    cycles holding large buffers grow the second only), and how many full collections the
    collector had run then (to see one it ran itself)."""

    blocks: int | None = None
    pages: int = 0
    full_collections: int = -1


def _resident_pages() -> int:
    """The process's resident set in pages (/proc/self/statm), 0 where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _full_collections() -> int:
    return gc.get_stats()[-1]["collections"]


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cyclic collector off; on again after, if it was on before, with
    what the block built moved to the oldest generation (see the module's docstring)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            _to_oldest()
            gc.enable()


def _to_oldest() -> None:
    gc.freeze()
    gc.unfreeze()
    blocks, pages = sys.getallocatedblocks(), _resident_pages()
    if _Heap.blocks is None or _full_collections() != _Heap.full_collections:
        # the first pause, or the collector ran a full collection
        _Heap.blocks, _Heap.pages = blocks, pages
    elif blocks > _Heap.blocks * GROWTH or pages > _Heap.pages * GROWTH:
        gc.collect()
        _Heap.blocks, _Heap.pages = sys.getallocatedblocks(), _resident_pages()
    _Heap.full_collections = _full_collections()
