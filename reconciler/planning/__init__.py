"""(spec, observed state) → Plan. Pure: no I/O, no clock, no logging.

Each subsystem has its own planner module (``planning.lvm``…) that turns its part of the
spec and of the observed state into steps, in-flight operations, blocked items (each with a
reason) and unmanaged objects. This module merges them and orders the steps by their
explicit ``after`` edges, ties broken by key, so the same input always gives the same plan.

Devices link subsystems, and that link is made here, once, not per pair of subsystems: an
action says which device paths it ``provides()`` (an LV, an array, the disks of an iSCSI
login) and which it ``needs()``. Planners receive ``will_provide``, the paths that steps of
the other partial plans make appear, so that a device another subsystem is about to create
is not reported missing; the merged plan then gets an ``after`` edge from every step that
needs a path to the step that provides it. ``will_provide`` is found by planning again until
it stops growing: a device found only once another one is planned (a login's disk becomes a
PV, which lets an LV be created there, which a clone needs) takes one more round each. More
provided paths only ever unblock more steps, so this ends; the rounds are bounded anyway.

The other way round, an action says which paths it ``releases()`` (a VG exported off its
PVs, an iSCSI export removed) and which it ``needs_free()`` (a logout, a takeover of a disk
this host exports); planners receive ``will_release`` and the merged plan gets the edge.

A step that takes a device away, overwrites or exports it (``Action.takes_devices``, the one
rule of ``state.taking``) is not planned while the observed state shows the device in use
here (a PV of a VG active here, mounted, held): it is blocked with the reason, and so is
every step ordered after it, so that a dry run says it. Only steps that run on the host as
observed are judged so: one ordered after another step or operation (a logout after the
vgexport that frees its disk, the vgexport of a VG the plan splits off first) is judged by
the executor, which checks every step again right before it runs, on the state observed
then and with the processes that have the device open (which only it asks).

A step that would change what a Pacemaker primitive manages (an LV's activation, an iSCSI
target's or LUN's export, a device a Filesystem primitive mounts) is taken out and blocked
by ``planning.pacemaker``, before the device-in-use rule; the objects Pacemaker manages are
listed as unmanaged.

Safety decisions are documented in each subsystem's module docstring.
"""

from __future__ import annotations

import dataclasses
import graphlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from reconciler import actions, gc_pause, state
from reconciler.planning import lockd, lvm
from reconciler.planning.partial import Partial, timed, without_refused
from reconciler.spec import models
from reconciler.state import taking

if TYPE_CHECKING:
    from reconciler.planning import iscsi


def plan(spec: models.Spec, st: state.HostState, *, node: str, spec_digest: str = "",
         stalled: frozenset[str] = frozenset(), whole: models.Spec | None = None
         ) -> actions.Plan:
    """Compute the plan that brings ``st`` to ``spec`` (already sliced for ``node``).

    ``stalled`` names in-flight pvmoves (``vg/pvmoveN``) to resume: no process polls them
    (or, where pollers cannot be seen, no progress for longer than their stall window).
    ``whole``: the spec of every node, read only to tell what another node is declared to
    do (an iSCSI logout there), so that this node waits on it instead of blocking; never
    planned here.

    ``Plan.reads_time`` says whether a planner read the observation's time (its one way,
    ``partial.observed_time``): every other input is an argument here.
    """
    with gc_pause.paused():  # tens of thousands of objects at 10,000 LVs, none in a cycle
        made, read_time = timed(lambda: _plan(spec, st, node=node, spec_digest=spec_digest,
                                              stalled=stalled, whole=whole))
    return dataclasses.replace(made, reads_time=True) if read_time else made


def _plan(spec: models.Spec, st: state.HostState, *, node: str, spec_digest: str,
          stalled: frozenset[str], whole: models.Spec | None) -> actions.Plan:
    others = None
    if spec.iscsi_target or spec.iscsi_session:
        from reconciler.planning import iscsi
        others = iscsi.elsewhere(whole, node)
    provided: frozenset[str] = frozenset()
    released: frozenset[str] = frozenset()
    for _ in range(_MAX_ROUNDS):
        out = _partials(spec, st, stalled, provided, node, released, others)
        now = frozenset(p for s in out.steps for p in s.action.provides())
        freed = frozenset(p for s in out.steps for p in s.action.releases())
        if now <= provided and freed <= released:
            break
        provided, released = provided | now, released | freed
    steps, pacemakers = _linked(out.steps, st), []
    unmanaged = list(out.unmanaged)
    if st.pacemaker is not None:  # a host with Pacemaker's CIB: its planner, imported then
        from reconciler.planning import pacemaker
        steps, pacemakers = pacemaker.leave_to_pacemaker(steps, st)
        unmanaged.extend(pacemaker.owned(spec, st, node))
    steps, refused = _refuse_taken(steps, st)
    steps = _spelled(steps, spec, st)
    return actions.Plan(node=node, steps=_ordered(steps),
                        in_flight=tuple(out.in_flight),
                        blocked=(*out.blocked, *pacemakers, *refused),
                        unmanaged=tuple(dict.fromkeys(unmanaged)),
                        spec_digest=spec_digest, held=tuple(out.held),
                        conditions=_health(spec, st, node))


