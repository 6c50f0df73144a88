"""The block-device kernel of a simulated host: devices, partitions, mounts, holders,
openers and content, at the bottom of the simulator (below every tool).

An LV is a block device too (``/dev/VG/LV``, ``/dev/mapper/VG-LV``): ``mount`` and ``hold``
take its path, and the kernel's open count of it (mounts, devices stacked on it, processes
in ``opened``) is lv_attr's open bit, which lvremove obeys like lvm does.

``openers`` answers from ``open_device``/``close_device`` (a partition's openers count for
its disk, and the reverse): a process holding a device (or
an md array) open with a plain ``open()``, which no mount, holder or tool of the model
shows, as a raw VM disk or a database device does on a real host.

An LV's content (``write``/``fingerprint`` on its path) is its own, whatever its extents do.

``Kernel`` is a room of ``machine.Machine``: it works on the state ``Machine.__init__``
sets up (``model``, ``md``, ``opened``, ``_dm_minors``, ``opener_checks``, ``crashed``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from reconciler.errors import UnsupportedCommand

from . import md_model
from .blockdev import Device
from .model import LV
from .tool import SimulatedCrash


def holders(host: Kernel, dev: Device) -> list[str]:
    """What the kernel would list in the device's holders/ directory."""
    model = host.md
    out = [a.name for a in model.arrays.values() if any(m.device is dev for m in a.members)]
    pv = host.model.pvs.get(dev.path)
    if pv is not None:
        # only an active LV has a device-mapper device holding the disk
        for lv in sorted({entry[1] for entry in pv.used.values() if entry[1].is_active},
                         key=lambda lv: lv.uuid):
            out.append(f"dm-{host.dm_minor(lv.uuid)}")
    out += model.holders.get((dev.major, dev.minor), [])
    if host.drbd is not None:  # DRBD links its attached backing disk's holder (lab, 6.1)
        out += [f"drbd{r.minor}" for r in host.drbd.res.values() if r.disk_path is not None
                and host.resolve_device(r.disk_path) == (dev.major, dev.minor)]
    return sorted(out)


def busy(host: Kernel, dev: Device) -> bool:
    """An exclusive open (mdadm's, mount's) fails: the kernel claims the device, one of its
    partitions, or (for a partition) its disk (``Kernel.claimed``)."""
    return host.refuses_exclusive(dev.path)


