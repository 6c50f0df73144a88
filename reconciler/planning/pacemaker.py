"""What Pacemaker manages is left to it (issue 20). Pure.

Every subsystem plans as if Pacemaker were not there; this module then takes out of the
plan each step that would change what a Pacemaker primitive manages (CIB as observed,
``state.Pacemaker``), blocks it per object naming the primitive and what to do instead,
and lists each object of the spec a primitive manages as Pacemaker's (unmanaged). The DRBD
planner handles ``ocf:linbit:drbd`` itself (planning.drbd). Per agent:

* ``ocf:heartbeat:LVM-activate`` (``vgname``, ``lvname``; none: every LV of the VG), and
  the legacy ``ocf:heartbeat:LVM`` (``volgrpname``: always every LV of the VG): the
  LV's activation on every node (``lvchange -a``), and what deactivates the VG or hands it
  to another owner (``vgexport``, the takeover's ``vgimport``). In ``vg_access_mode =
  system_id`` the agent writes its own system ID at start, in ``tagging`` its tags: the
  server move (vgexport/vgimport) is Pacemaker's. Not Pacemaker's: the lockspace start
  (the agent runs ``vgchange --lockstart`` itself, which succeeds on a started lockspace,
  and stops it only when no LV of the VG is active; the reconciler never stops one), and
  what leaves activation as it is: ``lvextend``, ``pvmove`` (the LV stays active and usable
  through it), ``lvchange --refresh``, structure of other LVs.
* ``ocf:heartbeat:iSCSITarget`` (``iqn``): every change of that target (LUNs, portals,
  ACLs, CHAP, removal). ``ocf:heartbeat:iSCSILogicalUnit`` (``target_iqn``, ``lun``,
  ``path``): a change that adds, replaces or removes that LUN, or exports its ``path``
  elsewhere.
* ``ocf:heartbeat:Filesystem`` (``device``, resolved to one of our devices: an LV by
  either spelling or device number, a DRBD device, an md clone's source or target, an
  iSCSI session's disk), and the device an ``iSCSILogicalUnit`` exports (``path``):
  whatever takes the device away or hands it to another writer (a deactivation, a DRBD
  demotion, an export, an md clone's overwrite, a logout; the steps' ``takes_devices``),
  whether or not it is mounted or exported now: Pacemaker does it where and when it
  decides.
"""

from __future__ import annotations

from reconciler import actions, state
from reconciler.planning.partial import without_refused
from reconciler.spec import models
from reconciler.state.names import dm_name
from reconciler.state.pacemaker import FILESYSTEM, ISCSI_LU, LVM_ACTIVATE, LVM_LEGACY
from reconciler.state.taking import Effect

_FS_KIND = "nothing takes a device a Filesystem primitive mounts away"


def _canon(path: str, st: state.HostState) -> object:
    """One name per device: /dev/mapper/VG-LV as /dev/VG/LV, else its device number."""
    if path.startswith("/dev/mapper/"):
        name = path[len("/dev/mapper/"):]
        for vg in st.vgs.values():
            for lv in vg.lvs.values():
                if dm_name(vg.name, lv.name) == name:
                    return f"/dev/{vg.name}/{lv.name}"
    if path.startswith("/dev/drbd/by-res/") and st.drbd is not None:
        parts = path.split("/")
        res = st.drbd.resources.get(parts[4]) if len(parts) > 4 else None
        minor = getattr(res, "minor", None)
        if minor is not None:
            return f"/dev/drbd{minor}"
    key = st.device_key(path)
    return path if isinstance(key, str) else key


def _same(st: state.HostState, a: str, b: str) -> bool:
    return a == b or _canon(a, st) == _canon(b, st)


def _filesystem_on(pcmk: state.Pacemaker, st: state.HostState,
                   path: str) -> state.PcmkResource | None:
    return next((r for r in pcmk.of(FILESYSTEM)
                 if _same(st, r.params.get("device", ""), path)), None)


def _owner(a: actions.Action, pcmk: state.Pacemaker,
           st: state.HostState) -> tuple[state.PcmkResource, str] | None:
    """The primitive whose object step action ``a`` would change, with what it owns."""
    if isinstance(a, actions.SetActivation):
        r = pcmk.lv_owner(a.vg, a.lv)
        if r is not None:
            return r, "the LV's activation"
    if isinstance(a, actions.RemoveLv):
        r = pcmk.lv_owner(a.vg, a.lv)
        if r is not None:
            return r, "the LV itself (removing it leaves the primitive on nothing)"
    if isinstance(a, actions.RenameLv):
        r = pcmk.lv_owner(a.vg, a.old)
        if r is not None:
            return r, "the LV's name (the primitive names it)"
    if isinstance(a, (actions.ExportVg, actions.TakeOverVg)):
        r = pcmk.vg_owner(a.vg)
        if r is not None:
            return r, "the VG's activation and owner"
    if isinstance(a, actions.ApplyTarget):
        r = pcmk.target_owner(a.iqn)
        if r is not None:
            return r, "the target's export"
        for n in (*(n for n, _ in a.luns), *a.remove_luns):
            r = pcmk.lun_owner(a.iqn, n)
            if r is not None and (a.delete or n in a.remove_luns or dict(a.luns).get(n) is None
                                  or not _same(st, dict(a.luns)[n], r.params.get("path", ""))):
                return r, "the LUN's export"
        if a.delete:
            r = next((r for r in pcmk.of(ISCSI_LU)
                      if r.params.get("target_iqn") == a.iqn), None)
            if r is not None:
                return r, "the LUN's export"
        for d in a.exports:
            r = next((r for r in pcmk.of(ISCSI_LU)
                      if _same(st, r.params.get("path", ""), d)), None)
            if r is not None:
                return r, "the LUN's device"
    taken = [t.device for t in a.takes_devices() if t.effect is not Effect.COPIES]
    for d in taken:
        r = _filesystem_on(pcmk, st, d)
        if r is not None:
            return r, f"the device it mounts at {r.params.get('directory', '?')}"
        # a target's own LUNs and exports are ApplyTarget's branch above
        r = None if isinstance(a, actions.ApplyTarget) else _lun_on(pcmk, st, d)
        if r is not None:
            return r, (f"the device it exports as LUN {r.params.get('lun', '?')} of "
                       f"{r.params.get('target_iqn', '?')}")
    return None


