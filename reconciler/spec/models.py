"""The root model of the spec (``Spec``: one file, or the merge of a directory of them) and
its JSON Schema.

Each table is its subsystem's: ``spec.lvm`` (``[vg.NAME]``), ``spec.md`` (``[clone.NAME]``),
``spec.drbd`` (``[drbd.NAME]``), ``spec.iscsi`` (``[iscsi_target.NAME]``,
``[iscsi_session.NAME]``); what they share is in ``spec.base`` and ``spec.names``. The LVM
and md names are re-exported here for the callers that know them as ``models.Vg``...
"""

from __future__ import annotations

from pydantic import Field, model_validator

from reconciler.spec import iscsi
from reconciler.spec.base import At, Model, Presence, SizeField  # noqa: F401
from reconciler.spec.drbd import DrbdResource, ResourceName
from reconciler.spec.lvm import (MAX_EXTENT_SIZE, MIN_EXTENT_SIZE, Activation,  # noqa: F401
                                 ExtentSizeField, Handover, LockType, Lv, LvName, MoveStrategy,
                                 Scope, Vg, VgName, check_extent_size, check_lv_name,
                                 check_vg_name)
from reconciler.spec.md import (MD_MAX_MINOR, Clone, CloneName, CloneState, MdPath,  # noqa: F401
                                check_clone_name, check_md)
from reconciler.spec.names import DevicePath, NodeName, check_device, check_node  # noqa: F401
from reconciler.state.names import HANDOVER_SUFFIX  # noqa: F401


class Spec(Model):
    """One spec file, or the merge of a directory of them."""

    vg: dict[VgName, Vg] = Field(default_factory=dict)
    clone: dict[CloneName, Clone] = Field(default_factory=dict)
    iscsi_target: dict[iscsi.IscsiName, iscsi.Target] = Field(default_factory=dict)
    iscsi_session: dict[iscsi.IscsiName, iscsi.Session] = Field(default_factory=dict)
    drbd: dict[ResourceName, DrbdResource] = Field(default_factory=dict)

    @classmethod
    def of_validated(cls, *, vg: dict | None = None, clone: dict | None = None,
                     iscsi_target: dict | None = None, iscsi_session: dict | None = None,
                     drbd: dict | None = None) -> "Spec":
        """A spec made of tables already validated (each file's ``Spec``, merged; a node's
        slice of one), without validating them again: what ``_check`` below checks is
        about one VG at a time, so it holds for any choice of validated VGs. The merge's own
        rules (a name declared twice, a PV claimed twice) are the loader's. Validating again
        cost as much as the first validation (bench/bench_plan.py)."""
        return cls.model_construct(vg=vg or {}, clone=clone or {},
                                   iscsi_target=iscsi_target or {},
                                   iscsi_session=iscsi_session or {}, drbd=drbd or {})

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
