"""The LVM tables of the spec: ``[vg.NAME]``, its ``[vg.NAME.lv.NAME]`` and the server move's
``handover`` and ``takeover``.

Names that will reach a command line (VG, LV, device paths, node names) are validated here,
by lvm2's rules, so nothing later has to wonder whether a string is safe to pass on.

Layout::

    [vg.vgglobal]
    nodes = ["node-1"]               # several hosts or "*": scope = "local" must be written
    pvs = ["/dev/mapper/lun02"]

    [vg.vgglobal.lv.lvrepnb]
    size = "128M"
    placement = ["/dev/mapper/lun02"]
    move = "pvmove"
"""

from __future__ import annotations

import enum
import re
from typing import Annotated

from pydantic import (AfterValidator, BeforeValidator, Field, PlainSerializer, StrictBool,
                      WithJsonSchema, model_validator)

from reconciler import units
from reconciler.spec.base import At, Checks, Model, Presence, SizeField, parse_size, unique
from reconciler.spec.names import DevicePath, NodeName
from reconciler.spec.text import shown
from reconciler.state.names import HANDOVER_SUFFIX, LV_RESERVED_PARTS

_LVM_NAME_RE = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$")


def _lvm_name(kind: str, name: str) -> str:
    if not name:
        raise ValueError(f"{kind} name is empty")
    if len(name) > 127:
        raise ValueError(f"{kind} name {shown(name)} is longer than LVM's 127 characters")
    if name in (".", "..") or not _LVM_NAME_RE.fullmatch(name):
        raise ValueError(f"{kind} name {shown(name)} may only contain letters, digits and "
                         f"+ _ . - and must not start with '-' (LVM's rule)")
    return name


def check_vg_name(name: str) -> str:
    return _lvm_name("VG", name)


# What every rule below accepts, in one match (a name it does not match is judged, and its
# message written, by the rules themselves): LVM's characters and length, no reserved prefix,
# no reserved part anywhere.
_GOOD_LV_NAME_RE = re.compile(
    r"(?!snapshot|pvmove|\.\.?$)(?!.*(?:" + "|".join(LV_RESERVED_PARTS) + r"))"
    r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}")


def check_lv_name(name: str) -> str:
    if _GOOD_LV_NAME_RE.fullmatch(name) is not None:
        return name
    _lvm_name("LV", name)
    if name.startswith(("snapshot", "pvmove")):
        raise ValueError(f"LV name {shown(name)} starts with a prefix LVM reserves "
                         f"(snapshot, pvmove)")
    for part in LV_RESERVED_PARTS:
        if part in name:
            raise ValueError(f"LV name {shown(name)} contains {part!r}, which LVM reserves for "
                             f"its hidden sub-volumes")
    return name


# lvm2 2.03 (lib/metadata/vg.c, measured in the lab with 512- and 4096-byte-sector disks):
# a power of two of at least one sector of the largest-sector PV, or a multiple of 128 KiB,
# and below 2 TiB (2^32 sectors). The validator cannot know the sector size, so it takes
# 4 KiB as the floor; it accepts powers of two only (the simulator and offline planning model
# those, and raid1 region sizes divide them), up to 1 TiB, the largest lvm2 takes.
MIN_EXTENT_SIZE = 4 * 1024
MAX_EXTENT_SIZE = 1024**4


def check_extent_size(size: int) -> int:
    if size & (size - 1):
        raise ValueError(f"extent_size {units.format_size(size)} is not a power of two "
                         f"(examples: 4M, the default, 8M, 32M)")
    if size < MIN_EXTENT_SIZE:
        raise ValueError(f"extent_size {units.format_size(size)} is below 4K: lvm2 refuses an "
                         f"extent smaller than a PV's sector, which is 4K on many disks")
    if size > MAX_EXTENT_SIZE:
        raise ValueError(f"extent_size {units.format_size(size)} is above 1T, the largest "
                         f"power of two lvm2 accepts")
    return size


VgName = Annotated[str, AfterValidator(check_vg_name)]
LvName = Annotated[str, AfterValidator(check_lv_name)]
ExtentSizeField = Annotated[
    int, BeforeValidator(parse_size), AfterValidator(check_extent_size),
    PlainSerializer(units.format_size, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "string",
                               "pattern": r"^ *[0-9]+ *([kKmMgGtT]([iI][bB])?|[bB])? *$",
                               "examples": ["4M", "32M"]},
                              {"type": "integer", "minimum": MIN_EXTENT_SIZE,
                               "maximum": MAX_EXTENT_SIZE}],
                    "description": "a power of two from 4K to 1T (lvm2's physical extent "
                    "size)"}),
]


