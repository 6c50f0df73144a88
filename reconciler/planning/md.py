"""Planning for clones: a device copied online onto another through a non-persistent md
RAID1 (seed 002). Pure.

The procedure: ``mdadm --build`` a RAID1 over the source alone (``missing`` in the second
slot; no superblock, so the array's content is the source's), the workload uses the array,
``mdadm --add`` the target, md copies the source onto it; for ``split``, once the target is
in sync the array is stopped and the target is an exact copy.

Decisions taken here, each for a data-safety reason:

* The copy only ever runs from the source: the array is built over the source alone and
  the target is added to it. An existing array that is not exactly that (persistent, not a
  two-device RAID1, other members, or a source that is not its in-sync member) is refused.
* The target is refused when it is smaller than the source, mounted (itself or one of its
  partitions), held by another array or a device-mapper device, or an LVM PV. The source is
  refused for a build when it is mounted, held or an LVM PV (LVM would see one PV twice).
* The array is stopped only once the target is in sync and md idle (``split``), or when
  the spec abandons the clone; never while it is mounted or has holders.
* A non-persistent array does not survive a reboot, and "the target was complete when the
  array was stopped" cannot be observed afterwards. That one fact is recorded in the clone
  ledger, written after the sync is seen complete and before ``mdadm --stop``, and removed
  before the array is (re)built and whenever the array runs with a target not in sync. A
  ``split`` clone whose array is gone is therefore done if the ledger says so, and otherwise
  rebuilt from the source (the target may be half-written), never from the target; if the
  target is in use by then, the clone is blocked instead.
* If anything about a clone is blocked, nothing is done to it in that pass, except that a
  ledger record that no longer holds (the array runs again with the target not in sync) is
  still removed: forgetting a split can only cause a new copy from the source.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler import actions, state
from reconciler.planning.partial import Partial
from reconciler.spec import models
from reconciler.units import format_size

LEDGER_KEY = "ledger:clones"
_KEEP = object()  # a clone's ledger record stays as it is
_WORDS = {"recover": "recovery", "resync": "resync", "check": "check", "repair": "repair",
          "reshape": "reshape"}


@dataclass
class _ClonePlan:
    """One clone's steps; discarded whole (ledger change included) if anything is blocked."""

    steps: list[actions.Step] = field(default_factory=list)
    blocked: list[actions.Blocked] = field(default_factory=list)
    in_flight: list[actions.InFlight] = field(default_factory=list)
    record: object = _KEEP  # _KEEP, None (remove) or the CloneRecord to write
    note: str = ""

    def add(self, action: actions.Action, reason: str, after: Iterable[str | None] = ()) -> str:
        self.steps.append(actions.Step(action, reason, frozenset(a for a in after if a)))
        return action.key


def plan_clones(spec: models.Spec, st: state.HostState) -> Partial:
    """The clone part of a plan for ``spec`` (already sliced for the node)."""
    out = Partial()
    if not spec.clone:
        return out
    wanted = {c.md.rsplit("/", 1)[1] for c in spec.clone.values()}
    out.unmanaged.extend(f"md {n}" for n in sorted(st.md) if n not in wanted)
    ledger = st.ledger
    if ledger is None or ledger.problem:
        why = ledger.problem if ledger else "the clone ledger was not read"
        for name in sorted(spec.clone):
            out.blocked.append(actions.Blocked(
                f"clone {name}", f"{why}; without it a split clone cannot be told from an "
                f"interrupted one (fix or move the file away once you know every clone's state)"))
        return out
    records = dict(ledger.clones)
    notes = []
    for name in sorted(spec.clone):
        cp = _plan_clone(name, spec.clone[name], st, ledger)
        out.in_flight.extend(cp.in_flight)
        if cp.blocked:
            out.blocked.extend(cp.blocked)
            if cp.record is None and name in records:  # forgetting a split is always safe:
                del records[name]  # at worst the clone is copied again from the source
                notes.append(cp.note)
            continue
        out.steps.extend(cp.steps)
        if cp.record is None and name in records:
            del records[name]
            notes.append(cp.note)
        elif isinstance(cp.record, state.CloneRecord) and records.get(name) != cp.record:
            records[name] = cp.record
            notes.append(cp.note)
    if records != ledger.clones:
        out.steps.append(actions.Step(
            actions.WriteCloneLedger(path=ledger.path, host=st.host,
                                     records=tuple(sorted(records.items())),
                                     note="; ".join(notes)),
            "the ledger must say which clones were split after a complete sync"))
    return out


