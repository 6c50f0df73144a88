"""The simulated host's md against the lab's recordings (tests/fixtures/outputs/md/clone).

The recorded scenario is replayed on a simulated host with the guest's disks: every
recorded command must give the recorded exit code, stdout and stderr byte for byte, and
the kernel files the observer reads must read the same in each recorded state (numbers of
a running recovery aside, which depend on timing: there the layout is compared). Each test
compares exactly the recordings it claims in ``SCENARIOS`` (a missing one fails it);
tests/simulate/test_fixture_coverage.py checks every recording is claimed.
"""

from __future__ import annotations

import re

import pytest
from support import M
from support.mdfix import CLONE, MD, blocks, command

from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command
from reconciler.simulate import SimulatedHost

SYS = "/sys/block/md100/md"
STABLE = ["array_state", "level", "raid_disks", "metadata_version", "sync_action",
          "sync_completed", "degraded", "sync_speed", "sync_speed_min", "sync_speed_max",
          "component_size"]


def lab_host() -> SimulatedHost:
    host = SimulatedHost(rate_bytes_per_s=64 * M)
    for name, size in zip("abcdefgh", (64, 64, 32, 64, 64, 32, 32, 64)):
        host.add_device(f"/dev/vd{name}", size * M)
    host.mount("/dev/vda", "/mnt/src")
    host.mount("/dev/vde", "/mnt/used")
    host.add_vg("vgx", ["/dev/vdd"])
    host.add_lv("vgx", "l", 8 * M)
    host.mount(host.add_partition("/dev/vdh", 1, 32 * M), "/mnt/part")
    return host


OUTPUTS = MD.parent
# The recordings each test compares, relative to tests/fixtures/outputs.
CLONE_COMMANDS = (
    "build_source_mounted", "build_source_missing", "tee_absent", "build", "build_exists",
    "build_source_in_array", "tee_speed_max", "tee_speed_min", "add_too_small", "add_held_by_dm",
    "add_mounted", "add_partition_mounted", "add_target_missing", "tee_invalid", "add",
    "stop_busy", "add_again", "tee_speed_system", "stop", "stop_absent", "add_absent",
    "detail_export_absent")
SCENARIOS: dict[str, frozenset[str]] = {
    "clone": frozenset({f"md/clone/commands/{c}.txt" for c in CLONE_COMMANDS} | {
        f"md/clone/{s}.txt" for s in ("source_mounted", "built", "recovering",
                                      "recovering_mounted", "in_sync", "stopped")}),
    "faulty": frozenset({"md/clone/target_faulty.txt", "md/clone/commands/stop_degraded.txt"}),
    "md": frozenset({f"md/{s}.txt" for s in ("build_degraded", "recovering", "in_sync")} | {
        f"md/commands/{c}.txt" for c in ("build", "add", "stop")}),
}
# Recorded, not modelled (the simulator refuses what made them: test_unmodelled_forms_are_refused;
# the md parsers read them in test_md_parse.py).
NOT_MODELLED = {
    "md/clone/two_arrays.txt": "a persistent array (mdadm --create) beside the clone",
    "md/commands/wait_nothing_to_wait.txt": "mdadm --wait: the reconciler never waits in mdadm",
}
COMPARES = frozenset().union(*SCENARIOS.values(), NOT_MODELLED,
                             {"md/identity/identity.txt"})  # by test_the_simulated_identity_files_read_as_recorded
# Kernel files recorded by tests/lab/record_fixtures.py that the observer never reads and the
# simulator does not model: reading them must fail loudly, not pass quietly.
UNMODELLED_FILES = ("/errors", "/sys/block/md0/md/")


def replay(host: SimulatedHost, case: str, compared: list[str] | None = None,
           where=CLONE) -> None:
    rec = command(case, where)
    res = host.run(Command(argv=rec.argv, input=rec.stdin))
    assert (res.rc, res.stdout, res.stderr) == (rec.rc, rec.stdout, rec.stderr), case
    if compared is not None:
        compared.append(str((where / "commands" / f"{case}.txt").relative_to(OUTPUTS)))


