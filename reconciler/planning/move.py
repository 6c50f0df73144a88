"""Planning for the server move (seed 004): an LV's copies kept on several PV sets, the old
node's handover of one copy as an exported VG, the new node's takeover of it, and PV growth.
Pure. ``planning.lvm`` calls in here for a VG or LV that declares any of them.

Decisions taken here, each for a data-safety reason:

* ``copies``: a raid1 with one complete copy on each PV set, added one at a time (lvm
  refuses to add an image to a raid1 that is not in sync). A copy is never dropped or moved
  from here; an image outside every set, two copies on one set, a copy on a missing PV or
  an unhealthy copy blocks the LV with what was seen.
* One rule for a raid1 leg that failed while its device was away, for every move kind:
  once the device is back, ``lvchange --refresh`` (a safe step: it drops nothing).
* The handover leaves only whole: every LV of the VG has one complete, in-sync, healthy,
  closed copy wholly on the handover PVs; each copy is split off (its identity recorded
  first in the origin's pending-split tag), the PVs go to the new VG with them, the LVs get
  their names back and the VG is exported. Each step is seen in the metadata, so a pass
  after a crash plans only what is left; a split a crash interrupted is finished (or
  forgotten) whatever the spec says now, and a split-off copy is never left active next to
  its origin (same file system UUID). Only what this reconciler split off (its tag, or the
  pending tag naming the copy's lv_uuid) is renamed, exported or finished.
* The takeover imports only a VG the other host exported (vgexport says it let go), with no
  missing PV (``--removemissing`` is never run), not seen through a disk this host still
  exports (the other host may be writing through it); an existing VG of that name that this
  reconciler did not take over (no takeover tag) is never touched.
* ``grow_pvs``: ``pvresize`` of each PV whose device grew by one extent or more.
"""

from __future__ import annotations

from collections.abc import Iterable

from reconciler import actions, state
from reconciler.planning.vgplan import VgPlan, free_extents, lv_extent_size, pv_name
from reconciler.spec import models
from reconciler.units import format_size


