"""``SimulatedHost``: a Runner that answers LVM and md commands from an in-memory model.

It stands in for a machine in tests and benchmarks. ``run`` never raises for a command
that fails (it returns the tool's exit code and messages) but raises ``UnsupportedCommand``
for any command or flag it does not model, so a planner change can never pass on a silent
success. Long operations (pvmove, raid1 resync, md recovery) advance with the virtual
``clock`` at ``rate_bytes_per_s`` (md's recovery also no faster than the array's
``sync_speed_max``). Fault injection: ``fail_next`` (one-shot failures),
``crash_after``/``recover`` (the host dies after n more mutating commands; after the
"reboot" pvmoves wait for a bare ``pvmove --background``, raid resync carries on, md arrays
built without superblock are gone, nothing is mounted, files are kept) and ``fail_device``
(every I/O to a device fails: md marks it faulty, lvm sees its PV missing and the VG
partial, as recorded in the lab with qemu's drive_del).

An LV is a block device too (``/dev/VG/LV``, ``/dev/mapper/VG-LV``): ``mount`` and ``hold``
take its path, and the kernel's open count of it (mounts, devices stacked on it, processes
in ``opened``) is lv_attr's open bit, which lvremove obeys like lvm does.

``openers`` answers from ``open_device``/``close_device`` (a partition's openers count for
its disk, and the reverse): a process holding a device (or
an md array) open with a plain ``open()``, which no mount, holder or tool of the model
shows, as a raw VM disk or a database device does on a real host.

``read`` answers the kernel files of the model (/proc/mdstat, /proc/self/mountinfo, md's
and block devices' sysfs) and the host's own files (the clone ledger); see
``md_tools.read``.

Processes: the pvmove pollers are processes in ``procs`` (pid → argv), listed in /proc and
shown by /proc/PID/comm and cmdline like the kernel does. A ``pvmove --background`` forks
one poller that keeps the command line it was started with, except its name, which lvm
overwrites with "(lvm2)" (comm still says ``pvmove``); with lvmpolld running and lvm.conf's
``use_lvmpolld = 1`` (``start_lvmpolld``) the poller is lvmpolld's child
``/sbin/lvm lvpoll --polloperation pvmove VG/pvmoveN``, one per move (a second request for a
move it already polls is ignored, as lvmpolld does). Each move counts its pollers
(``LV.pollers``): a test can assert that nobody ever started a second one. ``kill(pid)``
ends a poller (the move stops advancing); a reboot ends them all.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command, CommandResult

from . import drbd_tools, iscsi_tools, lvm_tools, md_model, md_tools, ops
from .iscsi_model import IscsiSide
from .clock import SimClock
from .model import (DEFAULT_EXTENT_SIZE, LV, PV, RAID_NOTICE_DELAY, VG, Device, Model,
                    NoSpace, pe_count_for)

Match = Callable[[Command], bool] | tuple[str, ...]


class SimulatedCrash(BaseException):
    """The simulated host went down. A BaseException so that no ``except Exception`` in
    the code under test can swallow it: it must end the pass like a killed process."""


class SimulatedHost:
    """A host with block devices and lvm2 2.03; implements the Runner protocol."""

    def __init__(self, name: str = "local", clock: SimClock | None = None,
                 rate_bytes_per_s: float = 64 * 2**20, seed: str = "sim"):
        self.name = name
        self.clock = clock or SimClock()
        self.rate_bytes_per_s = rate_bytes_per_s
        self.default_extent_size = DEFAULT_EXTENT_SIZE
        # lvm.conf's system ID for this host ("" = system_id_source "none", Debian's
        # default): vgcreate, vgsplit and vgimport give it to the VG
        self.system_id = ""
        self.model = Model(seed)
        self.md = md_model.MdModel()
        self.iscsi: IscsiSide | None = None  # set by iscsi_model.Fabric.join
        self.drbd = None  # a drbd_model.DrbdNode once a DrbdNet joins this host
        # what uname -n (/proc/sys/kernel/hostname) says; None: not modelled (reading it
        # raises). DrbdNet.join sets it to the name the host has on the DRBD link.
        self.hostname: str | None = None
        self._dm_minors: dict[str, int] = {}
        self.calls: list[Command] = []
        self.started = 0
        self._faults: list[tuple[Match, int, str]] = []
        self.opener_checks: list[tuple[str, ...]] = []
        self._crash_budget: int | None = None
        self.crashed = False
        # Processes holding a block device open, by device number: [(pid, command name)].
        self.opened: dict[tuple[int, int], list[tuple[int, str]]] = {}
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

    # -- Runner --------------------------------------------------------------------------

    def run(self, cmd: Command) -> CommandResult:
        if self.crashed:
            raise SimulatedCrash(f"host {self.name} is down; not running: {cmd}")
        if cmd.host != self.name:
            raise UnsupportedCommand(f"command for host {cmd.host!r} sent to simulated host "
                                     f"{self.name!r}: {cmd}")
        md_entry = md_tools.lookup(cmd.argv) or drbd_tools.lookup(cmd.argv)
        iscsi_entry = iscsi_tools.lookup(cmd.argv) if self.iscsi is not None else None
        if iscsi_entry is not None:
            iscsi_handler, mutates = iscsi_entry

            def call():
                return iscsi_handler(self, cmd.argv)
        elif md_entry is not None:
            md_handler, mutates = md_entry

            def call():
                return md_handler(self, cmd.argv, cmd.input)
        else:
            handler, mutates = lvm_tools.lookup(cmd.argv)
            if cmd.input is not None:
                raise UnsupportedCommand(f"stdin is not modelled for: {cmd}")

            def call():
                return handler(self, cmd.argv)
        self.calls.append(cmd)
        self.started += 1
        fault = self._take_fault(cmd)
        fabric = self.iscsi.fabric if self.iscsi is not None else None
        shared = fabric is not None and mutates and iscsi_entry is None and md_entry is None
        if fault is not None:
            rc, stdout, stderr = fault[1], "", fault[2]
        else:
            before = fabric.views(self) if shared else {}
            out = call()
            rc, stdout, stderr = out.rc, "".join(out.stdout), "".join(out.stderr)
            if shared:  # LVM metadata written on a disk another host sees
                fabric.share(self, before)
        if mutates and self._crash_budget is not None:
            self._crash_budget -= 1
            if self._crash_budget <= 0:
                self._crash()
        # virtual time: a command takes none, so runs are deterministic
        return CommandResult(command=cmd, rc=rc, stdout=stdout, stderr=stderr, duration=0.0)

    def read(self, path: str, *, host: str = "local") -> str | None:
        """Kernel interface files the model knows (any other /proc or /sys path raises
        ``UnsupportedCommand``), directory listings for sysfs paths ending in '/', and the
        host's own files (None when absent)."""
        if self.crashed:
            raise SimulatedCrash(f"host {self.name} is down; cannot read {path}")
        if host != self.name:
            raise UnsupportedCommand(f"read for host {host!r} sent to simulated host "
                                     f"{self.name!r}: {path}")
        proc = self._proc_file(path)
        if proc is not None:
            return proc or None
        if self.iscsi is not None and iscsi_tools.handles(path):
            return iscsi_tools.read(self, path)
        if path == "/proc/sys/kernel/hostname":
            if self.hostname is None:
                raise UnsupportedCommand(f"host {self.name} has no hostname set (SimulatedHost.hostname)")
            return self.hostname + "\n"
        if path == "/proc/drbd" or path.startswith("/sys/block/drbd"):
            return drbd_tools.read(self, path)
        if path == "/proc/self/mountinfo":
            return (md_tools.read(self, path) or "") + drbd_tools.mount_lines(self)
        return md_tools.read(self, path)

    # -- processes (pvmove pollers, lvmpolld) -------------------------------------------------

    def _proc_file(self, path: str) -> str | None:
        """/proc/, /proc/PID/cmdline and /run/lvm/; "" for a missing one; None: not ours."""
        if path == "/proc/":
            return "".join(f"{pid}\n" for pid in sorted(self.procs, key=str)) + "self\n"
        if path == "/run/lvm/":
            return "lvmpolld.socket\n" if self.lvmpolld_socket else "\n"
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "proc" and parts[2].isdigit():
            pid = int(parts[2])
            if pid not in self.procs:
                return ""
            if parts[3] == "comm":
                return self.comms[pid] + "\n"
            if parts[3] != "cmdline":
                raise UnsupportedCommand(f"process file not modelled by the simulator: {path}")
            return "".join(f"{a}\0" for a in self.procs[pid])
        return None

    def _spawn(self, argv: tuple[str, ...], comm: str | None = None) -> int:
        pid = self._next_pid
        self._next_pid += 1
        self.procs[pid] = tuple(argv)
        self.comms[pid] = (comm or argv[0].rsplit("/", 1)[-1])[:15]
        return pid

    def _fork_poller(self, argv: tuple[str, ...]) -> int:
        """lvm's background poller: a fork of the command, which overwrites its name in
        place with "(lvm2)" (cut to the name's length, NUL-padded); comm keeps the name."""
        name = argv[0]
        renamed = "(lvm2)"[:len(name)] + "\0" * max(0, len(name) - 6)
        return self._spawn((renamed, *argv[1:]), comm=name.rsplit("/", 1)[-1])

    def start_lvmpolld(self) -> None:
        """lvm.conf says ``use_lvmpolld = 1`` and lvmpolld runs (its socket is there)."""
        self.md.files["/etc/lvm/lvm.conf"] = "global {\n\tuse_lvmpolld = 1\n}\n"
        if self.lvmpolld_pid is None:
            self.lvmpolld_pid = self._spawn(("/sbin/lvmpolld", "-t", "60", "-f"))
        self.lvmpolld_socket = True

    def stop_lvmpolld(self) -> None:
        """lvmpolld stops with its children (``systemctl stop``: the whole cgroup) and
        removes its socket; moves it polled are polled by nobody."""
        if self.lvmpolld_pid is not None:
            for pid, argv in list(self.procs.items()):
                if argv[1:2] == ("lvpoll",):
                    self.kill(pid)
            self.procs.pop(self.lvmpolld_pid, None)
            self.comms.pop(self.lvmpolld_pid, None)
        self.lvmpolld_pid = None
        self.lvmpolld_socket = False

    def _lvmpolld_in_use(self) -> bool:
        conf = self.md.files.get("/etc/lvm/lvm.conf") or ""
        return self.lvmpolld_pid is not None and "use_lvmpolld = 1" in conf

    def poll(self, mirrors: list[LV], argv: tuple[str, ...]) -> None:
        """What a ``pvmove`` run with ``argv`` does about polling ``mirrors``."""
        if not mirrors:
            return
        if self._lvmpolld_in_use():
            for m in mirrors:
                lvpoll = ("/sbin/lvm", "lvpoll", "--interval", "15", "--polloperation",
                          "pvmove", m.full_name, "-An")
                if not any(self.procs.get(p) == lvpoll for p in m.pollers):
                    m.pollers.append(self._spawn(lvpoll))
        else:
            pid = self._fork_poller(argv)
            for m in mirrors:
                m.pollers.append(pid)
        for m in mirrors:
            m.polling = True
            self.max_pollers = max(self.max_pollers, len(m.pollers))

    def kill(self, pid: int) -> None:
        """SIGKILL ``pid``: a poller's moves stop advancing (their metadata says where)."""
        if pid not in self.procs:
            raise ValueError(f"no process {pid}")
        del self.procs[pid]
        del self.comms[pid]
        if pid == self.lvmpolld_pid:
            self.lvmpolld_pid = None  # its children live on; its socket file stays
        for vg in self.model.vgs.values():
            for m in ops.pvmove_lvs(vg):
                if pid in m.pollers:
                    m.pollers.remove(pid)
                    # (the kernel would finish the segment it copies; the model stops)
                    m.polling = bool(m.pollers)

    def pollers(self, vg: str, name: str) -> list[int]:
        return list(self.model.vgs[vg].lvs[name].pollers)

    def _reap(self) -> None:
        """Pollers exit once every move they poll is finished."""
        busy = {p for vg in self.model.vgs.values() for m in ops.pvmove_lvs(vg)
                for p in m.pollers}
        for pid, argv in list(self.procs.items()):
            poller = self.comms[pid] == "pvmove" or argv[1:2] == ("lvpoll",)
            if poller and pid not in busy:
                del self.procs[pid], self.comms[pid]
    def openers(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, tuple[str, ...]]:
        """Who holds each device open (``open_device``), by device number like the real
        scan: any alias of a disk names the same openers. Unknown paths have none."""
        if self.crashed:
            raise SimulatedCrash(f"host {self.name} is down; cannot check openers")
        if host != self.name:
            raise UnsupportedCommand(f"openers for host {host!r} asked of simulated host "
                                     f"{self.name!r}: {paths}")
        self.opener_checks.append(tuple(paths))
        out = {}
        for path in paths:
            devno = self._devno(path)
            held = {h for n in self._family(devno) for h in self.opened.get(n, [])}
            out[path] = tuple(f"pid {pid} ({comm})" for pid, comm in sorted(held))
        return out

    def _family(self, devno: tuple[int, int] | None) -> list[tuple[int, int]]:
        """A device with its partitions, or a partition with its disk (as the real scan
        reads them from sysfs)."""
        if devno is None:
            return []
        out = [devno]
        for disk, parts in self.md.partitions.items():
            d = self._device(disk)
            numbers = [(p.major, p.minor) for p in parts]
            if devno == (d.major, d.minor):
                out += numbers
            elif devno in numbers:
                out.append((d.major, d.minor))
        return out

    # -- fault injection -------------------------------------------------------------------

    def fail_next(self, match: Match, rc: int, stderr: str) -> None:
        """The next command that ``match`` accepts (a predicate, or an argv prefix) fails
        with ``rc`` and ``stderr`` without touching the model. One-shot."""
        self._faults.append((match, rc, stderr))

    def _take_fault(self, cmd: Command) -> tuple[Match, int, str] | None:
        for i, fault in enumerate(self._faults):
            match = fault[0]
            hit = match(cmd) if callable(match) else cmd.argv[:len(match)] == tuple(match)
            if hit:
                return self._faults.pop(i)
        return None

    def crash_after(self, n: int) -> None:
        """After ``n`` more mutating commands, every further command raises SimulatedCrash."""
        if n < 0:
            raise ValueError("n must be >= 0")
        self._crash_budget = n
        if n == 0:
            self._crash()

    def _crash(self) -> None:
        self.crashed = True
        self._crash_budget = None

    def recover(self) -> None:
        """Reboot: commands run again; pvmove pollers are gone (the on-disk pvmove state
        stays, back to its last finished segment), raid resync resumes by itself; md arrays
        (built without superblock) and mounts are gone; files and device content stay."""
        self.crashed = False
        for vg in self.model.vgs.values():
            for mirror in ops.pvmove_lvs(vg):
                ops.interrupt_pvmove(mirror)
                mirror.pollers = []
        self.procs, self.comms = {1: ("/sbin/init",)}, {1: "init"}
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

    # -- progress ----------------------------------------------------------------------------

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
                    lv.recovering = set()
                    self.model.active.discard(lv)
            else:
                self.model.active.discard(lv)

    def _md_progress(self, before: float, now: float) -> None:
        if not self.crashed:
            self.md.advance(now - before, self.rate_bytes_per_s)

    # -- builder API (tests and seeding) -------------------------------------------------------

    def add_device(self, path: str, size_bytes: int, aliases: tuple[str, ...] = (), *,
                   major: int | None = None, minor: int | None = None,
                   serial: str | None = None, wwid: str | None = None,
                   dm_uuid: str | None = None) -> None:
        """A block device. Its identity files are those the kernel shows for its kind (as
        recorded in tests/fixtures/outputs/md/identity): a virtio disk (``/dev/vdX``) has
        ``serial`` (no newline; default ``sim-vdX``, "" for a disk qemu gave none); a SCSI disk
        (``/dev/sdX``) ``device/wwid`` (default an NAA id); an NVMe namespace ``wwid``; a
        device-mapper device (``/dev/mapper/...``) ``dm/uuid`` (default an LVM LV's). Any other
        device shows none. Giving one of them for another kind is an error."""
        dev = self.model.add_device(path, size_bytes, tuple(aliases), major, minor)
        name = path.rsplit("/", 1)[-1]
        digest = hashlib.sha256(self.model.stable_id(path).encode()).hexdigest()
        kind = ("virtio" if name.startswith("vd") and path.startswith("/dev/vd") else
                "scsi" if path.startswith("/dev/sd") else
                "nvme" if path.startswith("/dev/nvme") else
                "dm" if path.startswith(("/dev/mapper/", "/dev/dm-")) else "")
        given = {k for k, v in (("serial", serial), ("wwid", wwid), ("dm_uuid", dm_uuid))
                 if v is not None}
        allowed = {"virtio": {"serial"}, "scsi": {"wwid"}, "nvme": {"wwid"},
                   "dm": {"dm_uuid"}}.get(kind, set())
        if given - allowed:
            raise ValueError(f"{path}: a {kind or 'device of this kind'} shows no "
                             f"{', '.join(sorted(given - allowed))}")
        if kind == "virtio":
            dev.sysfs["serial"] = f"sim-{name}"[:20] if serial is None else serial
        elif kind == "scsi":
            dev.sysfs["device/wwid"] = (wwid or f"naa.6{digest[:31]}") + "\n"
        elif kind == "nvme":
            dev.sysfs["wwid"] = (wwid or f"eui.{digest[:16]}") + "\n"
        elif kind == "dm":
            dev.sysfs["dm/uuid"] = (dm_uuid or f"LVM-{self.model.stable_id(path, 64)}") + "\n"

    def resolve_device(self, path: str) -> tuple[int, int] | None:
        dev = self.model.device(path)
        return (dev.major, dev.minor) if dev else None

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

    # -- inspection helpers for tests ----------------------------------------------------------

    def lv(self, vg: str, name: str) -> LV:
        return self.model.vgs[vg].lvs[name]

    def vg(self, name: str) -> VG:
        return self.model.vgs[name]

    def pv(self, path: str) -> PV:
        pv = self.model.pv(path)
        if pv is None:
            raise KeyError(path)
        return pv

    # -- block devices beyond LVM: partitions, mounts, holders, content (md clones) ------------

    def _device(self, path: str) -> Device:
        dev = self.model.device(path)
        if dev is None:
            raise ValueError(f"no device {path}")
        return dev

    def device_by_number(self, devno: tuple[int, int]) -> Device | None:
        return next((d for d in self.model.devices.values() if (d.major, d.minor) == devno),
                    None)

    def dm_minor(self, lv_uuid: str) -> int:
        """The device-mapper minor of an LV (every simulated LV counts as active), numbered
        after the host's other device-mapper devices, in the order first asked for."""
        if lv_uuid not in self._dm_minors:
            taken = sum(1 for d in self.model.devices.values() if d.major == 253)
            self._dm_minors[lv_uuid] = taken + len(self._dm_minors)
        return self._dm_minors[lv_uuid]

    def add_partition(self, disk: str, number: int, size_bytes: int) -> str:
        """Partition ``number`` of ``disk`` (its device number follows the disk's)."""
        parent = self._device(disk)
        path = f"{parent.path}{'p' if parent.path[-1].isdigit() else ''}{number}"
        self.model.add_device(path, size_bytes, (), parent.major, parent.minor + number)
        self.md.partitions.setdefault(parent.path, []).append(self._device(path))
        return path

    def lv_by_path(self, path: str) -> LV | None:
        """The visible LV that ``/dev/VG/LV`` or ``/dev/mapper/VG-LV`` names, if any."""
        parts = path.split("/")
        if len(parts) == 4 and parts[:2] == ["", "dev"] and parts[2] != "mapper":
            vg_name, lv_name = parts[2], parts[3]
        elif len(parts) == 4 and parts[:3] == ["", "dev", "mapper"]:
            # device-mapper doubles the dashes inside each name and joins them with one
            pieces = parts[3].replace("--", "\0").split("-")
            if len(pieces) != 2:
                return None
            vg_name, lv_name = (p.replace("\0", "-") for p in pieces)
        else:
            return None
        vg = self.model.vgs.get(vg_name)
        lv = vg.lvs.get(lv_name) if vg is not None else None
        return lv if lv is not None and lv.visible else None

    def lv_devno(self, lv: LV) -> tuple[int, int]:
        return 253, self.dm_minor(lv.uuid)

    def lv_users(self, lv: LV) -> tuple[list[str], int, list[tuple[int, str]]]:
        """Who keeps an LV's device open: (devices stacked on it, mounts of it, processes)."""
        minor = self._dm_minors.get(lv.uuid)
        if minor is None:  # never looked at as a device: nothing can have it open
            return [], 0, []
        devno = (253, minor)
        return (list(self.md.holders.get(devno, [])),
                sum(1 for m in self.md.mounts if m[0] == devno),
                list(self.opened.get(devno, [])))

    def _lv_open_count(self, lv: LV) -> int:
        if lv.uuid not in self._dm_minors:
            return 0
        holders, mounts, processes = self.lv_users(lv)
        return len(holders) + mounts + len(processes)

    def mount(self, path: str, mountpoint: str) -> None:
        """Mount a device, an LV or an md array (refused like the kernel does when it is
        busy)."""
        array = self.md.array(path)
        lv = self.lv_by_path(path)
        if array is not None:
            devno = array.devno
        elif lv is not None:
            holders, mounts, _ = self.lv_users(lv)
            if holders or mounts:
                raise ValueError(f"{path} is busy (held or mounted)")
            devno = self.lv_devno(lv)
        else:
            dev = self._device(path)
            if md_tools.busy(self, dev):
                raise ValueError(f"{path} is busy (held or mounted)")
            devno = (dev.major, dev.minor)
        self.md.mounts.append((devno, mountpoint, path))

    def umount(self, mountpoint: str) -> None:
        before = len(self.md.mounts)
        self.md.mounts = [m for m in self.md.mounts if m[1] != mountpoint]
        if len(self.md.mounts) == before:
            raise ValueError(f"nothing mounted at {mountpoint}")

    def _devno(self, path: str) -> tuple[int, int] | None:
        array = self.md.array(path)
        if array is not None:
            return array.devno
        lv = self.lv_by_path(path)
        if lv is not None:
            return self.lv_devno(lv)
        dev = self.model.device(path)
        return (dev.major, dev.minor) if dev is not None else None

    def open_device(self, path: str, pid: int, comm: str) -> None:
        """Process ``pid`` (named ``comm``) opens a device, an LV or an md array with a plain
        ``open()``: no mount, no holder, no O_EXCL. ``openers`` sees it, and it counts in
        the kernel's open count (an LV's lv_attr open bit)."""
        devno = self._devno(path)
        if devno is None:
            raise ValueError(f"no device or array {path}")
        held = self.opened.setdefault(devno, [])
        if all(p != pid for p, _ in held):
            held.append((pid, comm))

    def close_device(self, path: str, pid: int) -> None:
        devno = self._devno(path)
        held = self.opened.get(devno, []) if devno is not None else []
        if all(p != pid for p, _ in held):
            raise ValueError(f"pid {pid} does not hold {path} open")
        held[:] = [(p, c) for p, c in held if p != pid]

    def hold(self, path: str, holder: str) -> None:
        """Stack ``holder`` (a dm or md name) on a device, an LV, or an md array."""
        array = self.md.array(path)
        if array is not None:
            array.holders.append(holder)
            return
        lv = self.lv_by_path(path)
        if lv is not None:
            self.md.holders.setdefault(self.lv_devno(lv), []).append(holder)
            return
        dev = self._device(path)
        self.md.holders.setdefault((dev.major, dev.minor), []).append(holder)

    def unhold(self, path: str, holder: str) -> None:
        """Take ``holder`` off a device or an LV again (``dmsetup remove`` of it)."""
        lv = self.lv_by_path(path)
        devno = self.lv_devno(lv) if lv is not None else self.resolve_device(path)
        held = self.md.holders.get(devno, []) if devno is not None else []
        if holder not in held:
            raise ValueError(f"{holder} is not stacked on {path}")
        held.remove(holder)

    def fail_device(self, path: str) -> None:
        """Every I/O to the device fails from now on (qemu's drive_del in the lab): as a
        member being recovered or written to, md marks it faulty; lvm cannot read its label,
        so a PV on it is missing ("[unknown]") and its VG partial; a raid1 image on it is
        seen out of sync once md notices (``RAID_NOTICE_DELAY`` later)."""
        dev = self._device(path)
        if dev.failed_at is None:
            dev.failed_at = self.clock.now()
        self.md.failed.add(dev)
        for array in self.md.arrays.values():
            for m in array.members:
                if m.device is dev and array.recovering is m:
                    self.md.fail_member(array, m)
        # an LVM raid1 image being recovered onto it fails at once and the recovery ends:
        # lvm then shows 100.00 and idle (lab: raid1_new_leg_failed_mid_sync, and the
        # issue-13 link cut), and the leg needs a refresh once the device is back
        pv = self.model.pvs.get(dev.path)
        if pv is not None and pv.vg is not None:
            for lv in pv.vg.lvs.values():
                if lv.kind != "raid1" or not lv.is_active:
                    continue
                for i in sorted(lv.recovering):
                    if pv in lv.images[i].pvs() or pv in lv.metas[i].pvs():
                        lv.recovering.discard(i)
                        lv.refresh.add(i)
                if not lv.recovering:
                    self.model.active.discard(lv)

    def restore_device(self, path: str) -> None:
        """A failed device works again (a transient failure: a dm table swapped back, a
        path restored): lvm finds its PV again. A raid1 leg on it that md had noticed
        failed (``RAID_NOTICE_DELAY`` after the failure) stays failed in the kernel until
        ``lvchange --refresh``: lv_health_status "refresh needed", as recorded in the lab
        (raid1_refresh_needed). The VG metadata written while the PV was missing marks it
        MISSING in lvm (vgextend --restoremissing): not modelled, refused."""
        dev = self._device(path)
        if dev.failed_at is None:
            raise ValueError(f"{path} has not failed")
        pv = self.model.pvs.get(dev.path)
        if pv is not None and pv.hint == "[unknown]":
            raise ValueError(f"{path}: VG metadata was written while its PV was missing; lvm "
                             f"then needs vgextend --restoremissing, which is not modelled")
        noticed = self.clock.now() - dev.failed_at >= RAID_NOTICE_DELAY
        if pv is not None and pv.vg is not None:
            for lv in pv.vg.lvs.values():
                if lv.kind != "raid1" or not lv.is_active:
                    continue
                for i, (img, meta) in enumerate(zip(lv.images, lv.metas)):
                    if (pv in img.pvs() or pv in meta.pvs()) and noticed:
                        lv.refresh.add(i)  # (one recovering when it failed is in already)
        dev.failed_at = None
        self.md.failed.discard(dev)

    def grow_device(self, path: str, size_bytes: int) -> None:
        """The device got bigger (a LUN or virtual disk resized, a RAID grown): dev_size
        follows at once, pv_size only after ``pvresize``."""
        dev = self._device(path)
        if size_bytes <= dev.size:
            raise ValueError(f"{path} is {dev.size} bytes; it can only grow")
        dev.size = size_bytes

    def mkfs(self, lv_path: str, fstype: str) -> None:
        """Record a file system on an LV (its whole size) for ``lvextend --resizefs``."""
        if fstype not in ("ext4", "xfs"):
            raise ValueError(f"file system {fstype!r} is not modelled (ext4, xfs)")
        lv = self.lv_by_path(lv_path)
        if lv is None:
            raise ValueError(f"no LV {lv_path}")
        lv.fs, lv.fs_size = fstype, lv.extents * lv.vg.extent_size
        lv.fs_made = lv.fs_size

    def fill(self, path: str, label: str) -> None:
        """Write every chunk of a device with data of its own (``label`` tells it apart)."""
        dev = self._device(path)
        for chunk in range(-(-dev.size // md_model.CHUNK)):
            self.md.write(dev, chunk, f"{label}:{chunk}".encode())

    def write(self, path: str, chunk: int, data: bytes) -> None:
        """Write one 1 MiB chunk of a device or of an md array (then to each of its members
        that has not failed; one that fails now becomes faulty)."""
        array = self.md.array(path)
        if array is None:
            self.md.write(self._device(path), chunk, data)
            return
        if chunk * md_model.CHUNK >= array.size:
            raise ValueError(f"chunk {chunk} is beyond the end of {path}")
        array.array_state = "clean"
        for m in array.members:
            if m.faulty:
                continue
            if m.device in self.md.failed:
                self.md.fail_member(array, m)
                continue
            self.md.write(m.device, chunk, data)

    def fingerprint(self, path: str, size: int | None = None) -> str:
        """md5 over a device's content (its first ``size`` bytes), like md5sum of the disk."""
        dev = self._device(path)
        return self.md.fingerprint(dev, dev.size if size is None else size)

    def md_array(self, path: str) -> md_model.Array | None:
        return self.md.array(path)
