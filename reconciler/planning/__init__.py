"""(spec, observed state) → Plan. Pure: no I/O, no clock, no logging.

Each subsystem has its own planner module (``planning.lvm``…) that turns its part of the
spec and of the observed state into steps, in-flight operations, blocked items (each with a
reason) and unmanaged objects. This module merges them and orders the steps by their
explicit ``after`` edges, ties broken by key, so the same input always gives the same plan.

Safety decisions are documented in each subsystem's module docstring.
"""

from __future__ import annotations

import dataclasses
import graphlib
from collections.abc import Mapping

from reconciler import actions, state
from reconciler.planning import lvm, md
from reconciler.planning.partial import Partial
from reconciler.spec import models

def plan(spec: models.Spec, st: state.HostState, *, node: str, spec_digest: str = "",
         stalled: frozenset[str] = frozenset()) -> actions.Plan:
    """Compute the plan that brings ``st`` to ``spec`` (already sliced for ``node``).

    ``stalled`` names in-flight pvmoves (``vg/pvmoveN``) to resume: no process polls them
    (or, where pollers cannot be seen, no progress for longer than their stall window).
    """
    out = Partial()
    out.extend(lvm.plan_vgs(spec, st, stalled))
    out.extend(md.plan_clones(spec, st))
    return actions.Plan(node=node, steps=_ordered(out.steps), in_flight=tuple(out.in_flight),
                        blocked=tuple(out.blocked), unmanaged=tuple(out.unmanaged),
                        spec_digest=spec_digest)


def note_stalls(p: actions.Plan, stalls: Mapping[str, actions.Stall]) -> actions.Plan:
    """``p`` with what the loop measured of its in-flight operations (by key): each that
    has not moved says so, with the rate it had; one idle past its window is blocked, so
    ``--wait`` returns and monitoring sees it. It goes back to plain in-flight as soon as it
    moves again. A pvmove that this plan resumes is not blocked (the resume is the answer)."""
    if not stalls:
        return p
    resuming = any(isinstance(s.action, actions.ResumeMoves) for s in p.steps)
    in_flight, blocked = [], list(p.blocked)
    for f in p.in_flight:
        stall = stalls.get(f.key)
        if stall is None:
            in_flight.append(f)
            continue
        note = "; ".join(n for n in (f.note, stall.describe()) if n)
        in_flight.append(dataclasses.replace(f, note=note, stall=stall))
        if stall.expired and not (resuming and f.key.endswith(":moving")):
            blocked.append(actions.Blocked(f.object, (
                f"{f.what} is stalled at "
                f"{'?' if f.percent is None else f'{f.percent:.2f}'}%: {note}. Look at the "
                f"devices it reads and writes (kernel log) and at what drives it; nothing "
                f"that waits for it is done meanwhile, and it counts as in flight again as "
                f"soon as it moves")))
    return dataclasses.replace(p, in_flight=tuple(in_flight), blocked=tuple(blocked))


def _ordered(steps: list[actions.Step]) -> tuple[actions.Step, ...]:
    """Topological order of the ``after`` edges; ties broken by key for stable output."""
    by_key = {s.key: s for s in steps}
    ts: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for s in steps:
        ts.add(s.key, *(a for a in s.after if a in by_key))
    ts.prepare()
    out: list[actions.Step] = []
    while ts.is_active():
        ready = sorted(ts.get_ready())
        out.extend(by_key[k] for k in ready)
        ts.done(*ready)
    return tuple(out)
