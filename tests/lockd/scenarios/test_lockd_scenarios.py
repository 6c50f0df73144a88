"""Issue 10 on the lockd simulator: two nodes, each running the real pass
(``controller.reconcile_once``, through ``support.nodes``) on its own slice, coordinated
only by the simulated lvmlockd."""

from __future__ import annotations

from support.lockd_sim import (  # noqa: F401 - c, n: fixtures
    c, converge, data, mode, n, pvmove_onto_a_pv_the_creator_adds, run_pass, shared_vg)

from reconciler import actions, executing
from reconciler.simulate.ops import extend_lv

D = executing.Outcome


def exit_code(out) -> int:
    return out.exit_code


def test_the_creator_creates_the_other_node_waits_then_starts_its_lockspace(c, n):
    sp = shared_vg(data(node_a="exclusive", all="inactive"))
    b0 = run_pass(n, "node-b", sp)
    assert b0.changes == [] and exit_code(b0) == 2
    assert [actions.describe_in_flight(f) for f in b0.final.in_flight] == [
        "waiting on another node: node-a: create the shared VG vgs"]
    assert b0.final.only_waiting_on_others
    a1 = run_pass(n, "node-a", sp)
    # No pvcreate: without a started shared VG there is no global lock for it (lab:
    # "Global lock failed"); vgcreate --shared labels the devices itself.
    assert [cmd[0] for cmd in a1.changes] == ["vgcreate", "lvcreate", "lvchange"], a1.changes
    assert a1.changes[0] == ("vgcreate", "--shared", "--locktype", "sanlock", "vgs",
                              "/dev/vda", "/dev/vdb")
    assert ("--activate", "n") == a1.changes[1][2:4]
    assert mode(c, "node-a") == "ex"
    b1 = run_pass(n, "node-b", sp)
    assert b1.changes == [("vgchange", "--lock-start", "vgs")], b1.changes
    assert "vgs" in c.nodes["node-b"].lockspaces and mode(c, "node-b") == "off"
    assert exit_code(b1) == 0 and exit_code(run_pass(n, "node-a", sp)) == 0


def test_an_exclusive_lv_moves_from_a_to_b_once_a_lets_go(c, n):
    converge(n, shared_vg(data(node_a="exclusive", all="inactive")))
    c.mount("node-a", "vgs", "data", "/mnt/data")
    moved = shared_vg(data(node_b="exclusive", all="inactive"))
    b = run_pass(n, "node-b", moved)
    waited = b.outcome("lv:vgs/data:activate")
    assert waited.outcome is D.DEFERRED, waited
    assert waited.detail == "waiting on another node: LV locked by other host: vgs/data"
    assert exit_code(b) == 2 and not b.final.blocked  # pending, not an error
    assert [cmd for cmd in b.changes] == [("lvchange", "-aey", "vgs/data")]  # tried once
    a = run_pass(n, "node-a", moved)
    assert a.changes == [] and exit_code(a) == 1
    assert "is open (mounted or in use) on node-a" in a.plan.blocked[0].reason
    c.umount("node-a", "vgs", "data")
    assert run_pass(n, "node-a", moved).changes == [("lvchange", "-aln", "vgs/data")]
    assert run_pass(n, "node-b", moved).changes == [("lvchange", "-aey", "vgs/data")]
    assert (mode(c, "node-a"), mode(c, "node-b")) == ("off", "ex")


def test_a_node_that_crashes_holding_the_lock_keeps_it_until_its_lease_expires(c, n):
    converge(n, shared_vg(data(node_a="exclusive", all="inactive")))
    n.crash("node-a")
    moved = shared_vg(data(node_b="exclusive", all="inactive"))
    for _ in range(3):  # b waits, pass after pass, without an error
        b = run_pass(n, "node-b", moved)
        assert b.outcome("lv:vgs/data:activate").outcome is D.DEFERRED
        assert exit_code(b) == 2
    # The operator makes sure node-a is dead (fenced / powered off); sanlock then lets its
    # host lease expire and its locks go: b takes the LV on its next pass.
    c.expire("node-a")
    assert run_pass(n, "node-b", moved).changes == [("lvchange", "-aey", "vgs/data")]
    assert mode(c, "node-b") == "ex"
    n.reboot("node-a")  # back: no lockspace; it starts it and leaves the LV alone
    a = run_pass(n, "node-a", moved)
    assert a.changes == [("vgchange", "--lock-start", "vgs")] and mode(c, "node-a") == "off"


