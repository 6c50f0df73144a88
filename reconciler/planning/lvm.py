"""Planning for LVM: VGs, their PVs, LVs, sizes, placement and moves. Pure.

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

from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler import actions, state
from reconciler.planning import lockd
from reconciler.planning.partial import Partial, devices_named_twice
from reconciler.spec import models
from reconciler.units import extents, format_size

DEFAULT_EXTENT_SIZE = 4 * 1024**2


@dataclass
class _VgPlan:
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


def plan_vgs(spec: models.Spec, st: state.HostState,
             stalled: frozenset[str], will_provide: frozenset[str] = frozenset(),
             node: str = "", will_release: frozenset[str] = frozenset()) -> Partial:
    """The LVM part of a plan for ``spec`` (already sliced for ``node``).

    ``will_provide``: device paths another step of the same plan makes appear (an iSCSI
    login's disk, an array); a PV among them is planned, not blocked as missing, and the
    core orders its ``pvcreate`` after the step that provides it."""
    out = Partial()
    host = st.host
    resume = False
    twice = devices_named_twice(spec, st)
    for vg_name in sorted(spec.vg):
        vp = _plan_vg_on_node(vg_name, spec.vg[vg_name], st, host, stalled, node, out,
                              will_provide, will_release)
        for reason in twice.get(f"vg {vg_name}", ()):
            vp.block(f"vg {vg_name}", reason)
        resume = resume or vp.resume
        out.in_flight.extend(vp.in_flight)
        out.steps.extend(vp.safe)
        out.blocked.extend(vp.notes)
        if vp.blocked:
            out.blocked.extend(vp.blocked)
        else:
            out.steps.extend(vp.steps)
        obs = st.vgs.get(vg_name)
        if obs is not None:
            out.unmanaged.extend(f"lv {vg_name}/{lv}" for lv in sorted(obs.lvs)
                                 if lv not in spec.vg[vg_name].lv)
    out.unmanaged[:0] = [_unmanaged_vg(st, st.vgs[n]) for n in sorted(st.vgs) if n not in spec.vg]
    if resume:
        # Bare pvmove resumes every interrupted move on the host: not if one is in a VG
        # the spec does not manage (that would be touching it).
        foreign = sorted(n for n, vg in st.vgs.items() if vg.pvmoves and n not in spec.vg)
        if foreign:
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


def _plan_vg_on_node(name: str, want: models.Vg, st: state.HostState, host: str,
                     stalled: frozenset[str], node: str, out: Partial,
                     will_provide: frozenset[str] = frozenset(),
                     will_release: frozenset[str] = frozenset()) -> _VgPlan:
    """``_plan_vg``, with what this node may do to a shared VG and its LVs' activation
    (planning.lockd). A VG without activation tables and not shared plans as before."""
    obs = st.vgs.get(name)
    shared = want.scope is models.Scope.SHARED
    managed = shared or any(lv.activation for lv in want.lv.values())
    problem = lockd.scope_problem(name, want, obs)
    if problem and (st.foreign_owner(obs) is None if obs else True):
        vp = _VgPlan()
        vp.block(f"vg {name}", problem)
        return vp
    if not managed:
        return _plan_vg(name, want, st, host, stalled, will_provide, will_release)
    first = lockd.Shaped()
    if shared:
        first, go_on = lockd.before_vg(name, want, obs, st, node)
        if not go_on:
            vp = _VgPlan(blocked=first.blocked, in_flight=first.in_flight)
            return vp
    vp = _plan_vg(name, want, st, host, stalled, will_provide, will_release)
    if shared and vp.resume and obs is not None:
        # Only the node that holds (or may take) the moving LV's lock resumes its pvmove.
        vp.resume = all(lockd.ex_runner(want, lv)[0] == node
                        for mv in obs.pvmoves for lv in mv.lvs)
    shaped = lockd.shape(name, want, obs, st, node, vp.steps)
    vp.steps = _grow_after_activation(first.steps + shaped.steps)
    vp.blocked.extend(first.blocked + shaped.blocked)
    vp.in_flight.extend(first.in_flight + shaped.in_flight)
    out.blocked.extend(shaped.notes)
    return vp


def _grow_after_activation(steps: list[actions.Step]) -> list[actions.Step]:
    """``lvextend --resizefs`` of an LV being activated in the same plan runs after the
    activation (fsadm needs the device), and not at all if it fails."""
    keys = {s.key for s in steps}
    out = []
    for s in steps:
        a = s.action
        act = f"lv:{getattr(a, 'vg', '')}/{getattr(a, 'lv', '')}:activate"
        if isinstance(a, actions.ResizeLv) and a.resize_fs and act in keys:
            s = actions.Step(a, s.reason, s.after | {act})
        out.append(s)
    return out


def _unmanaged_vg(st: state.HostState, vg: state.Vg) -> str:
    owner = st.foreign_owner(vg)
    return f"vg {vg.name}" + (f" (foreign: system ID {owner})" if owner else "")


def _free(st: state.HostState, vg: str, names: Iterable[str], extent_size: int) -> int:
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


def _plan_vg(name: str, want: models.Vg, st: state.HostState, host: str,
             stalled: frozenset[str], will_provide: frozenset[str] = frozenset(),
             will_release: frozenset[str] = frozenset()) -> _VgPlan:
    vp = _VgPlan()
    if name in st.vg_names_twice:
        ids = ", ".join(repr(i) if i else "none" for i in st.vg_names_twice[name])
        vp.block(f"vg {name}", f"lvm reports more than one VG named {name} (system IDs: "
                 f"{ids}): which one the spec means cannot be told, and a command naming "
                 f"{name} would act on whichever lvm picks; nothing is done to it. Rename one "
                 f"(`vgrename <uuid> <new name>` on the host that owns it)")
        return vp
    if want.takeover is not None and not _plan_takeover(vp, name, want, st, will_release):
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
    exported = _exported_pvs(st, want, obs, frozenset())
    if exported:
        vp.block(f"vg {name}", f"{'; '.join(exported)}: LVM must not use a disk this host "
                 f"exports, another host may be writing to it through the export (the VG seen "
                 f"there is that host's); nothing is done to the VG until the export ends "
                 f"(mark the target or LUN absent)")
        return vp
    if want.state is models.Presence.ABSENT:
        _plan_absent_vg(vp, name, want, obs, host)
        return vp
    if obs is not None and _finish_own_splits(vp, name, want, obs, st) and want.handover:
        return vp  # the handover goes on once its interrupted split is finished
    if want.handover is not None and not _plan_handover(vp, name, want, obs, st):
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
                     f"from another VG (remove it there first)")
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
    grown = _plan_pv_growth(vp, name, want, st, extent_size) if want.grow_pvs else []

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

    # 4. LVs.
    for lv_name in sorted(want.lv):
        _plan_lv(vp, name, lv_name, want.lv[lv_name], obs, st, host, extent_size, want,
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


def _plan_absent_vg(vp: _VgPlan, name: str, want: models.Vg, obs: state.Vg | None,
                    host: str) -> None:
    if obs is None:
        return
    keep = [lv for lv in sorted(obs.lvs) if lv not in want.lv
            or want.lv[lv].state is not models.Presence.ABSENT]
    if keep:
        vp.block(f"vg {name}", f"marked absent but still holds LV(s) {', '.join(keep)}; "
                 f"mark each one absent to have it removed")
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


def _plan_lv(vp: _VgPlan, vg: str, name: str, want: models.Lv, obs_vg: state.Vg | None,
             st: state.HostState, host: str, extent_size: int, want_vg: models.Vg,
             names: dict[str, str], ready: dict[str, str | None],
             grown: list[str] = ()) -> None:
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
                         "spec does not mark absent; remove them first")
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
            _plan_copies(vp, vg, name, want, None, st, names, target, placement_ready)
            return
        vp.add(actions.CreateLv(vg=vg, lv=name, size=want.size, pvs=allowed_args,
                                host=host),
               "LV does not exist", placement_ready)
        return

    # Something long already under way for this LV: wait for it, change nothing else.
    if lv.moving_via is not None:
        return
    if want.copies:
        _plan_copies(vp, vg, name, want, lv, st, names, target, placement_ready)
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


def _plan_fs(vp: _VgPlan, vg: str, name: str, lv: state.Lv, st: state.HostState,
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


def _plan_pvmoves(vp: _VgPlan, vg: str, name: str, lv: state.Lv, offending: dict[str, int],
                  allowed_devs: list[str], names: dict[str, str], ready: dict[str, str | None],
                  st: state.HostState, obj: str, extent_size: int) -> str | None:
    if not lv.is_linear:
        vp.block(obj, f"extents on {', '.join(offending)} are outside its placement, but the "
                 f"LV is {','.join(lv.layout) or 'not linear'}; only linear LVs are moved")
        return None
    dests = tuple(names[d] for d in allowed_devs if names[d] not in offending)
    free = _free(st, vg, dests, extent_size)
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


def _plan_mirror(vp: _VgPlan, vg: str, name: str, lv: state.Lv, offending: dict[str, int],
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
    free = _free(st, vg, dests, obs_vg.extent_size)
    if all(n in st.pvs for n in dests) and free < need:
        vp.block(obj, f"a new leg needs {need} free extents on {', '.join(dests)}, which have "
                 f"{free}")
        return None
    # lvm puts the raid metadata of the existing leg (``<lv>_rmeta_0``) on the PVs that leg
    # already uses, whatever PVs the command names: with no free extent there, the
    # conversion fails ("Insufficient free space: 1 extents needed, but only 0 available").
    if _free(st, vg, current, obs_vg.extent_size) < 1:
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


def _plan_multi_leg(vp: _VgPlan, vg: str, name: str, want: models.Lv, lv: state.Lv,
                    allowed: set[str], st: state.HostState, target: int) -> None:
    """An LV with several images: a mirror-then-split under way, or one we must not touch."""
    obj = f"lv {vg}/{name}"
    host = st.host
    # Our own mirror-then-split (the tag says so), whatever the spec's move says now: it is
    # finished or blocked with a reason, never left raid1 for good.
    ours = len(lv.images) == 2 and state.SPLIT_TAG in lv.tags
    if ours:
        if _refresh_copy(vp, vg, name, lv, st):
            return  # it resyncs; the leg is dropped once every field says it is complete
        problems = state.split_problems(lv, st.pvs)
        if problems:
            vp.block(obj, f"mirror-then-split halted, no leg is dropped: "
                     f"{'; '.join(problems)}. A leg is dropped only when the one kept is a "
                     f"complete, healthy copy on present PVs: repair the LV (lvconvert "
                     f"--repair, or lvchange --refresh once the device is back) or remove "
                     f"the new leg yourself")
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


# -- the server move (seed 004): copies kept on several PV sets, handover, takeover ------------

def _pv_name(st: state.HostState, dev: str) -> str:
    pv = st.pv_for(dev)
    return pv.name if pv else dev


def _plan_copies(vp: _VgPlan, vg: str, name: str, want: models.Lv, lv: state.Lv | None,
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
        if _refresh_copy(vp, vg, name, lv, st):
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
            free = _free(st, vg, sets[i], lv_extent_size(st, vg))
            if all(p in st.pvs for p in sets[i]) and free < need:
                vp.block(obj, f"copy {i + 1} needs {need} free extents on "
                         f"{', '.join(sets[i])}, which have {free}")
                return
        if not lv.images and _free(st, vg, set(lv.pv_extents), lv_extent_size(st, vg)) < 1:
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


def _refresh_copy(vp: _VgPlan, vg: str, name: str, lv: state.Lv, st: state.HostState) -> bool:
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


def lv_extent_size(st: state.HostState, vg: str) -> int:
    return st.vgs[vg].extent_size if vg in st.vgs else DEFAULT_EXTENT_SIZE


def _plan_pv_growth(vp: _VgPlan, name: str, want: models.Vg, st: state.HostState,
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


def _plan_handover(vp: _VgPlan, name: str, want: models.Vg, obs: state.Vg | None,
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
    pvs = tuple(_pv_name(st, d) for d in ho.pvs)
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
            if origin.images and actions.lvm.image_on(origin, names) is not None:
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
        if _refresh_copy(vp, name, lv_name, lv, st):
            problems.append((lv_name, "a copy is being refreshed (it failed while its device "
                             "was away); the handover waits for it to be back in sync"))
            continue
        if lv.images and not lv.attr.is_active:
            # lvm cannot read an inactive raid1's sync (its images show 'I') and refuses to
            # split it: activate it (unmounted, nothing else changes), split next pass.
            inactive.append(lv_name)
            continue
        why = actions.lvm.handover_problem(lv, st, names)
        if why:
            problems.append((lv_name, why))
            continue
        splits.append(copy)
        splitting.add(lv_name)
        image = actions.lvm.image_on(lv, names)
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


def _finish_own_splits(vp: _VgPlan, name: str, want: models.Vg, obs: state.Vg,
                       st: state.HostState) -> bool:
    """Finish (or forget) the handover splits a crash interrupted, whatever the spec says now:
    a copy split off and not yet tagged has its origin's file system UUID and may be active
    (udev autoactivates it at boot): it goes inactive, out of autoactivation, gets the
    handover tag, and the origin loses its pending-split tag; a pending tag naming nothing
    split is removed (unless the handover still means to split that image). True when a step
    or a block was planned for it (the handover then waits for the next pass)."""
    host = st.host
    by_uuid = {lv.uuid: n for n, lv in obs.lvs.items() if lv.uuid}
    partial = bool(obs.missing_pv_count) or any(
        p not in st.pvs or st.pvs[p].missing for p in obs.pvs)
    planned = False
    for origin in sorted(obs.lvs):
        lv = obs.lvs[origin]
        for uuid in state.handover_pending(lv.tags):
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


def _orphan_copies(vp: _VgPlan, name: str, want: models.Vg, obs: state.Vg,
                   st: state.HostState) -> None:
    """Copies a handover split off (its tag) while the spec no longer has a handover: never
    left active next to their origin (same file system UUID); on a PV the spec takes out of
    the VG, what to do is said (they are never removed from here)."""
    host = st.host
    wanted = {_pv_name(st, d) for d in want.pvs}
    for copy_name in sorted(obs.lvs):
        copy = obs.lvs[copy_name]
        origin = copy_name.removesuffix(models.HANDOVER_SUFFIX)
        if (origin == copy_name or origin not in obs.lvs
                or state.HANDOVER_TAG not in copy.tags):
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


def _exported_pvs(st: state.HostState, want: models.Vg, obs: state.Vg | None,
                  will_release: frozenset[str]) -> list[str]:
    """The VG's devices (the spec's and the observed PVs) that an iSCSI target here exports,
    each as "DEV is exported by TARGET (LUN n)"; those a step of this plan stops exporting
    are not (matched by device number: a target may name the disk another way)."""
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


def _plan_takeover(vp: _VgPlan, name: str, want: models.Vg, st: state.HostState,
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
        exported = _exported_pvs(st, want, have, frozenset())
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
    spec_names = {_pv_name(st, d): d for d in want.pvs}
    stray = [p for p in seen.pvs if p not in spec_names]
    if stray:
        vp.block(obj, f"takeover: PV(s) {', '.join(stray)} of {src} are not in vg.{name}.pvs")
        return False
    devices = tuple(spec_names[p] for p in seen.pvs)
    busy = _exported_pvs(st, want, None, will_release)
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
