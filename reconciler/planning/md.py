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
  Two clones naming one device (by identity, however spelt) are both refused.
* The array is stopped only once the target is in sync and md idle (``split``), or when
  the spec abandons the clone; never while it is mounted or has holders.
* A non-persistent array does not survive a reboot, and "the target was complete when the
  array was stopped" cannot be observed afterwards. That one fact is recorded in the clone
  ledger, written after the sync is seen complete and before ``mdadm --stop``, keyed by the
  target's stable identity (``state.BlockDevice.identity``), never by its path spelling or
  the clone's name. The completed sync is recorded first (``split = False``, even while the
  split is blocked by the array's users): the target may be put to use from then on, so a
  ``split`` clone whose array is gone with only that record is blocked, not rebuilt.
* A target with such a record is never written again, by any clone, unless the clone asks
  with a ``recopy`` value never used on that target before (each new value: one new copy,
  from the source; the record goes just before the build). The ledger keeps every value
  used per target, not only the record's (``Ledger.used``): a spec reverted to an earlier
  value (a Git revert) never copies again. A value counts as used from the moment its copy
  starts overwriting the target: the ledger records it, with a "running" mark
  (``Ledger.running``), in a step the ``mdadm --add`` is ordered after; reverted while md
  writes the target, the value stays used. The mark goes with the old record once md is seen
  writing the target. A crash between the mark and the add (or before md is seen writing)
  leaves the mark and no array: the same value still asks its copy (it is not spent without
  one); any other spec is blocked, since the target may hold the copy's first part and the
  old record can no longer be trusted as a complete copy. The clone that made the copy, still
  declared over the same devices as ``split``, is simply done. Anything else over that
  target (the clone declared again after it left the spec, under another name, with another
  source, asked to mirror again, or the same ``recopy`` value) is blocked with the reason.
* A record whose clone leaves the spec, or now names other devices, is kept, marked as no
  longer declared: it still protects the target.
* A record is replaced (never removed first) by the record of a new copy asked by
  ``recopy``: a refused or failed add followed by the request withdrawn leaves the target
  protected (the array then blocks, it does not add). A record is removed only when the
  array runs again with the target a member (md is already writing it: the split never
  completed, or a new copy is under way); a ``split`` clone without a record is rebuilt from the source (the target may
  be half-written), never from the target; if the target is in use by then, it is blocked.
* Records of a format-1 ledger (by name and path) are identified through their paths and
  rewritten with identities; one whose target cannot be identified keeps protecting that
  path as spelt.
* If anything about a clone is blocked, nothing is done to it in that pass, except that a
  record that no longer holds (the array runs again with the target not in sync) is still
  removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from reconciler import actions, state
from reconciler.planning.partial import Partial, devices_named_twice, observed_time
from reconciler.spec import models
from reconciler.units import format_size

LEDGER_KEY = "ledger:clones"
SPLIT_KEY = "ledger:clones:split"
_KEEP = object()  # a clone's ledger record stays as it is
_WORDS = {"recover": "recovery", "resync": "resync", "check": "check", "repair": "repair",
          "reshape": "reshape"}


@dataclass
class _ClonePlan:
    """One clone's steps; discarded whole (ledger change included) if anything is blocked."""

    steps: list[actions.Step] = field(default_factory=list)
    blocked: list[actions.Blocked] = field(default_factory=list)
    in_flight: list[actions.InFlight] = field(default_factory=list)
    record: object = _KEEP  # _KEEP, None (remove ``old``) or the CloneRecord to write
    old: state.CloneRecord | None = None  # the record found for the target
    using: str = ""  # the recopy value of a new copy md now writes (``old`` dropped)
    starting: str = ""  # the recopy value whose copy this plan's add starts (marked first)
    # the first copy onto a target (no record): (its ledger key, the spec's recopy value),
    # marked used before the add like any other copy's value
    first: tuple[str, str] | None = None
    synced: state.CloneRecord | None = None  # a completed sync to remember, blocked or not
    note: str = ""

    def add(self, action: actions.Action, reason: str, after: Iterable[str | None] = ()) -> str:
        self.steps.append(actions.Step(action, reason, frozenset(a for a in after if a)))
        return action.key


