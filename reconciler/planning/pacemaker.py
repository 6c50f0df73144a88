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
  decides. Device names are resolved on this node at observation (``Pacemaker.devices``),
  any spelling; a name that does not resolve here and is no LV or DRBD name (UUID=,
  LABEL=, -U, a missing link) may be any device: every step that takes one is blocked.

A primitive whose attribute sets have rules or scores owns every value any set gives
(``PcmkResource.values``).
"""

from __future__ import annotations

from reconciler import actions, state
from reconciler.planning.partial import without_refused
from reconciler.spec import models
from reconciler.state.names import dm_name
from reconciler.state.pacemaker import FILESYSTEM, ISCSI_LU, LVM_ACTIVATE, LVM_LEGACY
from reconciler.state.taking import Effect

_FS_KIND = "nothing takes a device a Filesystem primitive mounts away"


def _by_name(path: str, st: state.HostState) -> str | None:
    """The one name of a device a name alone identifies, whether or not it exists now:
    /dev/mapper/VG-LV and /dev/VG/LV of an LV this node's LVM sees (or of its VG) as
    /dev/VG/LV, /dev/drbd/by-res/R[/0] and /dev/drbdN as /dev/drbdN; else None."""
    if path.startswith("/dev/mapper/"):
        name = path[len("/dev/mapper/"):]
        for vg in st.vgs.values():
            for lv in vg.lvs.values():
                if dm_name(vg.name, lv.name) == name:
                    return f"/dev/{vg.name}/{lv.name}"
        return None
    parts = path.split("/")
    if path.startswith("/dev/drbd/by-res/") and st.drbd is not None:
        res = st.drbd.resources.get(parts[4]) if len(parts) > 4 else None
        minor = getattr(res, "minor", None)
        return f"/dev/drbd{minor}" if minor is not None else None
    if len(parts) == 3 and parts[2].startswith("drbd") and parts[2][4:].isdigit():
        return path
    if len(parts) == 4 and parts[2] in st.vgs:
        return path
    return None


def _devno(path: str, st: state.HostState) -> tuple[int, int] | None:
    """The device number this node resolved ``path`` to: a spec path, a PV, or a device
    name of Pacemaker's primitives."""
    key = st.device_key(path)
    if not isinstance(key, str):
        return key  # type: ignore[return-value]
    return st.pacemaker.devices.get(path) if st.pacemaker is not None else None


def _keys(path: str, st: state.HostState) -> frozenset[object]:
    """What identifies the device at ``path``, in each way this node knows it: the path,
    its LV or DRBD name (/dev/VG/LV, /dev/drbdN), and the device number either resolves to.
    Two spellings are one device when they share a key."""
    name = _by_name(path, st)
    keys: set[object] = {path} | ({name} if name else set())
    for p in tuple(keys):
        devno = _devno(p, st)
        if devno is not None:
            keys.add(devno)
    return frozenset(keys)


def _same(st: state.HostState, a: str, b: str) -> bool:
    return a == b or bool(_keys(a, st) & _keys(b, st))


# file systems the Filesystem agent mounts from no block device (a network share, memory,
# a bind mount of a directory: fstype "none")
_NOT_BLOCK = frozenset(("nfs", "nfs4", "cifs", "smb3", "smbfs", "efs", "glusterfs", "ceph",
                        "cephfs", "tmpfs", "ramfs", "overlay", "overlayfs", "rozofs",
                        "lustre", "9p", "virtiofs", "none"))


def _no_block_device(r: state.PcmkResource, dev: str) -> bool:
    """A Filesystem primitive's ``device`` that names no block device: an NFS
    ``host:/path``, a CIFS ``//host/share``, or its every ``fstype`` one of ``_NOT_BLOCK``
    (``options`` with ``bind``: a directory)."""
    if r.agent != FILESYSTEM:
        return False
    if dev.startswith("//") or (":" in dev and not dev.startswith(("/", "-", "UUID=",
                                                                     "LABEL="))):
        return True
    types = r.values("fstype")
    return bool(types) and all(t in _NOT_BLOCK or t.startswith("fuse") for t in types) \
        or any("bind" in o.split(",") for o in r.values("options"))


def unresolved(pcmk: state.Pacemaker, st: state.HostState) -> list[tuple[state.PcmkResource, str]]:
    """Each (primitive, device name) this node cannot tell from any of its devices: not
    resolved to a device number here (UUID=, LABEL=, -U, a missing link, no such device)
    and not an LV or DRBD name, nor a network share or other mount of no block device.
    Any device here may be it."""
    out = []
    for r in pcmk.of(FILESYSTEM) + pcmk.of(ISCSI_LU):
        for dev in r.values("device" if r.agent == FILESYSTEM else "path"):
            if dev and pcmk.devices.get(dev) is None and _by_name(dev, st) is None \
                    and isinstance(st.device_key(dev), str) and not _no_block_device(r, dev):
                out.append((r, dev))
    return out


