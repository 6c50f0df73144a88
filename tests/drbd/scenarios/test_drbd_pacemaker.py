"""Pacemaker owns what it owns (issue 20), on the DRBD simulator: the CIB is the one the lab
recorded (tests/fixtures/outputs/pacemaker: a promotable clone of ocf:linbit:drbd for r0);
crm_mon's roles follow the simulated DRBD. A test plays Pacemaker's own moves with drbdadm."""

from __future__ import annotations

import pytest
from support.drbdsim import Pair
from support.pcmk import RECORDED_CIB as CIB
from support.pcmk import with_cib

from reconciler import controller
from reconciler.adapters import pacemaker as pcmk
from reconciler.simulate.pacemaker_tools import cib, primitive

OWNED = "drbd r0 (Pacemaker's: ocf:linbit:drbd primitive drbd-r0 in drbd-r0-clone)"


@pytest.fixture
def pair(tmp_path):
    p = Pair(tmp_path)
    p.converge(p.spec())  # r0 up, node-a primary, before Pacemaker takes it over
    for h in p.hosts.values():
        with_cib(h, CIB, node=None)  # (crm_mon's node: the host's name)
    return p


def blocked(r) -> str:
    return "\n".join(b.reason for b in r.final.blocked)


def test_a_resource_pacemaker_manages_gets_no_drbd_command_and_is_listed_as_its(pair):
    before = {n: len(pair.drbdadm_calls(n)) for n in pair.hosts}
    out = pair.rounds(pair.spec(), 2)
    for n, r in out.items():
        assert r.exit_code == controller.EXIT_IN_SYNC, str(r.final)
        assert OWNED in r.final.unmanaged
        assert len(pair.drbdadm_calls(n)) == before[n]
        assert ("cibadmin", "--query") in [c.argv for c in pair.hosts[n].calls]


def test_pacemaker_moves_it_and_the_reconciler_says_so_without_undoing_it(pair):
    pair.net.write("node-a", 0, "before the move")
    # crm_resource --move, as Pacemaker carries it out: demote node-a, promote node-b
    pair.by_hand("node-a", "drbdadm", "secondary", "r0")
    pair.by_hand("node-b", "drbdadm", "primary", "r0")
    before = {n: len(pair.drbdadm_calls(n)) for n in pair.hosts}
    out = pair.rounds(pair.spec(), 3)  # the spec still says node-a is primary
    for n, r in out.items():
        assert r.exit_code == controller.EXIT_ERROR
        assert "managed by Pacemaker" in blocked(r) and "never changes what Pacemaker manages" in blocked(r)
        assert len(pair.drbdadm_calls(n)) == before[n]  # nothing demoted or promoted back
    assert "the spec says node-a is primary (Promoted), Pacemaker runs it Unpromoted on node-a" in blocked(out["node-a"])
    assert "the spec says node-b is secondary (Unpromoted), Pacemaker runs it Promoted on node-b" in blocked(out["node-b"])
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Secondary", "Primary")
    out = pair.rounds(pair.spec(role_a="secondary", role_b="primary"), 1)  # the spec follows
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values()), [str(r.final) for r in out.values()]


def test_a_spec_that_moves_the_role_moves_nothing(pair):
    before = {n: len(pair.drbdadm_calls(n)) for n in pair.hosts}
    out = pair.rounds(pair.spec(role_a="secondary", role_b="primary"), 3)
    assert all(r.exit_code == controller.EXIT_ERROR for r in out.values())
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Primary", "Secondary")
    assert all(len(pair.drbdadm_calls(n)) == before[n] for n in pair.hosts)


def test_pacemaker_stopped_still_owns_what_its_cib_file_configures(pair):
    for h in pair.hosts.values():
        h.pacemaker.running = False
    pair.net.cut("node-a", "node-b")  # left alone too: no connect, no promotion
    before = {n: len(pair.drbdadm_calls(n)) for n in pair.hosts}
    out = pair.rounds(pair.spec(role_a="secondary", role_b="primary"), 2)
    for n, r in out.items():
        assert OWNED in r.final.unmanaged and len(pair.drbdadm_calls(n)) == before[n]
    assert "Pacemaker is not running (Not connected (code 102)" in blocked(out["node-b"])
    assert f"from {pcmk.CIB_FILE} (cibadmin --query:" in blocked(out["node-b"])


def test_the_resource_file_is_written_but_never_applied_under_pacemaker(pair):
    before = {n: len(pair.drbdadm_calls(n)) for n in pair.hosts}
    out = pair.converge(pair.spec(extra='initial_sync_from = "node-a"\nresync_rate = "8M"'))
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values())
    for n, h in pair.hosts.items():
        assert "resync-rate 8192k;" in h.md.files["/etc/drbd.d/r0.res"]
        assert len(pair.drbdadm_calls(n)) == before[n]  # no drbdadm adjust, nothing else


def test_a_filesystem_primitive_on_the_drbd_device_forbids_its_demotion(tmp_path):
    """No ocf:linbit:drbd primitive here: the reconciler manages r0, but Pacemaker mounts
    /dev/drbd0 (ocf:heartbeat:Filesystem), so demoting it is Pacemaker's to decide."""
    p = Pair(tmp_path)
    p.converge(p.spec())
    text = cib(primitive("fs-r0", "ocf:heartbeat:Filesystem", device="/dev/drbd0",
                         directory="/srv/r0", fstype="ext4"))
    for name, h in p.hosts.items():
        with_cib(h, text, node=name)
    out = p.rounds(p.spec(role_a="secondary", role_b="primary"), 2)
    assert p.res("node-a").role == "Primary"
    assert ("secondary", "r0") not in [c.argv[1:] for c in p.hosts["node-a"].calls
                                       if c.argv[0] == "drbdadm"]
    why = blocked(out["node-a"])
    assert "managed by Pacemaker (ocf:heartbeat:Filesystem primitive fs-r0" in why
    assert "the device it mounts at /srv/r0" in why
    assert ("device /dev/drbd0 (Pacemaker's: ocf:heartbeat:Filesystem primitive fs-r0, "
            "mounted at /srv/r0)") in out["node-a"].final.unmanaged
