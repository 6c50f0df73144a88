"""Planning for LVM: VGs, their PVs, LVs, sizes, placement and moves. Pure.

The server move (copies, handover, takeover, PV growth) is ``planning.move``'s, called from
here; what this node may do of a shared VG is ``planning.lockd``'s, which plans each VG
with ``plan_vg`` here (lockd builds on LVM, never the reverse). One VG's plan is a
``planning.vgplan.VgPlan``.

Decisions taken here, each for a data-safety reason:

* Objects the spec does not mention are listed as unmanaged and never touched; removal is
  planned only for objects the spec marks ``absent``.
* A VG with any blocked problem gets no step at all in this pass: a half-applied VG plan
  (say, an LV created while the PV meant for it could not be added) is worse than waiting.
* Extents move with ``pvmove`` per LV and per source PV, one move at a time per VG (each
  waits for the previous one), after a free-extent pre-check (an orphan PV the VG will take
  counts for what it will hold: its size less lvm's data offset, in whole extents); or by
  mirror-then-split, where the leg dropped is the one on the source PVs, only when every
  field lvm reports says the kept leg is complete, healthy and on present PVs
  (``state.split_problems``: health status, attr health bits, sync action and percent,
  each image's state, missing PVs), and only when the kept leg shares no PV with what is
  dropped. Anything else blocks the LV with the field seen; a sync that fails half way
  is never waited for as if it were still running.
* A VG name lvm reports twice (a local VG and a foreign one of the same name) is blocked,
  both system IDs named.
* A VG whose LVM system ID names another host (foreign) is never touched: a spec VG of
  that name is blocked, an unmanaged one is listed as foreign, and its PVs are never
  taken (``fullreport --foreign`` shows them; without it lvm hides them).
* One device named twice in the spec's ``pvs`` (two spellings of the same device number,
  in one VG or in two), or as a PV and as a clone's source or target, blocks every VG and
  clone naming it before anything runs: it would be ``pvcreate``d or ``vgcreate``d twice,
  or copied over under a VG (``partial.devices_named_twice``).
* Shrinking needs ``allow_shrink``; an LV with more copies than mirror-then-split leaves is
  never reduced; a missing PV is never removed (no ``--removemissing``).
* Long operations found in flight are waited for (and adopted: a pvmove no process polls
  is resumed with bare ``pvmove``), never started twice.
"""

from __future__ import annotations

from collections.abc import Callable

from reconciler import actions, state
from reconciler.planning import move
from reconciler.planning.partial import Partial, devices_named_twice
from reconciler.planning.vgplan import DEFAULT_EXTENT_SIZE, VgPlan, free_extents
from reconciler.spec import models
from reconciler.units import extents, format_size


# One VG on this node: (name, want, st, stalled, node, will_provide, will_release) -> its plan.
VgPlanner = Callable[[str, models.Vg, state.HostState, frozenset[str], str, frozenset[str],
                      frozenset[str]], VgPlan]


def health(spec: models.Spec, st: state.HostState) -> list[actions.Condition]:
    """Every LV with legs (raid1, mirror) in a VG the spec declares whose report says one
    leg is not a complete, healthy copy on a present PV (``state.split_problems``, the rule
    a leg drop obeys): a failed or missing device, a partial LV, a refresh needed. A leg
    still being copied is not degraded (it is in flight)."""
    out: list[actions.Condition] = []
    for vg_name in sorted(spec.vg):
        vg = st.vgs.get(vg_name)
        if vg is None:
            continue
        for lv in sorted((lv for lv in vg.lvs.values() if lv.images), key=lambda lv: lv.name):
            problems = state.split_problems(lv, st.pvs)
            if problems:
                out.append(actions.Condition(actions.Health.DEGRADED, f"lv {lv.key}",
                                             "; ".join(problems)))
    return out


