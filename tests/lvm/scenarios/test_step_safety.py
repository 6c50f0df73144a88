"""Two executor rules on the simulated host (issue 8, items 5 and 2):

* a transient failure is retried after observing again, from the first command of the step
  that has not succeeded: a command that did succeed is never issued twice, and a step the
  host already shows done is not run again;
* a step that overwrites or stops a device (pvcreate, md build, add, stop) does not run
  while a process holds that device open with a plain ``open()``: a raw VM disk, a
  database device, which no mount or sysfs holder shows.

Every test that copies data compares the target with the source.
"""

import json

import pytest
from support import M, G
from support.fixtures import disks_host, mirror_host, mirror_spec
from support.mdfix import LEDGER, MD_DEV, NEW, OLD, clone_host, clone_spec, same_content
from support.specs import local_vg

from reconciler import controller
from reconciler.simulate import SimulatedHost

MD = MD_DEV
LOCKED = "  VG vg0 lock failed: lock start in progress\n"


ADDTAG = ("lvchange", "--addtag", "reconciler_split", "vg0/data")
CONVERT = ("lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vg0/data", "/dev/vdc")


def outcome(result, key):
    (r,) = [r for r in result.report.results if r.step.key == key]
    return r


def test_a_transient_failure_of_the_second_command_does_not_repeat_the_first(scenario):
    host = mirror_host(rate=8 * M)
    host.fail_next(("lvconvert",), 5, LOCKED)
    sc = scenario(host)
    spec = sc.spec(mirror_spec())
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_PENDING, r.final
    assert sc.mutations() == [ADDTAG, CONVERT, CONVERT]  # the tag once, the convert retried
    assert str(outcome(r, "lv:vg0/data:add-leg").outcome) == "started"
    # one observation before the retry, one after the step, besides the pass's own
    assert sum(c.argv[:2] == ("lvm", "fullreport") for c in host.calls) == 3
    assert sc.converge(spec).exit_code == 0
    assert sc.mutations().count(ADDTAG) == 1
    assert {pv.name for pv in host.lv("vg0", "data").pvs()} == {"/dev/vdc"}
    sc.assert_settled(spec)


def test_a_step_seen_done_when_observing_before_the_retry_is_not_run_again(scenario):
    host = disks_host(G, "/dev/vdb", vg="vg0")

    def took_effect_but_failed(cmd):
        # lvm created the LV, then its lock release failed: exit 5, the LV is there
        if cmd.argv[0] != "lvcreate":
            return False
        host.add_lv("vg0", "data", 8 * M)
        return True

    host.fail_next(took_effect_but_failed, 5, LOCKED)
    sc = scenario(host)
    spec = sc.spec(local_vg("vg0", ["/dev/vdb"], lv={"data": {"size": "8M"}}))
    r = sc.one_pass(spec)
    assert r.exit_code == 0, r.final
    assert [c[0] for c in sc.mutations()] == ["lvcreate"]  # never issued a second time
    step = outcome(r, "lv:vg0/data:create")
    assert str(step.outcome) == "done" and "observing again before a retry" in step.detail
    sc.assert_settled(spec)


# -- openers ---------------------------------------------------------------------------------

QEMU = "pid 4242 (qemu-system-x86)"


def split_recorded(host) -> bool:
    text = host.md.files.get(LEDGER)
    return text is not None and any(c["split"] for c in json.loads(text)["copies"])


def refused(r, key, device, role):
    assert r.exit_code == controller.EXIT_ERROR, r.final
    step = outcome(r, key)
    assert str(step.outcome) == "failed" and not step.results, step
    assert f"{role} {device} is open by {QEMU}; stop it first" in step.detail
    assert f"{role} {device} is open by {QEMU}" in r.error
    return step


def test_pvcreate_is_not_run_on_a_device_a_process_holds_open(scenario):
    host = SimulatedHost()
    host.add_device("/dev/vdb", 1 * G, aliases=("/dev/disk/by-id/lun7",))
    host.open_device("/dev/vdb", 4242, "qemu-system-x86")  # a VM's raw disk
    sc = scenario(host)
    spec = sc.spec(local_vg("vg0", ["/dev/disk/by-id/lun7"]))
    r = sc.one_pass(spec)
    refused(r, "pv:/dev/disk/by-id/lun7:create", "/dev/disk/by-id/lun7", "the device")
    assert str(outcome(r, "vg:vg0:create").outcome) == "skipped"
    assert sc.mutations() == []
    host.close_device("/dev/disk/by-id/lun7", 4242)
    assert sc.converge(spec).exit_code == 0
    assert sc.mutations() == [("pvcreate", "/dev/disk/by-id/lun7"),
                              ("vgcreate", "vg0", "/dev/disk/by-id/lun7")]
    sc.assert_settled(spec)


