"""The one harness (support.nodes) does what the tests built on it rely on."""

from __future__ import annotations

import pytest
from support import M
from support.nodes import NodeCrashed, Nodes

from reconciler import controller
from reconciler.simulate import SimulatedHost
from reconciler.simulate.clock import SimClock
from reconciler.simulate.cluster import Cluster
from reconciler.simulate.lockd_tools import LockdCluster

TWO_VGS = """
[vg.va]
nodes = ["a"]
pvs = ["/dev/vdb"]
[vg.va.lv.x]
size = "8M"
[vg.va.lv.y]
size = "8M"
[vg.vb]
nodes = ["b"]
pvs = ["/dev/vdc"]
[vg.vb.lv.x]
size = "8M"
[vg.vb.lv.y]
size = "8M"
"""


def two_hosts(tmp_path) -> Nodes:
    clock = SimClock()
    hosts = {}
    for name in ("a", "b"):
        h = SimulatedHost(clock=clock, seed=name)
        h.add_device("/dev/vdb", 64 * M)
        h.add_device("/dev/vdc", 64 * M)
        hosts[name] = h
    return Nodes.of_hosts(tmp_path, hosts)


def test_a_pass_is_the_real_pass_with_its_commands_and_memory(tmp_path):
    n = two_hosts(tmp_path)
    loaded = n.spec(TWO_VGS)
    p = n.one_pass("a", loaded)
    assert isinstance(p.result, controller.PassResult) and p.exit_code == 0
    assert p.changes[:2] == [("pvcreate", "/dev/vdb"), ("vgcreate", "va", "/dev/vdb")]
    assert n.changes("a") == p.changes and n.changes("b") == []
    assert n.nodes["a"].memory.fresh is False  # the pass used the node's own memory


@pytest.mark.parametrize("order, interleave", [(("a", "b"), False), (("b", "a"), False),
                                                (("a", "b"), True)])
def test_rounds_run_in_the_given_order_or_interleaved(tmp_path, order, interleave):
    n = two_hosts(tmp_path)
    seen: list[str] = []
    n.watchers.append(lambda node, cmd: seen.append(node) if cmd.mutates else None)
    out = n.round(n.spec(TWO_VGS), order, interleave=interleave)
    assert all(p.exit_code == 0 for p in out.values())
    if interleave:  # host-changing commands alternate while both passes have some left
        assert seen[:4] == ["a", "b", "a", "b"], seen
    else:
        assert seen == sorted(seen, key=order.index), seen


def test_converge_gives_up_after_its_max(tmp_path):
    h = SimulatedHost(rate_bytes_per_s=1024)  # a raid1 sync that takes hours
    h.add_device("/dev/vdb", 64 * M)
    h.add_device("/dev/vdc", 64 * M)
    n = Nodes.of_hosts(tmp_path, {"a": h})
    loaded = n.spec("""
        [vg.v]
        nodes = ["a"]
        pvs = ["/dev/vdb", "/dev/vdc"]
        [vg.v.lv.x]
        size = "32M"
        copies = [["/dev/vdb"], ["/dev/vdc"]]
        """)
    with pytest.raises(AssertionError, match="not converged after 3 rounds"):
        n.converge(loaded, max_rounds=3)


def test_crash_after_the_nth_host_changing_command_then_reboot(tmp_path):
    n = two_hosts(tmp_path)
    loaded = n.spec(TWO_VGS)
    n.crash_after("a", 2)
    p = n.one_pass("a", loaded)
    assert p.crashed and n.nodes["a"].down and n.nodes["a"].runner.crashed
    assert n.changes("a") == [("pvcreate", "/dev/vdb"), ("vgcreate", "va", "/dev/vdb")]
    assert n.round(loaded).keys() == {"b"}  # a node that is down runs no pass
    with pytest.raises(AssertionError, match="reboot it first"):
        n.one_pass("a", loaded)
    old_memory = n.nodes["a"].memory
    n.reboot("a")
    assert n.nodes["a"].memory is not old_memory and not n.nodes["a"].down
    assert n.converge(loaded)["a"].exit_code == 0


def test_converge_reboots_a_crashed_node_when_asked_else_raises(tmp_path):
    n = two_hosts(tmp_path)
    loaded = n.spec(TWO_VGS)
    n.crash_after("b", 1)
    with pytest.raises(NodeCrashed):
        n.converge(loaded)
    n.reboot("b")
    n.crash_after("b", 1)
    out = n.converge(loaded, reboot_crashed=True)
    assert all(p.exit_code == 0 for p in out.values())


def test_lockd_nodes_crash_and_come_back(tmp_path):
    c = LockdCluster({"node-a": 1, "node-b": 2})
    c.add_disk("/dev/vda", 1024 * M)
    n = Nodes.of_lockd(tmp_path, c)
    loaded = n.spec("""
        [vg.vgs]
        nodes = ["node-a", "node-b"]
        scope = "shared"
        create_on = "node-a"
        pvs = ["/dev/vda"]
        """)
    n.crash_after("node-a", 1)
    assert n.one_pass("node-a", loaded).crashed and not c.nodes["node-a"].up
    n.reboot("node-a")
    assert c.nodes["node-a"].up
    out = n.converge(loaded)
    assert all(p.exit_code == 0 for p in out.values())
    assert n.changes("node-a") == [("vgcreate", "--shared", "--locktype", "sanlock", "vgs",
                                    "/dev/vda"), ("vgchange", "--lock-start", "vgs")]


def test_one_cluster_joins_hosts_and_lockd_nodes_on_one_clock(tmp_path):
    """The one way hosts are joined (simulate.cluster.Cluster): its hosts and its lvmlockd
    nodes are the harness's nodes, all on the cluster's clock; a name is one node's."""
    cluster = Cluster()
    solo = cluster.add_host("solo")
    solo.add_device("/dev/vdb", 64 * M)
    c = cluster.join_lockd({"node-a": 1, "node-b": 2})
    cluster.add_shared_disk("/dev/vda", 1024 * M)
    assert cluster.names == ["solo", "node-a", "node-b"]
    assert solo.clock is cluster.clock is c.clock
    with pytest.raises(ValueError, match="clock of its own"):
        cluster.add_host("other", SimulatedHost(clock=SimClock()))
    with pytest.raises(ValueError, match="node-a already"):
        cluster.add_host("node-a")
    n = Nodes(tmp_path, cluster)
    assert list(n.nodes) == cluster.names and n.clock is cluster.clock
    loaded = n.spec("""
        [vg.local]
        nodes = ["solo"]
        pvs = ["/dev/vdb"]
        [vg.vgs]
        nodes = ["node-a", "node-b"]
        scope = "shared"
        create_on = "node-a"
        pvs = ["/dev/vda"]
        """)
    out = n.converge(loaded)
    assert all(p.exit_code == 0 for p in out.values())
    assert n.changes("solo") == [("pvcreate", "/dev/vdb"), ("vgcreate", "local", "/dev/vdb")]
    assert "vgs" in c.lvm.vgs and "local" in solo.model.vgs and "local" not in c.lvm.vgs
