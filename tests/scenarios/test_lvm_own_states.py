"""Issue 17, findings 11 and 12: the reconciler finishes or undoes its own intermediate
states (the mirror-then-split tag and extra leg) whatever the spec says next, and a leg
that failed while its device was away is refreshed the same way for every move kind."""

from __future__ import annotations

from reconciler import controller
from reconciler.simulate import SimulatedHost

M = 1024**2

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
