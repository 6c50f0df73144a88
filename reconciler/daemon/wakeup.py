"""What wakes the loop: reasons for a pass, each due at a time, and a stop flag.

Every trigger of a pass (the start, a spec event, SIGHUP, a requeue while an operation is in
flight, a retry after an error, the periodic resync) ends up here as a reason with the time it
is due; the loop thread alone waits and runs passes, so two passes never overlap. Spec events
are debounced here, in one place: each further event pushes the pass back, never past a cap
after the first, so a burst of writes gives one pass and a file written continuously still
gets passes. Signal handlers only set flags here (they run on the main thread, possibly while
it is inside ``wait``, hence the re-entrant lock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Wakeup:
    """What the loop waits on: reasons for a pass, each due at a time, and a stop flag.

    Thread-safe for the observer thread (``poke``). Signal handlers only set booleans and
    notify (``signal_hup``/``signal_stop``) through a re-entrant lock, because a handler
    runs on the main thread, possibly while that same thread is inside ``wait``.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._due: dict[str, float] = {}
        self._first: dict[str, float] = {}
        self._details: dict[str, list[str]] = {}
        self._hup = False
        self.stopping = False

    def poke(self, reason: str, detail: str = "", *, quiet: float = 0.0,
             cap: float | None = None) -> None:
        """Ask for a pass ``quiet`` seconds from now; a later poke of the same reason pushes
        it back, but never past ``cap`` seconds after the first one still pending."""
        with self._cond:
            now = time.monotonic()
            first = self._first.setdefault(reason, now)
            due = now + quiet
            if cap is not None:
                due = min(due, first + cap)
            self._due[reason] = due
            details = self._details.setdefault(reason, [])
            if detail and detail not in details and len(details) < 5:
                details.append(detail)
            self._cond.notify_all()

    def signal_hup(self) -> None:
        with self._cond:
            self._hup = True
            self._cond.notify_all()

    def signal_stop(self) -> None:
        with self._cond:
            self.stopping = True
            self._cond.notify_all()

    def pending(self, reason: str) -> bool:
        with self._cond:
            return reason in self._due

    def wait(self, deadline: float, *, tick: Callable[[], None] | None = None,
             tick_every: float | None = None) -> list[tuple[str, list[str]]]:
        """Block until a reason is due (returned, and cleared), ``deadline`` (monotonic)
        passes (``[]``) or a stop is asked (``[]``). ``tick`` runs every ``tick_every``."""
        last_tick = time.monotonic()
        with self._cond:
            while not self.stopping:
                now = time.monotonic()
                if self._hup:
                    self._hup = False
                    self._due.setdefault("SIGHUP", now)
                    self._first.setdefault("SIGHUP", now)
                due = sorted(r for r, t in self._due.items() if t <= now)
                if due:
                    out = [(r, self._details.pop(r, [])) for r in due]
                    for r in due:
                        del self._due[r]
                        del self._first[r]
                    return out
                if now >= deadline:
                    return []
                timeout = min([deadline, *self._due.values()]) - now
                if tick is not None and tick_every:
                    if now - last_tick >= tick_every:
                        tick()
                        last_tick = now
                    timeout = min(timeout, tick_every - (now - last_tick))
                self._cond.wait(max(timeout, 0.001))
            return []
