"""The desired-state models (pydantic), one class per spec table.

Every model is frozen and forbids unknown keys: a typo in a spec must be an error that
names the key, never a silently ignored setting. Names that will reach a command line
(VG, LV, device paths, node names) are validated here, by the rules of the tool that will
receive them, so nothing later has to wonder whether a string is safe to pass on.

Layout of a spec file::

    [vg.vgglobal]
    nodes = ["node-1"]               # several hosts or "*": scope = "local" must be written
    pvs = ["/dev/mapper/lun02"]

    [vg.vgglobal.lv.lvrepnb]
    size = "128M"
    placement = ["/dev/mapper/lun02"]
    move = "pvmove"

    [clone.db]                       # an online block-device clone (md RAID1, seed 002)
    nodes = ["node-1"]
    source = "/dev/mapper/old-lun"
    target = "/dev/mapper/new-lun"
    md = "/dev/md100"
    state = "split"
"""

from __future__ import annotations

import enum
import re
from typing import Annotated

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      PlainSerializer, StrictBool, WithJsonSchema, model_validator)

from reconciler import units
from reconciler.spec import iscsi, names
from reconciler.spec.drbd import DrbdResource, ResourceName
from reconciler.spec.text import shown, toml_type

# -- names ---------------------------------------------------------------------------------

_LVM_NAME_RE = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$")
# Suffixes lvm2 reserves for its hidden sub-LVs (lib/misc/lvm-string.c: apply_lvname_restrictions).
_LV_RESERVED_PARTS = ("_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_mimage", "_mlog",
                      "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata",
                      "_vorigin", "_wcorig")
_MD_RE = re.compile(r"^/dev/md(0|[1-9][0-9]{0,6})$")
_CLONE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MD_MAX_MINOR = (1 << 20) - 1  # the kernel's MINORMASK: /dev/mdN has device number 9:N


class At(ValueError):
    """A problem found by a table's own check, about one of its keys (``lv.db.size``).

    Raised inside a model validator, it keeps the key path exact: the loader appends
    ``where`` to the table's path instead of naming the whole table.
    """

    def __init__(self, where: tuple[str | int, ...], message: str):
        super().__init__(message)
        self.where = where


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


def check_lv_name(name: str) -> str:
    _lvm_name("LV", name)
    if name.startswith(("snapshot", "pvmove")):
        raise ValueError(f"LV name {shown(name)} starts with a prefix LVM reserves "
                         f"(snapshot, pvmove)")
    for part in _LV_RESERVED_PARTS:
        if part in name:
            raise ValueError(f"LV name {shown(name)} contains {part!r}, which LVM reserves for "
                             f"its hidden sub-volumes")
    return name


def check_device(path: str) -> str:
    if not names.is_device_path(path):
        raise ValueError(f"{shown(path)} is not a device path: it must be an absolute path "
                         f"under /dev/ made of letters, digits and _ . : + @ = , - only")
    return path


def check_md(path: str) -> str:
    m = _MD_RE.fullmatch(path)
    if not m or int(m.group(1)) > MD_MAX_MINOR:
        raise ValueError(f"{shown(path)} is not an md device: it must be /dev/mdN with N from "
                         f"0 to {MD_MAX_MINOR} (no leading zeros)")
    return path


def check_clone_name(name: str) -> str:
    if not _CLONE_NAME_RE.fullmatch(name):
        raise ValueError(f"clone name {shown(name)} must be 1 to 64 letters, digits and "
                         f"_ . -, starting with a letter or digit")
    return name


def check_node(name: str) -> str:
    if not names.is_node_name(name):
        raise ValueError(f"{shown(name)} is not a host name (or \"*\" for every node)")
    return name