def _filesystem_on(pcmk: state.Pacemaker, st: state.HostState,
                   path: str) -> state.PcmkResource | None:
    return next((r for r in pcmk.of(FILESYSTEM)
                 if any(_same(st, d, path) for d in r.values("device"))), None)


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
                                  or not any(_same(st, dict(a.luns)[n], p)
                                             for p in r.values("path"))):
                return r, "the LUN's export"
        if a.delete:
            r = next((r for r in pcmk.of(ISCSI_LU) if r.gives("target_iqn", a.iqn)), None)
            if r is not None:
                return r, "the LUN's export"
        for d in a.exports:
            r = _lun_on(pcmk, st, d)
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
    return next((r for r in pcmk.of(ISCSI_LU)
                 if any(_same(st, p, path) for p in r.values("path"))), None)


def leave_to_pacemaker(steps: list[actions.Step], st: state.HostState
                       ) -> tuple[list[actions.Step], list[actions.Blocked]]:
    """The steps without those that would change what Pacemaker manages (and those ordered
    after them), each blocked, naming the primitive and what to do instead."""
    pcmk = st.pacemaker
    if pcmk is None or not pcmk.resources:
        return steps, []
    blocked: list[actions.Blocked] = []
    refused: set[str] = set()
    unknown = unresolved(pcmk, st)
    for s in steps:
        owned = _owner(s.action, pcmk, st)
        taken = [t.device for t in s.action.takes_devices() if t.effect is not Effect.COPIES]
        if owned is None and unknown and taken:
            r, dev = unknown[0]
            refused.add(s.key)
            names = ", ".join(f"{d!r} ({r.describe()})" for r, d in unknown)
            blocked.append(actions.Blocked(s.action.object, (
                f"Pacemaker names a device this node cannot resolve: {names}, from "
                f"{pcmk.source}: no device of that name exists here (the reconciler does not "
                f"look up UUID=, LABEL= or -U forms; a /dev/disk link may be missing), so it "
                f"may be {', '.join(taken)}, which this step takes ({s.action.describe()}); "
                f"the reconciler takes no device on this node while it cannot tell. Check "
                f"with blkid and ls -l /dev/disk/* which device {dev!r} is on the nodes that "
                f"may run {r.id}, and name it in the CIB by a path that exists on every "
                f"node that has it (its /dev/disk/by-id link); a device only other nodes "
                f"have, named so, still blocks here: the reconciler cannot tell it from its "
                f"own")))
            continue
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
        for name in r.values("vgname" if r.agent == LVM_ACTIVATE else "volgrpname"):
            vg = spec.vg.get(name)
            if vg is None:
                continue
            if r.agent == LVM_LEGACY or r.may_lack("lvname"):
                out.append(f"vg {name} (Pacemaker's: {r.describe()})")
            for lv in r.values("lvname") if r.agent == LVM_ACTIVATE else ():
                if lv in vg.lv:
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
    paths = [f"/dev/{v}/{lv}" for v, vg in spec.vg.items() for lv in vg.lv]
    paths += [n.device for res in spec.drbd.values() for n in res.nodes.values()]
    paths += [d for c in spec.clone.values() if node in c.nodes or "*" in c.nodes
              for d in (c.source, c.target, c.md)]
    ours: set[object] = {k for p in paths for k in _keys(p, st)}
    declared = {(w.target, w.portal) for w in spec.iscsi_session.values()
                if node in w.nodes or "*" in w.nodes}
    # a session's disks by device number (Pacemaker names them /dev/disk/by-path/...)
    ours |= {d.devno or f"/dev/{d.name}" for s in (
        st.iscsi.sessions if st.iscsi is not None else ())
        if (s.target, s.portal) in declared for d in s.disks}
    for r in pcmk.of(FILESYSTEM):
        for dev in r.values("device"):
            if _keys(dev, st) & ours:
                out.append(f"device {dev} (Pacemaker's: {r.describe()}, mounted at "
                           f"{r.params.get('directory', '?')})")
    exported = {t.iqn for t in spec.iscsi_target.values()}
    for r in pcmk.of(ISCSI_LU):
        if any(r.gives("target_iqn", t) for t in exported):
            continue  # listed with its target above
        for dev in r.values("path"):
            if _keys(dev, st) & ours:
                out.append(f"device {dev} (Pacemaker's: {r.describe()}, exported as LUN "
                           f"{r.params.get('lun', '?')} of {r.params.get('target_iqn', '?')})")
    return out