def same_files(host: SimulatedHost, state: str, skip: tuple[str, ...] = (),
               compared: list[str] | None = None, where=CLONE) -> int:
    """Compare every recorded `cat`/`ls -1` of the state the simulator models; count them."""
    count = 0
    path_of_state = where / f"{state}.txt"
    for argv, (rc, out, _) in blocks(path_of_state).items():
        verb, _, path = argv.partition(" ")
        if verb == "ls":
            path = path.removeprefix("-1 ").rstrip("/") + "/"
        elif verb != "cat" or path.endswith(skip) or path == "/proc/self/mountinfo":
            continue
        if path.endswith(UNMODELLED_FILES):
            with pytest.raises(UnsupportedCommand):
                host.read(path)
            continue
        if path.endswith("/uevent"):
            got = host.read(path)
            assert dict(line.split("=") for line in got.split()).items() <= \
                dict(line.split("=") for line in out.split()).items(), path
        else:
            assert host.read(path) == (out if rc == 0 else None), (state, path)
        count += 1
    if compared is not None:
        compared.append(str(path_of_state.relative_to(OUTPUTS)))
    return count


def test_the_recorded_clone_scenario_replays_byte_for_byte():
    host = lab_host()
    done: list[str] = []
    assert same_files(host, "source_mounted", compared=done) >= 20
    for case in ("build_source_mounted", "build_source_missing", "tee_absent"):
        replay(host, case, done)
    host.umount("/mnt/src")
    replay(host, "build", done)
    assert same_files(host, "built", compared=done) >= 20
    for case in ("build_exists", "build_source_in_array", "tee_speed_max", "tee_speed_min",
                 "add_too_small", "add_held_by_dm", "add_mounted", "add_partition_mounted",
                 "add_target_missing", "tee_invalid", "add"):
        replay(host, case, done)
    running = ("sync_completed", "sync_speed", "/proc/mdstat")
    assert same_files(host, "recovering", skip=running, compared=done) > 20
    host.mount("/dev/md100", "/mnt/md")
    assert same_files(host, "recovering_mounted", skip=running, compared=done) > 20
    mine = sorted(line.split(" - ")[1] for line in host.read("/proc/self/mountinfo").splitlines()
                  if "/mnt/" in line)
    theirs = sorted(line.split(" - ")[1] for line in blocks(CLONE / "recovering_mounted.txt")[
        "cat /proc/self/mountinfo"][1].splitlines() if "/mnt/" in line)
    assert mine == theirs
    replay(host, "stop_busy", done)
    replay(host, "add_again", done)
    host.umount("/mnt/md")
    replay(host, "tee_speed_system", done)
    host.clock.advance(60)
    assert same_files(host, "in_sync", compared=done) > 20
    detail = blocks(CLONE / "in_sync.txt")["mdadm --detail --export /dev/md100"]
    assert host.run(Command(argv=("mdadm", "--detail", "--export", "/dev/md100"),
                            mutates=False)).stdout == detail[1]
    for case in ("stop", "stop_absent", "add_absent", "detail_export_absent"):
        replay(host, case, done)
    assert same_files(host, "stopped", compared=done) > 5
    assert frozenset(done) == SCENARIOS["clone"]


def test_the_lab_md_scenario_of_record_fixtures_replays():
    """tests/lab/record_fixtures.py's own md scenario (/dev/md0, `--level 1` spelt apart)."""
    host = SimulatedHost(rate_bytes_per_s=4 * M)
    host.add_device("/dev/vda", 256 * M)
    host.add_device("/dev/vdb", 256 * M)
    done: list[str] = []
    replay(host, "build", done, where=MD)
    assert same_files(host, "build_degraded", compared=done, where=MD) >= 8
    replay(host, "add", done, where=MD)
    host.clock.advance(5)
    assert same_files(host, "recovering", skip=("sync_completed", "/proc/mdstat"), compared=done,
                      where=MD) >= 8
    host.clock.advance(600)
    assert same_files(host, "in_sync", compared=done, where=MD) >= 10
    replay(host, "stop", done, where=MD)
    assert frozenset(done) == SCENARIOS["md"]


def _layout(line: str) -> str:
    return re.sub(r"\d+", "N", line)


def test_a_running_recovery_reads_like_the_kernel_s():
    recorded = blocks(CLONE / "recovering.txt")
    host = lab_host()
    host.umount("/mnt/src")
    for case in ("build", "tee_speed_max", "tee_speed_min", "add"):
        replay(host, case)
    host.clock.advance(7)
    mdstat = host.read("/proc/mdstat")
    assert [_layout(x) for x in mdstat.splitlines()] == \
        [_layout(x) for x in recorded["cat /proc/mdstat"][1].splitlines()]
    assert "recovery = 10.9% (7168/65536) finish=0.9min speed=1024K/sec" in mdstat
    assert host.read(f"{SYS}/sync_completed") == f"{7 * 2048} / 131072\n"
    assert host.read(f"{SYS}/sync_speed") == "1024\n"
    for attr in ("sync_completed", "sync_speed"):
        assert _layout(host.read(f"{SYS}/{attr}")) == _layout(recorded[f"cat {SYS}/{attr}"][1])
    mine = [line.split(" - ")[1] for line in host.read("/proc/self/mountinfo").splitlines()
            if "/mnt/" in line]
    theirs = [line.split(" - ")[1] for line in recorded["cat /proc/self/mountinfo"][1].splitlines()
              if "/mnt/" in line]
    assert sorted(mine) == sorted(theirs)