class MoveStrategy(enum.StrEnum):
    PVMOVE = "pvmove"
    MIRROR_THEN_SPLIT = "mirror-then-split"


class Scope(enum.StrEnum):
    LOCAL = "local"
    SHARED = "shared"


class LockType(enum.StrEnum):
    SANLOCK = "sanlock"
    DLM = "dlm"


class Activation(enum.StrEnum):
    """Where an LV is active, per node (``lv.X.activation``)."""

    EXCLUSIVE = "exclusive"  # shared VG: lvchange -aey (at most one node)
    SHARED = "shared"  # shared VG: lvchange -asy (several nodes; not raid)
    ACTIVE = "active"  # local VG: lvchange -ay
    INACTIVE = "inactive"  # lvchange -an (-aln in a shared VG)


class Lv(Model):
    """A logical volume inside its VG."""

    state: Presence = Field(Presence.PRESENT, description="'absent' removes the LV (lvremove)")
    size: SizeField | None = Field(None, description="absolute size; required when present")
    placement: tuple[DevicePath, ...] = Field(
        (), description="PVs that must hold every extent of the LV; empty = anywhere in the VG")
    move: MoveStrategy = Field(
        MoveStrategy.PVMOVE, description="how extents are moved: pvmove, or mirror-then-split "
        "(add a raid1 leg on the destination, wait for 100% sync, drop the source leg)")
    allow_shrink: StrictBool = Field(
        False, description="permit lvreduce when size is below the current size; the file "
        "system on it must already be smaller (true or false, nothing else)")
    activation: dict[NodeName, Activation] = Field(
        default_factory=dict, description="where the LV is active, by node name, \"*\" for "
        "the nodes not named: exclusive | shared | inactive in a shared VG, active | "
        "inactive in a local one; empty = activation left as it is")
    copies: tuple[tuple[DevicePath, ...], ...] = Field(
        (), description="keep the LV a raid1 with one complete copy on each of these PV sets "
        "(e.g. [[\"/dev/md1\"], [\"/dev/disk/by-path/...-lun-0\"]]), added one at a time "
        "and kept in sync; instead of placement; empty = one copy")
    resize_fs: StrictBool = Field(
        False, description="grow the file system on the LV with it (lvextend --resizefs: "
        "ext4, xfs); false = only the LV grows")

    @model_validator(mode="after")
    def _check(self) -> "Lv":
        size = self.size
        if (size is not None and not size % 512 and not self.copies
                and not (self.resize_fs and self.allow_shrink)
                and (len(self.placement) < 2 or len(set(self.placement)) == len(self.placement))):
            return self  # the common LV, which no check below can refuse (10,000 of them)
        checks = Checks()
        with checks:
            unique("placement PV", self.placement, "placement")
        if self.copies:
            with checks:
                _check_copies(self)
        with checks:
            if self.resize_fs and self.allow_shrink:
                raise At(("allow_shrink",), "resize_fs grows the file system with the LV; "
                         "shrinking one is not done from here (shrink the file system first, "
                         "then the LV with allow_shrink and no resize_fs)")
        with checks:
            if self.state is Presence.PRESENT and self.size is None:
                raise At(("size",), "size is required for an LV that is present")
            if self.size is not None and self.size % 512:
                raise At(("size",), f"size {int(self.size)} bytes is not a whole number of "
                         f"512-byte sectors, which LVM refuses")
        checks.done()
        return self


def _check_copies(lv: "Lv") -> None:
    if lv.placement:
        raise At(("copies",), "copies and placement exclude each other: copies already says "
                 "which PVs hold the LV (each set holds one whole copy)")
    if "move" in lv.model_fields_set:
        raise At(("move",), "move is for placement changes; an LV with copies gets new "
                 "copies added and keeps them (a copy is dropped only by a handover)")
    if lv.state is Presence.ABSENT:
        raise At(("copies",), "the LV is absent: it has no copies")
    if len(lv.copies) < 2:
        raise At(("copies",), "copies needs at least two PV sets (one per copy); for one copy "
                 "use placement")
    seen: set[str] = set()
    for i, group in enumerate(lv.copies):
        if not group:
            raise At(("copies", i), "a copy needs at least one PV")
        for j, dev in enumerate(group):
            if dev in seen:
                raise At(("copies", i, j), f"{shown(dev)} is in two copies; each copy must "
                         f"lie on its own PVs, or losing that PV loses both")
            seen.add(dev)