def test_an_md_build_is_not_run_while_a_process_writes_the_source_directly(scenario):
    host = clone_host(spare=False)
    host.open_device("/dev/vda", 4242, "qemu-system-x86")  # by another name of the disk
    sc = scenario(host)
    spec = sc.spec(clone_spec("mirrored"))
    r = sc.one_pass(spec)
    refused(r, "clone:db:build", OLD, "the source")
    assert str(outcome(r, "clone:db:add").outcome) == "skipped"
    assert sc.mutations() == [] and host.md_array(MD) is None
    host.close_device(OLD, 4242)
    assert sc.converge(spec).exit_code == 0
    assert same_content(host)


def test_a_target_held_open_is_not_added_until_its_holder_has_gone(scenario):
    host = clone_host(spare=False)
    target_before = host.fingerprint("/dev/vdb")
    host.open_device(NEW, 4242, "qemu-system-x86")
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    r = sc.one_pass(spec)
    assert str(outcome(r, "clone:db:build").outcome) == "done"
    refused(r, "clone:db:add", NEW, "the target")
    assert [c[1] for c in sc.mutations()] == ["--build"]
    assert host.fingerprint("/dev/vdb") == target_before  # not one byte written
    again = sc.one_pass(spec)  # the holder is still there: refused again, nothing else
    refused(again, "clone:db:add", NEW, "the target")
    host.close_device("/dev/vdb", 4242)
    assert sc.converge(spec).exit_code == 0
    assert host.md_array(MD) is None and same_content(host)
    sc.assert_settled(spec)


def test_an_array_held_open_is_not_stopped(scenario):
    host = clone_host(spare=False)
    sc = scenario(host)
    spec = sc.spec(clone_spec("mirrored"))
    assert sc.converge(spec).exit_code == 0
    host.open_device(MD, 4242, "qemu-system-x86")  # the workload uses the array, raw
    host.write(MD, 3, b"written-through-the-array")
    split = sc.spec(clone_spec("split"))
    r = sc.one_pass(split)
    # the split record is refused as the stop would be: never "complete" while open
    refused(r, "ledger:clones:split", MD, "the array")
    assert str(outcome(r, "clone:db:stop").outcome) == "skipped"
    assert ("mdadm", "--stop", MD) not in sc.mutations() and host.md_array(MD) is not None
    assert not split_recorded(host)
    host.close_device(MD, 4242)
    assert sc.converge(split).exit_code == 0
    assert ("mdadm", "--stop", MD) in sc.mutations() and host.md_array(MD) is None
    assert same_content(host)
    assert host.md.content[host.model.device("/dev/vdb")][3] == b"written-through-the-array"
    sc.assert_settled(split)


def test_the_openers_check_costs_nothing_on_passes_that_do_not_need_it(scenario):
    host = mirror_host(rate=8 * M)
    sc = scenario(host)
    spec = sc.spec(mirror_spec())
    assert sc.converge(spec).exit_code == 0
    assert host.opener_checks == []  # no step of a mirror-then-split overwrites a device


def test_simulated_openers_follow_device_identity():
    host = clone_host(spare=False)
    host.open_device(OLD, 7, "dd")
    host.open_device("/dev/vda", 9, "qemu-system-x86")
    assert host.openers(["/dev/vda", NEW]) == {"/dev/vda": ("pid 7 (dd)", "pid 9 (qemu-system-x86)"),
                                               NEW: ()}
    host.close_device("/dev/vda", 7)
    assert host.openers([OLD]) == {OLD: ("pid 9 (qemu-system-x86)",)}
    with pytest.raises(ValueError):
        host.close_device(OLD, 7)
    with pytest.raises(ValueError):
        host.open_device("/dev/nope", 1, "x")


def test_a_retry_is_not_made_when_its_precondition_no_longer_holds(scenario):
    """lvconvert -m0 fails on a lock; before the retry a leg is seen out of sync again
    (e.g. a refresh): the leg is not dropped, the step waits for a later pass."""
    host = mirror_host(rate=8 * M)
    sc = scenario(host)
    spec = sc.spec(mirror_spec())
    sc.one_pass(spec)
    host.clock.advance(20)  # 64 MiB at 8 MiB/s: in sync

    def lock_then_resync(cmd):
        if cmd.argv[:3] != ("lvconvert", "--yes", "--mirrors"):
            return False
        lv = host.lv("vg0", "data")
        lv.recovering, lv.synced = {1}, 0.0  # the new leg resyncs from the start
        host.model.active.add(lv)
        return True

    host.fail_next(lock_then_resync, 5, LOCKED)
    r = sc.one_pass(spec)
    drop = outcome(r, "lv:vg0/data:drop-leg")
    assert str(drop.outcome) == "deferred", drop
    assert "not retried: the legs are not 100% in sync yet" in drop.detail
    assert [c for c in sc.mutations() if c[:3] == ("lvconvert", "--yes", "--mirrors")] == [
        ("lvconvert", "--yes", "--mirrors", "0", "vg0/data", "/dev/vdb")]  # the failed one only
    assert len(host.lv("vg0", "data").images) == 2
    assert sc.converge(spec).exit_code == 0
    assert {pv.name for pv in host.lv("vg0", "data").pvs()} == {"/dev/vdc"}
    sc.assert_settled(spec)


