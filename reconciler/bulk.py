"""Pause the cyclic garbage collector while building large, acyclic object graphs.

Parsing a 10,000-LV report or spec allocates hundreds of thousands of objects in a burst;
the generational collector then rescans them again and again although none of them forms
a cycle. Pausing it for the burst cuts parse time by 10-20 % (see bench/bench_plan.py).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