def health(spec: models.Spec, st: state.HostState) -> list[actions.Condition]:
    """Each array a clone names with a faulty member, or missing a member with no recovery
    running to bring one back (a copy in progress is in flight, not degraded)."""
    out: list[actions.Condition] = []
    for md_name in sorted({c.md.rsplit("/", 1)[1] for c in spec.clone.values()}):
        arr = st.md.get(md_name)
        if arr is None:
            continue
        faulty = [m.name for m in arr.members if m.is_faulty]
        if faulty:
            out.append(actions.Condition(actions.Health.DEGRADED, f"md {md_name}",
                                         f"member(s) {', '.join(faulty)} faulty"))
        elif arr.degraded and arr.sync_action not in ("recover", "resync"):
            out.append(actions.Condition(actions.Health.DEGRADED, f"md {md_name}", (
                f"{arr.degraded} of {arr.raid_disks} member(s) missing, sync_action "
                f"{arr.sync_action or '?'}")))
    return out


def plan_clones(spec: models.Spec, st: state.HostState,
                will_provide: frozenset[str] = frozenset()) -> Partial:
    """The clone part of a plan for ``spec`` (already sliced for the node).

    ``will_provide``: device paths that another step of the same plan makes appear (an LV
    about to be created); a source or target among them is not "missing"."""
    out = Partial()
    ledger = st.ledger
    if spec.clone:
        wanted = {c.md.rsplit("/", 1)[1] for c in spec.clone.values()}
        out.unmanaged.extend(f"md {n}" for n in sorted(st.md) if n not in wanted)
    if ledger is None or ledger.problem:
        why = ledger.problem if ledger else "the clone ledger was not read"
        for name in sorted(spec.clone):
            out.blocked.append(actions.Blocked(
                f"clone {name}", f"{why}; without it a split clone cannot be told from an "
                f"interrupted one (fix or move the file away once you know every clone's state)"))
        return out
    records = _identified(ledger, st)
    used = dict(ledger.used)
    running = dict(ledger.running)

    def retire(r: state.CloneRecord, also: str = "") -> None:
        """``r`` leaves the records: the recopy values it used stay used for its target, and
        the mark of a copy started over it has done its work."""
        for value in (r.recopy, also):
            if value and value not in used.get(r.key, ()):
                used[r.key] = used.get(r.key, ()) + (value,)
        running.pop(r.key, None)

    notes = ["rewrite the ledger with device identities (format 2)"] if ledger.legacy else []
    shared = _shared_devices(spec, st)
    for obj, reasons in devices_named_twice(spec, st).items():
        if obj.startswith("clone "):
            shared.setdefault(obj[len("clone "):], []).extend(reasons)
    splits: dict[str, state.CloneRecord] = {}
    for name in sorted(spec.clone):
        if name in shared:
            out.blocked.extend(actions.Blocked(f"clone {name}", r) for r in shared[name])
            continue
        cp = _plan_clone(name, spec.clone[name], st, records, will_provide, used, running)
        out.in_flight.extend(cp.in_flight)
        if cp.blocked:
            out.blocked.extend(cp.blocked)
        else:
            out.steps.extend(cp.steps)
            if cp.first is not None and cp.first[1] not in used.get(cp.first[0], ()):
                used[cp.first[0]] = used.get(cp.first[0], ()) + (cp.first[1],)
                notes.append(f"mark recopy = \"{cp.first[1]}\" as used on "
                             f"{spec.clone[name].target} before md writes it")
            if cp.starting and cp.old is not None:  # used from now on: marked before the add
                key = cp.old.key  # (in the order used: the record's own value first)
                used[key] = state.recopies_used(
                    state.recopies_used(used.get(key, ()), cp.old.recopy), cp.starting)
                if running.get(key) != cp.starting:
                    running[key] = cp.starting
                    notes.append(f"mark recopy = \"{cp.starting}\" as used on {cp.old.target} "
                                 f"before md writes it")
        # A completed sync is remembered even when the clone is blocked (its array in use).
        if cp.synced is not None:
            if cp.old is not None:
                retire(records.pop(cp.old.key, cp.old))
            records[cp.synced.key] = cp.synced
            notes.append(f"remember that {cp.synced.target} of clone {name} is in sync")
        # A record that no longer holds goes even when the clone is blocked (see above).
        if cp.record is None and cp.old is not None:
            retire(records.pop(cp.old.key, cp.old), cp.using)
            notes.append(cp.note)
        elif isinstance(cp.record, state.CloneRecord) and not cp.blocked:
            if cp.record.split and cp.record.declared:
                splits[cp.record.key] = cp.record
                continue
            if cp.old is not None:
                retire(records.pop(cp.old.key, cp.old))
            records[cp.record.key] = cp.record
            notes.append(cp.note)
    for key, r in sorted(records.items()):
        if r.declared and not _still_declared(r, spec, st):
            records[key] = replace(r, declared=False)
            notes.append(f"keep the copy on {r.target} protected: clone {r.clone} no longer "
                         f"declares it")
    first = None
    if (records != ledger.records or ledger.legacy or used != ledger.used
            or running != ledger.running):
        first = LEDGER_KEY
        out.steps.append(actions.Step(
            actions.WriteCloneLedger(path=ledger.path, host=st.host,
                                     records=tuple(sorted(records.items())),
                                     used=tuple(sorted(used.items())),
                                     running=tuple(sorted(running.items())),
                                     note="; ".join(notes)),
            "the ledger must say which targets received a complete copy"))
    if splits:
        for key, r in splits.items():
            if key in records and records[key].recopy != r.recopy:
                retire(records[key])
        records.update(splits)
        out.steps.append(actions.Step(
            actions.WriteCloneLedger(
                path=ledger.path, host=st.host, records=tuple(sorted(records.items())),
                used=tuple(sorted(used.items())), running=tuple(sorted(running.items())),
                note="; ".join(f"record the copy of clone {r.clone} on {r.target}"
                               for r in splits.values()), split=True,
                exclusive=tuple(x for r in splits.values()
                                for x in ((r.md, "the array"), (r.source, "the source")))),
            "the ledger must say which targets received a complete copy before the split",
            frozenset([first] if first else ())))
    return out


