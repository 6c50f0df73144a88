"""The simulated host's md arrays, block-device usage and files, and the kernel files that
show them (/proc/mdstat, /proc/self/mountinfo, /sys/block/mdN/..., /sys/dev/block/M:m/...).

Written from the kernel's behaviour as recorded in tests/fixtures/outputs/md/ (Linux 6.1,
mdadm 4.2), not from this project's parsers. Only what ``mdadm --build`` clones use is
modelled: non-persistent RAID1 arrays of two slots, the recovery of an added member, the
per-array sync speed knobs, device holders and mounts, and a member failing.

Device content is modelled coarsely, so tests can check *what* was copied where: each
device is a row of 1 MiB chunks, each chunk holding a token (a written chunk) or nothing
(zeros); ``fingerprint`` is an md5 over them. md recovery copies the source's chunks onto
the target as it advances; writes to an array go to every member that has not failed.

The md module is not loaded on a fresh host (no /proc/mdstat, as in the lab's guests);
the first array loads it. A reboot (``SimulatedHost.recover``) loses what does not survive
one: every array (none has a superblock), every mount, the loaded md module. Files stay.
"""

from __future__ import annotations

import posixpath
import re

from .blockdev import CHUNK, Device, DeviceTable

MD_MAJOR = 9
SYSTEM_SPEED_MIN = 1000  # KiB/s, /proc/sys/dev/raid/speed_limit_min
SYSTEM_SPEED_MAX = 200000  # KiB/s, /proc/sys/dev/raid/speed_limit_max
MD_PATH = re.compile(r"^/dev/md(0|[1-9][0-9]*)$")


class Member:
    __slots__ = ("device", "flags", "index", "slot")

    def __init__(self, device: Device, index: int, slot: int | None, flags: str):
        self.device = device
        self.index = index  # descriptor number, "[2]" in /proc/mdstat
        self.slot = slot
        self.flags = flags  # "in_sync", "spare" (being recovered), "faulty,write_error"

    @property
    def faulty(self) -> bool:
        return self.flags.startswith("faulty")


class Array:
    """A RAID1 built without superblock: two slots, members in order of addition."""

    def __init__(self, name: str, size: int):
        self.name = name  # "md100"
        self.minor = int(name[2:])
        self.size = size  # bytes; the source's size rounded down to KiB
        self.members: list[Member] = []
        self.array_state = "read-auto"  # until the first write (mdadm --add switches it)
        self.speed_min: int | None = None  # KiB/s set on this array; None: the system's
        self.speed_max: int | None = None
        self.recovering: Member | None = None
        self.done = 0.0  # bytes recovered onto ``recovering``
        self.copied = 0  # chunks copied so far
        self.speed = 0.0  # bytes/s of the running recovery
        self.holders: list[str] = []  # devices stacked on the array (tests add them)

    @property
    def path(self) -> str:
        return f"/dev/{self.name}"

    @property
    def devno(self) -> tuple[int, int]:
        return MD_MAJOR, self.minor

    def in_sync(self) -> list[Member]:
        return [m for m in self.members if m.flags == "in_sync"]

    @property
    def degraded(self) -> int:
        return 2 - len(self.in_sync())

    @property
    def max_speed(self) -> int:
        return self.speed_max if self.speed_max is not None else SYSTEM_SPEED_MAX


