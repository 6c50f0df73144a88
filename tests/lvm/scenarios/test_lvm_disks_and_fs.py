"""Issue 17, LVM slice: a disk holding a signature is never pvcreate'd (finding 13), missing
PVs are told apart by their uuid, and a grow cut short between the LV and its file system is
finished by a later pass. Each runs the real pass (controller) on the simulated host."""

import pytest
from support import M, G
from support.fixtures import disks_host
from support.specs import local_vg

from reconciler import controller, observing, state
from reconciler.simulate import SimulatedCrash


SIGNED_SPEC = local_vg("data", ["/dev/vdb", "/dev/vdc"], lv={"db": {"size": "100M"}})


def test_a_disk_holding_a_signature_is_never_pvcreated_and_blocks_with_a_stable_reason(scenario):
    host = disks_host(G, "/dev/vdb", "/dev/vdc")
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
    host = disks_host(G, "/dev/vdb", "/dev/vdc", "/dev/vdd", vg="data")
    host.add_lv("data", "a", 40 * M, ["/dev/vdc"])
    host.add_lv("data", "b", 80 * M, ["/dev/vdd"])
    host.add_lv("data", "ab", 16 * M, layout=[("/dev/vdc", 2), ("/dev/vdd", 2)])
    uc, ud = host.pv("/dev/vdc").uuid, host.pv("/dev/vdd").uuid
    host.fail_device("/dev/vdc")
    host.fail_device("/dev/vdd")
    sc = scenario(host)
    spec = sc.spec(local_vg("data", ["/dev/vdb", "/dev/vdc", "/dev/vdd"], lv={
        "a": {"size": "40M"}, "b": {"size": "80M"}, "ab": {"size": "16M"}}))
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


def grow_spec(size: str, **lvs: str) -> dict:
    """VG vg0 on /dev/vdb: root of ``size`` and the LVs ``lvs`` (name="size"), each with
    resize_fs."""
    sizes = {"root": size, **lvs}
    return local_vg("vg0", ["/dev/vdb"], lv={n: {"size": s, "resize_fs": True}
                                             for n, s in sizes.items()})


def _fs_host():
    """vg0/root: 48M, ext4 made on it and mounted, a file system's worth of data written."""
    host = disks_host(G, "/dev/vdb", vg="vg0")
    host.add_lv("vg0", "root", 48 * M)
    host.mkfs("/dev/vg0/root", "ext4")
    host.mount("/dev/vg0/root", "/srv")
    for chunk in range(48):
        host.write("/dev/vg0/root", chunk, f"root:{chunk}".encode())
    return host, host.fingerprint("/dev/vg0/root", 48 * M)


def _fs_size(sc):
    st = observing.observe(sc.host, host="local", devices=(), resolve=sc.host.resolve_device,
                           lvm_targets=observing.LvmTargets(filesystems=(("vg0", "root"),)))
    return st.filesystems["vg0/root"].size


def test_a_grow_whose_fsadm_failed_is_finished_by_the_next_pass(scenario):
    host, before = _fs_host()
    sc = scenario(host)
    spec = sc.spec(grow_spec("64M"))
    host.fail_fsadm("resize2fs: Permission denied to resize filesystem")
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_ERROR  # the step failed: fsadm's error is shown
    assert "fsadm failed" in r.report.results[0].detail
    lv = host.lv("vg0", "root")
    assert lv.extents * 4 * M == 64 * M and lv.fs_size == 48 * M  # the LV grew, the fs not
    assert _fs_size(sc) == 48 * M
    host.clock.advance(30)
    r = sc.one_pass(spec)
    (step,) = r.plan.steps
    assert "a grow stopped between the LV and its file system" in step.reason
    assert r.exit_code == 0 and lv.fs_size == 64 * M and _fs_size(sc) == 64 * M
    grows = [c for c in sc.mutations() if c[0] == "lvextend"]
    assert grows == [("lvextend", "--resizefs", "--size", f"{64 * M}b", "vg0/root", "/dev/vdb"),
                     ("lvextend", "--resizefs", "--size", f"{64 * M}b", "vg0/root")]
    assert host.fingerprint("/dev/vg0/root", 48 * M) == before
    sc.assert_settled(spec)


