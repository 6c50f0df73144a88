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
    # the CHAP credentials LIO holds, as a fingerprint (``adapters.iscsi.fingerprint``:
    # keyed per process, never the secret); "" for none (no CHAP on the ACL); None when not
    # read (a capture does not)
    chap: str | None = None


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


def by_path(portal: str, target: str, lun: int) -> str:
    """udev's by-path name of LUN ``lun`` of ``target`` logged in through ``portal``
    (60-persistent-storage.rules: ``ip-$addr:$port-iscsi-$target-lun-$lun``)."""
    return f"/dev/disk/by-path/ip-{portal}-iscsi-{target}-lun-{lun}"


@dataclass(frozen=True, slots=True)
class IscsiPartition:
    """A partition of a session's disk (/sys/block/<disk>/<name>/): what uses it uses the
    disk (a logout takes it away with the disk)."""

    name: str  # kernel name, "sda1"
    devno: tuple[int, int] | None = None
    holders: tuple[str, ...] = ()  # /sys/block/<disk>/<name>/holders
    mounts: tuple[str, ...] = ()  # where the partition is mounted


@dataclass(frozen=True, slots=True)
class IscsiDisk:
    lun: int
    name: str  # kernel name, "sda"
    devno: tuple[int, int] | None = None
    holders: tuple[str, ...] = ()  # /sys/block/<name>/holders (dm-3, md1…)
    mounts: tuple[str, ...] = ()  # where the disk itself is mounted
    partitions: tuple[IscsiPartition, ...] = ()

    @property
    def devnos(self) -> tuple[tuple[int, int], ...]:
        """The device numbers of the disk and of each of its partitions (known ones)."""
        return tuple(n for n in (self.devno, *(p.devno for p in self.partitions))
                     if n is not None)

    @property
    def all_holders(self) -> tuple[str, ...]:
        """The disk's holders and its partitions' ("dm-3 (on sda1)")."""
        return self.holders + tuple(f"{h} (on {p.name})" for p in self.partitions
                                    for h in p.holders)

    @property
    def all_mounts(self) -> tuple[str, ...]:
        """Where the disk and its partitions are mounted ("/srv (on sda1)")."""
        return self.mounts + tuple(f"{m} (on {p.name})" for p in self.partitions
                                   for m in p.mounts)


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """What open-iscsi's node record of a session holds (its root-only file), for what the
    reconciler manages of it: CHAP as a fingerprint, and the link-cut timeouts."""

    chap: str = ""  # fingerprint of username and password; "" when the record has no CHAP
    timeouts: dict[str, int] = field(default_factory=dict)  # short name -> seconds


@dataclass(frozen=True, slots=True)
class IscsiSession:
    sid: str  # "session1"
    target: str
    portal: str  # "ip:port" of the connection
    state: str  # sysfs state: LOGGED_IN, FAILED, FREE
    disks: tuple[IscsiDisk, ...] = ()
    # the live session's timeouts from sysfs (recovery_tmo; the connection's recv_tmo and
    # ping_tmo), by the node record's short names; a value the kernel does not show is absent
    timeouts: dict[str, int] = field(default_factory=dict)
    record: NodeRecord | None = None  # None: not read (a capture does not; or no record)
    # the CHAP credentials the session logged in with (sysfs username/password, root-only),
    # as a fingerprint: open-iscsi re-logs in after a link cut with these, not the record's;
    # "" when the session has no CHAP; None when not read (a capture does not) or unreadable
    # (the kernel answers them only to CAP_SYS_ADMIN: EACCES otherwise)
    chap: str | None = None

    @property
    def live_chap(self) -> str | None:
        """``chap`` as far as it tells the credentials the session re-logs in with: "" (no
        CHAP, "(null)") only for a session that completed a login (it has disks, or it is
        FAILED); the kernel shows a session whose first login is still under way FREE with
        "(null)" too (iscsid keeps it across its initial login retries): unknown then."""
        if self.chap == "" and not self.disks and self.state != "FAILED":
            return None
        return self.chap

    @property
    def logged_in(self) -> bool:
        """The kernel shows the session LOGGED_IN: not FAILED (its connection down, iscsid
        retrying the login) nor FREE (the same, its replacement_timeout passed)."""
        return self.state == "LOGGED_IN"


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
    # the CHAP files the spec names, by path: a fingerprint of their credentials, "" when
    # unreadable or invalid (the applier then says why, at apply); not read by a capture
    chap_files: dict[str, str] = field(default_factory=dict)

    def chap_differs(self, observed: str | None, chap_file: str | None) -> bool:
        """The credentials ``observed`` (a fingerprint; "" for no CHAP, None for unknown) are
        not those of ``chap_file`` now: the file was rotated, or CHAP was introduced where
        none was used. Unknown on either side (not read, unreadable) is not a difference."""
        if not chap_file:
            return False
        want = self.chap_files.get(chap_file, "")
        return bool(want) and observed is not None and observed != want

    def disk_at(self, path: str) -> IscsiDisk | None:
        """The session disk whose by-path name (or /dev/<kernel name>) is ``path``."""
        for s in self.sessions:
            for d in s.disks:
                if path in (by_path(s.portal, s.target, d.lun), f"/dev/{d.name}"):
                    return d
        return None

    def session(self, portal: str, target: str) -> IscsiSession | None:
        return next((s for s in self.sessions if s.target == target and s.portal == portal), None)
