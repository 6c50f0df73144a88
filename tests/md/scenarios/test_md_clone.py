"""Seed 002 on the simulated host: online clones through a non-persistent md RAID1.

The simulated devices carry content (``SimulatedHost.fill``/``write``/``fingerprint``), so
every test that copies data checks the target against the source, and that the source was
never written by the copy. The simulated disks have virtio serials (``sim-vda``...), so the
ledger knows them by identity, as on a real host.
"""

import json

import pytest
from support import M
from support.mdfix import LEDGER, NEW, OLD, clone_host, clone_spec, same_content

from reconciler import controller
from reconciler.runner import Command, CommandResult
from reconciler.simulate import SimulatedCrash, SimulatedHost

BUILD = ("mdadm", "--build", "/dev/md100", "--level=1", "--raid-devices=2", OLD, "missing")
ADD = ("mdadm", "/dev/md100", "--add", NEW)
STOP = ("mdadm", "--stop", "/dev/md100")
WRITE_LEDGER = [("mkdir", "-p", "/var/lib/reconciler"),
                ("dd", "of=/var/lib/reconciler/.clones.json.tmp", "conv=fsync", "status=none"),
                ("mv", "-f", "/var/lib/reconciler/.clones.json.tmp", LEDGER),
                ("sync", "/var/lib/reconciler"), ("sync", "/var/lib")]


def run(host, *argv: str) -> CommandResult:
    """A command typed by an administrator, behind the reconciler's back."""
    return host.run(Command(argv=tuple(argv)))


def ledger(host):
    """The ledger's records (format 2), or None when there is no ledger file."""
    text = host.md.files.get(LEDGER)
    if text is None:
        return None
    doc = json.loads(text)
    assert doc["format"] == 2, doc
    return doc["copies"]


def record_of(host, clone="db"):
    rec, = [r for r in ledger(host) if r["clone"] == clone]
    return rec


def blocked(result):
    assert result.exit_code == controller.EXIT_ERROR, str(result.final)
    assert [b.object for b in result.final.blocked] == ["clone db"], str(result.final)
    return result.final.blocked[0].reason


def test_mirrored_builds_over_the_source_adds_the_target_and_keeps_the_array(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("mirrored"))
    first = sc.one_pass(spec)
    assert first.exit_code == controller.EXIT_PENDING
    assert sc.mutations() == [BUILD, ADD]
    flight, = first.final.in_flight
    assert (flight.key, flight.object) == ("clone:db:syncing", "clone db")
    assert flight.what == "md recovery /dev/disk/by-id/old-lun -> /dev/disk/by-id/new-lun"
    assert flight.percent == 0.0 and flight.speed == 4 * M and flight.eta == pytest.approx(16)
    host.clock.advance(8)
    middle = sc.one_pass(spec)
    assert middle.plan.in_flight[0].percent == pytest.approx(50.0)
    assert middle.plan.as_dict()["in_flight"][0]["eta_s"] == pytest.approx(8)
    assert middle.processes == 1 and not middle.plan.steps
    assert sc.converge(spec).exit_code == 0
    assert sc.mutations() == [BUILD, ADD]
    arr = host.md_array("/dev/md100")
    assert [m.flags for m in arr.members] == ["in_sync", "in_sync"]
    assert same_content(host)
    assert ledger(host) is None
    sc.assert_settled(spec)


