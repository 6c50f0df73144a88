"""Simulated nodes of a shared VG: lvm's and lvmlockd's commands, with the recorded messages.

``LockdCluster`` holds the shared disks' LVM metadata (one ``model.Model``, the same LVM
model a ``SimulatedHost`` keeps, changed through ``ops`` and reported by ``render``), the
cluster's lock table and the nodes;
``cluster.node("node-a")`` is a Runner for one node (its commands, its kernel files). The
commands modelled are those the reconciler runs on a shared VG (``lvm fullreport``,
``lvmlockctl --info``, pvcreate, ``vgcreate --shared``, ``vgchange --lock-start``,
``lvcreate --activate n``, ``lvchange -aey|-asy|-aln|--refresh``, lvextend, lvremove,
``pvmove --background --name``, ``dmsetup remove``) plus what an admin does by hand in the
recordings (``lvremove --lockopt skiplv``); every message is the one recorded in
tests/fixtures/outputs/lvmlockd/commands (compared by tests/lockd/simulate/test_lockd_recordings.py).
With DLM (``vgcreate --shared --locktype dlm``) also ``corosync-quorumtool -s``, and the
DLM's messages and ``lvmlockctl --info`` as tests/fixtures/outputs/dlm recorded them
(tests/lockd/simulate/test_lockd_dlm_recordings.py); the corosync and DLM daemons are the
test's to start (``start_corosync``, ``start_dlm``, ``dlm_cluster``). Not recorded, so
refused: a lock on a DLM VG after a member of its lockspace crashed while another survived
(unless the test passes ``crash(..., no_fencing_assumed=True)``), a repeated DLM
``--lock-start``, one on a node without corosync.
Anything else raises ``UnsupportedCommand``. What this module adds to the LVM model is
lvmlockd's: lockspaces, the lock table, each node's dm devices, and the messages lvm prints
on a shared VG. A pvmove completes at once (the time it takes is the LVM simulator's
subject, not this one's).
"""

from __future__ import annotations

import json
import time

from reconciler.adapters.lvm_report import FULLREPORT_ARGV
from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command, CommandResult
from reconciler.state.names import dm_name

from . import ops
from .clock import SimClock
from .lockd_model import (EXTENT, LOCAL_STATE_DIR, LVMLOCK, LVMLOCK_EXTENTS, SECTOR, Corosync,
                          DmDev, LockTable, Node)
from .model import LV, PV, VG, MiB, Model, place, release_all
from .render import View, fullreport
from .tool import Out, Tool

DM_MAJOR = 253


class NodeDown(BaseException):
    """The simulated node is down (a BaseException, like ``host.SimulatedCrash``)."""


class LockdCluster:
    def __init__(self, nodes: dict[str, int | None], *, clock: SimClock | None = None):
        """``nodes``: name -> sanlock host_id (None: not set in lvmlocal.conf). ``clock``:
        the nodes' virtual time (nothing here waits on it; a pass sleeps on it)."""
        self.clock = clock or SimClock()
        # the shared disks and the LVM metadata on them: what every node's lvm reads
        self.lvm = Model(seed="lockd")
        self.locks = LockTable()
        self.nodes = {n: Node(n, hid) for n, hid in nodes.items()}
        self._next_major_minor = 0
        # corosync (DLM's cluster): every node in its nodelist, two_node with two nodes
        self.corosync = Corosync(self.nodes, two_node=len(self.nodes) == 2)
        # wall-clock time at the clock's 0 (corosync-quorumtool prints the date)
        self.epoch = 1796471201.0  # Sat Dec  5 11:46:41 2026 UTC, the recordings' day
        # the DLM VGs' lock versions (lvmlockd's ``LK VG un ver N``: the VG's metadata
        # commits, as the recordings count them) and the global lock's
        self.vg_seq: dict[str, int] = {}
        self.gl_ver = 0
        # DLM VG -> (the node that crashed, the members of its lockspace that survived):
        # the DLM's recovery of a dead node is not recorded (``crash``)
        self.dlm_unrecovered: dict[str, tuple[str, frozenset[str]]] = {}

    def add_disk(self, path: str, size: int) -> None:
        """A disk every node sees (a SAN LUN): the same device number on each."""
        self._next_major_minor += 16
        self.lvm.add_device(path, size, major=254, minor=self._next_major_minor)

    def node(self, name: str) -> "LockdNode":
        return LockdNode(self, self.nodes[name])

    # -- what happens to nodes -------------------------------------------------------------

    def crash(self, name: str, *, no_fencing_assumed: bool = False) -> None:
        """The node dies: its dm devices and lockspaces go with it, its locks stay (sanlock
        leases on the shared disk).

        With DLM, what the surviving members of its lockspaces do next is not recorded:
        with fencing (production) the DLM's recovery waits until the dead node is fenced;
        without (``--enable_fencing 0``, the lab) it frees the dead node's locks; under a
        partition two_node without fencing grants both sides. So any lock request on a DLM
        VG whose lockspace the dead node and a survivor shared raises ``UnsupportedCommand``
        from then on, unless the test states the unrecorded assumption it relies on:
        ``no_fencing_assumed=True``, a real crash (not a partition) under dlm_controld
        without fencing: the survivors' DLM drops the dead node's locks at once. Corosync's
        membership loses it either way (recorded: two_node keeps the survivor quorate)."""
        n = self.nodes[name]
        for vg in self.lvm.vgs.values():
            if vg.lock_type != "dlm" or vg.name not in n.lockspaces:
                continue
            survivors = frozenset(o.name for o in self.nodes.values()
                                  if o is not n and o.up and vg.name in o.lockspaces)
            if no_fencing_assumed:
                for lv in vg.lvs.values():
                    self.locks.drop(lv.uuid, name)
            elif survivors:
                self.dlm_unrecovered[vg.name] = (name, survivors)
        n.up, n.dm, n.lockspaces, n.opened = False, {}, set(), {}
        n.corosync = n.dlm_controld = n.dlm_global = False
        n.rem, n.vg_ver, n.lv_un = set(), {}, set()
        self.corosync.changed()

    def expire(self, name: str) -> None:
        """The dead node's host lease expired (sanlock saw it dead; fenced or rebooted): the
        other nodes may take its locks."""
        assert not self.nodes[name].up, "only a crashed node's leases expire"
        self.locks.drop_node(name)

    def recover(self, name: str) -> None:
        """The node is back (rebooted): daemons running (corosync and dlm_controld too on a
        node that ran them: enabled services), no lockspace, nothing active."""
        self.locks.drop_node(name)
        n = self.nodes[name]
        n.up = True
        n.corosync, n.dlm_controld = "corosync" in n.enabled, "dlm" in n.enabled
        self.corosync.changed()

    # -- corosync and dlm_controld (DLM's cluster) -----------------------------------------

    def start_corosync(self, *names: str) -> None:
        """corosync starts on ``names`` (its nodelist: every node of the cluster)."""
        for name in names:
            self.nodes[name].corosync = True
            self.nodes[name].enabled.add("corosync")
        self.corosync.changed()

    def stop_corosync(self, name: str) -> None:
        """corosync stops on ``name``; dlm_controld, which cannot run without it, too."""
        n = self.nodes[name]
        n.corosync = n.dlm_controld = False
        self.corosync.changed()

    def start_dlm(self, *names: str) -> None:
        """dlm_controld starts on ``names`` (``--enable_fencing 0``, as in the lab)."""
        for name in names:
            if not self.nodes[name].corosync:
                raise ValueError(f"dlm_controld on {name} needs corosync running there")
            self.nodes[name].dlm_controld = True
            self.nodes[name].enabled.add("dlm")

    def dlm_cluster(self) -> LockdCluster:
        """corosync (two_node) and dlm_controld running on every node: quorate."""
        self.start_corosync(*self.nodes)
        self.start_dlm(*self.nodes)
        return self

    def mount(self, node: str, vg: str, lv: str, where: str) -> None:
        dm = self.nodes[node].dm.get(dm_name(vg, lv))
        if dm is None:
            raise ValueError(f"{vg}/{lv} is not active on {node}")
        dm.mounts.append(where)

    def umount(self, node: str, vg: str, lv: str) -> None:
        self.nodes[node].dm[dm_name(vg, lv)].mounts.clear()


