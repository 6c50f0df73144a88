"""A pause of the cyclic garbage collector while a parser builds a large, acyclic object graph.

Parsing a 10,000-LV report or spec allocates hundreds of thousands of objects in a burst;
the generational collector then rescans them again and again although none of them forms
a cycle. Pausing it for the burst cuts parse time by 10-20 % (see bench/bench_plan.py).
Used around the parsers of the two inputs that grow with the host: the spec files
(``spec.loading``) and LVM's report (``adapters.lvm``); it sits in the bottom layer so that
both can.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Run the block with the cyclic collector off; on again after, if it was on before.

    What the block built and kept is then moved to the collector's oldest generation
    (``gc.freeze()`` then ``gc.unfreeze()``, two list moves) rather than left young: the
    first allocation after the pause would otherwise run a young collection over all of it
    at once (10,000 LVs: a tenth of a pass) and another when it is promoted, on a graph known
    to hold no cycle. It stays collectable: a full collection still looks at it. Skipped
    when something else has frozen objects (``gc.get_freeze_count()``): theirs are not
    ours to unfreeze."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if not gc.get_freeze_count():
                gc.freeze()
                gc.unfreeze()
            gc.enable()