def test_a_transient_fsadm_failure_is_retried_within_the_pass(scenario):
    # The executor observes again before its retry: the LV at its size no longer counts as
    # done while the file system is smaller (before, the retry ended "done" and the file
    # system stayed at 48M for good).
    host, before = _fs_host()
    sc = scenario(host)
    spec = sc.spec(grow_spec("64M"))
    host.fail_fsadm("resize2fs: Device or resource busy while trying to open /dev/mapper/vg0-root")
    r = sc.one_pass(spec)
    assert r.exit_code == 0 and host.lv("vg0", "root").fs_size == 64 * M
    assert [c[0] for c in sc.mutations()] == ["lvextend", "lvextend"]
    assert host.fingerprint("/dev/vg0/root", 48 * M) == before
    sc.assert_settled(spec)


def test_a_crash_right_after_lvextend_leaves_a_grow_the_next_passes_finish(scenario):
    host, before = _fs_host()
    sc = scenario(host)
    spec = sc.spec(grow_spec("64M"))
    host.crash_in_fsadm()
    with pytest.raises(SimulatedCrash):
        sc.one_pass(spec)
    host.recover()  # the reboot: the VG autoactivated, fstab mounts root again
    host.mount("/dev/vg0/root", "/srv")
    lv = host.lv("vg0", "root")
    assert lv.extents * 4 * M == 64 * M and lv.fs_size == 48 * M
    r = sc.one_pass(spec)
    (step,) = r.plan.steps
    assert "a grow stopped between the LV and its file system" in step.reason
    assert sc.converge(spec).exit_code == 0
    assert lv.fs_size == 64 * M and _fs_size(sc) == 64 * M
    assert host.fingerprint("/dev/vg0/root", 48 * M) == before
    sc.assert_settled(spec)


def test_xfs_is_sized_and_an_lv_without_a_file_system_has_nothing_to_finish(scenario):
    host = disks_host(G, "/dev/vdb", vg="vg0")
    host.add_lv("vg0", "root", 48 * M)
    host.mkfs("/dev/vg0/root", "xfs")
    host.add_lv("vg0", "raw", 48 * M)  # no file system: nothing to grow, nothing to report
    sc = scenario(host)
    spec = sc.spec(grow_spec("48M", raw="48M"))
    r = sc.one_pass(spec)
    assert r.plan.steps == () and r.plan.blocked == () and sc.mutations() == []
    assert r.exit_code == 0


def test_an_unreadable_superblock_is_reported_not_guessed(scenario):
    host = disks_host(G, "/dev/vdb", vg="vg0")
    host.add_lv("vg0", "root", 48 * M)
    host.mkfs("/dev/vg0/root", "ext4")
    sc = scenario(host)
    spec = sc.spec(grow_spec("48M"))
    real = host.read_bytes
    host.read_bytes = lambda path, offset, length, **kw: real(path, offset, 100, **kw)  # short
    r = sc.one_pass(spec)
    assert r.plan.steps == () and sc.mutations() == []
    (note,) = r.plan.blocked
    assert note.object == "lv vg0/root" and "cannot be told" in note.reason


def _vg_reason(r, obj="vg data"):
    (b,) = [b for b in r.final.blocked if b.object == obj]
    return b.reason


def test_a_pv_of_another_vg_is_refused_saying_what_to_check_not_to_remove_it_there(scenario):
    # device names change after a reboot: /dev/vdc may be another VG's disk by mistake, and
    # "remove it there first" would have the operator take a PV out of a VG that needs it
    host = disks_host(G, "/dev/vdb", "/dev/vdc")
    host.add_vg("other", ["/dev/vdc"])
    host.add_lv("other", "keep", 100 * M)
    sc = scenario(host)
    why = _vg_reason(sc.one_pass(sc.spec(SIGNED_SPEC)))
    assert "/dev/vdc is a PV of VG 'other'" in why
    assert "remove it there" not in why
    assert "Check that /dev/vdc is the disk you meant" in why


def test_a_vg_marked_absent_with_undeclared_lvs_says_what_to_check(scenario):
    host = disks_host(G, "/dev/vdb", vg="data")
    host.add_lv("data", "someones", 100 * M)
    sc = scenario(host)
    why = _vg_reason(sc.one_pass(sc.spec(local_vg("data", ["/dev/vdb"], state="absent"))))
    assert "still holds LV(s) someones" in why
    assert "Check what they hold" in why, why
