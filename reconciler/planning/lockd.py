"""Planning for cluster LVM (lvmlockd): who does what to a shared VG, and where each LV is
active. Pure.

A shared VG is one VG on storage several nodes see; each node's reconciler plans only its
own part, and lvmlockd is the only coordination between them (no lock, lease or message of
our own). The rules, each for a reason recorded in the lab (tests/fixtures/outputs/lvmlockd):

* **One creator.** Structure (pvcreate, ``vgcreate --shared``, vgextend, vgreduce, lvcreate,
  lvremove) is planned on the VG's ``create_on`` node only, so two nodes never race a
  pvcreate. LVs are created inactive (``lvcreate --activate n``): activation is the
  activation table's. A node that finds the VG missing and is not the creator waits.
* **Quorum (DLM).** A VG with ``lock_type = "dlm"`` gets nothing on a node whose corosync
  is not quorate (``corosync-quorumtool -s``, read each pass while one is declared), or
  cannot say: DLM grants no lock without quorum (lab, tests/fixtures/outputs/dlm).
* **Lockspace.** Every node starts the VG's lockspace when lvmlockd does not list it;
  every other step of the VG on that node waits for it. lvmlockd not reachable blocks the
  VG with what to enable.
* **Activation per node.** ``lvchange -aey | -asy | -aln`` (``-ay``/``-an`` in a local VG)
  converges this node's own activation. Another node holding the lock makes the step wait
  ("waiting on another node", deferred, not an error): that is how an exclusive LV moves
  from A to B. Whatever another node must do first (create the VG or an LV, a step only
  the creator or the exclusive holder runs) is an in-flight entry with ``waiting_on`` set
  to that node (exit 2, "waiting on another node: NODE: what it must do"), never a block. An open LV (lv_attr's open bit) is never deactivated: blocked, saying where.
  raid LVs cannot be active shared (lvmlockd refuses: "Shared activation not compatible").
* **Resize and pvmove** run only where lvmlockd allows: on the node where the LV is declared
  exclusive (after its activation), or on the creator when the LV is declared inactive
  everywhere; declared shared anywhere blocks them with lvmlockd's reason (resize: "LV is
  already locked with incompatible mode"; pvmove: "requires exclusive lock on named LV").
  mirror-then-split is refused by planning.lvm for lockd VGs (no split with sanlock).
* **Refresh.** A node whose dm table (sysfs size) is shorter than the LV (another node
  resized it) runs ``lvchange --refresh``: lvmlockd does not do it with sanlock (lab).
* **Stale dm devices.** A dm device of this VG (by dm uuid) named for an LV the metadata no
  longer has is removed with ``dmsetup remove`` when nothing holds or mounts it; an open
  one is reported, never removed.
* **Spec and LVM agree.** A VG declared shared that LVM reports local (or the reverse, or
  another lock type) is blocked with both facts, never converted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler import actions, state
from reconciler.planning import lvm
from reconciler.planning.vgplan import VgPlan
from reconciler.spec import models

LOCKD_TYPES = ("sanlock", "dlm")


def _creator_only() -> tuple[type[actions.Action], ...]:
    """Steps only the creator runs on a shared VG (structure). A function, not a table:
    the LVM actions are imported by the first plan that makes one (``actions``)."""
    return (actions.CreatePv, actions.CreateVg, actions.ExtendVg, actions.ReduceVg,
            actions.CreateLv, actions.RemoveLv, actions.RemoveVg, actions.ForgetSplit)


def _needs_ex() -> tuple[type[actions.Action], ...]:
    """Steps only the node allowed to by lvmlockd runs (they need the LV's exclusive lock,
    or the LV inactive everywhere)."""
    return (actions.ResizeLv, actions.MoveExtents, actions.AddMirrorLeg, actions.DropMirrorLeg)


_MODE = {models.Activation.EXCLUSIVE: "ex", models.Activation.SHARED: "sh",
         models.Activation.ACTIVE: "active"}


@dataclass
class Shaped:
    """What this module makes of one VG's plan on this node."""

    steps: list[actions.Step] = field(default_factory=list)
    blocked: list[actions.Blocked] = field(default_factory=list)  # the VG gets no step
    notes: list[actions.Blocked] = field(default_factory=list)  # reported, VG goes on
    in_flight: list[actions.InFlight] = field(default_factory=list)


def wanted(lv: models.Lv, node: str) -> models.Activation | None:
    return lv.activation.get(node) or lv.activation.get("*")


