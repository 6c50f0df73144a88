"""Observed lvmlockd state on one node: its lockspaces and LV locks, and the dm devices."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.state.names import dm_name
from reconciler.units import Size


@dataclass(frozen=True, slots=True)
class DmDevice:
    """A device-mapper device as sysfs shows it (``/sys/block/dm-N``), no process."""

    kernel: str  # "dm-1"
    name: str  # dm/name: "vgs-lv1" (a '-' inside a VG or LV name is doubled)
    uuid: str  # dm/uuid: "LVM-<vg uuid><lv uuid>" without dashes for an LV
    size: Size  # the table's length (size, 512-byte sectors, in bytes here)
    holders: tuple[str, ...] = ()
    mounts: tuple[str, ...] = ()

    @property
    def in_use(self) -> tuple[str, ...]:
        return (*(f"held by {h}" for h in self.holders), *(f"mounted on {m}" for m in self.mounts))


@dataclass(frozen=True, slots=True)
class Lockd:
    """What lvmlockd says on this node (``lvmlockctl --info``) and the dm devices.

    lvm2 2.03.16's report cannot tell a shared activation from an exclusive one, nor see
    other nodes (lab, tests/fixtures/outputs/lvmlockd/INDEX.md): the lock mode per LV is
    lvmlockd's. ``running`` False: lvmlockd could not be reached (``problem`` says how).
    """

    running: bool
    lockspaces: dict[str, str] = field(default_factory=dict)  # VG name -> lock manager
    locks: dict[str, str] = field(default_factory=dict)  # LV uuid (dashed) -> "ex" | "sh"
    dm: dict[str, DmDevice] = field(default_factory=dict)  # by dm name
    problem: str = ""
    # corosync's quorum (issue 20), read only when a DLM VG is declared here: None not asked;
    # else (quorate True/False/None unknown, corosync-quorumtool's words)
    quorum: tuple[bool | None, str] | None = None

    def lockspace_started(self, vg: str) -> bool:
        """lvmlockd's word only: the ``<vg>-lvmlock`` dm device is no proof (a lock-start
        with a host_id another live node holds leaves it there without a lockspace; lab)."""
        return vg in self.lockspaces

    def dm_for(self, vg: str, lv: str) -> DmDevice | None:
        return self.dm.get(dm_name(vg, lv))