def _identified(ledger: state.Ledger, st: state.HostState) -> dict[str, state.CloneRecord]:
    """The records, those of a format-1 ledger given the identities of their devices as they
    are now (observation reads them); where two name one target, the latest copy is kept."""
    out: dict[str, state.CloneRecord] = {}
    for r in sorted(ledger.records.values(), key=lambda r: r.split_at):
        if not r.target_id:
            dst, src = st.blockdevs.get(r.target), st.blockdevs.get(r.source)
            if dst is not None and dst.exists and dst.identity:
                have_src = src is not None and src.exists
                r = replace(r, target_id=dst.identity,
                            source_id=src.identity if have_src else "",
                            size=src.size if have_src else None)
        out.pop(r.key, None)
        out[r.key] = r
    return dict(sorted(out.items()))


def _still_declared(r: state.CloneRecord, spec: models.Spec, st: state.HostState) -> bool:
    """Whether the clone that made ``r`` is still in the spec over the same devices (a
    device that cannot be seen now is compared by its path as spelt)."""
    want = spec.clone.get(r.clone)
    if want is None:
        return False
    for recorded_id, recorded_path, path in ((r.target_id, r.target, want.target),
                                             (r.source_id, r.source, want.source)):
        dev = st.blockdevs.get(path)
        if dev is None or not dev.exists or not dev.identity or not recorded_id:
            same = path == recorded_path
        elif state.is_stable_identity(dev.identity) and state.is_stable_identity(recorded_id):
            same = dev.identity == recorded_id
        else:  # a device number may have moved: the spelling counts too
            same = dev.identity == recorded_id or path == recorded_path
        if not same:
            return False
    return True


def _shared_devices(spec: models.Spec, st: state.HostState) -> dict[str, list[str]]:
    """Clones naming one device (by identity, whatever the spelling): why each is refused."""
    seen: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(spec.clone):
        want = spec.clone[name]
        for path in (want.source, want.target):
            dev = st.blockdevs.get(path)
            if dev is not None and dev.exists and dev.identity:
                seen.setdefault(dev.identity, []).append((name, path))
    out: dict[str, list[str]] = {}
    for identity, users in seen.items():
        if len(users) < 2:
            continue
        for name, path in users:
            others = ", ".join(f"{p} of clone {n}" if n != name else p
                               for n, p in users if (n, p) != (name, path))
            out.setdefault(name, []).append(
                f"{path} is the same device as {others} ({identity}); a device takes part "
                f"in one clone, as one of its devices")
    return out