def test_a_failed_target_reads_like_the_kernel_s():
    recorded = blocks(CLONE / "target_faulty.txt")
    host = lab_host()
    host.umount("/mnt/src")
    for case in ("build", "tee_speed_max", "add"):
        replay(host, case)
    host.clock.advance(3)
    host.fail_device("/dev/vdb")
    done: list[str] = ["md/clone/target_faulty.txt"]
    for f in ("state", "slot", "block/dev"):
        path = f"{SYS}/dev-vdb/{f}"
        assert host.read(path) == recorded[f"cat {path}"][1]
    for attr in ("sync_action", "sync_completed", "sync_speed", "degraded", "array_state"):
        assert host.read(f"{SYS}/{attr}") == recorded[f"cat {SYS}/{attr}"][1], attr
    md100 = recorded["cat /proc/mdstat"][1].split("md5 :")[0]
    assert host.read("/proc/mdstat").startswith(md100)
    export = host.run(Command(argv=("mdadm", "--detail", "--export", "/dev/md100"), mutates=False))
    assert export.stdout == recorded["mdadm --detail --export /dev/md100"][1]
    replay(host, "stop_degraded", done)
    assert frozenset(done) == SCENARIOS["faulty"]


def test_a_reboot_loses_arrays_and_mounts_but_not_files():
    host = lab_host()
    host.umount("/mnt/src")
    replay(host, "build")
    host.run(Command(argv=("mkdir", "-p", "/var/lib/x")))
    host.run(Command(argv=("dd", "of=/var/lib/x/f", "conv=fsync", "status=none"), input="kept\n"))
    host.crash_after(0)
    host.recover()
    assert host.read("/proc/mdstat") is None  # the md module is not loaded any more
    assert host.read(f"{SYS}/array_state") is None
    assert "/mnt/used" not in host.read("/proc/self/mountinfo")
    assert host.read("/var/lib/x/f") == "kept\n"


@pytest.mark.parametrize("argv", [
    ("mdadm", "--create", "/dev/md1", "--level=1", "--raid-devices=2", "/dev/vdb", "/dev/vdc"),
    ("mdadm", "--build", "/dev/md1", "--level=0", "--raid-devices=2", "/dev/vdb", "missing"),
    ("mdadm", "--build", "/dev/md/x", "--level=1", "--raid-devices=2", "/dev/vdb", "missing"),
    ("mdadm", "--build", "/dev/md1", "--level=1", "--raid-devices=2", "--run", "/dev/vdb", "missing"),
    ("mdadm", "/dev/md1", "--fail", "/dev/vdb"),
    ("mdadm", "--stop", "--scan"),
    ("mdadm", "--wait", "/dev/md1"),
    ("tee", "/sys/block/md1/md/sync_action"),
    ("mkdir", "/var/lib/x"),
    ("dd", "of=/x", "status=none"),
    ("mv", "a", "b"),
])
def test_unmodelled_forms_are_refused(argv):
    host = lab_host()
    with pytest.raises(UnsupportedCommand):
        host.run(Command(argv=argv, input="1\n" if argv[0] in ("tee", "dd") else None))


def test_unmodelled_kernel_files_are_refused():
    host = lab_host()
    host.umount("/mnt/src")
    replay(host, "build")
    for path in (f"{SYS}/bitmap", "/sys/dev/block/254:0/queue/rotational", "/proc/partitions",
                 "/sys/block/md100/size", "/var/lib/"):
        with pytest.raises(UnsupportedCommand):
            host.read(path)
    assert host.read("/sys/dev/block/254:200/size") is None
    assert host.read("/var/lib/nothing") is None


