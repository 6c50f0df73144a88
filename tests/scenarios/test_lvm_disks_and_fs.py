"""Issue 17, LVM slice: a disk holding a signature is never pvcreate'd (finding 13), missing
PVs are told apart by their uuid, and a grow cut short between the LV and its file system is
finished by a later pass. Each runs the real pass (controller) on the simulated host."""

from reconciler import controller
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
