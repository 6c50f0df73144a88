"""The iSCSI model: LIO targets on one simulated host, open-iscsi sessions on another, joined
by a ``Fabric`` (the network between them).

A login makes the target's mapped LUNs appear on the initiator's host as SCSI disks
(``/dev/sdX``, major 8, with udev's by-path name as an alias) of the exported device's size;
a logout makes them disappear (a disk that is an LVM PV stays, failed: lvm then sees its PV
missing, as it does when a session drops under it). A session keeps the CHAP credentials it
logged in with and re-logs in with them after a link cut (``Fabric.blip``), as open-iscsi
does. A link that stays down (``Fabric.cut``, then ``Fabric.reconnect``) leaves the session
FAILED (FREE once its replacement_timeout has passed, as the kernel shows it) and the target
without it; iscsid's re-logins, with the session's own credentials, succeed once the link is
back and the target admits them (``Fabric.retry``), as the lab showed. While a session is
logged in, its disk holds what the exported device holds (one content: a write on either
side is seen on the other). What each side shows in configfs/sysfs
and what iscsiadm prints follow the lab recordings (tests/fixtures/outputs/iscsi/).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.errors import UnsupportedCommand

from .shared import Link, copy_lvm, view

if TYPE_CHECKING:
    from .machine import Machine


@dataclass
class Acl:
    userid: str = ""
    password: str = ""
    mapped: set[int] = field(default_factory=set)


@dataclass
class Target:
    iqn: str
    portals: list[str] = field(default_factory=list)
    enabled: bool = False
    auth: bool = False
    luns: dict[int, str] = field(default_factory=dict)  # LUN -> backstore name "iblock_N/so"
    acls: dict[str, Acl] = field(default_factory=dict)
    sessions: set[str] = field(default_factory=set)  # initiator names logged in


# open-iscsi's defaults (iscsid.conf as Debian ships it), by the spec's short names
DEFAULT_TIMEOUTS = {"replacement_timeout": 120, "noop_out_interval": 5, "noop_out_timeout": 5}


@dataclass
class Session:
    sid: int
    portal: str
    target: str
    disks: dict[int, str] = field(default_factory=dict)  # LUN -> /dev/sdX on this host
    # what the kernel holds: the record's timeouts at login (recovery_tmo can change live)
    timeouts: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_TIMEOUTS))
    # the CHAP credentials the session logged in with (iscsid keeps them, the kernel shows
    # them in sysfs): a re-login after a link cut uses these, never the node record's
    userid: str = ""
    password: str = ""
    # LOGGED_IN; FAILED once its connection is down and not re-established (a link cut,
    # a refused re-login: ``Fabric.cut``, ``Fabric.blip``)
    state: str = "LOGGED_IN"
    failed_at: float | None = None  # when it became FAILED (the host's clock)
    # iscsid re-synced it (restarted while the session was down: iscsi_sync_session sets
    # its notify_qtask, cleared only by a successful re-login): iscsid then refuses to log
    # it out (``IscsiSide.restart_iscsid``)
    synced: bool = False

    def sysfs_state(self, now: float) -> str:
        """What the kernel shows (``iscsi_session/sessionN/state``): a FAILED session turns
        FREE once its replacement_timeout (recovery_tmo) has passed, its disks then failing
        I/O (``session_recovery_timedout`` in scsi_transport_iscsi.c; the lab saw FREE 30 s
        after a refused re-login). iscsid goes on retrying either way."""
        if self.state == "FAILED" and self.failed_at is not None and \
                now - self.failed_at >= self.timeouts["replacement_timeout"]:
            return "FREE"
        return self.state


@dataclass
class IscsiSide:
    """One host's iSCSI state: what it exports and what it imports."""

    initiator: str = ""
    targets: dict[str, Target] = field(default_factory=dict)
    backstores: dict[str, str] = field(default_factory=dict)  # "iblock_0/name" -> device path
    lio_loaded: bool = False
    nodes: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # (portal, iqn)
    sessions: list[Session] = field(default_factory=list)
    next_sid: int = 1
    file_modes: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (mode, uid)
    fabric: Fabric | None = None

    def restart_iscsid(self) -> None:
        """iscsid restarts (an operator's try, socket activation): it re-syncs every session
        the kernel has; one that is down (FAILED, FREE) is then refused a logout until it
        has logged in again (open-iscsi's session_logout_task: exit 32 while it waits to
        reconnect, 9 while a login attempt is under way)."""
        for s in self.sessions:
            if s.state != "LOGGED_IN":
                s.synced = True