class MdModel:
    """Arrays and plain files of one host, on its kernel's device table (``blockdev``:
    mounts, holders, partitions, failing devices and device content are the table's; md
    reads and changes them through the names below)."""

    def __init__(self, devices: DeviceTable | None = None) -> None:
        self.table = devices if devices is not None else DeviceTable()
        self.arrays: dict[str, Array] = {}
        self.order: list[str] = []  # names, oldest first (/proc/mdstat lists newest first)
        self.loaded = False  # the md module: /proc/mdstat exists once mdadm has loaded it
        self.personalities: list[str] = []
        self.files: dict[str, str] = {}
        self.dirs: set[str] = {"/", "/etc", "/run", "/tmp", "/var", "/var/lib"}

    # -- the kernel's device table ------------------------------------------------------------

    @property
    def mounts(self) -> list[tuple[tuple[int, int], str, str]]:
        return self.table.mounts

    @mounts.setter
    def mounts(self, value: list[tuple[tuple[int, int], str, str]]) -> None:
        self.table.mounts = value

    @property
    def holders(self) -> dict[tuple[int, int], list[str]]:
        return self.table.holders

    @property
    def partitions(self) -> dict[str, list[Device]]:
        return self.table.partitions

    @property
    def failed(self) -> set[Device]:
        return self.table.failed

    @property
    def content(self) -> dict[Device, dict[int, bytes]]:
        return self.table.content

    # -- arrays -------------------------------------------------------------------------------

    def array(self, path: str) -> Array | None:
        m = MD_PATH.match(path)
        return self.arrays.get(f"md{m.group(1)}") if m else None

    def add_array(self, array: Array) -> None:
        self.arrays[array.name] = array
        self.order.append(array.name)
        self.loaded = True
        if "raid1" not in self.personalities:
            self.personalities.append("raid1")

    def remove_array(self, array: Array) -> None:
        del self.arrays[array.name]
        self.order.remove(array.name)
        self.mounts = [m for m in self.mounts if m[0] != array.devno]

    def member_of(self, dev: Device) -> Array | None:
        return next((a for a in self.arrays.values()
                     if any(m.device is dev for m in a.members)), None)

    def reboot(self) -> None:
        self.arrays.clear()
        self.order.clear()
        self.personalities.clear()
        self.loaded = False
        self.mounts.clear()

    # -- recovery -----------------------------------------------------------------------------

    def advance(self, seconds: float, rate: float) -> None:
        for array in list(self.arrays.values()):
            m = array.recovering
            if m is None:
                continue
            array.speed = min(rate, array.max_speed * 1024.0)
            array.done = min(float(array.size), array.done + array.speed * seconds)
            self._copy(array, m)
            if m.device in self.failed:
                self.fail_member(array, m)
            elif array.done >= array.size:
                m.flags = "in_sync"
                array.recovering = None
                array.speed = 0.0

    def _copy(self, array: Array, m: Member) -> None:
        source = next((s for s in array.in_sync()), None)
        upto = -(-int(array.done) // CHUNK) if array.done >= array.size else int(array.done) // CHUNK
        if source is None:
            return
        src, dst = self.content.get(source.device, {}), self.content.setdefault(m.device, {})
        for chunk in range(array.copied, upto):
            if chunk in src:
                dst[chunk] = src[chunk]
            else:
                dst.pop(chunk, None)
        array.copied = max(array.copied, upto)

    def fail_member(self, array: Array, m: Member) -> None:
        m.flags, m.slot = "faulty,write_error", None
        if array.recovering is m:
            array.recovering = None
            array.speed = 0.0

    # -- content ------------------------------------------------------------------------------

    def write(self, dev: Device, chunk: int, token: bytes) -> None:
        self.table.write(dev, chunk, token)

    def fingerprint(self, dev: Device, size: int) -> str:
        """md5 over the device's chunks (zero chunks included, as the same count)."""
        return self.table.fingerprint(dev, size)

    # -- files --------------------------------------------------------------------------------

    def parent_exists(self, path: str) -> bool:
        return posixpath.dirname(path) in self.dirs


# -- kernel names and files --------------------------------------------------------------------


def kernel_name(dev: Device) -> str:
    if dev.path.startswith(("/dev/mapper/", "/dev/dm-")):
        return f"dm-{dev.minor}"
    return posixpath.basename(dev.path)


def mdstat(model: MdModel) -> str:
    out = ["Personalities : " + "".join(f"[{p}] " for p in model.personalities) + "\n"]
    for name in reversed(model.order):
        a = model.arrays[name]
        ro = " (auto-read-only)" if a.array_state == "read-auto" else ""
        members = " ".join(f"{kernel_name(m.device)}[{m.index}]" + ("(F)" if m.faulty else "")
                           for m in reversed(a.members))
        slots = "".join("U" if any(m.slot == s and m.flags == "in_sync" for m in a.members)
                        else "_" for s in range(2))
        out.append(f"{name} : active{ro} raid1 {members}\n")
        out.append(f"      {a.size // 1024} blocks super non-persistent "
                   f"[2/{len(a.in_sync())}] [{slots}]\n")
        if a.recovering is not None:
            out.append(f"      {_progress(a)}\n")
        out.append("      \n")
    out.append("unused devices: <none>\n")
    return "".join(out)


def _progress(a: Array) -> str:
    """The recovery line, laid out like the kernel's status_resync()."""
    done_kib, total_kib = int(a.done) // 1024, a.size // 1024
    per_milli = done_kib * 1000 // total_kib if total_kib else 0
    x = per_milli // 50
    bar = "[" + "=" * x + ">" + "." * (20 - x) + "]"
    left = int((a.size - a.done) / a.speed) if a.speed else 0
    return (f"{bar}  recovery ={per_milli // 10:3d}.{per_milli % 10}% ({done_kib}/{total_kib}) "
            f"finish={left // 60}.{left % 60 // 6}min speed={int(a.speed) // 1024}K/sec")


def mountinfo(model: MdModel) -> str:
    """The guest's own mounts (as the lab recorded them), then the modelled ones."""
    base = ["21 24 0:19 / /proc rw,relatime - proc proc rw",
            "22 24 0:20 / /sys rw,relatime - sysfs sysfs rw",
            "23 24 0:5 / /dev rw,relatime - devtmpfs devtmpfs rw,mode=755,inode64",
            "24 1 0:21 / / rw,relatime - ext4 /dev/root rw",
            "25 24 0:22 / /run rw,relatime - tmpfs tmpfs rw,mode=755,inode64"]
    lines = base + [f"{40 + i} 24 {d[0]}:{d[1]} / {_escape(mp)} rw,relatime - ext4 {src} rw"
                    for i, (d, mp, src) in enumerate(model.mounts)]
    return "".join(line + "\n" for line in lines)


def _escape(path: str) -> str:
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in path)


