"""(spec, observed state) → Plan. Pure: no I/O, no clock, no logging.

Each subsystem has its own planner module (``planning.lvm``…) that turns its part of the
spec and of the observed state into steps, in-flight operations, blocked items (each with a
reason) and unmanaged objects. This module merges them and orders the steps by their
explicit ``after`` edges, ties broken by key, so the same input always gives the same plan.

Safety decisions are documented in each subsystem's module docstring.
"""

from __future__ import annotations

import graphlib

from reconciler import actions, state
from reconciler.planning import drbd, lvm, md
from reconciler.planning.partial import Partial
from reconciler.spec import models

def plan(spec: models.Spec, st: state.HostState, *, node: str, spec_digest: str = "",
         stalled: frozenset[str] = frozenset()) -> actions.Plan:
    """Compute the plan that brings ``st`` to ``spec`` (already sliced for ``node``).

    ``stalled`` names in-flight pvmoves (``vg/pvmoveN``) that nobody is known to be
    polling: the first pass of a process, or no progress since the previous pass.
    """
    out = Partial()
    out.extend(lvm.plan_vgs(spec, st, stalled))
    out.extend(md.plan_clones(spec, st))
    out.extend(drbd.plan_drbd(spec, st, node))
    return actions.Plan(node=node, steps=_ordered(out.steps), in_flight=tuple(out.in_flight),
                        blocked=tuple(out.blocked), unmanaged=tuple(out.unmanaged),
                        spec_digest=spec_digest)


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
