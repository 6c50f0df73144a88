"""The root model of the spec (``Spec``: one file, or the merge of a directory of them) and
its JSON Schema.

Each table is its subsystem's: ``spec.lvm`` (``[vg.NAME]``), ``spec.md`` (``[clone.NAME]``),
``spec.drbd`` (``[drbd.NAME]``), ``spec.iscsi`` (``[iscsi_target.NAME]``,
``[iscsi_session.NAME]``); what they share is in ``spec.base`` and ``spec.names``. The LVM
and md names are re-exported here for the callers that know them as ``models.Vg``...

Only LVM's models are imported with this module: a spec holding a table of md, iSCSI or DRBD
is validated by ``model_with`` those tables, a subclass of ``Spec`` made the first time such
a spec is read, which imports their subsystem's module then (issue 22: start-up). Errors,
key paths and the JSON Schema (``json_schema``: every table's) are those of one root model
declaring every table.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import Field, create_model, model_validator

from reconciler import ondemand
from reconciler.spec.base import At, Model, Presence, SizeField  # noqa: F401
from reconciler.spec.lvm import (MAX_EXTENT_SIZE, MIN_EXTENT_SIZE, Activation,  # noqa: F401
                                 ExtentSizeField, Handover, LockType, Lv, LvName, MoveStrategy,
                                 Scope, Vg, VgName, check_extent_size, check_lv_name,
                                 check_vg_name)
from reconciler.spec.names import DevicePath, NodeName, check_device, check_node  # noqa: F401
from reconciler.state.names import HANDOVER_SUFFIX  # noqa: F401

# The tables of the subsystems besides LVM, in the order the root model lists them. Their
# models are imported only for a spec that holds one of these tables (issue 22: an LVM-only
# ``reconcile --once`` imports none of md, DRBD or iSCSI).
TABLES = ("clone", "iscsi_target", "iscsi_session", "drbd")


class Spec(Model):
    """One spec file, or the merge of a directory of them."""

    vg: dict[VgName, Vg] = Field(default_factory=dict)
    # Typed by ``model_with``'s subclass, which validates them: a spec is always validated
    # by the model of the tables it holds (``Spec.model_validate`` chooses it), so these
    # declarations here only hold a place (and stay empty) for a spec without them.
    clone: dict[str, Any] = Field(default_factory=dict)
    iscsi_target: dict[str, Any] = Field(default_factory=dict)
    iscsi_session: dict[str, Any] = Field(default_factory=dict)
    drbd: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> "Spec":
        """Validated by the model of the tables ``obj`` holds (``model_with``): the same
        errors, the same key paths, whatever else the spec could hold."""
        if cls is Spec:
            held = frozenset(t for t in TABLES if isinstance(obj, dict) and obj.get(t))
            if held:
                return model_with(held).model_validate(obj, **kwargs)
        return super().model_validate(obj, **kwargs)

    @classmethod
    def of_validated(cls, *, vg: dict | None = None, clone: dict | None = None,
                     iscsi_target: dict | None = None, iscsi_session: dict | None = None,
                     drbd: dict | None = None) -> "Spec":
        """A spec made of tables already validated (each file's ``Spec``, merged; a node's
        slice of one), without validating them again: what ``_check`` below checks is
        about one VG at a time, so it holds for any choice of validated VGs. The merge's own
        rules (a name declared twice, a PV claimed twice) are the loader's. Validating again
        cost as much as the first validation (bench/bench_plan.py)."""
        tables = {"clone": clone or {}, "iscsi_target": iscsi_target or {},
                  "iscsi_session": iscsi_session or {}, "drbd": drbd or {}}
        model = model_with(frozenset(t for t, v in tables.items() if v))
        return model.model_construct(vg=vg or {}, **tables)

    @model_validator(mode="after")
    def _check(self) -> "Spec":
        for name, vg in self.vg.items():
            if vg.handover is not None and vg.handover.vg == name:
                raise At(("vg", name, "handover", "vg"), f"the VG handed over needs a name of "
                         f"its own ({name} stays here, with the copy this host keeps)")
        return self


@functools.cache
def model_with(tables: frozenset[str]) -> type[Spec]:
    """The root model that validates ``tables`` (of ``TABLES``) with their subsystems' models,
    imported here; ``Spec`` itself for none. One class per set of tables, made once."""
    if not tables:
        return Spec
    fields: dict[str, Any] = {}
    if "clone" in tables:
        from reconciler.spec import md
        fields["clone"] = (dict[md.CloneName, md.Clone], Field(default_factory=dict))
    if tables & {"iscsi_target", "iscsi_session"}:
        from reconciler.spec import iscsi
        if "iscsi_target" in tables:
            fields["iscsi_target"] = (dict[iscsi.IscsiName, iscsi.Target],
                                      Field(default_factory=dict))
        if "iscsi_session" in tables:
            fields["iscsi_session"] = (dict[iscsi.IscsiName, iscsi.Session],
                                       Field(default_factory=dict))
    if "drbd" in tables:
        from reconciler.spec import drbd
        fields["drbd"] = (dict[drbd.ResourceName, drbd.DrbdResource], Field(default_factory=dict))
    return create_model("Spec", __base__=Spec, __doc__=Spec.__doc__,
                        __module__=__name__, **fields)


# md's and DRBD's names, for the callers that know them as ``models.Clone``: imported the
# first time one is asked for.
__getattr__, __dir__ = ondemand.names("reconciler.spec", globals(), {
    "md": ("MD_MAX_MINOR", "Clone", "CloneName", "CloneState", "MdPath", "check_clone_name",
           "check_md"),
    "drbd": ("DrbdResource", "ResourceName")})


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
    schema = _no_null(model_with(frozenset(TABLES)).model_json_schema())
    assert isinstance(schema, dict)
    schema["title"] = "reconciler spec"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    # What the Vg validator checks about scope, said so that an editor flags it as well.
    schema["$defs"]["Vg"]["if"] = {"properties": {"nodes": {"anyOf": [
        {"minItems": 2}, {"contains": {"const": "*"}}]}}}
    schema["$defs"]["Vg"]["then"] = {"required": ["scope"]}
    return schema
