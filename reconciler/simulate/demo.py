"""The embedded simulated hosts: one per example spec, so every example can be seen working.

``reconcile --simulate NAME`` runs against one of these instead of a real machine. Each is
modelled on a field report (a "seed") and made for one file of ``specs/examples`` (or the
README's demo), with the node name that file gives it, so a newcomer sees each procedure
converge before trying it on real storage:

* ``default`` (also ``seed000``): seed 000's SAN host for ``specs/demo``: two LUNs in
  ``vgglobal`` (lvrepnb on lun30, mygfs on lun02), a full ``vgarc`` on lun00, and a spare
  unused LUN (lun31), so lvrepnb can be moved off lun30 and lun30 dropped from the VG.
* ``seed002``: node-1 of seed 002 for ``clone.toml``: an old and a new SAN LUN (content on
  the old one), to be cloned through a non-persistent md RAID1.
* ``seed004``: old-server of seed 004 for ``mirror-then-split.toml``: ``vg0`` (root, srv) on
  the local ``/dev/md0``, and a remote iSCSI disk that is not a PV yet.
* ``iscsi``: the old server of seed 004 for ``iscsi.toml``: ``vgold`` (var) on ``/dev/md1``; the
  new server, simulated beside it (``--node new`` plays it), exports its md1 over iSCSI with
  CHAP and reads the LVM metadata the old one writes on it.
* ``cluster``: core-01 (default) or core-02 (``--node core-02``) for ``cluster.toml``: on
  core-01 ``vgdata`` holds db and scratch on lun10 and lun11 is new; on core-02 lun20 is a
  blank disk.
* ``seed001``: node-a (default) or node-b (``--node node-b``) of seed 001 for
  ``lvmlockd.toml``: one SAN LUN both nodes see, under a simulated lvmlockd + sanlock
  (``lockd_tools``). The other node's side is as its own reconciler left it: for node-a,
  node-b could do nothing before the VG exists (a blank LUN); for ``--node node-b``, node-a
  has made the shared VG and its LVs and holds gfs shared.
* ``seed003``: node1 (default) or node2 (``--node node2``) of seed 003 for ``drbd.toml``:
  /dev/hdd1 on each, on a simulated DRBD link to the other node, whose side the host sets up
  as that node's own reconciler would have (node2 up and waiting with fresh metadata; for
  ``--node node2``, node1 already primary with the data).

Sizes are real-looking; the simulated clock makes a long copy take no real time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reconciler.runner import Command

from .cluster import Cluster
from .host import SimulatedHost
from .lockd_tools import LockdNode
from .model import GiB

_WWID = {"lun00": "36001405a1b2c3d4e5f60000000000000", "lun02": "36001405a1b2c3d4e5f60000000000002",
         "lun30": "36001405a1b2c3d4e5f60000000000030", "lun31": "36001405a1b2c3d4e5f60000000000031",
         "lun10": "36001405a1b2c3d4e5f60000000000010", "lun11": "36001405a1b2c3d4e5f60000000000011",
         "lun20": "36001405a1b2c3d4e5f60000000000020",
         "oldsan-vm-db": "36001405a1b2c3d4e5f600000000000a0",
         "newsan-vm-db": "36001405a1b2c3d4e5f600000000000b0"}

ISCSI_DISK = "/dev/disk/by-path/ip-169.254.1.2:3260-iscsi-iqn.2026-11.lab:new-lun-0"


def _lun(host: SimulatedHost, name: str, size: int) -> str:
    path = f"/dev/mapper/{name}"
    host.add_device(path, size, aliases=(f"/dev/disk/by-id/dm-name-{name}",
                                         f"/dev/disk/by-id/dm-uuid-mpath-{_WWID[name]}"))
    return path


def default_host(node: str | None = None) -> SimulatedHost:
    host = SimulatedHost(seed="demo")
    lun00 = _lun(host, "lun00", 1075 * GiB)
    lun02 = _lun(host, "lun02", 850 * GiB)
    lun30 = _lun(host, "lun30", 150 * GiB)
    _lun(host, "lun31", 200 * GiB)
    host.add_vg("vgglobal", [lun02, lun30])
    host.add_lv("vgglobal", "lvrepnb", 128 * GiB, pvs=[lun30])
    host.add_lv("vgglobal", "mygfs", 324 * GiB, pvs=[lun02])
    host.add_vg("vgarc", [lun00])
    arc = host.vg("vgarc")
    host.add_lv("vgarc", "lvarc", arc.free_count * arc.extent_size)
    return host


def seed002_host(node: str | None = None) -> SimulatedHost:
    """A VM's disk on the old SAN, in use, and its new LUN (a little bigger, blank)."""
    host = SimulatedHost(seed="seed002", rate_bytes_per_s=512 * 2**20)
    old = _lun(host, "oldsan-vm-db", 40 * GiB)
    _lun(host, "newsan-vm-db", 48 * GiB)
    host.fill(old, "vm-db")
    return host