def plan_copies(vp: VgPlan, vg: str, name: str, want: models.Lv, lv: state.Lv | None,
                 st: state.HostState, names: dict[str, str], target: int,
                 after: Iterable[str | None] = ()) -> None:
    """``lv.copies``: a raid1 with one complete copy on each PV set, added one at a time
    (lvm refuses to add an image to a raid1 that is not in sync), then kept: a copy that
    failed while its device was away is refreshed once the device is back; a copy is never
    dropped or moved from here, and an image outside every set blocks the LV."""
    obj = f"lv {vg}/{name}"
    host = st.host
    sets = [tuple(names[d] for d in group) for group in want.copies]
    if lv is None:
        key = vp.add(actions.CreateLv(vg=vg, lv=name, size=want.size, pvs=sets[0], host=host),
                     "LV does not exist (its first copy)", after)
        for i, pvs in enumerate(sets[1:], start=2):
            key = vp.chain_move(actions.AddCopy(vg=vg, lv=name, pvs=pvs, copies=i, host=host),
                                f"copy {i} of {len(sets)} on {', '.join(pvs)}", [key])
        return
    if lv.moving_via is not None:
        return
    if lv.images and not lv.attr.is_raid:
        vp.block(obj, f"is a {','.join(lv.layout)} LV; copies are kept as raid1 (lvconvert "
                 f"--type raid1 it first)")
        return
    if lv.images and not lv.attr.is_active:
        if want.activation:
            return  # its activation table decides; the copies are checked once it is active
        vp.block(obj, "is inactive: lvm cannot tell an inactive raid1's sync (its images read "
                 "'I'), so its copies cannot be checked; activate it (activation = { NODE = "
                 "\"active\" }, or lvchange -ay)")
        return
    gone = sorted(p for p in lv.pv_extents if p not in st.pvs or st.pvs[p].missing)
    if gone:
        vp.block(obj, f"a copy is on a missing PV ({', '.join(gone)}: its device is gone, a "
                 f"link down?): the LV runs on its other copies; nothing is added, split or "
                 f"handed over until the device is back (then the copy is refreshed and "
                 f"resynced)")
        return
    parts = [img.pv_extents for img in lv.images] if lv.images else [lv.pv_extents]
    where: list[int] = []
    for ext in parts:
        idx = next((i for i, pvs in enumerate(sets) if ext and set(ext) <= set(pvs)), None)
        if idx is None:
            vp.block(obj, f"a copy lies on {', '.join(sorted(ext)) or 'no PV'}, outside every "
                     f"PV set of its copies: a copy is never moved or dropped from here; move "
                     f"it into one of the sets (or list its PVs as one)")
            return
        if idx in where:
            vp.block(obj, f"two of its copies lie on the PV set {', '.join(sets[idx])}; losing "
                     f"that set loses both: fix the layout by hand")
            return
        where.append(idx)
    if lv.images:
        if refresh_copy(vp, vg, name, lv, st):
            return
        problems = state.split_problems(lv, st.pvs)
        if problems:
            vp.block(obj, f"its copies are not all healthy: {'; '.join(problems)}. Nothing "
                     f"is added, split or handed over until they are (a device that comes "
                     f"back is refreshed and resynced)")
            return
    todo = [i for i in range(len(sets)) if i not in where]
    last: str | None = None
    ready = [k for k in after if k]
    if lv.images and not lv.is_synced:
        last = f"lv:{vg}/{name}:syncing"
        vp.in_flight.append(actions.InFlight(key=last, object=obj, what="raid1 sync",
                                             percent=lv.percent, total=lv.size))
        vp.last_move = last
    if todo:
        need = sum(parts[0].values()) + 1  # one copy's extents + one of raid metadata
        for i in todo:
            free = free_extents(st, vg, sets[i], lv_extent_size(st, vg))
            if all(p in st.pvs for p in sets[i]) and free < need:
                vp.block(obj, f"copy {i + 1} needs {need} free extents on "
                         f"{', '.join(sets[i])}, which have {free}")
                return
        if not lv.images and free_extents(st, vg, set(lv.pv_extents), lv_extent_size(st, vg)) < 1:
            vp.block(obj, f"a raid1 needs one free extent next to the existing copy (on "
                     f"{', '.join(sorted(lv.pv_extents))}) for its metadata, and there is none")
            return
        copies = len(parts)
        for i in todo:
            copies += 1
            last = vp.chain_move(actions.AddCopy(vg=vg, lv=name, pvs=sets[i], copies=copies,
                                                 host=host),
                                 f"copy {copies} of {len(sets)} on {', '.join(sets[i])}",
                                 [last, *ready])
    if lv.size != target:
        vp.block(obj, f"has copies; resizing a mirrored LV is not supported yet (it is "
                 f"{format_size(lv.size)}, the spec says {format_size(target)})")


def refresh_copy(vp: VgPlan, vg: str, name: str, lv: state.Lv, st: state.HostState) -> bool:
    """The one rule, for every move kind (``copies``, mirror-then-split, the handover), for a
    raid1 leg that failed while its device was away and whose device is back: ``lvchange
    --refresh`` (a safe step: it drops nothing, the leg resyncs from the complete ones).
    True when planned; the caller then waits for the resync."""
    if not (lv.images and lv.attr.is_active and state.needs_refresh(lv)):
        return False
    if any(p not in st.pvs or st.pvs[p].missing for p in lv.pv_extents):
        return False  # not back yet
    vp.safe.append(actions.Step(actions.RefreshCopy(vg=vg, lv=name, host=st.host),
                                "a copy failed while its device was away and the device "
                                "is back"))
    return True


def plan_pv_growth(vp: VgPlan, name: str, want: models.Vg, st: state.HostState,
                    extent_size: int) -> list[str]:
    """``grow_pvs``: pvresize each PV of the VG whose device grew by one extent or more."""
    keys = []
    for dev in want.pvs:
        pv = st.pv_for(dev)
        if pv is None or pv.vg != name or pv.missing:
            continue
        more = pv.extents_on_device(extent_size) - pv.pe_count
        if more <= 0:
            continue
        keys.append(vp.add(actions.ResizePv(device=pv.name, extent_size=extent_size,
                                            host=st.host),
                           f"its device is {format_size(pv.dev_size)}, room for {more} more "
                           f"extent(s) than the PV's {pv.pe_count} (grow_pvs)"))
    return keys


