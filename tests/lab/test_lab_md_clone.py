"""Seed 002 for real: online clones through a non-persistent md RAID1, made by the reconciler
running inside a lab guest (``python3 -m reconciler --spec DIR --node NODE --once ...``,
this checkout over 9p) against the guest's own kernel md and mdadm.

Every test checks data with md5 sums: files written on the ext4 file system before the
clone and by a writer while md copies, read back from the target after the split, and the
whole source and target devices compared byte for byte. After the split, the target that
now lives its own life is never written again when the spec respells it or renames the
clone; only a new ``recopy`` value copies it again.
"""

from __future__ import annotations

import json
import re
import textwrap
import time

import pytest
from harness import Disk, Guest, LabError

pytestmark = pytest.mark.lab

NODE = "node-1"
SPEC_DIR = "/tmp/clone-spec"
MD = "/dev/md100"
SYS = "/sys/block/md100/md"
LEDGER = "/var/lib/reconciler/clones.json"

# Until $2/stop exists: write a 64 KiB random file on $1 (fsync'ed), its md5 to a manifest,
# and its name to $2/during when md was recovering both before and after the write.
WRITER = r"""#!/bin/bash
mnt=$1 st=$2 i=0
recovering() { [ "$(cat /sys/block/md100/md/sync_action 2>/dev/null)" = recover ]; }
while [ ! -e "$st/stop" ]; do
  i=$((i+1))
  head -c 65536 /dev/urandom > "$st/blob"
  before=0; recovering && before=1
  dd if="$st/blob" of="$mnt/w$i" bs=64k conv=fsync status=none || { echo "write w$i failed" >&2; exit 1; }
  echo "$(md5sum < "$st/blob" | cut -d' ' -f1)  w$i" >> "$st/writer.md5"
  if [ $before = 1 ] && recovering; then echo "w$i" >> "$st/during"; fi
  sleep 0.3
done
echo "$i"
"""


def put_spec(g: Guest, state: str, source: str, target: str, extra: str = "",
             name: str = "db") -> None:
    g.run(["mkdir", "-p", SPEC_DIR])
    g.write_file(f"{SPEC_DIR}/clone.toml", textwrap.dedent(f"""
        [clone.{name}]
        nodes = ["{NODE}"]
        source = "{source}"
        target = "{target}"
        md = "{MD}"
        state = "{state}"
        """) + extra + "\n")


class Run:
    def __init__(self, res):
        self.rc, self.out, self.log = res.rc, res.out, res.err
        try:
            self.doc = json.loads(res.out)
        except ValueError:
            self.doc = None

    def ran(self) -> list[str]:
        """What the reconciler ran that changes something (its own log), in order."""
        return [c for c in re.findall(r"\bran (.+?) -> rc -?\d+ in ", self.log)
                if not c.startswith("lvm ")]

    def __str__(self) -> str:
        return f"rc={self.rc}\n--- stdout\n{self.out[-5000:]}\n--- stderr\n{self.log[-5000:]}"

    __repr__ = __str__


def reconcile(g: Guest, *args: str, timeout: float = 300) -> Run:
    argv = ["python3", "-m", "reconciler", "--spec", SPEC_DIR, "--node", NODE, "--once", *args,
            "--output", "json"]
    return Run(g.run(argv, timeout=timeout, check=False, env={"NO_COLOR": "1"}, cwd="/"))