def _plan_clone(name: str, want: models.Clone, st: state.HostState,
                ledger: state.Ledger) -> _ClonePlan:
    cp = _ClonePlan()
    obj = f"clone {name}"
    md_name = want.md.rsplit("/", 1)[1]
    arr = st.md.get(md_name)
    src = _device(st, want.source)
    dst = _device(st, want.target)
    rec = ledger.clones.get(name)
    split_recorded = rec is not None and (rec.source, rec.target, rec.md) == (
        want.source, want.target, want.md)
    forget = LEDGER_KEY if rec is not None else None  # steps that need the record gone first

    def block(reason: str) -> _ClonePlan:
        cp.blocked.append(actions.Blocked(obj, reason))
        return cp

    def drop_record(why: str) -> None:
        if rec is not None:
            cp.record, cp.note = None, f"forget the split of clone {name} ({why})"

    if want.state is models.CloneState.ABANDONED:
        drop_record("abandoned")
        if arr is None:
            return cp
        problem = _foreign(arr, want, src, dst) or _array_in_use(arr, want)
        if problem:
            return block(problem)
        cp.add(actions.StopMd(clone=name, md=want.md, target=want.target, abandoned=True,
                              host=st.host),
               "the spec abandons the clone", [forget])
        return cp

    if arr is None:
        if want.state is models.CloneState.SPLIT and split_recorded:
            return cp  # split after a complete sync, as the ledger remembers
        problems = _source_problems(want, src, st) + _target_problems(want, src, dst, st,
                                                                      md_name, src.size)
        if problems:
            if want.state is models.CloneState.SPLIT:
                problems = [f"{want.md} does not exist and no completed split is recorded, "
                            f"so the clone must be (re)built from the source; but {p}"
                            for p in problems]
            for p in problems:
                block(p)
            return cp
        drop_record("rebuilt from the source")
        build = cp.add(actions.BuildMdClone(clone=name, md=want.md, source=want.source,
                                            host=st.host),
                       f"{want.md} does not exist" + (" (no completed split is recorded)"
                                                      if want.state is models.CloneState.SPLIT
                                                      else ""), [forget])
        speeds = _speed_steps(cp, name, want, None, st.host, [build])
        cp.add(actions.AddMdMember(clone=name, md=want.md, target=want.target, host=st.host),
               f"{want.target} is not in {want.md} yet", [build, *speeds])
        return cp

    problem = _foreign(arr, want, src, dst)
    if problem:
        return block(problem)
    member = arr.member(dst.devno)
    in_sync = (member is not None and member.is_in_sync and arr.degraded == 0
               and arr.sync_action in ("idle", ""))
    if want.state is models.CloneState.SPLIT and in_sync:
        in_use = _array_in_use(arr, want)
        if in_use:
            return block(f"the target is in sync, but {in_use}; point the workload at "
                         f"{want.target} and stop using {want.md}: the next pass splits it")
        if not split_recorded:  # (already recorded: a stop that failed is simply retried)
            cp.record = state.CloneRecord(source=want.source, target=want.target, md=want.md,
                                          split_at=st.observed_at)
            cp.note = f"record clone {name} as split"
        cp.add(actions.StopMd(clone=name, md=want.md, target=want.target, host=st.host),
               f"{want.target} is in sync", [LEDGER_KEY])
        return cp
    drop_record(f"{want.md} runs again")
    speeds = _speed_steps(cp, name, want, arr, st.host, [forget])
    if member is None:
        problems = _target_problems(want, src, dst, st, md_name, src.size or arr.size)
        if problems:
            for p in problems:
                block(p)
            return cp
        cp.add(actions.AddMdMember(clone=name, md=want.md, target=want.target, host=st.host),
               f"{want.target} is not in {want.md}", [*speeds, forget])
        return cp
    if member.is_faulty:
        return block(f"{want.target} failed in {want.md} ({','.join(member.flags)}): check the "
                     f"device; once `mdadm {want.md} --remove {want.target}` has taken it out, "
                     f"the next pass adds it again and the copy restarts from the source")
    if not in_sync:
        word = _WORDS.get(arr.sync_action, arr.sync_action or "recovery")
        cp.in_flight.append(actions.InFlight(
            key=f"clone:{name}:syncing", object=obj,
            what=f"md {word} {want.source} -> {want.target}",
            percent=arr.sync_percent, speed=arr.sync_speed, eta=arr.sync_eta,
            total=arr.sync_total))
    return cp


