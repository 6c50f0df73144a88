"""LVM metadata on a disk two simulated hosts see: an iSCSI LUN and the device behind it.

Each simulated host keeps its own LVM model, but LVM keeps its metadata on the disks: what
one host writes onto an iSCSI session disk is what the exporting host reads on the device
behind the LUN, and the reverse. ``Fabric`` (iscsi_model) records each such pair while a
session is logged in (``Link``), and after every LVM command that writes metadata on one
side, ``copy_lvm`` rebuilds the other side's view of the shared disk from the writer's:

* every VG with a PV on the shared disk, as the writer has it (names, UUIDs, extents,
  exported flag, system ID, tags); its PVs on disks the reader cannot see are missing there
  ("[unknown]", last written to the writer's name for them), as lvm reports a VG whose
  other disks are elsewhere;
* nothing active: activation is per host, and the reader has activated none of them;
* an orphan PV label on the shared disk, or none.

The device's data (md5) is not shared: only the LVM metadata, and the content of an LV
that lies wholly on the shared disks (``LV.content``, its file system UUID). What the model cannot say
is refused (``UnsupportedCommand``): a VG of the reader's that spans the shared disk and
one of its own, an LV the reader has active in a VG the writer changed (two hosts writing
one VG), two different VGs of one name. A pvmove in a shared VG is seen, polled by nobody
on the reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.errors import UnsupportedCommand

from .blockdev import Device
from .model import LV, PV, VG, Seg

if TYPE_CHECKING:
    from .machine import Machine


@dataclass(frozen=True)
class Link:
    """One disk seen by two hosts: ``initiator``'s session disk is ``exporter``'s device."""

    initiator: Machine
    disk: str  # canonical path on the initiator (/dev/sdX)
    exporter: Machine
    device: str  # canonical path on the exporter (the LIO backstore's device)


def _touches(vg: VG, paths: set[str]) -> bool:
    return any(not pv.missing and pv.device.path in paths for pv in vg.pvs)


def copy_lvm(src: Machine, dst: Machine, mapping: dict[str, str]) -> None:
    """Make ``dst``'s view of the disks in ``mapping`` (src path -> dst path) what ``src``
    wrote on them."""
    src_model, dst_model = src.model, dst.model
    dst_paths = set(mapping.values())
    # 1. forget what dst knew from the shared disks
    for vg in [vg for vg in dst_model.vgs.values() if _touches(vg, dst_paths)]:
        local = [pv.name for pv in vg.pvs if not pv.missing and pv.device.path not in dst_paths
                 and pv.device.path in dst_model.devices]
        if local:
            raise UnsupportedCommand(
                f"VG {vg.name} on {dst.name} spans a shared disk and its own {local}: "
                f"not modelled")
        if any(lv.active for lv in vg.lvs.values() if lv.parent is None):
            raise UnsupportedCommand(
                f"{src.name} changed VG metadata on a disk where {dst.name} has VG {vg.name} "
                f"active (two hosts writing one VG): not modelled")
        del dst_model.vgs[vg.name]
    for path in dst_paths:
        dst_model.pvs.pop(path, None)
    # 2. what src has on them
    for src_path, dst_path in mapping.items():
        pv = src_model.pvs.get(src_path)
        if pv is not None and pv.vg is None:
            dst_model.pvs[dst_path] = PV(dst_model.devices[dst_path], pv.uuid)
    for vg in [vg for vg in src_model.vgs.values() if _touches(vg, set(mapping))]:
        if vg.name in dst_model.vgs:
            raise UnsupportedCommand(f"two VGs named {vg.name} ({src.name}'s on a shared disk "
                                     f"and {dst.name}'s own): not modelled")
        dst_model.vgs[vg.name] = _clone_vg(vg, dst, mapping)


def _clone_vg(vg: VG, dst: Machine, mapping: dict[str, str]) -> VG:
    model = dst.model
    new = VG(vg.name, vg.uuid, vg.extent_size, vg.lock_type)
    new.exported, new.system_id = vg.exported, vg.system_id
    pvs: dict[PV, PV] = {}
    for pv in vg.pvs:
        target = None if pv.missing else mapping.get(pv.device.path)
        if target is not None:
            copy = PV(model.devices[target], pv.uuid)
            model.pvs[target] = copy
        else:  # a disk only the writer sees (or nobody): known from the metadata only
            ghost = Device(f"[{pv.uuid}]", pv.device.size, -1, -1, ())
            ghost.failed_at = 0.0
            copy = PV(ghost, pv.uuid)
            copy.hint = pv.hint
        copy.vg, copy.pe_count = new, pv.pe_count
        new.pvs.append(copy)
        pvs[pv] = copy
    lvs: dict[LV, LV] = {}
    for lv in vg.lvs.values():
        copy = LV(new, lv.name, lv.uuid, lv.kind, lv.visible)
        copy.tags, copy.locked, copy.moved = list(lv.tags), lv.locked, lv.moved
        copy.recovering, copy.synced = set(lv.recovering), lv.synced
        copy.active = False
        copy.fs, copy.fs_size, copy.fs_made = lv.fs, lv.fs_size, lv.fs_made
        copy.autoactivation = lv.autoactivation  # a metadata flag
        if all(not pv.missing and pv.device.path in mapping for pv in lv.pvs()):
            # wholly on the shared disks: what its extents hold is there for the reader too
            copy.fs_uuid, copy.content = lv.fs_uuid, dict(lv.content)
        lvs[lv] = copy
        new.lvs[lv.name] = copy
    for lv, copy in lvs.items():
        copy.parent = lvs.get(lv.parent) if lv.parent is not None else None
        copy.images = [lvs[i] for i in lv.images]
        copy.metas = [lvs[m] for m in lv.metas]
        copy.segments = [Seg(seg.le, seg.length, seg.segtype,
                             [(pvs[t] if isinstance(t, PV) else lvs[t], start)
                              for t, start in seg.areas]) for seg in lv.segments]
        for seg in copy.segments:
            for target, start in seg.areas:
                if isinstance(target, PV):
                    target.take(start, seg.length, copy)
        if lv.move_src is not None:  # a pvmove: nobody polls it on this host
            copy.move_src = pvs[lv.move_src]
    for lv, copy in lvs.items():
        copy.users = [(lvs[user], lvs[user].segments[user.segments.index(part)])
                      for user, part in lv.users]
    return new


def view(host: Machine, paths: set[str]) -> str:
    """What the LVM metadata on ``paths`` says, as text (to tell whether a command wrote
    any): the VGs with a PV there and the orphan labels there."""
    parts = []
    for vg in sorted(host.model.vgs.values(), key=lambda v: v.name):
        if not _touches(vg, paths):
            continue
        parts.append(repr((vg.name, vg.uuid, vg.exported, vg.system_id,
                           [(pv.uuid, pv.pe_count, pv.hint) for pv in vg.pvs])))
        for lv in vg.lvs.values():
            parts.append(repr((lv.name, lv.uuid, lv.kind, tuple(lv.tags),
                               [(s.le, s.length, s.segtype,
                                 [(t.uuid, st) for t, st in s.areas]) for s in lv.segments])))
    for path in sorted(paths):
        pv = host.model.pvs.get(path)
        if pv is not None and pv.vg is None:
            parts.append(f"orphan {path} {pv.uuid}")
    return "\n".join(parts)


def forget_disk(host: Machine, path: str) -> bool:
    """The disk at ``path`` left ``host`` (iSCSI logout): a VG that has no other present PV
    leaves with it, as lvm no longer finds its metadata anywhere. False: a VG still has
    other disks here (its PV on ``path`` becomes missing instead)."""
    model = host.model
    pv = model.pvs.get(path)
    if pv is None:
        return True
    vg = pv.vg
    if vg is not None and any(not p.missing and p is not pv for p in vg.pvs):
        return False
    if vg is not None:
        if any(lv.active for lv in vg.lvs.values() if lv.parent is None):
            raise UnsupportedCommand(f"logout of {path} under active LVs of {vg.name}: "
                                     f"not modelled")
        del model.vgs[vg.name]
    del model.pvs[path]
    return True