def plan_handover(vp: VgPlan, name: str, want: models.Vg, obs: state.Vg | None,
                   st: state.HostState) -> bool:
    """The old node's half of a server move. True when the handover is complete (or there
    is nothing on the handover PVs) and the VG plans as usual; False when this pass is the
    handover's (its steps, or why it cannot go on).

    The copy leaves only whole: every LV of the VG must have one complete, in-sync, healthy
    copy wholly on the handover PVs and be closed; then each copy is split off, the PVs go
    to the new VG with them, the LVs get their names back there and the VG is exported.
    Each step is seen in the metadata, so a pass after a crash plans only what is left."""
    ho = want.handover
    assert ho is not None
    host = st.host
    obj = f"vg {name}"
    pvs = tuple(pv_name(st, d) for d in ho.pvs)
    names = frozenset(pvs)
    new = st.vgs.get(ho.vg)
    if new is not None and st.foreign_owner(new) is not None:
        vp.block(obj, f"handover: a VG named {ho.vg} already exists here, owned by another "
                 f"host ({new.system_id}); choose another handover.vg")
        return False
    staying = obs is not None and bool(set(obs.pvs) & names)
    leftovers = sorted(n for n, lv in (obs.lvs.items() if obs is not None else ())
                       if state.HANDOVER_TAG in lv.tags)
    unresolved = [d for d in ho.pvs if st.pv_for(d) is None]
    if not staying and obs is not None and (leftovers or (unresolved and obs.missing_pv_count)):
        # Half way (copies split off, still in this VG) and the handover PVs are not here:
        # not logged in yet after a reboot, a logout, udev not done yet. Wait for them.
        for lv_name in leftovers:
            if obs.lvs[lv_name].attr.is_active:
                vp.safe.append(actions.Step(
                    actions.SetActivation(vg=name, lv=lv_name, mode="off-local", host=host),
                    "a copy split off for the handover is active: it carries the same file "
                    "system UUID as the LV this host keeps"))
        split = f" (copies split off so far: {', '.join(leftovers)})" if leftovers else ""
        vp.block(obj, f"handover: its PV(s) {', '.join(unresolved or pvs)} are not there (not "
                 f"logged in yet after a reboot, a logout, udev still making the disk's name?)"
                 f"{split}; it goes on once they are back, and nothing else in the VG changes "
                 f"meanwhile")
        return False
    if not staying:
        if new is None or new.exported:
            return True
        if not names <= set(new.pvs) or set(new.pvs) - names:
            vp.block(obj, f"handover: VG {ho.vg} exists here on {', '.join(new.pvs)}, not on "
                     f"the handover PVs {', '.join(pvs)}; it is not this handover's, and is "
                     f"left alone: choose another handover.vg")
            return False
        strays = [lv for lv in sorted(new.lvs) if state.HANDOVER_TAG not in new.lvs[lv].tags]
        if strays:
            vp.block(obj, f"handover: VG {ho.vg} holds LV(s) {', '.join(strays)} that no "
                     f"handover of this reconciler split off (no {state.HANDOVER_TAG} "
                     f"tag); it is not exported from here")
            return False
        last: list[str] = []
        for lv_name in sorted(new.lvs):
            base = lv_name.removesuffix(models.HANDOVER_SUFFIX)
            if base != lv_name and base not in new.lvs:
                last.append(vp.add(actions.RenameLv(vg=ho.vg, old=lv_name, new=base, host=host),
                                   "the copy handed over gets its LV's name back"))
        vp.add(actions.ExportVg(vg=ho.vg, devices=ho.pvs, host=host),
               f"the copy of {name} is complete in {ho.vg}: it leaves this host", last)
        return True
    assert obs is not None
    if new is not None:
        vp.block(obj, f"handover: a VG named {ho.vg} already exists on this host; vgsplit "
                 f"would merge the copy into it. Choose another handover.vg")
        return False
    gone = [p for p in pvs if p not in st.pvs or st.pvs[p].missing]
    if gone:
        vp.block(obj, f"handover: PV {', '.join(gone)} is missing (a link down, a logout?): "
                 f"the copy on it cannot leave complete; nothing is split until it is back, "
                 f"and this host keeps working on its own copy")
        return False
    if obs.pvmoves:
        vp.block(obj, "handover: a pvmove is in flight in the VG; it waits for it to finish")
        return False
    splits: list[str] = []
    keys: list[str] = []
    problems: list[tuple[str, str]] = []
    inactive: list[str] = []
    splitting: set[str] = set()
    def ours(lv: state.Lv | None) -> bool:
        return lv is not None and state.HANDOVER_TAG in lv.tags

    pending = {copy: origin for copy, (origin, _) in _pending_splits(obs).items()}

    for lv_name in sorted(obs.lvs):
        lv = obs.lvs[lv_name]
        base = lv_name.removesuffix(models.HANDOVER_SUFFIX)
        if base != lv_name and base in obs.lvs and ours(lv):
            origin = obs.lvs[base]
            if origin.images and state.image_on(origin, names) is not None:
                # Split off by an earlier pass; then the spec went back to copies and the
                # LV got a new copy there. The old one is not handed over in its place.
                problems.append((lv_name, f"it is a copy split off {base} by an earlier pass "
                                 f"of this handover, and {base} has a newer copy on "
                                 f"{', '.join(pvs)} since (the spec went back to copies in "
                                 f"between): the old copy is not handed over in place of the "
                                 f"new one. Check that {base} holds what you need, then "
                                 f"remove the old copy (lvremove {name}/{lv_name}); the "
                                 f"handover then splits the new one"))
                continue
            if not lv.pv_extents or not set(lv.pv_extents) <= names:
                problems.append((lv_name, f"it is a copy split off by a handover but lies on "
                                 f"{', '.join(sorted(lv.pv_extents))}, not only on "
                                 f"{', '.join(pvs)}"))
                continue
            splits.append(lv_name)  # split off by an earlier pass
            if lv.attr.is_active:
                # A restart since (udev autoactivation) or a crash before its -an: it holds
                # the same file system UUID as the LV kept here; never leave it active.
                vp.safe.append(actions.Step(
                    actions.SetActivation(vg=name, lv=lv_name, mode="off-local", host=host),
                    "a copy split off for the handover is active: it carries the same file "
                    "system UUID as the LV this host keeps"))
            continue
        if lv_name in pending:
            problems.append((lv_name, f"it is the copy split off {pending[lv_name]} (its lv_uuid "
                             f"is in {pending[lv_name]}'s pending-split tag), not finished "
                             f"yet: it is deactivated and tagged once every PV of the VG is "
                             f"present"))
            continue
        if base != lv_name and base in obs.lvs:
            problems.append((lv_name, f"an LV named {lv_name} exists that no handover of this "
                             f"reconciler split off (no {state.HANDOVER_TAG} tag, and "
                             f"{base} has no pending-split tag naming its lv_uuid {lv.uuid}): "
                             f"it would be taken for {base}'s copy. Check what it holds; if it "
                             f"is yours, rename it (lvrename), and the handover goes on"))
            continue
        if ours(obs.lvs.get(lv_name + models.HANDOVER_SUFFIX)):
            continue  # split off already (its copy is checked above)
        copy = lv_name + models.HANDOVER_SUFFIX
        if copy in obs.lvs:
            continue  # an untagged LV of that name: blocked above
        if len(copy) > 127:
            problems.append((lv_name, f"its copy would be named {copy}, longer than LVM's 127 "
                             f"characters"))
            continue
        if refresh_copy(vp, name, lv_name, lv, st):
            problems.append((lv_name, "a copy is being refreshed (it failed while its device "
                             "was away); the handover waits for it to be back in sync"))
            continue
        if lv.images and not lv.attr.is_active:
            # lvm cannot read an inactive raid1's sync (its images show 'I') and refuses to
            # split it: activate it (unmounted, nothing else changes), split next pass.
            inactive.append(lv_name)
            continue
        why = state.handover_problem(lv, st, names)
        if why:
            problems.append((lv_name, why))
            continue
        splits.append(copy)
        splitting.add(lv_name)
        image = state.image_on(lv, names)
        keys.append(vp.add(actions.SplitCopy(vg=name, lv=lv_name, pvs=pvs, name=copy,
                                             image_uuid=image.uuid if image else "", host=host),
                           f"handover of its copy on {', '.join(pvs)} to {ho.vg}"))
    for lv_name, why in problems:
        vp.block(f"lv {name}/{lv_name}", f"handover to {ho.vg} waits: {why}")
    if problems:
        return False
    if inactive:
        vp.steps = [s for s in vp.steps if not isinstance(s.action, actions.SplitCopy)]
        for lv_name in inactive:
            vp.add(actions.SetActivation(vg=name, lv=lv_name, mode="active", host=host),
                   "the handover splits only an active raid1 (lvm cannot tell an inactive "
                   "one's sync); the split follows in the next pass")
        return False
    others = [lv for lv in sorted(obs.lvs) if lv not in splits and lv not in splitting
              and set(obs.lvs[lv].pv_extents) & names]
    if others:
        vp.block(obj, f"handover: LV(s) {', '.join(others)} would still use {', '.join(pvs)} "
                 f"after the split")
        return False
    split = vp.add(actions.SplitVg(vg=name, new_vg=ho.vg, pvs=pvs, lvs=tuple(splits), host=host),
                   f"every LV of {name} has its copy split off on {', '.join(pvs)}", keys)
    renames = [vp.add(actions.RenameLv(vg=ho.vg, old=c, new=c.removesuffix(
        models.HANDOVER_SUFFIX), host=host), "the copy handed over gets its LV's name back",
        [split]) for c in splits]
    vp.add(actions.ExportVg(vg=ho.vg, devices=ho.pvs, host=host),
           f"the copy of {name} is complete in {ho.vg}: it leaves this host", [split, *renames])
    return False


