"""The simulated host's LVM state: devices, PVs with extent maps, VGs, LVs with segments.

An independent model of what lvm2 2.03 keeps in its metadata, written from lvm2's
documented behaviour and not from this project's parser or planner. The one rule that
keeps it consistent: every PV extent range in use is recorded once, in ``PV.used``, with
the LV that owns it, and every LV segment area on a PV matches one such record. All
changes go through ``place``/``trim``/``release_all``/``reown`` so the two never drift.

Allocation imitates lvm's "normal" policy closely enough for planning tests: an extension
first continues contiguously after the LV's last extent, then stays on the last PV
("cling", its largest free areas first), then takes the first single free area big enough
on the allowed PVs (in the order given), and only then splits across areas and PVs in
order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from itertools import pairwise

from .blockdev import Device, DeviceTable  # noqa: F401  (Device: the kernel's, re-exported)

# md notices a dead raid1 leg at its next bitmap/superblock write, without any I/O to the LV:
# measured in the lab, the image reads 'i' right after the disk failed and 'I' 6 s later.
RAID_NOTICE_DELAY = 5.0

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
DEFAULT_EXTENT_SIZE = 4 * MiB
PE_START = 1 * MiB  # lvm2's default data alignment: the first extent starts at 1 MiB

_ALNUM = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class NoSpace(Exception):
    """An allocation could not be satisfied: lvm's "Insufficient free space" case."""

    def __init__(self, needed: int, available: int):
        self.needed = needed
        self.available = available
        super().__init__(f"{needed} extents needed, but only {available} available")


class PV:
    __slots__ = ("device", "uuid", "vg", "pe_count", "used", "alloc_count", "_free", "hint")

    def __init__(self, device: Device, uuid: str):
        self.device = device
        self.uuid = uuid
        self.vg: VG | None = None
        self.pe_count = 0
        self.used: dict[int, list] = {}  # first PE -> [length, owning LV]
        self.alloc_count = 0
        self._free: list[tuple[int, int]] | None = None
        # The device name lvm wrote in the VG metadata for this PV ("last written to ..."):
        # the path while the PV is present, "[unknown]" once written while it is missing.
        self.hint = device.path

    @property
    def missing(self) -> bool:
        """lvm cannot read the PV's label: the VG metadata names it, no device has it."""
        return self.device.failed_at is not None

    @property
    def name(self) -> str:
        return "[unknown]" if self.missing else self.device.path

    @property
    def free_count(self) -> int:
        return self.pe_count - self.alloc_count

    def map(self) -> list[tuple[int, int, LV | None]]:
        """The whole PV as (start, length, owner or None for free), in PE order."""
        out: list[tuple[int, int, LV | None]] = []
        pos = 0
        used = self.used
        for start in sorted(used):
            length, lv = used[start]
            if start > pos:
                out.append((pos, start - pos, None))
            out.append((start, length, lv))
            pos = start + length
        if pos < self.pe_count:
            out.append((pos, self.pe_count - pos, None))
        return out

    def free_ranges(self) -> list[tuple[int, int]]:
        if self._free is None:
            self._free = [(s, n) for s, n, lv in self.map() if lv is None]
        return self._free

    def take(self, start: int, length: int, lv: LV) -> None:
        if start < 0 or start + length > self.pe_count or length <= 0:
            raise AssertionError(f"{self.name}: range {start}+{length} outside the PV")
        if not any(s <= start and start + length <= s + n for s, n in self.free_ranges()):
            raise AssertionError(f"{self.name}: extents {start}+{length} are not free")
        self.used[start] = [length, lv]
        self.alloc_count += length
        self._free = None

    def release(self, start: int, length: int) -> None:
        entry = self.used.get(start)
        if entry is None or entry[0] != length:
            raise AssertionError(f"{self.name}: no allocation {start}+{length} to release")
        del self.used[start]
        self.alloc_count -= length
        self._free = None