def _health(spec: models.Spec, st: state.HostState, node: str) -> tuple[actions.Condition, ...]:
    """What monitoring alerts on besides the plan (``Plan.conditions``), per subsystem."""
    out = list(lvm.health(spec, st))
    if spec.clone:
        from reconciler.planning import md
        out.extend(md.health(spec, st))
    if spec.drbd:
        from reconciler.planning import drbd
        out.extend(drbd.health(spec, st, node))
    return tuple(out)


def _spelled(steps: list[actions.Step], spec: models.Spec, st: state.HostState
             ) -> list[actions.Step]:
    """Each LVM step told how the spec spells the PVs LVM names otherwise (``LvmAction.aka``),
    for its description; its commands keep LVM's names."""
    aka: dict[str, str] = {}
    # A placement names none but its VG's pvs (``spec.lvm.Vg``'s check refuses any other
    # device, and every ``Vg`` is validated): the pvs are every spelling (10,000 LVs' placements
    # are not read again).
    for vg in spec.vg.values():
        for dev in vg.pvs:
            pv = st.pv_for(dev)
            if pv is not None and pv.name != dev:
                aka.setdefault(pv.name, dev)
    if not aka:
        return steps
    pairs = tuple(sorted(aka.items()))
    return [dataclasses.replace(s, action=dataclasses.replace(s.action, aka=pairs))
            if isinstance(s.action, actions.LvmAction) else s for s in steps]


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
_MAX_ROUNDS = 8


def _partials(spec: models.Spec, st: state.HostState, stalled: frozenset[str],
              will_provide: frozenset[str], node: str,
              will_release: frozenset[str] = frozenset(),
              others: iscsi.Elsewhere | None = None) -> Partial:
    out = Partial()
    # Each VG through planning.lockd, which plans it with planning.lvm and keeps what this
    # node may do of it (lockd builds on LVM, never the reverse).
    out.extend(lvm.plan_vgs(spec, st, stalled, will_provide, node, will_release,
                            plan_vg_on_node=lockd.plan_vg))
    # The other subsystems' planners are imported when the spec or the ledger gives them
    # something to plan (issue 22: an LVM-only pass imports none of them); without it each
    # of them plans nothing.
    if _md_wanted(spec, st):
        from reconciler.planning import md
        out.extend(md.plan_clones(spec, st, will_provide))
    if spec.iscsi_target or spec.iscsi_session:
        from reconciler.planning import iscsi
        out.extend(iscsi.plan_iscsi(spec, st, will_provide, will_release, others))
    if spec.drbd:
        from reconciler.planning import drbd
        out.extend(drbd.plan_drbd(spec, st, node))
    return out


def _md_wanted(spec: models.Spec, st: state.HostState) -> bool:
    """Whether the clone planner has anything to do: clones declared, or a ledger that holds
    something (records of clones no longer declared stay protected, a format-1 ledger is
    rewritten); an array no clone names is none of its business."""
    ledger = st.ledger
    return bool(spec.clone) or (ledger is not None and bool(
        ledger.records or ledger.legacy or ledger.used or ledger.running))


def _linked(steps: list[actions.Step], st: state.HostState) -> list[actions.Step]:
    """Each step that needs a device path, ordered after the step that provides it; each
    that needs it free, after the step that releases it. Released and needed-free paths
    are matched by device number where it is known (two spellings of one disk)."""
    providers: dict[str, str] = {}
    releasers: dict[object, str] = {}
    for s in steps:
        for path in s.action.provides():
            providers.setdefault(path, s.key)
        for path in s.action.releases():
            releasers.setdefault(st.device_key(path), s.key)
    out = []
    for s in steps:
        extra = {providers[p] for p in s.action.needs()
                 if p in providers and providers[p] != s.key}
        extra |= {releasers[k] for p in s.action.needs_free()
                  if (k := st.device_key(p)) in releasers and releasers[k] != s.key}
        out.append(dataclasses.replace(s, after=s.after | extra) if extra - s.after else s)
    return out


def _refuse_taken(steps: list[actions.Step], st: state.HostState
                  ) -> tuple[list[actions.Step], list[actions.Blocked]]:
    """The steps without those that would take a device the observed state shows in use
    here, and without every step ordered after one of those; each of them blocked. A step
    ordered after another is left to the executor (the state it runs on is not this one)."""
    why: dict[str, str] = {}
    for s in steps:
        a = s.action
        takes = a.takes_devices()
        if (not takes or s.after or a.is_done(st)
                or (a.long and a.adoptable and a.is_started(st))):
            continue
        words = []
        for take in takes:
            uses = taking.blocking(take, st)
            if uses:
                words.append(taking.refusal(take, uses))
        if words:
            why[s.key] = "; ".join(words)
    if not why:
        return steps, []
    blocked = [actions.Blocked(s.action.object, (
        f"{s.action.describe()} is refused: {why[s.key]}. Take it out of use here first; "
        f"the next pass goes on")) for s in steps if s.key in why]
    return without_refused(steps, set(why), blocked, "refused")


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
