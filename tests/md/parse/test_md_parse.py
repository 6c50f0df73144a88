"""The md parsers and error classifier on outputs recorded from real md (Linux 6.1, mdadm
4.2; see the INDEX.md files beside the fixtures for how each was produced)."""

from __future__ import annotations

import json

import pytest
from support import M
from support.mdfix import CLONE, MD, FixtureRunner, blocks, command, stdout, virtio

from reconciler import errors, observing
from reconciler.adapters import md
from reconciler.spec import models

MDSTAT = "cat /proc/mdstat"


def test_every_recorded_mdstat_parses():
    files = sorted(CLONE.glob("*.txt")) + sorted(MD.glob("*.txt"))
    assert len(files) >= 10
    for path in files:
        md.parse_mdstat(blocks(path)[MDSTAT][1])


def test_built_array_is_auto_read_only_with_one_member():
    arr = md.parse_mdstat(stdout("built", MDSTAT))["md100"]
    assert arr.read_only == "auto-read-only" and arr.level == "raid1"
    assert arr.members == (("vda", 0, ""),)
    assert (arr.blocks, arr.metadata, arr.action) == (65536, "none", "")


def test_recovery_progress_from_mdstat():
    arr = md.parse_mdstat(stdout("recovering", MDSTAT))["md100"]
    assert arr.members == (("vda", 0, ""), ("vdb", 2, ""))
    assert (arr.action, arr.done_kib, arr.total_kib, arr.speed_kib) == ("recovery", 7040, 65536, 1408)


def test_persistent_array_beside_a_clone_and_a_faulty_member():
    arrays = md.parse_mdstat(stdout("two_arrays", MDSTAT))
    assert sorted(arrays) == ["md100", "md5"]
    assert arrays["md5"].metadata == "1.2" and arrays["md5"].action == "resync"
    assert (arrays["md5"].done_kib, arrays["md5"].total_kib) == (18432, 31744)
    faulty = md.parse_mdstat(stdout("target_faulty", MDSTAT))["md100"]
    assert faulty.members == (("vda", 0, ""), ("vdb", 2, "F")) and faulty.action == ""


def test_no_array_and_the_lab_recordings_of_record_fixtures():
    assert md.parse_mdstat(stdout("stopped", MDSTAT)) == {}
    assert md.parse_mdstat("") == {}
    arr = md.parse_mdstat(blocks(MD / "recovering.txt")[MDSTAT][1])["md0"]
    assert (arr.done_kib, arr.total_kib, arr.speed_kib) == (18432, 262144, 4608)


def test_mdstat_that_cannot_be_placed_is_an_error():
    with pytest.raises(ValueError):
        md.parse_mdstat("Personalities : [raid1] \nmd0 : dancing raid1 vda[0]\n")
    with pytest.raises(ValueError):
        md.parse_mdstat("Personalities : \ngarbage\n")


def test_sysfs_values():
    sysfs = "/sys/block/md100/md"
    assert md.parse_sync_completed(stdout("recovering", f"cat {sysfs}/sync_completed")) == (
        8320 * 512, 131072 * 512)
    assert md.parse_sync_completed(stdout("in_sync", f"cat {sysfs}/sync_completed")) is None
    assert md.parse_sync_speed(stdout("recovering", f"cat {sysfs}/sync_speed")) == 1173 * 1024
    assert md.parse_sync_speed(stdout("built", f"cat {sysfs}/sync_speed")) is None
    assert md.parse_speed_limit(stdout("recovering", f"cat {sysfs}/sync_speed_max")) == (1024, True)
    assert md.parse_speed_limit(stdout("built", f"cat {sysfs}/sync_speed_min")) == (1000, False)
    assert md.parse_flags(stdout("recovering", f"cat {sysfs}/dev-vdb/state")) == ("spare",)
    assert md.parse_flags(stdout("target_faulty", f"cat {sysfs}/dev-vdb/state")) == (
        "faulty", "write_error")
    assert md.parse_slot(stdout("target_faulty", f"cat {sysfs}/dev-vdb/slot")) is None
    assert md.parse_slot(stdout("recovering", f"cat {sysfs}/dev-vdb/slot")) == 1
    assert md.parse_devno(stdout("recovering", f"cat {sysfs}/dev-vdb/block/dev")) == (254, 16)


