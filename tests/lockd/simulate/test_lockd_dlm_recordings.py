"""The lockd simulator with DLM against the lab's recordings (tests/fixtures/outputs/dlm:
corosync 3.1.7 two-node, dlm-controld 4.2.0, lvm2 2.03.16; tests/lab/record_dlm_fixtures.py).

``test_the_dlm_scenario_replays_as_recorded`` replays the recorder's steps in their order on
a simulated two-node cluster (corosync started by hand, dlm_controld missing on node-b at
first) and every command the simulator models must give the recorded exit code, stdout and
stderr, byte for byte; ``dlm_tool`` (an operator's tool, never run by a pass) is not
modelled and refused. The facts the README states are checked file by file below."""

from __future__ import annotations

import re

import pytest
from support import FIXTURES, M

from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command
from reconciler.simulate.lockd_tools import LockdCluster

DLM = FIXTURES / "outputs" / "dlm" / "commands"
COMPARES = tuple(f"dlm/commands/{p.name}" for p in sorted(DLM.glob("*.txt")))
NOT_MODELLED = {f"dlm/commands/{p.name}" for p in sorted(DLM.glob("dlm_tool_*.txt"))}


def recorded(case: str) -> tuple[int, str, str]:
    text = (DLM / f"{case}.txt").read_text()
    rc = int(re.search(r"^rc: (-?\d+)$", text, re.M).group(1))
    out, err = text.split("--- stdout\n", 1)[1].split("--- stderr\n", 1)
    return rc, out, err


def argv_of(case: str) -> tuple[str, ...]:
    return tuple(re.search(r"^argv: (.*)$", (DLM / f"{case}.txt").read_text(), re.M)
                 .group(1).split())


def test_the_dlm_scenario_replays_as_recorded():
    c = LockdCluster({"node-a": None, "node-b": None})
    c.add_disk("/dev/vda", 256 * M)
    a, b = c.node("node-a"), c.node("node-b")
    compared: list[str] = []

    def check(node, case: str) -> None:
        rc, out, err = recorded(case)
        res = node.run(Command(argv=argv_of(case), mutates=True))
        assert (res.rc, res.stdout, res.stderr) == (rc, out, err), case
        compared.append(f"dlm/commands/{case}.txt")

    for n in c.nodes.values():  # lvmlockd -g dlm starts after corosync in the recorder
        n.lvmlockd = False
    check(a, "quorumtool_no_corosync_a")
    c.start_corosync("node-a")
    check(a, "quorumtool_alone_a")  # Sat Dec  5 11:46:41 2026: the cluster's epoch
    c.start_corosync("node-b")
    c.clock.advance(14)
    check(a, "quorumtool_quorate_a")
    c.start_dlm("node-a")  # not on node-b yet
    for n in c.nodes.values():
        n.lvmlockd = True
    check(a, "vgcreate_shared_dlm_a")
    c.lvm.vgs["vgd"].uuid = "mOhcDw-cjpm-fFcF-1UQb-1ZWS-qVg2-deNgxr"  # the recorded identity
    check(b, "lock_start_no_dlm_controld_b")
    check(b, "lockctl_info_no_dlm_controld_b")
    with pytest.raises(UnsupportedCommand):
        b.run(Command(argv=argv_of("dlm_tool_ls_no_dlm_controld_b")))
    c.start_dlm("node-b")
    check(b, "lock_start_b")
    check(a, "lvcreate_a")
    c.lvm.vgs["vgd"].lvs["lv1"].uuid = "ca7OzK-f8CZ-os3E-zxLB-Cyht-qeXq-3NIn5k"  # unlocked yet
    check(a, "lvchange_aey_a")
    check(b, "lvchange_aey_held_b")
    check(a, "lockctl_info_a")
    check(b, "lockctl_info_b")
    for case in ("dlm_tool_ls_a", "dlm_tool_ls_b", "dlm_tool_status_a"):
        with pytest.raises(UnsupportedCommand, match="not modelled"):
            a.run(Command(argv=argv_of(case)))
    assert set(compared) | NOT_MODELLED == set(COMPARES)


