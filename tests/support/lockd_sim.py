"""The lockd simulator's two nodes under the one harness (``support.nodes``): each node
runs the real pass (``controller.reconcile_once``), coordinated only by the simulated
lvmlockd. ``shared_vg()`` is the spec as a dict (rendered as TOML by ``support.specs``)."""

from __future__ import annotations

import pytest
from support import M, specs
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


def dlm_cluster() -> LockdCluster:
    """The same two nodes and disks under corosync (two_node) + dlm_controld, quorate."""
    return cluster().dlm_cluster()


def nodes(tmp_path, c: LockdCluster | None = None) -> Nodes:
    return Nodes.of_lockd(tmp_path, c or cluster())


@pytest.fixture
def c() -> LockdCluster:
    """Fixture: the cluster (import ``c`` and ``n`` into the test module that uses them)."""
    return cluster()


@pytest.fixture
def n(tmp_path, c) -> Nodes:
    """Fixture: the cluster's nodes under the one harness."""
    return nodes(tmp_path, c)


def shared_vg(lv: dict | None = None, *, create_on: str = "node-a", scope: str = "shared",
              pvs: tuple[str, ...] = ("/dev/vda", "/dev/vdb"), lock_type: str | None = None) -> dict:
    """The spec as a dict for ``Nodes.spec``/``support.specs``: ``specs.shared_vg`` ``vgs``
    on node-a and node-b, with the LVs ``lv`` names (name -> {size, activation, placement,
    state}); ``lock_type`` "dlm" or "sanlock" (None: the default, sanlock); another
    ``scope`` has no ``create_on``."""
    return specs.shared_vg("vgs", pvs, lv, lock_type=lock_type, scope=scope,
                           create_on=create_on if scope == "shared" else None)


def data(size: str = "32M", **activation: str) -> dict:
    return {"data": {"size": size, "activation": {k.replace("_", "-") if k != "all" else "*": v
                                                  for k, v in activation.items()}}}


def run_pass(n: Nodes, node: str, doc: dict):
    """``node``'s one pass on the spec ``doc``."""
    return n.one_pass(node, n.spec(doc))


def converge(n: Nodes, doc: dict, nodes=("node-a", "node-b"), rounds: int = 4):
    """Rounds (node-a then node-b, unless ``nodes`` says) until no node is pending."""
    return n.converge(n.spec(doc), order=nodes, max_rounds=rounds)


def mode(c: LockdCluster, node: str, lv: str = "data") -> str:
    """The lock ``node`` holds on LV ``vgs/lv`` in the simulated lvmlockd ("off": none)."""
    uuid = c.lvm.vgs["vgs"].lvs[lv].uuid
    return c.locks.holders(uuid).get(node, "off")


def pvmove_onto_a_pv_the_creator_adds(c: LockdCluster, n: Nodes, lock_type: str | None = None,
                                      mounted: bool = False):
    """LV data, exclusive on node-b and on /dev/vda alone, placed on /dev/vdb by the spec:
    node-b waits (runs nothing), node-a (the creator) runs pvcreate and vgextend, node-b
    (the holder) the pvmove; data is on /dev/vdb after. ``mounted``: node-b has it mounted
    throughout. Returns (the spec, node-b's first pass: the one that waited)."""
    converge(n, shared_vg(data(node_b="exclusive", all="inactive"), pvs=("/dev/vda",),
                          lock_type=lock_type))
    if mounted:
        c.mount("node-b", "vgs", "data", "/mnt/data")
    onto = shared_vg({"data": {"size": "32M", "placement": ["/dev/vdb"],
                               "activation": {"node-b": "exclusive", "*": "inactive"}}},
                     lock_type=lock_type)
    waited = run_pass(n, "node-b", onto)
    assert waited.changes == []  # waits for the creator's vgextend
    a = run_pass(n, "node-a", onto)
    assert a.changes == [("pvcreate", "/dev/vdb"), ("vgextend", "vgs", "/dev/vdb")]
    b = run_pass(n, "node-b", onto)
    assert b.changes == [("pvmove", "--background", "--name", "vgs/data", "/dev/vda",
                          "/dev/vdb")]
    assert [pv.name for pv in c.lvm.vgs["vgs"].lvs["data"].pvs()] == ["/dev/vdb"]
    return onto, waited
