"""The simulated host's mdadm, the coreutils the reconciler runs (``tee`` into sysfs, and
``mkdir``/``dd``/``mv``/``sync`` for its ledger file), and the kernel files of md.

Each handler parses its own argv strictly (``UnsupportedCommand`` for any other form) and
answers with the exit code and messages of mdadm 4.2 on Linux 6.1 as the lab recorded them
(tests/fixtures/outputs/md/clone/commands). Not recorded, written from coreutils' sources:
the messages of ``mkdir``, ``dd``, ``mv`` and ``sync`` for a missing directory.
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING

from reconciler.errors import UnsupportedCommand
from reconciler.state.names import dm_name

from . import md_model
from .md_model import Array, Member
from .kernel import busy, holders
from .blockdev import Device
from .tool import Out, Tool

if TYPE_CHECKING:
    from .machine import Machine

ZERO_UUID = "00000000:00000000:00000000:00000000"


def _no_stdin(argv: tuple[str, ...], stdin: str | None) -> None:
    if stdin is not None:
        raise UnsupportedCommand(f"stdin is not modelled for: {' '.join(argv)}")


# -- who uses a device: kernel.holders and kernel.busy ------------------------------------------


# -- mdadm ---------------------------------------------------------------------------------------


def mdadm(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    _no_stdin(argv, stdin)
    if argv[1:2] == ("--build",):
        return _build(host, argv)
    if argv[1:2] == ("--stop",) and len(argv) == 3:
        return _stop(host, argv[2])
    if argv[1:3] == ("--detail", "--export") and len(argv) == 4:
        return _detail_export(host, argv[3])
    if len(argv) == 4 and argv[2] == "--add":
        return _add(host, argv[1], argv[3])
    raise UnsupportedCommand(f"mdadm form not modelled: {' '.join(argv)}")


def _md_path(path: str, argv: tuple[str, ...]) -> str:
    if not md_model.MD_PATH.match(path):
        raise UnsupportedCommand(f"only /dev/mdN arrays are modelled: {' '.join(argv)}")
    return path


def _build(host: Machine, argv: tuple[str, ...]) -> Out:
    rest = list(argv[3:])
    opts: dict[str, str] = {}
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        key, eq, value = flag.partition("=")
        if not eq and key in ("--level", "--raid-devices", "--raid-disks") and rest:
            value = rest.pop(0)
        if key not in ("--level", "--raid-devices", "--raid-disks") or key in opts:
            raise UnsupportedCommand(f"mdadm --build flag not modelled: {' '.join(argv)}")
        opts["--raid-devices" if key == "--raid-disks" else key] = value
    if opts != {"--level": "1", "--raid-devices": "2"} or len(rest) != 2 or rest[1] != "missing":
        raise UnsupportedCommand("only 'mdadm --build MD --level=1 --raid-devices=2 DEV missing' "
                                 f"is modelled: {' '.join(argv)}")
    path = _md_path(argv[2], argv)
    out = Out()
    name = posixpath.basename(path)
    if name in host.md.arrays:
        return out.err(f"mdadm: Fail to create {name} when using "
                       f"/sys/module/md_mod/parameters/new_array, fallback to creation via node",
                       f"mdadm: {path} is already in use.")
    dev = host.model.device(rest[0])
    if dev is None:
        return out.err(f"mdadm: stat failed for {rest[0]}: No such file or directory")
    if busy(host, dev):
        return out.err(f"mdadm: Cannot open {rest[0]}: Device or resource busy")
    array = Array(name, dev.size // 1024 * 1024)
    array.members.append(Member(dev, 0, 0, "in_sync"))
    host.md.add_array(array)
    return out.err(f"mdadm: array {path} built and started.", rc=0)


def _add(host: Machine, path: str, target: str) -> Out:
    out = Out()
    array = host.md.array(path)
    if array is None:
        _md_path(path, ("mdadm", path, "--add", target))
        return out.err(f"mdadm: error opening {path}: No such file or directory")
    dev = host.model.device(target)
    if dev is None:
        return out.err(f"mdadm: stat failed for {target}: No such file or directory")
    if busy(host, dev):
        return out.err(f"mdadm: Cannot open {target}: Device or resource busy")
    if dev.size < array.size:
        return out.err(f"mdadm: {target} not large enough to join array")
    taken = {m.slot for m in array.members if m.slot is not None}
    if 1 in taken or 0 not in taken:
        raise UnsupportedCommand(f"adding a spare to {path} with slots {sorted(taken)} "
                                 f"is not modelled")
    member = Member(dev, max(2, max(m.index for m in array.members) + 1), 1, "spare")
    array.members.append(member)
    array.array_state = "clean"
    array.recovering, array.done, array.copied = member, 0.0, 0
    array.speed = min(host.rate_bytes_per_s, array.max_speed * 1024.0)
    return out.err(f"mdadm: added {target}", rc=0)


def _stop(host: Machine, path: str) -> Out:
    out = Out()
    array = host.md.array(path)
    if array is None:
        _md_path(path, ("mdadm", "--stop", path))
        return out.err(f"mdadm: error opening {path}: No such file or directory")
    if array.holders or any(m[0] == array.devno for m in host.md.mounts):
        return out.err(f"mdadm: Cannot get exclusive access to {path}:Perhaps a running "
                       f"process, mounted filesystem or active volume group?")
    host.md.remove_array(array)
    return out.err(f"mdadm: stopped {path}", rc=0)


def _detail_export(host: Machine, path: str) -> Out:
    out = Out()
    array = host.md.array(path)
    if array is None:
        _md_path(path, ("mdadm", "--detail", "--export", path))
        return out.err(f"mdadm: cannot open {path}: No such file or directory")
    lines = ["MD_LEVEL=raid1", "MD_DEVICES=2", "MD_METADATA=", f"MD_UUID={ZERO_UUID}"]
    for m in sorted(array.members, key=lambda m: m.index):
        name = md_model.kernel_name(m.device)
        role = "spare" if m.slot is None else str(m.slot)
        lines += [f"MD_DEVICE_dev_{name}_ROLE={role}", f"MD_DEVICE_dev_{name}_DEV=/dev/{name}"]
    out.stdout.append("".join(f"{line}\n" for line in lines))
    return out


# -- coreutils -----------------------------------------------------------------------------------

_SPEED = re.compile(r"^/sys/block/(md[0-9]+)/md/sync_speed_(min|max)$")


def tee(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    if len(argv) != 2 or stdin is None:
        raise UnsupportedCommand(f"only 'tee FILE' with stdin is modelled: {' '.join(argv)}")
    m = _SPEED.match(argv[1])
    if not m:
        raise UnsupportedCommand(f"tee is modelled for md's sync_speed_min/max only: {argv[1]}")
    out = Out(stdout=[stdin])
    array = host.md.arrays.get(m.group(1))
    if array is None:
        return out.err(f"tee: {argv[1]}: No such file or directory")
    value = stdin.strip()
    if value == "system":
        setattr(array, f"speed_{m.group(2)}", None)
    elif value.isdigit() and int(value) > 0:
        setattr(array, f"speed_{m.group(2)}", int(value))
    else:
        return out.err(f"tee: {argv[1]}: Invalid argument")
    return out


def mkdir(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    _no_stdin(argv, stdin)
    if len(argv) != 3 or argv[1] != "-p" or not argv[2].startswith("/"):
        raise UnsupportedCommand(f"only 'mkdir -p /ABSOLUTE' is modelled: {' '.join(argv)}")
    path = posixpath.normpath(argv[2])
    while path not in host.md.dirs:
        host.md.dirs.add(path)
        path = posixpath.dirname(path)
    return Out()


def dd(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    if (len(argv) != 4 or not argv[1].startswith("of=/") or argv[2:] != ("conv=fsync", "status=none")
            or stdin is None):
        raise UnsupportedCommand(f"only 'dd of=/FILE conv=fsync status=none' with stdin is "
                                 f"modelled: {' '.join(argv)}")
    path = argv[1][3:]
    if not host.md.parent_exists(path):
        return Out().err(f"dd: failed to open '{path}': No such file or directory")
    host.md.files[path] = stdin
    return Out()


def mv(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    _no_stdin(argv, stdin)
    if len(argv) != 4 or argv[1] != "-f":
        raise UnsupportedCommand(f"only 'mv -f SRC DST' is modelled: {' '.join(argv)}")
    src, dst = argv[2], argv[3]
    if src not in host.md.files:
        return Out().err(f"mv: cannot stat '{src}': No such file or directory")
    if not host.md.parent_exists(dst):
        return Out().err(f"mv: cannot move '{src}' to '{dst}': No such file or directory")
    host.md.files[dst] = host.md.files.pop(src)
    return Out()


def sync(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    _no_stdin(argv, stdin)
    if len(argv) != 2:
        raise UnsupportedCommand(f"only 'sync PATH' is modelled: {' '.join(argv)}")
    if argv[1] not in host.md.dirs and argv[1] not in host.md.files:
        return Out().err(f"sync: error opening '{argv[1]}': No such file or directory")
    return Out()


# (argv[0],) -> (handler, mutates); ``mdadm --detail`` alone reads.
# each handler checks stdin itself (tee and dd read it, the others refuse it)
COMMANDS: dict[str, Tool] = {
    "mdadm": Tool(mdadm, True, stdin=True), "tee": Tool(tee, True, stdin=True),
    "mkdir": Tool(mkdir, True, stdin=True), "dd": Tool(dd, True, stdin=True),
    "mv": Tool(mv, True, stdin=True), "sync": Tool(sync, True, stdin=True),
}


def lookup(argv: tuple[str, ...]) -> Tool | None:
    entry = COMMANDS.get(argv[0])
    if entry is None:
        return None
    if argv[:2] == ("mdadm", "--detail"):
        return Tool(mdadm, False, stdin=True)
    return entry


# -- kernel files --------------------------------------------------------------------------------

_MD_SYS = re.compile(r"^/sys/block/(md[0-9]+)/(.+)$")
_DEV_SYS = re.compile(r"^/sys/dev/block/([0-9]+):([0-9]+)/(.*)$")
# a device-mapper map's own files by its kernel name (a holders/ listing names it "dm-N"):
# only those the reconciler reads, the rest fails loudly
_DM_SYS = re.compile(r"^/sys/block/dm-([0-9]+)/(dm/name|dm/uuid)$")
DM_MAJOR = 253


def read(host: Machine, path: str) -> str | None:
    """A kernel file (or directory listing, for a path ending in '/'); UnsupportedCommand
    for a kernel path that is not modelled; None for one that does not exist."""
    model = host.md
    if path == "/proc/mdstat":
        return md_model.mdstat(model) if model.loaded else None
    if path == "/proc/self/mountinfo":
        return md_model.mountinfo(model)
    m = _MD_SYS.match(path)
    if m:
        array = model.arrays.get(m.group(1))
        return None if array is None else _md_file(array, m.group(2), path)
    m = _DM_SYS.match(path)
    if m:  # None: no such map now (removed since it was listed)
        return _dev_file(host, (DM_MAJOR, int(m.group(1))), m.group(2), path)
    m = _DEV_SYS.match(path)
    if m:
        return _dev_file(host, (int(m.group(1)), int(m.group(2))), m.group(3), path)
    if path.startswith(("/proc/", "/sys/")):
        raise UnsupportedCommand(f"kernel file not modelled by the simulator: {path}")
    if path.endswith("/"):
        raise UnsupportedCommand(f"directory listings are modelled for sysfs only: {path}")
    return model.files.get(path)


def _md_file(array: Array, rest: str, path: str) -> str | None:
    if rest == "holders/":
        return "".join(f"{h}\n" for h in sorted(array.holders))
    if rest.startswith("md/dev-"):
        name, _, attr = rest[len("md/dev-"):].partition("/")
        member = next((x for x in array.members if md_model.kernel_name(x.device) == name), None)
        if member is None:
            return None
        text = md_model.member_attr(member, attr)
    elif rest.startswith("md/"):
        text = md_model.md_attr(array, rest[3:])
    else:
        text = None
    if text is None:
        raise UnsupportedCommand(f"md sysfs file not modelled by the simulator: {path}")
    return text


# Identity files (observing reads them to tell who a device is; recorded in
# tests/fixtures/outputs/md/identity): present only where the kernel shows them.
IDENTITY_FILES = ("partition", "dm/uuid", "dm/name", "md/metadata_version", "md/uuid", "wwid",
                  "device/wwid", "serial", "device/serial")


def _dev_file(host: Machine, devno: tuple[int, int], rest: str, path: str) -> str | None:
    dev = host.device_by_number(devno)
    if dev is None:
        return _lv_file(host, devno, rest)
    parts = host.md.partitions.get(dev.path, [])
    name = md_model.kernel_name(dev)
    if rest.startswith("../"):  # sysfs resolves M:m first: a partition's ".." is its disk
        disk = _disk_of(host, dev)
        if disk is None:
            raise UnsupportedCommand(f"'..' of a whole disk is not modelled: {path}")
        return _dev_file(host, (disk.major, disk.minor), rest[3:], path)
    if rest in IDENTITY_FILES:
        disk = _disk_of(host, dev)
        if rest == "partition":
            return None if disk is None else f"{dev.minor - disk.minor}\n"
        return dev.sysfs.get(rest)
    if rest == "":
        return "".join(f"{e}\n" for e in sorted((*md_model.DISK_ENTRIES,
                                                 *(md_model.kernel_name(p) for p in parts))))
    if rest == "size":
        return f"{dev.size // 512}\n"
    if rest == "uevent":
        return f"MAJOR={dev.major}\nMINOR={dev.minor}\nDEVNAME={name}\nDEVTYPE=disk\n"
    if rest == "holders/":
        return "".join(f"{h}\n" for h in holders(host, dev))
    part_name, _, attr = rest.partition("/")
    part = next((p for p in parts if md_model.kernel_name(p) == part_name), None)
    if part is not None and attr in ("dev", "size", "holders/"):
        if attr == "dev":
            return f"{part.major}:{part.minor}\n"
        if attr == "size":
            return f"{part.size // 512}\n"
        return "".join(f"{h}\n" for h in holders(host, part))
    raise UnsupportedCommand(f"block device sysfs file not modelled by the simulator: {path}")


def _disk_of(host: Machine, dev: Device) -> Device | None:
    """The disk a partition is on (None for a whole disk)."""
    return next((host.model.devices[disk] for disk, parts in host.md.partitions.items()
                 if any(p is dev for p in parts)), None)


def _lv_file(host: Machine, devno: tuple[int, int], rest: str) -> str | None:
    """An active LV's device-mapper files (every simulated LV counts as active): its uuid is
    "LVM-" and the VG's and LV's uuids without dashes, as lvm2 sets it."""
    if devno[0] != DM_MAJOR:
        return None
    for vg in host.model.vgs.values():
        for lv in vg.lvs.values():
            if host._dm_minors.get(lv.uuid) == devno[1]:
                if rest == "dm/uuid":
                    return f"LVM-{vg.uuid.replace('-', '')}{lv.uuid.replace('-', '')}\n"
                if rest == "dm/name":
                    return f"{dm_name(vg.name, lv.name)}\n"
                if rest == "size":
                    return f"{lv.extents * vg.extent_size // 512}\n"
                return None
    return None
