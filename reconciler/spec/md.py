"""The md table of the spec: ``[clone.NAME]``, an online block-device clone (md RAID1, seed 002).

Layout::

    [clone.db]
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

from pydantic import AfterValidator, Field, model_validator

from reconciler.spec.base import At, Checks, Model, SizeField, unique
from reconciler.spec.names import DevicePath, NodeName, check_object_name
from reconciler.spec.text import shown

_MD_RE = re.compile(r"^/dev/md(0|[1-9][0-9]{0,6})$")
MD_MAX_MINOR = (1 << 20) - 1  # the kernel's MINORMASK: /dev/mdN has device number 9:N


def check_md(path: str) -> str:
    m = _MD_RE.fullmatch(path)
    if not m or int(m.group(1)) > MD_MAX_MINOR:
        raise ValueError(f"{shown(path)} is not an md device: it must be /dev/mdN with N from "
                         f"0 to {MD_MAX_MINOR} (no leading zeros)")
    return path


def check_clone_name(name: str) -> str:
    return check_object_name("clone", name)


MdPath = Annotated[str, AfterValidator(check_md)]
CloneName = Annotated[str, AfterValidator(check_clone_name)]


class CloneState(enum.StrEnum):
    MIRRORED = "mirrored"
    SPLIT = "split"
    ABANDONED = "abandoned"


class Clone(Model):
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
        checks = Checks()
        with checks:
            unique("node", self.nodes, "nodes")
        with checks:
            if self.recopy is not None and (not self.recopy.strip()
                                            or not self.recopy.isprintable()):
                raise At(("recopy",), "recopy must be a non-empty printable value (e.g. a "
                         "date); leave it out to never copy over a completed copy")
        with checks:
            if self.source == self.target:
                raise At(("target",), "source and target are the same device")
        with checks:
            if self.md in (self.source, self.target):
                raise At(("md",), f"{self.md} is the clone's own array; it cannot also be its "
                         f"source or target")
        for key in ("speed_limit_min", "speed_limit_max"):
            with checks:
                value = getattr(self, key)
                if value is not None and value < 1024:
                    raise At((key,), f"{key} is below 1K per second, md's unit (KiB/s)")
        with checks:
            if (self.speed_limit_min is not None and self.speed_limit_max is not None
                    and self.speed_limit_min > self.speed_limit_max):
                raise At(("speed_limit_min",), "speed_limit_min is above speed_limit_max")
        checks.done()
        return self

    def applies_to(self, node: str) -> bool:
        return "*" in self.nodes or node in self.nodes
