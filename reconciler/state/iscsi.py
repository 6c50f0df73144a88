"""Observed iSCSI state: LIO targets (from configfs) and open-iscsi sessions (from sysfs).

Pure data, filled by ``adapters.iscsi`` without starting any process.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LioLun:
    index: int
    device: str  # the backstore's udev_path: the device path it was created over
    backstore: str  # "iblock_0/export0_0"


@dataclass(frozen=True, slots=True)
class LioAcl:
    initiator: str
    mapped_luns: tuple[int, ...] = ()
    chap_userid: str = ""
    session: bool = False  # the initiator has an active session (acls/<iqn>/info)


@dataclass(frozen=True, slots=True)
class LioTarget:
    iqn: str
    tpg: int = 1
    enabled: bool = False
    authentication: bool = False
    generate_node_acls: bool = False
    portals: tuple[str, ...] = ()
    luns: dict[int, LioLun] = field(default_factory=dict)
    acls: dict[str, LioAcl] = field(default_factory=dict)

    @property
    def sessions(self) -> tuple[str, ...]:
        """Initiators logged in now."""
        return tuple(sorted(i for i, a in self.acls.items() if a.session))


@dataclass(frozen=True, slots=True)
class IscsiDisk:
    lun: int
    name: str  # kernel name, "sda"
    devno: tuple[int, int] | None = None
    holders: tuple[str, ...] = ()  # /sys/block/<name>/holders (dm-3, md1…)
    mounts: tuple[str, ...] = ()  # where the disk itself is mounted


@dataclass(frozen=True, slots=True)
class IscsiSession:
    sid: str  # "session1"
    target: str
    portal: str  # "ip:port" of the connection
    state: str  # sysfs state: LOGGED_IN, FAILED, FREE
    disks: tuple[IscsiDisk, ...] = ()


@dataclass(frozen=True, slots=True)
class IscsiState:
    # None: configfs has no target tree (LIO not loaded): nothing exported, nothing to list
    targets: dict[str, LioTarget] | None = None
    backstores: dict[str, str] = field(default_factory=dict)  # "iblock_0/name" -> udev_path
    sessions: tuple[IscsiSession, ...] = ()
    initiator_name: str = ""  # /etc/iscsi/initiatorname.iscsi
    # Why this host cannot change LIO targets (the applier's rtslib-fb is not installed),
    # with what to install; empty when it can. Reading targets needs nothing of it.
    lio_applier: str = ""

    def session(self, portal: str, target: str) -> IscsiSession | None:
        return next((s for s in self.sessions if s.target == target and s.portal == portal), None)