def _pending_splits(obs: state.Vg) -> dict[str, tuple[str, str]]:
    """Copies a handover split off whose split a crash interrupted before their own tag:
    copy name -> (origin, image uuid), by identity: the origin's pending-split tag names the
    lv_uuid the copy carries (the image sub-LV becomes the copy, lvm2 lv_raid_split)."""
    by_uuid = {lv.uuid: n for n, lv in obs.lvs.items() if lv.uuid}
    out: dict[str, tuple[str, str]] = {}
    for n, lv in obs.lvs.items():
        for uuid in state.handover_pending(lv.tags):
            copy = by_uuid.get(uuid)
            if copy is not None and copy != n and \
                    state.HANDOVER_TAG not in obs.lvs[copy].tags:
                out[copy] = (n, uuid)
    return out


def finish_own_splits(vp: VgPlan, name: str, want: models.Vg, obs: state.Vg,
                       st: state.HostState) -> bool:
    """Finish (or forget) the handover splits a crash interrupted, whatever the spec says now:
    a copy split off and not yet tagged has its origin's file system UUID and may be active
    (udev autoactivates it at boot): it goes inactive, out of autoactivation, gets the
    handover tag, and the origin loses its pending-split tag; a pending tag naming nothing
    split is removed (unless the handover still means to split that image). True when a step
    or a block was planned for it (the handover then waits for the next pass)."""
    host = st.host
    pending = {n: uuids for n, lv in obs.lvs.items()
               if lv.tags and (uuids := state.handover_pending(lv.tags))}
    if not pending:  # the common case: no LV carries a pending-split tag
        if want.handover is None:
            _orphan_copies(vp, name, want, obs, st)
        return False
    by_uuid = {lv.uuid: n for n, lv in obs.lvs.items() if lv.uuid}
    partial = bool(obs.missing_pv_count) or any(
        p not in st.pvs or st.pvs[p].missing for p in obs.pvs)
    planned = False
    for origin in sorted(pending):
        lv = obs.lvs[origin]
        for uuid in pending[origin]:
            tag = state.handover_pending_tag(uuid)
            copy_name = by_uuid.get(uuid)
            copy = obs.lvs.get(copy_name) if copy_name and copy_name != origin else None
            if copy is None:
                if want.handover is not None and any(img.uuid == uuid for img in lv.images):
                    continue  # not split yet: the handover's SplitCopy goes on with it
                vp.safe.append(actions.Step(
                    actions.ForgetSplit(vg=name, lv=origin, tag=tag, host=host),
                    "a handover's pending-split tag names no copy split off (the split never "
                    "ran, or the handover left the spec)"))
                planned = True
                continue
            if copy.attr.is_open:
                vp.block(f"lv {name}/{copy_name}", f"it is the copy a handover split off "
                         f"{origin} (its lv_uuid is in {origin}'s pending-split tag), and it "
                         f"is open (mounted or in use): it carries the same file system UUID "
                         f"as {origin}, so whoever opened it may have taken it for {origin}. "
                         f"Check what uses it and stop that (umount); the reconciler then "
                         f"deactivates it and finishes the split")
                planned = True
                continue
            if partial:
                # No metadata is written while a PV is missing; only never leave it active
                # (the handover says why it waits).
                if copy.attr.is_active:
                    vp.safe.append(actions.Step(
                        actions.SetActivation(vg=name, lv=copy_name, mode="off-local",
                                              host=host),
                        "a copy split off for the handover is active: it carries the same "
                        "file system UUID as the LV this host keeps"))
                continue
            if state.HANDOVER_TAG in copy.tags and not copy.attr.is_active:
                vp.safe.append(actions.Step(
                    actions.ForgetSplit(vg=name, lv=origin, tag=tag, host=host),
                    f"the copy split off for the handover ({copy_name}) is finished"))
                planned = True
                continue
            vp.safe.append(actions.Step(
                actions.FinishSplitCopy(vg=name, lv=origin, name=copy_name, image_uuid=uuid,
                                        host=host),
                f"{copy_name} is the copy split off {origin} for a handover (its lv_uuid is "
                f"in {origin}'s pending-split tag) and the split stopped before its end (a "
                f"crash): it carries {origin}'s file system UUID"))
            planned = True
    if want.handover is None:
        _orphan_copies(vp, name, want, obs, st)
    return planned


