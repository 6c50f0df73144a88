"""LVM transitions: PVs, VGs, LVs, pvmove and mirror-then-split legs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from reconciler import errors, state
from reconciler.actions.base import Action, Progress, Symbol
from reconciler.state.taking import Effect, Take
from reconciler.adapters import lvm
from reconciler.runner import Command, CommandResult
from reconciler.state.names import dm_name
from reconciler.units import format_size


def _lv(st: state.HostState, vg: str, lv: str) -> state.Lv | None:
    g = st.vgs.get(vg)
    return g.lvs.get(lv) if g else None


@dataclass(frozen=True, slots=True, kw_only=True)
class LvmAction(Action):
    """Base of the LVM actions: their failures are classified by the LVM adapter.

    ``aka``: (LVM's name of a PV, the spec's spelling of that device) pairs, set by planning:
    commands name a PV as LVM does, descriptions as the spec does (a by-path name, not the
    ``/dev/sdb`` it resolves to), so a plan, a forecast and a summary name one device one way.
    """

    aka: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def spelled(self, names) -> str:
        """``names`` as the spec spells them, comma-separated."""
        aka = dict(self.aka)
        return ", ".join(aka.get(n, n) for n in ((names,) if isinstance(names, str) else names))

    def failure(self, result: CommandResult) -> errors.CommandFailed:
        return lvm.failure(result)


def _raid1_sync(lv: state.Lv | None) -> Progress | None:
    """A raid1's sync as progress (the sync percent, else the copy percent)."""
    if lv is None or not lv.images:
        return None
    return Progress(lv.sync_percent if lv.sync_percent is not None else lv.copy_percent,
                    "raid1 sync")


@dataclass(frozen=True, slots=True, kw_only=True)
class CreatePv(LvmAction):
    """Label ``device`` as an LVM PV. Done when a PV with the same device number exists."""

    device: str
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "pvcreate"

    @property
    def key(self) -> str:
        return f"pv:{self.device}:create"

    @property
    def object(self) -> str:
        return f"pv {self.device}"

    def describe(self) -> str:
        return "pvcreate"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.pvcreate(self.device, host=self.host),)

    def takes_devices(self) -> tuple[Take, ...]:
        return (Take(self.device, Effect.OVERWRITES),)  # a label over whatever is there

    def needs(self) -> tuple[str, ...]:
        return (self.device,)

    def is_done(self, st: state.HostState) -> bool:
        return st.pv_for(self.device) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateVg(LvmAction):
    """Create ``vg`` on ``devices`` (already PVs). Done when the VG exists."""

    vg: str
    devices: tuple[str, ...]
    extent_size: int | None = None
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "vgcreate"

    @property
    def key(self) -> str:
        return f"vg:{self.vg}:create"

    @property
    def object(self) -> str:
        return f"vg {self.vg}"

    def describe(self) -> str:
        return f"vgcreate on {', '.join(self.devices)}"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.vgcreate(self.vg, self.devices, self.extent_size, host=self.host),)

    def needs(self) -> tuple[str, ...]:
        return self.devices

    def is_done(self, st: state.HostState) -> bool:
        return self.vg in st.vgs


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtendVg(LvmAction):
    """Add the PV ``device`` to ``vg``. Done when that PV belongs to the VG."""

    vg: str
    device: str
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "vgextend"

    @property
    def key(self) -> str:
        return f"vg:{self.vg}:extend:{self.device}"

    @property
    def object(self) -> str:
        return f"vg {self.vg}"

    def describe(self) -> str:
        return f"vgextend with {self.device}"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.vgextend(self.vg, (self.device,), host=self.host),)

    def needs(self) -> tuple[str, ...]:
        return (self.device,)

    def is_done(self, st: state.HostState) -> bool:
        pv = st.pv_for(self.device)
        return pv is not None and pv.vg == self.vg