def test_mountinfo_uevent_and_listings():
    mounts = md.parse_mountinfo(stdout("recovering_mounted", "cat /proc/self/mountinfo"))
    assert mounts[(9, 100)] == ("/mnt/md",) and mounts[(254, 64)] == ("/mnt/used",)
    assert md.parse_mountinfo("36 24 8:1 / /mnt/a\\040b rw - ext4 /dev/sda1 rw\n") == {
        (8, 1): ("/mnt/a b",)}
    ev = md.parse_uevent(stdout("source_mounted", "cat /sys/dev/block/254:112/uevent"))
    assert ev["DEVNAME"] == "vdh"
    entries = md.parse_listing(stdout("source_mounted", "ls -1 /sys/dev/block/254:112/"))
    assert md.partitions("vdh", entries) == ("vdh1",)
    assert md.partitions("nvme0n1", ("nvme0n1p1", "nvme0n1p2", "holders")) == ("nvme0n1p1", "nvme0n1p2")
    assert md.parse_listing(stdout("recovering", "ls -1 /sys/dev/block/254:0/holders")) == ("md100",)
    assert md.parse_listing(None) == ()


@pytest.mark.parametrize("case,kind", [
    ("build_source_mounted", errors.FailureKind.BUSY),
    ("build_source_in_array", errors.FailureKind.BUSY),
    ("build_exists", errors.FailureKind.FATAL),
    ("build_source_missing", errors.FailureKind.NOT_FOUND),
    ("add_too_small", errors.FailureKind.FATAL),
    ("add_held_by_dm", errors.FailureKind.BUSY),
    ("add_mounted", errors.FailureKind.BUSY),
    ("add_partition_mounted", errors.FailureKind.BUSY),
    ("add_absent", errors.FailureKind.NOT_FOUND),
    ("stop_busy", errors.FailureKind.BUSY),
    ("stop_absent", errors.FailureKind.NOT_FOUND),
    ("tee_absent", errors.FailureKind.NOT_FOUND),
    ("tee_invalid", errors.FailureKind.FATAL),
])
def test_classify_recorded_failures(case, kind):
    rec = command(case)
    assert rec.rc != 0
    assert md.classify(rec.result()) is kind
    err = md.failure(rec.result())
    assert err.kind is kind and rec.stderr.strip().splitlines()[-1] in str(err)


def test_builders_are_the_recorded_argv():
    assert md.build("/dev/md100", "/dev/vda").argv == command("build").argv
    assert md.add("/dev/md100", "/dev/vdb").argv == command("add").argv
    assert md.stop("/dev/md100").argv == command("stop").argv
    tee = md.set_sync_speed("/dev/md100", "max", 1024)
    rec = command("tee_speed_max")
    assert (tee.argv, tee.input) == (rec.argv, rec.stdin) and tee.mutates
    for case in ("build", "add", "stop", "tee_speed_max", "tee_speed_min"):
        assert command(case).rc == 0


def test_ledger_round_trip_and_damage():
    from reconciler.state import CloneRecord
    rec = CloneRecord(clone="db", source="/dev/vda", target="/dev/disk/by-id/virtio-d1",
                      md="/dev/md100", split_at=12.5, source_id="serial:d0",
                      target_id="serial:d1", size=64 * M, recopy="2024-06-01", declared=False)
    text = md.ledger_text({rec.key: rec})
    assert md.parse_ledger("/x", text).records == {"serial:d1": rec}
    assert not md.parse_ledger("/x", text).legacy
    assert md.parse_ledger("/x", None).records == {} and md.parse_ledger("/x", None).problem is None
    one = json.dumps(json.loads(text)["copies"][0])
    for bad in ("{", "[]", '{"format": 3, "copies": []}', '{"format": 1, "clones": {"a": {}}}',
                '{"format": 2, "copies": [{}]}', text.replace('"declared": false', '"declared": 0'),
                text.replace("67108864", '"64M"'), f'{{"format": 2, "copies": [{one}, {one}]}}'):
        assert md.parse_ledger("/x", bad).problem.startswith("/x cannot be read"), bad
    cmds = md.write_ledger("/var/lib/reconciler/clones.json", text)
    assert [c.argv[0] for c in cmds] == ["mkdir", "dd", "mv", "sync", "sync"]
    assert cmds[4].argv == ("sync", "/var/lib")
    assert cmds[1].input == text and cmds[2].argv[-1] == "/var/lib/reconciler/clones.json"