def _lun_on(pcmk: state.Pacemaker, st: state.HostState,
            path: str) -> state.PcmkResource | None:
    return next((r for r in pcmk.of(ISCSI_LU) if _same(st, r.params.get("path", ""), path)),
                None)


def leave_to_pacemaker(steps: list[actions.Step], st: state.HostState
                       ) -> tuple[list[actions.Step], list[actions.Blocked]]:
    """The steps without those that would change what Pacemaker manages (and those ordered
    after them), each blocked, naming the primitive and what to do instead."""
    pcmk = st.pacemaker
    if pcmk is None or not pcmk.resources:
        return steps, []
    blocked: list[actions.Blocked] = []
    refused: set[str] = set()
    for s in steps:
        owned = _owner(s.action, pcmk, st)
        if owned is None:
            continue
        r, what = owned
        refused.add(s.key)
        blocked.append(actions.Blocked(s.action.object, (
            f"managed by Pacemaker ({r.describe()}, from {pcmk.source}; {pcmk.where(r)}): "
            f"the spec wants {s.action.describe()}, and the reconciler never changes what "
            f"Pacemaker manages ({what}): make the spec say what Pacemaker does, or move it "
            f"with Pacemaker (crm_resource --move {r.parent or r.id})")))
    return without_refused(steps, refused, blocked, "Pacemaker's")


def owned(spec: models.Spec, st: state.HostState, node: str) -> list[str]:
    """Each object of the spec on this node a Pacemaker primitive manages, as the plan's
    unmanaged list says it ("lv vg0/data (Pacemaker's: ocf:heartbeat:LVM-activate primitive
    lvm-data)")."""
    pcmk = st.pacemaker
    if pcmk is None:
        return []
    out: list[str] = []
    for r in pcmk.of(LVM_ACTIVATE) + pcmk.of(LVM_LEGACY):
        name = r.params.get("vgname" if r.agent == LVM_ACTIVATE else "volgrpname", "")
        vg = spec.vg.get(name)
        if vg is None:
            continue
        lv = r.params.get("lvname") if r.agent == LVM_ACTIVATE else None
        if lv is None:
            out.append(f"vg {name} (Pacemaker's: {r.describe()})")
        elif lv in vg.lv:
            out.append(f"lv {name}/{lv} (Pacemaker's: {r.describe()})")
    for name, t in sorted(spec.iscsi_target.items()):
        if node not in t.nodes and "*" not in t.nodes:
            continue
        r = pcmk.target_owner(t.iqn)
        if r is not None:
            out.append(f"iscsi target {name} (Pacemaker's: {r.describe()})")
        for n in sorted(t.lun, key=int):
            r = pcmk.lun_owner(t.iqn, int(n))
            if r is not None:
                out.append(f"iscsi target {name} LUN {n} (Pacemaker's: {r.describe()})")
    ours = [f"/dev/{v}/{lv}" for v, vg in spec.vg.items() for lv in vg.lv]
    ours += [n.device for res in spec.drbd.values() for n in res.nodes.values()]
    ours += [d for c in spec.clone.values() if node in c.nodes or "*" in c.nodes
             for d in (c.source, c.target, c.md)]
    declared = {(w.target, w.portal) for w in spec.iscsi_session.values()
                if node in w.nodes or "*" in w.nodes}
    ours += [f"/dev/{d.name}" for s in (st.iscsi.sessions if st.iscsi is not None else ())
             if (s.target, s.portal) in declared for d in s.disks]
    for r in pcmk.of(FILESYSTEM):
        dev = r.params.get("device", "")
        mine = next((p for p in ours if _same(st, dev, p)), None)
        if mine is not None:
            out.append(f"device {dev} (Pacemaker's: {r.describe()}, mounted at "
                       f"{r.params.get('directory', '?')})")
    exported = {t.iqn for t in spec.iscsi_target.values()}
    for r in pcmk.of(ISCSI_LU):
        dev = r.params.get("path", "")
        if r.params.get("target_iqn") in exported:
            continue  # listed with its target above
        if next((p for p in ours if _same(st, dev, p)), None) is not None:
            out.append(f"device {dev} (Pacemaker's: {r.describe()}, exported as LUN "
                       f"{r.params.get('lun', '?')} of {r.params.get('target_iqn', '?')})")
    return out