class Seg:
    """A run of logical extents. ``areas`` are (PV, first PE) or (LV, first LE) pairs."""

    __slots__ = ("le", "length", "segtype", "areas")

    def __init__(self, le: int, length: int, segtype: str, areas: list[tuple[PV | LV, int]]):
        self.le = le
        self.length = length
        self.segtype = segtype  # "linear", "raid1" or "mirror" (pvmove)
        self.areas = areas


class LV:
    """One logical volume, visible or hidden. ``kind`` says which of lvm's roles it has:
    linear, raid1 (top level), rimage, rmeta, or pvmove (the temporary mirror)."""

    def __init__(self, vg: VG, name: str, uuid: str, kind: str = "linear",
                 visible: bool = True, parent: LV | None = None):
        self.vg = vg
        self.name = name
        self.uuid = uuid
        self.kind = kind
        self.visible = visible
        self.parent = parent
        self.segments: list[Seg] = []
        self.tags: list[str] = []
        # lvchange --setautoactivation: whether udev's event autoactivation (at a reboot, or
        # when the VG's last PV appears) activates it
        self.autoactivation = True
        self.locked = False  # being moved by pvmove (attr 'I'), or the pvmove LV itself
        # raid1 (top level): images/metas by index; images still recovering; progress
        self.images: list[LV] = []
        self.metas: list[LV] = []
        self.recovering: set[int] = set()
        self.synced = 0.0
        # raid1 (top level): images whose leg failed and came back while the LV stayed
        # active: the kernel still counts them failed until ``lvchange --refresh``
        # (lv_health_status "refresh needed", attr health 'r'; lab: raid1_refresh_needed).
        self.refresh: set[int] = set()
        # Activation: only a top-level LV has its own; sub-LVs follow their parent. An LV
        # is created active (lvcreate); another host's LVs seen on a shared disk are not.
        self.active = True
        # The file system the LV holds ("ext4", "xfs") as a test recorded it (None: unknown),
        # and its size in bytes: ``lvextend --resizefs`` grows it with the LV.
        self.fs: str | None = None
        self.fs_size = 0
        # The file system's UUID (mkfs): a copy split off a raid1 carries the same one.
        self.fs_uuid: str | None = None
        # What the LV holds, by 1 MiB chunk (SimulatedHost.write/fingerprint of its path);
        # a raid1 image holds its own copy: written while in sync, the whole LV's content
        # once a recovery onto it completes, left stale while its device is away.
        self.content: dict[int, bytes] = {}
        self.fs_made = 0  # its size when it was made (mke2fs chose its block size then)
        # pvmove: the source PV, extents copied so far, whether a poller drives it,
        # and which LV segment each of its segments stands in for
        self.move_src: PV | None = None
        self.moved = 0.0
        self.polling = False
        self.pollers: list[int] = []  # pids of the live processes polling it (host.procs)
        self.users: list[tuple[LV, Seg]] = []

    @property
    def extents(self) -> int:
        return sum(s.length for s in self.segments)

    @property
    def full_name(self) -> str:
        return f"{self.vg.name}/{self.name}"

    def pvs(self) -> list[PV]:
        """PVs holding this LV's extents, in segment order, without repeats; through
        sub-LVs too (raid images and metadata, a pvmove mirror), like lvm's lv_is_on_pv."""
        out: list[PV] = []
        for seg in self.segments:
            for target, _ in seg.areas:
                found = [target] if isinstance(target, PV) else target.pvs()
                out.extend(pv for pv in found if pv not in out)
        for meta in self.metas:
            out.extend(pv for pv in meta.pvs() if pv not in out)
        return out

    @property
    def is_active(self) -> bool:
        return (self.parent or self).active

    def image_in_sync(self, index: int) -> bool:
        return index not in self.recovering

    def on_missing_pv(self) -> bool:
        """Some extent of this LV (through its sub-LVs too) is on a missing PV: lvm calls the
        LV partial (health 'p')."""
        return any(pv.missing for pv in self.pvs())