def test_without_quorum_a_dlm_lock_start_fails_loudly():
    """dlm_controld waits for quorum before it joins a lockspace: a lock-start then waits
    (how long, and what lvm prints, no recording shows): the simulator refuses it."""
    c = LockdCluster({"node-a": None, "node-b": None})
    c.add_disk("/dev/vda", 256 * M)
    c.dlm_cluster()
    assert c.node("node-a").run(Command(argv=("vgcreate", "--shared", "--locktype", "dlm",
                                              "vgd", "/dev/vda"))).ok
    for name in c.nodes:  # both power-cycled; node-b comes back alone (wait_for_all)
        c.crash(name)
    c.recover("node-b")
    q = c.node("node-b").run(Command(argv=("corosync-quorumtool", "-s")))
    assert q.rc == 2 and "Quorate:          No" in q.stdout and "Activity blocked" in q.stdout
    with pytest.raises(UnsupportedCommand, match="without corosync quorum"):
        c.node("node-b").run(Command(argv=("vgchange", "--lock-start", "vgd")))


def test_two_node_keeps_the_survivor_quorate_once_both_were_seen():
    """votequorum(5): two_node sets quorum to 1 and turns wait_for_all on: a node alone is
    quorate only after it saw its peer; then it stays quorate when the peer goes."""
    c = LockdCluster({"node-a": None, "node-b": None})
    c.start_corosync("node-a")
    a = c.node("node-a")
    assert a.run(Command(argv=("corosync-quorumtool", "-s"))).rc == 2
    c.start_corosync("node-b")
    c.crash("node-b")
    q = a.run(Command(argv=("corosync-quorumtool", "-s")))
    assert q.rc == 0, q.stdout
    assert "Nodes:            1\n" in q.stdout and "Ring ID:          1.13\n" in q.stdout
    assert "Flags:            2Node Quorate WaitForAll \n" in q.stdout
    assert q.stdout.endswith("    Nodeid      Votes Name\n         1          1 node-a (local)\n")


def test_a_larger_corosync_cluster_is_not_modelled():
    c = LockdCluster({"node-a": None, "node-b": None, "node-c": None})
    c.start_corosync(*c.nodes)
    with pytest.raises(UnsupportedCommand, match="more than two nodes"):
        c.node("node-a").run(Command(argv=("corosync-quorumtool", "-s")))


def test_the_dlm_recordings_say_what_the_readme_says():
    seen = set()

    def rec(case):
        seen.add(f"dlm/commands/{case}.txt")
        return recorded(case)

    rc, out, _ = rec("vgcreate_shared_dlm_a")
    assert rc == 0 and "VG vgd starting dlm lockspace" in out
    rc, out, _ = rec("lock_start_b")
    assert rc == 0 and "VG vgd starting dlm lockspace" in out
    assert rec("lvcreate_a")[0] == 0 and rec("lvchange_aey_a")[0] == 0
    rc, _, err = rec("lvchange_aey_held_b")
    assert rc == 5 and "LV locked by other host: vgd/lv1" in err
    for node in ("a", "b"):  # the DLM's own view: both nodes members of the VG's lockspace
        rc, out, _ = rec(f"dlm_tool_ls_{node}")
        assert rc == 0 and re.search(r"name\s+lvm_vgd\n(?:.*\n)*?members\s+1 2 \n", out), out
        rc, out, _ = rec(f"lockctl_info_{node}")
        assert rc == 0 and "LS dlm lvm_vgd" in out
    assert rec("dlm_tool_ls_no_dlm_controld_b")[0] == 1
    rc, out, _ = rec("lockctl_info_no_dlm_controld_b")
    assert "LS dlm REM:lvm_vgd" in out
    rc, _, err = rec("lock_start_no_dlm_controld_b")
    assert rc == 5 and "Start a lock manager, lvmlockd did not find one running." in err
    assert "lock manager dlm is not running" in err
    rc, out, _ = rec("dlm_tool_status_a")
    assert rc == 0 and "quorate 1" in out and "fence_pid 0" in out
    for case in ("quorumtool_quorate_a", "quorumtool_alone_a", "quorumtool_no_corosync_a"):
        rc, out, err = rec(case)
    assert (rc, err.strip()) == (1, "Cannot initialize CMAP service")
    assert seen == set(COMPARES)