def test_the_target_is_not_added_while_a_process_writes_the_source_directly(scenario):
    host = clone_host(spare=False)
    host.open_device(NEW, 4242, "qemu-system-x86")
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    refused(sc.one_pass(spec), "clone:db:add", NEW, "the target")  # the build ran
    host.close_device(NEW, 4242)
    host.open_device(OLD, 4242, "qemu-system-x86")  # now the source is written around md
    refused(sc.one_pass(spec), "clone:db:add", OLD, "the source")
    assert [c[1] for c in sc.mutations()] == ["--build"]
    host.close_device(OLD, 4242)
    assert sc.converge(spec).exit_code == 0
    assert host.md_array(MD) is None and same_content(host)


def test_a_split_is_not_made_while_a_process_writes_the_source_directly(scenario):
    host = clone_host(spare=False)
    sc = scenario(host)
    spec = sc.spec(clone_spec("mirrored"))
    assert sc.converge(spec).exit_code == 0
    host.open_device(OLD, 4242, "qemu-system-x86")
    r = sc.one_pass(sc.spec(clone_spec("split")))
    refused(r, "ledger:clones:split", OLD, "the source")
    assert not split_recorded(host)
    assert ("mdadm", "--stop", MD) not in sc.mutations() and host.md_array(MD) is not None
    host.close_device(OLD, 4242)
    assert sc.converge(sc.spec(clone_spec("split"))).exit_code == 0
    assert host.md_array(MD) is None and same_content(host)


# -- a udev worker's probe -------------------------------------------------------------------

UDEV = "(udev-worker)"


def test_a_udev_workers_probe_alone_is_waited_out_then_the_step_runs(scenario):
    # Lab (systemd guest, 2026-12-05): udev probed the backing disk right after drbdadm
    # create-md closed it, and the next step was refused as "open by pid N ((udev-worker))".
    host = SimulatedHost()
    host.add_device("/dev/vdb", 1 * G)
    host.open_device("/dev/vdb", 311, UDEV)
    checks = []
    real = host.openers

    def openers(paths, **kw):
        out = real(paths, **kw)
        checks.append(out)
        if len(checks) == 3:  # the probe ends after two polls
            host.close_device("/dev/vdb", 311)
        return out

    host.openers = openers
    sc = scenario(host)
    spec = sc.spec(local_vg("vg0", ["/dev/vdb"]))
    r = sc.one_pass(spec)
    assert r.exit_code == 0, r.final
    assert [c[0] for c in sc.mutations()] == ["pvcreate", "vgcreate"]
    assert checks[0] == {"/dev/vdb": (f"pid 311 ({UDEV})",)} and len(checks) >= 4


def test_a_udev_worker_that_stays_is_an_opener_like_any_other(scenario):
    host = SimulatedHost()
    host.add_device("/dev/vdb", 1 * G)
    host.open_device("/dev/vdb", 311, UDEV)
    sc = scenario(host)
    spec = sc.spec(local_vg("vg0", ["/dev/vdb"]))
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_ERROR, r.final
    assert f"the device /dev/vdb is open by pid 311 ({UDEV})" in outcome(r, "pv:/dev/vdb:create").detail
    assert sc.mutations() == []
    # waited out for UDEV_WAIT_S in polls, then refused (not one look)
    assert len(host.opener_checks) > 10


def test_a_udev_worker_beside_a_real_user_is_not_waited_for(scenario):
    host = SimulatedHost()
    host.add_device("/dev/vdb", 1 * G)
    host.open_device("/dev/vdb", 311, UDEV)
    host.open_device("/dev/vdb", 4242, "qemu-system-x86")
    sc = scenario(host)
    r = sc.one_pass(sc.spec(local_vg("vg0", ["/dev/vdb"])))
    assert r.exit_code == controller.EXIT_ERROR, r.final
    assert sc.mutations() == [] and len(host.opener_checks) == 1
