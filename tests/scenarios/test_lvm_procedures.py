"""One test per field procedure, run against the simulated host until converged."""

from support import M, G, ROOT
from support.fixtures import disks_host, mirror_host, mirror_spec
from support.seed000 import SEED000_SPEC, seed000_host
from support.specs import local_vg

from reconciler import controller
from reconciler.runner import Command
from reconciler.simulate import demo

VDBCD = ("/dev/vdb", "/dev/vdc", "/dev/vdd")


def data_vg(size: str) -> dict:
    """VG vg0 on /dev/vdb with one LV, data, of ``size``."""
    return local_vg("vg0", ["/dev/vdb"], lv={"data": {"size": size}})


def test_seed000_evacuate_lun30_then_vgreduce(scenario):
    sc = scenario(seed000_host())
    spec = sc.spec(SEED000_SPEC)
    first = sc.one_pass(spec, dry_run=True)
    assert first.exit_code == controller.EXIT_PENDING
    assert [s.action.verb for s in first.plan.steps] == ["pvmove", "vgreduce"]
    assert sc.mutations() == []  # a dry run changes nothing
    final = sc.converge(spec)
    assert final.exit_code == 0
    assert sc.mutations() == [
        ("pvmove", "--background", "--name", "vgglobal/lvrepnb", "/dev/sdc", "/dev/sdb"),
        ("vgreduce", "vgglobal", "/dev/sdc"),
    ]
    assert {pv.name for pv in sc.host.lv("vgglobal", "lvrepnb").pvs()} == {"/dev/sdb"}
    sc.assert_settled(spec)


def test_demo_host_converges_with_the_shipped_spec(scenario):
    from reconciler.spec import loading
    from pathlib import Path
    sc = scenario(demo.default_host())
    spec = loading.load(ROOT / "specs" / "demo")
    final = sc.converge(spec, max_passes=2000)
    assert final.exit_code == 0
    assert "vg vgarc" in final.final.unmanaged
    sc.assert_settled(spec)


def test_create_from_scratch(scenario):
    host = disks_host(G, "/dev/vdb", "/dev/vdc")
    sc = scenario(host)
    spec = sc.spec(local_vg("data", ["/dev/vdb", "/dev/vdc"], lv={
        "db": {"size": "300M", "placement": ["/dev/vdc"]}, "logs": {"size": "100M"}}))
    assert sc.converge(spec).exit_code == 0
    assert sc.mutations()[:3] == [("pvcreate", "/dev/vdb"), ("pvcreate", "/dev/vdc"),
                                  ("vgcreate", "data", "/dev/vdb", "/dev/vdc")]
    assert {pv.name for pv in host.lv("data", "db").pvs()} == {"/dev/vdc"}
    sc.assert_settled(spec)


def test_placement_change_with_pvmove(scenario):
    host = disks_host(512 * M, *VDBCD, vg="vg0")
    host.add_lv("vg0", "data", 100 * M, pvs=["/dev/vdb"])
    sc = scenario(host)
    spec = sc.spec(local_vg("vg0", VDBCD, lv={"data": {"size": "100M", "placement": ["/dev/vdd"]}}))
    assert sc.converge(spec).exit_code == 0
    assert {pv.name for pv in host.lv("vg0", "data").pvs()} == {"/dev/vdd"}
    assert sc.mutations() == [("pvmove", "--background", "--name", "vg0/data", "/dev/vdb", "/dev/vdd")]
    sc.assert_settled(spec)


def test_mirror_then_split_drops_the_source_leg_only_after_sync(scenario):
    host = mirror_host(rate=1 * M)
    sc = scenario(host)
    spec = sc.spec(mirror_spec())
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_PENDING
    assert sc.mutations() == [("lvchange", "--addtag", "reconciler_split", "vg0/data"),
                              ("lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vg0/data", "/dev/vdc")]
    assert r.final.in_flight and r.final.in_flight[0].what == "raid1 sync"
    # While syncing, passes only wait.
    for _ in range(5):
        sc.host.clock.advance(5)
        r = sc.one_pass(spec)
        assert r.exit_code == controller.EXIT_PENDING
        assert len(sc.mutations()) == 2
    assert sc.converge(spec).exit_code == 0
    assert sc.mutations()[-2:] == [("lvconvert", "--yes", "--mirrors", "0", "vg0/data", "/dev/vdb"),
                                   ("lvchange", "--deltag", "reconciler_split", "vg0/data")]
    assert host.lv("vg0", "data").tags == []
    assert {pv.name for pv in host.lv("vg0", "data").pvs()} == {"/dev/vdc"}
    sc.assert_settled(spec)


def test_grow(scenario):
    host = disks_host(G, "/dev/vdb", vg="vg0")
    host.add_lv("vg0", "data", 100 * M)
    sc = scenario(host)
    spec = sc.spec(data_vg("201M"))
    assert sc.converge(spec).exit_code == 0
    assert host.lv("vg0", "data").extents * 4 * M == 204 * M  # rounded up to whole extents
    sc.assert_settled(spec)


def test_refuse_to_shrink(scenario):
    host = disks_host(G, "/dev/vdb", vg="vg0")
    host.add_lv("vg0", "data", 200 * M)
    sc = scenario(host)
    spec = sc.spec(data_vg("100M"))
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_ERROR
    assert "shrinking is refused" in r.plan.blocked[0].reason
    assert sc.mutations() == []
    assert host.lv("vg0", "data").extents == 50