def _orphan_copies(vp: VgPlan, name: str, want: models.Vg, obs: state.Vg,
                   st: state.HostState) -> None:
    """Copies a handover split off (its tag) while the spec no longer has a handover: never
    left active next to their origin (same file system UUID); on a PV the spec takes out of
    the VG, what to do is said (they are never removed from here)."""
    host = st.host
    tagged = sorted(n for n, lv in obs.lvs.items() if state.HANDOVER_TAG in lv.tags)
    if not tagged:
        return
    wanted = {pv_name(st, d) for d in want.pvs}
    for copy_name in tagged:
        copy = obs.lvs[copy_name]
        origin = copy_name.removesuffix(models.HANDOVER_SUFFIX)
        if origin == copy_name or origin not in obs.lvs:
            continue
        if copy.attr.is_active and not copy.attr.is_open:
            vp.safe.append(actions.Step(
                actions.SetActivation(vg=name, lv=copy_name, mode="off-local", host=host),
                "a copy split off for a handover is active: it carries the same file system "
                "UUID as the LV this host keeps"))
        off = sorted(set(copy.pv_extents) - wanted)
        if off:
            vp.block(f"lv {name}/{copy_name}", f"it is the copy of {origin} a handover split "
                     f"off ({state.HANDOVER_TAG} tag), and the spec has no handover "
                     f"any more; it holds {origin}'s data as of the split and lies on "
                     f"{', '.join(off)}, which the spec takes out of the VG. Put the handover "
                     f"back to finish it; or check that {origin} holds what you need and "
                     f"remove the copy (lvremove {name}/{copy_name}): it is never removed "
                     f"from here")


