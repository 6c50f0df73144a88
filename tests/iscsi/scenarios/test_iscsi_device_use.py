"""Issue 17, findings 6 and 7, on the seed-004 pair: an export of a device in use on the
exporting node is refused at planning, before any initiator can see it; a logout, a LUN
removal or a target removal does not run while a process holds the device open."""

from __future__ import annotations

import pytest
from test_iscsi_simulated import DISK0, IQN, Pair
from support import M

from reconciler import controller

QEMU = "pid 4242 (qemu-system-x86)"


@pytest.fixture
def pair(tmp_path):
    return Pair(tmp_path)


def unused_session(pair):
    """a exports, b logs in and leaves the disk alone (no PV, no mount, no holder)."""
    assert pair.converge("a", pair.spec()).exit_code == 0
    assert pair.converge("b", pair.spec(pvs='"/dev/vda"', back=True)).exit_code == 0
    assert len(pair.b.iscsi.sessions) == 1


def let_go(pair):
    """b, which never used the disk, logs out."""
    unused_session(pair)
    assert pair.converge("b", pair.spec(pvs='"/dev/vda"', back=True,
                                   session="absent")).exit_code == 0
    assert pair.b.iscsi.sessions == []


def lio_applies(host):
    return [c for c in host.calls if c.argv[-3:-1] == ("reconciler.adapters.iscsi", "lio-apply")
            or "lio-apply" in c.argv]


def target_blocked(r):
    return [b.reason for b in r.plan.blocked if b.object == "iscsi target export0"]


def assert_b_sees_nothing(pair, loaded):
    rb = pair.run("b", loaded)
    login = next(x for x in rb.report.results if x.step.key == "iscsi-session:from_a:login")
    # the target is declared on a: b's login waits on a (no export there yet)
    assert str(login.outcome) == "deferred", login
    assert rb.exit_code == controller.EXIT_PENDING
    assert "iscsi session from_a: the portal 192.0.2.1:3260 is unreachable" in str(login.error)
    assert pair.b.iscsi.sessions == [] and "local" not in pair.b.model.vgs


def test_export_of_a_pv_of_an_active_vg_with_a_mounted_lv_is_refused_at_planning(pair):
    # finding 6: /dev/vdb (LUN 0 in the spec) is a PV of a VG of a's own, its LV mounted
    pair.a.add_vg("local", ["/dev/vdb"])
    pair.a.add_lv("local", "data", 64 * M)
    pair.a.mount("/dev/local/data", "/srv")
    loaded = pair.spec()
    dry = pair.run("a", loaded, dry_run=True)
    (reason,) = target_blocked(dry)
    assert "exporting /dev/vdb (LUN 0) is refused" in reason
    assert "a PV of VG local (active here)" in reason and "held by dm-" in reason
    assert "wipe" not in reason
    assert not any(s.key.startswith("iscsi-target:") for s in dry.plan.steps)
    r = pair.run("a", loaded)
    assert target_blocked(r) and r.exit_code != controller.EXIT_IN_SYNC
    assert lio_applies(pair.a) == [] and pair.a.iscsi.targets == {}
    assert_b_sees_nothing(pair, loaded)


def test_export_of_a_mounted_disk_is_refused_until_it_is_unmounted(pair):
    pair.a.mount("/dev/vdb", "/mnt/old")
    loaded = pair.spec()
    r = pair.run("a", loaded)
    (reason,) = target_blocked(r)
    assert "/dev/vdb (LUN 0)" in reason and "mounted at /mnt/old" in reason
    assert pair.a.iscsi.targets == {}
    assert_b_sees_nothing(pair, loaded)
    pair.a.umount("/mnt/old")
    assert pair.converge("a", loaded).exit_code == 0
    assert set(pair.a.iscsi.targets[IQN].luns) == {0, 1}
    assert pair.converge("b", loaded).exit_code == 0


def test_export_of_a_pv_of_a_vg_the_spec_declares_on_this_node_is_refused_even_inactive(pair):
    pair.a.add_vg("exp2", ["/dev/vdb"])
    pair.a.add_lv("exp2", "quiet", 16 * M)
    pair.a.lv("exp2", "quiet").active = False
    extra = ('\n[vg.exp2]\nnodes = ["a"]\npvs = ["/dev/vdb"]\n'
             '[vg.exp2.lv.quiet]\nsize = "16M"\n')
    r = pair.run("a", pair.spec(extra), dry_run=True)
    (reason,) = target_blocked(r)
    assert "a PV of VG exp2, which the spec declares on local" in reason, reason


def test_a_disk_carrying_an_inactive_vg_nobody_here_declares_is_exported(pair):
    # the seed-004 exporter after a reboot: the disk carries the VG its initiator wrote
    pair.a.add_vg("theirs", ["/dev/vdb"])
    pair.a.add_lv("theirs", "srv", 16 * M)
    pair.a.lv("theirs", "srv").active = False
    loaded = pair.spec()
    r = pair.run("a", loaded, dry_run=True)
    assert target_blocked(r) == [], r.plan.blocked
    assert "iscsi-target:export0:apply" in [s.key for s in r.plan.steps]