def _find_record(records: dict[str, state.CloneRecord], want: models.Clone,
                 dst: state.BlockDevice) -> state.CloneRecord | None:
    """The record of a completed copy on the clone's target: by identity; by the path as
    spelt where an identity is unknown or not stable (the device number and size)."""
    if dst.exists and dst.identity:
        for r in records.values():
            if r.target_id == dst.identity:
                return r
        stable = state.is_stable_identity(dst.identity)
        for r in records.values():
            unsure = not stable or not state.is_stable_identity(r.target_id)
            if unsure and r.target == want.target:
                return r
        return None
    return next((r for r in records.values() if r.target == want.target), None)


def _owned(rec: state.CloneRecord, name: str, want: models.Clone,
           src: state.BlockDevice) -> bool:
    """The copy was made by this clone, declared ever since over the same devices."""
    if not rec.declared or rec.clone != name:
        return False
    if rec.source_id and src.exists and src.identity:
        return rec.source_id == src.identity
    return rec.source == want.source


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _protected(rec: state.CloneRecord, name: str, want: models.Clone, src: state.BlockDevice,
               dst: state.BlockDevice, why: str) -> str:
    made = (f"the target {want.target} ({dst.identity or 'not present now'}) holds a completed "
            f"copy of {rec.source} ({rec.source_id or 'identity not recorded'}) made by clone "
            f"{rec.clone} at {_when(rec.split_at)}")
    return (f"{made}; {why}. A completed copy is never overwritten on its own: set recopy = "
            f"\"<a new value, e.g. today's date>\" in clone {name} to copy {want.source} onto "
            f"it again (which overwrites it), or remove clone {name} from the spec to keep the "
            f"copy as it is")


def _why_protected(rec: state.CloneRecord, name: str, want: models.Clone,
                   src: state.BlockDevice, used: tuple[str, ...] = ()) -> str:
    if want.recopy and want.recopy == rec.recopy:
        return f"recopy = \"{want.recopy}\" was already used for that copy"
    if want.recopy and want.recopy in used:
        return (f"recopy = \"{want.recopy}\" was already used for an earlier copy onto this "
                f"target (values used there: {', '.join(used)}; the copy it holds now was "
                f"asked by recopy = \"{rec.recopy}\"); a value asks once, ever, so a spec "
                f"reverted to an earlier value never copies again")
    if rec.clone != name:
        return f"clone {name} is not the clone that made it"
    if not rec.declared:
        return (f"clone {name} has left the spec (or named other devices) since, so this is "
                f"a new declaration")
    if not _owned(rec, name, want, src):
        return (f"the spec now names {want.source} ({src.identity or 'not present'}) as the "
                f"source")
    return f"the spec now asks for state = \"{want.state.value}\", which copies again"