# -- what no recording shows fails loudly ---------------------------------------------------


def _dlm_lv(c: LockdCluster) -> None:
    """vgd with lv1 on both nodes' lockspaces, lv1 ex on node-a."""
    c.add_disk("/dev/vda", 256 * M)
    c.dlm_cluster()
    a, b = c.node("node-a"), c.node("node-b")
    for node, argv in ((a, ("vgcreate", "--shared", "--locktype", "dlm", "vgd", "/dev/vda")),
                       (b, ("vgchange", "--lock-start", "vgd")),
                       (a, ("lvcreate", "--yes", "--activate", "n", "--name", "lv1",
                            "--size", "32m", "vgd")),
                       (a, ("lvchange", "-aey", "vgd/lv1"))):
        assert node.run(Command(argv=argv, mutates=True)).ok, argv


def test_after_a_dlm_peer_crashed_a_lock_on_its_vg_fails_loudly_unless_no_fencing_is_assumed():
    """No recording shows what the DLM does once a member of a lockspace died: with fencing
    it waits for the node to be fenced, without it frees its locks, under a partition
    two_node without fencing grants both sides."""
    c = LockdCluster({"node-a": None, "node-b": None})
    _dlm_lv(c)
    c.crash("node-a")
    b = c.node("node-b")
    for argv in (("lvchange", "-aey", "vgd/lv1"), ("lvchange", "-aln", "vgd/lv1"),
                 ("lvcreate", "--yes", "--activate", "n", "--name", "lv2", "--size", "8m",
                  "vgd")):
        with pytest.raises(UnsupportedCommand, match=r"after node-a crashed.*"
                           r"no_fencing_assumed=True"):
            b.run(Command(argv=argv, mutates=True))
    c.recover("node-a")  # back, node-b's lockspace still the one that lost it
    with pytest.raises(UnsupportedCommand, match="after node-a crashed"):
        c.node("node-a").run(Command(argv=("vgchange", "--lock-start", "vgd"), mutates=True))


def test_the_assumption_of_no_fencing_frees_the_dead_nodes_locks_at_once():
    c = LockdCluster({"node-a": None, "node-b": None})
    _dlm_lv(c)
    c.crash("node-a", no_fencing_assumed=True)
    assert c.node("node-b").run(Command(argv=("lvchange", "-aey", "vgd/lv1"),
                                        mutates=True)).ok


def test_when_no_member_of_the_lockspace_survived_nothing_is_to_recover():
    c = LockdCluster({"node-a": None, "node-b": None})
    _dlm_lv(c)
    c.crash("node-a")
    c.crash("node-b")
    for name in c.nodes:
        c.recover(name)
    c.start_corosync(*c.nodes)  # both seen: quorate
    a = c.node("node-a")
    assert a.run(Command(argv=("vgchange", "--lock-start", "vgd"), mutates=True)).ok
    assert a.run(Command(argv=("lvchange", "-aey", "vgd/lv1"), mutates=True)).ok


def test_a_repeated_dlm_lock_start_and_one_without_corosync_fail_loudly():
    c = LockdCluster({"node-a": None, "node-b": None})
    _dlm_lv(c)
    with pytest.raises(UnsupportedCommand, match="again"):
        c.node("node-b").run(Command(argv=("vgchange", "--lock-start", "vgd"), mutates=True))
    c.stop_corosync("node-b")
    c.nodes["node-b"].lockspaces.discard("vgd")
    with pytest.raises(UnsupportedCommand, match="without corosync running there"):
        c.node("node-b").run(Command(argv=("vgchange", "--lock-start", "vgd"), mutates=True))