def seed004_host(node: str | None = None) -> SimulatedHost:
    """vg0 on a local md RAID1 (seen by LVM as one device), and the remote disk to move to."""
    host = SimulatedHost(seed="seed004")
    host.add_device("/dev/md0", 240 * GiB, major=9, minor=0)
    host.add_device("/dev/sdb", 256 * GiB, aliases=(ISCSI_DISK,))
    host.add_vg("vg0", ["/dev/md0"])
    host.add_lv("vg0", "root", 20 * GiB)
    host.add_lv("vg0", "srv", 200 * GiB)
    return host


def cluster_host(node: str | None = None) -> SimulatedHost:
    """One node of cluster.toml: each node has its own disks (a local VG per node)."""
    node = node or "core-01"
    host = SimulatedHost(seed=f"cluster-{node}")
    if node in ("core-01", "core-02"):  # each host's own system disk, its own vgsys on it
        sysdisk = "/dev/disk/by-path/pci-0000:00:1f.2-ata-1"
        host.add_device("/dev/sda", 240 * GiB, aliases=(sysdisk,))
        host.add_vg("vgsys", [sysdisk])
        host.add_lv("vgsys", "root", 20 * GiB)
    if node == "core-01":
        lun10 = _lun(host, "lun10", 1024 * GiB)
        _lun(host, "lun11", 1024 * GiB)
        host.add_vg("vgdata", [lun10])
        host.add_lv("vgdata", "db", 500 * GiB)
        host.add_lv("vgdata", "scratch", 100 * GiB)
    elif node == "core-02":
        _lun(host, "lun20", 100 * GiB)
    else:
        raise ValueError(f"the simulated host 'cluster' plays core-01 or core-02, not {node!r}")
    return host


ISCSI_IQN = "iqn.2003-01.org.example.new:export0"
ISCSI_CHAP = "userid = old-server\npassword = demo-secret-16ch\n"


def iscsi_host(node: str | None = None) -> SimulatedHost:
    """Seed 004 over iSCSI, the old server's side (or the new one's, ``--node new``): vgold on
    the old server's md1, and on the network the new server (another simulated host)
    exporting its md1 as iscsi.toml declares it. LVM metadata the old server writes on the
    session disk is what the new one reads on its md1 (simulate/shared.py)."""
    if node not in (None, "old", "new"):
        raise ValueError(f"the simulated host 'iscsi' plays old or new, not {node!r}")
    from reconciler.runner import Command

    cluster = Cluster()
    old = cluster.add_host("old", seed="iscsi-old")
    new = cluster.add_host("new", seed="iscsi-new")
    cluster.join_iscsi("old", initiator="iqn.2004-10.com.example:old")
    cluster.join_iscsi("new")
    old.add_device("/dev/md1", 480 * GiB, major=9, minor=1)
    old.add_vg("vgold", ["/dev/md1"])
    old.add_lv("vgold", "var", 400 * GiB)
    old.md.files["/etc/reconciler/old.chap"] = ISCSI_CHAP
    new.add_device("/dev/md1", 1800 * GiB, major=9, minor=1)
    new.md.files["/etc/reconciler/export0.chap"] = ISCSI_CHAP
    for argv in (("modprobe", "-a", "configfs", "target_core_mod", "target_core_iblock",
                  "iscsi_target_mod"),
                 ("python3", "-m", "reconciler.adapters.iscsi", "lio-apply",
                  '{"acls":["iqn.2004-10.com.example:old"],"chap_file":'
                  '"/etc/reconciler/export0.chap","delete":false,"iqn":"' + ISCSI_IQN + '",'
                  '"luns":{"0":"/dev/md1"},"name":"export0","portals":["192.0.2.10:3260"],'
                  '"remove_luns":[]}')):
        res = new.run(Command(argv=argv))
        assert res.ok, res.stderr
    return new if node == "new" else old


SEED001_LUN = "/dev/mapper/lun01"


