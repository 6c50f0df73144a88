"""Pacemaker owns what it owns (issue 20) beyond DRBD, on one simulated host (node-1): an
``ocf:heartbeat:LVM-activate`` primitive owns its LV's (or its whole VG's) activation, an
``ocf:heartbeat:Filesystem`` primitive on one of our devices forbids whatever takes that
device away. The CIB is declared with the simulator's builder (``pacemaker_tools.cib``)."""

from __future__ import annotations

import pytest
from support import M
from support.pcmk import blocked, lvchanges, vg0_host
from support.specs import local_vg

from reconciler import controller
from reconciler.adapters import pacemaker as pcmk
from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command
from reconciler.simulate.pacemaker_tools import cib, primitive

NODE = "node-1"
LVM_DATA = primitive("lvm-data", "ocf:heartbeat:LVM-activate", vgname="vg0", lvname="data",
                     vg_access_mode="system_id")
OWNED = "lv vg0/data (Pacemaker's: ocf:heartbeat:LVM-activate primitive lvm-data)"


def host_with(*primitives, active: bool = True, running: bool = True):
    return vg0_host(cib(*primitives), "data", active=active, running=running)


def spec(size: str = "32M", activation: str | None = None, pvs=("/dev/vdb", "/dev/vdc")) -> dict:
    lv: dict = {"size": size}
    if activation:
        lv["activation"] = {NODE: activation}
    return local_vg("vg0", pvs, lv={"data": lv})


def test_the_cib_is_read_once_per_pass_for_a_spec_with_only_a_vg_and_a_grow_still_runs(scenario):
    h = host_with(LVM_DATA)
    sc = scenario(h)
    r = sc.one_pass(sc.spec(spec("64M")))
    assert r.exit_code == controller.EXIT_IN_SYNC, str(r.final)
    assert [c.argv for c in h.calls].count(pcmk.CIB_QUERY_ARGV) == 1  # once, though it changed
    assert [c.argv for c in h.calls].count(pcmk.CRM_MON_ARGV) == 1
    assert any(m[0] == "lvextend" for m in sc.mutations())
    lv = h.lv("vg0", "data")
    assert lv.extents * lv.vg.extent_size == 64 * M
    assert OWNED in r.final.unmanaged and lvchanges(h) == []


def test_no_cib_file_no_pacemaker_process(scenario):
    h = host_with(LVM_DATA)
    del h.md.files[pcmk.CIB_FILE]
    sc = scenario(h)
    sc.one_pass(sc.spec(spec()))
    assert pcmk.CIB_QUERY_ARGV not in [c.argv for c in h.calls]


def test_an_lv_pacemaker_activates_is_never_deactivated_and_the_plan_says_why(scenario):
    h = host_with(LVM_DATA)
    sc = scenario(h)
    for _ in range(2):
        r = sc.one_pass(sc.spec(spec(activation="inactive")))
        assert r.exit_code == controller.EXIT_ERROR
    assert lvchanges(h) == [] and h.lv("vg0", "data").active
    why = blocked(r)
    assert "lv vg0/data: managed by Pacemaker (ocf:heartbeat:LVM-activate primitive lvm-data" in why
    assert "Pacemaker runs it Started on node-1" in why
    assert "the spec wants lvchange -an (inactive on this node)" in why
    assert "never changes what Pacemaker manages" in why and "crm_resource --move" in why
    assert OWNED in r.final.unmanaged


def test_an_lv_pacemaker_has_stopped_is_not_activated_either(scenario):
    h = host_with(LVM_DATA, active=False)
    sc = scenario(h)
    r = sc.one_pass(sc.spec(spec(activation="active")))
    assert r.exit_code == controller.EXIT_ERROR and lvchanges(h) == []
    assert not h.lv("vg0", "data").active
    assert "Pacemaker runs it nowhere" in blocked(r)


