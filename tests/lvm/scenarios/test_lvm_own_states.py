"""Issue 17, findings 11 and 12: the reconciler finishes or undoes its own intermediate
states (the mirror-then-split tag and extra leg) whatever the spec says next, and a leg
that failed while its device was away is refreshed the same way for every move kind."""

from __future__ import annotations

from support import M

from reconciler import controller
from reconciler.simulate import SimulatedHost


MIRROR = """
[vg.vg0]
nodes = ["*"]
scope = "local"
pvs = ["/dev/vdb", "/dev/vdc"]
[vg.vg0.lv.data]
size = "64M"
{placement}
move = "mirror-then-split"
"""


def _host() -> SimulatedHost:
    host = SimulatedHost(rate_bytes_per_s=1 * M)
    host.add_device("/dev/vdb", 512 * M)
    host.add_device("/dev/vdc", 512 * M)
    host.add_vg("vg0", ["/dev/vdb", "/dev/vdc"])
    host.add_lv("vg0", "data", 64 * M, pvs=["/dev/vdb"])
    host.fill("/dev/vg0/data", "data")
    return host


def _ran(host) -> list[str]:
    return [" ".join(c.argv) for c in host.calls if c.mutates]


def test_a_new_leg_whose_disk_failed_and_came_back_is_refreshed_and_the_move_finishes(
        scenario):
    # finding 11: "raid1 sync is stalled at 100.00%" for good; copies refreshes, this did not
    host = _host()
    data = host.fingerprint("/dev/vg0/data")
    sc = scenario(host)
    spec = sc.spec(MIRROR.format(placement='placement = ["/dev/vdc"]'))
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


def _mid_sync(scenario, host, placement='placement = ["/dev/vdc"]', pvs=None):
    sc = scenario(host)
    text = MIRROR.format(placement=placement)
    if pvs:
        text = text.replace('pvs = ["/dev/vdb", "/dev/vdc"]', pvs)
    spec = sc.spec(MIRROR.format(placement='placement = ["/dev/vdc"]').replace(
        'pvs = ["/dev/vdb", "/dev/vdc"]', pvs or 'pvs = ["/dev/vdb", "/dev/vdc"]'))
    assert sc.one_pass(spec).exit_code == controller.EXIT_PENDING
    host.clock.advance(10)
    assert sc.one_pass(spec).exit_code == controller.EXIT_PENDING
    lv = host.lv("vg0", "data")
    assert lv.kind == "raid1" and lv.recovering and lv.tags == ["reconciler_split"]
    return sc, sc.spec(text)


def test_placement_emptied_mid_split_finishes_the_split_and_a_grow_then_works(scenario):
    # finding 12: it stayed raid1 with the tag at exit 0, and a grow was refused for good
    host = _host()
    data = host.fingerprint("/dev/vg0/data")
    sc, spec = _mid_sync(scenario, host, placement="")
    r = sc.converge(spec)
    assert r.exit_code == 0, r.final.blocked
    lv = host.lv("vg0", "data")
    assert lv.kind == "linear" and lv.tags == [] and host.fingerprint("/dev/vg0/data") == data
    grown = sc.spec(MIRROR.format(placement="").replace('size = "64M"', 'size = "96M"'))
    r = sc.converge(grown)
    assert r.exit_code == 0, r.final.blocked
    assert host.lv("vg0", "data").extents * 4 * M == 96 * M
    sc.assert_settled(grown)


def test_placement_moved_off_both_legs_mid_split_ends_on_the_new_placement(scenario):
    host = _host()
    host.add_device("/dev/vdd", 512 * M)
    data = host.fingerprint("/dev/vg0/data")
    three = 'pvs = ["/dev/vdb", "/dev/vdc", "/dev/vdd"]'
    sc, spec = _mid_sync(scenario, host, placement='placement = ["/dev/vdd"]', pvs=three)
    r = sc.converge(spec)
    assert r.exit_code == 0, r.final.blocked
    lv = host.lv("vg0", "data")
    assert lv.kind == "linear" and lv.tags == [] and {p.name for p in lv.pvs()} == {"/dev/vdd"}
    assert host.fingerprint("/dev/vg0/data") == data
    sc.assert_settled(spec)


def test_pvs_edited_off_both_legs_mid_split_ends_on_the_new_pv_and_drops_the_old(scenario):
    host = _host()
    host.add_device("/dev/vdd", 512 * M)
    data = host.fingerprint("/dev/vg0/data")
    sc, _ = _mid_sync(scenario, host, pvs='pvs = ["/dev/vdb", "/dev/vdc", "/dev/vdd"]')
    spec = sc.spec(MIRROR.format(placement="").replace('pvs = ["/dev/vdb", "/dev/vdc"]',
                                                        'pvs = ["/dev/vdd"]'))
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
    host = _host()
    sc = scenario(host)
    spec = sc.spec(MIRROR.format(placement='placement = ["/dev/vdc"]'))
    sc.one_pass(spec)
    host.clock.advance(600)  # the new leg on /dev/vdc is 100% in sync
    host.fail_device("/dev/vdb")
    r = sc.one_pass(spec)
    (halt,) = [b.reason for b in r.final.blocked if b.object == "lv vg0/data"]
    assert "mirror-then-split halted, no leg is dropped" in halt
    assert "remove" not in halt.split("no leg is dropped", 1)[1], halt
    assert "lvs -a -o name,devices,sync_percent,lv_health_status vg0/data" in halt
    assert host.lv("vg0", "data").kind == "raid1"