def plan_vg(name: str, want: models.Vg, st: state.HostState, stalled: frozenset[str],
            node: str, will_provide: frozenset[str] = frozenset(),
            will_release: frozenset[str] = frozenset()) -> VgPlan:
    """One VG on this node (``planning.lvm.plan_vgs`` calls it for each): ``lvm.plan_vg``,
    with what this node may do to a shared VG and its LVs' activation. A VG without
    activation tables and not shared plans as LVM alone plans it."""
    obs = st.vgs.get(name)
    shared = want.scope is models.Scope.SHARED
    managed = shared or any(lv.activation for lv in want.lv.values())
    problem = scope_problem(name, want, obs)
    if problem and (st.foreign_owner(obs) is None if obs else True):
        vp = VgPlan()
        vp.block(f"vg {name}", problem)
        return vp
    if not managed:
        return lvm.plan_vg(name, want, st, st.host, stalled, will_provide, will_release)
    first = Shaped()
    if shared:
        first, go_on = before_vg(name, want, obs, st, node)
        if not go_on:
            vp = VgPlan(blocked=first.blocked, in_flight=first.in_flight)
            return vp
    vp = lvm.plan_vg(name, want, st, st.host, stalled, will_provide, will_release)
    if shared and vp.resume and obs is not None:
        # Only the node that holds (or may take) the moving LV's lock resumes its pvmove.
        vp.resume = all(ex_runner(want, lv)[0] == node
                        for mv in obs.pvmoves for lv in mv.lvs)
    shaped = shape(name, want, obs, st, node, vp.steps)
    vp.steps = _grow_after_activation(first.steps + shaped.steps)
    vp.blocked.extend(first.blocked + shaped.blocked)
    vp.in_flight.extend(first.in_flight + shaped.in_flight)
    vp.notes[:0] = shaped.notes
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


def scope_problem(name: str, want: models.Vg, obs: state.Vg | None) -> str | None:
    """Both facts when the spec's scope (or lock type) and LVM's disagree."""
    if obs is None:
        return None
    seen = obs.lock_type if obs.lock_type in LOCKD_TYPES else ""
    if want.scope is models.Scope.SHARED and not seen:
        return (f"the spec declares VG {name} shared (lvmlockd, {want.lock_type.value}) but LVM "
                f"reports it local (vg_lock_type {obs.lock_type!r}); it is never converted "
                f"here: make it shared yourself (vgchange --locktype) or declare it local")
    if want.scope is models.Scope.LOCAL and seen:
        return (f"the spec declares VG {name} local but LVM reports it shared (vg_lock_type "
                f"{seen!r}, lvmlockd); it is never converted here: declare scope = \"shared\" "
                f"with its create_on node, or change it yourself")
    if want.scope is models.Scope.SHARED and seen != want.lock_type.value:
        return (f"the spec declares lock_type {want.lock_type.value!r} for VG {name} but LVM "
                f"reports {seen!r}; it is never converted here")
    return None


def before_vg(name: str, want: models.Vg, obs: state.Vg | None, st: state.HostState,
              node: str) -> tuple[Shaped, bool]:
    """What comes before the normal VG planning on this node; False: plan nothing more."""
    out = Shaped()
    creator = want.create_on == node
    if st.lockd is None:
        out.blocked.append(actions.Blocked(f"vg {name}", "lvmlockd's state was not observed "
                                           "on this node; a shared VG is never changed blind"))
        return out, False
    dlm = want.lock_type is models.LockType.DLM
    if not st.lockd.running:
        out.blocked.append(actions.Blocked(
            f"vg {name}", f"lvmlockd is not running on {node} ({st.lockd.problem}): enable "
            + ("corosync.service, dlm.service and lvmlockd.service (lvmlockd -g dlm)" if dlm else
               "lvmlockd.service, wdmd.service and sanlock.service, with this node's host_id "
               "in /etc/lvm/lvmlocal.conf")))
        return out, False
    if dlm:
        why = _quorum_problem(st.lockd.quorum)
        if why:
            out.blocked.append(actions.Blocked(
                f"vg {name}", f"{why} on {node}: DLM grants no lock without quorum, so nothing "
                f"is done to the DLM VG {name} here. Check corosync-quorumtool -s on every "
                f"node, corosync.service and the cluster link"))
            return out, False
    if obs is None:
        if not creator:
            out.in_flight.append(actions.InFlight(
                key=f"vg:{name}:created-elsewhere", object=f"vg {name}",
                what=f"create the shared VG {name}", percent=None,
                waiting_on=want.create_on))
            return out, False
        return out, True  # vgcreate --shared starts the lockspace too
    if not st.lockd.lockspace_started(name):
        out.steps.append(actions.Step(actions.StartLockspace(vg=name, host=st.host),
                                      "lvmlockd has not started this VG's lockspace here"))
    return out, True