def test_crash_during_pvmove_then_resume_without_reissuing(scenario):
    host = seed000_host()
    host.rate_bytes_per_s = 1 * M
    sc = scenario(host)
    spec = sc.spec(SEED000_SPEC)
    host.crash_after(1)  # the pvmove is the one mutating command that gets through
    try:
        sc.one_pass(spec)
    except BaseException as exc:  # SimulatedCrash: the host went down mid-pass
        assert type(exc).__name__ == "SimulatedCrash"
    else:
        raise AssertionError("the simulated host did not crash")
    host.recover()
    host.clock.advance(30)
    stuck = host.lv("vgglobal", "lvrepnb")
    # A new reconciler process: it must adopt the move, not issue it again.
    r = sc.one_pass(spec, fresh_memory=True)
    assert r.exit_code == controller.EXIT_PENDING
    assert sc.mutations().count(("pvmove", "--background", "--name", "vgglobal/lvrepnb", "/dev/sdc", "/dev/sdb")) == 1
    assert ("pvmove", "--background") in sc.mutations()
    assert sc.converge(spec).exit_code == 0
    assert sc.mutations()[-1] == ("vgreduce", "vgglobal", "/dev/sdc")
    assert stuck is host.lv("vgglobal", "lvrepnb")
    sc.assert_settled(spec)


def test_transient_lock_failure_is_retried(scenario):
    host = disks_host(G, "/dev/vdb", vg="vg0")
    host.fail_next(("lvcreate",), 5, "  VG vg0 lock failed: lock start in progress\n")
    sc = scenario(host)
    spec = sc.spec(data_vg("8M"))
    assert sc.one_pass(spec).exit_code == 0
    assert [c[0] for c in sc.mutations()] == ["lvcreate", "lvcreate"]


def test_pvcreate_never_wipes_a_file_system_and_dependents_are_skipped(scenario):
    host = disks_host(G, "/dev/vdb")
    sc = scenario(host)
    host.model.device("/dev/vdb").signature = "ext4"  # somebody's file system
    spec = sc.spec(data_vg("8M"))
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_ERROR
    # wipefs --no-act saw it: the VG is planned blocked, so nothing runs at all (issue 17,
    # finding 13: it was a failing pvcreate on every pass)
    assert r.plan.steps == () and (r.report is None or not r.report.results)
    (b,) = r.plan.blocked
    assert b.object == "vg vg0" and "holds ext4" in b.reason
    assert sc.mutations() == []
    assert host.model.device("/dev/vdb").signature == "ext4"  # nothing was wiped
    # behind the plan, pvcreate itself still refuses without --yes (a signature written
    # between the probe and the step)
    res = host.run(Command(argv=("pvcreate", "/dev/vdb")))
    assert res.rc == 5 and "Aborted wiping of ext4" in res.stderr
    assert host.model.device("/dev/vdb").signature == "ext4"


def test_commands_already_run_are_reported_when_re_observation_fails(scenario):
    host = disks_host(G, "/dev/vdb", vg="vg0")
    seen = {"reports": 0}

    def second_report(cmd):
        if cmd.argv[:2] == ("lvm", "fullreport"):
            seen["reports"] += 1
            return seen["reports"] == 2
        return False

    host.fail_next(second_report, 5, "  Reading VG vg0 failed.\n")
    sc = scenario(host)
    spec = sc.spec(data_vg("8M"))
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_ERROR
    applied = r.as_dict()["applied"]
    assert applied[0]["commands"][0]["argv"][:3] == ["lvcreate", "--yes", "--name"]
    assert "re-observation failed" in applied[0]["detail"]
    assert sc.one_pass(spec).exit_code == 0  # the next pass sees the LV: nothing to redo


def test_users_own_raid1_is_never_reduced(scenario):
    host = disks_host(512 * M, *VDBCD, vg="vg0")
    host.add_lv("vg0", "db", 64 * M, pvs=["/dev/vdb"])
    host.run(Command(argv=("lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vg0/db",
                           "/dev/vdc")))
    host.clock.advance(3600)  # fully in sync
    sc = scenario(host)
    spec = sc.spec(local_vg("vg0", VDBCD, lv={"db": {
        "size": "64M", "placement": ["/dev/vdb", "/dev/vdd"], "move": "mirror-then-split"}}))
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_ERROR
    assert "lower its redundancy" in r.plan.blocked[0].reason
    assert sc.mutations()[1:] == [] and len(host.lv("vg0", "db").images) == 2  # [0]: the setup


def test_waiting_passes_slow_down_but_wake_up_when_the_move_should_end(scenario):
    host = seed000_host()
    host.rate_bytes_per_s = 1 * M  # lvrepnb's 128 MiB take 128 s of virtual time
    sc = scenario(host)
    spec = sc.spec(SEED000_SPEC)
    delays = []
    while ("vgreduce", "vgglobal", "/dev/sdc") not in sc.mutations():
        r = sc.one_pass(spec)
        if r.requeue_after is None:
            break
        delays.append(r.requeue_after)
        host.clock.advance(r.requeue_after)
    assert max(delays) > 15  # it did back off while only waiting
    assert host.clock.now() <= 128 + 6  # and came back within seconds of the end, not 30 s
