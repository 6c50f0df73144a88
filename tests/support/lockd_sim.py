"""The lockd simulator's two nodes under the one harness (``support.nodes``): each node
runs the real pass (``controller.reconcile_once``), coordinated only by the simulated
lvmlockd. ``shared_vg()`` is the spec as a dict (rendered as TOML by ``support.specs``)."""

from __future__ import annotations

from support import M
from support.nodes import Nodes

from reconciler.simulate.cluster import Cluster
from reconciler.simulate.lockd_tools import LockdCluster


def cluster() -> LockdCluster:
    """node-a (host_id 1) and node-b (host_id 2) sharing /dev/vda and /dev/vdb."""
    c = Cluster()
    c.join_lockd({"node-a": 1, "node-b": 2})
    c.add_shared_disk("/dev/vda", 1024 * M)
    c.add_shared_disk("/dev/vdb", 256 * M)
    return c.lockd


def nodes(tmp_path, c: LockdCluster | None = None) -> Nodes:
    return Nodes.of_lockd(tmp_path, c or cluster())


def shared_vg(lv: dict | None = None, *, create_on: str = "node-a", scope: str = "shared",
              pvs: tuple[str, ...] = ("/dev/vda", "/dev/vdb")) -> dict:
    """The spec as a dict for ``Nodes.spec``/``support.specs``: shared VG ``vgs`` on node-a
    and node-b, with the LVs ``lv`` names (name -> {size, activation, placement, state})."""
    vg: dict = {"nodes": ["node-a", "node-b"], "scope": scope, "pvs": list(pvs)}
    if scope == "shared":
        vg["create_on"] = create_on
    if lv:
        vg["lv"] = lv
    return {"vg": {"vgs": vg}}


def data(size: str = "32M", **activation: str) -> dict:
    return {"data": {"size": size, "activation": {k.replace("_", "-") if k != "all" else "*": v
                                                  for k, v in activation.items()}}}
