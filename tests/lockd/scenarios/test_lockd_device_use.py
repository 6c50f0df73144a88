"""Issue 17: a deactivation takes the LV's device away, so it does not run while a process
holds the device open with a plain open() (which neither a mount nor lv_attr shows here):
refused naming the process; done once it has gone, and the other node then takes the LV."""

from __future__ import annotations

import pytest
from support.lockd_sim import cluster, data, nodes, shared_vg

from reconciler import executing

QEMU = "pid 4242 (qemu-system-x86)"


def mode(c, node: str) -> str:
    return c.locks.holders(c.lvm.vgs["vgs"].lvs["data"].uuid).get(node, "off")


@pytest.fixture
def c():
    return cluster()


@pytest.fixture
def n(tmp_path, c):
    return nodes(tmp_path, c)


def run_pass(n, node: str, doc: dict):
    return n.one_pass(node, n.spec(doc))


def converge(n, doc: dict, rounds: int = 4):
    return n.converge(n.spec(doc), max_rounds=rounds)


def test_a_deactivation_is_refused_while_a_process_holds_the_lv_open(c, n):
    converge(n, shared_vg(data(node_a="exclusive", all="inactive")))
    assert mode(c, "node-a") == "ex"
    c.node("node-a").opened["/dev/vgs/data"] = [QEMU]
    moved = shared_vg(data(node_b="exclusive", all="inactive"))
    a = run_pass(n, "node-a", moved)
    off = a.outcome("lv:vgs/data:deactivate")
    assert off.outcome is executing.Outcome.FAILED and not off.results
    assert f"the LV /dev/vgs/data is open by {QEMU}; stop it first" in off.detail
    assert a.changes == [] and mode(c, "node-a") == "ex"
    del c.node("node-a").opened["/dev/vgs/data"]
    converge(n, moved)
    assert mode(c, "node-a") == "off" and mode(c, "node-b") == "ex"