def _parse_size(value: object) -> int:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return units.parse_size(value)
    raise ValueError(f"must be a size: a string like \"10G\" or an integer number of bytes, "
                     f"not {toml_type(value)}")


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
DevicePath = Annotated[str, AfterValidator(check_device)]
NodeName = Annotated[str, AfterValidator(check_node)]
MdPath = Annotated[str, AfterValidator(check_md)]
CloneName = Annotated[str, AfterValidator(check_clone_name)]
SizeField = Annotated[
    int, BeforeValidator(_parse_size), PlainSerializer(units.format_size, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "string",
                               "pattern": r"^ *[0-9]+(\.[0-9]+)? *[kKmMgGtTpPeE]?(i?[bB])? *$",
                               "examples": ["128M", "10G", "1.5T"]},
                              {"type": "integer", "minimum": 1,
                               "exclusiveMaximum": units.MAX_BYTES}],
                    "description": "bytes, or a number with a binary suffix (K M G T P E); "
                    "below 8 EiB"}),
]
ExtentSizeField = Annotated[
    int, BeforeValidator(_parse_size), AfterValidator(check_extent_size),
    PlainSerializer(units.format_size, return_type=str),
    WithJsonSchema({"anyOf": [{"type": "string",
                               "pattern": r"^ *[0-9]+ *[kKmMgGtT]?(i?[bB])? *$",
                               "examples": ["4M", "32M"]},
                              {"type": "integer", "minimum": MIN_EXTENT_SIZE,
                               "maximum": MAX_EXTENT_SIZE}],
                    "description": "a power of two from 4K to 1T (lvm2's physical extent "
                    "size)"}),
]


class Presence(enum.StrEnum):
    PRESENT = "present"
    ABSENT = "absent"


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


class CloneState(enum.StrEnum):
    MIRRORED = "mirrored"
    SPLIT = "split"
    ABANDONED = "abandoned"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)


def _unique(kind: str, items: tuple[str, ...], key: str) -> tuple[str, ...]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item in seen:
            raise At((key, i), f"{kind} {shown(item)} is listed twice")
        seen.add(item)
    return items


class Lv(_Model):
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
        _unique("placement PV", self.placement, "placement")
        if self.copies:
            _check_copies(self)
        if self.resize_fs and self.allow_shrink:
            raise At(("allow_shrink",), "resize_fs grows the file system with the LV; shrinking "
                     "one is not done from here (shrink the file system first, then the LV "
                     "with allow_shrink and no resize_fs)")
        if self.state is Presence.PRESENT and self.size is None:
            raise At(("size",), "size is required for an LV that is present")
        if self.size is not None and self.size % 512:
            raise At(("size",), f"size {int(self.size)} bytes is not a whole number of "
                     f"512-byte sectors, which LVM refuses")
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


# lvconvert --splitmirrors names the split copy <lv>_handover until it leaves the VG.
HANDOVER_SUFFIX = "_handover"


class Handover(_Model):
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
        _unique("PV", self.pvs, "pvs")
        return self


class Vg(_Model):
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
        _unique("PV", self.pvs, "pvs")
        _unique("node", self.nodes, "nodes")
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
        if self.state is Presence.PRESENT and not self.pvs:
            raise At(("pvs",), "pvs must list at least one device for a VG that is present")
        _check_move(self)
        for name, lv in self.lv.items():
            for i, p in enumerate(lv.placement):
                if p not in self.pvs:
                    raise At(("lv", name, "placement", i),
                             f"{shown(p)} is not in this VG's pvs")
            for i, group in enumerate(lv.copies):
                for j, p in enumerate(group):
                    if p not in self.pvs:
                        raise At(("lv", name, "copies", i, j),
                                 f"{shown(p)} is not in this VG's pvs")
            if self.handover is not None and len(name) + len(HANDOVER_SUFFIX) > 127:
                raise At(("lv", name), f"the LV name is too long for a handover: its copy is "
                         f"named {name}{HANDOVER_SUFFIX} while it is split off, and LVM "
                         f"allows 127 characters")
            if self.state is Presence.ABSENT and lv.state is Presence.PRESENT:
                raise At(("lv", name, "state"), "the LV is present but its VG is absent")
            _check_activation(self, name, lv)
        return self

    def applies_to(self, node: str) -> bool:
        return "*" in self.nodes or node in self.nodes


def _check_move(vg: Vg) -> None:
    """handover and takeover: local VGs, present, one of the two, names that differ."""
    if vg.scope is Scope.SHARED and vg.grow_pvs:
        raise At(("grow_pvs",), "grow_pvs is for local VGs (not supported under lvmlockd yet)")
    for name, lv in vg.lv.items():
        if vg.scope is Scope.SHARED and lv.copies:
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


