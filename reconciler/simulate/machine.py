"""``Machine``: the state of one simulated host and the rooms that work on it, below the
tools (every tool handler gets a ``Machine``; none imports the host that dispatches to it).

Its rooms: ``kernel.Kernel`` (block devices, mounts, holders, openers, content),
``processes.Processes`` (pollers, lvmpolld), ``faults.Faults`` (failing commands, crashes,
failing devices); here: the subsystems' models (``model`` for LVM, ``md``, and ``drbd`` and
``iscsi`` once a network or fabric joins the host), virtual time (long operations advance
with the clock), the reboot, and the builder API for tests and seeding.
"""

from __future__ import annotations

import hashlib

from reconciler.runner import Command

from . import md_model, ops
from .clock import SimClock
from .faults import Faults, Match
from .blockdev import DeviceTable
from .kernel import Kernel
from .model import DEFAULT_EXTENT_SIZE, LV, PV, VG, Model, NoSpace, pe_count_for
from .processes import Processes

__all__ = ["Machine", "Match"]


class Machine(Kernel, Processes, Faults):
    """A host with block devices and lvm2 2.03, md, and (once joined) DRBD and iSCSI."""

    def __init__(self, name: str = "local", clock: SimClock | None = None,
                 rate_bytes_per_s: float = 64 * 2**20, seed: str = "sim"):
        self.name = name
        self.clock = clock or SimClock()
        self.rate_bytes_per_s = rate_bytes_per_s
        self.default_extent_size = DEFAULT_EXTENT_SIZE
        # lvm.conf's system ID for this host ("" = system_id_source "none", Debian's
        # default): vgcreate, vgsplit and vgimport give it to the VG
        self.system_id = ""
        # the kernel's block devices, which every subsystem's model sits on
        self.devices = DeviceTable()
        self.model = Model(seed, self.devices)
        self.md = md_model.MdModel(self.devices)
        self.iscsi = None  # an iscsi_model.IscsiSide, set by iscsi_model.Fabric.join
        self.drbd = None  # a drbd_model.DrbdNode once a DrbdNet joins this host
        # what uname -n (/proc/sys/kernel/hostname) says; None: not modelled (reading it
        # raises). DrbdNet.join sets it to the name the host has on the DRBD link.
        self.hostname: str | None = None
        self.boots = 0  # reboots so far: /proc/sys/kernel/random/boot_id changes with each
        self._uuids = 0  # /proc/sys/kernel/random/uuid reads so far (a new UUID at each)
        self._dm_minors: dict[str, int] = {}
        self.calls: list[Command] = []
        self.started = 0
        self._faults: list[tuple[Match, int, str]] = []
        self.opener_checks: list[tuple[str, ...]] = []
        self._crash_budget: int | None = None
        self.crashed = False
        # lvextend --resizefs: the next fsadm fails with this stderr, or ("crash") the host
        # goes down once the LV has grown and before fsadm has touched the file system
        self.fsadm_fault: str | None = None
        self.model.open_count = self._lv_open_count
        self.model.now = self.clock.now()
        self.procs: dict[int, tuple[str, ...]] = {1: ("/sbin/init",)}  # pid -> cmdline
        self.comms: dict[int, str] = {1: "init"}  # pid -> /proc/PID/comm
        self._next_pid = 1000
        self.lvmpolld_pid: int | None = None
        self.lvmpolld_socket = False
        self.max_pollers = 0  # the most pollers any one move ever had at once
        self.clock.on_advance(self._progress)
        self.clock.on_advance(self._md_progress)

    @property
    def boot_id(self) -> str:
        """/proc/sys/kernel/random/boot_id: a UUID of its own for each boot (deterministic
        here: derived from the host's name and its number of reboots)."""
        return _uuid(f"boot:{self.name}:{self.boots}")

    def random_uuid(self) -> str:
        """/proc/sys/kernel/random/uuid: a new UUID at each read (deterministic here)."""
        self._uuids += 1
        return _uuid(f"uuid:{self.name}:{self._uuids}")

    def recover(self) -> None:
        """Reboot: commands run again; pvmove pollers are gone (the on-disk pvmove state
        stays, back to its last finished segment), raid resync resumes by itself; md arrays
        (built without superblock), mounts and every process holding a device open are gone; files and device content stay."""
        self.crashed = False
        self.boots += 1
        for vg in self.model.vgs.values():
            for mirror in ops.pvmove_lvs(vg):
                ops.interrupt_pvmove(mirror)
                mirror.pollers = []
        self.procs, self.comms = {1: ("/sbin/init",)}, {1: "init"}
        self.devices.opened = {}  # the processes that held devices open died with the machine
        self.lvmpolld_pid, self.lvmpolld_socket = None, False
        self.md.reboot()
        if self.drbd is not None:
            self.drbd.reboot()
        # udev's event autoactivation (issue-13 lab notes §3): every LV of a complete VG of this
        # host's comes up active, those of a partial, exported or foreign VG do not; a
        # kernel's memory of a failed leg is gone with the old tables
        for vg in self.model.vgs.values():
            up = not (vg.missing_pvs or vg.exported or
                      (vg.system_id and vg.system_id != self.system_id))
            for lv in vg.lvs.values():
                if lv.parent is None and lv.kind != "pvmove":
                    lv.active = up and lv.autoactivation
                if lv.refresh:  # not recorded: md re-adds the stale leg and recovers it
                    lv.recovering |= lv.refresh
                    lv.refresh, lv.synced = set(), 0.0
                    self.model.active.add(lv)

    def _progress(self, before: float, now: float) -> None:
        self.model.now = now
        if self.crashed or not self.model.active:
            return
        for lv in list(self.model.active):
            step = self.rate_bytes_per_s * (now - before) / lv.vg.extent_size
            if lv.kind == "pvmove":
                if lv.polling:
                    lv.moved = min(float(lv.extents), lv.moved + step)
                    if lv.moved >= lv.extents:
                        ops.finish_pvmove(self.model, lv)
                        self._reap()
            elif lv.kind == "raid1" and lv.recovering and not lv.active:
                continue  # no kernel array: the resync waits for the next activation
            elif lv.kind == "raid1" and lv.recovering:
                lv.synced = min(float(lv.extents), lv.synced + step)
                if lv.synced >= lv.extents:
                    for i in lv.recovering:  # the recovered image now holds the whole LV
                        lv.images[i].content = dict(lv.content)
                    lv.recovering = set()
                    self.model.active.discard(lv)
            else:
                self.model.active.discard(lv)

    def _md_progress(self, before: float, now: float) -> None:
        if not self.crashed:
            self.md.advance(now - before, self.rate_bytes_per_s)

    def add_pv(self, path: str) -> None:
        dev = self.model.device(path)
        if dev is None:
            raise ValueError(f"no device {path}")
        if dev.path in self.model.pvs:
            raise ValueError(f"{path} is already a PV")
        self.model.pvs[dev.path] = PV(dev, self.model.new_uuid())

    def add_vg(self, name: str, pv_paths: list[str] | tuple[str, ...],
               extent_size: int = DEFAULT_EXTENT_SIZE, *, lock_type: str = "") -> None:
        if name in self.model.vgs:
            raise ValueError(f"VG {name} exists")
        if extent_size <= 0 or extent_size & (extent_size - 1):
            raise ValueError(f"extent size must be a power of two, got {extent_size}")
        vg = VG(name, self.model.new_uuid(), extent_size, lock_type)
        pvs = []
        for path in pv_paths:
            pv = self.model.pv(path)
            if pv is None:
                self.add_pv(path)
                pv = self.model.pv(path)
            if pv.vg is not None or pv in pvs:
                raise ValueError(f"{path} is already in VG {pv.vg.name if pv.vg else name}")
            if pe_count_for(pv.device.size, extent_size) < 1:
                raise ValueError(f"{path} is too small for a PV")
            pvs.append(pv)
        ops.join_vg(vg, pvs)
        self.model.vgs[name] = vg

    def add_lv(self, vg: str, name: str, size_bytes: int,
               pvs: list[str] | tuple[str, ...] | None = None, *,
               layout: list[tuple[str, int]] | None = None) -> None:
        """Create a linear LV, allocated like lvm (on ``pvs`` only, when given); ValueError
        when it cannot be placed. ``layout`` instead pins how many extents go on which PV,
        in that order (to re-create a captured host); its counts must add up to the size."""
        group = self.model.vgs.get(vg)
        if group is None:
            raise ValueError(f"no VG {vg}")
        if name in group.lvs:
            raise ValueError(f"LV {vg}/{name} exists")
        if size_bytes <= 0:
            raise ValueError("size must be positive")
        allowed = group.pvs if pvs is None else [self._vg_pv(group, p) for p in pvs]
        extents = -(-size_bytes // group.extent_size)
        if layout is not None:
            if (pvs is not None or sum(n for _, n in layout) != extents
                    or len({p for p, _ in layout}) != len(layout)):
                raise ValueError(f"layout {layout} does not hold the {extents} extents of "
                                 f"{vg}/{name} (and excludes pvs=)")
            try:
                ops.create_lv_on(self.model, group, name, [
                    (self._vg_pv(group, path), n) for path, n in layout])
            except NoSpace as e:
                raise ValueError(f"cannot allocate {vg}/{name}: {e}") from None
            return
        try:
            ops.create_lv(self.model, group, name, extents, allowed)
        except NoSpace as e:
            raise ValueError(f"cannot allocate {vg}/{name}: {e}") from None

    def _vg_pv(self, vg: VG, path: str) -> PV:
        pv = self.model.pv(path)
        if pv is None or pv.vg is not vg:
            raise ValueError(f"{path} is not a PV of {vg.name}")
        return pv

    def lv(self, vg: str, name: str) -> LV:
        return self.model.vgs[vg].lvs[name]

    def vg(self, name: str) -> VG:
        return self.model.vgs[name]

    def pv(self, path: str) -> PV:
        pv = self.model.pv(path)
        if pv is None:
            raise KeyError(path)
        return pv

    def md_array(self, path: str) -> md_model.Array | None:
        return self.md.array(path)


def _uuid(seed: str) -> str:
    h = hashlib.sha256(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
