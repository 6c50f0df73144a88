"""Virtual time for the simulator: nothing here ever really sleeps.

Long operations (pvmove, raid resync) subscribe with ``on_advance`` and move forward when
the clock does, so a test or a benchmark decides exactly how much "time" passes and the
result is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable


class SimClock:
    """A monotonic virtual clock. ``sleep`` and ``advance`` return at once."""

    def __init__(self, start: float = 0.0):
        self._now = float(start)
        self._listeners: list[Callable[[float, float], None]] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward; listeners see (previous, new) time."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards ({seconds} s)")
        before = self._now
        self._now += seconds
        for listener in list(self._listeners):
            listener(before, self._now)

    def sleep(self, seconds: float) -> None:
        """What code under test calls instead of ``time.sleep``: advances, never blocks."""
        self.advance(max(0.0, seconds))

    def tick(self, seconds: float = 1.0) -> None:
        self.advance(seconds)

    def on_advance(self, listener: Callable[[float, float], None]) -> None:
        self._listeners.append(listener)