def md_attr(a: Array, attr: str) -> str | None:
    """/sys/block/mdN/md/<attr>, or None for an attribute the simulator does not model."""
    recovering = a.recovering is not None
    values = {
        "array_state": a.array_state,
        "level": "raid1",
        "raid_disks": "2",
        "metadata_version": "none",
        "sync_action": "recover" if recovering else "idle",
        "sync_completed": (f"{int(a.done) // 512} / {a.size // 512}" if recovering else "none"),
        "degraded": str(a.degraded),
        "sync_speed": str(int(a.speed) // 1024) if recovering else "none",
        "sync_speed_min": (f"{a.speed_min} (local)" if a.speed_min is not None
                           else f"{SYSTEM_SPEED_MIN} (system)"),
        "sync_speed_max": (f"{a.speed_max} (local)" if a.speed_max is not None
                           else f"{SYSTEM_SPEED_MAX} (system)"),
        "component_size": str(a.size // 1024),
    }
    return values.get(attr) + "\n" if attr in values else None


def member_attr(m: Member, attr: str) -> str | None:
    values = {"state": m.flags, "slot": "none" if m.slot is None else str(m.slot),
              "block/dev": f"{m.device.major}:{m.device.minor}"}
    return values[attr] + "\n" if attr in values else None


# What /sys/dev/block/M:m/ lists for a virtio disk (recorded), partitions added after.
DISK_ENTRIES = ("alignment_offset", "bdi", "cache_type", "capability", "dev", "device",
                "discard_alignment", "diskseq", "events", "events_async", "events_poll_msecs",
                "ext_range", "hidden", "holders", "inflight", "integrity", "mq", "power", "queue",
                "range", "removable", "ro", "serial", "size", "slaves", "stat", "subsystem",
                "trace", "uevent")
