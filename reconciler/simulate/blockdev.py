"""The kernel's block-device table, at the bottom of the simulator: every subsystem's model
(LVM's ``model.Model``, md's ``md_model.MdModel``, and through them DRBD and iSCSI) sits
on one ``DeviceTable`` per host and none owns it.

What the kernel knows of a block device, whatever uses it: its path and aliases (udev's
links), its size and number (major:minor), its identity files in sysfs, whether every I/O
to it fails; and across devices: partitions, mounts, holders (devices stacked on one),
processes holding one open with a plain ``open()``, and what is written on each, as 1 MiB
chunks (a chunk holds a token or nothing: zeros), with ``fingerprint`` an md5 over them.
The rules that read this table with LVs and arrays in mind are ``kernel.Kernel``'s.
"""

from __future__ import annotations

import hashlib
import re

CHUNK = 1 << 20  # the unit of device content
Devno = tuple[int, int]


class Device:
    __slots__ = ("path", "size", "major", "minor", "aliases", "signature", "failed_at", "sysfs")

    def __init__(self, path: str, size: int, major: int, minor: int, aliases: tuple[str, ...]):
        self.path = path
        self.size = size
        self.major = major
        self.minor = minor
        self.aliases = aliases
        # A foreign signature (e.g. "ext4") that pvcreate would have to wipe; tests set it.
        self.signature: str | None = None
        # When every I/O to the device started failing (qemu's drive_del in the lab), or None.
        # lvm cannot read its label any more: a PV on it is missing from then on.
        self.failed_at: float | None = None
        # The identity files under /sys/dev/block/M:m/ with their exact content ("serial":
        # "d0" for a virtio disk, "device/wwid" for a SCSI disk, "dm/uuid"...); see
        # Kernel.add_device.
        self.sysfs: dict[str, str] = {}


class DeviceTable:
    """One host's block devices and who uses them."""

    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.aliases: dict[str, str] = {}  # alias -> canonical path
        self.partitions: dict[str, list[Device]] = {}  # disk path -> its partitions
        self.mounts: list[tuple[Devno, str, str]] = []  # (devno, mount point, source)
        self.holders: dict[Devno, list[str]] = {}  # added by tests: crypt, dm, ...
        # processes holding a device open with a plain open(): devno -> [(pid, comm)]
        self.opened: dict[Devno, list[tuple[int, str]]] = {}
        # of those, the ones opened with O_EXCL (the kernel's exclusive claim): devno -> pid
        self.exclusive: dict[Devno, int] = {}
        self.failed: set[Device] = set()  # md's members whose every I/O fails
        self.content: dict[Device, dict[int, bytes]] = {}
        self._numbers: set[Devno] = set()
        self._next_minor: dict[int, int] = {}

    def device(self, path: str) -> Device | None:
        return self.devices.get(self.aliases.get(path, path))

    def add_device(self, path: str, size: int, aliases: tuple[str, ...] = (),
                   major: int | None = None, minor: int | None = None) -> Device:
        for name in (path, *aliases):
            if name in self.devices or name in self.aliases:
                raise ValueError(f"device name {name} is already in use")
        if size <= 0:
            raise ValueError(f"device size must be positive, got {size}")
        if (major is None) != (minor is None):
            raise ValueError("give both major and minor, or neither")
        number = (major, minor) if major is not None else self._device_number(path)
        if number in self._numbers:
            raise ValueError(f"device number {number[0]}:{number[1]} is already in use")
        self._numbers.add(number)
        dev = Device(path, size, number[0], number[1], tuple(aliases))
        self.devices[path] = dev
        for alias in aliases:
            self.aliases[alias] = path
        return dev

    def remove_device(self, path: str) -> None:
        """The device is gone (a session's SCSI disk at logout): its names and number free."""
        dev = self.devices.pop(path)
        for alias in dev.aliases:
            self.aliases.pop(alias, None)
        self._numbers.discard((dev.major, dev.minor))

    def _device_number(self, path: str) -> Devno:
        m = re.fullmatch(r"/dev/(vd|sd|xvd)([a-z]+)", path)
        if m:
            # virtio-blk's major is dynamic; 254 is what the recorded Debian 6.1 guests show
            major = {"vd": 254, "sd": 8, "xvd": 202}[m.group(1)]
            index = 0
            for ch in m.group(2):
                index = index * 26 + (ord(ch) - ord("a") + 1)
            number = (major, 16 * (index - 1))
            if number not in self._numbers:
                return number
        major = 253 if path.startswith(("/dev/mapper/", "/dev/dm-")) else 259
        while True:
            minor = self._next_minor.get(major, 0)
            self._next_minor[major] = minor + 1
            if (major, minor) not in self._numbers:
                return major, minor

    # -- content ---------------------------------------------------------------------------

    def write(self, dev: Device, chunk: int, token: bytes) -> None:
        self.content.setdefault(dev, {})[chunk] = token

    def fingerprint(self, dev: Device, size: int) -> str:
        """md5 over the device's chunks (zero chunks included, as the same count)."""
        h = hashlib.md5(f"{size}\n".encode())
        chunks = self.content.get(dev, {})
        for chunk in sorted(c for c in chunks if c * CHUNK < size):
            h.update(f"{chunk}:".encode() + chunks[chunk] + b"\n")
        return h.hexdigest()