class Handover(Model):
    """The copy of a VG's LVs on ``pvs`` leaves this host as its own exported VG ``vg``.

    Every LV of the VG must be a raid1 with one complete, in-sync, healthy copy wholly on
    ``pvs`` and be closed (unmounted, unused): each such copy is split off
    (``lvconvert --splitmirrors``), the PVs go to a new VG (``vgsplit``), the LVs get back
    their names there and the VG is exported (``vgexport``). This host keeps a complete VG on
    its other PVs; the other host imports ``vg`` (``takeover``).
    """

    pvs: tuple[DevicePath, ...] = Field(
        ..., min_length=1, description="the PVs that hold the copy which leaves (the remote "
        "disk); they must not be in the VG's pvs")
    vg: VgName = Field(..., description="the name of the exported VG the copy becomes "
                       "(another host takes it over under its own name)")

    @model_validator(mode="after")
    def _check(self) -> "Handover":
        unique("PV", self.pvs, "pvs")
        return self


class Vg(Model):
    """A volume group, the PVs it must consist of, and its LVs."""

    nodes: tuple[NodeName, ...] = Field(
        ..., min_length=1, description="hosts that reconcile this VG ('*' = any host)")
    scope: Scope | None = Field(
        None, description="'local': every host in nodes has its own VG of this name on its own "
        "disks (a fleet's vg0); 'shared': one VG on storage the nodes share, under lvmlockd. "
        "Default 'local' when nodes names one host; required when it names several or '*'")
    lock_type: LockType = Field(
        LockType.SANLOCK, description="shared VGs: lvmlockd's lock manager, sanlock or dlm")
    create_on: NodeName | None = Field(
        None, description="shared VGs (required): the one node that runs pvcreate, vgcreate "
        "--shared, vgextend/vgreduce, lvcreate and lvremove, so that two nodes never race")
    state: Presence = Presence.PRESENT
    pvs: tuple[DevicePath, ...] = Field(
        (), description="exactly the PVs of the VG; a PV found in the VG but not listed is "
        "evacuated (pvmove) and removed (vgreduce)")
    extent_size: ExtentSizeField | None = Field(
        None, description="for vgcreate only (default 4M): a power of two from 4K to 1T")
    grow_pvs: StrictBool = Field(
        False, description="pvresize each PV whose device grew by at least one extent (never "
        "shrinks a PV)")
    handover: Handover | None = Field(
        None, description="hand the copy on some PVs over to another host (see the README's "
        "server move)")
    takeover: VgName | None = Field(
        None, description="the exported VG another host handed over: vgimport it, and "
        "vgrename it to this VG's name, once no iSCSI target here exports its disks")
    lv: dict[LvName, Lv] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "Vg":
        checks = Checks()
        with checks:
            unique("PV", self.pvs, "pvs")
        with checks:
            unique("node", self.nodes, "nodes")
        with checks:
            self._check_scope()
        with checks:
            if self.state is Presence.PRESENT and not self.pvs:
                raise At(("pvs",), "pvs must list at least one device for a VG that is present")
        with checks:
            _check_move(self)
        # An LV without copies or activation, in a present VG with no handover, placed on
        # PVs of the VG, meets every check of the loop below: one cheap test (10,000 LVs).
        simple = self.state is not Presence.ABSENT and self.handover is None
        pvs = frozenset(self.pvs)
        for name, lv in self.lv.items():
            if simple and not lv.copies and not lv.activation and pvs.issuperset(lv.placement):
                continue
            for where, p in _lv_pvs(name, lv):
                with checks:
                    if p not in self.pvs:
                        raise At(where, f"{shown(p)} is not in this VG's pvs")
            with checks:
                if self.handover is not None and len(name) + len(HANDOVER_SUFFIX) > 127:
                    raise At(("lv", name), f"the LV name is too long for a handover: its copy "
                             f"is named {name}{HANDOVER_SUFFIX} while it is split off, and LVM "
                             f"allows 127 characters")
            with checks:
                if self.state is Presence.ABSENT and lv.state is Presence.PRESENT:
                    raise At(("lv", name, "state"), "the LV is present but its VG is absent")
            with checks:
                _check_activation(self, name, lv)
        checks.done()
        return self

    def _check_scope(self) -> None:
        if self.scope is None:
            if len(self.nodes) > 1 or "*" in self.nodes:
                raise At(("scope",), (
                    "scope is required when nodes names several hosts or \"*\": \"local\" "
                    "(each of these hosts has its own VG of this name on its own disks) or "
                    "\"shared\" (one VG on storage they all see)"))
            object.__setattr__(self, "scope", Scope.LOCAL)  # one host: local, as documented
        if self.scope is Scope.SHARED:
            _check_shared(self)
        else:
            if self.create_on is not None:
                raise At(("create_on",), "create_on is for shared VGs (scope = \"shared\"); "
                         "a local VG is created by each host in nodes")
            if "lock_type" in self.model_fields_set:
                raise At(("lock_type",), "lock_type is for shared VGs (scope = \"shared\")")

    def applies_to(self, node: str) -> bool:
        return "*" in self.nodes or node in self.nodes


