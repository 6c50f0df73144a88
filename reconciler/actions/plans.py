"""Steps and plans: the ordered output of planning, rendered for humans and as JSON."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reconciler.actions.base import Action
from reconciler.units import human


def _seconds(seconds: float) -> str:
    s = round(max(0.0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


# One vocabulary for every cross-node dependency (an InFlight's ``waiting_on``, lvmlockd's
# lock held elsewhere): not an error, exit 2, the node named with what it must do.
WAITING = "waiting on another node"


def waiting_text(node: str, what: str) -> str:
    """``waiting on another node: NODE: WHAT`` (NODE left out when it is not known)."""
    return f"{WAITING}: {node}: {what}" if node else f"{WAITING}: {what}"


def describe_in_flight(f: "InFlight") -> str:
    """What an in-flight entry stands for, in words: ``f.what``, or for a wait on another
    node, ``waiting on another node: NODE: what it must do``."""
    return waiting_text(f.waiting_on, f.what) if f.waiting_on else f.what


# How a step that overwrites or gives up data is marked in text (``Action.gives_up``).
GIVES_UP_MARK = "!! GIVES UP DATA"


# What each sign at the head of a plan's (and a forecast's) line means.
SIGNS = (("+", "create or add"), ("~", "change"), (">", "move or copy"),
         ("-", "remove or drop"), ("…", "in flight, or waiting on another node"),
         ("!", "blocked (nothing runs for it)"), ("!!", "gives up data"))


def legend(text: str) -> str:
    """``Signs: + create or add, ...``: the signs ``text`` (a rendered plan or forecast)
    uses; "" when it uses none."""
    import re
    used = set(re.findall(r"^\s+(\S+) ", text, flags=re.M))
    if GIVES_UP_MARK in text:
        used.add("!!")
    shown = [f"{sign} {what}" for sign, what in SIGNS if sign in used]
    return f"Signs: {'; '.join(shown)}" if shown else ""


@dataclass(frozen=True, slots=True)
class Step:
    action: Action
    reason: str  # for humans; never branch on it
    after: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return self.action.key


@dataclass(frozen=True, slots=True)
class Blocked:
    object: str
    reason: str


class Health(StrEnum):
    """What a ``Condition`` reports (the ``kind`` label of ``reconciler_condition``)."""

    SPLIT_BRAIN = "split-brain"  # a DRBD resource whose nodes both wrote while parted
    DEGRADED = "degraded"  # a redundant device runs on fewer good copies than it has legs


@dataclass(frozen=True, slots=True)
class Condition:
    """A fact about the health of a managed object that monitoring alerts on, read from
    the observed state alone: present whether or not the plan has a step or a block for
    it (a degraded leg of an LV in sync with the spec is still degraded)."""

    kind: Health
    object: str
    detail: str  # for people: the fields that say so


@dataclass(frozen=True, slots=True)
class Stall:
    """An operation in flight whose progress has not moved, as the loop measured it.

    ``window`` scales with the operation: at least the configured stall time, and several
    times what one reporting step of its percentage (0.01 %) takes at the rate it showed, so
    a multi-TB move whose percent moves once a minute is not called stalled.
    """

    idle: float  # seconds since its progress last changed (or since first seen)
    window: float  # idle this long: reported blocked
    rate: float | None = None  # bytes (or percent, when its size is unknown) per second before
    per: str = "B"  # unit of ``rate``: "B" or "%"

    @property
    def expired(self) -> bool:
        return self.idle >= self.window

    def describe(self) -> str:
        if self.rate is None:
            before = "it was never seen moving"
        elif self.per == "%":
            before = f"it moved at {self.rate * 60:.2f} %/min before"
        else:
            before = f"it moved at {human(int(self.rate))}/s before"
        return (f"no progress for {_seconds(self.idle)} ({before}; stalled after "
                f"{_seconds(self.window)})")


@dataclass(frozen=True, slots=True)
class InFlight:
    key: str  # steps that wait for this operation name it in ``after``
    object: str
    what: str
    percent: float | None
    # From the operation's own counters when it has them (md's sync_speed): bytes per second
    # and seconds left. None: unknown, and whoever shows an ETA estimates it from percent.
    speed: float | None = None
    eta: float | None = None
    total: int | None = None  # bytes the operation copies in all, when known
    note: str = ""  # for people: who drives it, how long it has not moved
    stall: Stall | None = None
    waiting_on: str = ""  # the other node this waits for ("" = none)


@dataclass(frozen=True)
class Plan:
    node: str
    steps: tuple[Step, ...] = ()
    in_flight: tuple[InFlight, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    unmanaged: tuple[str, ...] = ()
    spec_digest: str = ""
    conditions: tuple[Condition, ...] = ()  # health facts for monitoring; never decide on them
    # Steps of objects that are not blocked themselves, held back (not planned, never run)
    # because something else in their VG is: shown, so a block hides nothing.
    held: tuple[Step, ...] = ()
    # Made reading the observation's time (``planning.partial.observed_time``): good for that
    # observation only; a daemon never reuses it for a later pass (``controller.Memory``).
    reads_time: bool = False

    @property
    def converged(self) -> bool:
        return not self.steps and not self.in_flight and not self.blocked

    @property
    def waits(self) -> tuple[InFlight, ...]:
        """What this plan waits for on other nodes (in-flight entries with ``waiting_on``)."""
        return tuple(f for f in self.in_flight if f.waiting_on)

    @property
    def only_waiting_on_others(self) -> bool:
        """Nothing is blocked, everything in flight is a wait on another node, and every
        step comes after one (directly or through another step that does)."""
        if self.blocked or not self.in_flight or len(self.waits) != len(self.in_flight):
            return False
        held = {f.key for f in self.in_flight}
        for s in self.steps:  # in order: a step comes after those it depends on
            if not s.after & held:
                return False
            held.add(s.key)
        return True

    def __str__(self) -> str:
        lines = [f"Plan for node {self.node}" + (f" (spec {self.spec_digest[:12]})" if self.spec_digest else "")
                 + ":"]
        if self.converged:
            lines.append("  nothing to do: in sync with the spec")
        for s in self.steps:
            after = f"  [after {', '.join(sorted(s.after))}]" if s.after else ""
            lines.append(f"  {s.action.symbol} {s.action.object}: {s.action.describe()}"
                         f"  # {s.reason}{after}")
            if s.action.gives_up():
                lines.append(f"    {GIVES_UP_MARK}: {s.action.gives_up()}")
        for f in self.in_flight:
            if f.waiting_on:
                note = f" ({f.note})" if f.note else ""
                lines.append(f"  … {f.object}: {describe_in_flight(f)}{note}")
                continue
            pct = f"{f.percent:.1f}%" if f.percent is not None else "?%"
            rate = f" at {human(int(f.speed))}/s" if f.speed else ""
            eta = f", ETA {_seconds(f.eta)}" if f.eta is not None else ""
            note = f" ({f.note})" if f.note else ""
            lines.append(f"  … {f.object}: {f.what} in progress, {pct}{rate}{eta}{note}")
        for b in self.blocked:
            lines.append(f"  ! {b.object}: BLOCKED: {b.reason}")
        if self.held:
            lines.append("  held back while the block above lasts (nothing else in their VG "
                         "runs before it is resolved):")
        for s in self.held:
            lines.append(f"    {s.action.symbol} {s.action.object}: {s.action.describe()}"
                         f"  # {s.reason}")
        if self.unmanaged:
            lines.append("  unmanaged (never touched): " + ", ".join(self.unmanaged))
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "node": self.node,
            "spec_digest": self.spec_digest,
            "converged": self.converged,
            "steps": [{
                "key": s.key, "action": type(s.action).__name__, "symbol": str(s.action.symbol),
                "object": s.action.object, "description": s.action.describe(),
                "reason": s.reason, "after": sorted(s.after),
                "argv": [list(c.argv) for c in s.action.commands()],
                "long": s.action.long, "gives_up": s.action.gives_up() or None,
            } for s in self.steps],
            "in_flight": [{"key": f.key, "object": f.object, "what": f.what,
                           "percent": f.percent, "speed_bps": f.speed, "eta_s": f.eta,
                           "note": f.note, "waiting_on": f.waiting_on or None,
                           "idle_s": None if f.stall is None else round(f.stall.idle, 1)}
                          for f in self.in_flight],
            "blocked": [{"object": b.object, "reason": b.reason} for b in self.blocked],
            "held": [{"key": s.key, "object": s.action.object,
                      "description": s.action.describe(), "reason": s.reason,
                      "gives_up": s.action.gives_up() or None} for s in self.held],
            "unmanaged": list(self.unmanaged),
            "conditions": [{"kind": str(c.kind), "object": c.object, "detail": c.detail}
                           for c in self.conditions],
        }
