"""The one rule for steps that take a device away or write over it. Pure.

It lives in ``state`` because it is a question asked of the observed state alone ("who
uses this device here?") and two layers ask it: planning (to block a step early, so a dry
run says it) and the executor (to refuse it right before its first command); the actions
only declare what they take (``Take``). Here, below both, neither has to import the other's
helpers (planning never imports ``actions``' helpers: an import-linter contract).

A logout, a LUN or target removal, an export, ``create-md``, a deactivation, ``mdadm
--stop``, ``vgexport``, ``pvcreate``: each declares, in its action (``Action.takes_devices``),
the devices it takes and how (``Take``). The rule is then the same for all of them, and
is judged here (by planning and the executor), not in each action:

* a taken device must not be in use here: a PV of a VG active on this host, mounted, held
  (device-mapper, md), open by a process (or swap);
* uses that are the step's own are declared with the take (``Take.allow``): the VG that
  ``vgexport`` exports, the array an md member is read by, ...;
* planning refuses a step early (blocked, with the reason) where the observed state already
  shows a use, so a dry run says it (``planning`` calls ``observed_uses``);
* the executor checks again right before the step's first command, on the state it last
  observed plus ``Runner.openers`` (the /proc/*/fd scan, asked only then), and refuses the
  step naming the device and every user;
* the kernel's own claims that leave no trace in sysfs or /proc (a LIO backstore not
  observed, btrfs' members, ZFS, a process's own O_EXCL) are found then too, by an
  exclusive open (``Runner.claimed``):
  EBUSY that no use found explains is a use of its own, "claim". Only a use found that is
  itself a claim on the device, a partition of it or its disk (a mount, a holder: sysfs'
  holders are read for every taken device then; an active swap area) explains the EBUSY,
  whether it counts or not, since the kernel lets one holder claim a device at a time: an
  allowed use (vgexport's own VG's device-mapper maps on its PVs, told by their dm uuid,
  ``Take.maps_of``) is not refused again as a claim. The mounts are the kernel's then, not
  observation's: a mount gone since explains nothing. A PV of a VG active here explains
  nothing by itself (the VG may have no map on that PV), nor does an LV's open bit (a
  plain ``open()`` sets it) or a process's open. A claim is judged by ``Take.counts`` like
  any use that is not a process, so a copy's source is never refused for one.

"In use here" for a PV means a VG with an LV active on this host: the exporting host of a
seed-004 move sees the VG its initiator wrote on the exported disk (LVM reads its metadata
through the device), inactive here, and re-exporting that disk after a reboot is what lets
the initiator go on. A VG the spec declares on this node counts too, at planning (the
iSCSI planner's rule: it has the spec).

A copy's source (``Effect.COPIES``) is different: it is read, not taken, and only a process
writing it directly (around the copy) makes the copy wrong; its mounts and holders are the
clone planner's business. So only processes count for it.
"""

from __future__ import annotations

import enum
import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.state.host import HostState
from reconciler.state.lvm import Lv, Vg
from reconciler.state.names import dm_name

if TYPE_CHECKING:  # a DRBD resource is only met in a state that holds one (issue 22)
    from reconciler.state.drbd import DrbdResourceState


class Effect(enum.StrEnum):
    OVERWRITES = "overwrites"
    TAKES_AWAY = "takes away"
    EXPORTS = "exports"  # hands the device to another host, which may write it
    COPIES = "copies"  # reads it as the source of a copy: nothing may write it directly


@dataclass(frozen=True, slots=True)
class Use:
    """One observed user of a device. ``kind``: "pv" (a PV of VG ``who``, active here),
    "mount" (mounted at ``who``), "holder" (held by the kernel device ``who``), "open"
    (lv_attr's open bit: the kernel's open count, ``who`` the LV), "process" (``who`` as
    ``Runner.openers`` says it: "pid 42 (qemu-system-x86)", "swap"), "backstore" (this
    host's LIO backstore ``who``, "iblock_0/t1_lun0", over it: LIO's claim), "claim" (the kernel
    refuses an exclusive open and no other use explains it: ``Runner.claimed``, ``who``
    "kernel", or "process" when a process has it open too), "probe" (that probe could not
    tell: ``who`` its error)."""

    kind: str
    who: str
    # a holder's owner as the executor read it from sysfs right before the step (its
    # dm/uuid): the VG whose LV's device-mapper map it is, "" for none (another map, md,
    # DRBD, gone); None where nobody read it (the observed state has no holder's uuid)
    of: str | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.who}"

    def __str__(self) -> str:
        if self.kind == "pv":
            return f"a PV of VG {self.who} (active here)"
        if self.kind == "mount":
            return f"mounted at {self.who}"
        if self.kind == "holder":
            return f"held by {self.who}"
        if self.kind == "open":
            return f"open (lv_attr of {self.who}: mounted, held or open by a process)"
        if self.kind == "backstore":
            return (f"exported by LIO backstore {self.who} (targetcli ls "
                    f"/backstores/block)")
        if self.kind == "claim":
            by = ("the process it is open by, with an exclusive open of its own (mkfs, mdadm, "
                  "pvcreate...), or " if self.who == "process" else "")
            return ("claimed by the kernel: an exclusive open is refused (EBUSY) and no "
                    "mount, holder, swap area or LIO backstore found explains it; perhaps " +
                    by + "a member of a mounted btrfs (/proc/mounts names one device of it: "
                    "`btrfs filesystem show`), ZFS (`zpool status`), a LIO backstore not seen "
                    "(LIO is read where the spec declares a target here, or it was made since: "
                    "`targetcli ls`, /sys/kernel/config/target/core); lsblk shows none of these")
        if self.kind == "probe":
            hint = (": the probe needs root, and access to the device in its cgroup"
                    if self.who.startswith(("EACCES", "EPERM")) else "")
            return (f"perhaps claimed by the kernel: the exclusive-open probe could not tell "
                    f"({self.who}{hint})")
        return f"open by {self.who}"