class Kernel:
    """Block devices as the kernel shows them: numbers, partitions, mounts, holders,
    processes holding them open, and what is written on them (the host's
    ``blockdev.DeviceTable``, read here with LVs and md arrays in mind)."""

    @property
    def opened(self) -> dict[tuple[int, int], list[tuple[int, str]]]:
        """Processes holding a block device open, by device number: [(pid, comm)]."""
        return self.devices.opened

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
            if path.startswith("/dev/mapper/"):  # the kernel shows every map's name
                dev.sysfs["dm/name"] = path[len("/dev/mapper/"):] + "\n"

    def resolve_device(self, path: str) -> tuple[int, int] | None:
        """What ``stat`` gives for ``path``: a disk's, an md array's or an LV's device
        number (an LV's /dev/VG/LV and /dev/mapper names exist while it does)."""
        return self._devno(path)

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
            if busy(self, dev):
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

    def open_device(self, path: str, pid: int, comm: str, *, exclusive: bool = False) -> None:
        """Process ``pid`` (named ``comm``) opens a device, an LV or an md array with a plain
        ``open()`` (no mount, no holder), or with O_EXCL (``exclusive``: mkfs, pvcreate; the
        kernel then refuses every other exclusive open, ``claimed``; refused like the kernel
        does while something else claims it). ``openers`` sees it, and it counts in the
        kernel's open count (an LV's lv_attr open bit)."""
        devno = self._devno(path)
        if devno is None:
            raise ValueError(f"no device or array {path}")
        if exclusive:
            if self.claimed([path], host=self.name)[path] is not False:
                raise ValueError(f"{path}: an exclusive open is refused (EBUSY)")
            self.devices.exclusive[devno] = pid
        held = self.opened.setdefault(devno, [])
        if all(p != pid for p, _ in held):
            held.append((pid, comm))

    def close_device(self, path: str, pid: int) -> None:
        devno = self._devno(path)
        held = self.opened.get(devno, []) if devno is not None else []
        if all(p != pid for p, _ in held):
            raise ValueError(f"pid {pid} does not hold {path} open")
        held[:] = [(p, c) for p, c in held if p != pid]
        if devno is not None and self.devices.exclusive.get(devno) == pid:
            del self.devices.exclusive[devno]

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

    def claimed(self, paths: Sequence[str], *,
                host: str = "local") -> dict[str, bool | str]:
        """Whether an exclusive open of each path is refused now (``Runner.claimed``), from
        what the host models: the kernel's claims are mounts, holders (md arrays, an active
        LV's device-mapper device on its PV, what tests stack), DRBD's attached backing disks,
        LIO backstores, and processes' O_EXCL opens (``open_device(exclusive=True)``). As
        the kernel's bd_may_claim: a disk is refused while it or one of its partitions is
        claimed, a partition while it or its disk itself is. A DRBD device answers from
        DRBD's own model (mounted or held; a Secondary's open fails EMEDIUMTYPE); a disk of
        a FREE iSCSI session (its SCSI device transport-offline) answers ENXIO, as sd_open
        does after the claim check passed; a path that does not exist is not claimed. Swap
        areas are not modelled: no simulated host has one. The simulated tools refuse what
        this answers True for (``refuses_exclusive``)."""
        if self.crashed:
            raise SimulatedCrash(f"host {self.name} is down; cannot probe devices")
        if host != self.name:
            raise UnsupportedCommand(f"exclusive-open probe for host {host!r} asked of "
                                     f"simulated host {self.name!r}: {paths}")
        direct = self._claims()
        out: dict[str, bool | str] = {}
        for path in paths:
            drbd = self._drbd_minor(path)
            if drbd is not None:
                node, minor = drbd
                res = node.res.get(minor)
                # drbd_open refuses a read-only open of a Secondary (EMEDIUMTYPE), after
                # the claim check
                out[path] = (False if res is None else True if node.in_use(minor) else
                             "EMEDIUMTYPE: Wrong medium type" if res.role == "Secondary"
                             else False)
                continue
            devno = self._devno(path)
            if devno is None:
                out[path] = False
            elif devno in self._offline():
                out[path] = "ENXIO: No such device or address"
            else:
                # _family: a disk's partitions, or a partition's disk
                out[path] = any(n in direct for n in self._family(devno))
        return out

    def refuses_exclusive(self, path: str) -> bool:
        """A tool's O_EXCL open of ``path`` fails with EBUSY now: the one notion of claimed
        that every simulated claimer (pvcreate and the commands that label PVs, drbdmeta,
        LIO's backstore, mdadm, mount) obeys, and that ``claimed`` (Runner.claimed) answers
        the executor's probe from."""
        return self.claimed([path], host=self.name)[path] is True

    def claimed_apart_from_dm(self, path: str) -> bool:
        """Something other than device-mapper claims ``path`` (or its disk or partitions):
        every dm table claims its devices with one holder shared by all of dm, so loading
        an LV's table over a PV fails (EBUSY) only while a mount, md, DRBD, LIO or a
        process holds the PV."""
        devno = self._devno(path)
        direct = self._claims(dm=False)
        return any(n in direct for n in self._family(devno))

    def _drbd_minor(self, path: str):
        if not path.startswith("/dev/drbd"):
            return None
        if self.drbd is None:
            raise UnsupportedCommand(f"{path}: DRBD is not modelled on host {self.name}")
        return self.drbd, int(path[len("/dev/drbd"):])

    def _claims(self, *, dm: bool = True) -> set[tuple[int, int]]:
        """The device numbers the kernel holds exclusively, each claimed for itself (with
        ``dm`` False, leaving out device-mapper's claims: the holders named dm-N)."""
        def counted(names: list[str]) -> bool:
            return any(dm or not h.startswith("dm-") for h in names)

        out = {m[0] for m in self.md.mounts}
        out |= {n for n, hs in self.md.holders.items() if counted(hs)}
        for dev in self.model.devices.values():
            if counted(holders(self, dev)):
                out.add((dev.major, dev.minor))
        out |= {a.devno for a in self.md.arrays.values() if a.holders}
        claimers = list(self.devices.exclusive)
        if self.drbd is not None:
            claimers += [self._devno(r.disk_path) for r in self.drbd.res.values()
                         if r.disk_path is not None]
        if self.iscsi is not None:
            claimers += [self._devno(d) for d in self.iscsi.backstores.values()]
        return out | {n for n in claimers if n is not None}

    def _offline(self) -> set[tuple[int, int]]:
        """The disks of FREE iSCSI sessions: their SCSI devices are transport-offline."""
        if self.iscsi is None:
            return set()
        now = self.clock.now()
        return {n for s in self.iscsi.sessions if s.sysfs_state(now) == "FREE"
                for d in s.disks.values() if (n := self._devno(d)) is not None}

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
        lv.fs_uuid = self.model.new_uuid()

    def fill(self, path: str, label: str) -> None:
        """Write every chunk of a device with data of its own (``label`` tells it apart)."""
        lv = self.lv_by_path(path)
        if lv is not None:
            for chunk in range(-(-lv.extents * lv.vg.extent_size // md_model.CHUNK)):
                self.write(path, chunk, f"{label}:{chunk}".encode())
            return
        dev = self._device(path)
        for chunk in range(-(-dev.size // md_model.CHUNK)):
            self.md.write(dev, chunk, f"{label}:{chunk}".encode())

    def write(self, path: str, chunk: int, data: bytes) -> None:
        """Write one 1 MiB chunk of a device or of an md array (then to each of its members
        that has not failed; one that fails now becomes faulty), or of an LV (a raid1's
        write reaches each image whose device works and that the kernel has not failed)."""
        lv = self.lv_by_path(path)
        if lv is not None:
            if not lv.is_active:
                raise ValueError(f"{path}: the LV is not active")
            if chunk * md_model.CHUNK >= lv.extents * lv.vg.extent_size:
                raise ValueError(f"chunk {chunk} is beyond the end of {path}")
            if lv.on_missing_pv() and not lv.images:
                raise ValueError(f"{path}: its PV is missing, the write fails")
            lv.content[chunk] = data
            for i, img in enumerate(lv.images):
                if i not in lv.refresh and not any(pv.missing for pv in img.pvs()):
                    img.content[chunk] = data
            return
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
        """md5 over a device's content (its first ``size`` bytes), like md5sum of the disk;
        of an LV (any, active or not: what its extents hold), over its chunks."""
        lv = self.lv_by_path(path)
        if lv is not None:
            h = hashlib.md5()
            for chunk in sorted(lv.content):
                if size is None or chunk * md_model.CHUNK < size:
                    h.update(b"%d:" % chunk + lv.content[chunk])
            return h.hexdigest()
        dev = self._device(path)
        return self.md.fingerprint(dev, dev.size if size is None else size)