def test_the_simulated_identity_files_read_as_recorded():
    """/sys/dev/block/M:m/ identity files of the simulated devices against the lab's: virtio
    serials (no newline; empty for a disk given none), no WWID files, a partition's number and
    its disk's files through '..', an LV's dm uuid in lvm2's layout."""
    host = SimulatedHost()
    for i, (name, size) in enumerate(zip("abcdefgh", (64, 64, 32, 64, 64, 32, 32, 64))):
        host.add_device(f"/dev/vd{name}", size * M, serial=f"d{i}")
    host.add_device("/dev/vdi", 32 * M, serial="")
    host.add_vg("vgx", ["/dev/vdd"])
    host.add_lv("vgx", "l", 8 * M)
    host.add_partition("/dev/vdh", 1, 32 * M)
    host.read("/sys/dev/block/254:48/holders/")  # the LV gets its dm minor, 0, as in the guest
    compared = 0
    for argv, (rc, out, _) in blocks(MD / "identity" / "identity.txt").items():
        path = argv.removeprefix("cat ")
        if path.startswith(("/sys/dev/block/9:",)):
            continue  # md arrays as clone devices are not modelled
        got = host.read(path)
        if path.endswith("/dm/uuid") and rc == 0:
            assert re.fullmatch(r"LVM-[A-Za-z0-9]{64}\n", out), out
            assert re.fullmatch(r"LVM-[A-Za-z0-9]{64}\n", got), got
            vg, lv = host.vg("vgx"), host.lv("vgx", "l")
            assert got == f"LVM-{vg.uuid.replace('-', '')}{lv.uuid.replace('-', '')}\n"
        else:
            assert got == (out if rc == 0 else None), path
        compared += 1
    assert compared >= 100


def test_simulated_identity_defaults_by_kind():
    host = SimulatedHost()
    host.add_device("/dev/vda", 64 * M)
    host.add_device("/dev/sda", 64 * M)
    host.add_device("/dev/nvme0n1", 64 * M)
    host.add_device("/dev/mapper/vg-lv", 64 * M)
    host.add_device("/dev/loop0", 64 * M)
    def read(p: str, f: str) -> str | None:
        return host.read(f"/sys/dev/block/{':'.join(map(str, host.resolve_device(p)))}/{f}")

    assert read("/dev/vda", "serial") == "sim-vda"
    assert re.fullmatch(r"naa\.6[0-9a-f]{31}\n", read("/dev/sda", "device/wwid"))
    assert read("/dev/sda", "serial") is None
    assert re.fullmatch(r"eui\.[0-9a-f]{16}\n", read("/dev/nvme0n1", "wwid"))
    assert re.fullmatch(r"LVM-[A-Za-z0-9]{64}\n", read("/dev/mapper/vg-lv", "dm/uuid"))
    assert read("/dev/loop0", "serial") is None and read("/dev/loop0", "dm/uuid") is None
    with pytest.raises(ValueError, match="shows no serial"):
        host.add_device("/dev/sdb", 64 * M, serial="x")


def test_a_holders_dm_name_and_uuid_read_by_its_kernel_name_as_recorded():
    """A holders/ listing names a map "dm-N"; the executor reads its dm/name and dm/uuid
    under /sys/block/dm-N/ (issue 22's note: vgexport's own holders are told by their
    uuid). As the lab's kernel shows them (tests/fixtures/outputs/lvmlockd/state: "vgs-
    lvmlock", "LVM-" and 64 characters): an LV's map, a map a test adds under /dev/mapper
    (its name); a map gone reads None; another file of it is not modelled."""
    recorded = (MD.parent / "lvmlockd" / "state" / "vg_started_a.txt").read_text()
    assert re.search(r"^/sys/block/dm-0/dm/name:vgs-lvmlock$", recorded, re.M)
    assert re.search(r"^/sys/block/dm-0/dm/uuid:LVM-[A-Za-z0-9]{64}$", recorded, re.M)
    host = SimulatedHost()
    host.add_device("/dev/vdd", 64 * M)
    host.add_vg("vgx", ["/dev/vdd"])
    host.add_lv("vgx", "l", 8 * M)
    (holder,) = host.read("/sys/dev/block/254:48/holders/").split()
    vg, lv = host.vg("vgx"), host.lv("vgx", "l")
    assert host.read(f"/sys/block/{holder}/dm/name") == "vgx-l\n"
    assert host.read(f"/sys/block/{holder}/dm/uuid") == \
        f"LVM-{vg.uuid.replace('-', '')}{lv.uuid.replace('-', '')}\n"
    host.add_device("/dev/mapper/mpatha", 64 * M, major=253, minor=60, dm_uuid="mpath-36001")
    assert host.read("/sys/block/dm-60/dm/name") == "mpatha\n"
    assert host.read("/sys/block/dm-60/dm/uuid") == "mpath-36001\n"
    assert host.read("/sys/block/dm-61/dm/uuid") is None
    with pytest.raises(UnsupportedCommand):
        host.read(f"/sys/block/{holder}/size")