def test_resize_runs_on_the_exclusive_holder_only(c, n):
    converge(n, shared_vg(data(node_b="exclusive", all="inactive")))
    grown = shared_vg(data("48M", node_b="exclusive", all="inactive"))
    a = run_pass(n, "node-a", grown)
    assert a.changes == [] and exit_code(a) == 0
    b = run_pass(n, "node-b", grown)
    assert b.changes == [("lvextend", "--size", str(48 << 20) + "b", "vgs/data",
                           "/dev/vda", "/dev/vdb")]
    assert c.lvm.vgs["vgs"].lvs["data"].extents == 12


def test_resize_while_shared_is_refused_with_lvmlockds_reason_before_any_command(c, n):
    converge(n, shared_vg(data(all="shared")))
    assert (mode(c, "node-a"), mode(c, "node-b")) == ("sh", "sh")
    grown = shared_vg(data("48M", all="shared"))
    for node in ("node-a", "node-b"):
        out = run_pass(n, node, grown)
        assert out.changes == [] and exit_code(out) == 1
        assert "LV is already locked with incompatible mode" in out.plan.blocked[0].reason


def test_a_node_whose_table_is_shorter_than_the_lv_refreshes(c, n):
    sp = shared_vg(data(all="shared"))
    converge(n, sp)
    # The admin grew it under the shared lock (lvextend --lockopt shupdate on node-a): with
    # sanlock, node-b's table stays as it was (lab: 81920 sectors against 90112).
    data_lv = c.lvm.vgs["vgs"].lvs["data"]
    extend_lv(data_lv, data_lv.extents + 2, data_lv.vg.pvs)
    c.nodes["node-a"].dm["vgs-data"].sectors += 2 * 8192
    b = run_pass(n, "node-b", shared_vg(data("40M", all="shared")))
    assert b.changes == [("lvchange", "--refresh", "vgs/data")]
    assert c.nodes["node-b"].dm["vgs-data"].sectors == 40 * 2048


def test_removal_on_the_creator_after_the_other_node_lets_go(c, n):
    converge(n, shared_vg(data(node_b="exclusive", all="inactive")))
    gone = shared_vg({"data": {"state": "absent"}})
    a = run_pass(n, "node-a", gone)
    assert a.outcome("lv:vgs/data:remove").outcome is D.DEFERRED  # b still has it
    assert run_pass(n, "node-b", gone).changes == [("lvchange", "-aln", "vgs/data")]
    assert run_pass(n, "node-a", gone).changes == [("lvremove", "--yes", "vgs/data")]
    assert "data" not in c.lvm.vgs["vgs"].lvs


def test_a_stale_dm_device_is_removed_only_once_nothing_holds_it(c, n):
    sp = shared_vg(data(node_b="exclusive", all="inactive"))
    converge(n, sp)
    c.mount("node-b", "vgs", "data", "/mnt/data")
    # An admin removed it from node-a skipping the LV lock (the seed's stale device).
    assert c.node("node-a").run(_cmd("lvremove", "--yes", "--lockopt", "skiplv", "vgs/data")).ok
    rest = shared_vg({})
    b = run_pass(n, "node-b", rest)
    assert b.changes == []
    assert any("stale device on node-b" in x.reason and "mounted on /mnt/data" in x.reason
               for x in b.plan.blocked)
    c.umount("node-b", "vgs", "data")
    assert run_pass(n, "node-b", rest).changes == [("dmsetup", "remove", "vgs-data")]
    assert "vgs-data" not in c.nodes["node-b"].dm


def test_pvmove_by_the_exclusive_holder_and_refused_while_shared(c, n):
    converge(n, shared_vg(data(node_b="exclusive", all="inactive")))
    moved = shared_vg({"data": {"size": "32M", "placement": ["/dev/vdb"],
                           "activation": {"node-b": "exclusive", "*": "inactive"}}})
    assert run_pass(n, "node-a", moved).changes == []
    b = run_pass(n, "node-b", moved)
    assert b.changes and b.changes[0][:4] == ("pvmove", "--background", "--name", "vgs/data")
    assert [pv.name for pv in c.lvm.vgs["vgs"].lvs["data"].pvs()] == ["/dev/vdb"]
    back = shared_vg({"data": {"size": "32M", "placement": ["/dev/vda"], "activation": {"*": "shared"}}})
    converge(n, shared_vg({"data": {"size": "32M", "placement": ["/dev/vdb"],
                               "activation": {"*": "shared"}}}))
    out = run_pass(n, "node-a", back)
    assert out.changes == []
    assert "pvmove in a shared VG requires exclusive lock" in out.plan.blocked[0].reason


