"""Issue 17, LVM slice: a disk holding a signature is never pvcreate'd (finding 13), missing
PVs are told apart by their uuid, and a grow cut short between the LV and its file system is
finished by a later pass. Each runs the real pass (controller) on the simulated host."""

from reconciler import controller, observing, state
from reconciler.simulate import SimulatedHost

M = 1024**2
G = 1024**3

SIGNED_SPEC = """
    [vg.data]
    nodes = ["*"]
    scope = "local"
    pvs = ["/dev/vdb", "/dev/vdc"]
    [vg.data.lv.db]
    size = "100M"
    """


def test_a_disk_holding_a_signature_is_never_pvcreated_and_blocks_with_a_stable_reason(scenario):
    host = SimulatedHost()
    host.add_device("/dev/vdb", 1 * G)
    host.add_device("/dev/vdc", 1 * G)
    host.model.device("/dev/vdc").signature = "ext4"
    sc = scenario(host)
    spec = sc.spec(SIGNED_SPEC)
    reasons = []
    for _ in range(4):
        r = sc.one_pass(spec)
        assert r.exit_code == controller.EXIT_ERROR and r.error is None, r.final
        assert not r.report or not r.report.results  # nothing ran, nothing failed
        (b,) = [b for b in r.final.blocked if b.object == "vg data"]
        reasons.append(b.reason)
        host.clock.advance(30)
    assert len(set(reasons)) == 1
    why = reasons[0]
    assert "/dev/vdc" in why and "ext4" in why
    assert "wipefs --no-act" in why  # how it was seen; no advice to wipe or discard
    advice = why.replace("wipefs --no-act", "").lower()
    assert "wipe" not in advice and "discard" not in advice and "remove" not in advice
    assert not any(c.argv[0] in ("pvcreate", "vgcreate") for c in host.calls)
    assert host.model.device("/dev/vdc").signature == "ext4"
    assert host.model.pv("/dev/vdb") is None  # the VG's plan is held back whole


def test_two_missing_pvs_of_one_vg_are_told_apart_by_their_uuids(scenario):
    host = SimulatedHost()
    for d in ("/dev/vdb", "/dev/vdc", "/dev/vdd"):
        host.add_device(d, 1 * G)
    host.add_vg("data", ["/dev/vdb", "/dev/vdc", "/dev/vdd"])
    host.add_lv("data", "a", 40 * M, ["/dev/vdc"])
    host.add_lv("data", "b", 80 * M, ["/dev/vdd"])
    host.add_lv("data", "ab", 16 * M, layout=[("/dev/vdc", 2), ("/dev/vdd", 2)])
    uc, ud = host.pv("/dev/vdc").uuid, host.pv("/dev/vdd").uuid
    host.fail_device("/dev/vdc")
    host.fail_device("/dev/vdd")
    sc = scenario(host)
    spec = sc.spec("""
        [vg.data]
        nodes = ["*"]
        scope = "local"
        pvs = ["/dev/vdb", "/dev/vdc", "/dev/vdd"]
        [vg.data.lv.a]
        size = "40M"
        [vg.data.lv.b]
        size = "80M"
        [vg.data.lv.ab]
        size = "16M"
        """)
    r = sc.one_pass(spec)
    st = observing.observe(host, host="local", devices=["/dev/vdb", "/dev/vdc", "/dev/vdd"],
                           resolve=host.resolve_device)
    kc, kd = state.missing_pv_key(uc), state.missing_pv_key(ud)
    assert st.pvs[kc].uuid == uc and st.pvs[kd].uuid == ud and kc != kd
    g = st.vgs["data"]
    assert g.missing_pv_count == 2 and {kc, kd} <= set(g.pvs)
    assert g.lvs["a"].pv_extents == {kc: 10} and g.lvs["b"].pv_extents == {kd: 20}
    assert g.lvs["ab"].pv_extents == {kc: 2, kd: 2}
    assert r.exit_code == controller.EXIT_ERROR and r.plan.steps == ()
    why = " ".join(b.reason for b in r.plan.blocked if b.object == "vg data")
    assert uc in why and ud in why  # each missing PV named by its uuid
    assert not any(c.mutates for c in host.calls)
