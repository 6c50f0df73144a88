"""The one spec builder: TOML a person would write, loaded by the real loader.

A test's spec is TOML text, or built from small dicts (``spec(vg={"vg0": {...}})`` or
``spec({"vg": {...}})``), rendered as TOML (``toml()``), written to a spec file and loaded by
``reconciler.spec.loading.load``: the file/key checks, the merge rules and the problems
(``SpecError``, each naming its file and key) are the product's own, never a test's
shortcut around them.

* ``toml(doc)``: the TOML text of a dict (tables as ``[a.b]`` headers, scalars and lists as
  values, a dict inside a list inline).
* ``write(doc_or_text, directory, name)``: the spec file (text is dedented).
* ``load(doc_or_text, directory=..., name=..., **tables)`` -> ``LoadedSpec``; without a
  directory the file lives in a temporary one for the duration of the load.
* ``spec(...)``: the same, -> ``models.Spec`` (what pure planning tests hand the planner).
* ``refused(directory, **files)``: the problems the loader finds in spec files (name ->
  text or doc) written to ``directory``; the test fails if they load.
* ``local_vg(name, pvs, lv=..., **fields)``: the doc of one local VG on every node, the
  table most LVM tests start from.
* ``shared_vg(name, pvs, lv=..., lock_type=..., **fields)``: the doc of one shared
  (lvmlockd) VG of node-a and node-b that node-a creates (``create_on``).
"""

from __future__ import annotations

import json
import re
import tempfile
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from reconciler import errors
from reconciler.spec import loading, models

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key)


def value(v) -> str:
    """One TOML value: strings quoted, booleans lowercase, lists and inline tables."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"no TOML value for {v!r}")


def toml(doc: Mapping) -> str:
    """``doc`` as TOML text: each dict a ``[dotted.header]`` table, its other keys values."""
    lines: list[str] = []

    def table(path: tuple[str, ...], body: Mapping) -> None:
        scalars = [(k, v) for k, v in body.items() if not isinstance(v, Mapping)]
        tables = [(k, v) for k, v in body.items() if isinstance(v, Mapping)]
        if path and (scalars or not tables):
            lines.append("[" + ".".join(_key(p) for p in path) + "]")
        lines.extend(f"{_key(k)} = {value(v)}" for k, v in scalars)
        for k, v in tables:
            table(path + (k,), v)

    table((), doc)
    return "\n".join(lines) + "\n"


def _doc(doc: Mapping | str | None, tables: dict) -> str:
    if isinstance(doc, str):
        if tables:
            raise TypeError("spec text and tables given together")
        return textwrap.dedent(doc)
    return toml({**(doc or {}), **tables})


def write(doc: Mapping | str | None, directory: Path, name: str = "spec.toml", **tables) -> Path:
    """Write the spec file ``directory/name`` (TOML text, or a dict and/or tables rendered)."""
    path = Path(directory) / name
    path.write_text(_doc(doc, tables))
    return path


def load(doc: Mapping | str | None = None, /, *, directory: Path | None = None,
         name: str = "spec.toml", **tables) -> loading.LoadedSpec:
    """The spec loaded by the real loader (``SpecError`` naming file and key on a problem)."""
    if directory is not None:
        return loading.load(write(doc, directory, name, **tables))
    with tempfile.TemporaryDirectory(prefix="spec-") as tmp:
        return loading.load(write(doc, Path(tmp), name, **tables))


def spec(doc: Mapping | str | None = None, /, **tables) -> models.Spec:
    """The validated ``models.Spec`` of a dict, tables or TOML text (through ``load``)."""
    return load(doc, **tables).spec


def refused(directory: Path, **files: Mapping | str) -> list[tuple[str, str, str]]:
    """Write each spec file (name -> TOML text or doc) to ``directory`` and load it: the
    ``SpecError``'s problems, (file, key, message) each. Fails the test if it loads."""
    for name, doc in files.items():
        write(doc, directory, name)
    with pytest.raises(errors.SpecError) as exc:
        loading.load(directory)
    return exc.value.problems


def local_vg(name: str, pvs, lv: Mapping | None = None, **fields) -> dict:
    """The doc of one VG ``name`` on every node (``nodes = ["*"]``, ``scope = "local"``,
    either overridden by ``fields``) over ``pvs``, with the LV tables ``lv`` (name -> table)."""
    vg: dict = {"nodes": ["*"], "scope": "local", "pvs": list(pvs), **fields}
    if lv:
        vg["lv"] = dict(lv)
    return {"vg": {name: vg}}


def shared_vg(name: str, pvs, lv: Mapping | None = None, *, lock_type: str | None = None,
              create_on: str | None = "node-a", **fields) -> dict:
    """The doc of one shared VG ``name`` (``scope = "shared"``) of node-a and node-b over
    ``pvs``, created by ``create_on``, of lock manager ``lock_type`` (None: not written, the
    default, sanlock), with the LV tables ``lv`` (name -> table); ``fields`` override or add
    (a None value leaves its key out)."""
    vg: dict = {"nodes": ["node-a", "node-b"], "scope": "shared", "pvs": list(pvs),
                "lock_type": lock_type, "create_on": create_on, **fields}
    vg = {k: v for k, v in vg.items() if v is not None}
    if lv:
        vg["lv"] = dict(lv)
    return {"vg": {name: vg}}