def wait_for(pred, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def attr(g: Guest, name: str) -> str:
    return g.run(["cat", f"{SYS}/{name}"], check=False).out.strip()


def percent_done(g: Guest) -> float:
    """md's progress line in /proc/mdstat (sysfs' sync_completed lags behind it)."""
    m = re.search(r"recovery =\s*([\d.]+)%", g.run("cat /proc/mdstat 2>/dev/null || true").out)
    return float(m.group(1)) if m else -1.0


def in_sync(g: Guest) -> bool:
    return attr(g, "sync_action") == "idle" and attr(g, "degraded") == "0"


def make_files(g: Guest, dev: str, files: int = 8) -> None:
    """ext4 on ``dev`` with files of random data, their md5 sums in /root/before.md5."""
    g.sh(f"""
        mkfs.ext4 -q -F {dev}
        mkdir -p /mnt/db && mount {dev} /mnt/db
        for i in $(seq 1 {files}); do head -c 1M /dev/urandom > /mnt/db/before$i; done
        (cd /mnt/db && md5sum before*) > /root/before.md5
        umount /mnt/db
    """)


def check_files(g: Guest, dev: str, *manifests: str) -> None:
    """fsck, then every md5 sum of the manifests on a read-only mount of ``dev``."""
    g.sh(f"""
        e2fsck -fn {dev}
        echo 3 > /proc/sys/vm/drop_caches
        mkdir -p /mnt/check && mount -o ro {dev} /mnt/check
        cd /mnt/check
        for m in {' '.join(manifests)}; do md5sum --quiet -c $m; done
        cd / && umount /mnt/check
    """, timeout=180)


def device_md5(g: Guest, dev: str) -> str:
    return g.run(["md5sum", dev], timeout=120).out.split()[0]


def assert_settled(g: Guest) -> None:
    r = reconcile(g)
    assert r.rc == 0, r
    assert r.doc["plan"]["steps"] == [] and r.doc["plan"]["in_flight"] == [], r
    assert r.doc["processes"] == 1 and r.ran() == [], r


def test_clone_a_mounted_file_system_online_while_it_is_written_then_split(make_guest):
    g = make_guest("clone", disks=["64M", "64M"], mem="768M")
    src, dst = g.disk(0), g.disk(1)
    make_files(g, src)
    g.write_file("/root/writer.sh", WRITER, mode="755")

    # The workload runs on the source: md cannot take it, and the reconciler says why.
    g.run(["mount", src, "/mnt/db"])
    put_spec(g, "mirrored", src, dst, 'speed_limit_max = "1M"')
    refused = reconcile(g)
    assert refused.rc == 1 and refused.ran() == [], refused
    assert "md100" not in g.run("cat /proc/mdstat 2>/dev/null || true").out
    reason, = [b["reason"] for b in refused.doc["final"]["blocked"]]
    assert f"the source {src} is mounted at /mnt/db" in reason

    # Seed 002: stop the workload, build the array over the source, restart the workload
    # on the array, add the target; md copies while the workload writes.
    g.run(["umount", "/mnt/db"])
    started = reconcile(g)
    assert started.rc == 2, started
    assert started.ran() == [
        f"mdadm --build {MD} --level=1 --raid-devices=2 {src} missing",
        f"tee {SYS}/sync_speed_max",
        f"mdadm {MD} --add {dst}",
    ], started
    assert attr(g, "sync_speed_max") == "1024 (local)"
    g.run(["mount", MD, "/mnt/db"])
    g.run(["mkdir", "-p", "/root/w"])
    writer = g.spawn(["/root/writer.sh", "/mnt/db", "/root/w"], timeout=600)
    wait_for(lambda: percent_done(g) >= 10, 120, "md to copy 10%")

    watching = reconcile(g)
    assert watching.rc == 2 and watching.ran() == [], watching
    flight, = watching.doc["final"]["in_flight"]
    assert flight["object"] == "clone db" and 0 < flight["percent"] < 100, flight
    # md's own counters: its recent speed (a short average: it can exceed the limit for a
    # while) and the ETA derived from it
    assert 0.25 * 2**20 < flight["speed_bps"] <= 8 * 2**20 and flight["eta_s"] > 0, flight
    assert watching.doc["processes"] == 1, watching

    wait_for(lambda: percent_done(g) >= 30, 120, "md to copy 30%")
    g.run(["touch", "/root/w/stop"])
    res = g.wait(writer, timeout=60)
    assert res.ok, res.out
    during = g.read_file("/root/w/during").split()
    assert len(during) >= 5, (during, res.out)

    # Split: md runs at full speed now; the array is in use, so it is not stopped yet.
    assert percent_done(g) < 80  # at 1 MiB/s, tens of seconds of copy are left
    put_spec(g, "split", src, dst, 'speed_limit_max = "200M"')
    r = reconcile(g)
    assert r.ran() == [f"tee {SYS}/sync_speed_max"], r
    # At full speed the copy may already be over when the pass re-plans: then the split is
    # blocked by the mount (exit 1) rather than pending (exit 2). Both are right; nothing else.
    assert r.rc == 2 or (r.rc == 1 and "is in use (mounted at /mnt/db)"
                         in r.doc["final"]["blocked"][0]["reason"]), r
    wait_for(lambda: in_sync(g), 120, "the end of the recovery")
    busy = reconcile(g)
    # (the completed sync is recorded, by this pass or the one before; nothing else runs)
    ledger_write = ("mkdir", "dd", "mv", "sync")
    assert busy.rc == 1 and [c for c in busy.ran() if not c.startswith(ledger_write)] == [], busy
    assert json.loads(g.read_file(LEDGER))["copies"][0]["split"] is False
    assert "/dev/md100 is in use (mounted at /mnt/db)" in busy.doc["final"]["blocked"][0]["reason"]
    g.run(["umount", "/mnt/db"])
    split = reconcile(g, "--wait")
    assert split.rc == 0, split
    assert split.ran() == ["mkdir -p /var/lib/reconciler",
                           "dd of=/var/lib/reconciler/.clones.json.tmp conv=fsync status=none",
                           f"mv -f /var/lib/reconciler/.clones.json.tmp {LEDGER}",
                           "sync /var/lib/reconciler",
                           "sync /var/lib",
                           f"mdadm --stop {MD}"], split
    assert "md100" not in g.read_file("/proc/mdstat")
    record, = json.loads(g.read_file(LEDGER))["copies"]
    assert (record["source"], record["target"], record["clone"], record["md"]) == (
        {"id": "serial:d0", "path": src}, {"id": "serial:d1", "path": dst}, "db", MD)

    # The target is an exact copy: every file, those written during the copy included.
    check_files(g, dst, "/root/before.md5", "/root/w/writer.md5")
    check_files(g, src, "/root/before.md5", "/root/w/writer.md5")
    source_md5 = device_md5(g, src)
    assert source_md5 == device_md5(g, dst)
    assert_settled(g)

    # The workload now lives on the target (a raw write, as a VM's disk would see it). The
    # same disk named by another path (/dev/lab/d1, a symlink to it) is the same split
    # target: nothing runs, nothing is written (issue 8: main rebuilt the array over it).
    g.run(["dd", "if=/dev/urandom", f"of={dst}", "bs=1M", "count=1", "seek=40", "oflag=direct",
           "status=none"])
    target_md5 = device_md5(g, dst)
    alias = "/dev/lab/d1"
    assert g.run(["readlink", "-f", alias]).out.strip() == dst
    put_spec(g, "split", src, alias)
    assert_settled(g)
    assert device_md5(g, dst) == target_md5

    # Renamed, the clone is another clone over a completed copy: blocked, nothing written
    # but the old record marked as no longer declared (still protecting the target).
    put_spec(g, "split", src, alias, name="db2")
    renamed = reconcile(g)
    ledger_write = ("mkdir", "dd", "mv", "sync")
    assert renamed.rc == 1, renamed
    assert [c for c in renamed.ran() if not c.startswith(ledger_write)] == [], renamed
    reason, = [b["reason"] for b in renamed.doc["final"]["blocked"]]
    assert "holds a completed copy of" in reason
    assert "clone db2 is not the clone that made it" in reason
    assert json.loads(g.read_file(LEDGER))["copies"][0]["declared"] is False
    assert device_md5(g, dst) == target_md5 and "md100" not in g.read_file("/proc/mdstat")

    # recopy asks once: copied again from the source, then the same value copies no more.
    put_spec(g, "split", src, alias, 'recopy = "lab-1"', name="db2")
    recopied = reconcile(g, "--wait")
    assert recopied.rc == 0, recopied
    ran = recopied.ran()
    # the old record stays until the new copy's replaces it, but the value is marked used in
    # the ledger before md writes the target (issue 17: a value never copies twice, even if
    # the spec is reverted while it copies)
    add = f"mdadm {MD} --add {alias}"
    build = f"mdadm --build {MD} --level=1 --raid-devices=2 {src} missing"
    assert build in ran and add in ran and ran.index(build) < ran.index(add), recopied
    assert ran[-1] == f"mdadm --stop {MD}", recopied
    assert [c for c in ran[:ran.index(add)] if not c.startswith(("mkdir ", "dd ", "mv ", "sync "))
            ] == [build], ran  # nothing but the build and one ledger write before the add
    assert any(c.startswith("mv -f ") and c.endswith(LEDGER) for c in ran[:ran.index(add)]), ran
    assert device_md5(g, dst) == source_md5 == device_md5(g, src)
    record, = json.loads(g.read_file(LEDGER))["copies"]
    assert (record["clone"], record["recopy"], record["declared"]) == ("db2", "lab-1", True)
    g.run(["dd", "if=/dev/urandom", f"of={dst}", "bs=1M", "count=1", "seek=8", "oflag=direct",
           "status=none"])
    target_md5 = device_md5(g, dst)
    assert_settled(g)
    assert device_md5(g, dst) == target_md5


def test_a_reset_mid_sync_converges_again_from_the_source(make_guest, request):
    disks = [Disk("64M", "src"), Disk("64M", "dst"), Disk("16M", "state")]
    request.addfinalizer(lambda: [d.remove() for d in disks])

    def boot(name: str) -> Guest:
        g = make_guest(name, disks=disks, mem="768M")
        g.sh("mkdir -p /var/lib/reconciler && mount /dev/lab/state /var/lib/reconciler")
        return g

    g = make_guest("before", disks=disks, mem="768M")
    src, dst = g.disk("src"), g.disk("dst")
    g.sh("mkfs.ext4 -q /dev/lab/state && mkdir -p /var/lib/reconciler && "
         "mount /dev/lab/state /var/lib/reconciler")
    make_files(g, src)
    g.sh("cp /root/before.md5 /var/lib/reconciler/ && sync")  # must outlive the reset
    source_md5 = device_md5(g, src)
    put_spec(g, "split", src, dst, 'speed_limit_max = "1M"')
    first = reconcile(g)
    assert first.rc == 2, first
    wait_for(lambda: 20 <= percent_done(g) < 90, 120, "md to copy part of the source")
    g.kill()  # the plug is pulled in the middle of the copy
    g.close()

    g = boot("after")
    assert "md100" not in g.run("cat /proc/mdstat 2>/dev/null || true").out
    assert json.loads(g.run(f"cat {LEDGER} 2>/dev/null || echo '{{\"copies\": []}}'").out)[
        "copies"] == []
    # Whatever the half-written target holds, the copy restarts from the source.
    g.run(["dd", "if=/dev/urandom", f"of={dst}", "bs=1M", "count=64", "oflag=direct",
           "status=none"], timeout=120)
    put_spec(g, "split", src, dst)
    again = reconcile(g, "--wait")
    assert again.rc == 0, again
    assert again.ran()[:2] == [f"mdadm --build {MD} --level=1 --raid-devices=2 {src} missing",
                               f"mdadm {MD} --add {dst}"], again
    assert again.ran()[-1] == f"mdadm --stop {MD}", again
    assert device_md5(g, src) == source_md5 == device_md5(g, dst)
    check_files(g, dst, "/var/lib/reconciler/before.md5")
    assert_settled(g)
    g.close()

    # And once split, a reboot does not undo it: the ledger (on a disk) remembers.
    g = boot("rebooted")
    put_spec(g, "split", src, dst)
    g.run(["dd", "if=/dev/urandom", f"of={dst}", "bs=1M", "count=1", "seek=40", "oflag=direct",
           "status=none"])  # the target now lives its own life
    target_md5 = device_md5(g, dst)
    assert_settled(g)
    assert device_md5(g, dst) == target_md5 and device_md5(g, src) == source_md5


def hold_open(g: Guest, dev: str, mode: str = "<>"):
    """A process holding ``dev`` open with a plain open(), as a VM's raw disk or a database
    device is: no mount, no holder in sysfs. Returns (its pid, the future to wait on)."""
    g.run(["rm", "-f", "/root/holder.pid"])
    fut = g.spawn(f"exec 3{mode}{dev}; echo $$ > /root/holder.pid; exec sleep 600", timeout=700)
    wait_for(lambda: g.run(["test", "-s", "/root/holder.pid"], check=False).ok, 30,
             "the holder's pid file")
    return int(g.read_file("/root/holder.pid")), fut


def release(g: Guest, held) -> None:
    pid, fut = held
    g.run(["kill", str(pid)])
    g.wait(fut, check=False)


def test_a_device_held_open_by_a_process_is_never_added_nor_stopped(make_guest):
    g = make_guest("openers", disks=["32M", "32M"], mem="768M")
    src, dst = g.disk(0), g.disk(1)
    make_files(g, src)
    source_md5 = device_md5(g, src)
    target_md5 = device_md5(g, dst)

    # The target is some VM's raw disk: the array is built, the add is refused, naming it.
    held = hold_open(g, dst)
    put_spec(g, "mirrored", src, dst)
    refused = reconcile(g)
    assert refused.rc == 1, refused
    assert refused.ran() == [f"mdadm --build {MD} --level=1 --raid-devices=2 {src} missing"]
    add, = [a for a in refused.doc["applied"] if a["key"] == "clone:db:add"]
    assert add["outcome"] == "failed" and add["commands"] == [], add
    assert f"the target {dst} is open by pid {held[0]} (sleep); stop it first" in add["detail"]
    assert device_md5(g, dst) == target_md5  # not one byte written
    release(g, held)
    copied = reconcile(g, "--wait")
    assert copied.rc == 0 and copied.ran() == [f"mdadm {MD} --add {dst}"], copied
    assert in_sync(g)

    # The workload reads and writes the array raw: the split does not stop it under it.
    held = hold_open(g, MD)
    put_spec(g, "split", src, dst)
    kept = reconcile(g)
    assert kept.rc == 1, kept
    assert f"mdadm --stop {MD}" not in kept.ran(), kept
    # the split record is refused as the stop would be: never "complete" while open
    rec, = [a for a in kept.doc["applied"] if a["key"] == "ledger:clones:split"]
    assert f"the array {MD} is open by pid {held[0]} (sleep)" in rec["detail"], rec
    assert not any(c["split"] for c in json.loads(g.read_file(LEDGER))["copies"])
    assert "md100" in g.read_file("/proc/mdstat")
    release(g, held)
    split = reconcile(g, "--wait")
    assert split.rc == 0 and split.ran()[-1] == f"mdadm --stop {MD}", split
    assert "md100" not in g.read_file("/proc/mdstat")
    assert device_md5(g, src) == source_md5 == device_md5(g, dst)
    check_files(g, dst, "/root/before.md5")
    assert_settled(g)