def _lv_pvs(name: str, lv: Lv) -> list[tuple[tuple[str | int, ...], str]]:
    """(key path in the VG, device) of every PV an LV's placement or copies name."""
    return ([(("lv", name, "placement", i), p) for i, p in enumerate(lv.placement)]
            + [(("lv", name, "copies", i, j), p) for i, group in enumerate(lv.copies)
               for j, p in enumerate(group)])


def _check_move(vg: Vg) -> None:
    """handover and takeover: local VGs, present, one of the two, names that differ."""
    if vg.scope is Scope.SHARED and vg.grow_pvs:
        raise At(("grow_pvs",), "grow_pvs is for local VGs (not supported under lvmlockd yet)")
    if vg.scope is Scope.SHARED:  # (a local VG's LVs are not read here: 10,000 of them)
        for name, lv in vg.lv.items():
            if lv.copies:
                raise At(("lv", name, "copies"), "copies are not supported in a shared VG yet")
    if vg.handover is None and vg.takeover is None:
        return
    key = "handover" if vg.handover is not None else "takeover"
    if vg.handover is not None and vg.takeover is not None:
        raise At(("takeover",), "a VG is either handed over (handover) or taken over "
                 "(takeover) on a node, not both")
    if vg.scope is Scope.SHARED:
        raise At((key,), f"{key} is for local VGs: lvmlockd does not support vgsplit, and a "
                 f"shared VG is already seen by every node")
    if vg.state is Presence.ABSENT:
        raise At((key,), f"the VG is absent: it has no {key}")
    if vg.handover is not None:
        for i, p in enumerate(vg.handover.pvs):
            if p in vg.pvs:
                raise At(("handover", "pvs", i), f"{shown(p)} is also in the VG's pvs: the "
                         f"PVs handed over leave the VG, list only the ones it keeps")


def _check_shared(vg: Vg) -> None:
    if vg.create_on is None:
        raise At(("create_on",), "a shared VG needs create_on: the one node that creates it "
                 "(pvcreate, vgcreate --shared) and adds or removes its PVs and LVs, so that "
                 "two nodes never race")
    if vg.create_on == "*" or not vg.applies_to(vg.create_on):
        raise At(("create_on",), f"{shown(vg.create_on)} must be one of this VG's nodes")


_SHARED_MODES = (Activation.EXCLUSIVE, Activation.SHARED, Activation.INACTIVE)
_LOCAL_MODES = (Activation.ACTIVE, Activation.INACTIVE)


def _check_activation(vg: Vg, name: str, lv: Lv) -> None:
    """The activation table: nodes of the VG, modes of its scope, at most one exclusive
    node and no shared+exclusive mix (lvmlockd would refuse the second lock anyway)."""
    where = ("lv", name, "activation")
    if vg.scope is None:
        return  # reported already (scope is required here): which modes apply is unknown
    shared = vg.scope is Scope.SHARED
    modes = _SHARED_MODES if shared else _LOCAL_MODES
    for node, mode in lv.activation.items():
        if node != "*" and not vg.applies_to(node):
            raise At((*where, node), f"node {shown(node)} is not in this VG's nodes")
        if mode not in modes:
            raise At((*where, node), f"{mode.value!r} is not an activation of a "
                     f"{'shared' if shared else 'local'} VG: use "
                     f"{' | '.join(m.value for m in modes)}")
    if lv.activation and lv.state is Presence.ABSENT:
        raise At(where, "the LV is absent: it has no activation")
    if not shared:
        return
    ex = [n for n, m in lv.activation.items() if m is Activation.EXCLUSIVE]
    sh = [n for n, m in lv.activation.items() if m is Activation.SHARED]
    if "*" in ex or len(ex) > 1:
        raise At(where, f"exclusive on {', '.join(ex)}: an LV is exclusive on one node at "
                 f"most (\"*\" with exclusive means every node)")
    if ex and sh:
        raise At(where, f"exclusive on {ex[0]} and shared on {', '.join(sh)}: lvmlockd "
                 f"grants an exclusive lock only when no other node holds one")