def seed001_host(node: str | None = None) -> LockdNode:
    """One node of lvmlockd.toml on a two-node lvmlockd cluster; the other node's side is
    as its own reconciler would have left it (only node-a, create_on, makes the VG)."""
    node = node or "node-a"
    if node not in ("node-a", "node-b"):
        raise ValueError(f"the simulated host 'seed001' plays node-a or node-b, not {node!r}")
    cluster = Cluster().join_lockd({"node-a": 1, "node-b": 2})
    cluster.add_disk(SEED001_LUN, 512 * GiB)
    if node == "node-b":  # node-a converged first: the VG, both LVs, gfs shared on node-a
        peer = cluster.node("node-a")
        for argv in (("vgcreate", "--shared", "--locktype", "sanlock", "vgsan", SEED001_LUN),
                     ("lvcreate", "--yes", "--activate", "n", "--name", "data", "--size",
                      f"{200 * GiB}b", "vgsan"),
                     ("lvcreate", "--yes", "--activate", "n", "--name", "gfs", "--size",
                      f"{100 * GiB}b", "vgsan"),
                     ("lvchange", "-asy", "vgsan/gfs")):
            res = peer.run(Command(argv=argv))
            if not res.ok:
                raise RuntimeError(f"seed001 peer setup: {' '.join(argv)}: {res.stderr}")
        cluster.mount("node-a", "vgsan", "gfs", "/srv/gfs")
    return cluster.node(node)


_SEED003_CONF = """resource drbd1 {
  protocol C;
  disk { c-plan-ahead 0; resync-rate 10M; }
  on node1 { device /dev/drbd0 minor 0; disk /dev/hdd1; address ipv4 10.0.0.1:7789; meta-disk internal; }
  on node2 { device /dev/drbd0 minor 0; disk /dev/hdd1; address ipv4 10.0.0.2:7789; meta-disk internal; }
}
"""


def seed003_host(node: str | None = None) -> SimulatedHost:
    """One node of drbd.toml, its peer already set up on the same simulated link."""
    node = node or "node1"
    if node not in ("node1", "node2"):
        raise ValueError(f"the simulated host 'seed003' plays node1 or node2, not {node!r}")
    cluster = Cluster()
    for name in ("node1", "node2"):
        cluster.add_host(name, seed=f"seed003-{name}").add_device("/dev/hdd1", 256 * 2**20)
        cluster.join_drbd(name)
    hosts = cluster.hosts
    peer = hosts["node2" if node == "node1" else "node1"]
    peer.md.dirs.add("/etc/drbd.d")
    peer.md.files["/etc/drbd.d/drbd1.res"] = _SEED003_CONF
    for argv in (("modprobe", "drbd"), ("drbdadm", "--", "--force", "create-md", "drbd1"),
                 ("drbdadm", "up", "drbd1")) + ((("drbdadm", "primary", "--force", "drbd1"),)
                                                if node == "node2" else ()):
        res = peer.run(Command(argv=argv))
        if not res.ok:
            raise RuntimeError(f"seed003 peer setup: {' '.join(argv)}: {res.stderr}")
    peer.calls.clear()
    return hosts[node]


@dataclass(frozen=True)
class Example:
    """An embedded simulated host, and the spec it is made for."""

    name: str
    build: Callable[[str | None], SimulatedHost | LockdNode]
    node: str | None  # the node it plays unless --node says otherwise; None: the host name
    spec: str  # relative to the project's root
    about: str


HOSTS: dict[str, Example] = {e.name: e for e in (
    Example("default", default_host, None, "specs/demo",
            "seed 000: move lvrepnb off lun30 with pvmove, then vgreduce lun30"),
    Example("seed000", default_host, None, "specs/demo", "the same as 'default'"),
    Example("seed001", seed001_host, "node-a", "specs/examples/lvmlockd.toml",
            "seed 001: a shared VG under lvmlockd on node-a (default) or node-b (--node "
            "node-b); data exclusive on node-b, gfs shared on both"),
    Example("seed002", seed002_host, "node-1", "specs/examples/clone.toml",
            "seed 002: clone a disk in use through an md RAID1 without superblock"),
    Example("seed004", seed004_host, "old-server", "specs/examples/mirror-then-split.toml",
            "seed 004: a new remote disk becomes a PV; root and srv are mirrored onto it, "
            "then split off the old disk"),
    Example("iscsi", iscsi_host, "old", "specs/examples/iscsi.toml",
            "seed 004 over iSCSI: log in to the new server's export, take its disk into vgold "
            "and pvmove var onto it (the new server is simulated too)"),
    Example("cluster", cluster_host, "core-01", "specs/examples/cluster.toml",
            "cluster.toml's nodes: core-01 (default) or core-02 (--node core-02)"),
    Example("seed003", seed003_host, "node1", "specs/examples/drbd.toml",
            "seed 003: a DRBD resource on node1 (default) or node2 (--node node2); first sync "
            "from node1"),
)}