class Clone(_Model):
    """An online clone of ``source`` onto ``target`` through a non-persistent md RAID1.

    ``mirrored``: the array ``md`` is built over the source, the target added and kept in
    it (the workload uses ``md`` meanwhile). ``split``: once the target is fully in sync the
    array is stopped; the target is then an exact copy. ``abandoned``: the array is stopped
    whatever its sync (the target's content is then meaningless).

    A target that received a complete copy (a split) is never written again, by this clone or
    any other, unless ``recopy`` is set to a value not used before for that target: each new
    value asks for one new copy from the source (the value used is kept in the ledger).
    """

    nodes: tuple[NodeName, ...] = Field(
        ..., min_length=1, description="hosts that reconcile this clone ('*' = any host)")
    source: DevicePath = Field(..., description="the device being copied (the array's first member)")
    target: DevicePath = Field(..., description="the device receiving the copy; overwritten")
    md: MdPath = Field(..., description="the md device the clone is built as, /dev/mdN")
    state: CloneState = Field(
        CloneState.MIRRORED, description="mirrored (array running with both members), split "
        "(array stopped after a complete sync) or abandoned (array stopped, sync or not)")
    speed_limit_min: SizeField | None = Field(
        None, description="bytes per second md keeps syncing at even under load "
        "(the array's sync_speed_min, KiB/s); unset = left as it is")
    speed_limit_max: SizeField | None = Field(
        None, description="bytes per second md syncs at most (the array's sync_speed_max, "
        "KiB/s); unset = left as it is")
    recopy: str | None = Field(
        None, max_length=128, description="ask once for a new copy onto a target that already "
        "received a complete copy (overwriting it): any value not used before for that "
        "target, e.g. today's date; the value used is recorded, so the same value never "
        "copies twice; unset = a completed copy is never overwritten")

    @model_validator(mode="after")
    def _check(self) -> "Clone":
        _unique("node", self.nodes, "nodes")
        if self.recopy is not None and (not self.recopy.strip() or not self.recopy.isprintable()):
            raise ValueError("recopy must be a non-empty printable value (e.g. a date); leave "
                             "it out to never copy over a completed copy")
        if self.source == self.target:
            raise ValueError("source and target are the same device")
        if self.md in (self.source, self.target):
            raise ValueError(f"{self.md} is the clone's own array; it cannot also be its "
                             f"source or target")
        for key in ("speed_limit_min", "speed_limit_max"):
            value = getattr(self, key)
            if value is not None and value < 1024:
                raise ValueError(f"{key} is below 1K per second, md's unit (KiB/s)")
        if (self.speed_limit_min is not None and self.speed_limit_max is not None
                and self.speed_limit_min > self.speed_limit_max):
            raise ValueError("speed_limit_min is above speed_limit_max")
        return self

    def applies_to(self, node: str) -> bool:
        return "*" in self.nodes or node in self.nodes


class Spec(_Model):
    """One spec file, or the merge of a directory of them."""

    vg: dict[VgName, Vg] = Field(default_factory=dict)
    clone: dict[CloneName, Clone] = Field(default_factory=dict)
    iscsi_target: dict[iscsi.IscsiName, iscsi.Target] = Field(default_factory=dict)
    iscsi_session: dict[iscsi.IscsiName, iscsi.Session] = Field(default_factory=dict)
    drbd: dict[ResourceName, DrbdResource] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> "Spec":
        for name, vg in self.vg.items():
            if vg.handover is not None and vg.handover.vg == name:
                raise At(("vg", name, "handover", "vg"), f"the VG handed over needs a name of "
                         f"its own ({name} stays here, with the copy this host keeps)")
        return self


def _no_null(node: object) -> object:
    """TOML has no null: an optional key is one left out, so drop null branches and defaults."""
    if isinstance(node, list):
        return [_no_null(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _no_null(v) for k, v in node.items() if not (k == "default" and v is None)}
    branches = [b for b in out.get("anyOf", []) if b != {"type": "null"}]
    if "anyOf" in out and len(branches) == 1:
        del out["anyOf"]
        out = {**branches[0], **out}
    elif "anyOf" in out:
        out["anyOf"] = branches
    return out


def json_schema() -> dict:
    schema = _no_null(Spec.model_json_schema())
    assert isinstance(schema, dict)
    schema["title"] = "reconciler spec"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    # What the Vg validator checks about scope, said so that an editor flags it as well.
    schema["$defs"]["Vg"]["if"] = {"properties": {"nodes": {"anyOf": [
        {"minItems": 2}, {"contains": {"const": "*"}}]}}}
    schema["$defs"]["Vg"]["then"] = {"required": ["scope"]}
    return schema
