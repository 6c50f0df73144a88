"""DRBD 8.4 for simulated hosts: resources on two nodes joined by a simulated link.

``DrbdNet`` joins ``SimulatedHost``s (each gets a ``DrbdNode`` as ``host.drbd``) and owns the
links between them: ``cut``/``restore`` a link, ``write`` on a node (a workload writing to
/dev/drbdN), ``fail_disk`` (qemu's drive_del: the node goes Diskless). Resyncs move with the
virtual clock at the resource's resync-rate (KiB/s).

What a handshake decides, as DRBD 8.4 does it and as the lab recorded it
(tests/fixtures/outputs/drbd/): two fresh Inconsistent disks stay Connected
Secondary/Secondary Inconsistent/Inconsistent until one node is forced primary; an UpToDate
disk syncs to an Inconsistent one; when only one side wrote since they parted, it syncs to
the other; when both wrote (a split brain) both drop to StandAlone, the ``split-brain``
handler runs on both, and nothing is synced, unless one side connected with
``--discard-my-data``: that side becomes the sync target. Data is a fingerprint per node so
tests can check that the right side's data won.

Generation identifiers (8.4's four UUIDs: current, bitmap, two history), as drbdmeta and
drbdsetup ``get-gi`` show them: ``create-md`` writes the "just created" set (current 4, the
rest 0, as the lab's dump-md shows); a node gets a new current UUID when it is forced primary,
promoted while not connected, or loses its peer while primary, and the current UUID it had
moves to the bitmap slot (kept while already set, so both sides of a split brain keep the one
they parted from); a finished resync hands the source's current UUID to the target and moves
the bitmap UUIDs into history. What DRBD does beyond that (the lowest bit as a flag, the
resync handshake's 30-odd rules) is not modelled: the handshake decides by the fingerprints.

The data area is the backing disk's: ``create-md`` (with ``--force`` too) keeps it (internal
metadata lives at the end), so a file system made on /dev/drbdN is what wipefs finds at 0x438
of the backing disk (``DrbdNet.mkfs``), next to the drbd signature. ``DrbdNode.reboot`` is what
a reboot leaves: every resource down with its metadata on disk, the module unloaded.

/proc/drbd is rendered in 8.4's format. The sync percent is the kernel's coarse one: the lab
showed 12.5% at 7.5% and 8.8% done and 25.0% at 20.3% and 21.4% done, i.e. rounded up to
eighths; the simulator does the same.

Resync speed: the declared resync-rate (else a fast default). With c-plan-ahead 0 that is
what DRBD does; with its dynamic controller on (c-plan-ahead unset or above 0) the real
speed adapts, which the simulator does not model: tests that assert a speed declare 0.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.errors import UnsupportedCommand

if TYPE_CHECKING:
    from .clock import SimClock
    from .machine import Machine

VERSION = "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: F73C670A7EC572DB9CF3E5B \n"
CONNECTED = {"Connected", "SyncSource", "SyncTarget"}


@dataclass
class NodeConf:
    host: str
    minor: int
    disk: str
    address: str  # ip:port


@dataclass
class ResConf:
    name: str
    protocol: str = "C"
    rate_kib: int = 250 * 1024  # unset: DRBD's dynamic controller; fast enough here
    two_primaries: bool = False
    split_brain_handler: str | None = None
    after_sb: dict[int, str] = field(default_factory=dict)  # primaries -> policy
    nodes: dict[str, NodeConf] = field(default_factory=dict)


_KNOWN_OPTS = {"connect-int", "ping-int", "ping-timeout", "c-plan-ahead", "resync-rate",
               "allow-two-primaries", "protocol", "after-sb-0pri", "after-sb-1pri", "after-sb-2pri"}


def parse_config(text: str) -> dict[str, ResConf]:
    """The resource files the reconciler and the lab write (8.4 syntax). Anything else
    raises UnsupportedCommand: the simulator does not guess at drbd.conf."""
    out: dict[str, ResConf] = {}
    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    for m in re.finditer(r"resource\s+(\S+)\s*\{(.*?)\n\}", body, re.S):
        rc = ResConf(m.group(1))
        inner = m.group(2)
        for on in re.finditer(r"on\s+(\S+)\s*\{([^}]*)\}", inner):
            b = on.group(2)
            dev = re.search(r"device\s+/dev/drbd(\d+)(?:\s+minor\s+(\d+))?;", b)
            disk = re.search(r"disk\s+(\S+);", b)
            addr = re.search(r"address\s+(?:ipv4\s+)?([0-9.]+:\d+);", b)
            if not (dev and disk and addr and "meta-disk internal;" in b):
                raise UnsupportedCommand(f"drbd config 'on {on.group(1)}' not modelled: {b!r}")
            rc.nodes[on.group(1)] = NodeConf(on.group(1), int(dev.group(1)), disk.group(1), addr.group(1))
        rest = re.sub(r"on\s+\S+\s*\{[^}]*\}", "", inner)
        sb = re.search(r'split-brain\s+"([^"]*)";', rest)
        if sb:
            rc.split_brain_handler = sb.group(1)
            rest = rest.replace(sb.group(0), "")
        for key, value in re.findall(r"([a-z][a-z0-9-]*)\s+([^;{}\s]+);", rest):
            if key not in _KNOWN_OPTS:
                raise UnsupportedCommand(f"drbd option {key} not modelled")
            if key == "protocol":
                rc.protocol = value
            elif key == "resync-rate":
                n = int(value.rstrip("kKmM"))
                rc.rate_kib = n * 1024 if value[-1] in "mM" else n
            elif key == "allow-two-primaries":
                rc.two_primaries = value == "yes"
            elif key.startswith("after-sb-"):
                rc.after_sb[int(key[len("after-sb-")])] = value
        if len(rc.nodes) != 2:
            raise UnsupportedCommand(f"resource {rc.name}: {len(rc.nodes)} 'on' sections; 8.4 pairs two")
        out[rc.name] = rc
    return out


JUST_CREATED = (4, 0, 0, 0)  # drbdmeta create-md's generation identifiers (lab: dump-md)


@dataclass
class Meta:
    """DRBD metadata on one backing disk, as last written (down, or create-md)."""

    disk: str  # disk state recorded: Inconsistent, UpToDate, Outdated...
    data: str  # fingerprint of the data area
    uuids: tuple[int, int, int, int] = JUST_CREATED
    # what changed while disconnected (DRBD's bitmap, and a current UUID of its own): kept
    # over a down/up or a reboot, so the next handshake still sees a split brain
    dirty: bool = False
    oos_kib: int = 0


def gi_text(uuids) -> str:
    """get-gi's line: the four UUIDs, then flags (not modelled: printed as 8.4 shows a
    consistent, connected-once disk)."""
    return ":".join(f"{u:016X}" for u in uuids) + ":1:1:0:0:0:0:0\n"


@dataclass
class Res:
    """A resource configured in one node's kernel."""

    conf: ResConf
    minor: int
    disk_path: str | None
    disk: str = "Inconsistent"  # local disk state
    role: str = "Secondary"
    cstate: str = "StandAlone"
    data: str = ""  # fingerprint of this node's copy
    dirty: bool = False  # written while not connected
    discard: bool = False  # connecting with --discard-my-data
    uuids: list[int] = field(default_factory=lambda: list(JUST_CREATED))
    fs: str | None = None  # the file system in the data area (what wipefs finds at 0x438)
    oos_kib: int = 0
    # /proc/drbd's ns: (sent to the peer), nr: (received from it: replicated writes and
    # resync) and dw: (written to the local disk), KiB: zero when the minor is created (up)
    ns_kib: int = 0
    nr_kib: int = 0
    dw_kib: int = 0
    left_kib: float = 0.0
    total_kib: int = 0
    speed_kib: float = 0.0