def plan_vgs(spec: models.Spec, st: state.HostState,
             stalled: frozenset[str], will_provide: frozenset[str] = frozenset(),
             node: str = "", will_release: frozenset[str] = frozenset(), *,
             plan_vg_on_node: VgPlanner) -> Partial:
    """The LVM part of a plan for ``spec`` (already sliced for ``node``).

    ``will_provide``: device paths another step of the same plan makes appear (an iSCSI
    login's disk, an array); a PV among them is planned, not blocked as missing, and the
    core orders its ``pvcreate`` after the step that provides it.

    ``plan_vg_on_node`` plans each VG: ``planning.lockd.plan_vg``, which plans it with
    ``plan_vg`` here and keeps what this node may do of it (a shared VG, activation
    tables). It is passed in because lockd builds on LVM, never the reverse. Around it,
    this decides what is VG-wide: a VG with anything blocked gets none of its steps (its
    safe ones aside), unmanaged VGs and LVs are listed, and one bare ``pvmove`` resumes
    the stalled moves, unless it would also resume one in a VG the spec does not manage or
    one in a VG blocked in this pass (a DLM VG without quorum, say)."""
    out = Partial()
    host = st.host
    resume = False
    held_vgs: list[str] = []  # VGs blocked in this plan: a bare pvmove must not touch them
    twice = devices_named_twice(spec, st)
    for vg_name in sorted(spec.vg):
        vp = plan_vg_on_node(vg_name, spec.vg[vg_name], st, stalled, node, will_provide,
                             will_release)
        for reason in twice.get(f"vg {vg_name}", ()):
            vp.block(f"vg {vg_name}", reason)
        resume = resume or vp.resume
        out.in_flight.extend(vp.in_flight)
        out.steps.extend(vp.safe)
        out.blocked.extend(vp.notes)
        if vp.blocked:
            out.blocked.extend(vp.blocked)
            out.held.extend(vp.steps)  # said, never run, while the block lasts
            held_vgs.append(vg_name)
        else:
            out.steps.extend(vp.steps)
        obs = st.vgs.get(vg_name)
        if obs is not None:
            out.unmanaged.extend(f"lv {vg_name}/{lv}"
                                 for lv in sorted(obs.lvs.keys() - spec.vg[vg_name].lv.keys()))
    out.unmanaged[:0] = [_unmanaged_vg(st, st.vgs[n]) for n in sorted(st.vgs) if n not in spec.vg]
    if resume:
        # Bare pvmove resumes every interrupted move on the host: not if one is in a VG
        # the spec does not manage (that would be touching it).
        foreign = sorted(n for n, vg in st.vgs.items() if vg.pvmoves and n not in spec.vg)
        held = sorted(n for n in held_vgs if n in st.vgs and st.vgs[n].pvmoves)
        if held and not foreign:
            out.blocked.append(actions.Blocked(
                f"host {host}", f"a pvmove is in flight in a managed VG with nothing advancing "
                f"it, but resuming it (bare pvmove) would also resume the one in VG(s) "
                f"{', '.join(held)}, blocked in this pass (see why above); it is resumed once "
                f"that block is gone"))
        elif foreign:
            out.blocked.append(actions.Blocked(
                f"host {host}", f"a pvmove is in flight in a managed VG with nothing advancing "
                f"it, but resuming it (bare pvmove) would also resume the one in unmanaged "
                f"VG(s) {', '.join(foreign)}; run `pvmove --background` yourself"))
        else:
            out.steps.append(actions.Step(actions.ResumeMoves(host=host), (
                "a pvmove is in the metadata and no process polls it (no pvmove process, no "
                "lvpoll of lvmpolld)" if st.pollers is not None else
                "a pvmove is in the metadata and has not moved for longer than its stall "
                "window (who polls it cannot be seen here)")))
    return out


def _unmanaged_vg(st: state.HostState, vg: state.Vg) -> str:
    owner = st.foreign_owner(vg)
    return f"vg {vg.name}" + (f" (foreign: system ID {owner})" if owner else "")


def _pollers_note(pollers: state.Pollers | None, mv: state.PvMove, resume: bool) -> str:
    """Who drives a pvmove, for people."""
    if pollers is None:
        return "resuming: no progress seen" if resume else ""
    polled = pollers.polling(mv.key)
    if polled:
        return "polled by " + ", ".join(str(p) for p in polled)
    if resume:
        if pollers.lvmpolld_in_use and pollers.lvmpolld is not None:
            via = f"lvmpolld ({pollers.lvmpolld}) will poll it"
        elif pollers.lvmpolld_in_use:
            via = "lvmpolld's socket will start lvmpolld to poll it, or pvmove polls it itself"
        else:
            via = "pvmove will fork a poller"
        return f"no process polls it: resuming; {via}"
    return "no process polls it yet (just started)"


