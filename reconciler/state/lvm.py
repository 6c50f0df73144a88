"""Observed LVM state: PVs, VGs, LVs (with their raid images), pvmoves in flight and who
polls them, and the one rule for dropping a mirror leg.

Per visible LV, how many extents each PV holds (hidden sub-LVs such as raid images are
folded into their visible parent), the raid images with their sync and health flags,
in-flight pvmoves with what they move, and each VG's LVM system ID (the host that owns it).
``split_problems`` is the one rule for dropping a mirror leg: every field lvm2 reports must
say the kept leg is a complete, healthy copy on present PVs; sync percent alone is no proof
(a raid1 whose new leg's disk fails mid-sync reports 100.00, health "partial" and the PV as
[unknown]).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from reconciler.units import Size


@dataclass(frozen=True, slots=True)
class LvAttr:
    """The 10 characters of ``lv_attr``, decoded (lvs(8), "lv_attr bits")."""

    raw: str

    @property
    def volume_type(self) -> str:
        return self.raw[0]

    @property
    def is_pvmove(self) -> bool:
        return self.raw[0] == "p"

    @property
    def is_raid(self) -> bool:
        return self.raw[0] in "rR"

    @property
    def is_mirror(self) -> bool:
        return self.raw[0] in "mM"

    @property
    def has_dependents(self) -> bool:
        """A snapshot origin or a thin pool: lvremove of it removes other LVs too."""
        return self.raw[0] in "oOt"

    @property
    def is_image(self) -> bool:
        return self.raw[0] in "iI"

    @property
    def is_image_out_of_sync(self) -> bool:
        return self.raw[0] == "I"

    @property
    def is_image_in_sync(self) -> bool:
        """Only the letter lvm prints for an in-sync image counts; any other is not proof."""
        return self.raw[0] == "i"

    @property
    def is_locked_by_pvmove(self) -> bool:
        """Allocation policy letter in capitals: extents are locked by a running pvmove."""
        return self.raw[2].isupper()

    @property
    def is_active(self) -> bool:
        return self.raw[4] == "a"

    @property
    def is_open(self) -> bool:
        return self.raw[5] == "o"

    @property
    def health(self) -> str:
        """Bit 9 of lv_attr in words (lvs(8)); "ok" for '-'."""
        return _ATTR_HEALTH.get(self.health_char, f"unknown flag {self.health_char!r}")

    @property
    def health_char(self) -> str:
        return self.raw[8] if len(self.raw) > 8 else "?"

    @property
    def is_healthy(self) -> bool:
        return self.health_char == "-"


_ATTR_HEALTH = {
    "-": "ok", "p": "partial: a PV of it is missing", "r": "refresh needed: the kernel "
    "counts a device of it as failed", "m": "mismatches exist between its copies",
    "w": "writemostly", "X": "unknown: lvm could not tell", "R": "remove after reshape",
    "F": "failed", "D": "out of data space", "M": "metadata read only", "E": "error",
}


@dataclass(frozen=True, slots=True)
class Pv:
    name: str
    uuid: str
    vg: str | None
    devno: tuple[int, int] | None
    dev_size: Size
    size: Size
    free: Size
    pe_count: int
    pe_alloc_count: int
    missing: bool
    allocatable: bool
    pe_start: Size = Size(0)  # where the first extent starts (0: not reported)
    mda_count: int = 0
    mda_size: Size = Size(0)

    @property
    def free_extents(self) -> int:
        return self.pe_count - self.pe_alloc_count

    def extents_once_added(self, extent_size: int) -> int:
        """Extents this orphan PV will hold once it is in a VG of ``extent_size``: an orphan
        reports none. Counted as lvm does at vgextend (lab: a 200 MiB orphan gives 49 extents
        of 4 MiB), on the conservative side: 1 MiB of data alignment when ``pe_start`` is not
        reported, and a second metadata area at the end of the device when there is one."""
        if self.vg is not None:
            return 0
        return self.extents_on_device(extent_size)

    def extents_on_device(self, extent_size: int) -> int:
        """Extents the whole device can hold (what ``pvresize`` gives a PV of a VG whose
        device grew; compared with ``pe_count``, not ``size``: lvm's pv_size is whole
        extents, a little less than the device)."""
        if self.missing or extent_size <= 0:
            return 0
        start = int(self.pe_start) or 1024**2
        tail = int(self.mda_size) if self.mda_count > 1 else 0
        return max(0, (int(self.dev_size) - start - tail) // extent_size)


MISSING_PV_NAME = "[unknown]"  # lvm's name for a PV whose device it cannot find


def missing_pv_key(uuid: str) -> str:
    """What a missing PV is known by here (its ``Pv.name``, its key in ``HostState.pvs``,
    ``Vg.pvs`` and every ``pv_extents``): lvm calls every missing PV "[unknown]", so two of
    them in one VG would be one; its uuid tells them apart. Never a device path: no command
    names it."""
    return f"{MISSING_PV_NAME} uuid {uuid}"


def is_missing_pv_key(name: str) -> bool:
    return name.startswith(MISSING_PV_NAME)


@dataclass(frozen=True, slots=True)
class LegPart:
    """A hidden sub-LV of a leg (its image, its raid metadata) as lvm reports it."""

    name: str
    attr: LvAttr
    health_status: str = ""  # lv_health_status
    is_image: bool = False  # the leg's data (``_rimage_N``/``_mimage_N``), not its metadata


@dataclass(frozen=True, slots=True)
class RaidImage:
    """One leg of a raid1/mirror LV."""

    name: str
    in_sync: bool  # the image's lv_attr says 'i'; any other letter (or none) is not in sync
    pv_extents: dict[str, int]
    parts: tuple[LegPart, ...] = ()
    # the image sub-LV's lv_uuid ("" when not reported): ``lvconvert --splitmirrors`` turns
    # that very sub-LV into the split-off LV, which keeps it (lvm2 lv_raid_split)
    uuid: str = ""


@dataclass(frozen=True, slots=True)
class Lv:
    vg: str
    name: str
    uuid: str
    size: Size
    attr: LvAttr
    layout: tuple[str, ...]
    segtypes: tuple[str, ...]
    pv_extents: dict[str, int]  # PV name -> extents of this LV (sub-LVs included)
    images: tuple[RaidImage, ...] = ()
    sync_percent: float | None = None
    copy_percent: float | None = None
    raid_sync_action: str | None = None
    moving_via: str | None = None  # name of the pvmove LV its segments go through
    tags: tuple[str, ...] = ()
    health_status: str = ""  # lv_health_status: "" when lvm sees nothing wrong

    def __init__(self, vg: str, name: str, uuid: str, size: Size, attr: LvAttr,
                 layout: tuple[str, ...], segtypes: tuple[str, ...], pv_extents: dict[str, int],
                 images: tuple[RaidImage, ...] = (), sync_percent: float | None = None,
                 copy_percent: float | None = None, raid_sync_action: str | None = None,
                 moving_via: str | None = None, tags: tuple[str, ...] = (),
                 health_status: str = "") -> None:
        # The dataclass's own __init__ (kept for every other class) sets each field of a
        # frozen instance through object.__setattr__; this one sets the slots directly, in
        # less than half the time: the report parser builds 10,000 of them per pass. Same
        # fields, order and defaults (tests/lvm/parse/test_lvm_parse.py checks).
        s = _LV_SLOTS
        s[0](self, vg)
        s[1](self, name)
        s[2](self, uuid)
        s[3](self, size)
        s[4](self, attr)
        s[5](self, layout)
        s[6](self, segtypes)
        s[7](self, pv_extents)
        s[8](self, images)
        s[9](self, sync_percent)
        s[10](self, copy_percent)
        s[11](self, raid_sync_action)
        s[12](self, moving_via)
        s[13](self, tags)
        s[14](self, health_status)

    @property
    def key(self) -> str:
        return f"{self.vg}/{self.name}"

    @property
    def is_linear(self) -> bool:
        return not self.images and all(s in ("linear", "striped") for s in self.segtypes)

    @property
    def percent(self) -> float | None:
        return self.sync_percent if self.sync_percent is not None else self.copy_percent

    @property
    def is_synced(self) -> bool:
        """True when every raid/mirror image is in sync (trivially true for linear LVs): the
        percent is 100, every image says 'i', and a raid LV's sync action is idle. Whether
        the copies are *healthy* is ``split_problems``'s question."""
        if not self.images:
            return True
        pct = self.percent
        return (pct is not None and pct >= 100.0
                and all(img.in_sync for img in self.images)
                and (not self.attr.is_raid or self.raid_sync_action == "idle"))