class VG:
    def __init__(self, name: str, uuid: str, extent_size: int, lock_type: str = ""):
        self.name = name
        self.uuid = uuid
        self.extent_size = extent_size
        self.lock_type = lock_type
        self.pvs: list[PV] = []
        self.lvs: dict[str, LV] = {}
        # vgexport sets it (vg_attr 'x', pv_attr 'x', system ID cleared); vgimport clears it
        self.exported = False
        self.system_id = ""  # LVM system ID: the creating/importing host's, "" for none
        self.tags: list[str] = []

    @property
    def free_count(self) -> int:
        return sum(pv.free_count for pv in self.pvs)

    @property
    def extent_count(self) -> int:
        return sum(pv.pe_count for pv in self.pvs)

    @property
    def missing_pvs(self) -> list[PV]:
        return [pv for pv in self.pvs if pv.missing]


class Model:
    """Everything lvm would find on the host: the kernel's block devices (``devices``, the
    host's ``blockdev.DeviceTable``, which LVM reads and does not own), labels, VG
    metadata."""

    def __init__(self, seed: str = "sim", devices: DeviceTable | None = None):
        self.table = devices if devices is not None else DeviceTable()
        self.pvs: dict[str, PV] = {}  # canonical device path -> PV
        self.vgs: dict[str, VG] = {}
        self.active: set[LV] = set()  # LVs with a long operation under way
        self.now = 0.0  # the host's clock, for what the kernel notices some time after
        # The kernel's open count of an LV's dm device (mounts, devices stacked on it,
        # processes): the host that owns the model answers it; lv_attr's 'o' shows it.
        self.open_count: Callable[[LV], int] = lambda lv: 0
        self._seed = seed
        self._uuid_counter = 0

    @property
    def devices(self) -> dict[str, Device]:
        return self.table.devices

    @property
    def aliases(self) -> dict[str, str]:
        return self.table.aliases

    # -- identities ----------------------------------------------------------------------

    def new_uuid(self) -> str:
        self._uuid_counter += 1
        digest = hashlib.sha256(f"{self._seed}:{self._uuid_counter}".encode()).digest()
        chars = "".join(_ALNUM[b % 62] for b in digest[:32])
        cuts = (0, 6, 10, 14, 18, 22, 26, 32)
        return "-".join(chars[a:b] for a, b in pairwise(cuts))

    def stable_id(self, what: str, n: int = 32) -> str:
        """``n`` letters and digits of an id derived from ``what`` and the seed alone (device
        identities, which must not move the sequence of ``new_uuid``)."""
        digest = hashlib.sha512(f"{self._seed}:id:{what}".encode()).digest()
        return "".join(_ALNUM[b % 62] for b in digest[:n])

    # -- lookups -------------------------------------------------------------------------

    def device(self, path: str) -> Device | None:
        return self.table.device(path)

    def pv(self, path: str) -> PV | None:
        dev = self.device(path)
        return self.pvs.get(dev.path) if dev else None

    def add_device(self, path: str, size: int, aliases: tuple[str, ...] = (),
                   major: int | None = None, minor: int | None = None) -> Device:
        return self.table.add_device(path, size, aliases, major, minor)


# -- extent bookkeeping (the only code that changes PV.used) -------------------------------