def test_a_move_onto_a_pv_the_creator_adds_waits_for_the_creator(c, n):
    onto, b = pvmove_onto_a_pv_the_creator_adds(c, n, mounted=True)  # pvmove runs mounted
    # node-b's first pass ran nothing and said it waits on node-a's vgextend
    assert exit_code(b) == 2
    assert any(actions.describe_in_flight(f).startswith(
        "waiting on another node: node-a: vg vgs: vgextend") and f.waiting_on == "node-a"
               for f in b.plan.in_flight), b.plan.in_flight
    assert exit_code(run_pass(n, "node-b", onto)) == 0


def test_removal_of_an_lv_shared_on_both_nodes(c, n):
    converge(n, shared_vg(data(all="shared")))
    gone = shared_vg({"data": {"state": "absent"}})
    a = run_pass(n, "node-a", gone)
    assert a.changes[0] == ("lvchange", "-aln", "vgs/data")
    assert a.outcome("lv:vgs/data:remove").outcome is D.DEFERRED  # node-b still has it
    assert run_pass(n, "node-b", gone).changes == [("lvchange", "-aln", "vgs/data")]
    assert run_pass(n, "node-a", gone).changes == [("lvremove", "--yes", "vgs/data")]
    assert exit_code(run_pass(n, "node-b", gone)) == 0


def test_raid_lvs_cannot_be_active_shared(c, n):
    converge(n, shared_vg(data(node_a="exclusive", all="inactive")))
    c.lvm.vgs["vgs"].lvs["data"].kind = "raid1"
    c.nodes["node-a"].dm.pop("vgs-data")
    c.locks.drop_node("node-a")
    out = run_pass(n, "node-b", shared_vg(data(all="shared")))
    assert out.changes == []
    assert "Shared activation not compatible" in out.plan.blocked[0].reason


def test_lvmlockd_not_running_blocks_with_what_to_enable(c, n):
    converge(n, shared_vg(data(node_a="exclusive", all="inactive")), nodes=("node-a",))
    c.nodes["node-b"].lvmlockd = False
    out = run_pass(n, "node-b", shared_vg(data(node_a="exclusive", all="inactive")))
    assert out.changes == [] and exit_code(out) == 1
    reason = out.plan.blocked[0].reason
    assert "lvmlockd is not running on node-b (Cannot connect to lvmlockd.)" in reason
    assert "lvmlockd.service" in reason and "sanlock.service" in reason


def test_a_lock_start_that_exits_0_without_a_lockspace_is_a_failure(c, n):
    converge(n, shared_vg(data(node_a="exclusive", all="inactive")), nodes=("node-a",))
    c.nodes["node-b"].host_id = 1  # node-a's, and node-a is alive
    out = run_pass(n, "node-b", shared_vg(data(node_a="exclusive", all="inactive")))
    r = out.outcome("vg:vgs:lock-start")
    assert r.outcome is D.FAILED and "exited 0 but the host does not show it" in r.detail
    assert "host_id is used by another live node" in r.detail
    assert "vgs-lvmlock" in c.nodes["node-b"].dm  # as recorded: no proof of a lockspace
    again = run_pass(n, "node-b", shared_vg(data(node_a="exclusive", all="inactive")))
    assert again.changes == [("vgchange", "--lock-start", "vgs")]  # tried again next pass


def test_a_shared_vg_that_lvm_reports_local_is_refused_with_both_facts(c, n):
    converge(n, shared_vg(data(node_a="exclusive", all="inactive")), nodes=("node-a",))
    c.lvm.vgs["vgs"].lock_type = ""
    out = run_pass(n, "node-a", shared_vg(data(node_a="exclusive", all="inactive")))
    assert out.changes == []
    reason = out.plan.blocked[0].reason
    assert "declares VG vgs shared" in reason and "reports it local" in reason


def _cmd(*argv: str):
    from reconciler.runner import Command
    return Command(argv=argv, host="local", mutates=True, timeout=10)