# Each field's slot setter, in field order (``Lv.__init__``).
_LV_SLOTS = tuple(Lv.__dict__[f.name].__set__ for f in fields(Lv))


@dataclass(frozen=True, slots=True)
class PvMove:
    """A pvmove in flight (its ``pvmoveN`` LV exists in the VG metadata)."""

    vg: str
    name: str
    source: str | None
    copy_percent: float | None
    lvs: tuple[str, ...]
    destinations: tuple[str, ...]
    size: Size = Size(0)  # what the move copies (the pvmove LV's size): 0 when unknown

    @property
    def key(self) -> str:
        return f"{self.vg}/{self.name}"


@dataclass(frozen=True, slots=True)
class Process:
    """A live process, as /proc/PID/cmdline shows it."""

    pid: int
    argv: tuple[str, ...]

    def __str__(self) -> str:
        cmd = " ".join(self.argv)
        return f"pid {self.pid} ({cmd if len(cmd) <= 80 else cmd[:77] + '...'})"


@dataclass(frozen=True, slots=True)
class Pollers:
    """Who drives in-flight pvmoves, read from /proc (only while a pvmove is in flight).

    lvm2 polls a pvmove from a process: the one ``pvmove`` forks (``--background``), or,
    when lvm.conf's ``use_lvmpolld`` is on and lvmpolld's socket answers, an
    ``lvm lvpoll --polloperation pvmove VG/pvmoveN`` that lvmpolld spawns (lvmpolld keeps
    one per move and ignores a second request for it). Without a poller the kernel finishes
    at most the segment it is copying and the move never completes.
    """

    # (process, the move it polls as "vg/pvmoveN", or "" for every move: a pvmove process)
    processes: tuple[tuple[Process, str], ...] = ()
    lvmpolld: Process | None = None
    lvmpolld_socket: bool = False
    use_lvmpolld: bool = True  # lvm2's default when built with lvmpolld (Debian's is)

    @property
    def lvmpolld_in_use(self) -> bool:
        """A pvmove run now would hand its polling to lvmpolld."""
        return self.use_lvmpolld and self.lvmpolld_socket

    def polling(self, key: str) -> tuple[Process, ...]:
        """The live processes that poll move ``key`` ("vg/pvmoveN")."""
        return tuple(p for p, target in self.processes if target in ("", key))