def test_split_waits_for_the_sync_records_it_then_stops_the_array(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    dry = sc.one_pass(spec, dry_run=True)
    assert [s.action.describe() for s in dry.plan.steps] == [
        "build /dev/md100 (RAID1, no superblock) over /dev/disk/by-id/old-lun",
        "add /dev/disk/by-id/new-lun to /dev/md100; md copies the source onto it"]
    assert sc.mutations() == []
    sc.one_pass(spec)
    host.mount("/dev/md100", "/srv/db")  # the workload moves onto the array
    host.clock.advance(4)
    for chunk in (1, 40):  # it writes while the copy runs, behind and ahead of it
        host.write("/dev/md100", chunk, b"written-during-the-sync")
    host.clock.advance(20)
    in_use = sc.one_pass(spec)
    assert "in sync, but /dev/md100 is in use (mounted at /srv/db)" in blocked(in_use)
    assert "stop using /dev/md100 (do not use /dev/disk/by-id/new-lun yet)" in blocked(in_use)
    # the completed sync is remembered at once, though the split is blocked
    record = {"source": {"id": "serial:sim-vda", "path": OLD},
              "target": {"id": "serial:sim-vdb", "path": NEW},
              "size": 64 * M, "clone": "db", "md": "/dev/md100",
              "split_at": 24.0, "recopy": "", "declared": True, "split": False}
    assert STOP not in sc.mutations() and ledger(host) == [record]
    host.umount("/srv/db")
    assert sc.converge(spec).exit_code == 0
    assert sc.mutations() == [BUILD, ADD, *WRITE_LEDGER, *WRITE_LEDGER, STOP]
    assert host.md_array("/dev/md100") is None
    assert ledger(host) == [{**record, "split": True}]
    assert same_content(host)
    assert host.md.content[host.model.device("/dev/vdb")][40] == b"written-during-the-sync"
    sc.assert_settled(spec)


def test_speed_limits_are_set_before_the_target_is_added(scenario):
    host = clone_host(rate=16 * M)
    sc = scenario(host)
    spec = sc.spec(clone_spec("mirrored", 'speed_limit_max = "1M"\nspeed_limit_min = "512K"'))
    r = sc.one_pass(spec)
    assert sc.mutations() == [BUILD, ("tee", "/sys/block/md100/md/sync_speed_max"),
                              ("tee", "/sys/block/md100/md/sync_speed_min"), ADD]
    assert [c.input for c in host.calls if c.argv[0] == "tee"] == ["1024\n", "512\n"]
    assert r.final.in_flight[0].speed == 1 * M
    host.clock.advance(32)
    assert sc.one_pass(spec).plan.in_flight[0].percent == pytest.approx(50.0)
    assert sc.converge(spec).exit_code == 0
    assert host.clock.now() >= 64
    sc.assert_settled(spec)
    host.md_array("/dev/md100").speed_max = None  # changed by hand: put back
    sc.one_pass(spec)
    assert sc.mutations()[-1] == ("tee", "/sys/block/md100/md/sync_speed_max")
    sc.assert_settled(spec)


def test_a_reboot_during_the_sync_rebuilds_from_the_source_never_the_target(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    orig = host.fingerprint("/dev/vda")
    sc.one_pass(spec)
    host.clock.advance(6)
    sc.one_pass(spec)
    host.crash_after(0)
    host.recover()  # the array had no superblock: it is gone
    assert host.md_array("/dev/md100") is None
    host.fill("/dev/vdb", "half-written garbage")
    calls = len(sc.mutations())
    again = sc.one_pass(spec, fresh_memory=True)
    assert [s.key for s in again.plan.steps] == ["clone:db:build", "clone:db:add"]
    assert sc.mutations()[calls:] == [BUILD, ADD]
    assert sc.converge(spec).exit_code == 0
    assert sc.mutations()[calls:] == [BUILD, ADD, *WRITE_LEDGER, *WRITE_LEDGER, STOP]
    assert host.fingerprint("/dev/vda") == orig and same_content(host)
    sc.assert_settled(spec)


def test_a_crash_inside_a_pass_between_build_and_add(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("mirrored"))
    host.crash_after(1)
    with pytest.raises(SimulatedCrash):
        sc.one_pass(spec)
    assert sc.mutations() == [BUILD]
    host.recover()
    assert sc.converge(spec).exit_code == 0
    assert sc.mutations() == [BUILD, BUILD, ADD]
    assert same_content(host)
    sc.assert_settled(spec)


def test_a_crash_after_the_record_and_before_the_stop_is_a_split(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    sc.one_pass(spec)
    host.clock.advance(20)
    # the host dies right after the split record is synced (the sync's record first)
    host.crash_after(2 * len(WRITE_LEDGER))
    with pytest.raises(SimulatedCrash):
        sc.one_pass(spec)
    assert sc.mutations()[-2 * len(WRITE_LEDGER):] == WRITE_LEDGER * 2
    host.recover()
    settled = sc.one_pass(spec, fresh_memory=True)
    assert settled.exit_code == 0 and settled.plan.converged
    assert STOP not in sc.mutations() and BUILD == sc.mutations()[0]
    assert same_content(host)
    sc.assert_settled(spec)


@pytest.mark.parametrize("how", ["reboot", "stopped by hand"])
def test_a_completed_sync_whose_array_is_gone_before_the_split_is_blocked_not_rebuilt(
        scenario, how):
    """The target held a complete copy; the array went before the split was recorded (a
    reboot, or `mdadm --stop` by an operator who moved the workload onto the target): the
    target may be in use, so it is never added to a new array over it."""
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    sc.one_pass(spec)
    host.clock.advance(20)
    host.mount("/dev/md100", "/srv/db")  # still in use: the split is blocked
    assert "in sync, but /dev/md100 is in use" in blocked(sc.one_pass(spec))
    host.umount("/srv/db")
    if how == "reboot":
        host.crash_after(0)
        host.recover()
    else:
        assert host.run(Command(argv=("mdadm", "--stop", "/dev/md100"))).ok
    assert host.md_array("/dev/md100") is None
    host.write("/dev/vdb", 3, b"the workload now writes the target")
    calls = len(sc.mutations())
    again = sc.one_pass(spec, fresh_memory=True)
    assert again.exit_code == controller.EXIT_ERROR
    reason = blocked(again)
    assert "held a complete copy of /dev/disk/by-id/old-lun at" in reason
    assert "is gone without the split being recorded" in reason and "recopy = " in reason
    assert sc.mutations()[calls:] == []
    assert host.md.content[host.model.device("/dev/vdb")][3] == b"the workload now writes the target"
    # a new recopy value copies again from the source, once
    assert sc.converge(sc.spec(clone_spec("split", 'recopy = "2"'))).exit_code == 0
    mdadm = [m for m in sc.mutations()[calls:] if m[0] == "mdadm"]
    assert mdadm[:2] == [BUILD, ADD] and same_content(host)


def test_a_split_clone_stays_split_after_a_reboot_while_the_target_is_used(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    assert sc.converge(spec).exit_code == 0
    host.recover()
    host.mount("/dev/vdb", "/srv/db")  # the workload now lives on the target
    host.write("/dev/vdb", 3, b"new life")
    before = len(sc.mutations())
    sc.assert_settled(spec)
    assert len(sc.mutations()) == before
    assert host.md.content[host.model.device("/dev/vdb")][3] == b"new life"


def test_a_mirrored_clone_is_rebuilt_after_a_reboot(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("mirrored"))
    assert sc.converge(spec).exit_code == 0
    host.recover()
    orig = host.fingerprint("/dev/vda")
    assert sc.converge(spec).exit_code == 0
    assert sc.mutations() == [BUILD, ADD, BUILD, ADD]
    assert host.fingerprint("/dev/vda") == orig and same_content(host)
    sc.assert_settled(spec)


def test_after_a_reboot_without_a_record_a_target_in_use_is_never_overwritten(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    sc.one_pass(spec)
    host.clock.advance(4)
    host.crash_after(0)
    host.recover()
    host.mount("/dev/vdb", "/srv/db")
    r = sc.one_pass(spec, fresh_memory=True)
    reason = blocked(r)
    assert "no completed split is recorded" in reason and "mounted at /srv/db" in reason
    assert sc.mutations() == [BUILD, ADD]


def _refusal(host, sc, state="split", extra=""):
    spec = sc.spec(clone_spec(state, extra))
    before = len(sc.mutations())
    r = sc.one_pass(spec)
    assert sc.mutations()[before:] == []
    assert not r.plan.steps
    return blocked(r)


def test_refuses_a_target_smaller_than_the_source(scenario):
    host = clone_host(dst=32 * M)
    reason = _refusal(host, scenario(host))
    assert "the target /dev/disk/by-id/new-lun (32M) is smaller than the source" in reason


@pytest.mark.parametrize("use,words", [
    (lambda h: h.mount("/dev/vdb", "/data"), "mounted at /data"),
    (lambda h: h.mount(h.add_partition("/dev/vdb", 1, 16 * M), "/boot"), "mounted at /boot (vdb1)"),
    (lambda h: h.hold("/dev/vdb", "dm-7"), "held by dm-7"),
    (lambda h: h.add_pv("/dev/vdb"), "an LVM PV (in no VG)"),
    (lambda h: (h.add_vg("vgx", ["/dev/vdb"]), h.add_lv("vgx", "l", 8 * M)),
     "held by dm-0, an LVM PV (of VG vgx)"),
])
def test_refuses_a_target_in_use(scenario, use, words):
    host = clone_host()
    use(host)
    reason = _refusal(host, scenario(host))
    assert f"the target /dev/disk/by-id/new-lun is {words}; the copy would overwrite it" in reason


def test_refuses_a_target_held_by_another_array(scenario):
    host = clone_host()
    sc = scenario(host)
    assert run(host, "mdadm", "--build", "/dev/md7", "--level=1", "--raid-devices=2",
               "/dev/vdb", "missing").rc == 0
    assert "is held by md7" in _refusal(host, sc)
    assert "md md7" in sc.results[-1].final.unmanaged


@pytest.mark.parametrize("use,words", [
    (lambda h: h.mount("/dev/vda", "/srv/db"), "is mounted at /srv/db; md needs it to itself"),
    (lambda h: h.add_pv("/dev/vda"), "is an LVM PV (in no VG)"),
])
def test_refuses_a_source_in_use(scenario, use, words):
    host = clone_host()
    use(host)
    assert f"the source /dev/disk/by-id/old-lun {words}" in _refusal(host, scenario(host), "mirrored")


def test_refuses_missing_devices(scenario):
    host = SimulatedHost()
    host.add_device("/dev/vda", 64 * M, aliases=("/dev/disk/by-id/old-lun",))
    reason = _refusal(host, scenario(host), "mirrored")
    assert "the target /dev/disk/by-id/new-lun does not exist" in reason


def test_refuses_an_array_that_is_not_this_clone(scenario):
    host = clone_host()
    sc = scenario(host)
    run(host, "mdadm", "--build", "/dev/md100", "--level=1", "--raid-devices=2", "/dev/vdc", "missing")
    assert "/dev/md100 exists without the source /dev/disk/by-id/old-lun (members: vdc)" in \
        _refusal(host, sc)
    run(host, "mdadm", "--stop", "/dev/md100")
    run(host, "mdadm", "--build", "/dev/md100", "--level=1", "--raid-devices=2", "/dev/vda", "missing")
    run(host, "mdadm", "/dev/md100", "--add", "/dev/vdc")
    assert "members other than the source and the target: vdc" in _refusal(host, sc)
    run(host, "mdadm", "--stop", "/dev/md100")
    run(host, "mdadm", "--build", "/dev/md100", "--level=1", "--raid-devices=2", "/dev/vdb", "missing")
    run(host, "mdadm", "/dev/md100", "--add", "/dev/vda")  # the copy would run from the target
    assert "the source /dev/disk/by-id/old-lun is not the in-sync member of /dev/md100 (spare)" \
        in _refusal(host, sc, "abandoned")


def test_never_stops_a_syncing_array_unless_abandoned(scenario):
    host = clone_host()
    sc = scenario(host)
    split = sc.spec(clone_spec("split"))
    sc.one_pass(split)
    for _ in range(3):
        host.clock.advance(4)
        r = sc.one_pass(split)
        assert r.exit_code == controller.EXIT_PENDING and not r.plan.steps
    assert STOP not in sc.mutations()
    abandoned = sc.spec(clone_spec("abandoned"))
    r = sc.one_pass(abandoned)
    assert [s.action.describe() for s in r.plan.steps] == [
        "stop /dev/md100 (clone abandoned; the target's content is meaningless)"]
    assert sc.mutations() == [BUILD, ADD, STOP] and r.exit_code == 0
    assert not same_content(host) and ledger(host) is None
    sc.assert_settled(abandoned)


def test_a_target_failing_during_the_sync_blocks_the_clone(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    sc.one_pass(spec)
    host.clock.advance(4)
    host.fail_device("/dev/vdb")
    host.clock.advance(4)
    reason = blocked(sc.one_pass(spec))
    assert "/dev/disk/by-id/new-lun failed in /dev/md100 (faulty,write_error)" in reason
    assert STOP not in sc.mutations()


def test_an_unreadable_ledger_blocks_every_clone(scenario):
    host = clone_host()
    host.md.dirs.add("/var/lib/reconciler")
    host.md.files[LEDGER] = "{ half a file"
    sc = scenario(host)
    reason = _refusal(host, sc)
    assert reason.startswith(f"{LEDGER} cannot be read as a clone ledger")


def test_a_ledger_that_cannot_be_written_leaves_the_array_running(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    sc.one_pass(spec)
    host.clock.advance(20)
    host.fail_next(("dd",), 1, "dd: error writing '/var/lib/reconciler/.clones.json.tmp': "
                               "No space left on device\n")
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_ERROR
    outcomes = {x.step.key: str(x.outcome) for x in r.report.results}
    assert outcomes == {"ledger:clones": "failed", "ledger:clones:split": "skipped",
                        "clone:db:stop": "skipped"}
    assert host.md_array("/dev/md100") is not None and STOP not in sc.mutations()
    assert sc.converge(spec).exit_code == 0
    sc.assert_settled(spec)


def test_a_target_leaving_the_sync_after_the_record_defers_the_stop(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    sc.one_pass(spec)
    host.clock.advance(20)
    def target_fails_now(cmd):
        if cmd.argv[0] == "sync":  # while the ledger is written, the workload writes to the
            host.fail_device("/dev/vdb")  # array and the target fails
            host.write("/dev/md100", 0, b"late write")
        return False

    host.fail_next(target_fails_now, 0, "")
    r = sc.one_pass(spec)
    outcomes = {x.step.key: (str(x.outcome), x.detail) for x in r.report.results}
    assert outcomes["clone:db:stop"] == (
        "deferred", "/dev/disk/by-id/new-lun is no longer in sync in /dev/md100; not stopping it")
    assert STOP not in sc.mutations() and host.md_array("/dev/md100") is not None
    assert record_of(host)["target"]["path"] == NEW  # recorded before the target failed
    again = sc.one_pass(spec)
    assert "failed in /dev/md100" in blocked(again)
    assert [s.key for s in again.plan.steps] == ["ledger:clones"]  # blocked, yet forgotten:
    assert ledger(host) == []  # the split never completed: after a reboot, copied again


def test_a_stop_refused_by_md_is_retried_without_recording_again(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    sc.one_pass(spec)
    host.clock.advance(20)
    busy = ("mdadm: Cannot get exclusive access to /dev/md100:Perhaps a running process, "
            "mounted filesystem or active volume group?\n")
    for _ in range(5):  # something opens the array between observation and stop
        host.fail_next(STOP, 1, busy)
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_ERROR
    assert [c for c in sc.mutations() if c == STOP] == [STOP] * 5  # busy: retried with backoff
    assert "Cannot get exclusive access" in r.error
    recorded = ledger(host)
    done = len(sc.mutations())
    assert sc.converge(spec).exit_code == 0
    assert sc.mutations()[done:] == [STOP]  # the record stands; only the stop is retried
    assert ledger(host) == recorded
    sc.assert_settled(spec)


# -- a completed copy is never written again unless a new recopy value asks -------------------

VG_ONLY = """
    [vg.data]
    nodes = ["node-1"]
    pvs = ["/dev/vdd"]
    """


def split_and_live_on_the_target(sc, host, spec):
    """Clone, split, then the workload lives on the target (a raw-disk user: no mount)."""
    assert sc.converge(spec).exit_code == 0 and same_content(host)
    host.write("/dev/vdb", 3, b"new life on the target")
    return host.fingerprint("/dev/vdb")


def test_asking_to_mirror_again_after_a_split_is_blocked_until_a_new_recopy_value(scenario):
    host = clone_host()
    sc = scenario(host)
    target = split_and_live_on_the_target(sc, host, sc.spec(clone_spec("split")))
    host.fill("/dev/vda", "newer data")
    done = len(sc.mutations())
    reason = blocked(sc.one_pass(sc.spec(clone_spec("mirrored"))))
    assert 'the spec now asks for state = "mirrored", which copies again' in reason
    assert sc.mutations()[done:] == [] and host.fingerprint("/dev/vdb") == target
    spec = sc.spec(clone_spec("mirrored", 'recopy = "2"'))
    r = sc.one_pass(spec)
    # the record stays until md writes the target (it protects the target if the request
    # is withdrawn before that); "2" is marked used before the add
    assert [s.key for s in r.plan.steps] == ["clone:db:build", "ledger:clones", "clone:db:add"]
    assert sc.mutations()[done:] == [BUILD, *WRITE_LEDGER, ADD]
    assert ledger(host) != []
    sc.one_pass(spec)
    assert sc.mutations()[done:] == [BUILD, *WRITE_LEDGER, ADD, *WRITE_LEDGER]
    assert ledger(host) == []
    assert sc.converge(spec).exit_code == 0 and same_content(host)
    sc.assert_settled(spec)


def test_a_clone_declared_again_after_leaving_the_spec_is_blocked_then_recopied_once(scenario):
    """Issue 8 (1a): on main, the clone declared again exits 0 with the stale target
    reported in sync."""
    host = clone_host()
    host.add_device("/dev/vdd", 64 * M)
    sc = scenario(host)
    split = sc.spec(clone_spec("split") + VG_ONLY)
    target = split_and_live_on_the_target(sc, host, split)
    recorded = record_of(host)
    # the clone leaves the spec: its record stays, marked, and keeps protecting the target
    assert sc.converge(sc.spec(VG_ONLY)).exit_code == 0
    assert ledger(host) == [{**recorded, "declared": False}]
    host.fill("/dev/vda", "newer data")
    source = host.fingerprint("/dev/vda")
    done = len(sc.mutations())
    again = sc.one_pass(split)
    reason = blocked(again)
    assert reason.startswith(
        f"the target {NEW} (serial:sim-vdb) holds a completed copy of {OLD} (serial:sim-vda) "
        f"made by clone db at 1970-01-01 00:00:20 UTC; clone db has left the spec (or named "
        f"other devices) since, so this is a new declaration. A completed copy is never "
        f'overwritten on its own: set recopy = "<a new value, e.g. today\'s date>" in clone '
        f"db to copy {OLD} onto it again (which overwrites it)")
    assert sc.mutations()[done:] == [] and host.fingerprint("/dev/vdb") == target
    assert sc.one_pass(split).exit_code == controller.EXIT_ERROR  # still, every pass
    # a new recopy value: copied again from the source, once
    recopy = sc.spec(clone_spec("split", 'recopy = "2024-06-01"') + VG_ONLY)
    assert sc.converge(recopy).exit_code == 0
    assert sc.mutations()[done:] == [BUILD, *WRITE_LEDGER, ADD, *WRITE_LEDGER, *WRITE_LEDGER,
                                     *WRITE_LEDGER, STOP]
    assert host.fingerprint("/dev/vdb") == source == host.fingerprint("/dev/vda")
    assert (record_of(host)["recopy"], record_of(host)["declared"]) == ("2024-06-01", True)
    # the same value later: no new copy, whatever happens to the source or the target
    host.write("/dev/vdb", 5, b"the target lives on")
    host.fill("/dev/vda", "even newer data")
    target = host.fingerprint("/dev/vdb")
    done = len(sc.mutations())
    sc.assert_settled(recopy)
    assert sc.converge(sc.spec(VG_ONLY)).exit_code == 0  # leaves and comes back: blocked
    assert 'recopy = "2024-06-01" was already used for that copy' in blocked(sc.one_pass(recopy))
    assert [m for m in sc.mutations()[done:] if m[0] != "dd"] == WRITE_LEDGER[:1] + WRITE_LEDGER[2:]
    assert host.fingerprint("/dev/vdb") == target


def test_a_respelled_target_is_the_same_split_target(scenario):
    """Issue 8 (1b): on main, respelling the target (by-id -> /dev/vdb) rebuilds the array
    over the live target."""
    host = clone_host()
    sc = scenario(host)
    target = split_and_live_on_the_target(sc, host, sc.spec(clone_spec("split")))
    done = len(sc.mutations())
    respelled = sc.spec(clone_spec("split").replace(NEW, "/dev/vdb"))
    r = sc.one_pass(respelled)
    assert r.exit_code == 0 and not r.plan.steps and not r.final.blocked, str(r.final)
    assert sc.mutations()[done:] == [] and host.fingerprint("/dev/vdb") == target
    sc.assert_settled(respelled)
    assert ledger(host)[0]["target"]["path"] == NEW  # as spelt when the copy was made


def test_a_renamed_clone_is_blocked_over_the_split_target(scenario):
    """Issue 8 (1b): on main, renaming the clone rebuilds the array over the live target."""
    host = clone_host()
    sc = scenario(host)
    target = split_and_live_on_the_target(sc, host, sc.spec(clone_spec("split")))
    done = len(sc.mutations())
    renamed = sc.spec(clone_spec("split").replace("[clone.db]", "[clone.db-new]"))
    r = sc.one_pass(renamed)
    assert r.exit_code == controller.EXIT_ERROR
    reason, = [b.reason for b in r.final.blocked if b.object == "clone db-new"]
    assert "made by clone db at" in reason
    assert "clone db-new is not the clone that made it" in reason
    assert sc.mutations()[done:] == WRITE_LEDGER  # only: the old record marked as undeclared
    assert record_of(host)["declared"] is False
    assert host.fingerprint("/dev/vdb") == target
    back = blocked(sc.one_pass(sc.spec(clone_spec("split"))))  # the old name, declared again
    assert back.startswith(f"the target {NEW} (serial:sim-vdb) holds a completed copy")
    assert host.fingerprint("/dev/vdb") == target


def test_a_format_1_ledger_keeps_protecting_its_targets(scenario):
    """A ledger written by the previous version (by clone name and path spelling) is read,
    identified and rewritten; its split clone stays split, and a renamed clone is blocked."""
    host = clone_host()
    host.md.dirs.add("/var/lib/reconciler")
    host.md.files[LEDGER] = json.dumps({"format": 1, "clones": {"db": {
        "source": OLD, "target": NEW, "md": "/dev/md100", "split_at": 24.0}}})
    host.write("/dev/vdb", 3, b"the target's own life")
    target = host.fingerprint("/dev/vdb")
    sc = scenario(host)
    spec = sc.spec(clone_spec("split"))
    r = sc.one_pass(spec)
    assert [s.key for s in r.plan.steps] == ["ledger:clones"] and r.exit_code == 0
    assert sc.mutations() == WRITE_LEDGER
    assert ledger(host) == [{"source": {"id": "serial:sim-vda", "path": OLD},
                             "target": {"id": "serial:sim-vdb", "path": NEW}, "size": 64 * M,
                             "clone": "db", "md": "/dev/md100", "split_at": 24.0,
                             "recopy": "", "declared": True, "split": True}]
    sc.assert_settled(spec)
    renamed = sc.one_pass(sc.spec(clone_spec("split").replace("[clone.db]", "[clone.x]")))
    assert "clone x is not the clone that made it" in renamed.final.blocked[0].reason
    assert BUILD not in sc.mutations() and host.fingerprint("/dev/vdb") == target


def test_two_clones_naming_one_disk_by_two_paths_are_refused(scenario):
    host = clone_host()
    sc = scenario(host)
    spec = sc.spec(clone_spec("split") + """
        [clone.other]
        nodes = ["node-1"]
        source = "/dev/vdc"
        target = "/dev/vdb"
        md = "/dev/md101"
        """)
    r = sc.one_pass(spec)
    assert r.exit_code == controller.EXIT_ERROR and sc.mutations() == []
    assert sorted(b.object for b in r.final.blocked) == ["clone db", "clone other"]
    assert f"/dev/vdb is the same device as {NEW} of clone db (serial:sim-vdb)" in \
        [b.reason for b in r.final.blocked if b.object == "clone other"][0]


def test_clones_and_vgs_in_one_spec_settle_with_one_process(scenario):
    host = clone_host()
    host.add_device("/dev/vdd", 256 * M)
    sc = scenario(host)
    spec = sc.spec(clone_spec("split") + """
        [vg.data]
        nodes = ["node-1"]
        pvs = ["/dev/vdd"]
        [vg.data.lv.logs]
        size = "32M"
        """)
    assert sc.converge(spec).exit_code == 0
    assert ("vgcreate", "data", "/dev/vdd") in sc.mutations() and STOP in sc.mutations()
    sc.assert_settled(spec)


def test_a_recopy_value_used_before_never_copies_again_after_a_revert(scenario):
    """Issue 17 (14): the ledger kept only the last recopy value, so a Git revert to an
    earlier value copied over the split target that the later copy had handed over."""
    host = clone_host()
    sc = scenario(host)
    first = sc.spec(clone_spec("split", 'recopy = "2024-06-01"'))
    split_and_live_on_the_target(sc, host, first)
    host.fill("/dev/vda", "newer data")
    second = sc.spec(clone_spec("split", 'recopy = "2024-06-02"'))
    target = split_and_live_on_the_target(sc, host, second)
    assert record_of(host)["recopy"] == "2024-06-02"
    assert json.loads(host.md.files[LEDGER])["recopies_used"] == {
        "serial:sim-vdb": ["2024-06-01", "2024-06-02"]}
    host.fill("/dev/vda", "even newer data")
    done = len(sc.mutations())
    reverted = sc.spec(clone_spec("split", 'recopy = "2024-06-01"'))
    reason = blocked(sc.one_pass(reverted))
    assert 'recopy = "2024-06-01" was already used for an earlier copy onto this target' in reason
    assert "2024-06-01, 2024-06-02" in reason
    assert ADD not in sc.mutations()[done:] and BUILD not in sc.mutations()[done:]
    assert host.fingerprint("/dev/vdb") == target
    assert sc.one_pass(reverted).exit_code == controller.EXIT_ERROR  # every pass
    assert host.fingerprint("/dev/vdb") == target
    # a value never used still asks once
    assert sc.converge(sc.spec(clone_spec("split", 'recopy = "2024-06-03"'))).exit_code == 0
    assert same_content(host)


def test_a_recopy_value_whose_copy_ran_is_used_once_even_if_the_spec_was_reverted_meanwhile(
        scenario):
    """Issue 17 (14), review: a copy asked by a new recopy value kept the old record until
    the sync replaced it, and nothing recorded the new value as used before that. Reverted
    while md writes the target (a quick Git revert), the copy completed under the old value's
    record, and the new value was in neither the record nor recopies_used: re-applying it
    later copied over the target again, after the second split handed it to its user. The
    value is now recorded, with a "running" mark, before ``mdadm --add``."""
    host = clone_host()
    sc = scenario(host)
    v1 = sc.spec(clone_spec("split", 'recopy = "v1"'))
    split_and_live_on_the_target(sc, host, v1)
    host.fill("/dev/vda", "newer data")
    v2 = sc.spec(clone_spec("split", 'recopy = "v2"'))
    done = len(sc.mutations())
    sc.one_pass(v2)  # the v2 copy starts: md writes the target
    assert sc.mutations()[done:] == [BUILD, *WRITE_LEDGER, ADD]  # recorded before the add
    doc = json.loads(host.md.files[LEDGER])
    assert doc["recopies_used"] == {"serial:sim-vdb": ["v1", "v2"]}
    assert doc["recopy_running"] == {"serial:sim-vdb": "v2"}
    assert sc.converge(v1).exit_code == 0  # reverted while it runs: the copy completes, split
    assert "recopy_running" not in json.loads(host.md.files[LEDGER])  # the mark did its job
    host.write("/dev/vdb", 3, b"life after the second split")
    target = host.fingerprint("/dev/vdb")
    done = len(sc.mutations())
    reason = blocked(sc.one_pass(v2))  # the revert reverted: "v2" asked its copy already
    assert 'recopy = "v2" was already used for an earlier copy onto this target' in reason
    assert ADD not in sc.mutations()[done:] and BUILD not in sc.mutations()[done:], \
        f"v2 copied a second time: {sc.mutations()[done:]}"
    assert host.fingerprint("/dev/vdb") == target


CRASH_AT = ["before the add", "after the add"]


def _crash_between_the_mark_and_the_add(sc, host, at):
    """Split with "v1", the target lived on; "v2" asks a new copy and the host dies right
    after the ledger (with v2's mark) is written, before ``mdadm --add`` or right after it
    (the same ledger either way: the pass never saw md write the target)."""
    v1 = sc.spec(clone_spec("split", 'recopy = "v1"'))
    target = split_and_live_on_the_target(sc, host, v1)
    host.fill("/dev/vda", "newer data")
    v2 = sc.spec(clone_spec("split", 'recopy = "v2"'))
    added = at == "after the add"
    host.crash_after(1 + len(WRITE_LEDGER) + added)
    with pytest.raises(SimulatedCrash):
        sc.one_pass(v2)
    assert sc.mutations()[-len(WRITE_LEDGER) - 1 - added:] == [BUILD, *WRITE_LEDGER] + [ADD] * added
    host.recover()
    assert host.md_array("/dev/md100") is None
    assert added or host.fingerprint("/dev/vdb") == target
    assert json.loads(host.md.files[LEDGER])["recopy_running"] == {"serial:sim-vdb": "v2"}
    return v1, v2, host.fingerprint("/dev/vdb")


@pytest.mark.parametrize("at", CRASH_AT)
def test_a_crash_between_the_recopy_mark_and_the_add_completes_the_copy_asked(scenario, at):
    """The value marked as running still asks its copy after the crash (it is not spent
    without a copy): rebuilt from the source, added, split, recorded as v2's."""
    host = clone_host()
    sc = scenario(host)
    _, v2, _ = _crash_between_the_mark_and_the_add(sc, host, at)
    done = len(sc.mutations())
    assert sc.converge(v2).exit_code == 0
    assert [m for m in sc.mutations()[done:] if m[0] == "mdadm"] == [BUILD, ADD, STOP]
    assert same_content(host) and record_of(host)["recopy"] == "v2"
    doc = json.loads(host.md.files[LEDGER])
    assert doc["recopies_used"] == {"serial:sim-vdb": ["v1", "v2"]}
    assert "recopy_running" not in doc
    sc.assert_settled(v2)


@pytest.mark.parametrize("at", CRASH_AT)
def test_a_crash_between_the_recopy_mark_and_the_add_then_a_revert_blocks_never_copies(
        scenario, at):
    """Reverted after such a crash: the ledger cannot tell whether md had begun writing the
    target, so the record of v1's copy is not trusted as complete, and nothing is copied
    that the spec does not ask: blocked, with the way out (ask v2 again: its copy, once)."""
    host = clone_host()
    sc = scenario(host)
    v1, v2, target = _crash_between_the_mark_and_the_add(sc, host, at)
    done = len(sc.mutations())
    reason = blocked(sc.one_pass(v1, fresh_memory=True))
    assert 'a copy asked by recopy = "v2" was starting' in reason
    assert 'set recopy = "v2" again' in reason
    assert sc.mutations()[done:] == [] and host.fingerprint("/dev/vdb") == target
    assert sc.one_pass(v1).exit_code == controller.EXIT_ERROR  # every pass, nothing written
    assert host.fingerprint("/dev/vdb") == target
    assert sc.converge(v2).exit_code == 0 and same_content(host)
    assert record_of(host)["recopy"] == "v2"
    sc.assert_settled(v2)


def test_a_value_in_the_spec_when_the_first_copy_started_is_used_too(scenario):
    """A recopy value asks once from the moment a copy starts with it, the first copy
    included: the first copy starts with recopy = "2024-06-01", the value is changed to
    "2024-06-02" while it runs, the copy is recorded with "2024-06-02" and split, the
    target's user writes it; a spec reverted to "2024-06-01" must not copy again (found by
    the md clone random walk, seed 17: the revert overwrote the split target)."""
    host = clone_host()
    sc = scenario(host)
    r = sc.one_pass(sc.spec(clone_spec("split", 'recopy = "2024-06-01"')))
    assert [s.key for s in r.plan.steps][-1] == "clone:db:add"
    host.clock.advance(4)  # the copy runs
    assert sc.converge(sc.spec(clone_spec("split", 'recopy = "2024-06-02"'))).exit_code == 0
    assert record_of(host)["split"] and record_of(host)["recopy"] == "2024-06-02"
    host.write("/dev/vdb", 3, b"the target's user")
    target = host.fingerprint("/dev/vdb")
    done = len(sc.mutations())
    reason = blocked(sc.one_pass(sc.spec(clone_spec("split", 'recopy = "2024-06-01"'))))
    assert 'recopy = "2024-06-01" was already used for an earlier copy' in reason
    assert [m for m in sc.mutations()[done:] if m[0] == "mdadm"] == []
    assert host.fingerprint("/dev/vdb") == target