def _device(st: state.HostState, path: str) -> state.BlockDevice:
    dev = st.blockdevs.get(path)
    return dev if dev is not None else state.BlockDevice(path=path, devno=st.devices.get(path))


def _foreign(arr: state.MdArray, want: models.Clone, src: state.BlockDevice,
             dst: state.BlockDevice) -> str | None:
    """Why an existing array is not this clone's, or None."""
    if not arr.is_non_persistent:
        return (f"{want.md} exists and is a persistent array (metadata {arr.metadata}), not a "
                f"clone's; choose another md device for the clone")
    if arr.level != "raid1" or arr.raid_disks != 2:
        return (f"{want.md} exists as {arr.level or '?'} with {arr.raid_disks} devices, not the "
                f"two-device RAID1 of a clone")
    if not src.exists:
        return f"the source {want.source} does not exist, but {want.md} does"
    names = ", ".join(m.name for m in arr.members) or "none"
    mine = arr.member(src.devno)
    if mine is None:
        return (f"{want.md} exists without the source {want.source} (members: {names}); it is "
                f"not this clone's array")
    others = [m.name for m in arr.members if m.devno not in (src.devno, dst.devno)]
    if others:
        return (f"{want.md} has members other than the source and the target: "
                f"{', '.join(others)}")
    if not mine.is_in_sync:
        return (f"the source {want.source} is not the in-sync member of {want.md} "
                f"({','.join(mine.flags) or 'no state'}); md would copy onto it, not from it")
    return None


def _array_in_use(arr: state.MdArray, want: models.Clone) -> str | None:
    uses = [f"mounted at {m}" for m in arr.mounts] + [f"held by {h}" for h in arr.holders]
    return f"{want.md} is in use ({', '.join(uses)})" if uses else None


def _in_use(dev: state.BlockDevice, st: state.HostState, allowed_holder: str = "") -> list[str]:
    uses = [f"mounted at {m}" for m in dev.mounts]
    uses += [f"held by {h}" for h in dev.holders if h != allowed_holder]
    pv = st.pv_for(dev.path)
    if pv is not None:
        uses.append(f"an LVM PV ({'of VG ' + pv.vg if pv.vg else 'in no VG'})")
    return uses


def _source_problems(want: models.Clone, src: state.BlockDevice,
                     st: state.HostState) -> list[str]:
    if not src.exists:
        return [f"the source {want.source} does not exist"]
    uses = _in_use(src, st)
    if uses:
        return [f"the source {want.source} is {', '.join(uses)}; md needs it to itself: stop "
                f"its users (an LVM PV cannot be cloned this way: LVM would see it twice), "
                f"then use {want.md} in its place once the array is built"]
    return []


def _target_problems(want: models.Clone, src: state.BlockDevice, dst: state.BlockDevice,
                     st: state.HostState, md_name: str, need: int | None) -> list[str]:
    if not dst.exists:
        return [f"the target {want.target} does not exist"]
    out = []
    if need is not None and dst.size is not None and dst.size < need:
        out.append(f"the target {want.target} ({format_size(dst.size)}) is smaller than the "
                   f"source {want.source} ({format_size(need)})")
    uses = _in_use(dst, st, md_name)
    if uses:
        out.append(f"the target {want.target} is {', '.join(uses)}; the copy would overwrite it")
    return out


def _speed_steps(cp: _ClonePlan, name: str, want: models.Clone, arr: state.MdArray | None,
                 host: str, after: list[str | None]) -> list[str]:
    keys = []
    for which, value in (("max", want.speed_limit_max), ("min", want.speed_limit_min)):
        if value is None:
            continue
        kib = value // 1024
        if arr is not None and getattr(arr, f"speed_{which}") == (kib, True):
            continue
        keys.append(cp.add(actions.SetMdSyncSpeed(clone=name, md=want.md, which=which, kib=kib,
                                                  host=host),
                           f"speed_limit_{which} = {format_size(value)}/s", after))
    return keys