PCMK_CIB_FILE = "/var/lib/pacemaker/cib/cib.xml"  # Pacemaker's CIB file (adapters.pacemaker)


class LockdNode:
    """One node: a Runner (``run``, ``read``) over the cluster."""

    def __init__(self, cluster: LockdCluster, node: Node):
        self.c = cluster
        self.n = node
        self.calls: list[Command] = []
        self._touched: set[str] = set()  # the DLM VGs whose lock the running command took

    @property
    def opened(self) -> dict[str, list[str]]:
        """The node's processes holding a device open (``Node.opened``), by path."""
        return self.n.opened

    @property
    def name(self) -> str:
        return self.n.name

    @property
    def clock(self) -> SimClock:
        """The cluster's virtual time: what ``reconcile --simulate`` sleeps on."""
        return self.c.clock

    def resolve_device(self, path: str) -> tuple[int, int] | None:
        """(major, minor) of a shared disk as this node sees it (every node sees the same
        ones); None for a path the cluster does not have."""
        if not self.n.up:
            raise NodeDown(f"node {self.n.name} is down; cannot resolve {path}")
        d = self.c.lvm.device(path)
        return (d.major, d.minor) if d else None

    def run(self, cmd: Command) -> CommandResult:
        if not self.n.up:
            raise NodeDown(f"node {self.n.name} is down; not running {cmd}")
        argv = cmd.argv
        self.calls.append(cmd)
        key = argv[:2] if argv[0] in ("lvm", "dmsetup") else argv[:1]
        tool = _COMMANDS.get(tuple(key))
        if tool is None:
            raise UnsupportedCommand(f"not modelled by the lockd simulator: {' '.join(argv)}")
        if argv[0] == "lvm" and argv != FULLREPORT_ARGV:
            raise UnsupportedCommand(f"only the project's fullreport argv is modelled: {argv}")
        if cmd.input is not None and not tool.stdin:
            raise UnsupportedCommand(f"stdin is not modelled for: {cmd}")
        self._touched = set()
        out = tool.handler(self, argv, cmd.input)
        for name in self._touched:  # the VG lock's version this command read and left
            self.n.vg_ver[name] = self.c.vg_seq.get(name, 0)
        return CommandResult(command=cmd, rc=out.rc, stdout="".join(out.stdout),
                             stderr="".join(out.stderr))

    def read_bytes(self, path: str, offset: int, length: int, *,
                   host: str = "local") -> bytes | None:
        raise UnsupportedCommand(f"device content is not modelled by the lockd simulator: "
                                 f"{path}")

    def openers(self, paths, *, host: str = "local") -> dict[str, tuple[str, ...]]:
        if not self.n.up:
            raise NodeDown(f"node {self.n.name} is down; cannot check openers")
        return {p: tuple(self.opened.get(p, ())) for p in paths}

    def claimed(self, paths, *, host: str = "local") -> dict[str, bool | str]:
        """``Runner.claimed``: a shared disk is claimed on this node while an LV with
        extents on it is active here (its device-mapper map claims the disk); an LV's device
        (/dev/VG/LV, /dev/mapper/NAME) while mounted or held; a path this cluster does not
        have is not claimed. Anything else (a path under /dev/VG that names no LV) raises."""
        if not self.n.up:
            raise NodeDown(f"node {self.n.name} is down; cannot probe devices")
        out: dict[str, bool | str] = {}
        for p in paths:
            disk = self.c.lvm.device(p)
            if disk is not None:
                out[p] = bool(self._maps_on(disk))  # as its holders/ lists them
                continue
            parts = p.split("/")
            if len(parts) == 4 and parts[:3] == ["", "dev", "mapper"]:
                name = parts[3]
            elif len(parts) == 4 and parts[:2] == ["", "dev"]:
                name = dm_name(parts[2], parts[3])
            else:
                out[p] = False  # no such device here
                continue
            dev = self.n.dm.get(name)
            out[p] = dev is not None and dev.open
        return out

    def _maps_on(self, disk) -> list[DmDev]:
        """This node's device-mapper maps of the LVs with extents on ``disk``: they claim it."""
        pv = self.c.lvm.pvs.get(disk.path)
        lvs = {e[1] for e in pv.used.values()} if pv is not None else set()
        uuids = {"LVM-" + lv.vg.uuid.replace("-", "") + lv.uuid.replace("-", "") for lv in lvs}
        return [d for d in self.n.dm.values() if d.uuid in uuids]

    def _dev_block(self, path: str) -> str | None:
        """/sys/dev/block/M:m/...: a shared disk's name, entries (no partition) and holders
        (this node's maps on it), or an LV's map (as /sys/block/dm-N/); None for a number
        this node has no device of; UnsupportedCommand for a file not modelled."""
        numbers, _, rest = path[len("/sys/dev/block/"):].partition("/")
        major, _, minor = numbers.partition(":")
        devno = (int(major), int(minor))
        if devno[0] == DM_MAJOR:
            dev = next((d for d in self.n.dm.values() if d.minor == devno[1]), None)
            if dev is None:
                return None
            if rest == "uevent":
                return f"MAJOR={DM_MAJOR}\nMINOR={dev.minor}\nDEVNAME=dm-{dev.minor}\nDEVTYPE=disk\n"
            if rest == "":
                return "dev\ndm\nholders\nsize\nslaves\nuevent\n"
            return self.read(f"/sys/block/dm-{dev.minor}/{rest}")
        disk = next((d for d in self.c.lvm.table.devices.values()
                     if (d.major, d.minor) == devno),
                    None)
        if disk is None:
            return None
        name = disk.path.rsplit("/", 1)[-1]
        if rest == "uevent":
            return f"MAJOR={disk.major}\nMINOR={disk.minor}\nDEVNAME={name}\nDEVTYPE=disk\n"
        if rest == "":
            return "dev\nholders\nsize\nslaves\nuevent\n"
        if rest == "holders/":
            return "".join(f"dm-{d.minor}\n" for d in sorted(self._maps_on(disk),
                                                             key=lambda d: d.minor))
        if rest == "dev":
            return f"{disk.major}:{disk.minor}\n"
        raise UnsupportedCommand(f"file not modelled by the lockd simulator: {path}")

    # -- kernel files ----------------------------------------------------------------------

    def read(self, path: str, *, host: str = "local") -> str | None:
        if not self.n.up:
            raise NodeDown(f"node {self.n.name} is down")
        if path == "/sys/block/":
            return "".join(f"dm-{d.minor}\n" for d in sorted(self.n.dm.values(),
                                                              key=lambda d: d.minor))
        if path == "/proc/self/mountinfo":
            return "".join(f"{30 + i} 1 {DM_MAJOR}:{d.minor} / {m} rw - ext4 /dev/mapper/{d.name} rw\n"
                           for i, d in enumerate(self.n.dm.values()) for m in d.mounts)
        if path.startswith("/sys/block/dm-"):
            kernel, _, rest = path[len("/sys/block/"):].partition("/")
            dev = next((d for d in self.n.dm.values() if f"dm-{d.minor}" == kernel), None)
            if dev is None:
                return None
            return {"dm/name": f"{dev.name}\n", "dm/uuid": f"{dev.uuid}\n",
                    "size": f"{dev.sectors}\n", "dev": f"{DM_MAJOR}:{dev.minor}\n",
                    "holders/": "".join(f"{h}\n" for h in dev.holders)}.get(rest)
        if path.startswith("/sys/dev/block/"):
            return self._dev_block(path)
        if path.startswith(LOCAL_STATE_DIR):  # the node's own disk, not the shared one
            return self.n.files.get(path)
        if path == PCMK_CIB_FILE:  # no Pacemaker here unless a test writes its CIB (then
            return self.n.files.get(path)  # cibadmin, not modelled here, fails loudly)
        raise UnsupportedCommand(f"file not modelled by the lockd simulator: {path}")

    # -- helpers ---------------------------------------------------------------------------

    def _lv(self, arg: str, out: Out) -> tuple[VG, LV] | None:
        vg_name, _, lv_name = arg.partition("/")
        vg = self.c.lvm.vgs.get(vg_name)
        if vg is None:
            out.fail(f'Volume group "{vg_name}" not found')
            return None
        if vg.name not in self.n.lockspaces:
            out.fail(f"Cannot access VG {vg.name} due to failed lock.")
            return None
        self._dlm_ready(vg, f"a lock in {vg.name}")
        lv = vg.lvs.get(lv_name)
        if lv is None or not lv.visible:
            out.fail(f'Failed to find logical volume "{arg}"')
            return None
        return vg, lv

    def _dlm_ready(self, vg: VG, what: str) -> None:
        """A DLM VG's lock request needs corosync quorate here and dlm_controld running: the
        DLM makes a request wait without quorum (no recording says for how long, nor what
        lvm then prints), so this fails loudly instead. Marks the VG's lock as read."""
        if vg.lock_type != "dlm":
            return
        if not self.c.corosync.quorate(self.n.name):
            raise UnsupportedCommand(
                f"{what} on {self.n.name} without corosync quorum: the DLM waits for quorum "
                f"(dlm_controld), which no recording shows; the reconciler reads "
                f"corosync-quorumtool -s first")
        if not self.n.dlm_controld:
            raise UnsupportedCommand(f"{what} on {self.n.name} after dlm_controld stopped "
                                     f"there: not recorded")
        self._unrecovered(vg, what)
        self._touched.add(vg.name)

    def _unrecovered(self, vg: VG, what: str) -> None:
        """A DLM VG whose lockspace lost a member to a crash while another survived: what
        the DLM then grants is not recorded (``LockdCluster.crash``)."""
        dead = self.c.dlm_unrecovered.get(vg.name)
        if dead is None:
            return
        if not any(self.c.nodes[s].up and vg.name in self.c.nodes[s].lockspaces
                   for s in dead[1]):
            del self.c.dlm_unrecovered[vg.name]  # no survivor's lockspace left to recover
            return
        raise UnsupportedCommand(
            f"{what} on {self.n.name} after {dead[0]} crashed, a member of {vg.name}'s DLM "
            f"lockspace: the DLM's recovery is not recorded (with fencing it waits for the "
            f"dead node to be fenced; without, it frees its locks; under a partition "
            f"two_node without fencing grants both sides); a test that assumes no fencing "
            f"says so: crash({dead[0]!r}, no_fencing_assumed=True)")

    def _commit(self, vg: VG) -> None:
        """The VG's metadata was written: its DLM VG lock's version moves on."""
        if vg.lock_type == "dlm":
            self.c.vg_seq[vg.name] = self.c.vg_seq.get(vg.name, 0) + 1

    def _activate(self, vg: VG, lv: LV) -> None:
        name = dm_name(vg.name, lv.name)
        dev = self.n.dm.get(name)
        if dev is None:
            self.n.next_minor += 1
            self.n.dm[name] = DmDev(name, "LVM-" + vg.uuid.replace("-", "") + lv.uuid.replace("-", ""),
                                    self.n.next_minor, lv.extents * vg.extent_size // SECTOR)

    def _lock(self, vg: VG, lv: LV, mode: str, out: Out) -> bool:
        others = self.c.locks.others(lv.uuid, self.n.name)
        if others and (mode == "ex" or "ex" in others.values()):
            if vg.lock_type == "dlm":  # lvmlockd keeps the LV's resource, unlocked
                self.n.lv_un.add(lv.uuid)
            out.fail(f"LV locked by other host: {vg.name}/{lv.name}")
            return False
        self.c.locks.take(lv.uuid, self.n.name, mode)
        self.n.lv_un.discard(lv.uuid)
        return True

    def _exclusive_here_or_free(self, vg: VG, lv: LV, out: Out) -> bool:
        """What lvextend, lvremove and pvmove need: this node's ex lock, or none anywhere."""
        mine = self.c.locks.holders(lv.uuid).get(self.n.name)
        if mine == "sh":  # checked first: lab, shared on both nodes
            out.fail(f"LV is already locked with incompatible mode: {vg.name}/{lv.name}")
            return False
        if self.c.locks.others(lv.uuid, self.n.name):
            out.fail(f"LV locked by other host: {vg.name}/{lv.name}")
            return False
        return True


# -- commands ----------------------------------------------------------------------------------


def _fullreport(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    """The one LVM model's report, with this node's activation: an LV is active here when
    this node has its dm device, open when that device is mounted or held."""
    def dev(lv: LV) -> DmDev | None:
        return node.n.dm.get(dm_name(lv.vg.name, lv.name))

    view = View(node.c.lvm, active=lambda lv: dev(lv) is not None,
                open_count=lambda lv: int(bool((d := dev(lv)) and d.open)))
    return Out(stdout=[fullreport(node.c.lvm, view)])


def _lockctl(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    if argv != ("lvmlockctl", "--info"):
        raise UnsupportedCommand(f"only 'lvmlockctl --info' is modelled: {argv}")
    if not node.n.lvmlockd:
        out = Out()
        out.stdout.append("Cannot connect to lvmlockd.\n")
        out.stderr.append("/run/lvm/lvmlockd.socket: connect failed: No such file or directory\n")
        out.rc = 255
        return out
    lines = []
    for name in sorted(node.n.lockspaces):
        vg = node.c.lvm.vgs[name]
        if vg.lock_type == "dlm":
            continue
        lines += [f"VG {name} lock_type={vg.lock_type} {vg.uuid}", f"LS {vg.lock_type} lvm_{name}",
                  "LK VG un ver 1", "LK GL un ver 1"]
        for lv in vg.lvs.values():
            mode = node.c.locks.holders(lv.uuid).get(node.n.name)
            if mode:
                lines.append(f"LK LV {mode} {lv.uuid}")
    blocks = [lines] if lines else []
    return Out(stdout=[f"{line}\n" for line in _join_blocks(blocks + _dlm_info(node))])


def _join_blocks(blocks: list[list[str]]) -> list[str]:
    out: list[str] = []
    for b in blocks:
        out += ([""] if out else []) + b
    return out


def _dlm_info(node: LockdNode) -> list[list[str]]:
    """lvmlockctl --info's DLM blocks, as recorded (dlm/commands/lockctl_info_*): the global
    lockspace (``lvm_global``, with the global lock once started), then each DLM VG's
    lockspace, ``REM:`` when its start failed, its VG lock's version and its LV locks."""
    n = node.n
    if not (n.dlm_global or n.rem):
        return []
    blocks = [["VG vg_uuid= lock_type= ", "LS  " + ("lvm_global" if n.dlm_global else "REM:lvm_global"),
               "LK VG un ver 0"] + ([f"LK GL un ver {node.c.gl_ver}"] if n.dlm_global else [])]
    for name in sorted((n.lockspaces | n.rem) & {v for v, vg in node.c.lvm.vgs.items()
                                                  if vg.lock_type == "dlm"}):
        vg = node.c.lvm.vgs[name]
        started = name in n.lockspaces
        b = [f"VG {name} lock_type=dlm {vg.uuid}", "LS dlm " + ("" if started else "REM:") + f"lvm_{name}",
             f"LK VG un ver {n.vg_ver.get(name, 0)}"]
        for lv in vg.lvs.values() if started else ():
            mode = node.c.locks.holders(lv.uuid).get(n.name) or ("un" if lv.uuid in n.lv_un else None)
            if mode:
                b.append(f"LK LV {mode} {lv.uuid}")
        blocks.append(b)
    return blocks


def _quorumtool(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``corosync-quorumtool -s`` as corosync 3.1.7 prints it (dlm/commands/quorumtool_*):
    rc 0 quorate, 2 not quorate, 1 when corosync does not run here. Two-node clusters only
    (the recorded flags; a larger cluster's are not recorded)."""
    if argv != ("corosync-quorumtool", "-s"):
        raise UnsupportedCommand(f"only 'corosync-quorumtool -s' is modelled: {argv}")
    out = Out()
    n, cs = node.n, node.c.corosync
    if not n.corosync:
        return out.err("Cannot initialize CMAP service")
    if not cs.two_node:
        raise UnsupportedCommand("corosync-quorumtool of a cluster of more than two nodes is "
                                 "not recorded")
    quorate = cs.quorate(n.name)
    ids = sorted(cs.ids[m] for m in n.members)
    names = {i: m for m, i in cs.ids.items()}
    flags = "2Node " + ("Quorate " if quorate else "") + "WaitForAll "
    date = time.asctime(time.gmtime(node.c.epoch + node.c.clock.now()))
    lines = ["Quorum information", "------------------",
             f"Date:             {date}", "Quorum provider:  corosync_votequorum",
             f"Nodes:            {len(ids)}", f"Node ID:          {cs.ids[n.name]}",
             f"Ring ID:          {ids[0]}.{n.ring_seq}",
             f"Quorate:          {'Yes' if quorate else 'No'}", "",
             "Votequorum information", "----------------------",
             f"Expected votes:   {cs.expected}", f"Highest expected: {cs.expected}",
             f"Total votes:      {len(ids)}",
             f"Quorum:           {cs.quorum} {' ' if quorate else 'Activity blocked'}",
             f"Flags:            {flags}", "", "Membership information", "----------------------",
             "    Nodeid      Votes Name"]
    lines += [f"{i:>10} {1:>10} {names[i]}" + (" (local)" if names[i] == n.name else "")
              for i in ids]
    out.stdout.extend(f"{line}\n" for line in lines)
    out.rc = 0 if quorate else 2
    return out


def _pvcreate(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    if len(argv) != 2:
        raise UnsupportedCommand(f"only 'pvcreate DEVICE' is modelled: {argv}")
    out = Out()
    dev = argv[1]
    lvm = node.c.lvm
    device = lvm.device(dev)
    if device is None:
        return out.fail(f"No device found for {dev}.")
    if not node.n.lockspaces:  # the global lock is in a started shared VG's lockspace
        return out.fail("Global lock failed: check that global lockspace is started")
    if all(node.c.lvm.vgs[v].lock_type == "dlm" for v in node.n.lockspaces):
        # DLM's global lock (lvm_global): the same quorum and dlm_controld as a VG's lock
        node._dlm_ready(node.c.lvm.vgs[min(node.n.lockspaces)], "the global lock")
        node.c.gl_ver += 1
    if device.path in lvm.pvs:
        return out.fail(f"Can't initialize physical volume \"{dev}\" of volume group \"?\" "
                        f"without -ff")
    lvm.pvs[device.path] = PV(device, lvm.new_uuid())
    return out.print(f'Physical volume "{dev}" successfully created.')


def _wipefs(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``wipefs --no-act --json DEVICE`` (the probe before pvcreate): the shared disks of
    this simulator carry no signature, so a known one probes blank (as the LVM simulator's
    host answers it); an unknown path fails like wipefs does."""
    if argv[:3] != ("wipefs", "--no-act", "--json") or len(argv) != 4:
        raise UnsupportedCommand(f"wipefs form not modelled: {' '.join(argv)}")
    out = Out()
    if node.c.lvm.device(argv[3]) is None:
        out.rc = 1
        out.stderr.append(f"wipefs: error: {argv[3]}: probing initialization failed: No such "
                          f"file or directory\n")
        return out
    out.stdout.append(json.dumps({"signatures": []}, indent=3) + "\n")
    return out


def _vgcreate(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    args = list(argv[1:])
    lock_type = "sanlock"
    if args[:3] in (["--shared", "--locktype", "sanlock"], ["--shared", "--locktype", "dlm"]):
        lock_type, args = args[2], args[3:]
    elif args[:1] == ["--shared"]:  # lvmlockd picks the lock manager running: sanlock here
        args = args[1:]
    else:
        args = []
    if len(args) < 2 or args[0].startswith("-"):
        raise UnsupportedCommand(f"only 'vgcreate --shared [--locktype sanlock|dlm] VG PV...' "
                                 f"is modelled: {argv}")
    vg_name, devs = args[0], args[1:]
    out = Out()
    if not node.n.lvmlockd:
        out.warn("WARNING: lvmlockd process is not running.")
        return out.fail("Failed to detect a running lock manager to select lock type.",
                        "Run `vgcreate --help' for more information.", rc=3)
    lvm = node.c.lvm
    if vg_name in lvm.vgs:
        return out.fail(f"A volume group called {vg_name} already exists.")
    if lock_type == "dlm":
        return _vgcreate_dlm(node, vg_name, devs, out)
    out.print("Enabling sanlock global lock")
    pvs = _new_pvs(node, devs, out)
    if pvs is None:
        return out
    vg = VG(vg_name, lvm.new_uuid(), EXTENT, "sanlock")
    ops.join_vg(vg, pvs)
    lock = ops.create_lv_on(lvm, vg, LVMLOCK, [(pvs[0], LVMLOCK_EXTENTS)])
    lock.kind, lock.visible = LVMLOCK, False
    lvm.vgs[vg_name] = vg
    out.print(f'Logical volume "{LVMLOCK}" created.')
    out.print(f'Volume group "{vg_name}" successfully created')
    node.n.lockspaces.add(vg_name)
    node._activate(vg, lock)
    out.print(f"VG {vg_name} starting sanlock lockspace")
    return out.print("Starting locking.  Waiting until locks are ready...")


def _new_pvs(node: LockdNode, devs: list[str], out: Out) -> list[PV] | None:
    lvm = node.c.lvm
    pvs: list[PV] = []
    for d in devs:
        device = lvm.device(d)
        if device is None:
            out.fail(f"No device found for {d}.")
            return None
        pv = lvm.pvs.get(device.path)
        if pv is None:
            pv = lvm.pvs[device.path] = PV(device, lvm.new_uuid())
            out.print(f'Physical volume "{d}" successfully created.')
        elif pv.vg is not None:  # as the LVM simulator's vgcreate says it
            out.fail(f"Physical volume '{d}' is already in volume group '{pv.vg.name}'",
                     f"Unable to add physical volume '{d}' to volume group '{pv.vg.name}'",
                     f"{d}: physical volume not initialized.")
            return None
        pvs.append(pv)
    return pvs


def _vgcreate_dlm(node: LockdNode, vg_name: str, devs: list[str], out: Out) -> Out:
    """``vgcreate --shared --locktype dlm`` (recorded: dlm/commands/vgcreate_shared_dlm_a):
    no lvmlock LV (the locks are the DLM's), the VG's lockspace and lvm_global started."""
    n = node.n
    if not node.c.corosync.quorate(n.name) or not n.dlm_controld:
        raise UnsupportedCommand(f"vgcreate --locktype dlm on {n.name} without a quorate "
                                 f"corosync and dlm_controld: not recorded")
    pvs = _new_pvs(node, devs, out)
    if pvs is None:
        return out
    lvm = node.c.lvm
    vg = VG(vg_name, lvm.new_uuid(), EXTENT, "dlm")
    ops.join_vg(vg, pvs)
    lvm.vgs[vg_name] = vg
    node.c.vg_seq[vg_name] = 2  # the VG written, then its lock_args
    node.c.gl_ver += 1
    out.print(f'Volume group "{vg_name}" successfully created')
    n.lockspaces.add(vg_name)
    n.dlm_global = True
    node._touched.add(vg_name)
    out.print(f"VG {vg_name} starting dlm lockspace")
    return out.print("Starting locking.  Waiting until locks are ready...")


def _lock_start_dlm(node: LockdNode, vg: VG, out: Out) -> Out:
    """``vgchange --lock-start`` of a DLM VG (recorded: dlm/commands/lock_start_*)."""
    n = node.n
    if vg.name in n.lockspaces:
        raise UnsupportedCommand(f"vgchange --lock-start {vg.name} on {n.name} again (its DLM "
                                 f"lockspace is started): not recorded")
    if not n.corosync:
        raise UnsupportedCommand(f"vgchange --lock-start {vg.name} on {n.name} without "
                                 f"corosync running there: not recorded (dlm_controld not "
                                 f"running, corosync running is: lock_start_no_dlm_controld_b)")
    node._unrecovered(vg, f"vgchange --lock-start {vg.name}")
    if not n.dlm_controld:
        n.rem |= {vg.name} | (set() if n.dlm_global else {""})
        out.warn("Start a lock manager, lvmlockd did not find one running.")
        out.warn("Skipping global lock: lockspace not found or started")
        return out.fail(f"VG {vg.name} start failed: lock manager dlm is not running")
    if not node.c.corosync.quorate(n.name):
        raise UnsupportedCommand(f"vgchange --lock-start {vg.name} on {n.name} without corosync "
                                 f"quorum: dlm_controld waits for quorum before it joins a "
                                 f"lockspace, which no recording shows")
    n.rem -= {vg.name, ""}
    n.lockspaces.add(vg.name)
    n.dlm_global = True
    out.print(f"VG {vg.name} starting dlm lockspace")
    return out.print("Starting locking.  Waiting until locks are ready...")


def _vgchange(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    if len(argv) != 3 or argv[1] != "--lock-start":
        raise UnsupportedCommand(f"only 'vgchange --lock-start VG' is modelled: {argv}")
    name = argv[2]
    out = Out()
    vg = node.c.lvm.vgs.get(name)
    if not node.n.lvmlockd:
        out.warn("WARNING: lvmlockd process is not running.")
        out.warn("Reading without shared global lock.")
        return out.fail(f"VG {name} start failed: lvmlockd is not running")
    if vg is None:
        return out.fail(f'Volume group "{name}" not found')
    if vg.lock_type == "dlm":
        return _lock_start_dlm(node, vg, out)
    if name in node.n.lockspaces:
        return out.print("Starting locking.  Waiting for sanlock may take 20 sec to 3 min...")
    if not node.n.sanlock:
        out.warn("Start a lock manager, lvmlockd did not find one running.")
        out.warn("Skipping global lock: lockspace not found or started")
        return out.fail(f"VG {name} start failed: lock manager sanlock is not running")
    out.warn("Skipping global lock: lockspace not found or started")
    if node.n.host_id is None:
        return out.fail(f"VG {name} start failed: invalid sanlock host_id, set in lvmlocal.conf")
    out.print(f"VG {name} starting sanlock lockspace")
    out.print("Starting locking.  Waiting for sanlock may take 20 sec to 3 min...")
    clash = [n for n in node.c.nodes.values() if n is not node.n and n.up
             and n.host_id == node.n.host_id and name in n.lockspaces]
    # A host_id a live node holds: rc 0 all the same, the lvmlock LV active, and no
    # lockspace (lab: state/after_host_id_in_use_b.txt).
    node._activate(vg, vg.lvs[LVMLOCK])
    if not clash:
        node.n.lockspaces.add(name)
    return out


def _vgextend(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    if len(argv) != 3:
        raise UnsupportedCommand(f"only 'vgextend VG PV' is modelled: {argv}")
    out = Out()
    lvm = node.c.lvm
    vg, dev = lvm.vgs.get(argv[1]), argv[2]
    if vg is None:
        return out.fail(f'Volume group "{argv[1]}" not found')
    if vg.name not in node.n.lockspaces:
        return out.fail(f"Cannot access VG {vg.name} due to failed lock.")
    node._dlm_ready(vg, f"vgextend {vg.name}")
    pv = lvm.pv(dev)
    if pv is None:
        return out.fail(f"Physical volume {dev} not found")  # the planner pvcreates first
    if pv.vg is not None:  # as the LVM simulator's vgextend says it
        return out.fail(f"Physical volume '{dev}' is already in volume group '{pv.vg.name}'",
                        f"Unable to add physical volume '{dev}' to volume group "
                        f"'{pv.vg.name}'", f"{dev}: physical volume not initialized.")
    ops.join_vg(vg, [pv])
    node._commit(vg)
    return out.print(f'Volume group "{vg.name}" successfully extended')


def _lvcreate(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    a = list(argv[1:])
    activate = a[1:3] != ["--activate", "n"]
    if not activate:
        del a[1:3]
    if len(a) < 5 or a[0] != "--yes" or a[1] != "--name" or a[3] != "--size":
        raise UnsupportedCommand(f"only 'lvcreate --yes [--activate n] --name LV --size Nb VG "
                                 f"[PV...]' is modelled: {argv}")
    name, size, vg_name, pvs = a[2], _size(a[4], argv), a[5], a[6:]
    out = Out()
    lvm = node.c.lvm
    vg = lvm.vgs.get(vg_name)
    if vg is None:
        return out.fail(f'Volume group "{vg_name}" not found')
    if vg_name not in node.n.lockspaces:
        return out.fail(f"Cannot access VG {vg_name} due to failed lock.")
    node._dlm_ready(vg, f"lvcreate in {vg_name}")
    if name in vg.lvs:
        return out.fail(f"Logical Volume \"{name}\" already exists in volume group \"{vg_name}\"")
    n = -(-size // vg.extent_size)
    for pv in (_vg_pvs(lvm, vg, pvs, argv) if pvs else vg.pvs):
        if _first_fit(pv, n) is not None:  # one free area on one PV (linear, as lvm picks)
            lv = ops.create_lv_on(lvm, vg, name, [(pv, n)])
            node._commit(vg)
            if activate:  # a new LV in a shared VG is active exclusively where it was made
                node.c.locks.take(lv.uuid, node.n.name, "ex")
                node._activate(vg, lv)
            else:
                out.warn(f"WARNING: Logical volume {vg_name}/{name} not zeroed.")
            return out.print(f'Logical volume "{name}" created.')
    return out.fail(f"Volume group \"{vg_name}\" has insufficient free space.")


def _lvchange(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    if len(argv) != 3 or argv[1] not in ("-aey", "-asy", "-aln", "--refresh"):
        raise UnsupportedCommand(f"only 'lvchange -aey|-asy|-aln|--refresh VG/LV': {argv}")
    out = Out()
    found = node._lv(argv[2], out)
    if found is None:
        return out
    vg, lv = found
    flag = argv[1]
    held = node.c.locks.holders(lv.uuid).get(node.n.name)
    if flag == "--refresh":
        dev = node.n.dm.get(dm_name(vg.name, lv.name))
        if dev is not None:
            dev.sectors = lv.extents * vg.extent_size // SECTOR
        return out
    if flag == "-aln":
        dev = node.n.dm.get(dm_name(vg.name, lv.name))
        if dev is not None and dev.open:
            return out.fail(f"Logical volume {vg.name}/{lv.name} in use.")
        node.n.dm.pop(dm_name(vg.name, lv.name), None)
        node.c.locks.drop(lv.uuid, node.n.name)
        node.n.lv_un.discard(lv.uuid)
        return out
    mode = "ex" if flag == "-aey" else "sh"
    if held == mode:
        return out
    if mode == "sh" and lv.kind == "raid1":
        return out.fail(f"Shared activation not compatible with LV type raid1 of "
                        f"{vg.name}/{lv.name}", f"Failed to lock logical volume {vg.name}/{lv.name}.")
    if held is not None and held != mode:  # lvmlockd does not convert a held lock
        return out.fail(f"LV locked by other host: {vg.name}/{lv.name}",
                        f"Failed to lock logical volume {vg.name}/{lv.name}.")
    if not node._lock(vg, lv, mode, out):
        return out.fail(f"Failed to lock logical volume {vg.name}/{lv.name}.")
    node._activate(vg, lv)
    return out


def _lvextend(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    if len(argv) < 4 or argv[1] != "--size":
        raise UnsupportedCommand(f"only 'lvextend --size Nb VG/LV [PV...]' is modelled: {argv}")
    out = Out()
    found = node._lv(argv[3], out)
    if found is None:
        return out
    vg, lv = found
    if not node._exclusive_here_or_free(vg, lv, out):
        return out
    size = argv[2].rstrip("b")
    es = vg.extent_size
    new = (lv.extents + -(-int(size[1:]) // es) if size.startswith("+")
           else -(-int(size) // es))
    extra = new - lv.extents
    if extra <= 0:
        return out.fail(f"New size given ({new} extents) not larger than existing size "
                        f"({lv.extents} extents)")
    end = ops.last_end(lv)
    if end is None or not any(s == end[1] and n >= extra for s, n in end[0].free_ranges()):
        return out.fail("Insufficient free space (contiguous growth only in this model)")
    old = lv.extents
    place(lv, [(end[0], end[1], extra)])
    node._commit(vg)
    dev = node.n.dm.get(dm_name(vg.name, lv.name))
    if dev is not None:
        dev.sectors = new * es // SECTOR
    out.print(f"Size of logical volume {vg.name}/{lv.name} changed from "
              f"{old * es / MiB:.2f} MiB ({old} extents) to {new * es / MiB:.2f} MiB "
              f"({new} extents).")
    return out.print(f"Logical volume {vg.name}/{lv.name} successfully resized.")


def _lvremove(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    skip = argv[1:4] == ("--yes", "--lockopt", "skiplv")
    if not (len(argv) == 3 and argv[1] == "--yes") and not (skip and len(argv) == 5):
        raise UnsupportedCommand(f"only 'lvremove --yes [--lockopt skiplv] VG/LV': {argv}")
    out = Out()
    found = node._lv(argv[-1], out)
    if found is None:
        return out
    vg, lv = found
    if skip:
        out.warn("WARNING: skipping LV lock in lvmlockd.")
    elif not node._exclusive_here_or_free(vg, lv, out):
        return out
    dev = node.n.dm.get(dm_name(vg.name, lv.name))
    if dev is not None and dev.open:
        return out.fail(f"Logical volume {vg.name}/{lv.name} contains a filesystem in use.")
    node.n.dm.pop(dm_name(vg.name, lv.name), None)
    node.c.locks.drop(lv.uuid, node.n.name)
    ops.remove_lv(node.c.lvm, lv)
    node._commit(vg)
    return out.print(f'Logical volume "{lv.name}" successfully removed.')


def _pvmove(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    foreground = argv[1:3] == ("-i", "1")
    if foreground:  # polling in the foreground: the same here (no time passes)
        argv = (argv[0], "--background", *argv[3:])
    if len(argv) < 6 or argv[1:3] != ("--background", "--name"):
        raise UnsupportedCommand(f"only 'pvmove --background|-i 1 --name VG/LV SRC DST...': {argv}")
    out = Out()
    found = node._lv(argv[3], out)
    if found is None:
        return out
    vg, lv = found
    others = node.c.locks.others(lv.uuid, node.n.name)
    if others or node.c.locks.holders(lv.uuid).get(node.n.name) == "sh":
        return out.fail(f"LV locked by other host: {vg.name}/{lv.name}",
                        "pvmove in a shared VG requires exclusive lock on named LV.")
    src, dests = argv[4], argv[5:]
    lvm = node.c.lvm
    on = lv.pvs()
    if lvm.pv(src) not in on:
        return out.fail(f"No data to move for {vg.name}.")
    if len(on) != 1:
        raise UnsupportedCommand(f"pvmove of an LV on several PVs is not modelled here: {argv}")
    for d in dests:
        pv = lvm.pv(d)
        start = _first_fit(pv, lv.extents) if pv is not None and pv.vg is vg else None
        if start is not None:  # the whole LV to one free area, at once
            n = lv.extents
            release_all(lv)
            place(lv, [(pv, start, n)])
            node._commit(vg)
            return out.print(f"{src}: Moved: 100.00%") if foreground else out
    return out.fail(f"Insufficient free space: {lv.extents} extents needed")


def _dmsetup_remove(node: LockdNode, argv: tuple[str, ...], stdin: str | None) -> Out:
    if len(argv) != 3:
        raise UnsupportedCommand(f"only 'dmsetup remove NAME' is modelled: {argv}")
    out = Out()
    dev = node.n.dm.get(argv[2])
    if dev is None:
        out.stderr.append(f"Device {argv[2]} not found\nCommand failed.\n")
        out.rc = 1
        return out
    if dev.open:
        out.stderr.append(f"device-mapper: remove ioctl on {dev.name}  failed: Device or resource "
                          f"busy\nCommand failed.\n")
        out.rc = 1
        return out
    del node.n.dm[argv[2]]  # the LV's lock, if any, stays: dmsetup knows nothing of lvmlockd
    return out


_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def _size(arg: str, argv: tuple[str, ...]) -> int:
    """lvm's --size: a number and a unit (b, k, m, g, t; either case: powers of 1024)."""
    num, unit = arg[:-1], arg[-1:].lower()
    if unit not in _UNITS or not num.isdigit():
        raise UnsupportedCommand(f"size {arg!r} not modelled: {argv}")
    return int(num) * _UNITS[unit]


def _first_fit(pv: PV, n: int) -> int | None:
    """The first PE of the first free area of ``pv`` that holds ``n`` extents."""
    return next((s for s, c in pv.free_ranges() if c >= n), None)


def _vg_pvs(lvm: Model, vg: VG, names: list[str], argv: tuple[str, ...]) -> list[PV]:
    pvs = [lvm.pv(name) for name in names]
    if any(pv is None or pv.vg is not vg for pv in pvs):
        raise UnsupportedCommand(f"a PV outside the VG is not modelled here: {argv}")
    return pvs


# (argv[0], argv[1] for lvm and dmsetup) -> the tool (mutates: as in SimulatedHost's tables)
_COMMANDS: dict[tuple[str, ...], Tool] = {
    ("lvm", "fullreport"): Tool(_fullreport, False), ("lvmlockctl",): Tool(_lockctl, False),
    ("pvcreate",): Tool(_pvcreate, True), ("vgcreate",): Tool(_vgcreate, True),
    ("vgchange",): Tool(_vgchange, True), ("vgextend",): Tool(_vgextend, True),
    ("lvcreate",): Tool(_lvcreate, True), ("lvchange",): Tool(_lvchange, True),
    ("lvextend",): Tool(_lvextend, True), ("lvremove",): Tool(_lvremove, True),
    ("pvmove",): Tool(_pvmove, True), ("dmsetup", "remove"): Tool(_dmsetup_remove, True),
    ("wipefs",): Tool(_wipefs, False), ("corosync-quorumtool",): Tool(_quorumtool, False),
}