class Fabric:
    """The network: which host answers at which portal address."""

    def __init__(self) -> None:
        self.hosts: list[Machine] = []
        self.unreachable: set[str] = set()  # portal addresses cut off
        # the disks two hosts see while a session is logged in (shared.Link): LVM metadata
        # one writes there, the other reads (shared.copy_lvm)
        self.links: list[Link] = []

    def _peers(self, host: Machine) -> dict[Machine, dict[str, str]]:
        """For each host sharing a disk with ``host``: {path here: path there}."""
        out: dict[Machine, dict[str, str]] = {}
        for link in self.links:
            if link.initiator is host:
                out.setdefault(link.exporter, {})[link.disk] = link.device
            elif link.exporter is host:
                out.setdefault(link.initiator, {})[link.device] = link.disk
        return out

    def views(self, host: Machine) -> dict[Machine, str]:
        """The metadata ``host`` has on each peer's shared disks (before a command)."""
        return {peer: view(host, set(mapping)) for peer, mapping in self._peers(host).items()}

    def share(self, host: Machine, before: dict[Machine, str]) -> None:
        """After an LVM command on ``host``: each peer whose shared disks it wrote reads
        the new metadata."""
        for peer, mapping in self._peers(host).items():
            if any(host.model.devices[path].failed_at is not None for path in mapping):
                continue  # the link is down: nothing written reaches the disk
            if view(host, set(mapping)) != before.get(peer):
                copy_lvm(host, peer, mapping)

    def blip(self, portal: str) -> None:
        """The connection of every session to ``portal`` drops and open-iscsi re-logs in at
        once (a target restart, a TPG disabled and enabled, a switch blip), as the lab showed
        (tests/lab/test_lab_iscsi.py): with the credentials the session logged in with. A
        target that no longer admits them refuses every retry: the session is FAILED and,
        its replacement_timeout later, its disks fail their I/O (modelled at once)."""
        self._check()
        for h, side, s in self._sessions(portal):
            if s.state != "LOGGED_IN":
                raise UnsupportedCommand(f"a link cut of session {s.sid}, already "
                                         f"FAILED (iscsid's retries "
                                         f"of a refused re-login), is not modelled")
            if not self._admitted(side, s):
                self._fail(h, side, s)

    def cut(self, portal: str) -> None:
        """The link to ``portal`` goes down and stays down. Each session to it notices (its
        nop-out pings, ``noop_out_timeout``) and is FAILED, iscsid retrying its login; its
        disks fail their I/O (modelled at once: the kernel queues it for replacement_timeout
        first). The target drops the session too: LIO ends a session whose initiator stops
        answering its nop-ins once time2retain passes, and then shows none for that ACL
        (modelled at once: a pass of the exporting node here runs after those timeouts)."""
        self._check()
        self.unreachable.add(portal)
        for h, side, s in self._sessions(portal):
            if s.state == "LOGGED_IN":
                self._fail(h, side, s)

    def reconnect(self, portal: str) -> None:
        """The link to ``portal`` is back: iscsid's next retry reaches the target."""
        if portal not in self.unreachable:
            raise ValueError(f"the link to {portal} is not down")
        self.unreachable.discard(portal)
        self.retry()

    def retry(self) -> None:
        """iscsid's retries of each FAILED session's login (about every 2 s in the lab), with
        the credentials the session logged in with, never its node record's: where the
        target answers and admits them, the session is LOGGED_IN again and its disks work
        (the lab: within about 3 s of the old secret being back in the ACL); elsewhere it
        stays FAILED, retrying."""
        for h, side, s in self._sessions(None):
            if s.state == "LOGGED_IN" or s.portal in self.unreachable:
                continue
            if self._admitted(side, s):
                s.state, s.failed_at, s.synced = "LOGGED_IN", None, False
                where = self.at(s.portal)
                assert where is not None
                where[1].targets[s.target].sessions.add(side.initiator)
                for name in s.disks.values():
                    if h.model.device(name).failed_at is not None:
                        h.restore_device(name)

    def _check(self) -> None:
        """A session logged in to a portal made unreachable by hand (``unreachable.add``)
        would be silently alive: the tests cut a link with ``cut``."""
        for _, _, s in self._sessions(None):
            if s.state == "LOGGED_IN" and s.portal in self.unreachable:
                raise UnsupportedCommand(f"session {s.sid} is logged in to {s.portal}, which "
                                         f"was made unreachable without Fabric.cut: not "
                                         f"modelled")

    def _sessions(self, portal: str | None) -> list[tuple[Machine, IscsiSide, Session]]:
        return [(h, h.iscsi, s) for h in self.hosts for s in h.iscsi.sessions
                if portal is None or s.portal == portal]

    def _admitted(self, side: IscsiSide, s: Session) -> bool:
        """The target at ``s.portal`` answers and admits this session's own credentials."""
        where = self.at(s.portal)
        t = where[1].targets.get(s.target) if where else None
        acl = t.acls.get(side.initiator) if t is not None and t.enabled else None
        return acl is not None and (not t.auth or (s.userid, s.password)
                                    == (acl.userid, acl.password))

    def _fail(self, h: Machine, side: IscsiSide, s: Session) -> None:
        s.state, s.failed_at = "FAILED", h.clock.now()
        at = {s.portal, f"0.0.0.0:{s.portal.rsplit(':', 1)[1]}"}
        for host in self.hosts:
            t = host.iscsi.targets.get(s.target)
            if t is not None and at & set(t.portals):
                t.sessions.discard(side.initiator)
        for name in s.disks.values():
            h.fail_device(name)

    def join(self, host: Machine, initiator: str = "") -> IscsiSide:
        side = IscsiSide(initiator=initiator, fabric=self)
        host.iscsi = side
        self.hosts.append(host)
        return side

    def at(self, portal: str) -> tuple[Machine, IscsiSide] | None:
        """The host listening on ``portal`` (an enabled target has it, or 0.0.0.0:port)."""
        if portal in self.unreachable:
            return None
        port = portal.rsplit(":", 1)[1]
        for h in self.hosts:
            side = h.iscsi
            for t in side.targets.values():
                if portal in t.portals or f"0.0.0.0:{port}" in t.portals:
                    return h, side
        return None