def test_a_primitive_without_lvname_owns_every_lv_of_its_vg(scenario):
    h = host_with(primitive("lvm-vg0", "ocf:heartbeat:LVM-activate", vgname="vg0",
                            vg_access_mode="system_id"))
    sc = scenario(h)
    r = sc.one_pass(sc.spec(spec(activation="inactive")))
    assert r.exit_code == controller.EXIT_ERROR and lvchanges(h) == []
    assert "vg vg0 (Pacemaker's: ocf:heartbeat:LVM-activate primitive lvm-vg0)" in r.final.unmanaged
    assert "ocf:heartbeat:LVM-activate primitive lvm-vg0" in blocked(r)


def test_a_pvmove_of_an_lv_pacemaker_activates_still_runs(scenario):
    """pvmove changes where the extents are, not whether or where the LV is active: the
    device stays open and usable through it, so it is not Pacemaker's."""
    h = host_with(LVM_DATA)
    h.fill("/dev/vg0/data", "payload")
    before = h.fingerprint("/dev/vg0/data")
    sc = scenario(h)
    r = sc.converge(sc.spec(spec(pvs=("/dev/vdc",))))
    assert r.exit_code == controller.EXIT_IN_SYNC, str(r.final)
    assert {pv.name for pv in h.lv("vg0", "data").pvs()} == {"/dev/vdc"}
    assert h.fingerprint("/dev/vg0/data") == before and h.lv("vg0", "data").active
    assert lvchanges(h) == []


def test_a_filesystem_on_our_lv_forbids_its_deactivation(scenario):
    h = host_with(primitive("fs-data", "ocf:heartbeat:Filesystem", device="/dev/vg0/data",
                            directory="/srv/data", fstype="ext4"))
    sc = scenario(h)
    r = sc.one_pass(sc.spec(spec(activation="inactive")))
    assert r.exit_code == controller.EXIT_ERROR and lvchanges(h) == []
    why = blocked(r)
    assert "ocf:heartbeat:Filesystem primitive fs-data" in why and "/srv/data" in why
    assert ("device /dev/vg0/data (Pacemaker's: ocf:heartbeat:Filesystem primitive fs-data, "
            "mounted at /srv/data)") in r.final.unmanaged


def test_pacemaker_stopped_its_cib_file_still_owns(scenario):
    h = host_with(LVM_DATA, running=False)
    sc = scenario(h)
    r = sc.one_pass(sc.spec(spec(activation="inactive")))
    assert r.exit_code == controller.EXIT_ERROR and lvchanges(h) == []
    assert f"from {pcmk.CIB_FILE}" in blocked(r) and "Pacemaker is not running" in blocked(r)


def test_the_simulator_refuses_what_it_does_not_model():
    for bad in (primitive("ip", "ocf:heartbeat:IPaddr2", ip="10.0.0.1"),
                primitive("lvm-x", "ocf:heartbeat:LVM-activate", lvname="data")):
        h = host_with(bad)
        with pytest.raises(UnsupportedCommand):
            h.run(Command(argv=pcmk.CRM_MON_ARGV, mutates=False))


def test_an_lv_pacemaker_manages_is_never_removed(scenario):
    """Review finding: an LV an LVM-activate primitive names is Pacemaker's resource; even
    stopped (inactive), removing it would leave the cluster a primitive on nothing."""
    h = host_with(LVM_DATA, active=False)
    sc = scenario(h)
    r = sc.one_pass(sc.spec(local_vg("vg0", ("/dev/vdb", "/dev/vdc"),
                                     lv={"data": {"size": "32M", "state": "absent"}})))
    assert r.exit_code == controller.EXIT_ERROR
    assert not any(m[0] == "lvremove" for m in sc.mutations())
    assert h.lv("vg0", "data") is not None
    assert "lv vg0/data: managed by Pacemaker (ocf:heartbeat:LVM-activate primitive lvm-data" \
        in blocked(r)