class DrbdNode:
    """One host's DRBD: module loaded or not, its resources, metadata on its disks."""

    def __init__(self, net: DrbdNet, host: Machine, hostname: str):
        self.net = net
        self.host = host
        self.hostname = hostname  # what uname -n says: DRBD's 'on <hostname>'
        self.loaded = False
        self.res: dict[int, Res] = {}  # by minor
        # DRBD metadata on a disk, by path, as last written (create-md, down)
        self.metadata: dict[str, Meta] = {}
        # what a disk's data area holds before any DRBD metadata is put on it (tests set it)
        self.contents: dict[str, str] = {}
        self.mounts: dict[int, list[str]] = {}
        self.holders: dict[int, list[str]] = {}

    def by_name(self, name: str) -> Res | None:
        return next((r for r in self.res.values() if r.conf.name == name), None)

    def reboot(self) -> None:
        """What a reboot leaves: every resource down (its metadata as the kernel last wrote
        it), the module unloaded, nothing mounted or held; the peer loses the connection."""
        for minor in sorted(self.res):
            self.net.down(self, self.res[minor])
        self.loaded = False
        self.mounts.clear()
        self.holders.clear()
        files = self.host.md.files  # /run is a tmpfs: the split-brain marker is gone too
        for path in [p for p in files if p.startswith("/run/")]:
            del files[path]

    def in_use(self, minor: int) -> bool:
        return bool(self.mounts.get(minor) or self.holders.get(minor))

    def size_kib(self, path: str) -> int:
        dev = self.host.model.device(path)
        if dev is None:
            raise UnsupportedCommand(f"no simulated device {path}")
        return dev.size // 1024 - 40  # internal metadata at the end (lab, 64 MiB: 65496 KiB left)

    def proc(self) -> str | None:
        if not self.loaded:
            return None
        lines = [VERSION]
        for minor in sorted(self.res):
            r = self.res[minor]
            peer = self.net.peer(self, r)
            connected = r.cstate in CONNECTED
            pr = peer.role if connected and peer else "Unknown"
            pd = peer.disk if connected and peer else "DUnknown"
            proto = r.conf.protocol if r.cstate != "StandAlone" else " "
            lines.append(f" {minor}: cs:{r.cstate} ro:{r.role}/{pr} ds:{r.disk}/{pd} {proto} r-----\n")
            lines.append(f"    ns:{r.ns_kib} nr:{r.nr_kib} dw:{r.dw_kib} dr:0 al:8 bm:0 lo:0 pe:0 ua:0 "
                         f"ap:0 ep:1 wo:f oos:{r.oos_kib}\n")
            if r.cstate in ("SyncSource", "SyncTarget") and r.total_kib:
                left = int(r.left_kib)
                done = (r.total_kib - left) / r.total_kib
                pct = math.ceil(done * 8) / 8 * 100
                bar = "=" * max(0, int(pct / 5) - 1) + ">" + "." * (20 - max(1, int(pct / 5)))
                lines.append(f"\t[{bar}] sync'ed: {pct:.1f}% ({left}/{r.total_kib})K\n")
                speed = int(r.speed_kib)
                eta = int(left / speed) if speed else 0
                tail = " K/sec" if r.cstate == "SyncSource" else f" want: {r.conf.rate_kib:,} K/sec"
                lines.append(f"\tfinish: {eta // 3600}:{eta // 60 % 60:02d}:{eta % 60:02d} "
                             f"speed: {speed:,} ({speed:,}){tail}\n")
        return "".join(lines)


