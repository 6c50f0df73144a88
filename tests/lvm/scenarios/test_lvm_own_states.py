"""Issue 17, findings 11 and 12: the reconciler finishes or undoes its own intermediate
states (the mirror-then-split tag and extra leg) whatever the spec says next, and a leg
that failed while its device was away is refreshed the same way for every move kind."""

from __future__ import annotations

from support import M
from support.fixtures import mirror_host, mirror_spec

from reconciler import controller


def _ran(host) -> list[str]:
    return [" ".join(c.argv) for c in host.calls if c.mutates]


def test_a_new_leg_whose_disk_failed_and_came_back_is_refreshed_and_the_move_finishes(
        scenario):
    # finding 11: "raid1 sync is stalled at 100.00%" for good; copies refreshes, this did not
    host = mirror_host(rate=1 * M, fill="data")
    data = host.fingerprint("/dev/vg0/data")
    sc = scenario(host)
    spec = sc.spec(mirror_spec())
    assert sc.one_pass(spec).exit_code == controller.EXIT_PENDING
    host.clock.advance(10)
    assert sc.one_pass(spec).exit_code == controller.EXIT_PENDING
    host.fail_device("/dev/vdc")  # the new leg's disk goes away mid-sync...
    host.clock.advance(10)
    sc.one_pass(spec)
    host.restore_device("/dev/vdc")  # ...and comes back
    r = sc.converge(spec)
    assert r.exit_code == 0, r.final.blocked
    assert "lvchange --refresh vg0/data" in _ran(host)
    lv = host.lv("vg0", "data")
    assert lv.kind == "linear" and {pv.name for pv in lv.pvs()} == {"/dev/vdc"}
    assert lv.tags == [] and host.fingerprint("/dev/vg0/data") == data
    sc.assert_settled(spec)


def _mid_sync(scenario, host, placement=("/dev/vdc",), pvs=("/dev/vdb", "/dev/vdc")):
    """A mirror-then-split onto /dev/vdc half done; -> the scenario and the spec with
    ``placement`` and ``pvs`` (the edit made mid-sync)."""
    sc = scenario(host)
    spec = sc.spec(mirror_spec(pvs=pvs))
    assert sc.one_pass(spec).exit_code == controller.EXIT_PENDING
    host.clock.advance(10)
    assert sc.one_pass(spec).exit_code == controller.EXIT_PENDING
    lv = host.lv("vg0", "data")
    assert lv.kind == "raid1" and lv.recovering and lv.tags == ["reconciler_split"]
    return sc, sc.spec(mirror_spec(placement=placement, pvs=pvs))


def test_placement_emptied_mid_split_finishes_the_split_and_a_grow_then_works(scenario):
    # finding 12: it stayed raid1 with the tag at exit 0, and a grow was refused for good
    host = mirror_host(rate=1 * M, fill="data")
    data = host.fingerprint("/dev/vg0/data")
    sc, spec = _mid_sync(scenario, host, placement=None)
    r = sc.converge(spec)
    assert r.exit_code == 0, r.final.blocked
    lv = host.lv("vg0", "data")
    assert lv.kind == "linear" and lv.tags == [] and host.fingerprint("/dev/vg0/data") == data
    grown = sc.spec(mirror_spec("96M", placement=None))
    r = sc.converge(grown)
    assert r.exit_code == 0, r.final.blocked
    assert host.lv("vg0", "data").extents * 4 * M == 96 * M
    sc.assert_settled(grown)


def test_placement_moved_off_both_legs_mid_split_ends_on_the_new_placement(scenario):
    host = mirror_host(rate=1 * M, fill="data")
    host.add_device("/dev/vdd", 512 * M)
    data = host.fingerprint("/dev/vg0/data")
    three = ("/dev/vdb", "/dev/vdc", "/dev/vdd")
    sc, spec = _mid_sync(scenario, host, placement=("/dev/vdd",), pvs=three)
    r = sc.converge(spec)
    assert r.exit_code == 0, r.final.blocked
    lv = host.lv("vg0", "data")
    assert lv.kind == "linear" and lv.tags == [] and {p.name for p in lv.pvs()} == {"/dev/vdd"}
    assert host.fingerprint("/dev/vg0/data") == data
    sc.assert_settled(spec)


def test_pvs_edited_off_both_legs_mid_split_ends_on_the_new_pv_and_drops_the_old(scenario):
    host = mirror_host(rate=1 * M, fill="data")
    host.add_device("/dev/vdd", 512 * M)
    data = host.fingerprint("/dev/vg0/data")
    sc, _ = _mid_sync(scenario, host, pvs=("/dev/vdb", "/dev/vdc", "/dev/vdd"))
    spec = sc.spec(mirror_spec(placement=None, pvs=("/dev/vdd",)))
    r = sc.converge(spec)
    assert r.exit_code == 0, r.final.blocked
    lv = host.lv("vg0", "data")
    assert lv.kind == "linear" and lv.tags == [] and {p.name for p in lv.pvs()} == {"/dev/vdd"}
    assert [p.device.path for p in host.vg("vg0").pvs] == ["/dev/vdd"]
    assert host.fingerprint("/dev/vg0/data") == data
    sc.assert_settled(spec)


def test_a_halted_mirror_then_split_never_advises_removing_the_only_complete_leg(scenario):
    # the original leg's disk fails once the new leg is complete: the new leg is the one
    # good copy, and the halt must not advise removing "the new leg"; it says what to check
    host = mirror_host(rate=1 * M, fill="data")
    sc = scenario(host)
    spec = sc.spec(mirror_spec())
    sc.one_pass(spec)
    host.clock.advance(600)  # the new leg on /dev/vdc is 100% in sync
    host.fail_device("/dev/vdb")
    r = sc.one_pass(spec)
    (halt,) = [b.reason for b in r.final.blocked if b.object == "lv vg0/data"]
    assert "mirror-then-split halted, no leg is dropped" in halt
    assert "remove" not in halt.split("no leg is dropped", 1)[1], halt
    assert "lvs -a -o name,devices,sync_percent,lv_health_status vg0/data" in halt
    assert host.lv("vg0", "data").kind == "raid1"
