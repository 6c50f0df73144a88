"""``HostState``: everything one observation of one host found, one field per subsystem.

Frozen, typed, built once per observation and never mutated. The parsers in ``adapters``
produce it; planning reads it; nothing writes to it. Mappings are plain dicts for speed (a
host with 10,000 LVs is built in one pass); treat them as read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.state.devices import BlockDevice, DiskProbe, FileSystem
from reconciler.state.drbd import DrbdHost
from reconciler.state.iscsi import IscsiState
from reconciler.state.lockd import Lockd
from reconciler.state.lvm import Pollers, Pv, Vg
from reconciler.state.md import Ledger, MdArray


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