def _exported_here(st: state.HostState, dev: str, pv: state.Pv | None) -> str | None:
    """The iSCSI target and LUN that export ``dev`` from this host, if one does."""
    if st.iscsi is None or not st.iscsi.targets:
        return None
    devno = st.devices.get(dev) or (pv.devno if pv else None)
    for iqn, t in sorted(st.iscsi.targets.items()):
        for n, lun in sorted(t.luns.items()):
            same = lun.device in (dev, pv.name if pv else dev) or (
                devno is not None and st.devices.get(lun.device) == devno)
            if same:
                return f"iSCSI target {iqn} (LUN {n})"
    return None


def exported_pvs(st: state.HostState, want: models.Vg, obs: state.Vg | None,
                  will_release: frozenset[str]) -> list[str]:
    """The VG's devices (the spec's and the observed PVs) that an iSCSI target here exports,
    each as "DEV is exported by TARGET (LUN n)"; those a step of this plan stops exporting
    are not (matched by device number: a target may name the disk another way)."""
    if st.iscsi is None or not st.iscsi.targets:
        return []  # nothing exported here (``_exported_here`` finds no target)
    out = []
    freed = {st.device_key(p) for p in will_release}
    devs = list(want.pvs) + [p for p in (obs.pvs if obs else ()) if p not in want.pvs]
    for dev in devs:
        pv = st.pv_for(dev)
        by = _exported_here(st, dev, pv)
        if by and st.device_key(dev) not in freed and (
                pv is None or st.device_key(pv.name) not in freed):
            out.append(f"{dev} is exported by {by}")
    return out