@dataclass(frozen=True, slots=True, kw_only=True)
class ReduceVg(LvmAction):
    """Remove the (empty) PV ``pv`` from ``vg``. Done when it no longer belongs to the VG."""

    vg: str
    pv: str
    symbol: ClassVar[Symbol] = Symbol.DELETE
    verb: ClassVar[str] = "vgreduce"

    @property
    def key(self) -> str:
        return f"vg:{self.vg}:reduce:{self.pv}"

    @property
    def object(self) -> str:
        return f"vg {self.vg}"

    def describe(self) -> str:
        return f"vgreduce {self.spelled(self.pv)}"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.vgreduce(self.vg, self.pv, host=self.host),)

    def waiting_for(self, st: state.HostState) -> str | None:
        # Planned after the moves off it; one of them may have kept a leg there (a
        # mirror-then-split finished on the legs it had): lvm would refuse, so wait.
        pv = st.pv_for(self.pv)
        if pv is not None and pv.vg == self.vg and pv.pe_alloc_count:
            return (f"{self.pv} still holds {pv.pe_alloc_count} extent(s); it leaves the VG "
                    f"once they are moved off")
        return None

    def is_done(self, st: state.HostState) -> bool:
        pv = st.pv_for(self.pv)
        return pv is None or pv.vg != self.vg


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveVg(LvmAction):
    """Remove the (LV-less) ``vg``; only planned for a VG the spec marks absent."""

    vg: str
    symbol: ClassVar[Symbol] = Symbol.DELETE
    verb: ClassVar[str] = "vgremove"

    @property
    def key(self) -> str:
        return f"vg:{self.vg}:remove"

    @property
    def object(self) -> str:
        return f"vg {self.vg}"

    def describe(self) -> str:
        return "vgremove"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.vgremove(self.vg, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        return self.vg not in st.vgs


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateLv(LvmAction):
    """Create ``vg/lv`` of ``size`` bytes, on ``pvs`` when given. Done when the LV exists."""

    vg: str
    lv: str
    size: int
    pvs: tuple[str, ...] = ()
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "lvcreate"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.lv}:create"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.lv}"

    def describe(self) -> str:
        where = f" on {self.spelled(self.pvs)}" if self.pvs else ""
        return f"lvcreate {format_size(self.size)}{where}"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.lvcreate(self.vg, self.lv, self.size, self.pvs, host=self.host),)

    def provides(self) -> tuple[str, ...]:
        return (f"/dev/{self.vg}/{self.lv}", f"/dev/mapper/{dm_name(self.vg, self.lv)}")

    def is_done(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        return lv is not None and lv.size >= self.size


@dataclass(frozen=True, slots=True, kw_only=True)
class ResizeLv(LvmAction):
    """Grow (or, when the spec opts in, shrink) ``vg/lv`` to ``size`` bytes rounded to extents."""

    vg: str
    lv: str
    size: int
    extent_size: int
    pvs: tuple[str, ...] = ()
    shrink: bool = False
    resize_fs: bool = False  # grow the file system with it (lvextend --resizefs)
    symbol: ClassVar[Symbol] = Symbol.CHANGE

    @property
    def verb(self) -> str:  # type: ignore[override]
        return "lvreduce" if self.shrink else "lvextend"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.lv}:resize"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.lv}"

    def describe(self) -> str:
        fs = " and its file system" if self.resize_fs else ""
        return f"{self.verb}{fs} to {format_size(self.size)}"

    def gives_up(self) -> str:
        return (f"what {self.vg}/{self.lv} holds beyond {format_size(self.size)} is cut off"
                if self.shrink else "")

    def commands(self) -> tuple[Command, ...]:
        if self.shrink:
            return (lvm.lvreduce(self.vg, self.lv, self.size, host=self.host),)
        return (lvm.lvextend(self.vg, self.lv, self.size, self.pvs, resize_fs=self.resize_fs,
                             host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        want = -(-self.size // self.extent_size) * self.extent_size
        if lv is None or lv.size != want:
            return False
        # the LV at its size is not enough with --resizefs: fsadm may have failed after it
        fs = st.filesystems.get(lv.key) if self.resize_fs and not self.shrink else None
        return fs is None or not fs.short_of(int(lv.size))


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveLv(LvmAction):
    """Remove ``vg/lv`` (only ever planned for an LV the spec marks absent)."""

    vg: str
    lv: str
    symbol: ClassVar[Symbol] = Symbol.DELETE
    verb: ClassVar[str] = "lvremove"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.lv}:remove"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.lv}"

    def describe(self) -> str:
        return "lvremove"

    def gives_up(self) -> str:
        return f"the data of {self.vg}/{self.lv} is removed"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.lvremove(self.vg, self.lv, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        return _lv(st, self.vg, self.lv) is None


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveExtents(LvmAction):
    """``pvmove -n vg/lv source dest…`` in the background.

    Started when a pvmove LV in the VG carries this LV's segments; done when the LV holds
    no extent on ``source`` and nothing of it is being moved.
    """

    vg: str
    lv: str
    source: str
    destinations: tuple[str, ...]
    long: ClassVar[bool] = True
    symbol: ClassVar[Symbol] = Symbol.MOVE
    verb: ClassVar[str] = "pvmove"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.lv}:move:{self.source}"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.lv}"

    def describe(self) -> str:
        return f"pvmove {self.spelled(self.source)} -> {self.spelled(self.destinations)}"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.pvmove(self.vg, self.lv, self.source, self.destinations, host=self.host),)

    def _source_name(self, st: state.HostState) -> str:
        pv = st.pv_for(self.source)
        return pv.name if pv else self.source

    def is_done(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        if lv is None:
            return False
        return lv.moving_via is None and lv.pv_extents.get(self._source_name(st), 0) == 0

    def is_started(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        return lv is not None and (lv.moving_via is not None or self.is_done(st))

    def progress(self, st: state.HostState) -> Progress | None:
        lv = _lv(st, self.vg, self.lv)
        vg = st.vgs.get(self.vg)
        if lv is None or vg is None or lv.moving_via is None:
            return None
        for mv in vg.pvmoves:
            if mv.name == lv.moving_via:
                return Progress(mv.copy_percent, f"pvmove {mv.source or '?'}")
        return Progress(None, "pvmove")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeMoves(LvmAction):
    """Bare ``pvmove --background``: restart interrupted moves from their checkpoint.

    Planned when a pvmove is found in the metadata that this process did not start or
    that made no progress (after a crash or a reboot, nobody polls it). It never re-issues
    the original move. lvm resumes every interrupted move on the host with it, so the planner
    only plans it when all of them are in VGs the spec manages. Done when no pvmove remains.
    """

    long: ClassVar[bool] = True
    adoptable: ClassVar[bool] = False
    symbol: ClassVar[Symbol] = Symbol.MOVE
    verb: ClassVar[str] = "pvmove"

    @property
    def key(self) -> str:
        return "host:resume-pvmove"

    @property
    def object(self) -> str:
        return f"host {self.host}"

    def describe(self) -> str:
        return "resume interrupted pvmove (pvmove --background, no arguments)"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.pvmove_resume(host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        return not any(vg.pvmoves for vg in st.vgs.values())

    def is_started(self, st: state.HostState) -> bool:
        return True  # a poller is a process, not state; progress is checked by later passes


@dataclass(frozen=True, slots=True, kw_only=True)
class AddMirrorLeg(LvmAction):
    """Add a raid1 leg of ``vg/lv`` on ``destinations`` (first half of mirror-then-split).

    Started when the LV has a second image lying on the destinations; done when all its
    images are in sync.
    """

    vg: str
    lv: str
    destinations: tuple[str, ...]
    tagged: bool = False  # the LV already carries SPLIT_TAG (a crash after tagging)
    long: ClassVar[bool] = True
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "lvconvert"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.lv}:add-leg"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.lv}"

    def describe(self) -> str:
        return f"add raid1 leg on {self.spelled(self.destinations)}"

    def commands(self) -> tuple[Command, ...]:
        # The tag goes first: it is what later lets a leg be dropped, so an LV with two
        # legs and no tag (a user's own mirror) is never reduced.
        tag = () if self.tagged else (lvm.add_tag(self.vg, self.lv, lvm.SPLIT_TAG, host=self.host),)
        return (*tag, lvm.add_raid1_leg(self.vg, self.lv, self.destinations, host=self.host))

    def is_started(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        return lv is not None and len(lv.images) >= 2 and lvm.SPLIT_TAG in lv.tags

    def is_done(self, st: state.HostState) -> bool:
        return self.is_started(st) and _lv(st, self.vg, self.lv).is_synced

    def progress(self, st: state.HostState) -> Progress | None:
        return _raid1_sync(_lv(st, self.vg, self.lv))


@dataclass(frozen=True, slots=True, kw_only=True)
class DropMirrorLeg(LvmAction):
    """Drop the leg(s) of ``vg/lv`` lying on ``sources`` (second half of mirror-then-split).

    Planned after ``AddMirrorLeg`` (deferred while the new leg syncs), and only for an LV
    carrying ``SPLIT_TAG`` whose kept leg shares no PV with ``sources``; it never runs
    before every image is in sync and ``state.split_problems`` finds nothing wrong with the
    legs (checked again right before running). Done when the LV has one copy, no extent on
    ``sources`` and no tag.
    """

    vg: str
    lv: str
    sources: tuple[str, ...]
    symbol: ClassVar[Symbol] = Symbol.DELETE
    verb: ClassVar[str] = "lvconvert"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.lv}:drop-leg"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.lv}"

    def describe(self) -> str:
        return f"drop the in-sync leg on {self.spelled(self.sources)} (lvconvert -m0)"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.drop_legs_on(self.vg, self.lv, self.sources, host=self.host),
                lvm.del_tag(self.vg, self.lv, lvm.SPLIT_TAG, host=self.host))

    def waiting_for(self, st: state.HostState) -> str | None:
        # The planner's rule again, on the state observed right before the command: a leg
        # that failed since the plan was made must stop the drop here.
        lv = _lv(st, self.vg, self.lv)
        if lv is None or len(lv.images) <= 1:
            return None
        drop = frozenset(pv.name if (pv := st.pv_for(s)) else s for s in self.sources)
        problems = state.split_problems(lv, st.pvs, drop)
        if problems:
            return "no leg is dropped: " + "; ".join(problems)
        if not lv.is_synced:
            return "the legs are not 100% in sync yet"
        return None

    def is_done(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        if lv is None or len(lv.images) > 1 or lvm.SPLIT_TAG in lv.tags:
            return False
        names = {(st.pv_for(s).name if st.pv_for(s) else s) for s in self.sources}
        return not any(lv.pv_extents.get(n, 0) for n in names)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForgetSplit(LvmAction):
    """Remove ``tag`` (by default ``SPLIT_TAG``, left behind by a crash after the split; or a
    handover's pending-split tag that no longer names anything) from an LV."""

    vg: str
    lv: str
    tag: str = lvm.SPLIT_TAG
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "lvchange"

    @property
    def key(self) -> str:
        base = f"lv:{self.vg}/{self.lv}:untag"
        return base if self.tag == lvm.SPLIT_TAG else f"{base}:{self.tag}"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.lv}"

    def describe(self) -> str:
        return f"remove tag {self.tag}"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.del_tag(self.vg, self.lv, self.tag, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        return lv is None or self.tag not in lv.tags


def _names(st: state.HostState, devices: tuple[str, ...]) -> frozenset[str]:
    """lvm's names for ``devices`` as the spec spells them (the spelling when not a PV)."""
    return frozenset(pv.name if (pv := st.pv_for(d)) else d for d in devices)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddCopy(LvmAction):
    """One more raid1 copy of ``vg/lv``, wholly on ``pvs`` (``lv.copies``): ``copies`` is the
    number of images once added. Started when an image lies on ``pvs``; done when in sync."""

    vg: str
    lv: str
    pvs: tuple[str, ...]
    copies: int
    long: ClassVar[bool] = True
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "lvconvert"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.lv}:add-copy:{self.copies}"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.lv}"

    def describe(self) -> str:
        return f"add raid1 copy {self.copies} on {self.spelled(self.pvs)}"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.add_raid1_copy(self.vg, self.lv, self.copies, self.pvs, host=self.host),)

    def needs(self) -> tuple[str, ...]:
        return self.pvs

    def is_started(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        return (lv is not None and len(lv.images) >= self.copies
                and state.image_on(lv, _names(st, self.pvs)) is not None)

    def is_done(self, st: state.HostState) -> bool:
        return self.is_started(st) and _lv(st, self.vg, self.lv).is_synced

    def progress(self, st: state.HostState) -> Progress | None:
        return _raid1_sync(_lv(st, self.vg, self.lv))


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshCopy(LvmAction):
    """``lvchange --refresh``: a raid1 whose failed device is back takes it again and
    resyncs it from the copies that stayed in sync (lvmraid(7), transient failures)."""

    vg: str
    lv: str
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "lvchange"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.lv}:refresh-copy"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.lv}"

    def describe(self) -> str:
        return "refresh (lvchange --refresh): the copy whose device came back resyncs"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.refresh(self.vg, self.lv, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        return lv is None or not state.needs_refresh(lv)


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitCopy(LvmAction):
    """The copy of ``vg/lv`` on ``pvs`` becomes the linear LV ``name`` (handover, first step),
    inactive, out of event autoactivation, then tagged as this handover's: it carries the
    same file system UUID as ``lv``, so nothing (an fstab ``UUID=``, udev at boot) may mount
    it in place of the LV this host keeps. Before the split, ``lv`` is tagged with the
    image's uuid (``handover_pending_tag``): a crash before the copy's own tag leaves an
    untagged copy that this tag ties to the split (``FinishSplitCopy`` then finishes it);
    the tag goes last. Each command's effect implies the ones before it are done.

    Right before it runs, the LV must still be closed, in sync, and both copies healthy on
    present PVs (``state.split_problems``): otherwise it waits, saying why."""

    vg: str
    lv: str
    pvs: tuple[str, ...]
    name: str
    image_uuid: str = ""  # lv_uuid of the image split off (it becomes ``name``'s)
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "lvconvert"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.lv}:split-copy"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.lv}"

    def describe(self) -> str:
        return f"split the copy on {self.spelled(self.pvs)} off as {self.name} (--splitmirrors)"

    def commands(self) -> tuple[Command, ...]:
        tag = lvm.handover_pending_tag(self.image_uuid) if self.image_uuid else None
        before = (lvm.add_tag(self.vg, self.lv, tag, host=self.host),) if tag else ()
        after = (lvm.del_tag(self.vg, self.lv, tag, host=self.host),) if tag else ()
        return (*before,
                lvm.split_copy(self.vg, self.lv, self.name, self.pvs, host=self.host),
                *_finish_split(self.vg, self.name, self.host), *after)

    def waiting_for(self, st: state.HostState) -> str | None:
        lv = _lv(st, self.vg, self.lv)
        if lv is None:
            return None
        return state.handover_problem(lv, st, _names(st, self.pvs))

    def is_done(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        split = _lv(st, self.vg, self.name)
        names = _names(st, self.pvs)
        return (lv is not None and split is not None and lvm.HANDOVER_TAG in split.tags
                and not split.attr.is_active and not set(lv.pv_extents) & names
                and not lvm.handover_pending(lv.tags))


def _finish_split(vg: str, copy: str, host: str) -> tuple[Command, ...]:
    """What makes a copy just split off safe and this handover's, the tag last."""
    return (lvm.deactivate(vg, copy, host=host),
            lvm.set_autoactivation(vg, copy, False, host=host),
            lvm.add_tag(vg, copy, lvm.HANDOVER_TAG, host=host))


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishSplitCopy(LvmAction):
    """The rest of ``SplitCopy`` after a crash that stopped it after ``lvconvert
    --splitmirrors``: the copy ``name``, known as the one split off ``lv`` by its lv_uuid
    (named in ``lv``'s pending-split tag), goes inactive and out of autoactivation, gets the
    handover tag, then ``lv`` loses the pending tag. Every command is idempotent."""

    vg: str
    lv: str
    name: str
    image_uuid: str
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "lvchange"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.name}:finish-split"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.name}"

    def describe(self) -> str:
        return (f"finish the split of {self.lv}'s copy: deactivate it, autoactivation off, "
                f"tag {lvm.HANDOVER_TAG}")

    def commands(self) -> tuple[Command, ...]:
        tag = lvm.handover_pending_tag(self.image_uuid)
        return (*_finish_split(self.vg, self.name, self.host),
                lvm.del_tag(self.vg, self.lv, tag, host=self.host))

    def is_done(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        copy = _lv(st, self.vg, self.name)
        tag = lvm.handover_pending_tag(self.image_uuid)
        return ((copy is None or (lvm.HANDOVER_TAG in copy.tags and not copy.attr.is_active))
                and (lv is None or tag not in lv.tags))


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitVg(LvmAction):
    """Move ``pvs`` (and the split copies ``lvs`` on them, deactivated first) out of ``vg``
    into the new VG ``new_vg`` (``vgsplit``)."""

    vg: str
    new_vg: str
    pvs: tuple[str, ...]
    lvs: tuple[str, ...]
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "vgsplit"

    @property
    def key(self) -> str:
        return f"vg:{self.vg}:split:{self.new_vg}"

    @property
    def object(self) -> str:
        return f"vg {self.vg}"

    def describe(self) -> str:
        return f"vgsplit {self.spelled(self.pvs)} (with {', '.join(self.lvs)}) into {self.new_vg}"

    def commands(self) -> tuple[Command, ...]:
        return (*(lvm.deactivate(self.vg, lv, host=self.host) for lv in self.lvs),
                lvm.vgsplit(self.vg, self.new_vg, self.pvs, host=self.host))

    def takes_devices(self) -> tuple[Take, ...]:
        return tuple(Take(f"/dev/{self.vg}/{lv}", Effect.TAKES_AWAY, "the split copy")
                     for lv in self.lvs)

    def is_done(self, st: state.HostState) -> bool:
        new = st.vgs.get(self.new_vg)
        old = st.vgs.get(self.vg)
        names = _names(st, self.pvs)
        return new is not None and names <= set(new.pvs) and not (
            old is not None and set(old.pvs) & names)


@dataclass(frozen=True, slots=True, kw_only=True)
class RenameLv(LvmAction):
    vg: str
    old: str
    new: str
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "lvrename"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.old}:rename"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.old}"

    def describe(self) -> str:
        return f"rename to {self.new}"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.lvrename(self.vg, self.old, self.new, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        return _lv(st, self.vg, self.new) is not None and _lv(st, self.vg, self.old) is None


@dataclass(frozen=True, slots=True, kw_only=True)
class ExportVg(LvmAction):
    """``vgexport``: the VG leaves this host (no system ID; no host activates it until one
    runs vgimport). Its PVs are then free for a logout (``releases``)."""

    vg: str
    devices: tuple[str, ...] = ()  # the PVs as the spec spells them, released once exported
    symbol: ClassVar[Symbol] = Symbol.DELETE
    verb: ClassVar[str] = "vgexport"

    @property
    def key(self) -> str:
        return f"vg:{self.vg}:export"

    @property
    def object(self) -> str:
        return f"vg {self.vg}"

    def describe(self) -> str:
        return "vgchange -an, vgexport (handed over)"

    def commands(self) -> tuple[Command, ...]:
        # After a restart, event autoactivation may have activated the split copies again
        # (lab): vgexport refuses a VG with an active LV.
        return (lvm.vg_deactivate(self.vg, host=self.host),
                lvm.vgexport(self.vg, host=self.host))

    def releases(self) -> tuple[str, ...]:
        return self.devices

    def takes_devices(self) -> tuple[Take, ...]:
        # Its own VG and its LVs' device-mapper maps (its vgchange -an removes them, which is
        # verified before vgexport: takes_before) are its own uses; a mounted or open LV
        # fails vgchange -an itself. Any other holder (a multipath map, dm-crypt, another
        # VG's LV, md, DRBD) is not: the executor tells them by their dm uuid (Take.maps_of).
        return tuple(Take(d, Effect.TAKES_AWAY, "the PV", allow=(f"pv:{self.vg}",
                                                                 f"lvmap:{self.vg}"))
                     for d in self.devices)

    def takes_before(self, index: int) -> tuple[Take, ...]:
        # Between vgchange -an and vgexport: no map may hold a PV any more, its own included.
        # A map of the VG that vgchange -an leaves (one left by a crashed lvconvert or
        # pvmove, or of an LV another host removed while it was active here, perhaps
        # mounted) would keep using a disk that vgexport hands over.
        if index != 1:
            return ()
        return tuple(Take(d, Effect.TAKES_AWAY, "the PV", allow=(f"pv:{self.vg}",))
                     for d in self.devices)

    def is_done(self, st: state.HostState) -> bool:
        vg = st.vgs.get(self.vg)
        return vg is not None and vg.exported


@dataclass(frozen=True, slots=True, kw_only=True)
class TakeOverVg(LvmAction):
    """``vgimport`` the VG handed over as ``source`` (when exported) and ``vgrename`` it to
    ``vg`` (when the names differ). Runs only once no iSCSI target here exports its PVs
    (``needs_free``: a target removal in the same plan comes first)."""

    vg: str
    source: str
    exported: bool
    devices: tuple[str, ...] = ()
    lvs: tuple[str, ...] = ()  # its LVs: event autoactivation, off since the split, back on
    tagged: bool = False  # the source already carries TAKEOVER_TAG (a retry after a crash)
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "vgimport"

    @property
    def key(self) -> str:
        return f"vg:{self.vg}:takeover"

    @property
    def object(self) -> str:
        return f"vg {self.vg}"

    def describe(self) -> str:
        steps = ["vgimport"] if self.exported else []
        if self.source != self.vg:
            steps.append(f"vgrename {self.source} {self.vg}")
        return f"take over {self.source}: {', then '.join(steps)}"

    def commands(self) -> tuple[Command, ...]:
        # The tag says "imported here by a takeover": a VG of that name that is not exported
        # and not tagged is never taken for a completed takeover (it may be a handover that
        # stopped before vgexport, still in use on the other host).
        # Each command's effect implies the ones before it are done (the tag, then the name,
        # are what is_done reads), so a retry after a crash never skips one.
        imp = (lvm.vgimport(self.source, host=self.host),) if self.exported else ()
        auto = tuple(lvm.set_autoactivation(self.source, lv, True, host=self.host)
                     for lv in self.lvs)
        tag = () if self.tagged else (lvm.vg_add_tag(self.source, lvm.TAKEOVER_TAG,
                                                      host=self.host),)
        ren = ((lvm.vgrename(self.source, self.vg, host=self.host),)
               if self.source != self.vg else ())
        return (*imp, *auto, *tag, *ren)

    def needs_free(self) -> tuple[str, ...]:
        return self.devices

    def is_done(self, st: state.HostState) -> bool:
        vg = st.vgs.get(self.vg)
        return (vg is not None and not vg.exported and lvm.TAKEOVER_TAG in vg.tags
                and (self.source == self.vg or self.source not in st.vgs))


@dataclass(frozen=True, slots=True, kw_only=True)
class ResizePv(LvmAction):
    """``pvresize``: the PV takes the whole of its device, which grew (``vg.grow_pvs``)."""

    device: str
    extent_size: int
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "pvresize"

    @property
    def key(self) -> str:
        return f"pv:{self.device}:resize"

    @property
    def object(self) -> str:
        return f"pv {self.device}"

    def describe(self) -> str:
        return "pvresize to its device's size"

    def commands(self) -> tuple[Command, ...]:
        return (lvm.pvresize(self.device, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        pv = st.pv_for(self.device)
        return pv is not None and pv.extents_on_device(self.extent_size) <= pv.pe_count
