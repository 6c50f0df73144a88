"""``HostState``: everything one observation of one host found, one field per subsystem.

Frozen, typed, built once per observation and never mutated. The parsers in ``adapters``
produce it; planning reads it; nothing writes to it. Mappings are plain dicts for speed (a
host with 10,000 LVs is built in one pass); treat them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.state.devices import BlockDevice, DiskProbe, FileSystem
from reconciler.state.lvm import Lv, Pollers, Pv, RaidImage, Vg, split_problems

if TYPE_CHECKING:  # only the fields' types: an LVM-only pass imports none of them (issue 22)
    from reconciler.state.drbd import DrbdHost
    from reconciler.state.iscsi import IscsiState
    from reconciler.state.lockd import Lockd
    from reconciler.state.md import Ledger, MdArray
    from reconciler.state.pacemaker import Pacemaker


@dataclass(frozen=True, slots=True)
class HostState:
    host: str
    vgs: dict[str, Vg] = field(default_factory=dict)
    pvs: dict[str, Pv] = field(default_factory=dict)
    # The block-device identity (major, minor) of every device path the spec names, or None
    # when the path does not exist: spec paths are matched to PVs by identity, not spelling.
    devices: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    observed_at: float = 0.0
    md: dict[str, MdArray] = field(default_factory=dict)  # by kernel name, "md100"
    blockdevs: dict[str, BlockDevice] = field(default_factory=dict)  # by spec path
    ledger: Ledger | None = None  # None: not read (the caller asked for no md observation)
    # This host's LVM system ID (``lvm systemid``; "" = none configured). Asked only when
    # some VG carries a system ID; None = not asked.
    lvm_system_id: str | None = None
    # Who polls pvmoves: read only while one is in flight; None when not read or unreadable.
    pollers: Pollers | None = None
    iscsi: IscsiState | None = None  # None: the spec declares no iSCSI table (not read)
    # lvmlockd's view on this node (shared VGs); None = not asked (no shared VG in the spec).
    lockd: "Lockd | None" = None
    drbd: DrbdHost | None = None  # None: no DRBD resource declared
    # Pacemaker's configuration and status (issue 20): None when no CIB exists on this host
    # (Pacemaker never configured here) or nothing declared could be Pacemaker's.
    pacemaker: Pacemaker | None = None
    # VG names lvm reported for two VGs (a local one and a foreign one, with --foreign):
    # name -> the system IDs of each ("" = none). ``vgs`` holds one of them only.
    vg_names_twice: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Spec PV devices that are not PVs yet, as wipefs saw them (by spec path); a device not
    # here was not probed (it is a PV, it does not exist, or nothing declares it).
    probes: dict[str, DiskProbe] = field(default_factory=dict)
    # The file systems of active resize_fs LVs, by "vg/lv" (read only for those).
    filesystems: dict[str, FileSystem] = field(default_factory=dict)
    _by_devno: dict[tuple[int, int], Pv] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_devno", {pv.devno: pv for pv in self.pvs.values()
                                               if pv.devno is not None})

    def foreign_owner(self, vg: Vg) -> str | None:
        """The system ID of the other host that owns ``vg``, or None when this host may use
        it (no system ID on the VG, or this host's own). Unknown ownership counts as foreign."""
        if not vg.system_id or vg.system_id == self.lvm_system_id:
            return None
        return vg.system_id

    def device_key(self, path: str) -> object:
        """What identifies the device at ``path``: its device number when known (from the
        spec's paths, or a PV of that name), else the path itself."""
        devno = self.devices.get(path)
        if devno is None and path in self.pvs:
            devno = self.pvs[path].devno
        return devno if devno is not None else path

    def pv_for(self, device: str) -> Pv | None:
        """The PV that ``device`` (as a spec spells it) is, matched by device number first."""
        devno = self.devices.get(device)
        if devno is not None and devno in self._by_devno:
            return self._by_devno[devno]
        return self.pvs.get(device)


# -- a node's view of an LV in a shared VG (lvmlockd) ----------------------------------------

def activation_here(st: HostState, lv: Lv) -> str:
    """This node's activation of ``lv``: "ex", "sh" (lvmlockd's lock), "active" (active
    without an lvmlockd lock: a local VG) or "off"."""
    # lvmlockd's lock first: while this node's table differs from the metadata (another node
    # resized the LV) lv_attr's state and open bits read 'X' (lab), yet the LV is active.
    if st.lockd is not None and lv.uuid in st.lockd.locks:
        return st.lockd.locks[lv.uuid]
    if lv.attr.is_active or (lv.attr.raw[4:5] == "X" and st.lockd is not None
                             and st.lockd.dm_for(lv.vg, lv.name) is not None):
        return "active"
    return "off"


def open_state(st: HostState, lv: Lv) -> str | None:
    """Why ``lv`` must be taken as open on this node, or None: lv_attr's open bit, or 'X'
    (lvm cannot tell) when the dm device is mounted, held, or not seen."""
    if lv.attr.is_open:
        return "open (mounted or in use)"
    if lv.attr.raw[5:6] == "X":
        dm = st.lockd.dm_for(lv.vg, lv.name) if st.lockd is not None else None
        if dm is None or dm.in_use:
            return ("of unknown use (lv_attr's open bit is 'X'" +
                    (f"; {', '.join(dm.in_use)}" if dm is not None and dm.in_use else "") + ")")
    return None


# -- the rule for splitting a copy off for a handover (seed 004) --------------------------------

def image_on(lv: Lv, pvs: frozenset[str]) -> RaidImage | None:
    """The image of ``lv`` lying wholly on ``pvs`` (None if none does)."""
    return next((img for img in lv.images if img.pv_extents and set(img.pv_extents) <= pvs),
                None)


def handover_problem(lv: Lv, st: HostState, pvs: frozenset[str]) -> str | None:
    """Why the copy of ``lv`` on ``pvs`` cannot be split off for a handover now, or None."""
    copy = image_on(lv, pvs)
    if copy is None or len(lv.images) < 2:
        return (f"it has no complete copy of its own on {', '.join(sorted(pvs))} (it is "
                f"{','.join(lv.layout) or 'not a raid1'} on {', '.join(sorted(lv.pv_extents))})")
    others = [img for img in lv.images if img is not copy]
    if any(set(img.pv_extents) & pvs for img in others):
        return (f"another of its copies also uses {', '.join(sorted(pvs))}: splitting by PV "
                f"would take part of that copy")
    if lv.attr.is_open:
        return ("it is open (mounted or in use): a copy split off while it is written holds "
                "a half-written file system; stop its users and unmount it first (the seed "
                "stops the services), the next pass hands it over")
    problems = split_problems(lv, st.pvs)
    if problems:
        return "its copies are not all healthy: " + "; ".join(problems)
    if not lv.is_synced:
        pct = lv.sync_percent if lv.sync_percent is not None else lv.copy_percent
        return (f"its copies are not 100% in sync yet "
                f"({'?' if pct is None else f'{pct:.2f}'}%): only a complete copy leaves")
    return None
