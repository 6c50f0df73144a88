"""One VG's plan as the LVM planners build it, and the extent arithmetic they share. Pure.

``planning.lvm`` (steady state), ``planning.move`` (the server move: copies, handover,
takeover, PV growth) and ``planning.lockd`` (what this node may do of a shared VG) each add
to one ``VgPlan`` per VG; it lives here so that none of them imports another for it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler import actions, state

DEFAULT_EXTENT_SIZE = 4 * 1024**2


@dataclass
class VgPlan:
    """Accumulates one VG's steps; discarded whole if anything in the VG is blocked."""

    steps: list[actions.Step] = field(default_factory=list)
    blocked: list[actions.Blocked] = field(default_factory=list)
    in_flight: list[actions.InFlight] = field(default_factory=list)
    last_move: str | None = None  # key of the previous move in this VG (moves are chained)
    # Steps that only make things safer (a split copy deactivated, a failed copy refreshed):
    # run even when something else in the VG is blocked.
    safe: list[actions.Step] = field(default_factory=list)
    resume: bool = False  # an in-flight pvmove here needs resuming (planned host-wide)
    # Reported without holding the VG back (a file system whose size cannot be read).
    notes: list[actions.Blocked] = field(default_factory=list)

    def add(self, action: actions.Action, reason: str, after: Iterable[str | None] = ()) -> str:
        self.steps.append(actions.Step(action, reason, frozenset(a for a in after if a)))
        return action.key

    def block(self, obj: str, reason: str) -> None:
        self.blocked.append(actions.Blocked(obj, reason))

    def chain_move(self, action: actions.Action, reason: str, after: Iterable[str | None]) -> str:
        key = self.add(action, reason, [*after, self.last_move])
        self.last_move = key
        return key


def free_extents(st: state.HostState, vg: str, names: Iterable[str], extent_size: int) -> int:
    """Extents lvm may allocate for ``vg`` on the named PVs: the free extents of its own
    allocatable PVs, and what an orphan PV will hold once it is added (it reports none)."""
    total = 0
    for n in names:
        pv = st.pvs.get(n)
        if pv is None:
            continue
        if pv.vg is None:
            total += pv.extents_once_added(extent_size)
        elif pv.vg == vg and pv.allocatable:
            total += pv.free_extents
    return total


def pv_name(st: state.HostState, dev: str) -> str:
    pv = st.pv_for(dev)
    return pv.name if pv else dev


def lv_extent_size(st: state.HostState, vg: str) -> int:
    return st.vgs[vg].extent_size if vg in st.vgs else DEFAULT_EXTENT_SIZE