@dataclass(frozen=True, slots=True)
class Vg:
    name: str
    uuid: str
    extent_size: Size
    extent_count: int
    free_count: int
    lock_type: str
    missing_pv_count: int
    pvs: tuple[str, ...]
    lvs: dict[str, Lv]
    pvmoves: tuple[PvMove, ...] = ()
    system_id: str = ""  # vg_systemid: the host that owns the VG ("" = none, any host may)
    exported: bool = False  # vg_attr 'x': vgexport'ed, waiting for vgimport on some host
    tags: tuple[str, ...] = ()


# -- the rule for dropping a mirror leg ---------------------------------------------------------

_SYNC_WORDS = {"recover": "a new leg is still being copied", "resync": "the legs are being "
               "resynchronised", "check": "a scrub (check) is running", "repair": "a scrub "
               "(repair) is running", "frozen": "the sync is frozen", "reshape": "a reshape is "
               "running"}


def needs_refresh(lv: Lv) -> bool:
    """lvm says a device of the raid LV failed and is back: only ``lvchange --refresh`` makes
    the kernel take it again (lv_attr health 'r', lv_health_status "refresh needed")."""
    return lv.attr.health_char == "r" or lv.health_status == "refresh needed" or any(
        p.attr.health_char == "r" or p.health_status == "refresh needed"
        for img in lv.images for p in img.parts)


def split_problems(lv: Lv, pvs: dict[str, Pv], drop: frozenset[str] | None = None) -> list[str]:
    """Why ``lv`` must not lose a leg now, in the operator's words, each naming the lvm field
    seen; empty when every field says each leg is a complete, healthy copy on present PVs.

    ``drop``: names of the PVs whose leg would be dropped; the other leg(s) are the kept one(s)
    and must lie on present PVs none of which is in ``drop``. A sync that has not finished
    is not a problem here (the caller waits: ``Lv.is_synced``); a failed device, a missing
    PV, an image state lvm does not document, a frozen sync are, whatever the percent says.
    """
    out: list[str] = []
    if lv.health_status:
        out.append(f"lvm reports lv_health_status {lv.health_status!r} for the LV")
    if not lv.attr.is_healthy:
        out.append(f"the LV's lv_attr health flag is {lv.attr.health_char!r} ({lv.attr.health})")
    # A sync that has not finished (below 100 %, an image still 'I', a scrub running) is
    # waited for by the caller; what a wait will not cure is a problem: a sync lvm reports
    # as frozen or in a state it does not document, or no sync state at all.
    action = lv.raid_sync_action or ""
    if lv.attr.is_raid and action not in ("idle", "recover", "resync", "check", "repair"):
        out.append(f"raid_sync_action is {action!r}"
                   + (f" ({_SYNC_WORDS[action]})" if action in _SYNC_WORDS else ""))
    for img in lv.images:
        kept = drop is None or not (set(img.pv_extents) & drop)
        for part in img.parts:
            if part.health_status:
                out.append(f"{part.name} reports lv_health_status {part.health_status!r}")
            if not part.attr.is_healthy:
                out.append(f"{part.name} has lv_attr health flag {part.attr.health_char!r} "
                           f"({part.attr.health})")
        image = next((p for p in img.parts if p.is_image), None)
        if image is None:
            out.append(f"leg {img.name} has no image in lvm's report")
        elif image.attr.volume_type not in "iI":
            out.append(f"{image.name} has lv_attr {image.attr.raw!r}: image state "
                       f"{image.attr.volume_type!r} is not one lvm documents, so it does not "
                       f"count as in sync")
        if not img.pv_extents:
            out.append(f"leg {img.name} holds no extent on any PV")
        for name in sorted(img.pv_extents):
            pv = pvs.get(name)
            if is_missing_pv_key(name) or pv is None or pv.missing:
                out.append(f"leg {img.name} lies on a PV lvm cannot find ({name}, pv_missing)")
        if kept and drop is not None and not img.pv_extents:
            out.append(f"the kept leg {img.name} is empty")
    if drop is not None:
        kept_legs = [img for img in lv.images if not (set(img.pv_extents) & drop)]
        if not kept_legs:
            out.append(f"every leg has extents on {', '.join(sorted(drop))}: none would be left")
    return list(dict.fromkeys(out))