def allocate(pvs: list[PV], n: int, *, after: tuple[PV, int] | None = None,
             cling: PV | None = None) -> list[tuple[PV, int, int]]:
    """Choose ``n`` free extents on ``pvs`` without taking them: [(pv, first PE, count)]."""
    local: dict[PV, list[list[int]]] = {}

    def ranges(pv: PV) -> list[list[int]]:
        if pv not in local:
            local[pv] = [[s, c] for s, c in pv.free_ranges()]
        return local[pv]

    pieces: list[tuple[PV, int, int]] = []
    remaining = n

    def take(pv: PV, rng: list[int], count: int) -> None:
        nonlocal remaining
        pieces.append((pv, rng[0], count))
        rng[0] += count
        rng[1] -= count
        remaining -= count

    if after is not None and after[0] in pvs:
        for rng in ranges(after[0]):
            if rng[0] == after[1] and rng[1] > 0:
                take(after[0], rng, min(rng[1], remaining))
                break
    if remaining and cling is not None and cling in pvs:
        # lvm sorts a PV's free areas largest first (recorded: takeover_grown, where an
        # extension skips a one-extent hole at the PV's start for the big area after it)
        for rng in sorted(ranges(cling), key=lambda r: -r[1]):
            if remaining and rng[1] > 0:
                take(cling, rng, min(rng[1], remaining))
    if remaining:
        for pv in pvs:
            if pv.free_count < remaining:
                continue
            if pv in local:
                fit = next((r for r in local[pv] if r[1] >= remaining), None)
            else:  # look without copying: most PVs are only looked at
                fit = next(([s, c] for s, c in pv.free_ranges() if c >= remaining), None)
                if fit is not None:
                    fit = next(r for r in ranges(pv) if r[0] == fit[0])
            if fit is not None:
                take(pv, fit, remaining)
                break
    for pv in pvs:
        if not remaining:
            break
        for rng in ranges(pv):
            if remaining and rng[1] > 0:
                take(pv, rng, min(rng[1], remaining))
    if remaining:  # nothing was taken yet: pieces are only a plan
        raise NoSpace(n, n - remaining)
    return pieces


def place(lv: LV, pieces: list[tuple[PV, int, int]]) -> None:
    """Append the chosen extents to the end of ``lv`` as linear segments."""
    le = lv.extents
    for pv, start, length in pieces:
        last = lv.segments[-1] if lv.segments else None
        if (last is not None and last.segtype == "linear" and last.areas[0][0] is pv
                and last.areas[0][1] + last.length == start):
            pv.take(start, length, lv)
            _merge_used(pv, last.areas[0][1], last.length, length, lv)
            last.length += length
        else:
            pv.take(start, length, lv)
            lv.segments.append(Seg(le, length, "linear", [(pv, start)]))
        le += length


def _merge_used(pv: PV, start: int, first: int, second: int, lv: LV) -> None:
    pv.release(start, first)
    pv.release(start + first, second)
    pv.take(start, first + second, lv)


def trim(lv: LV, keep: int) -> None:
    """Shorten a linear LV to ``keep`` extents, freeing from the end."""
    total = lv.extents
    while total > keep:
        seg = lv.segments[-1]
        pv, start = seg.areas[0]
        assert isinstance(pv, PV)
        excess = total - keep
        pv.release(start, seg.length)
        if seg.length <= excess:
            lv.segments.pop()
            total -= seg.length
        else:
            seg.length -= excess
            pv.take(start, seg.length, lv)
            total = keep


def release_all(lv: LV) -> None:
    for seg in lv.segments:
        for target, start in seg.areas:
            if isinstance(target, PV):
                target.release(start, seg.length)
    lv.segments = []


def reown(lv: LV) -> None:
    """Record ``lv`` as owner of every PV range its segments point at."""
    for seg in lv.segments:
        for target, start in seg.areas:
            if isinstance(target, PV):
                target.used[start][1] = lv


def merge_segments(lv: LV) -> None:
    """Join neighbouring linear segments that are contiguous on one PV, as lvm does."""
    out: list[Seg] = []
    for seg in lv.segments:
        prev = out[-1] if out else None
        if (prev is not None and prev.segtype == seg.segtype == "linear"
                and isinstance(seg.areas[0][0], PV) and prev.areas[0][0] is seg.areas[0][0]
                and prev.areas[0][1] + prev.length == seg.areas[0][1]):
            pv = seg.areas[0][0]
            _merge_used(pv, prev.areas[0][1], prev.length, seg.length, lv)
            prev.length += seg.length
        else:
            out.append(seg)
    lv.segments = out


def pe_count_for(size: int, extent_size: int) -> int:
    return max(0, (size - PE_START) // extent_size)


def display_size(size: int) -> str:
    """lvm's human size: two decimals, binary units, '<' when rounded up."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    unit = 0
    while unit + 1 < len(units) and size >= 1024 ** (unit + 1):
        unit += 1
    if unit == 0:
        return f"{size} B"
    value = size / 1024 ** unit
    shown = round(value, 2)
    return f"{'<' if shown > value else ''}{shown:.2f} {units[unit]}"
