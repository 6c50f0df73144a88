"""What one subsystem's planner contributes to a plan, and the one way a planner reads the
observation's time (``observed_time``)."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from reconciler import actions, state
from reconciler.spec import models


@dataclass
class Partial:
    steps: list[actions.Step] = field(default_factory=list)
    in_flight: list[actions.InFlight] = field(default_factory=list)
    blocked: list[actions.Blocked] = field(default_factory=list)
    unmanaged: list[str] = field(default_factory=list)
    # steps held back, not planned, because something else in their VG is blocked
    held: list[actions.Step] = field(default_factory=list)

    def extend(self, other: "Partial") -> None:
        self.steps.extend(other.steps)
        self.held.extend(other.held)
        self.in_flight.extend(other.in_flight)
        self.blocked.extend(other.blocked)
        self.unmanaged.extend(other.unmanaged)


# Set by ``planning.plan`` for the time it plans (``timed``): whether a planner read the time.
_TIME_READ: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar(
    "planning_time_read", default=None)
_T = TypeVar("_T")


def observed_time(st: state.HostState) -> float:
    """``st.observed_at``, for a planner: the only way planning reads the time (a test
    refuses any other read of it, or of a clock, in planning, actions and state:
    tests/planning/test_time_reads.py). The plan being made is marked by it
    (``Plan.reads_time``, whatever structure the planner builds its part in): a plan made
    reading the time holds for that observation only, and the daemon never reuses it for a
    later pass (``controller.Memory.plan``), since the time alone may change it."""
    mark = _TIME_READ.get()
    if mark is not None:
        mark[0] = True
    return st.observed_at


def timed(make: Callable[[], _T]) -> tuple[_T, bool]:
    """``make()``, and whether it read the time through ``observed_time``. Nested, a read
    inside marks the outer plan too. The mark is a context variable, which a thread does
    not inherit: planning starts none (tests/planning/test_time_reads.py refuses the
    modules that would)."""
    outer = _TIME_READ.get()
    mark = [False]
    token = _TIME_READ.set(mark)
    try:
        return make(), mark[0]
    finally:
        _TIME_READ.reset(token)
        if outer is not None and mark[0]:
            outer[0] = True


def devices_named_twice(spec: models.Spec, st: state.HostState) -> dict[str, list[str]]:
    """Object ("vg NAME", "clone NAME") -> reasons, for every VG whose ``pvs`` and every
    clone whose source or target name a device (by device number) the spec names again
    under another spelling: in a VG's ``pvs`` (the same or another VG's), or as a clone's
    device. Two clones sharing a device are left to the clone planner (by identity)."""
    uses: dict[tuple[int, int], list[tuple[str, str, str]]] = {}
    for vg_name in sorted(spec.vg):
        for dev in spec.vg[vg_name].pvs:
            devno = st.devices.get(dev)
            if devno is not None:
                uses.setdefault(devno, []).append((f"vg {vg_name}", dev, f"vg.{vg_name}.pvs"))
    for name in sorted(spec.clone):
        clone = spec.clone[name]
        for role, dev in (("source", clone.source), ("target", clone.target)):
            bd = st.blockdevs.get(dev)
            devno = st.devices.get(dev) or (bd.devno if bd is not None else None)
            if devno is not None:
                uses.setdefault(devno, []).append((f"clone {name}", dev, f"clone.{name}.{role}"))
    out: dict[str, list[str]] = {}
    for devno, named in sorted(uses.items()):
        if len(named) < 2 or all(obj.startswith("clone ") for obj, _, _ in named):
            continue
        where = " and ".join(f"{dev} ({key})" for _, dev, key in named)
        if all(obj.startswith("vg ") for obj, _, _ in named):
            reason = (f"{where} are the same device ({devno[0]}:{devno[1]}): a disk is a PV "
                      f"of one VG and is named once; nothing is done to this VG until the spec "
                      f"names it once (pvcreate/vgcreate would otherwise run on it twice)")
        else:
            reason = (f"{where} are the same device ({devno[0]}:{devno[1]}): a disk is either "
                      f"a PV of one VG or a clone's device, named once; nothing is done to "
                      f"the VG or the clone until the spec names it once (the clone would "
                      f"copy over a PV, or the PV be made of a clone's disk)")
        for obj in dict.fromkeys(obj for obj, _, _ in named):
            out.setdefault(obj, []).append(reason)
    return out


def without_refused(steps: list, refused: set[str], blocked: list, whose: str
                    ) -> tuple[list, list]:
    """``steps`` without those in ``refused`` and every step ordered after one of them (each
    of those blocked, naming the first refused step it waits for, ``whose`` it is)."""
    grew = bool(refused)
    while grew:
        grew = False
        for s in steps:
            if s.key not in refused and s.after & refused:
                first = sorted(s.after & refused)[0]
                refused.add(s.key)
                blocked.append(actions.Blocked(s.action.object, (
                    f"{s.action.describe()} waits for {first}, which is {whose} (see there)")))
                grew = True
    return [s for s in steps if s.key not in refused], blocked