def test_ledger_keeps_every_recopy_value_used_and_reads_files_without_them():
    from reconciler.state import CloneRecord
    rec = CloneRecord(clone="db", source="/dev/vda", target="/dev/vdb", md="/dev/md100",
                      split_at=1.0, source_id="serial:d0", target_id="serial:d1",
                      recopy="2024-06-02")
    text = md.ledger_text({rec.key: rec}, {"serial:d1": ("2024-06-01",)})
    ledger = md.parse_ledger("/x", text)
    assert ledger.used == {"serial:d1": ("2024-06-01",)}
    assert ledger.used_for("serial:d1") == ("2024-06-01", "2024-06-02")
    before = md.ledger_text({rec.key: rec})  # the format written before issue 17
    assert "recopies_used" not in before and md.parse_ledger("/x", before).used == {}
    assert md.parse_ledger("/x", before).used_for("serial:d1") == ("2024-06-02",)
    for bad in ('"recopies_used": []', '"recopies_used": {"serial:d1": "2024-06-01"}',
                '"recopies_used": {"serial:d1": [""]}'):
        damaged = text.replace('"recopies_used": {', bad + ', "x": {')
        assert md.parse_ledger("/x", damaged).problem.startswith("/x cannot be read"), bad


def test_ledger_keeps_the_mark_of_a_recopy_started_and_reads_files_without_it():
    from reconciler.state import CloneRecord
    rec = CloneRecord(clone="db", source="/dev/vda", target="/dev/vdb", md="/dev/md100",
                      split_at=1.0, source_id="serial:d0", target_id="serial:d1", recopy="v1")
    text = md.ledger_text({rec.key: rec}, {"serial:d1": ("v1", "v2")}, {"serial:d1": "v2"})
    ledger = md.parse_ledger("/x", text)
    assert (ledger.running, ledger.used_for("serial:d1")) == ({"serial:d1": "v2"}, ("v1", "v2"))
    assert ledger.records == {"serial:d1": rec}
    today = md.ledger_text({rec.key: rec}, {"serial:d1": ("v0",)})  # written without the mark
    assert "recopy_running" not in today
    assert md.parse_ledger("/x", today).running == {}
    assert md.parse_ledger("/x", today).used == {"serial:d1": ("v0",)}
    for bad in ('"recopy_running": []', '"recopy_running": {"serial:d1": ["v2"]}',
                '"recopy_running": {"serial:d1": ""}'):
        damaged = text.replace('"recopy_running": {', bad + ', "x": {')
        assert md.parse_ledger("/x", damaged).problem.startswith("/x cannot be read"), bad


def test_a_format_1_ledger_is_still_read():
    """What main wrote before identities (a record per clone name, paths only)."""
    old = ('{\n  "clones": {\n    "db": {\n      "md": "/dev/md100",\n      "source": '
           '"/dev/disk/by-id/old-lun",\n      "split_at": 24.0,\n      "target": '
           '"/dev/disk/by-id/new-lun"\n    }\n  },\n  "format": 1\n}\n')
    ledger = md.parse_ledger("/x", old)
    assert ledger.legacy and ledger.problem is None
    rec, = ledger.records.values()
    assert (rec.key, rec.clone, rec.source, rec.split_at, rec.target_id, rec.declared) == (
        "path:/dev/disk/by-id/new-lun", "db", "/dev/disk/by-id/old-lun", 24.0, "", True)


def _observe(state, files=None, ledger="/var/lib/reconciler/clones.json", **clone):
    want = {"nodes": ["n"], "source": "/dev/vda", "target": "/dev/vdb", "md": "/dev/md100"}
    want.update(clone)
    spec = models.Spec.model_validate({"clone": {"c": want}})
    runner = FixtureRunner(state, files=files or {})
    st = observing.observe(runner, host="local", devices=observing.spec_devices(spec),
                           resolve=virtio, md_targets=observing.md_targets(spec, ledger))
    return st, runner


def test_observation_of_a_recovering_clone_reads_files_only():
    st, runner = _observe("recovering")
    arr = st.md["md100"]
    assert arr.is_non_persistent and arr.level == "raid1" and arr.raid_disks == 2
    assert [(m.name, m.devno, m.slot, m.flags) for m in arr.members] == [
        ("vda", (254, 0), 0, ("in_sync",)), ("vdb", (254, 16), 1, ("spare",))]
    assert (arr.sync_action, arr.degraded, arr.array_state) == ("recover", 1, "clean")
    assert arr.sync_done == 7040 * 1024 and arr.sync_total == 64 * M  # mdstat: fresher
    assert arr.sync_percent == pytest.approx(10.74, abs=0.01)
    assert arr.sync_speed == 1173 * 1024  # sysfs sync_speed, md's recent average
    assert arr.sync_eta == pytest.approx((64 * M - 7040 * 1024) / (1173 * 1024))
    assert arr.speed_min == (512, True) and arr.speed_max == (1024, True)
    assert arr.mounts == () and arr.holders == ()
    src, dst = st.blockdevs["/dev/vda"], st.blockdevs["/dev/vdb"]
    assert (src.name, src.size, src.holders, src.mounts) == ("vda", 64 * M, ("md100",), ())
    assert (dst.name, dst.size, dst.holders) == ("vdb", 64 * M, ("md100",))
    assert (src.identity, dst.identity) == ("serial:d0", "serial:d1")  # virtio serials
    assert st.ledger.records == {} and st.ledger.problem is None
    assert "/var/lib/reconciler/clones.json" in runner.reads