def _quorum_problem(quorum: tuple[bool | None, str] | None) -> str | None:
    """Why a DLM VG gets nothing on this node, from corosync's quorum; None when quorate."""
    if quorum is None:
        return "corosync's quorum was not observed"
    quorate, said = quorum
    if quorate:
        return None
    if quorate is None:
        return f"corosync's quorum cannot be read ({said})"
    return f"corosync is {said}"


def shape(name: str, want: models.Vg, obs: state.Vg | None, st: state.HostState, node: str,
          planned: list[actions.Step]) -> Shaped:
    """The VG's steps on this node: structure on the creator only, resize/pvmove on the node
    lvmlockd lets do them, every step after the lockspace start; plus activation, refresh and
    stale dm devices."""
    out = Shaped()
    shared = want.scope is models.Scope.SHARED
    creator = want.create_on == node
    gate = f"vg:{name}:lock-start" if (shared and obs is not None and st.lockd is not None
                                       and not st.lockd.lockspace_started(name)) else None
    activation_keys: dict[str, str] = {}
    # Activation first: resize and pvmove wait for this node's lock.
    for lv_name in sorted(want.lv):
        lv_want = want.lv[lv_name]
        if lv_want.state is not models.Presence.PRESENT:
            continue
        key = _plan_activation(out, name, lv_name, lv_want, obs, st, node, shared, creator,
                               planned, gate, want.create_on or "",
                               _lock_holders(want, lv_want, node))
        if key:
            activation_keys[lv_name] = key
    # An LV the spec removes: the other nodes let go of it, so the creator's lvremove can
    # take its lock (lvremove is refused while any node has it active).
    for lv_name in sorted(want.lv):
        lv = obs.lvs.get(lv_name) if obs else None
        if (not shared or creator or lv is None or want.lv[lv_name].state
                is not models.Presence.ABSENT or state.activation_here(st, lv) == "off"):
            continue
        why = state.open_state(st, lv)
        if why:
            out.blocked.append(actions.Blocked(
                f"lv {name}/{lv_name}", f"is marked absent and is {why} on "
                f"{node}; an open LV is never deactivated: stop its users on {node} first"))
            continue
        out.steps.append(actions.Step(
            actions.SetActivation(vg=name, lv=lv_name, mode="off", host=st.host),
            f"marked absent; {want.create_on} removes it once no node has it active",
            frozenset({gate} if gate else ())))
    # key of a step another node runs -> (that node, what it does)
    elsewhere: dict[str, tuple[str, str]] = {}
    for step in planned:
        action = step.action
        if shared and not creator and isinstance(action, _creator_only()):
            elsewhere[step.key] = (want.create_on or "", f"{action.object}: {action.describe()}")
        elif shared and isinstance(action, _needs_ex()) and ex_runner(want, action.lv)[0] != node:
            elsewhere[step.key] = (ex_runner(want, action.lv)[0] or "",
                                   f"{action.object}: {action.describe()}")
    for step in planned:
        action = step.action
        if shared and step.key not in elsewhere and step.after & set(elsewhere):
            # It needs what another node does first (a PV the creator adds, say).
            first = sorted(step.after & set(elsewhere))[0]
            who, what = elsewhere[first]
            out.in_flight.append(actions.InFlight(
                key=step.key, object=action.object, percent=None, what=what,
                waiting_on=who))
            continue
        if shared and isinstance(action, _creator_only()):
            if not creator:
                continue
            lv_here = obs.lvs.get(getattr(action, "lv", "")) if obs else None
            if (isinstance(action, actions.RemoveLv) and lv_here is not None
                    and state.activation_here(st, lv_here) != "off"
                    and not state.open_state(st, lv_here)):
                # Let go of it here first: lvremove wants no lock held anywhere.
                off = actions.SetActivation(vg=name, lv=action.lv, mode="off", host=st.host)
                out.steps.append(actions.Step(off, "marked absent; deactivated before lvremove",
                                              frozenset({gate} if gate else ())))
                step = actions.Step(action, step.reason, step.after | {off.key})
            if isinstance(action, actions.RemoveVg):
                out.blocked.append(actions.Blocked(
                    f"vg {name}", "removing a shared VG is not planned: stop its lockspace on "
                    "every other node (vgchange --lock-stop), then vgremove it yourself"))
                continue
            if isinstance(action, actions.CreatePv) and obs is None:
                # pvcreate needs lvmlockd's global lock, which lives in a started shared VG's
                # lockspace: before the first one exists it fails ("Global lock failed: check
                # that global lockspace is started", lab). vgcreate --shared labels the
                # devices itself (recorded: vgcreate_shared_a).
                continue
            if type(action) is actions.CreateVg:
                step = actions.Step(step.action, step.reason,
                                    frozenset(a for a in step.after if not a.startswith("pv:")))
                action = actions.CreateSharedVg(vg=action.vg, devices=action.devices,
                                                extent_size=action.extent_size,
                                                lock_type=want.lock_type.value, host=action.host)
            elif type(action) is actions.CreateLv:
                action = actions.CreateSharedLv(vg=action.vg, lv=action.lv, size=action.size,
                                                pvs=action.pvs, host=action.host)
        elif shared and isinstance(action, _needs_ex()):
            lv_name = action.lv
            runner, why = ex_runner(want, lv_name)
            if runner is None:
                verb = "resized" if isinstance(action, actions.ResizeLv) else "moved"
                out.blocked.append(actions.Blocked(f"lv {name}/{lv_name}", f"cannot be {verb}: {why}"))
                continue
            if runner != node:
                continue
            after = {activation_keys[lv_name]} if lv_name in activation_keys else set()
            step = actions.Step(action, step.reason, step.after | after)
        after = step.after | ({gate} if gate else set())
        out.steps.append(actions.Step(action, step.reason, frozenset(after)))
    if shared and obs is not None and st.lockd is not None:
        _plan_refresh(out, name, want, obs, st, gate, planned)
        _plan_stale(out, name, obs, st, node, gate)
    return out


