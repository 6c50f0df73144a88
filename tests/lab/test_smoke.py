"""Smoke tests of the lab itself: real LVM in a guest, two linked guests, clean teardown."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness import CommandFailed, Guest, sweep_stale

pytestmark = pytest.mark.lab


def test_lvm_pvmove_keeps_data(make_guest):
    g = make_guest("g", disks=["256M", "256M", "32M"])
    pv1, pv2, spare = g.disk(0), g.disk(1), g.disk(2)
    g.sh(f"""
        pvcreate --yes {pv1} {pv2}
        vgcreate vgsmoke {pv1} {pv2}
        lvcreate --yes --name data --size 32M vgsmoke {pv1}
        mkfs.ext4 -q /dev/vgsmoke/data
        mkdir -p /mnt/data && mount /dev/vgsmoke/data /mnt/data
        head -c 16M /dev/urandom > /mnt/data/blob
        sync
    """)
    before = g.run("md5sum /mnt/data/blob").out.split()[0]

    t0 = time.monotonic()
    g.run(["pvmove", "-i", "1", pv1, pv2], timeout=120)
    moved_in = time.monotonic() - t0

    report = json.loads(g.run(["lvs", "--reportformat", "json", "-o", "lv_name,devices", "vgsmoke"]).out)
    devices = report["report"][0]["lv"][0]["devices"]
    assert devices.startswith(pv2), devices
    g.sh("umount /mnt/data && echo 3 > /proc/sys/vm/drop_caches && mount /dev/vgsmoke/data /mnt/data")
    assert g.run("md5sum /mnt/data/blob").out.split()[0] == before
    assert moved_in < 60

    # QMP fault injection: after drive_del the device stays but all I/O fails.
    assert g.qmp("query-status")["status"] == "running"
    g.run(f"dd if={spare} of=/dev/null bs=4k count=1 iflag=direct")
    g.fail_disk(2)
    res = g.run(f"dd if={spare} of=/dev/null bs=4k count=1 iflag=direct", check=False)
    assert res.rc != 0 and "Input/output error" in res.err, res


def test_pair_link_and_shared_disk(guest_pair):
    a, b = guest_pair
    link = guest_pair.link
    assert a.run(["ip", "-4", "-o", "addr", "show"]).out.count(link.a.ip) == 1
    ping = a.run(["busybox", "ping", "-c", "3", "-W", "5", link.b.ip], timeout=60)
    assert "3 packets received" in ping.out, ping.out
    b.run(["busybox", "ping", "-c", "1", "-W", "5", link.a.ip], timeout=60)

    shared_a, shared_b = a.disk("shared0"), b.disk("shared0")
    a.sh(f"""
        head -c 4M /dev/urandom > /tmp/blob
        dd if=/tmp/blob of={shared_a} bs=1M oflag=direct conv=fsync status=none
        md5sum < /tmp/blob > /tmp/blob.md5
    """)
    want = a.run("cut -d' ' -f1 /tmp/blob.md5").out.strip()
    got = b.run(f"dd if={shared_b} bs=1M count=4 iflag=direct status=none | md5sum").out.split()[0]
    assert got == want
    # and back, through the page cache on the reader after dropping caches
    b.run(f"echo hello-from-b | dd of={shared_b} bs=4k seek=2000 conv=sync,fsync oflag=direct status=none")
    a.run("echo 3 > /proc/sys/vm/drop_caches")
    assert a.run(f"dd if={shared_a} bs=4k skip=2000 count=1 status=none | head -c 12").out == "hello-from-b"


@pytest.mark.lab_alone  # its sweep_stale() must find the orphan's dir before another runner's sweep does
def test_teardown_leaves_no_qemu(lab):
    # 1. normal exit and exception inside the context: qemu gone, work dir and images gone
    with Guest("td", disks=["64M"]) as g:
        pid, workdir = g.proc.pid, g.workdir
        assert (workdir / "d0.img").exists()
        with pytest.raises(CommandFailed) as err:
            g.run("exit 3")
        assert err.value.rc == 3
    assert not Path(f"/proc/{pid}").exists()
    assert not workdir.exists()

    with pytest.raises(RuntimeError, match="boom"), Guest("td2") as g2:
        pid2 = g2.proc.pid
        raise RuntimeError("boom")
    assert not Path(f"/proc/{pid2}").exists()
    assert not g2.workdir.exists()

    # 2. the runner SIGKILLed while a guest runs: the guest powers off / qemu dies with it
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from harness import Guest
        g = Guest("orphan", disks=["16M"])
        g.start(); g.wait_ready()
        print(g.proc.pid, flush=True)
        time.sleep(600)
    """)
    runner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        qpid = int(runner.stdout.readline())
    finally:
        runner.kill()
        runner.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(qpid):
        time.sleep(0.1)
    assert not _alive(qpid), f"qemu {qpid} survived its runner"
    # its work directory (image included) goes at the next sweep, which every Guest() runs
    assert any("-orphan-" in d for d in sweep_stale())


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False