def test_observation_of_devices_in_use_and_partitions():
    st, _ = _observe("source_mounted", target="/dev/vdh")
    assert st.md == {}
    assert st.blockdevs["/dev/vda"].mounts == ("/mnt/src",)
    assert st.blockdevs["/dev/vdh"].mounts == ("/mnt/part (vdh1)",)
    st, _ = _observe("source_mounted", source="/dev/vdd", target="/dev/vde")
    assert st.blockdevs["/dev/vdd"].holders == ("dm-0",)
    assert st.blockdevs["/dev/vde"].mounts == ("/mnt/used",)
    st, _ = _observe("source_mounted", target="/dev/vdz")
    assert not st.blockdevs["/dev/vdz"].exists


def test_observation_of_mounted_faulty_and_unmanaged_arrays():
    st, _ = _observe("recovering_mounted")
    assert st.md["md100"].mounts == ("/mnt/md",)
    st, _ = _observe("target_faulty")
    arr = st.md["md100"]
    assert arr.member((254, 16)).is_faulty and arr.member((254, 16)).slot is None
    assert arr.sync_action == "idle" and arr.sync_percent is None
    assert st.md["md5"].metadata == "1.2"  # not named by the clone: mdstat only
    st, _ = _observe("in_sync", files={"/l": md.ledger_text({})}, ledger="/l")
    assert st.md["md100"].member((254, 16)).is_in_sync and st.md["md100"].degraded == 0
    assert st.ledger.records == {} and st.ledger.problem is None


def _recorded_identity(devno: tuple[int, int], size: int | None = None) -> str:
    recorded = blocks(MD / "identity" / "identity.txt")

    def read(path: str) -> str | None:
        rc, out, _ = recorded[f"cat {path}"]  # every read must have been recorded
        return out if rc == 0 else None

    return observing._identity(read, f"/sys/dev/block/{devno[0]}:{devno[1]}", devno, size)


def test_device_identities_from_recorded_sysfs():
    """Who a device is, from the files a real guest shows (no process): a virtio disk by its
    serial, an LV by its device-mapper uuid, a partition by its disk and number, a
    persistent array by its uuid; a disk qemu gave no serial, and an array built without
    superblock (a new random uuid at each build), only by device number and size."""
    assert _recorded_identity((254, 0)) == "serial:d0"
    assert _recorded_identity((254, 112)) == "serial:d7"
    assert _recorded_identity((253, 0)) == ("dm-uuid:LVM-WhHduILF7yt6CdmClVzI2nprBr8RLGdy8Eybtv"
                                           "J42h7RfSDXjZfxEHc84YiOCzsJ")
    assert _recorded_identity((254, 113)) == "serial:d7/part1"
    assert _recorded_identity((9, 5)) == "md-uuid:0cacc333-501a-f172-7a33-edfe5a1411cf"
    assert _recorded_identity((254, 128), 32 * M) == "devno:254:128,size:33554432"
    assert _recorded_identity((9, 100), 64 * M) == "devno:9:100,size:67108864"


def test_the_ledger_is_read_even_without_clones_and_old_records_are_identified():
    """A record must see its clone leave the spec; a format-1 record's paths are observed so
    that planning can give it identities."""
    old = ('{"format": 1, "clones": {"db": {"source": "/dev/vda", "target": "/dev/vdb", '
           '"md": "/dev/md100", "split_at": 24.0}}}')
    runner = FixtureRunner("stopped", files={"/l": old})
    st = observing.observe(runner, host="local", devices=[], resolve=virtio,
                           md_targets=observing.md_targets(models.Spec(), "/l"))
    assert st.ledger.legacy and st.md == {}
    assert {p: d.identity for p, d in st.blockdevs.items()} == {"/dev/vda": "serial:d0",
                                                                "/dev/vdb": "serial:d1"}
    assert "/proc/mdstat" not in runner.reads
    runner = FixtureRunner("stopped")
    st = observing.observe(runner, host="local", devices=[], resolve=virtio,
                           md_targets=observing.md_targets(models.Spec(), "/l"))
    assert runner.reads == ["/l"] and st.ledger.records == {} and st.blockdevs == {}