def _plan_clone(name: str, want: models.Clone, st: state.HostState,
                records: dict[str, state.CloneRecord],
                will_provide: frozenset[str] = frozenset(),
                used: dict[str, tuple[str, ...]] | None = None,
                running: dict[str, str] | None = None) -> _ClonePlan:
    """One clone, from its array, its devices and the clone ledger's record for its target
    (found by the target's identity). Abandoned: the array is stopped (never while in use);
    the record stays, it protects the target. A target with a record is never written again
    unless this clone made that copy and still declares it, or ``recopy`` asks with a value
    never used on that target (``_why_protected`` says which rule refused). No array: a
    ``split`` clone whose split is recorded is done; a complete sync whose split was not
    recorded blocks (the target may be in use); otherwise the array is built over the source
    alone and the target added, once every check on both devices passes. Array running:
    once the target is in sync the copy is recorded first (the target may be used from
    then), then the split is recorded and the array stopped, never while it is in use; a
    target not yet a member is added after the same checks; a faulty member blocks with
    what to check; a sync under way is in flight. The record goes only when md writes the
    target again (the copy it describes is gone), or is replaced by a new copy's record.
    ``running``: the recopy value whose copy was started over a recorded target (marked in
    the ledger before ``mdadm --add``): only that value may resume it."""
    cp = _ClonePlan()
    obj = f"clone {name}"
    md_name = want.md.rsplit("/", 1)[1]
    arr = st.md.get(md_name)
    src = _device(st, want.source)
    dst = _device(st, want.target)
    rec = cp.old = _find_record(records, want, dst)
    owned = rec is not None and _owned(rec, name, want, src)
    # Every value used on this target, the record's last: each asks once, ever.
    values = (state.recopies_used((used or {}).get(rec.key, ()), rec.recopy)
              if rec is not None else ())
    # A copy started (marked in the ledger) and not yet seen writing the target.
    started = (running or {}).get(rec.key, "") if rec is not None else ""
    asked = rec is not None and bool(want.recopy) and (want.recopy not in values
                                                       or want.recopy == started)
    # Steps that need the record gone first. A new copy asked by ``recopy`` keeps the old
    # record until the new one replaces it (at the sync): withdrawn, it still protects.
    forget = LEDGER_KEY if rec is not None and not asked else None
    # The add of a copy asked by ``recopy`` comes after the ledger marks the value used
    # (not yet marked: a mark left by a crash stands already).
    marked = LEDGER_KEY if asked and want.recopy != started else None
    if rec is None and want.recopy:
        # The first copy onto this target: the value in the spec is used by it too, or a
        # value changed during the copy and later reverted would copy over its target.
        first_key = dst.identity or f"path:{want.target}"
        if want.recopy not in (used or {}).get(first_key, ()):
            marked = LEDGER_KEY
        cp.first = (first_key, want.recopy)

    def block(reason: str) -> _ClonePlan:
        cp.blocked.append(actions.Blocked(obj, reason))
        return cp

    def drop_record(why: str) -> None:
        if rec is not None:
            cp.record, cp.note = None, f"forget the copy on {rec.target} ({why})"
            cp.using = want.recopy if asked else ""

    if want.state is models.CloneState.ABANDONED:
        if arr is None:  # a record stays: it protects the target
            return cp
        problem = _foreign(arr, want, src, dst) or _array_in_use(arr, want)
        if problem:
            return block(problem)
        cp.add(actions.StopMd(clone=name, md=want.md, target=want.target, abandoned=True,
                              host=st.host),
               "the spec abandons the clone")
        return cp

    # A value used before, not the one the target's copy was made with: a revert (never a
    # copy again, nor "in sync" with a copy it did not ask for).
    reverted = rec is not None and bool(want.recopy) and want.recopy != rec.recopy and not asked
    if rec is not None and not asked and (reverted or not (
            owned and (arr is not None or want.state is models.CloneState.SPLIT))):
        return block(_protected(rec, name, want, src, dst,
                                _why_protected(rec, name, want, src, values)))

    if arr is None:
        if rec is not None and not asked:
            if started:
                return block(
                    f"a copy asked by recopy = \"{started}\" was starting onto {want.target} "
                    f"when {want.md} went (a crash or reboot after the ledger marked it, before "
                    f"or just after `mdadm --add`): the target holds either its earlier content "
                    f"(the copy made by clone {rec.clone} at {_when(rec.split_at)} and what was "
                    f"written there since) or the first part of the new copy, which cannot be "
                    f"told apart; set recopy = \"{started}\" again in clone {name} to complete "
                    f"that copy (which overwrites the target), or, once you have checked the "
                    f"target's content, remove clone {name} from the spec to keep it as it is")
            if rec.split:
                return cp  # split after a complete sync, as the ledger remembers
            return block(
                f"the target {want.target} held a complete copy of {want.source} at "
                f"{_when(rec.split_at)} and {want.md} is gone without the split being recorded "
                f"(stopped by hand, or a reboot): the target may be in use; set recopy = "
                f"\"<a new value, e.g. today's date>\" in clone {name} to copy again from the "
                f"source (which overwrites the target), or remove clone {name} from the spec "
                f"to keep the target as it is")
        problems = (_source_problems(want, src, st, will_provide)
                    + _target_problems(want, src, dst, st, md_name, src.size, will_provide))
        if problems:
            if asked:
                lead = (f"recopy = \"{want.recopy}\" asks for a new copy onto {want.target}; "
                        f"but ")
            elif want.state is models.CloneState.SPLIT:
                lead = (f"{want.md} does not exist and no completed split is recorded, so the "
                        f"clone must be (re)built from the source; but ")
            else:
                lead = ""
            for p in problems:
                block(lead + p)
            return cp
        build = cp.add(actions.BuildMdClone(clone=name, md=want.md, source=want.source,
                                            host=st.host),
                       f"{want.md} does not exist" + (
                           f" (recopy = \"{want.recopy}\" asks for a new copy)" if asked
                           else " (no completed split is recorded)"
                           if want.state is models.CloneState.SPLIT else ""), [forget])
        speeds = _speed_steps(cp, name, want, None, st.host, [build])
        cp.add(actions.AddMdMember(clone=name, md=want.md, target=want.target,
                                   source=want.source, recopy=want.recopy if asked else "",
                                   host=st.host),
               f"{want.target} is not in {want.md} yet", [build, *speeds, marked])
        cp.starting = want.recopy if asked else ""
        return cp

    problem = _foreign(arr, want, src, dst)
    if problem:
        return block(problem)
    member = arr.member(dst.devno)
    in_sync = (member is not None and member.is_in_sync and arr.degraded == 0
               and arr.sync_action in ("idle", ""))
    if want.state is models.CloneState.SPLIT and in_sync:
        synced = state.CloneRecord(
            clone=name, source=want.source, target=want.target, md=want.md,
            split_at=observed_time(st), source_id=src.identity, target_id=dst.identity,
            size=src.size if src.size is not None else arr.size, recopy=want.recopy or "",
            split=False)
        have = (owned and rec is not None and rec.recopy == synced.recopy
                and (rec.source_id, rec.target_id) == (synced.source_id, synced.target_id))
        if not have:  # first seen in sync: remembered before anything else
            cp.synced = synced
        in_use = _array_in_use(arr, want)
        if in_use:
            return block(f"the target is in sync, but {in_use}; stop using {want.md} (do not "
                         f"use {want.target} yet): the next pass records the split and stops "
                         f"{want.md}, and only then is {want.target} yours to use")
        if not (have and rec is not None and rec.split):
            # (already recorded: a stop that failed is simply retried)
            cp.record = replace(synced, split=True)
            cp.note = f"record the copy of clone {name} on {want.target}"
        cp.add(actions.StopMd(clone=name, md=want.md, target=want.target, source=want.source,
                              host=st.host),
               f"{want.target} is in sync", [LEDGER_KEY, SPLIT_KEY])
        return cp
    if member is None and rec is not None and not asked:
        return block(_protected(rec, name, want, src, dst,
                                f"{want.md} runs without it, and adding it would overwrite it"))
    if member is not None:  # md writes the target already: the copy recorded is gone
        drop_record(f"{want.md} runs again" + ("" if in_sync else " with it not in sync"))
    speeds = _speed_steps(cp, name, want, arr, st.host, [forget])
    if member is None:
        problems = _target_problems(want, src, dst, st, md_name, src.size or arr.size,
                                    will_provide)
        if problems:
            for p in problems:
                block(p)
            return cp
        cp.add(actions.AddMdMember(clone=name, md=want.md, target=want.target,
                                   source=want.source, recopy=want.recopy if asked else "",
                                   host=st.host),
               f"{want.target} is not in {want.md}", [*speeds, forget, marked])
        cp.starting = want.recopy if asked else ""
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
                     st: state.HostState, will_provide: frozenset[str] = frozenset()) -> list[str]:
    if not src.exists:
        # A source another step creates now is new and empty: building over it is safe.
        return [] if want.source in will_provide else [f"the source {want.source} does not exist"]
    uses = _in_use(src, st)
    if uses:
        return [f"the source {want.source} is {', '.join(uses)}; md needs it to itself: stop "
                f"its users (an LVM PV cannot be cloned this way: LVM would see it twice), "
                f"then use {want.md} in its place once the array is built"]
    return []


def _target_problems(want: models.Clone, src: state.BlockDevice, dst: state.BlockDevice,
                     st: state.HostState, md_name: str, need: int | None,
                     will_provide: frozenset[str] = frozenset()) -> list[str]:
    if not dst.exists:
        # Made by an earlier step of this plan (AddMdMember is ordered after it); its size is
        # checked by mdadm --add itself, which refuses a device smaller than the array.
        return [] if want.target in will_provide else [f"the target {want.target} does not exist"]
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