class DrbdNet:
    """The simulated link(s) between DRBD nodes, and the clock that moves resyncs."""

    def __init__(self, clock: SimClock):
        self.clock = clock
        self.nodes: dict[str, DrbdNode] = {}
        self.down_links: set[frozenset[str]] = set()
        self._uuid_seq = 0
        clock.on_advance(self._progress)

    # -- generation identifiers ----------------------------------------------------------------

    def new_uuid(self) -> int:
        self._uuid_seq += 1
        return int(hashlib.sha256(f"uuid{self._uuid_seq}".encode()).hexdigest()[:16], 16) & ~1

    def new_current(self, r: Res) -> None:
        """A new data generation starts on ``r`` (forced primary, promoted alone, primary
        losing its peer): the current UUID goes to the bitmap slot unless one is kept there."""
        if r.uuids[1] == 0:
            r.uuids[1] = r.uuids[0]
        r.uuids[0] = self.new_uuid()

    @staticmethod
    def _settle(r: Res) -> None:
        """In sync with the peer: the bitmap UUID moves into history."""
        if r.uuids[1]:
            r.uuids[3], r.uuids[2], r.uuids[1] = r.uuids[2], r.uuids[1], 0

    def _copy(self, src: Res, dst_node: DrbdNode, dst: Res) -> None:
        """``dst`` now holds ``src``'s data (a finished resync or a replicated write)."""
        dst.data, dst.fs = src.data, src.fs
        if dst.disk_path is not None:
            dev = dst_node.host.model.device(dst.disk_path)
            if dev is not None:
                dev.signature = src.fs

    def _lost_peer(self, r: Res) -> None:
        if r.role == "Primary":
            self.new_current(r)

    def down(self, node: DrbdNode, r: Res) -> None:
        """``drbdadm down`` (or a reboot): metadata written, the peer loses the connection."""
        peer = self.peer(node, r)
        if peer is not None and peer.cstate in CONNECTED:
            peer.cstate = "WFConnection"
            peer.left_kib = 0
            self._lost_peer(peer)
        if r.disk_path is not None:
            node.metadata[r.disk_path] = Meta(r.disk, r.data, tuple(r.uuids), r.dirty, r.oos_kib)
        del node.res[r.minor]

    def join(self, host: Machine, hostname: str) -> DrbdNode:
        """Give ``host`` a DRBD kernel; ``hostname`` is its name on the link."""
        node = DrbdNode(self, host, hostname)
        host.drbd = node
        host.hostname = hostname
        self.nodes[hostname] = node
        return node

    # -- peers and links ---------------------------------------------------------------------

    def peer_node(self, node: DrbdNode, r: Res) -> DrbdNode | None:
        other = next((h for h in r.conf.nodes if h != node.hostname), None)
        return self.nodes.get(other) if other else None

    def peer(self, node: DrbdNode, r: Res) -> Res | None:
        pn = self.peer_node(node, r)
        return pn.by_name(r.conf.name) if pn else None

    def link_up(self, a: str, b: str) -> bool:
        return frozenset((a, b)) not in self.down_links

    def cut(self, a: str, b: str) -> None:
        """The link goes down: connected resources between a and b wait for each other."""
        self.down_links.add(frozenset((a, b)))
        for name in (a, b):
            node = self.nodes[name]
            for r in node.res.values():
                pn = self.peer_node(node, r)
                if pn and pn.hostname in (a, b) and r.cstate in CONNECTED:
                    r.cstate = "WFConnection"
                    r.left_kib = 0
                    self._lost_peer(r)

    def restore(self, a: str, b: str) -> None:
        self.down_links.discard(frozenset((a, b)))
        for name in (a, b):
            node = self.nodes[name]
            for r in list(node.res.values()):
                if r.cstate == "WFConnection":
                    self.handshake(node, r)

    # -- workload and faults ---------------------------------------------------------------------

    def write(self, host: str, minor: int, label: str, kib: int = 1024) -> None:
        """The workload writes ``kib`` KiB to /dev/drbd<minor> on ``host`` (must be Primary)."""
        node = self.nodes[host]
        r = node.res[minor]
        if r.role != "Primary":
            raise ValueError(f"{host}: /dev/drbd{minor} is {r.role}; writes need Primary")
        r.data = hashlib.sha256(f"{r.data}|{label}".encode()).hexdigest()[:16]
        r.dw_kib += kib
        peer = self.peer(node, r)
        if r.cstate in CONNECTED and peer is not None and peer.disk in ("UpToDate", "Inconsistent"):
            r.ns_kib += kib  # replicated: the peer receives it and writes it
            peer.nr_kib += kib
            peer.dw_kib += kib
            if peer.disk == "UpToDate":
                self._copy(r, self.peer_node(node, r), peer)
            return
        r.oos_kib += kib
        if r.cstate not in CONNECTED:
            r.dirty = True

    def mkfs(self, host: str, minor: int, fstype: str = "ext4") -> None:
        """``mkfs.<fstype> /dev/drbd<minor>`` on ``host`` (must be Primary): a write whose
        superblock lands at the start of the data area, i.e. of the backing disk."""
        node = self.nodes[host]
        r = node.res[minor]
        if r.role != "Primary":
            raise ValueError(f"{host}: /dev/drbd{minor} is {r.role}; mkfs needs Primary")
        r.fs = fstype
        if r.disk_path is not None:
            node.host.model.device(r.disk_path).signature = fstype
        self.write(host, minor, f"mkfs.{fstype}")
        peer = self.peer(node, r)
        if r.cstate in CONNECTED and peer is not None and peer.disk == "UpToDate":
            self._copy(r, self.peer_node(node, r), peer)

    def fail_disk(self, host: str, path: str) -> None:
        """Every I/O to ``path`` fails (drive_del): a resource on it detaches: Diskless."""
        node = self.nodes[host]
        node.host.model.device(path).failed_at = self.clock.now()
        for r in node.res.values():
            if r.disk_path == path:
                r.disk, r.disk_path = "Diskless", None
                if r.cstate in ("SyncSource", "SyncTarget"):
                    r.cstate = "Connected"

    # -- handshake and sync -----------------------------------------------------------------------

    def handshake(self, node: DrbdNode, r: Res) -> None:
        peer_node = self.peer_node(node, r)
        peer = self.peer(node, r)
        if (peer is None or peer_node is None or peer.cstate != "WFConnection"
                or r.cstate != "WFConnection" or not self.link_up(node.hostname, peer_node.hostname)):
            return
        a, b = r, peer
        if a.disk == "Diskless" or b.disk == "Diskless":
            a.cstate = b.cstate = "Connected"
        elif a.disk == b.disk == "Inconsistent":
            a.cstate = b.cstate = "Connected"
        elif a.disk == "UpToDate" and b.disk == "Inconsistent":
            self._sync(node, a, b, full=True)
        elif b.disk == "UpToDate" and a.disk == "Inconsistent":
            self._sync(peer_node, b, a, full=True)
        elif a.data == b.data and not (a.dirty and b.dirty):
            a.cstate = b.cstate = "Connected"
            a.dirty = b.dirty = False
            a.oos_kib = b.oos_kib = 0
            src, dst = (b, a) if b.uuids[1] and not a.uuids[1] else (a, b)
            self._settle(src)
            dst.uuids = list(src.uuids)
        elif a.dirty and b.dirty and not (a.discard or b.discard):
            policy = a.conf.after_sb.get((a.role == "Primary") + (b.role == "Primary"), "disconnect")
            if policy != "disconnect":  # DRBD would resolve it by itself: not modelled
                raise UnsupportedCommand(f"after-split-brain policy {policy!r} is not modelled")
            for n, x in ((node, a), (peer_node, b)):
                x.cstate = "StandAlone"
                self._split_brain_handler(n, x)
        elif a.discard or (b.dirty and not a.dirty and not b.discard):
            self._sync(peer_node, b, a, full=False)
        else:
            self._sync(node, a, b, full=False)

    def _split_brain_handler(self, node: DrbdNode, r: Res) -> None:
        h = r.conf.split_brain_handler
        if h is None:
            return
        m = re.fullmatch(r"mkdir -p (\S+) && touch (\S+)", h)
        if m is None:
            raise UnsupportedCommand(f"split-brain handler not modelled: {h!r}")
        node.host.md.dirs.add(m.group(1))
        node.host.md.files[m.group(2)] = ""

    def _sync(self, src_node: DrbdNode, src: Res, dst: Res, *, full: bool) -> None:
        total = src_node.size_kib(src.disk_path) if full or not src.oos_kib else max(src.oos_kib, dst.oos_kib)
        src.cstate, dst.cstate = "SyncSource", "SyncTarget"
        dst.disk = "Inconsistent"
        src.total_kib = dst.total_kib = total
        src.left_kib = dst.left_kib = float(total)
        src.oos_kib = dst.oos_kib = total
        src.dirty = dst.dirty = src.discard = dst.discard = False

    def _progress(self, before: float, now: float) -> None:
        dt = now - before
        for node in self.nodes.values():
            for r in node.res.values():
                if r.cstate != "SyncSource":
                    continue
                dst = self.peer(node, r)
                if dst is None or dst.cstate != "SyncTarget":
                    continue
                rate = min(r.conf.rate_kib, dst.conf.rate_kib)
                moved = int(r.left_kib) - int(max(0.0, r.left_kib - rate * dt))
                r.ns_kib += moved  # resync traffic counts as sent and received too
                dst.nr_kib += moved
                dst.dw_kib += moved
                r.left_kib = max(0.0, r.left_kib - rate * dt)
                dst.left_kib = r.left_kib
                r.speed_kib = dst.speed_kib = rate
                r.oos_kib = dst.oos_kib = int(r.left_kib)
                if r.left_kib <= 0:
                    self._copy(r, self.peer_node(node, r), dst)
                    self._settle(r)
                    dst.uuids = list(r.uuids)
                    dst.disk = "UpToDate"
                    r.cstate = dst.cstate = "Connected"
                    r.total_kib = dst.total_kib = 0