def plan_takeover(vp: VgPlan, name: str, want: models.Vg, st: state.HostState,
                   will_release: frozenset[str]) -> bool:
    """The new node's half: import (and rename) the VG another host handed over. True when
    done (the VG then plans as usual); False when this pass is the takeover's.

    Never on a disk this host still exports (the other host may be writing through the
    export): the export ends first, in the same plan or before. Never ``--removemissing``: a
    handover leaves no missing PV, so a VG with one is not a complete copy."""
    src = want.takeover
    assert src is not None
    obj = f"vg {name}"
    have = st.vgs.get(name)
    old = st.vgs.get(src) if src != name else None
    if (have is not None and not have.exported and old is None
            and state.TAKEOVER_TAG not in have.tags and src != name):
        vp.block(obj, f"takeover: a VG named {name} exists here and was not taken over by "
                 f"this reconciler (no {state.TAKEOVER_TAG} tag): it may be another "
                 f"host's, seen through a disk this host exports; nothing is done to it, and "
                 f"{src} is not imported while it exists")
        return False
    if (have is not None and not have.exported and old is None
            and state.TAKEOVER_TAG in have.tags):
        # Taken over already (this host's tag), if it is complete and not seen through an
        # export of this host.
        exported = exported_pvs(st, want, have, frozenset())
        if exported or have.missing_pv_count:
            vp.block(obj, f"{name}, taken over here, "
                     f"{'; '.join(exported) or f'has {have.missing_pv_count} missing PV(s)'}: "
                     f"nothing is done to it until that is fixed")
            return False
        return True
    if have is not None and old is not None:
        vp.block(obj, f"takeover: both {name} and {src} exist here; which one the spec means "
                 f"cannot be told, nothing is done")
        return False
    seen = have if src == name else old
    if seen is None:
        vp.block(obj, f"takeover: VG {src} is not seen on this host yet (the other host has "
                 f"not handed it over, or its disks are not here); nothing is created in its "
                 f"place")
        return False
    owner = st.foreign_owner(seen)
    if owner is not None and not seen.exported:
        vp.block(obj, f"takeover: VG {src} still belongs to host {owner!r} (system ID): it "
                 f"has not been handed over (vgexport) there yet")
        return False
    tagged = state.TAKEOVER_TAG in seen.tags
    if not seen.exported and not tagged:
        # Only vgexport says the other host let go of it (its LVs inactive there). A VG that
        # is not exported may be a handover stopped half way, still active on that host.
        vp.block(obj, f"takeover: VG {src} is here but was never exported (vgexport) by the "
                 f"host that handed it over: the handover stopped before its end, or the VG "
                 f"is still in use there; it is not imported. Let that host finish its "
                 f"handover. (If this host imported it itself and stopped right after, check "
                 f"it and run `vgchange --addtag {state.TAKEOVER_TAG} {src}`)")
        return False
    if any(lv.name.endswith(models.HANDOVER_SUFFIX) for lv in seen.lvs.values()):
        vp.block(obj, f"takeover: VG {src} still holds LV(s) named *{models.HANDOVER_SUFFIX}: "
                 f"the handover stopped before giving them their names back")
        return False
    if seen.missing_pv_count or any(st.pvs[p].missing for p in seen.pvs if p in st.pvs):
        vp.block(obj, f"takeover: VG {src} has {seen.missing_pv_count or 'a'} missing PV(s): a "
                 f"handover leaves none, so this is not a complete copy; it is not imported "
                 f"(and vgreduce --removemissing is never run on it)")
        return False
    spec_names = {pv_name(st, d): d for d in want.pvs}
    stray = [p for p in seen.pvs if p not in spec_names]
    if stray:
        vp.block(obj, f"takeover: PV(s) {', '.join(stray)} of {src} are not in vg.{name}.pvs")
        return False
    devices = tuple(spec_names[p] for p in seen.pvs)
    busy = exported_pvs(st, want, None, will_release)
    if busy:
        # (A removal the spec declares and that waits on another node's logout is a step
        # of this plan, in will_release: then the takeover waits with it, not here.)
        vp.block(obj, f"takeover waits: {'; '.join(busy)}. LVM must not use a disk that another "
                 f"host may still write through the export: end the export first (mark the "
                 f"target or LUN absent; where the spec already does, the target's own line "
                 f"says why its removal cannot run)")
        return False
    vp.add(actions.TakeOverVg(vg=name, source=src, exported=seen.exported, devices=devices,
                              lvs=tuple(sorted(seen.lvs)), tagged=tagged, host=st.host),
           f"{src} was handed over to this host" + (" (exported)" if seen.exported else ""))
    return False