def ex_runner(want: models.Vg, lv: str) -> tuple[str | None, str]:
    """The node that may resize or pvmove ``lv`` (it holds, or will hold, the exclusive lock;
    the creator when the LV is inactive everywhere), or None and lvmlockd's reason."""
    table = want.lv[lv].activation if lv in want.lv else {}
    ex = [n for n, m in table.items() if m is models.Activation.EXCLUSIVE]
    sh = sorted(n for n, m in table.items() if m is models.Activation.SHARED)
    if ex:
        return ex[0], ""
    if sh:
        return None, (f"it is declared active shared on {', '.join(sh)}; lvmlockd refuses a "
                      f"resize or pvmove under a shared lock (\"LV is already locked with "
                      f"incompatible mode\", \"pvmove in a shared VG requires exclusive lock "
                      f"on named LV\"): declare it exclusive on one node or inactive")
    return want.create_on, ""


def _lock_holders(vg: models.Vg, lv: models.Lv, node: str) -> tuple[str, str]:
    """The other nodes that may hold ``lv``'s lock when lvmlockd says "locked by other host"
    (it does not say which), comma-separated: the VG's named nodes, else those the activation
    table names; and what the spec declares on each. ("", "") when the spec names none."""
    names = [n for n in (vg.nodes if "*" not in vg.nodes else sorted(lv.activation))
             if n not in ("*", node)]
    declared = []
    for n in names:
        mode = wanted(lv, n)
        declared.append(f"{n} {mode.value if mode is not None else 'not declared'}")
    return ", ".join(names), "; ".join(declared)