def plan_vg(name: str, want: models.Vg, st: state.HostState, host: str,
             stalled: frozenset[str], will_provide: frozenset[str] = frozenset(),
             will_release: frozenset[str] = frozenset()) -> VgPlan:
    """One VG as LVM alone sees it on this host (``planning.lockd.plan_vg`` adds what a node
    may do of a shared one). First whether it may be touched at all: a VG name lvm reports
    twice, a VG another host owns (system ID) or one on a disk this host exports over iSCSI
    (another host may be writing through it) is blocked whole; a takeover or handover in
    progress (``planning.move``) takes the pass. Then, in order: its PVs (a device is
    labelled only when it exists or a step provides it and ``wipefs`` finds it blank, and a
    PV is never taken from another VG), the VG, PV growth; PVs the spec drops (a missing one
    is never removed, an unmanaged LV on one blocks); in-flight pvmoves waited for (and
    adopted when stalled); each LV (``_plan_lv``); last the evacuated PVs, removed only
    after every move of the VG has finished."""
    vp = VgPlan()
    if name in st.vg_names_twice:
        ids = ", ".join(repr(i) if i else "none" for i in st.vg_names_twice[name])
        vp.block(f"vg {name}", f"lvm reports more than one VG named {name} (system IDs: "
                 f"{ids}): which one the spec means cannot be told, and a command naming "
                 f"{name} would act on whichever lvm picks; nothing is done to it. Rename one "
                 f"(`vgrename <uuid> <new name>` on the host that owns it)")
        return vp
    if want.takeover is not None and not move.plan_takeover(vp, name, want, st, will_release):
        return vp
    obs = st.vgs.get(name)
    owner = st.foreign_owner(obs) if obs is not None else None
    if owner is not None:
        mine = st.lvm_system_id or "none"
        vp.block(f"vg {name}", f"LVM says this VG belongs to another host (vg_systemid "
                 f"{owner!r}; this host's system ID: {mine}); it is never changed from here. "
                 f"Reconcile it on the host that owns it, or hand it over with vgexport on "
                 f"that host and vgimport here")
        return vp
    # Even an export this plan removes blocks the VG for this pass: its other steps (an
    # activation, a pvresize) get no edge to that removal, and must not run if it fails.
    exported = move.exported_pvs(st, want, obs, frozenset())
    if exported:
        vp.block(f"vg {name}", f"{'; '.join(exported)}: LVM must not use a disk this host "
                 f"exports, another host may be writing to it through the export (the VG seen "
                 f"there is that host's); nothing is done to the VG until the export ends "
                 f"(mark the target or LUN absent)")
        return vp
    if want.state is models.Presence.ABSENT:
        _plan_absent_vg(vp, name, want, obs, host)
        return vp
    if obs is not None and move.finish_own_splits(vp, name, want, obs, st) and want.handover:
        return vp  # the handover goes on once its interrupted split is finished
    if want.handover is not None and not move.plan_handover(vp, name, want, obs, st):
        return vp

    # 1. The PVs: label and add what is missing; never take a PV from another VG.
    ready: dict[str, str | None] = {}  # spec device -> key of the step that makes it usable
    names: dict[str, str] = {}  # spec device -> the name to use on command lines
    for dev in want.pvs:
        pv = st.pv_for(dev)
        names[dev] = pv.name if pv else dev
        if pv is None:
            # ``devices`` holds None for a path observed not to exist; a path missing from
            # the table (no identity lookup on this runner) is left to the tool to judge.
            if dev in st.devices and st.devices[dev] is None and dev not in will_provide:
                vp.block(f"vg {name}", f"device {dev} does not exist on {host}, and no step "
                         f"of this plan makes it appear")
                continue
            probe = st.probes.get(dev)
            if probe is not None and (probe.signatures or probe.error):
                vp.block(f"vg {name}", _signature_reason(dev, probe))
                continue
            ready[dev] = vp.add(actions.CreatePv(device=dev, host=host),
                                f"{dev} is listed in vg.{name}.pvs but is not a PV")
        elif pv.vg is not None and pv.vg != name:
            other = st.vgs.get(pv.vg)
            owner = st.foreign_owner(other) if other is not None else None
            whose = f" (foreign: owned by system ID {owner!r})" if owner else ""
            vp.block(f"vg {name}", f"{dev} is a PV of VG {pv.vg!r}{whose}; it is never taken "
                     f"from another VG. Check that {dev} is the disk you meant (device names "
                     f"can change after a reboot; a /dev/disk/by-id name does not) and what "
                     f"VG {pv.vg!r} keeps on it (pvs -o +vg_name,pv_used {dev})")
        elif pv.missing:
            vp.block(f"vg {name}", f"PV {dev} is missing from the system")
        else:
            ready[dev] = None
    if obs is None:
        key = vp.add(actions.CreateVg(vg=name, devices=tuple(want.pvs),
                                      extent_size=want.extent_size, host=host),
                     "VG does not exist", ready.values())
        ready = {dev: key for dev in ready}
    else:
        for dev in want.pvs:
            pv = st.pv_for(dev)
            if dev in ready and (pv is None or pv.vg is None):
                ready[dev] = vp.add(actions.ExtendVg(vg=name, device=dev, host=host),
                                    f"{dev} is listed in vg.{name}.pvs but not in the VG",
                                    [ready[dev]])
    extent_size = obs.extent_size if obs else (want.extent_size or DEFAULT_EXTENT_SIZE)
    grown = move.plan_pv_growth(vp, name, want, st, extent_size) if want.grow_pvs else []

    # 2. PVs to evacuate: in the VG, not in the spec.
    wanted_names = {names[d] for d in want.pvs}
    evacuees = [p for p in (obs.pvs if obs else ()) if p not in wanted_names]
    for p in evacuees:
        if st.pvs[p].missing:
            # lvm names a PV whose disk it cannot read "[unknown]": its key has its uuid
            vp.block(f"vg {name}", f"PV {p} is missing (its device "
                     f"is gone: a failed disk, a link down?); nothing in the VG changes until "
                     f"it is back, and it is never removed (vgreduce --removemissing loses "
                     f"the data on it)")
        for lv_name, lv in sorted(obs.lvs.items()):
            if lv.pv_extents.get(p) and lv_name not in want.lv:
                vp.block(f"lv {name}/{lv_name}", f"unmanaged LV holds {lv.pv_extents[p]} "
                         f"extents on {p}, which the spec removes from the VG; declare the "
                         f"LV (with its placement) or move it yourself")

    # 3. In-flight pvmoves: wait, and adopt the ones nobody polls.
    for mv in (obs.pvmoves if obs else ()):
        resume = mv.key in stalled
        note = _pollers_note(st.pollers, mv, resume)
        for lv_name in mv.lvs or ("?",):
            vp.in_flight.append(actions.InFlight(key=f"lv:{name}/{lv_name}:moving",
                                              object=f"lv {name}/{lv_name}",
                                              what=f"pvmove off {mv.source}",
                                              percent=mv.copy_percent,
                                              total=mv.size or None, note=note))
        if resume:
            vp.resume = True
    if obs is not None and obs.pvmoves:
        vp.last_move = vp.in_flight[-1].key

    # 4. LVs. One that is as declared (its size, on its placement) with nothing under way
    # plans nothing (``_plan_lv``): told by one test here, for 10,000 LVs.
    have = obs.lvs if obs is not None else {}
    # The PVs an LV may be on, by its placement (10,000 LVs name a few placements): no
    # placement is the VG's PVs.
    on: dict[tuple[str, ...], set[str]] = {(): {names[d] for d in want.pvs}}
    present, split_tag = models.Presence.PRESENT, state.SPLIT_TAG
    have_get, lvs_want = have.get, want.lv
    for lv_name in sorted(lvs_want):
        lv_want, lv = lvs_want[lv_name], have_get(lv_name)
        if (lv is not None and lv_want.state is present
                and lv_want.size is not None and lv.moving_via is None and not lv_want.copies
                and not lv.images and not lv_want.resize_fs and split_tag not in lv.tags
                and lv.size == -(-lv_want.size // extent_size) * extent_size):
            placement = lv_want.placement
            pvs = on.get(placement)
            if pvs is None:
                pvs = on[placement] = set(map(names.__getitem__, placement))
            if pvs.issuperset(lv.pv_extents):
                continue
        _plan_lv(vp, name, lv_name, lv_want, obs, st, host, extent_size, want,
                 names, ready, grown)

    # 5. Drop the evacuees once every move in the VG (planned or in flight) has finished.
    moves = [s.key for s in vp.steps
             if s.action.long or isinstance(s.action, (actions.DropMirrorLeg, actions.RemoveLv))]
    moves += [f.key for f in vp.in_flight]
    for p in evacuees:
        vp.add(actions.ReduceVg(vg=name, pv=p, host=host),
               f"{p} is in the VG but not in vg.{name}.pvs", moves)
    return vp


def _signature_reason(dev: str, probe: state.DiskProbe) -> str:
    """Why ``dev`` is not made a PV: what wipefs found on it, and what to check (never a
    wipe: only a person can tell whether that content is still someone's)."""
    if probe.error:
        return (f"{dev} is listed in pvs but is not a PV, and what it holds could not be "
                f"read (wipefs --no-act: {probe.error}); pvcreate runs only on a disk seen "
                f"blank. Check that the device is the one meant and readable")
    return (f"{dev} is listed in pvs but holds {', '.join(probe.signatures)} (wipefs "
            f"--no-act): pvcreate runs only on a blank disk. Check that {dev} is the disk "
            f"you meant (device names can change after a reboot; a /dev/disk/by-id name "
            f"does not) and whose data that is (blkid, lsblk -f, mount it read-only); the "
            f"VG waits, nothing is written to the disk")


def _plan_absent_vg(vp: VgPlan, name: str, want: models.Vg, obs: state.Vg | None,
                    host: str) -> None:
    if obs is None:
        return
    keep = [lv for lv in sorted(obs.lvs) if lv not in want.lv
            or want.lv[lv].state is not models.Presence.ABSENT]
    if keep:
        vp.block(f"vg {name}", f"marked absent but still holds LV(s) {', '.join(keep)}, "
                 f"which the spec does not mark absent; nothing is removed. Check what they "
                 f"hold and whose they are (they may be another user's); only an LV marked "
                 f"absent itself is ever removed")
        return
    removals = []
    for lv_name in sorted(obs.lvs):
        lv = obs.lvs[lv_name]
        if lv.attr.is_open:
            vp.block(f"lv {name}/{lv_name}", "marked absent but the LV is open (mounted or in "
                     "use); stop its users first")
        if lv.attr.has_dependents:
            vp.block(f"lv {name}/{lv_name}", "is a snapshot origin or a thin pool; remove its "
                     "dependents first")
        removals.append(vp.add(actions.RemoveLv(vg=name, lv=lv_name, host=host),
                               "spec marks it absent"))
    vp.add(actions.RemoveVg(vg=name, host=host), "spec marks the VG absent", removals)


def _plan_lv(vp: VgPlan, vg: str, name: str, want: models.Lv, obs_vg: state.Vg | None,
             st: state.HostState, host: str, extent_size: int, want_vg: models.Vg,
             names: dict[str, str], ready: dict[str, str | None],
             grown: list[str] = ()) -> None:
    """One LV: removed when marked absent (never while open, never a snapshot origin or thin
    pool, whose dependents lvremove would take too); created; otherwise left alone while a
    long operation runs on it. ``copies`` are the server move's (``planning.move``), several
    images a mirror-then-split or a user's mirror (``_plan_multi_leg``). Extents outside the
    placement move by pvmove or mirror-then-split, as declared; a file system left short by
    an interrupted grow is finished; it grows after its move and the PVs it needs, and
    shrinks only with ``allow_shrink`` (a shrink destroys data beyond the new end)."""
    obj = f"lv {vg}/{name}"
    lv = obs_vg.lvs.get(name) if obs_vg else None
    if want.state is models.Presence.ABSENT:
        if lv is not None:
            if lv.attr.is_open:
                vp.block(obj, "marked absent but the LV is open (mounted or in use); "
                         "stop its users first")
            elif lv.attr.has_dependents:
                vp.block(obj, "marked absent but it is a snapshot origin or a thin pool: "
                         "lvremove would also remove its snapshots or thin volumes, which the "
                         "spec does not mark absent: nothing is removed. List them (lvs -a -o "
                         "+origin,pool_lv) and check whether they are still needed; declaring "
                         "each one absent is what removes it")
            else:
                vp.add(actions.RemoveLv(vg=vg, lv=name, host=host), "spec marks it absent")
        return
    assert want.size is not None
    allowed_devs = list(want.placement or want_vg.pvs)
    allowed = {names[d] for d in allowed_devs}
    # On command lines, LVM's own name for a PV it knows (no symlink spelling to resolve).
    allowed_args = tuple(names[d] for d in allowed_devs)
    target = extents(want.size, extent_size) * extent_size
    placement_ready = [ready.get(d) for d in allowed_devs]
    if lv is None:
        if want.copies:
            move.plan_copies(vp, vg, name, want, None, st, names, target, placement_ready)
            return
        vp.add(actions.CreateLv(vg=vg, lv=name, size=want.size, pvs=allowed_args,
                                host=host),
               "LV does not exist", placement_ready)
        return

    # Something long already under way for this LV: wait for it, change nothing else.
    if lv.moving_via is not None:
        return
    if want.copies:
        move.plan_copies(vp, vg, name, want, lv, st, names, target, placement_ready)
        return
    if lv.images:
        _plan_multi_leg(vp, vg, name, want, lv, allowed, st, target)
        return
    if state.SPLIT_TAG in lv.tags and not (set(lv.pv_extents) - allowed):
        vp.add(actions.ForgetSplit(vg=vg, lv=name, host=host),
               "the mirror-then-split is complete; its tag was left behind")

    busy_key = None
    offending = {p: n for p, n in sorted(lv.pv_extents.items()) if p not in allowed}
    if offending:
        if want.move is models.MoveStrategy.PVMOVE:
            busy_key = _plan_pvmoves(vp, vg, name, lv, offending, allowed_devs, names, ready,
                                     st, obj, extent_size)
        else:
            busy_key = _plan_mirror(vp, vg, name, lv, offending, allowed_devs, names, ready,
                                    st, obs_vg, obj)
    if want.resize_fs and lv.size == target:
        _plan_fs(vp, vg, name, lv, st, extent_size, busy_key)
    if lv.size < target:
        vp.add(actions.ResizeLv(vg=vg, lv=name, size=want.size, extent_size=extent_size,
                                pvs=allowed_args, resize_fs=want.resize_fs, host=host),
               f"size {format_size(lv.size)} < {format_size(target)}"
               + (", with its file system" if want.resize_fs else ""),
               [busy_key, *placement_ready, *grown])
    elif lv.size > target:
        if want.allow_shrink:
            vp.add(actions.ResizeLv(vg=vg, lv=name, size=want.size, extent_size=extent_size,
                                    shrink=True, host=host),
                   f"size {format_size(lv.size)} > {format_size(target)}, allow_shrink is set",
                   [busy_key])
        else:
            vp.block(obj, f"is {format_size(lv.size)}, spec says {format_size(want.size)}: "
                     f"shrinking is refused (it destroys data beyond the new end); set "
                     f"allow_shrink = true once the file system is smaller")


def _plan_fs(vp: VgPlan, vg: str, name: str, lv: state.Lv, st: state.HostState,
             extent_size: int, busy_key: str | None) -> None:
    """``resize_fs`` and the LV at its size: its file system must be too. A grow that
    stopped between the two (fsadm failed after lvextend, a crash in between) is finished
    with ``lvextend --resizefs`` at the same size, which lvm2 2.03.16 turns into fsadm
    alone. ext2/3/4 and xfs are sized; a superblock that cannot be read is reported, never
    guessed; an LV with no file system the reconciler knows has nothing to finish."""
    fs = st.filesystems.get(lv.key)
    if fs is None:
        return  # not read: the LV is not active
    if fs.size is None:
        if not fs.error:
            return  # no file system the reconciler reads: nothing of it to finish
        vp.notes.append(actions.Blocked(
            f"lv {vg}/{name}", f"resize_fs: its {fs.kind or 'file system'} superblock cannot "
            f"be read ({fs.error}), so whether a grow finished cannot be told; check it (df, "
            f"tune2fs -l, xfs_info) against the LV's {format_size(lv.size)}, and grow it by "
            f"hand if it is smaller"))
        return
    if fs.short_of(int(lv.size)):
        vp.add(actions.ResizeLv(vg=vg, lv=name, size=int(lv.size), extent_size=extent_size,
                                resize_fs=True, host=st.host),
               f"its {fs.kind} file system is {format_size(fs.size)}, the LV "
               f"{format_size(lv.size)}: a grow stopped between the LV and its file system "
               f"(fsadm failed, or a crash after lvextend); lvextend --resizefs at the same "
               f"size grows the file system only", [busy_key])


def _plan_pvmoves(vp: VgPlan, vg: str, name: str, lv: state.Lv, offending: dict[str, int],
                  allowed_devs: list[str], names: dict[str, str], ready: dict[str, str | None],
                  st: state.HostState, obj: str, extent_size: int) -> str | None:
    if not lv.is_linear:
        vp.block(obj, f"extents on {', '.join(offending)} are outside its placement, but the "
                 f"LV is {','.join(lv.layout) or 'not linear'}; only linear LVs are moved")
        return None
    dests = tuple(names[d] for d in allowed_devs if names[d] not in offending)
    free = free_extents(st, vg, dests, extent_size)
    unknown = [n for n in dests if n not in st.pvs]
    need = sum(offending.values())
    if not unknown and free < need:
        vp.block(obj, f"moving {need} extents off {', '.join(offending)} needs that many free "
                 f"extents on {', '.join(dests)}, which have {free}")
        return None
    key = None
    for src, n in offending.items():
        key = vp.chain_move(
            actions.MoveExtents(vg=vg, lv=name, source=src, destinations=dests, host=st.host),
            f"{n} extents on {src}, outside the LV's placement",
            [ready.get(d) for d in allowed_devs])
    return key


def _plan_mirror(vp: VgPlan, vg: str, name: str, lv: state.Lv, offending: dict[str, int],
                 allowed_devs: list[str], names: dict[str, str], ready: dict[str, str | None],
                 st: state.HostState, obs_vg: state.Vg, obj: str) -> str | None:
    if obs_vg.lock_type in ("sanlock", "dlm"):
        vp.block(obj, f"VG uses lvmlockd ({obs_vg.lock_type}), which does not support "
                 f"splitting mirrors; use move = \"pvmove\"")
        return None
    if not lv.is_linear:
        vp.block(obj, "mirror-then-split starts from a linear LV; this one is "
                 f"{','.join(lv.layout) or 'not linear'}")
        return None
    current = set(lv.pv_extents)
    dests = tuple(names[d] for d in allowed_devs if names[d] not in current)
    if not dests:
        vp.block(obj, "mirror-then-split needs a placement PV that the LV does not already "
                 "use, to hold the new leg; use move = \"pvmove\"")
        return None
    need = sum(lv.pv_extents.values()) + 1  # + one extent of raid metadata
    free = free_extents(st, vg, dests, obs_vg.extent_size)
    if all(n in st.pvs for n in dests) and free < need:
        vp.block(obj, f"a new leg needs {need} free extents on {', '.join(dests)}, which have "
                 f"{free}")
        return None
    # lvm puts the raid metadata of the existing leg (``<lv>_rmeta_0``) on the PVs that leg
    # already uses, whatever PVs the command names: with no free extent there, the
    # conversion fails ("Insufficient free space: 1 extents needed, but only 0 available").
    if free_extents(st, vg, current, obs_vg.extent_size) < 1:
        vp.block(obj, f"mirror-then-split needs one free extent on {', '.join(sorted(current))} "
                 f"for the raid metadata of the existing leg (lvm allocates it next to the "
                 f"data), and there is none; free one extent there or use move = \"pvmove\"")
        return None
    add = vp.chain_move(actions.AddMirrorLeg(vg=vg, lv=name, destinations=dests,
                                             tagged=state.SPLIT_TAG in lv.tags,
                                             host=st.host),
                        f"extents on {', '.join(offending)} are outside the placement "
                        f"(mirror-then-split)", [ready.get(d) for d in allowed_devs])
    drop = vp.add(actions.DropMirrorLeg(vg=vg, lv=name, sources=tuple(sorted(current)),
                                        host=st.host),
                  "the old leg, once the new one is 100% in sync", [add])
    vp.last_move = drop
    return drop


def _plan_multi_leg(vp: VgPlan, vg: str, name: str, want: models.Lv, lv: state.Lv,
                    allowed: set[str], st: state.HostState, target: int) -> None:
    """An LV with several images: a mirror-then-split under way, or one we must not touch.

    Decides which leg may go, and when. Only a mirror this reconciler made (``SPLIT_TAG``)
    ever loses a leg, and only once the leg kept is a complete, healthy copy on present PVs
    (else blocked with what to check: either leg may be the only complete copy); a copy gone
    stale while its device was away is refreshed first. The placement tells the legs apart
    (the one inside it stays); when it no longer can, the original leg goes, so the move
    ends as it began. Two legs sharing a PV are never split by PV. A user's own mirror keeps
    every copy whatever the placement says (redundancy is never lowered implicitly), and is
    not resized."""
    obj = f"lv {vg}/{name}"
    host = st.host
    # Our own mirror-then-split (the tag says so), whatever the spec's move says now: it is
    # finished or blocked with a reason, never left raid1 for good.
    ours = len(lv.images) == 2 and state.SPLIT_TAG in lv.tags
    if ours:
        if move.refresh_copy(vp, vg, name, lv, st):
            return  # it resyncs; the leg is dropped once every field says it is complete
        problems = state.split_problems(lv, st.pvs)
        if problems:
            vp.block(obj, f"mirror-then-split halted, no leg is dropped: "
                     f"{'; '.join(problems)}. A leg is dropped only when the one kept is a "
                     f"complete, healthy copy on present PVs: repair the LV (lvconvert "
                     f"--repair, or lvchange --refresh once the device is back). Either leg "
                     f"may be the only complete copy (the new one once the original's disk "
                     f"failed): before changing the LV by hand, check which leg is complete "
                     f"and on present PVs (lvs -a -o name,devices,sync_percent,"
                     f"lv_health_status {vg}/{name})")
            return
    inside = [img for img in lv.images if img.pv_extents and set(img.pv_extents) <= allowed]
    outside = [img for img in lv.images if set(img.pv_extents) - allowed]
    # Only a second leg this reconciler added (tagged) may be split off again; a user's own
    # mirror keeps both its copies whatever the placement says.
    is_our_split = ours and len(inside) == 1 and len(outside) == 1
    why = "the old leg, once the new one is 100% in sync"
    if ours and not is_our_split:
        # The placement no longer tells the legs apart (an edit made both legs inside it,
        # or both outside): the move this reconciler started is finished as it began, the
        # leg it added kept and the LV's original leg (image 0, the first copy, complete
        # before the new one was added) dropped, under the same rules (in sync, healthy,
        # no shared PV, checked again right before). Outside the placement, the LV then
        # moves on from one copy.
        inside, outside = [lv.images[1]], [lv.images[0]]
        is_our_split = True
        why = ("the placement no longer tells its legs apart: the mirror-then-split it "
               "started is finished (its original leg dropped once the new one is 100% in "
               "sync)")
    if not lv.is_synced:
        key = f"lv:{vg}/{name}:syncing"
        pct = lv.percent
        vp.in_flight.append(actions.InFlight(key=key, object=obj, what="raid1 sync",
                                             percent=pct, total=lv.size))
        if is_our_split:
            vp.add(actions.DropMirrorLeg(vg=vg, lv=name,
                                         sources=tuple(sorted(outside[0].pv_extents)), host=host),
                   why, [key])
        vp.last_move = key
        return
    if is_our_split:
        kept, dropped = set(inside[0].pv_extents), set(outside[0].pv_extents)
        if kept & dropped:
            vp.block(obj, f"the legs share PV(s) {', '.join(sorted(kept & dropped))}; "
                     f"cannot drop one leg by PV without risking the other")
            return
        vp.last_move = vp.add(
            actions.DropMirrorLeg(vg=vg, lv=name, sources=tuple(sorted(dropped)), host=host),
            f"new leg on {', '.join(sorted(kept))} is 100% in sync")
        return
    if outside:
        vp.block(obj, f"has {len(lv.images)} copies and extents outside its placement; "
                 f"dropping a copy would lower its redundancy, which is never done "
                 f"implicitly")
    elif lv.size != target:
        vp.block(obj, f"is mirrored ({len(lv.images)} copies); resizing a mirrored LV is "
                 f"not supported yet")
