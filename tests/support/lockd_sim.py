"""The lockd simulator's two nodes under the one harness (``support.nodes``): each node
runs the real pass (``controller.reconcile_once``), coordinated only by the simulated
lvmlockd. ``spec()`` writes the TOML a person would."""

from __future__ import annotations

import json

from support import M
from support.nodes import Nodes

from reconciler.simulate.lockd_tools import LockdCluster


def cluster() -> LockdCluster:
    c = LockdCluster({"node-a": 1, "node-b": 2})
    c.add_disk("/dev/vda", 1024 * M)
    c.add_disk("/dev/vdb", 256 * M)
    return c


def nodes(tmp_path, c: LockdCluster | None = None) -> Nodes:
    return Nodes.of_lockd(tmp_path, c or cluster())


def _toml(value) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def spec(lv: dict | None = None, *, create_on: str = "node-a", scope: str = "shared",
         pvs: tuple[str, ...] = ("/dev/vda", "/dev/vdb")) -> str:
    """The spec's TOML: shared VG ``vgs`` on node-a and node-b, with the LVs ``lv`` names
    (name -> {size, activation, placement, state})."""
    lines = ["[vg.vgs]", 'nodes = ["node-a", "node-b"]', f"scope = {_toml(scope)}",
             f"pvs = {_toml(list(pvs))}"]
    if scope == "shared":
        lines.append(f"create_on = {_toml(create_on)}")
    for name, fields in (lv or {}).items():
        lines.append(f"[vg.vgs.lv.{name}]")
        lines += [f"{k} = {_toml(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def data(size: str = "32M", **activation: str) -> dict:
    return {"data": {"size": size, "activation": {k.replace("_", "-") if k != "all" else "*": v
                                                  for k, v in activation.items()}}}
