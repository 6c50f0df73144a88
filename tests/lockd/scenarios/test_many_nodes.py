"""One shared VG seen by many nodes (issue 22; sanlock's host_id range is 1..2000): a node's
no-op pass costs the same processes and no lock operation whatever the node count, and
moving an LV between two nodes touches those two only (bench/bench_nodes.py times it at
2, 200 and 2,000 nodes)."""

from __future__ import annotations

import pytest
from support import M
from support.nodes import Nodes

from reconciler.simulate.lockd_tools import LockdCluster


def cluster(count: int):
    names = [f"node-{i:04d}" for i in range(1, count + 1)]
    c = LockdCluster({n: i for i, n in enumerate(names, 1)})
    c.add_disk("/dev/vda", 1024 * M)
    c.add_disk("/dev/vdb", 256 * M)
    ops: list[tuple[str, str]] = []  # (operation, node) of every lock taken or dropped
    for meth in ("take", "drop"):
        real = getattr(c.locks, meth)

        def counted(uuid, node, *rest, _real=real, _meth=meth):
            ops.append((_meth, node))
            return _real(uuid, node, *rest)
        setattr(c.locks, meth, counted)
    return c, names, ops


def spec(names: list[str], owner: str) -> dict:
    return {"vg": {"vgs": {"nodes": ["*"], "scope": "shared", "create_on": names[0],
                           "pvs": ["/dev/vda", "/dev/vdb"],
                           "lv": {"data": {"size": "32M",
                                           "activation": {owner: "exclusive",
                                                          "*": "inactive"}}}}}}


def processes(p) -> list[str]:
    return sorted(" ".join(cmd.argv[:2]) if cmd.argv[0] == "lvm" else cmd.argv[0]
                  for cmd in p.commands)


@pytest.mark.parametrize("count", [2, 200])
def test_a_no_op_pass_costs_the_same_whatever_the_node_count(tmp_path, count):
    c, names, ops = cluster(count)
    n = Nodes.of_lockd(tmp_path, c)
    loaded = n.spec(spec(names, names[0]))
    for name in names:  # the creator creates; every other node starts its lockspace
        n.one_pass(name, loaded)
    assert all("vgs" in c.nodes[name].lockspaces for name in names)
    del ops[:]
    for name in names:
        p = n.one_pass(name, loaded)
        assert p.exit_code == 0 and p.changes == [], (name, p.changes)
        assert processes(p) == ["lvm fullreport", "lvmlockctl"], (name, processes(p))
    assert ops == []


@pytest.mark.parametrize("count", [2, 200])
def test_moving_an_lv_between_two_nodes_touches_those_two_only(tmp_path, count):
    c, names, ops = cluster(count)
    n = Nodes.of_lockd(tmp_path, c)
    before = n.spec(spec(names, names[0]))
    for name in names:
        n.one_pass(name, before)
    del ops[:]
    moved = n.spec(spec(names, names[1]))
    changed: dict[str, list] = {}
    for _ in range(2):  # the old owner lets go in the first round, the new one takes it
        for name in names:
            p = n.one_pass(name, moved)
            if p.changes:
                changed.setdefault(name, []).extend(p.changes)
            else:
                assert processes(p) == ["lvm fullreport", "lvmlockctl"], (name, processes(p))
    # In node order: the old owner lets go, then the new one takes it, in the first round.
    assert changed == {names[0]: [("lvchange", "-aln", "vgs/data")],
                       names[1]: [("lvchange", "-aey", "vgs/data")]}
    assert ops == [("drop", names[0]), ("take", names[1])]
    uuid = c.lvm.vgs["vgs"].lvs["data"].uuid
    assert c.locks.holders(uuid) == {names[1]: "ex"}