@dataclass(frozen=True, slots=True)
class Take:
    """A device a step takes: ``device`` as the step spells it, what the step does to it,
    what it is to the step (for messages: "the target", "the array"), and the uses that
    are the step's own (``Use.key``s; one ending in ':' allows every use of that kind, one
    with a '*' those it matches as a shell pattern: "backstore:*/t1_lun*"; "lvmap:VG" the
    holders that are device-mapper maps of VG's LVs, ``maps_of``)."""

    device: str
    effect: Effect = Effect.OVERWRITES
    role: str = "the device"
    allow: tuple[str, ...] = ()

    @property
    def maps_of(self) -> str | None:
        """The VG whose LVs' device-mapper maps are this step's own holders ("lvmap:VG"):
        only those, told by their dm uuid (``lv_map_vg``), which only the executor reads
        (right before the step); planning, which cannot tell, leaves every holder to it."""
        return next((a[len("lvmap:"):] for a in self.allow if a.startswith("lvmap:")), None)

    def allows(self, use: Use) -> bool:
        vg = self.maps_of
        if use.kind == "holder" and vg is not None:
            return use.of is None or use.of == vg
        return any(use.key == a or (a.endswith(":") and use.key.startswith(a))
                   or ("*" in a and fnmatch.fnmatchcase(use.key, a)) for a in self.allow)

    def counts(self, use: Use) -> bool:
        """Whether ``use`` stops this step."""
        if self.allows(use):
            return False
        return use.kind == "process" or self.effect is not Effect.COPIES


def devno_of(st: HostState, path: str) -> tuple[int, int] | None:
    """The device number observation found for ``path`` (any of the places it records one)."""
    devno = st.devices.get(path)
    if devno is not None:
        return devno
    bd = st.blockdevs.get(path)
    if bd is not None and bd.devno is not None:
        return bd.devno
    pv = st.pvs.get(path)
    if pv is not None and pv.devno is not None:
        return pv.devno
    rs = _drbd_of(st, path)
    if rs is not None:
        return rs.devno
    disk = st.iscsi.disk_at(path) if st.iscsi is not None else None
    return disk.devno if disk is not None else None


def lv_map_vg(st: HostState, dm_uuid: str) -> str:
    """The VG (observed here) whose LV a device-mapper map of uuid ``dm_uuid`` is, or "":
    lvm2 sets an LV's to "LVM-", the VG's uuid and the LV's without dashes, with a suffix
    for its internal maps ("-real", "-cow", "-tpool"...). The VG's uuid is its identity (a
    dm name is only appearance: anyone may give one); hidden sub-LVs (a RAID image, a
    pvmove) are not in the observed state, so the VG's part is what is compared."""
    if not dm_uuid.startswith("LVM-"):
        return ""
    owners = {vg.name for vg in st.vgs.values() if vg.uuid
              and dm_uuid.startswith(prefix := "LVM-" + vg.uuid.replace("-", ""))
              and dm_uuid[len(prefix):].split("-")[0]}
    return owners.pop() if len(owners) == 1 else ""  # two: no identity (a cloned VG's)


def family(st: HostState, path: str) -> tuple[tuple[tuple[int, int], str], ...]:
    """The device numbers that taking ``path`` takes, each with how to name it in a use
    ("" for the device itself, " (on sda1)" for a partition): the device's own and, for an
    iSCSI session's disk, each of its partitions' (a logout takes them all away)."""
    devno = devno_of(st, path)
    if devno is None:
        return ()
    out = [(devno, "")]
    for s in st.iscsi.sessions if st.iscsi is not None else ():
        for d in s.disks:
            if d.devno == devno:
                out += [(p.devno, f" (on {p.name})") for p in d.partitions
                        if p.devno is not None]
    return tuple(dict.fromkeys(out))


