"""Planning for iSCSI: LIO targets on the exporting node, sessions on the importing one. Pure.

Decisions taken here, each for a data-safety reason:

* A target, LUN or ACL the spec does not name is listed as unmanaged and never touched
  (the applier is told only what the spec names). A LUN goes only when the spec marks it
  ``absent``, a target only when the spec marks it ``absent``.
* Removing a LUN, or the whole target, while an initiator has a session on the target is
  refused unless the target says ``export_ends = true``: the initiator may be writing to it
  (a PV of its VG, a mounted file system), and losing the disk under it is data loss there.
  When the spec itself declares the session to that target absent on the other node(s)
  (and logged in nowhere), the removal is not refused but waits on those nodes ("waiting on
  another node: NODE: log out of IQN", exit 2): it is planned after that wait, so what
  needs the export gone (a VG takeover) is planned after it and nobody advises a change to
  a spec that is already right. The exporter sees initiator names, not nodes: when those
  sessions name their node's ``initiator``, the wait is only for initiators they name (on
  their nodes), and any other initiator logged in refuses the removal, naming it (it may be
  a host no spec declares, writing). When none names one, the removal waits on the declared
  nodes whoever is logged in, and the wait lists who is and says what tells them apart.
  A session naming an ``initiator`` is blocked on its node unless that is the node's own
  name (/etc/iscsi/initiatorname.iscsi, as observed).
* A LUN already exporting another device than the spec says is refused, not re-pointed.
* A new LUN over a device in use here is refused, the whole target with it, before any
  initiator can see the device (a typo, or disks renumbered after a reboot): a PV of a VG
  active here or that the spec declares on this node, mounted, held (matched by device
  number; ``state.taking``). The initiator would otherwise see that VG, and LVM's
  autoactivation there makes two writers. There is no declaration that exports a local VG's
  disk: hand the VG over first (``vg.N.handover``: vgexport), then its disks are free. A PV
  of a VG that is neither active here nor declared on this node is exported: that is the
  seed-004 exporter after a reboot, whose disk carries the VG its initiator wrote on it.
* A device to export that does not exist blocks the target, unless another step of the
  same plan provides it (an LV created in this pass): the core orders the two.
* Logout is refused while any disk of the session is in use: an LVM PV (of a VG or not),
  mounted, or held (device-mapper, md), saying what holds it; the same of any partition of
  it (sdX1: the logout takes it away with the disk). Removing the PV from its VG
  (the VG's ``pvs``) is what frees it; the next pass logs out. A PV of an exported VG
  (a handover) is not in use; a handover planned in the same plan releases the disk, and
  the logout is ordered after its ``vgexport``. A process holding a disk open (qemu, dd:
  no PV, mount or holder) is seen by the executor right before the logout runs, which is
  then refused naming it (``LogoutSession.takes_devices``); so are a LUN or target removal
  while a process here holds the exported device.
* Removing a target or LUN ``releases()`` the devices it exported: a VG takeover of those
  disks in the same plan runs after it.
* A rotated CHAP secret (the file differs from what LIO's ACL holds) is not applied to the
  target while that ACL's initiator is logged in (blocked, saying what finishes it): open-iscsi
  re-logs in after a link cut with the credentials the session logged in with, not its node
  record's (seen in the lab; ``_rotation_held``), and LIO admits one secret per ACL, so the
  new one would fail that re-login and, a replacement_timeout later, the session's I/O. The
  initiator rewrites its node record at once, and a session whose live credentials (sysfs)
  are not its file's logs out when its disks are idle (the target then takes the new secret
  and the next pass logs in); in use, it is blocked, saying what the operator can do.
* A session FAILED or FREE (its connection down, iscsid retrying with the credentials it
  logged in with) gets no login (iscsiadm: already present). When those live credentials
  are not the declared ones (a rotation the target applied while the link was down: it saw
  no session), it can never log in again on its own: idle (nothing of it in use, no disk or
  partition with a role in this node's spec) and FREE (its replacement_timeout passed: the
  I/O queued on it already failed), it is logged out (the next pass logs in with the
  declared ones); idle but FAILED, it waits for FREE (the previous secret back on the
  target would still deliver that I/O); in use, never (the queued I/O would fail), blocked
  saying what recovers it and what giving up its users costs (``_failed``). No CHAP
  ("(null)") is a credential state; live credentials that cannot be read are said, not
  guessed.
* The session's login ``provides()`` its disks' by-path names: a VG naming them is planned
  in the same plan and runs after the login. When the spec declares the target on other
  node(s) (``exported_by``), a login that finds no such target, or no portal, is a wait on
  those nodes ("waiting on another node: NODE: export IQN at PORTAL"), not an error: on a
  first bring-up the importing node may simply start before the exporting one. A node
  that logs in to a target it exports itself logs in after this plan's step for that target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconciler import actions, state
from reconciler.state import iscsi as state_iscsi
from reconciler.state import taking
from reconciler.planning.partial import Partial
from reconciler.spec import iscsi as iscsi_spec
from reconciler.spec import models


@dataclass(frozen=True)
class Elsewhere:
    """The iSCSI tables the whole spec declares on other nodes only (by table name): read
    to tell a wait on those nodes from a refusal or an error, never planned here."""

    sessions: Mapping[str, iscsi_spec.Session] = field(default_factory=dict)
    targets: Mapping[str, iscsi_spec.Target] = field(default_factory=dict)
    node: str = ""  # this node's name ("": not known; then every node's DRBD disk counts)


def elsewhere(whole: models.Spec | None, node: str) -> Elsewhere:
    if whole is None:
        return Elsewhere(node=node)
    return Elsewhere(
        sessions={n: s for n, s in whole.iscsi_session.items() if not s.applies_to(node)},
        targets={n: t for n, t in whole.iscsi_target.items() if not t.applies_to(node)},
        node=node)


def plan_iscsi(spec: models.Spec, st: state.HostState,
               will_provide: frozenset[str] = frozenset(),
               will_release: frozenset[str] = frozenset(),
               others: Elsewhere | None = None) -> Partial:
    """The iSCSI part of a plan for ``spec`` (sliced for this node). ``others``: what the
    spec declares on other nodes, read to tell a removal that waits for their logout from
    one that must be refused, and a login that waits for their export from an error."""
    others = others or Elsewhere()
    out = Partial()
    if not spec.iscsi_target and not spec.iscsi_session:
        return out
    seen = st.iscsi
    targets = (seen.targets or {}) if seen is not None else {}
    wanted_iqns = {t.iqn for t in spec.iscsi_target.values()}
    if spec.iscsi_target:
        out.unmanaged.extend(f"iscsi target {iqn}" for iqn in sorted(targets)
                             if iqn not in wanted_iqns)
    for name in sorted(spec.iscsi_target):
        _plan_target(out, name, spec.iscsi_target[name], targets, st, will_provide,
                     _declared_pvs(spec, st), others.sessions)
    sessions = seen.sessions if seen is not None else ()
    if spec.iscsi_session:
        wanted = {(s.portal, s.target) for s in spec.iscsi_session.values()}
        out.unmanaged.extend(f"iscsi session {s.target} at {s.portal} ({s.sid})"
                             for s in sessions if (s.portal, s.target) not in wanted)
    for name in sorted(spec.iscsi_session):
        want = spec.iscsi_session[name]
        _plan_session(out, name, want, st, will_release,
                      _exporters(want_iqn=want.target, portal=want.portal, others=others),
                      _applied_here(out, spec, want), _spec_roles(spec, others.node),
                      _target_secret(spec, want, others),
                      _other_initiators(spec, want, others, st))
    return out


def _applied_here(out: Partial, spec: models.Spec, want: iscsi_spec.Session) -> frozenset[str]:
    """The keys of this plan's target steps that make the target ``want`` logs in to, at
    its portal, on this very node (a node logging in to its own export): the login runs
    after them, or it would find no target that this plan is about to offer."""
    port = want.portal.rsplit(":", 1)[-1]
    at = {want.portal, f"0.0.0.0:{port}"}
    here = {n for n, t in spec.iscsi_target.items() if t.iqn == want.target
            and t.state is iscsi_spec.Presence.PRESENT and at & set(t.portals)}
    return frozenset(s.key for s in out.steps if isinstance(s.action, actions.ApplyTarget)
                     and s.action.name in here and not s.action.delete)


def _spec_roles(spec: models.Spec, node: str) -> dict[str, str]:
    """Device path (as this node's spec spells it) -> what the spec makes of it here, in
    words: a VG's PV (``vg.N.pvs``, its handover's), a DRBD backing disk
    (``drbd.R.nodes.<node>.disk``; every node's when ``node`` is not known), a LUN this node
    exports, an md clone's source or target. Each is a kernel user of the device that may
    link no sysfs holder (LIO's iblock) or may be about to be made (DRBD's backing disk
    before its attach)."""
    out: dict[str, str] = {}
    for name in sorted(spec.vg):
        vg = spec.vg[name]
        for path in (*vg.pvs, *(vg.handover.pvs if vg.handover is not None else ())):
            out.setdefault(path, f"vg.{name}.pvs")
    for name in sorted(spec.drbd):
        for n, me in sorted(spec.drbd[name].nodes.items()):
            if not node or n == node:
                out.setdefault(me.disk, f"drbd.{name}.nodes.{n}.disk (DRBD's backing disk, "
                                        f"attached or about to be)")
    for name in sorted(spec.iscsi_target):
        t = spec.iscsi_target[name]
        if t.state is iscsi_spec.Presence.PRESENT:
            for k, lun in sorted(t.luns().items()):
                if lun.state is iscsi_spec.Presence.PRESENT:
                    out.setdefault(lun.device, f"iscsi_target.{name}.lun.{k}.device (a LUN "
                                               f"this node exports: its initiators' I/O)")
    for name in sorted(spec.clone):
        c = spec.clone[name]
        out.setdefault(c.source, f"clone.{name}.source")
        out.setdefault(c.target, f"clone.{name}.target")
    return out


def _declared_pvs(spec: models.Spec, st: state.HostState) -> dict[object, str]:
    """Device (by number where known) -> the VG this node's spec declares it a PV of, from
    the spec's ``pvs`` and from the observed PVs of a VG of that name."""
    out: dict[object, str] = {}
    for name in sorted(spec.vg):
        for path in spec.vg[name].pvs:
            out.setdefault(st.device_key(path), name)
        vg = st.vgs.get(name)
        for pv_name in vg.pvs if vg is not None else ():
            pv = st.pvs.get(pv_name)
            if pv is not None and pv.devno is not None:
                out.setdefault(pv.devno, name)
    return out


def _export_refused(n: int, device: str, st: state.HostState,
                    declared: dict[object, str]) -> str | None:
    """Why LUN ``n`` must not start exporting ``device``, or None."""
    take = taking.Take(device, taking.Effect.EXPORTS, "the device to export")
    uses = taking.blocking(take, st)
    words = [str(u) for u in uses]
    vg = declared.get(st.device_key(device))
    if vg is not None and not any(u.kind == "pv" and u.who == vg for u in uses):
        words.insert(0, f"a PV of VG {vg}, which the spec declares on {st.host}")
    if not words:
        return None
    return (f"exporting {device} (LUN {n}) is refused: it is {', '.join(words)}. Another "
            f"host would see and write a device in use here (LVM autoactivates a VG it finds). "
            f"Check the LUN's device (a typo, disks renumbered after a reboot); to give a VG's "
            f"disks to another host, hand the VG over first (vg.N.handover)")


def _logout_awaited(out: Partial, obj: str, name: str, want: iscsi_spec.Target,
                    who: tuple[str, ...], others: Mapping[str, iscsi_spec.Session]
                    ) -> tuple[str | None, tuple[str, ...], str]:
    """When every session the spec declares to this target (on other nodes) is absent, the
    wait for their logout, as an in-flight entry: (its key, (), ""). Else (None, the
    initiators to name in the refusal, what to add to it). ``who``: logged in now.

    Sessions naming their ``initiator``: the wait is for those logged in, each one named by
    a session; one that none names is refused. None naming one: every declared node is
    waited on (an initiator no spec declares cannot be told apart)."""
    declared = {n: sess for n, sess in sorted(others.items()) if sess.target == want.iqn}
    if not declared or any(sess.state is not iscsi_spec.SessionState.ABSENT
                           for sess in declared.values()):
        return None, who, ""
    named: dict[str, list[str]] = {}
    for n, sess in declared.items():
        if sess.initiator:
            named.setdefault(sess.initiator, []).append(n)
    hint = ""
    if named:
        unknown = tuple(i for i in who if i not in named)
        if unknown:
            said = "; ".join(
                f"iscsi_session.{n} on {', '.join(sess.nodes)}: {sess.initiator}"
                if sess.initiator else
                f"iscsi_session.{n} on {', '.join(sess.nodes)} declares no initiator"
                for n, sess in declared.items())
            return None, unknown, (f"no session the spec declares absent names "
                                   f"{', '.join(unknown)} ({said})")
        waited = sorted({n for i in who for n in named[i]})
    else:
        waited = list(declared)
        hint = ("; declaring initiator = \"<iqn>\" in each session (the node's "
                "/etc/iscsi/initiatorname.iscsi) lets an initiator no spec declares be told "
                "apart, and refused instead of waited on")
    nodes = sorted({nd for n in waited for nd in declared[n].nodes})
    tables = ", ".join(f"iscsi_session.{n}" for n in waited)
    key = f"iscsi:target:{name}:logout-elsewhere"
    out.in_flight.append(actions.InFlight(
        key=key, object=obj, percent=None, waiting_on=", ".join(nodes),
        what=f"log out of {want.iqn} ({tables} absent there; logged in now: "
             f"{', '.join(who)}{hint})"))
    return key, (), ""


def _plan_target(out: Partial, name: str, want: iscsi_spec.Target,
                 targets: dict[str, state_iscsi.LioTarget], st: state.HostState,
                 will_provide: frozenset[str], declared: dict[object, str],
                 others: Mapping[str, iscsi_spec.Session] | None = None) -> None:
    """One target on this host, as one ``ApplyTarget`` (the applier converges the whole
    target in one rtslib call) or nothing. Removing the target or a LUN while an initiator
    is logged in is refused, since its disk may be a PV or mounted there, unless
    ``export_ends`` says so, or it waits for the logout when the spec declares every session
    to it absent on the other nodes (``_logout_awaited``). A LUN is never re-pointed at
    another device (that would swap the disk under a logged-in initiator), a device that
    does not exist and that no step provides is blocked, and a new export of a device in use
    here (a PV of an active VG, mounted, held) or declared elsewhere in the spec is refused
    (``_export_refused``). LUNs and ACLs the spec does not name are listed as unmanaged. Any
    problem blocks the whole target: it is applied whole or not at all."""
    obj = f"iscsi target {name}"
    have = targets.get(want.iqn)
    who = have.sessions if have is not None else ()
    after: frozenset[str] = frozenset()
    if want.state is iscsi_spec.Presence.ABSENT:
        if have is None:
            return
        if have.sessions and not want.export_ends:
            wait, named, why = _logout_awaited(out, obj, name, want, who, others or {})
            if wait is None:
                out.blocked.append(actions.Blocked(obj, _refuse("removing the target", want,
                                                                named, why)))
                return
            after = frozenset({wait})
        if _applier_missing(out, obj, st):
            return
        out.steps.append(actions.Step(actions.ApplyTarget(
            name=name, iqn=want.iqn, delete=True, host=st.host,
            released=tuple(sorted({lun.device for lun in have.luns.values()}))),
            "spec marks the target absent", after))
        return
    problems: list[str] = []
    keep: list[tuple[int, str]] = []
    remove: list[int] = []
    new: list[str] = []
    for n, lun in want.luns().items():
        cur = have.luns.get(n) if have is not None else None
        if lun.state is iscsi_spec.Presence.ABSENT:
            if cur is not None:
                remove.append(n)
            continue
        if cur is not None and cur.device != lun.device:
            problems.append(f"LUN {n} exports {cur.device}, the spec says {lun.device}; a LUN "
                            f"is never re-pointed: mark it absent first, or use another number")
            continue
        if cur is None and lun.device in st.devices and st.devices[lun.device] is None \
                and lun.device not in will_provide:
            problems.append(f"{lun.device} (LUN {n}) does not exist on {st.host}, and no step "
                            f"of this plan makes it appear")
            continue
        if cur is None:
            refused = _export_refused(n, lun.device, st, declared)
            if refused:
                problems.append(refused)
                continue
            new.append(lun.device)
        keep.append((n, lun.device))
    if remove and have is not None and have.sessions and not want.export_ends:
        wait, named, why = _logout_awaited(out, obj, name, want, who, others or {})
        if wait is None:
            problems.append(_refuse(f"removing LUN {', '.join(map(str, remove))}", want,
                                    named, why))
        else:
            after = frozenset({wait})
    if have is not None:
        out.unmanaged.extend(f"iscsi lun {want.iqn}/{n}" for n in sorted(have.luns)
                             if str(n) not in want.lun)
        out.unmanaged.extend(f"iscsi acl {want.iqn}/{i}" for i in sorted(have.acls)
                             if i not in want.acls)
    if problems:
        out.blocked.extend(actions.Blocked(obj, p) for p in problems)
        return
    step = actions.ApplyTarget(
        name=name, iqn=want.iqn, portals=want.portals, luns=tuple(keep),
        remove_luns=tuple(remove), acls=want.acls, chap_file=want.chap_file, host=st.host,
        released=tuple(sorted({have.luns[n].device for n in remove})) if have else (),
        exports=tuple(new))
    if step.is_done(st):
        return
    rotated = () if have is None else tuple(
        i for i, a in sorted(have.acls.items())
        if i in want.acls and st.iscsi.chap_differs(a.chap, want.chap_file))
    live = tuple(i for i in rotated if have.acls[i].session)
    if live:
        out.blocked.append(actions.Blocked(obj, _rotation_held(want, live)))
        return
    if _applier_missing(out, obj, st):
        return
    why = ("target does not exist" if have is None else
           "LUNs to remove: " + ", ".join(map(str, remove)) if remove else
           f"the ACLs' CHAP credentials are not those of {want.chap_file} (rotated); no "
           f"initiator of theirs is logged in, so each one's next login uses the new secret"
           if rotated else
           "target differs from the spec (portals, LUNs, ACLs, CHAP or not enabled)")
    out.steps.append(actions.Step(step, why, after))


def _rotation_held(want: iscsi_spec.Target, live: tuple[str, ...]) -> str:
    """Why a rotated CHAP secret is not applied to the target while ``live`` initiators are
    logged in: open-iscsi re-logs in after a link cut with the credentials the session
    logged in with (iscsid's copy, the kernel's in sysfs), never re-reading its node record
    (open-iscsi usr/initiator.c: the session's credentials are copied once, when iscsid
    creates it; its reopen after a connection error logs in with that copy). LIO admits one
    secret per ACL: the new one now would refuse that re-login, and the session's I/O would
    fail once its replacement_timeout passes."""
    return (f"the CHAP rotation is held: initiator(s) {', '.join(live)} are logged in to "
            f"{want.iqn} with the secret LIO holds now, and open-iscsi re-logs in after a link "
            f"cut (a target restart, a network blip) with the credentials its session logged "
            f"in with, not its node record's: the new secret of {want.chap_file} now would "
            f"make that re-login fail and, once the session's replacement_timeout passes, its "
            f"I/O fail. It is applied once they are logged out: their node's reconciler logs "
            f"the session out when its disks are idle (then in again, with the new secret); "
            f"while they are in use there, reboot that node at a quiet moment (its login after "
            f"the boot uses the new secret once this node's next pass has applied it), or put "
            f"the old secret back in {want.chap_file} and in the session's file to cancel the "
            f"rotation. Until then the target goes on with the old secret, nothing else of it "
            f"changes")


def _applier_missing(out: Partial, obj: str, st: state.HostState) -> bool:
    """A change to a target needs the LIO applier (rtslib-fb): without it, blocked with
    what to install (nothing else of the plan depends on how it would fail)."""
    problem = st.iscsi.lio_applier if st.iscsi is not None else ""
    if problem:
        out.blocked.append(actions.Blocked(obj, f"changing the target is refused: {problem}"))
    return bool(problem)


def _exporters(want_iqn: str, portal: str, others: Elsewhere) -> str:
    """The other nodes the spec declares export ``want_iqn`` (present) at ``portal`` (one
    of the target's portals, or a wildcard address on its port), comma-separated. A portal
    no node is declared to export at is an error of this node's spec, never a wait."""
    port = portal.rsplit(":", 1)[-1]
    at = {portal, f"0.0.0.0:{port}"}
    return ", ".join(sorted({n for t in others.targets.values() if t.iqn == want_iqn
                             and t.state is iscsi_spec.Presence.PRESENT
                             and at & set(t.portals) for n in t.nodes if n != "*"}))


def _target_secret(spec: models.Spec, want: iscsi_spec.Session, others: Elsewhere) -> str:
    """Where the spec keeps the secret of the target ``want`` logs in to, in words: its
    ``chap_file`` and the node(s) declaring it, for an operator told to put a previous
    secret back; "" when the spec declares no such target with CHAP."""
    said = []
    for tables in (spec.iscsi_target, others.targets):
        for n, t in sorted(tables.items()):
            if t.iqn == want.target and t.chap_file and t.state is iscsi_spec.Presence.PRESENT:
                said.append(f"{t.chap_file} on {', '.join(t.nodes)} "
                            f"(iscsi_target.{n}.chap_file)")
    return "; ".join(dict.fromkeys(said))


def _other_initiators(spec: models.Spec, want: iscsi_spec.Session, others: Elsewhere,
                      st: state.HostState) -> tuple[str, ...]:
    """The other initiators the spec's target of ``want`` admits (its ``acls`` but this
    node's initiator name): each one logged in with the new secret makes the target's node
    hold it (``_rotation_held``), whatever this node's operator writes back."""
    mine = {want.initiator or "", st.iscsi.initiator_name if st.iscsi is not None else ""}
    acls: dict[str, None] = {}
    for tables in (spec.iscsi_target, others.targets):
        for t in tables.values():
            if t.iqn == want.target and t.state is iscsi_spec.Presence.PRESENT:
                acls.update(dict.fromkeys(a for a in t.acls if a not in mine))
    return tuple(acls)


def _refuse(what: str, want: iscsi_spec.Target, who: tuple[str, ...], why: str = "") -> str:
    return (f"{what} is refused: initiator(s) {', '.join(who)} are logged in to {want.iqn} "
            f"and may be using its disks (a PV, a mounted file system)"
            f"{'; ' + why if why else ''}; log them out first, or set export_ends = true on "
            f"the target to end the export anyway")


def _plan_session(out: Partial, name: str, want: iscsi_spec.Session, st: state.HostState,
                  will_release: frozenset[str] = frozenset(), exported_by: str = "",
                  after: frozenset[str] = frozenset(),
                  roles: Mapping[str, str] | None = None, target_secret: str = "",
                  other_initiators: tuple[str, ...] = ()) -> None:
    """One declared session on this node. Its initiator name is checked first (a session
    naming another host's initiator is blocked: it was copied to the wrong node). Logged in:
    done, or a login (a long step until udev names its disks) that waits on the exporting
    node while the target is not offered yet. Absent: a logout, refused while any of its
    disks is in use here (a PV of any VG, mounted, held), unless a step of this plan frees
    it first (``will_release``: the vgexport that hands the VG over). A session that is
    there but not logged in (FAILED, FREE) is never logged in again over itself (iscsiadm
    finds it present): see ``_failed``."""
    obj = f"iscsi session {name}"
    mine = st.iscsi.initiator_name if st.iscsi is not None else ""
    if want.initiator is not None and want.initiator != mine:
        says = f"says {mine}" if mine else "names none (no InitiatorName= line, or no file)"
        out.blocked.append(actions.Blocked(obj, (
            f"the spec says this node's initiator is {want.initiator}, but "
            f"/etc/iscsi/initiatorname.iscsi here {says}: the exporting node tells "
            f"this node's session from others by that name; correct initiator in "
            f"iscsi_session.{name} (or the file)")))
        return
    s = st.iscsi.session(want.portal, want.target) if st.iscsi is not None else None
    if want.state is iscsi_spec.SessionState.LOGGED_IN:
        if s is not None and not s.logged_in and s.state:
            _failed(out, obj, name, want, s, st, roles or {}, target_secret,
                    other_initiators)
            return
        timeouts = tuple(sorted(want.timeouts.declared().items()))
        step = actions.LoginSession(name=name, portal=want.portal, target=want.target,
                                          chap_file=want.chap_file, luns=want.luns,
                                          host=st.host, exported_by=exported_by,
                                          timeouts=timeouts)
        if not step.is_done(st):
            why = ("no session" if s is None else
                   f"session {s.sid} is logged in; udev has not named its disks yet "
                   f"({', '.join(step.provides())})" if step.is_started(st) else
                   f"session {s.sid} is {s.state or 'not logged in'}")
            out.steps.append(actions.Step(step, why, after))
            return
        update = actions.UpdateSession(name=name, portal=want.portal, target=want.target,
                                             chap_file=want.chap_file, timeouts=timeouts,
                                             host=st.host)
        if s is not None and st.iscsi.chap_differs(s.live_chap, want.chap_file) \
                and _relogin(out, obj, name, want, s, st, roles or {}):
            return  # logged out: the login after it writes the record anew
        differs = update.differences(st)
        if differs:
            out.steps.append(actions.Step(update, "; ".join(differs)))
        return
    if s is None:
        return
    uses = _in_use(want, s, st, will_release)
    if uses:
        out.blocked.append(actions.Blocked(obj, "logout refused: " + "; ".join(uses) +
                                           ". Take the disk out of use first (remove it from "
                                           "the VG's pvs, unmount it); the next pass logs out"))
        return
    out.steps.append(_logout(name, want, s, st, "spec says the session is absent"))


def _logout(name: str, want: iscsi_spec.Session, s: state_iscsi.IscsiSession,
            st: state.HostState, why: str) -> actions.Step:
    paths = {d.lun: iscsi_spec.disk_path(want.portal, want.target, d.lun) for d in s.disks}
    return actions.Step(actions.LogoutSession(
        name=name, portal=want.portal, target=want.target, host=st.host,
        disks=tuple(paths[lun] for lun in sorted(paths))), why)


def _busy(want: iscsi_spec.Session, s: state_iscsi.IscsiSession, st: state.HostState,
          roles: Mapping[str, str]) -> list[str]:
    """What makes the disks of ``s`` unfit for a logout under a rotation, in words (empty:
    idle): ``_in_use``, and a disk (or a partition of it) this node's spec names in any role
    (``_spec_roles``), matched by its names (by-path, /dev/sdX) or by device number (a
    by-id spelling): a VG's ``pvs`` (even before it is a PV: this plan may be about to
    pvcreate it; and a PV on a disk whose I/O fails is missing to lvm, so only its name in
    the spec ties it to its VG), DRBD's backing disk and a LUN exported again (kernel users
    that link no holder). A process holding a disk open (or swap on it) is seen by the
    executor right before the logout runs, which is then refused
    (``LogoutSession.takes_devices``)."""
    uses = _in_use(want, s, st, frozenset())
    for d in s.disks:
        names = {iscsi_spec.disk_path(want.portal, want.target, d.lun), f"/dev/{d.name}",
                 *(f"/dev/{p.name}" for p in d.partitions)}
        named = [role for path, role in roles.items()
                 if path in names or st.device_key(path) in d.devnos]
        if named:
            uses.append(f"/dev/{d.name} (LUN {d.lun}) is named in {', '.join(named)}")
    return uses


def _failed(out: Partial, obj: str, name: str, want: iscsi_spec.Session,
            s: state_iscsi.IscsiSession, st: state.HostState, roles: Mapping[str, str],
            target_secret: str, other_initiators: tuple[str, ...] = ()) -> None:
    """A session that is there but not logged in: FAILED (its connection down, iscsid
    retrying the login with the credentials the session logged in with, never its node
    record's) or FREE (the same, its replacement_timeout passed: its disks fail I/O). A
    login over it is refused by iscsiadm (exit 15, "already present"), so none is planned.

    When those live credentials (sysfs, read as root) are not the declared ones, it can
    never log in again on its own once the target took the new secret, which the target's
    node does when it sees no session: a rotation applied while the link was down (LIO
    drops a silent initiator's session after its nop-in timeouts and time2retain). Idle and
    FREE, it is logged out; the next pass logs in with the declared credentials (retried
    each pass while the link is down or the target has not taken the new secret yet). Idle
    and FAILED, it waits for FREE: the kernel still holds I/O queued on its disks that no
    opener, mount or holder shows, which the previous secret back would deliver. In use,
    it is never logged out: the I/O queued on its disks would fail. Live credentials that
    cannot be read are said, not guessed; the declared ones unreadable are not compared."""
    tmo = s.timeouts.get("replacement_timeout")
    io = ((f"its disks fail their I/O (its replacement_timeout{f' of {tmo}s' if tmo else ''} "
           f"has passed)") if s.state == "FREE" else
          f"its disks' I/O is queued and fails once its replacement_timeout"
          f"{f' ({tmo}s)' if tmo else ''} passes")
    head = f"session {s.sid} to {want.target} at {want.portal} is {s.state} ({io})"
    if want.chap_file and s.chap is None:
        out.blocked.append(actions.Blocked(obj, (
            f"{head}, and the CHAP credentials it logged in with cannot be read "
            f"(/sys/class/iscsi_session/{s.sid}/username and password: the kernel answers "
            f"them only to CAP_SYS_ADMIN; run as root): whether it failed because the "
            f"target's secret was rotated while the link was down (then it never logs in "
            f"again on its own) cannot be told, so nothing is done to it; open-iscsi goes on "
            f"retrying its login")))
        return
    if not st.iscsi.chap_differs(s.live_chap, want.chap_file):
        declared = st.iscsi.chap_files.get(want.chap_file, "") if want.chap_file else ""
        same = s.live_chap is not None and s.live_chap == declared and \
            (bool(declared) or not want.chap_file)
        if same:
            said = ", which are the declared ones"
        elif want.chap_file and not declared:
            said = ""
        elif s.live_chap is None:
            said = " (not read, so not compared with the declared ones)"
        else:  # CHAP live, the spec declaring none
            said = " (CHAP, while the spec declares none for it)"
        out.blocked.append(actions.Blocked(obj, (
            f"{head}: its connection is down or its login refused; open-iscsi re-logs in by "
            f"itself, with the credentials it logged in with{said}, once the target answers "
            f"and admits them (nothing to do here; check the link to {want.portal} and the "
            f"target)" + (f"; {want.chap_file} cannot be read to compare them with the "
                          f"declared ones" if want.chap_file and not declared else ""))))
        return
    uses = _busy(want, s, st, roles)
    if not uses and s.state != "FREE":
        out.blocked.append(actions.Blocked(obj, (
            f"{head}, and it logged in with other CHAP credentials than those of "
            f"{want.chap_file} (rotated): if the target took the new secret while the link "
            f"was down, it never logs in again on its own. No disk of it is seen in use, "
            f"but it is not taken over before its replacement_timeout"
            f"{f' ({tmo}s)' if tmo else ''} has passed (FREE): until then the kernel holds "
            f"the I/O queued on its disks (writes of a process that closed them, dirty pages "
            f"no file descriptor shows), and putting the previous secret back on the target "
            f"({target_secret or 'its CHAP file on the exporting node'}) would still let "
            f"the session log in again and write them; a logout now would fail them. Once "
            f"FREE (that I/O already failed) the next pass logs it out and in with the "
            f"declared credentials")))
        return
    if not uses:
        out.steps.append(_logout(name, want, s, st, (
            f"{head}, and it logged in with other CHAP credentials than those of "
            f"{want.chap_file} (rotated): a live session keeps those and re-logs in only "
            f"with them, so once the target has the new secret (its node applies it when it "
            f"sees no session, as while the link was down) it never logs in again on its "
            f"own. Its disks are idle (no PV, mount or holder on them or a partition, no "
            f"role in this node's spec) and its queued I/O already failed: it is logged "
            f"out, and the next pass logs in with the declared credentials (retried each "
            f"pass until the link is back and the target has the new secret)")))
        return
    where = target_secret or "the target's CHAP file on the exporting node"
    failed = s.state == "FAILED"
    lost = ("a logout would fail the I/O queued on them" if failed else
            "a logout would take them away from under what uses them for good (the "
            "session's recovery gives them back)")
    if other_initiators:
        shared = (f"This works only while no other initiator of {want.target} is logged in "
                  f"with the new secret (the spec's target admits "
                  f"{', '.join(other_initiators)}): while one is, the target's node holds "
                  f"the new secret (its pass says \"the CHAP rotation is held\") and the "
                  f"previous one written back is not applied; LIO holds one secret per "
                  f"ACL, one file for all of them, so that initiator and this session "
                  f"cannot both be served by it. ")
    else:
        shared = (f"This works only while no other initiator of {want.target} is logged in "
                  f"with the new secret (the target's node then holds it: its pass says "
                  f"\"the CHAP rotation is held\"; the spec declares no other ACL on it). ")
    back = (f"put the previous secret back on the target"
            f"{' before its replacement_timeout passes' if failed else ''}: write the "
            f"previous userid and password into {where}; that node's next pass restores it "
            f"in LIO and open-iscsi logs this session in again by itself within seconds. "
            f"{shared}Keep it until the session is LOGGED_IN and its disks are idle, then "
            f"write the new secret again (the target holds it while this session is logged "
            f"in, and this node's reconciler takes the session over to it once its disks "
            f"are idle)")
    if failed:
        ways = (f"The one way out that keeps the I/O queued on them: {back}. Stopping what "
                f"uses the disks is no safe way out while the session is FAILED: an "
                f"unmount or an LV deactivation flushes to disks whose I/O is queued, so it "
                f"blocks until the replacement_timeout passes and then those writes fail "
                f"(the file system reports I/O errors; what was queued is lost), and a "
                f"pvmove off them cannot read them. Once FREE, that I/O has failed anyway; "
                f"the session is taken over only when its disks are idle")
    else:
        ways = (f"The I/O queued on them has already failed (expect I/O errors in what "
                f"uses them; check those file systems). Either {back}; or give up what "
                f"uses them: unmount them (expect errors) and deactivate the LVs on them (a "
                f"dm-N holder is an active LV); a PV missing to lvm is never removed from "
                f"its VG by the reconciler. Once nothing uses them, the next pass logs the "
                f"session out and in with the declared credentials")
    out.blocked.append(actions.Blocked(obj, (
        f"{head}. It logged in with other CHAP credentials than those of {want.chap_file}: "
        f"if the target's secret was rotated while the link was down (the target's node "
        f"sees no session then and applies it), this session will not log in again on its "
        f"own: a live session keeps the credentials it logged in with and re-logs in only "
        f"with them. It is not logged out: {'; '.join(uses)}, and {lost}. {ways}")))


def _relogin(out: Partial, obj: str, name: str, want: iscsi_spec.Session,
             s: state_iscsi.IscsiSession, st: state.HostState,
             roles: Mapping[str, str]) -> bool:
    """The session logged in with other CHAP credentials than its file's (rotated). open-iscsi
    re-logs in after a link cut with those (see ``_rotation_held``), and the target's node
    keeps the old secret while this session lives: with its disks idle, it logs out (the
    target then takes the new secret, the next pass logs in with it); in use, blocked, saying
    what finishes the rotation. The session goes on meanwhile: its re-logins still work.
    A disk a VG of this node's spec names in its ``pvs`` is in use too, even before it is a
    PV: this plan may be about to pvcreate it. True when it logs out."""
    uses = _busy(want, s, st, roles)
    if not uses:
        out.steps.append(_logout(name, want, s, st, (
            f"the session logged in with other CHAP credentials than those of "
            f"{want.chap_file} (rotated) and its disks are idle: it logs out so that the "
            f"target's node applies the new secret, and the next pass logs in with it")))
        return True
    out.blocked.append(actions.Blocked(obj, (
        f"the session logged in with other CHAP credentials than those of {want.chap_file} "
        f"(rotated); open-iscsi re-logs in after a link cut with those, so the target's node "
        f"keeps the old secret until this session logs out, and it cannot log out while "
        f"{'; '.join(uses)}. The session goes on with the old secret (a link cut recovers); "
        f"its node record has the new one. To finish the rotation, reboot this node at a "
        f"quiet moment (its login after the boot uses the new secret, once the target's node "
        f"has applied it: the first login may be refused until that node's next pass), or "
        f"take the disks out of use; or put the old secret back in both files to cancel it")))
    return False


def _in_use(want: iscsi_spec.Session, s: state_iscsi.IscsiSession, st: state.HostState,
            will_release: frozenset[str]) -> list[str]:
    """What holds each disk of session ``s`` here, in words (empty: none is in use)."""
    uses = []
    paths = {d.lun: iscsi_spec.disk_path(want.portal, want.target, d.lun) for d in s.disks}
    for d in s.disks:
        what = []
        mounts, holders = d.all_mounts, d.all_holders
        for n in d.devnos:  # the disk's, then each partition's: a PV on sda1 is one on sda
            part = "" if n == d.devno else next(
                f" (on {p.name})" for p in d.partitions if p.devno == n)
            pv = next((p for p in st.pvs.values() if p.devno == n), None)
            vg = st.vgs.get(pv.vg) if pv is not None and pv.vg else None
            if paths[d.lun] in will_release and not mounts and not holders:
                pass  # a step of this plan exports its VG (a handover): the logout is after
            elif vg is not None and vg.exported:
                pass  # a PV of an exported VG: no host uses it until one imports it
            elif pv is not None:
                what.append((f"an LVM PV of VG {pv.vg}" if pv.vg else "an LVM PV (in no VG)")
                            + part)
        what += [f"mounted at {m}" for m in mounts]
        what += [f"held by {h}" for h in holders]
        if what:
            uses.append(f"/dev/{d.name} (LUN {d.lun}) is {', '.join(what)}")
    return uses