def test_logout_is_refused_while_a_process_holds_the_disk_open_then_done(pair):
    # finding 7: no PV, no mount, no holder; a process has the disk open (qemu, dd)
    unused_session(pair)
    loaded = pair.spec(pvs='"/dev/vda"', back=True, session="absent")
    pair.b.open_device(DISK0, 4242, "qemu-system-x86")
    r = pair.run("b", loaded)
    step = next(x for x in r.report.results if x.step.key == "iscsi-session:from_a:logout")
    assert str(step.outcome) == "failed" and not step.results
    assert f"the disk {DISK0} is open by {QEMU}; stop it first" in step.detail
    assert r.exit_code == controller.EXIT_ERROR and QEMU in r.error
    assert not any("--logout" in c.argv for c in pair.b.calls)
    assert len(pair.b.iscsi.sessions) == 1
    pair.b.close_device(DISK0, 4242)
    assert pair.converge("b", loaded).exit_code == 0
    assert pair.b.iscsi.sessions == []


def test_lun_removal_is_refused_while_a_process_on_the_exporter_holds_the_device(pair):
    let_go(pair)
    pair.a.open_device("/dev/vdb", 4242, "qemu-system-x86")
    loaded = pair.spec(lun0_state='state = "absent"', session="absent", pvs='"/dev/vda"',
                  back=True)
    before = len(lio_applies(pair.a))
    r = pair.run("a", loaded)
    step = next(x for x in r.report.results if x.step.key == "iscsi-target:export0:apply")
    assert str(step.outcome) == "failed" and not step.results
    assert f"the exported device /dev/vdb is open by {QEMU}" in step.detail
    assert len(lio_applies(pair.a)) == before and 0 in pair.a.iscsi.targets[IQN].luns
    pair.a.close_device("/dev/vdb", 4242)
    assert pair.converge("a", loaded).exit_code == 0
    assert 0 not in pair.a.iscsi.targets[IQN].luns


def test_target_removal_is_refused_while_a_process_holds_an_exported_device(pair):
    let_go(pair)
    pair.a.open_device("/dev/exp/lv0", 4242, "qemu-system-x86")
    loaded = pair.spec(target_state="absent", session="absent", pvs='"/dev/vda"', back=True)
    r = pair.run("a", loaded)
    step = next(x for x in r.report.results if x.step.key == "iscsi-target:export0:delete")
    assert str(step.outcome) == "failed" and not step.results
    assert f"the exported device /dev/exp/lv0 is open by {QEMU}" in step.detail
    assert IQN in pair.a.iscsi.targets
    pair.a.close_device("/dev/exp/lv0", 4242)
    assert pair.converge("a", loaded).exit_code == 0
    assert IQN not in pair.a.iscsi.targets


def test_a_logout_is_refused_when_the_disk_was_mounted_after_the_pass_observed_the_host(pair):
    # the executor judged mounts on the state observed last and asked only for processes
    # right before the step (a mount is not in /proc/*/fd): a disk mounted between the
    # observation and the logout (an operator, an automounter) was logged out from under
    # the mount. Simulated: the mount happens when the executor asks who has the disk open,
    # i.e. right before the logout; the executor reads the mounts again then.
    unused_session(pair)
    loaded = pair.spec(pvs='"/dev/vda"', back=True, session="absent")
    asked, mounted = pair.b.openers, []

    def openers(paths, **kw):
        if DISK0 in paths and not mounted:
            pair.b.mount(DISK0, "/mnt/just-now")
            mounted.append(DISK0)
        return asked(paths, **kw)

    pair.b.openers = openers
    r = pair.run("b", loaded)
    assert mounted and not any("--logout" in c.argv for c in pair.b.calls)
    step = next(x for x in r.report.results if x.step.key == "iscsi-session:from_a:logout")
    assert str(step.outcome) == "failed" and "mounted at /mnt/just-now" in step.detail
    assert len(pair.b.iscsi.sessions) == 1
    pair.b.umount("/mnt/just-now")
    assert pair.converge("b", loaded).exit_code == 0
    assert pair.b.iscsi.sessions == []


def test_a_logout_is_refused_while_the_kernel_claims_the_disk_without_a_holder_link(pair):
    # REVIEW7 F2: b re-exports the session's disk through a LIO backstore of its own, which
    # b's spec does not declare. LIO's iblock claims the disk in the kernel: no sysfs holder,
    # no mount, no process descriptor, so only an exclusive open tells (EBUSY). Logging the
    # session out would fail every write b's own initiators queue on it.
    unused_session(pair)
    pair.b.iscsi.backstores["iblock_0/reexport"] = DISK0
    loaded = pair.spec(pvs='"/dev/vda"', back=True, session="absent")
    r = pair.run("b", loaded)
    assert not any("--logout" in c.argv for c in pair.b.calls)
    step = next(x for x in r.report.results if x.step.key == "iscsi-session:from_a:logout")
    assert str(step.outcome) == "failed" and not step.results, step
    assert f"the disk {DISK0} is claimed by the kernel: an exclusive open is refused" \
        in step.detail
    assert "targetcli ls" in step.detail
    assert len(pair.b.iscsi.sessions) == 1
    del pair.b.iscsi.backstores["iblock_0/reexport"]  # the re-export is taken down
    assert pair.converge("b", loaded).exit_code == 0
    assert pair.b.iscsi.sessions == []