def _drbd_of(st: HostState, path: str) -> DrbdResourceState | None:
    """The DRBD resource whose device ``path`` is (/dev/drbdN), as observed."""
    if st.drbd is None or not path.startswith("/dev/drbd"):
        return None
    return next((rs for rs in st.drbd.resources.values() if rs.device == path), None)


def _active_here(st: HostState, vg: Vg) -> bool:
    locks = st.lockd.locks if st.lockd is not None else {}
    return any(lv.attr.is_active or lv.uuid in locks for lv in vg.lvs.values())


def observed_uses(st: HostState, path: str) -> tuple[Use, ...]:
    """Who uses ``path`` here, as far as the observed state tells (no process: those are
    ``Runner.openers``' answer): a PV of a VG active here, mounts and holders wherever
    observation recorded them (a clone's or LUN's device, an iSCSI session's disk, an md
    array, an LV's device-mapper device, a DRBD device), an md array it is a member of, an
    LV's open bit."""
    out: list[Use] = []
    devno = devno_of(st, path)
    pv = st.pv_for(path)
    if pv is None and devno is not None:
        pv = next((p for p in st.pvs.values() if p.devno == devno), None)
    pvs = [pv] if pv is not None else []
    for n, _ in family(st, path)[1:]:  # a PV on a partition of a session's disk
        pvs += [p for p in st.pvs.values() if p.devno == n]
    for pv in pvs:
        vg = st.vgs.get(pv.vg) if pv.vg else None
        if vg is not None and not vg.exported and _active_here(st, vg) \
                and Use("pv", vg.name) not in out:
            out.append(Use("pv", vg.name))
    mounts: list[str] = []
    holders: list[str] = []
    for bd in st.blockdevs.values():
        if bd.path == path or (devno is not None and bd.devno == devno):
            mounts += bd.mounts
            holders += bd.holders
    if st.iscsi is not None and devno is not None:
        for s in st.iscsi.sessions:
            for d in s.disks:
                if d.devno == devno:  # with its partitions' ("dm-3 (on sda1)")
                    mounts += d.all_mounts
                    holders += d.all_holders
    rs = _drbd_of(st, path)
    if rs is not None:  # a DRBD device (a demotion takes it away): its mounts and holders
        mounts += rs.mounts
        holders += rs.holders
    name = path.rsplit("/", 1)[-1]
    arr = st.md.get(name) if path.startswith("/dev/md") else None
    if arr is not None:
        mounts += arr.mounts
        holders += arr.holders
    for a in st.md.values():
        if devno is not None and a.member(devno) is not None:
            holders.append(a.name)
    lv = _lv_of(st, path)
    if st.lockd is not None:
        dm = st.lockd.dm.get(_dm_name_of(path, lv))
        if dm is not None:
            mounts += dm.mounts
            holders += dm.holders
    out += [Use("mount", m) for m in dict.fromkeys(mounts)]
    # "dm-3 (on vdb1)": a partition's holder; md's own listing says "md100"
    out += [Use("holder", h) for h in dict.fromkeys(holders)]
    if lv is not None and lv.attr.is_open:
        out.append(Use("open", lv.key))
    out += [Use("backstore", b) for b in _backstores(st, path)]
    return tuple(out)


def _backstores(st: HostState, path: str) -> list[str]:
    """This host's LIO backstores ("iblock_0/t1_lun0") over ``path``, a partition of it or its
    disk (by their udev_path, resolved to the device numbers observation found): each claims
    its device, exported or not (a partial apply's leftover)."""
    if st.iscsi is None or not st.iscsi.backstores:
        return []
    numbers = {n for n, _ in family(st, path)}
    return [name for name, dev in st.iscsi.backstores.items()
            if dev and (dev == path or devno_of(st, dev) in numbers)]


def _lv_of(st: HostState, path: str) -> Lv | None:
    parts = path.split("/")
    if len(parts) != 4 or parts[:2] != ["", "dev"] or parts[2] == "mapper":
        return None
    vg = st.vgs.get(parts[2])
    return vg.lvs.get(parts[3]) if vg is not None else None


def _dm_name_of(path: str, lv: Lv | None) -> str:
    if lv is not None:
        return dm_name(lv.vg, lv.name)
    if path.startswith("/dev/mapper/"):
        return path[len("/dev/mapper/"):]
    return ""


def refusal(take: Take, uses: list[Use] | tuple[Use, ...]) -> str:
    """The words for one taken device in use: "the target /dev/vdb is a PV of VG vg0
    (active here), open by pid 42 (qemu)" (processes last, in one list)."""
    procs = [u.who for u in uses if u.kind == "process"]
    words = [str(u) for u in uses if u.kind != "process"]
    if procs:
        words.append("open by " + ", ".join(procs))
    return f"{take.role} {take.device} is {', '.join(words)}"


def blocking(take: Take, st: HostState) -> list[Use]:
    """The observed uses (no process) that stop ``take``."""
    return [u for u in observed_uses(st, take.device) if take.counts(u)]