def _plan_activation(out: Shaped, vg: str, name: str, want: models.Lv, obs: state.Vg | None,
                     st: state.HostState, node: str, shared: bool, creator: bool,
                     planned: list[actions.Step], gate: str | None,
                     create_on: str = "", holders: tuple[str, str] = ("", "")) -> str | None:
    """This node's activation of one LV, as its activation table declares it (the node's
    own entry, else ``*``); the key of the step that sets it, or None. An LV not created yet
    is activated right after the creator's ``lvcreate --activate n``, and another node waits
    for the creator (in flight, ``waiting_on``). A change of mode (exclusive, shared,
    inactive) deactivates first, and an open LV is never deactivated: blocked, saying where.
    raid LVs cannot be active shared (lvmlockd refuses it). A lock another node holds is no
    concern here: the step waits for that node when it runs (``FailureKind.PEER``)."""
    mode = wanted(want, node)
    if mode is None:
        return None
    obj = f"lv {vg}/{name}"
    lv = obs.lvs.get(name) if obs else None
    create = f"lv:{vg}/{name}:create"
    if lv is None:
        if not shared:
            return None  # lvcreate activates it; later passes converge
        if mode is not models.Activation.INACTIVE and not creator:
            out.in_flight.append(actions.InFlight(
                key=f"lv:{vg}/{name}:created-elsewhere", object=obj,
                what=f"create the LV {vg}/{name}", percent=None,
                waiting_on=create_on))
        if creator and mode is not models.Activation.INACTIVE and any(
                s.key == create for s in planned):
            key = f"lv:{vg}/{name}:activate"
            out.steps.append(actions.Step(
                actions.SetActivation(vg=vg, lv=name, mode=_MODE[mode], host=st.host),
                f"spec: {mode.value} on {node}", frozenset({create, *([gate] if gate else [])})))
            return key
        return None
    here = state.activation_here(st, lv)
    if mode is models.Activation.INACTIVE:
        target = "off" if shared else "off-local"
    else:
        target = _MODE[mode]
    if here == target or (target == "active" and here != "off") or (
            target.startswith("off") and here == "off"):
        return None
    if target == "sh" and (lv.images or lv.attr.is_raid):
        out.blocked.append(actions.Blocked(obj, "cannot be active shared: lvmlockd refuses "
                                           "shared activation of a raid LV (\"Shared "
                                           "activation not compatible with LV type raid1\")"))
        return None
    after = {gate} if gate else set()
    if here != "off":  # deactivate first (to inactive, or to change the lock mode)
        why = state.open_state(st, lv)
        # an LV a Pacemaker primitive activates (its Filesystem mounts it, say): the step is
        # planned and planning.pacemaker refuses it, naming the primitive (unmounting what
        # Pacemaker mounted is no advice to give)
        pcmk = st.pacemaker.lv_owner(vg, name) if st.pacemaker is not None else None
        if why and pcmk is None:
            out.blocked.append(actions.Blocked(
                obj, f"is {why} on {node}; the spec wants it "
                f"{mode.value} here, which needs it deactivated, and an open LV is never "
                f"deactivated: stop its users on {node} (unmount it) first"))
            return None
        off = actions.SetActivation(vg=vg, lv=name, mode="off" if shared else "off-local",
                                    host=st.host)
        out.steps.append(actions.Step(off, f"spec: {mode.value} on {node}; active "
                                      f"{_WORD[here]} here", frozenset(after)))
        if target.startswith("off"):
            return off.key
        after = {off.key}
    on = actions.SetActivation(vg=vg, lv=name, mode=target, host=st.host, holders=holders[0],
                               declared=holders[1])
    out.steps.append(actions.Step(on, f"spec: {mode.value} on {node}; {_WORD[here]} here",
                                  frozenset(after)))
    return on.key


_WORD = {"ex": "exclusively", "sh": "shared", "active": "active", "off": "inactive"}


def _plan_refresh(out: Shaped, vg: str, want: models.Vg, obs: state.Vg, st: state.HostState,
                  gate: str | None, planned: list[actions.Step]) -> None:
    assert st.lockd is not None
    for name, lv in sorted(obs.lvs.items()):
        dm = st.lockd.dm_for(vg, name)
        if dm is None or state.activation_here(st, lv) == "off" or dm.size >= lv.size:
            continue
        out.steps.append(actions.Step(
            actions.RefreshLv(vg=vg, lv=name, host=st.host),
            f"this node's dm table is {dm.size} bytes, the LV {int(lv.size)} (resized on "
            f"another node)", frozenset({gate} if gate else ())))


def _plan_stale(out: Shaped, vg: str, obs: state.Vg, st: state.HostState, node: str,
                gate: str | None) -> None:
    assert st.lockd is not None
    known = {lv.uuid.replace("-", "") for lv in obs.lvs.values()}
    for dm_name, dm in sorted(st.lockd.dm.items()):
        parts = state.split_dm_name(dm_name)
        if parts is None or parts[0] != vg:
            continue
        lv_name = parts[1]
        if lv_name in obs.lvs or lv_name == "lvmlock" or lv_name.startswith("pvmove") or any(
                p in lv_name for p in state.LV_RESERVED_PARTS):
            continue
        uuid = state.lv_uuid_of_dm(dm.uuid, obs.uuid)
        if uuid is None or uuid in known:
            continue
        if dm.in_use:
            out.notes.append(actions.Blocked(
                f"dm {dm_name}", f"is a stale device on {node} (VG {vg} no longer has LV "
                f"{lv_name}) but it is in use ({', '.join(dm.in_use)}); it is never removed "
                f"while open: stop its users, the next pass removes it"))
            continue
        out.steps.append(actions.Step(
            actions.RemoveStaleDm(name=dm_name, vg=vg, host=st.host),
            f"VG {vg} no longer has LV {lv_name} (removed from another node)",
            frozenset({gate} if gate else ())))
