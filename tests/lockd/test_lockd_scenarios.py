"""Issue 10 on the lockd simulator: two nodes, each running the real observe -> plan ->
apply on its own slice, coordinated only by the simulated lvmlockd."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lockd_passes import cluster, converge, data, run_pass, spec  # noqa: E402

from reconciler import actions, controller, executing  # noqa: E402

D = executing.Outcome


def mode(c, node: str, lv: str = "data") -> str:
    uuid = c.storage.vgs["vgs"].lvs[lv].uuid
    return c.locks.holders(uuid).get(node, "off")


def exit_code(out) -> int:
    return controller._exit_code(out.final)


def test_the_creator_creates_the_other_node_waits_then_starts_its_lockspace():
    c = cluster()
    sp = spec(data(node_a="exclusive", all="inactive"))
    b0 = run_pass(c, "node-b", sp)
    assert b0.mutating == [] and exit_code(b0) == 2
    assert [actions.describe_in_flight(f) for f in b0.final.in_flight] == [
        "waiting on another node: node-a: create the shared VG vgs"]
    assert b0.final.only_waiting_on_others
    a1 = run_pass(c, "node-a", sp)
    # No pvcreate: without a started shared VG there is no global lock for it (lab:
    # "Global lock failed"); vgcreate --shared labels the devices itself.
    assert [cmd[0] for cmd in a1.mutating] == ["vgcreate", "lvcreate", "lvchange"], a1.mutating
    assert a1.mutating[0] == ("vgcreate", "--shared", "--locktype", "sanlock", "vgs",
                              "/dev/vda", "/dev/vdb")
    assert ("--activate", "n") == a1.mutating[1][2:4]
    assert mode(c, "node-a") == "ex"
    b1 = run_pass(c, "node-b", sp)
    assert b1.mutating == [("vgchange", "--lock-start", "vgs")], b1.mutating
    assert "vgs" in c.nodes["node-b"].lockspaces and mode(c, "node-b") == "off"
    assert exit_code(b1) == 0 and exit_code(run_pass(c, "node-a", sp)) == 0


def test_an_exclusive_lv_moves_from_a_to_b_once_a_lets_go():
    c = cluster()
    converge(c, spec(data(node_a="exclusive", all="inactive")))
    c.mount("node-a", "vgs", "data", "/mnt/data")
    moved = spec(data(node_b="exclusive", all="inactive"))
    b = run_pass(c, "node-b", moved)
    waited = b.outcome("lv:vgs/data:activate")
    assert waited.outcome is D.DEFERRED, waited
    assert waited.detail == "waiting on another node: LV locked by other host: vgs/data"
    assert exit_code(b) == 2 and not b.final.blocked  # pending, not an error
    assert [cmd for cmd in b.mutating] == [("lvchange", "-aey", "vgs/data")]  # tried once
    a = run_pass(c, "node-a", moved)
    assert a.mutating == [] and exit_code(a) == 1
    assert "is open (mounted or in use) on node-a" in a.plan.blocked[0].reason
    c.umount("node-a", "vgs", "data")
    assert run_pass(c, "node-a", moved).mutating == [("lvchange", "-aln", "vgs/data")]
    assert run_pass(c, "node-b", moved).mutating == [("lvchange", "-aey", "vgs/data")]
    assert (mode(c, "node-a"), mode(c, "node-b")) == ("off", "ex")


def test_a_node_that_crashes_holding_the_lock_keeps_it_until_its_lease_expires():
    c = cluster()
    converge(c, spec(data(node_a="exclusive", all="inactive")))
    c.crash("node-a")
    moved = spec(data(node_b="exclusive", all="inactive"))
    for _ in range(3):  # b waits, pass after pass, without an error
        b = run_pass(c, "node-b", moved)
        assert b.outcome("lv:vgs/data:activate").outcome is D.DEFERRED
        assert exit_code(b) == 2
    # The operator makes sure node-a is dead (fenced / powered off); sanlock then lets its
    # host lease expire and its locks go: b takes the LV on its next pass.
    c.expire("node-a")
    assert run_pass(c, "node-b", moved).mutating == [("lvchange", "-aey", "vgs/data")]
    assert mode(c, "node-b") == "ex"
    c.recover("node-a")  # back: no lockspace; it starts it and leaves the LV alone
    a = run_pass(c, "node-a", moved)
    assert a.mutating == [("vgchange", "--lock-start", "vgs")] and mode(c, "node-a") == "off"


def test_resize_runs_on_the_exclusive_holder_only():
    c = cluster()
    converge(c, spec(data(node_b="exclusive", all="inactive")))
    grown = spec(data("48M", node_b="exclusive", all="inactive"))
    a = run_pass(c, "node-a", grown)
    assert a.mutating == [] and exit_code(a) == 0
    b = run_pass(c, "node-b", grown)
    assert b.mutating == [("lvextend", "--size", str(48 << 20) + "b", "vgs/data",
                           "/dev/vda", "/dev/vdb")]
    assert c.storage.vgs["vgs"].lvs["data"].extents == 12


def test_resize_while_shared_is_refused_with_lvmlockds_reason_before_any_command():
    c = cluster()
    converge(c, spec(data(all="shared")))
    assert (mode(c, "node-a"), mode(c, "node-b")) == ("sh", "sh")
    grown = spec(data("48M", all="shared"))
    for node in ("node-a", "node-b"):
        out = run_pass(c, node, grown)
        assert out.mutating == [] and exit_code(out) == 1
        assert "LV is already locked with incompatible mode" in out.plan.blocked[0].reason


def test_a_node_whose_table_is_shorter_than_the_lv_refreshes():
    c = cluster()
    sp = spec(data(all="shared"))
    converge(c, sp)
    # The admin grew it under the shared lock (lvextend --lockopt shupdate on node-a): with
    # sanlock, node-b's table stays as it was (lab: 81920 sectors against 90112).
    c.storage.vgs["vgs"].lvs["data"].extents += 2
    c.nodes["node-a"].dm["vgs-data"].sectors += 2 * 8192
    b = run_pass(c, "node-b", spec(data("40M", all="shared")))
    assert b.mutating == [("lvchange", "--refresh", "vgs/data")]
    assert c.nodes["node-b"].dm["vgs-data"].sectors == 40 * 2048


def test_removal_on_the_creator_after_the_other_node_lets_go():
    c = cluster()
    converge(c, spec(data(node_b="exclusive", all="inactive")))
    gone = spec({"data": {"state": "absent"}})
    a = run_pass(c, "node-a", gone)
    assert a.outcome("lv:vgs/data:remove").outcome is D.DEFERRED  # b still has it
    assert run_pass(c, "node-b", gone).mutating == [("lvchange", "-aln", "vgs/data")]
    assert run_pass(c, "node-a", gone).mutating == [("lvremove", "--yes", "vgs/data")]
    assert "data" not in c.storage.vgs["vgs"].lvs


def test_a_stale_dm_device_is_removed_only_once_nothing_holds_it():
    c = cluster()
    sp = spec(data(node_b="exclusive", all="inactive"))
    converge(c, sp)
    c.mount("node-b", "vgs", "data", "/mnt/data")
    # An admin removed it from node-a skipping the LV lock (the seed's stale device).
    assert c.node("node-a").run(_cmd("lvremove", "--yes", "--lockopt", "skiplv", "vgs/data")).ok
    rest = spec({})
    b = run_pass(c, "node-b", rest)
    assert b.mutating == []
    assert any("stale device on node-b" in x.reason and "mounted on /mnt/data" in x.reason
               for x in b.plan.blocked)
    c.umount("node-b", "vgs", "data")
    assert run_pass(c, "node-b", rest).mutating == [("dmsetup", "remove", "vgs-data")]
    assert "vgs-data" not in c.nodes["node-b"].dm


def test_pvmove_by_the_exclusive_holder_and_refused_while_shared():
    c = cluster()
    converge(c, spec(data(node_b="exclusive", all="inactive")))
    moved = spec({"data": {"size": "32M", "placement": ["/dev/vdb"],
                           "activation": {"node-b": "exclusive", "*": "inactive"}}})
    assert run_pass(c, "node-a", moved).mutating == []
    b = run_pass(c, "node-b", moved)
    assert b.mutating and b.mutating[0][:4] == ("pvmove", "--background", "--name", "vgs/data")
    assert c.storage.vgs["vgs"].lvs["data"].pv == "/dev/vdb"
    back = spec({"data": {"size": "32M", "placement": ["/dev/vda"], "activation": {"*": "shared"}}})
    converge(c, spec({"data": {"size": "32M", "placement": ["/dev/vdb"],
                               "activation": {"*": "shared"}}}))
    out = run_pass(c, "node-a", back)
    assert out.mutating == []
    assert "pvmove in a shared VG requires exclusive lock" in out.plan.blocked[0].reason


def test_a_move_onto_a_pv_the_creator_adds_waits_for_the_creator():
    c = cluster()
    converge(c, spec(data(node_b="exclusive", all="inactive"), pvs=("/dev/vda",)))
    c.mount("node-b", "vgs", "data", "/mnt/data")  # pvmove runs mounted
    onto = spec({"data": {"size": "32M", "placement": ["/dev/vdb"],
                          "activation": {"node-b": "exclusive", "*": "inactive"}}})
    b = run_pass(c, "node-b", onto)
    assert b.mutating == [] and exit_code(b) == 2
    assert any(actions.describe_in_flight(f).startswith(
        "waiting on another node: node-a: vg vgs: vgextend") and f.waiting_on == "node-a"
               for f in b.plan.in_flight), b.plan.in_flight
    a = run_pass(c, "node-a", onto)
    assert a.mutating == [("pvcreate", "/dev/vdb"), ("vgextend", "vgs", "/dev/vdb")]
    b = run_pass(c, "node-b", onto)
    assert b.mutating == [("pvmove", "--background", "--name", "vgs/data", "/dev/vda",
                           "/dev/vdb")]
    assert c.storage.vgs["vgs"].lvs["data"].pv == "/dev/vdb"
    assert exit_code(run_pass(c, "node-b", onto)) == 0


def test_removal_of_an_lv_shared_on_both_nodes():
    c = cluster()
    converge(c, spec(data(all="shared")))
    gone = spec({"data": {"state": "absent"}})
    a = run_pass(c, "node-a", gone)
    assert a.mutating[0] == ("lvchange", "-aln", "vgs/data")
    assert a.outcome("lv:vgs/data:remove").outcome is D.DEFERRED  # node-b still has it
    assert run_pass(c, "node-b", gone).mutating == [("lvchange", "-aln", "vgs/data")]
    assert run_pass(c, "node-a", gone).mutating == [("lvremove", "--yes", "vgs/data")]
    assert exit_code(run_pass(c, "node-b", gone)) == 0


def test_raid_lvs_cannot_be_active_shared():
    c = cluster()
    converge(c, spec(data(node_a="exclusive", all="inactive")))
    c.storage.vgs["vgs"].lvs["data"].kind = "raid1"
    c.nodes["node-a"].dm.pop("vgs-data")
    c.locks.drop_node("node-a")
    out = run_pass(c, "node-b", spec(data(all="shared")))
    assert out.mutating == []
    assert "Shared activation not compatible" in out.plan.blocked[0].reason


def test_lvmlockd_not_running_blocks_with_what_to_enable():
    c = cluster()
    converge(c, spec(data(node_a="exclusive", all="inactive")), nodes=("node-a",))
    c.nodes["node-b"].lvmlockd = False
    out = run_pass(c, "node-b", spec(data(node_a="exclusive", all="inactive")))
    assert out.mutating == [] and exit_code(out) == 1
    reason = out.plan.blocked[0].reason
    assert "lvmlockd is not running on node-b (Cannot connect to lvmlockd.)" in reason
    assert "lvmlockd.service" in reason and "sanlock.service" in reason


def test_a_lock_start_that_exits_0_without_a_lockspace_is_a_failure():
    c = cluster()
    converge(c, spec(data(node_a="exclusive", all="inactive")), nodes=("node-a",))
    c.nodes["node-b"].host_id = 1  # node-a's, and node-a is alive
    out = run_pass(c, "node-b", spec(data(node_a="exclusive", all="inactive")))
    r = out.outcome("vg:vgs:lock-start")
    assert r.outcome is D.FAILED and "exited 0 but the host does not show it" in r.detail
    assert "host_id is used by another live node" in r.detail
    assert "vgs-lvmlock" in c.nodes["node-b"].dm  # as recorded: no proof of a lockspace
    again = run_pass(c, "node-b", spec(data(node_a="exclusive", all="inactive")))
    assert again.mutating == [("vgchange", "--lock-start", "vgs")]  # tried again next pass


def test_a_shared_vg_that_lvm_reports_local_is_refused_with_both_facts():
    c = cluster()
    converge(c, spec(data(node_a="exclusive", all="inactive")), nodes=("node-a",))
    c.storage.vgs["vgs"].lock_type = ""
    out = run_pass(c, "node-a", spec(data(node_a="exclusive", all="inactive")))
    assert out.mutating == []
    reason = out.plan.blocked[0].reason
    assert "declares VG vgs shared" in reason and "reports it local" in reason


def _cmd(*argv: str):
    from reconciler.runner import Command
    return Command(argv=argv, host="local", mutates=True, timeout=10)
