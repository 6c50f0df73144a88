"""Issue 17: the server move's old host reset once mid-sync and once after the split.

Seed 004 as in test_lab_server_move.py (two guests on a Link; new exports its disks over
LIO, old logs in and keeps every LV of vg0 as two copies, then hands the remote copy over
as vg0moved; new takes it over), driven by the same commits, with two resets of old
(``Guest.reboot()``: qemu killed, booted again on the same disks; /etc and /var kept, so
the open-iscsi node records, lvm's archives and the reconciler's ledger are what old had):

1. mid-sync: root's remote copy syncing (throttled) with ext4 mounted and a writer running
   on old; old is reset. Its host's boot starts iscsid and activates vg0 (the remote leg
   missing) and mounts root; the writer goes on; old's passes log in again, bring the
   remote legs back and finish the sync. Every md5 (before, before the reset, after) checks.
2. after the split: the handover done (vg0moved split off and exported), old is reset. Its
   next pass has nothing to do; vg0 is complete on old's own disk, vg0moved still exported
   and inactive; root's files check on old (the way back).
3. old logs out, new takes vg0 over: every md5 checks on new, e2fsck clean.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from harness import Disk, Guest, Link, boot
from reconciler_lab import _WRITER as WRITER
from reconciler_lab import Data, commands, install_shims, mark, reconcile, wait_for
from test_lab_server_move import (IQN, checkout, dm_status, lvs, pvs_of, plan_says, prepare_old,
                                  report, spec_repo, vgs)

pytestmark = [pytest.mark.lab, pytest.mark.lab_pair]  # two guests booted by hand

MiB = 1 << 20
STATE = "/var/lib/lab-data"  # Data's manifests: persistent, unlike /tmp


def host_boot(old: Guest) -> None:
    """What old's init system does at boot: iscsid, vg0 activated (autoactivation), root
    mounted; plus the lab's command shims (in /tmp, gone with the reset)."""
    old.sh("modprobe iscsi_tcp; modprobe sd_mod; iscsid; vgchange -ay vg0 || vgchange -ay --activationmode degraded vg0")
    install_shims(old)


def ran(g: Guest, section: str) -> list[list[str]]:
    return [argv for sec, argv in commands(g) if sec == section]


def converge(g: Guest, node: str, what: str, passes: int = 3):
    """``reconcile --wait`` until it exits 0, at most ``passes`` times (a daemon would pass
    again at its next interval); a pass that failed is printed.

    Seen here after old's reset mid-sync (4 runs of 5): open-iscsi's node record
    /etc/iscsi/nodes/<iqn>/<portal>,1/default, rewritten at the login and not yet on disk
    at the reset, is 0 bytes after it (as after a host's power cut). ``iscsiadm -m discovery``
    (exit 0; a non-persistent discovery lists the target) leaves it so, ``--login`` says "No
    records found" (exit 21), and every pass fails "no such target at that portal ...
    (discovery does not list it)". The run that passed had the record whole (2177 bytes)."""
    failed = []
    for _ in range(passes):
        r = reconcile(g, "--wait", node=node, timeout=600)
        if r.rc == 0:
            for f in failed:
                print(f"{what}: a pass failed before it converged:\n{plan_says(f)}\n{f.log[-2500:]}")
            return r
        failed.append(r)
    raise AssertionError(f"{what}: not converged after {passes} passes\n"
                         + "\n".join(f"{plan_says(f)}\n{f}" for f in failed))


def test_server_move_reboot_of_the_old_host_mid_sync_and_after_the_split():
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    link = Link()
    old_disks = [Disk("128M", "o0"), Disk("32M", "o1")]
    new_disks = [Disk("32M", "n0"), Disk("160M", "n1")]
    old = Guest("old", old_disks, nics=[link.a], udev=True, lvm={"polling_interval": 1})
    new = Guest("new", new_disks, nics=[link.b], lvm={"polling_interval": 1})
    repo = None
    try:
        boot(old, new)
        portal = f"{link.b.ip}:3260"
        repo, (c1, c2, c3) = spec_repo(portal)
        prepare_old(old)
        install_shims(new)
        old.sh("pvcreate -q /dev/vda; vgcreate -q vg0 /dev/vda; "
               "lvcreate -q -y -n root -L 48M vg0 /dev/vda; lvcreate -q -y -n srv -L 16M vg0 /dev/vda; "
               "mkfs.ext4 -q -F /dev/vdb")
        root = Data(old, "/dev/vg0/root", "/mnt/root", state_dir=f"{STATE}/root").make(files=4, size="2M")
        old.run("sync")

        # ---- commit 1; old reset while root's remote copy syncs ------------------------
        checkout(repo, c1, old, new)
        rn = reconcile(new, node="new")
        assert rn.rc == 0, rn
        new.throttle(1, write_bps=1 * MiB)
        root.start_writer()
        mark(old, "c1")
        for _ in range(4):
            ro = reconcile(old, node="old", timeout=300)
            assert ro.doc is not None, ro
            if [a for a in ran(old, "c1") if a[0] == "lvconvert"]:
                break
        assert lvs(report(old))["vg0/root"]["lv_layout"] == "raid,raid1", ro
        wait_for(lambda: root.g.run(f"wc -l < {STATE}/root/writer.md5", check=False).out.strip() not in ("", "0", "1"),
                 60, "the writer's first files")
        status = dm_status(old, "vg0-root")
        assert "recover" in status or "resync" in status, status  # mid-sync
        old_res = old.read_file("/etc/iscsi/initiatorname.iscsi")
        old.reboot()
        assert root.writer.exception() is not None  # the guest went away under it
        before_reset = int(old.run(f"wc -l < {STATE}/root/writer.md5").out)
        assert before_reset >= 2
        assert old.read_file("/etc/iscsi/initiatorname.iscsi") == old_res
        assert old.run(f"ls /etc/iscsi/nodes/{IQN}", check=False).ok, "the node record did not survive"
        timings["reset mid-sync"] = time.monotonic() - t0
        host_boot(old)
        checkout(repo, c1, old)  # the lab's spec lives in /tmp
        old.sh(f"mkdir -p /mnt/root && mount /dev/vg0/root /mnt/root && cd /mnt/root && md5sum --quiet -c {STATE}/root/before.md5 "
               f"&& md5sum --quiet -c {STATE}/root/writer.md5")
        old.sh(f"cd /mnt/root && mkdir before-reset && mv w* before-reset/ && "
               f"sed 's|  w|  before-reset/w|' {STATE}/root/writer.md5 >> {STATE}/root/before.md5 && "
               f"rm {STATE}/root/writer.md5 && sync")
        old.write_file("/tmp/lab-writer.sh", WRITER, mode="755")  # /tmp did not survive
        root.start_writer()
        new.throttle(1)
        mark(old, "c1-after-reset")
        converge(old, "old", "after the reset mid-sync")
        rep = report(old)
        for name in ("vg0/root", "vg0/srv"):
            lv = lvs(rep)[name]
            assert (lv["lv_layout"], lv["sync_percent"], lv["lv_health_status"]) == ("raid,raid1", "100.00", ""), lv
        root.stop_writer()
        assert root.writer_files > 0
        root.verify()
        timings["converged after the reset"] = time.monotonic() - t0
        old.run(["umount", "/mnt/root"])

        # ---- commit 2: the handover; old reset after the split ---------------------------
        checkout(repo, c2, old, new)
        rh = reconcile(old, "--wait", node="old", timeout=600)
        assert rh.rc == 0, f"{plan_says(rh)}\n{rh}"
        assert vgs(report(old))["vg0moved"]["vg_attr"][2] == "x"
        old.reboot()
        host_boot(old)
        checkout(repo, c2, old)
        mark(old, "c2-after-reset")
        converge(old, "old", "after the reset after the split")
        done = ran(old, "c2-after-reset")
        assert not [a for a in done if a[0] != "iscsiadm"], done  # only the login again, if anything
        rep = report(old)
        assert pvs_of(rep, "vg0") == ["/dev/vda"] and vgs(rep)["vg0"]["vg_missing_pv_count"] == "0", rep
        assert vgs(rep)["vg0moved"]["vg_attr"][2] == "x", vgs(rep)
        for name in ("root", "srv"):
            assert lvs(rep)[f"vg0/{name}"]["lv_layout"] == "linear"
            assert lvs(rep)[f"vg0moved/{name}"]["lv_active"] == ""
        old.sh("mkdir -p /mnt/root && mount /dev/vg0/root /mnt/root")
        root.verify()  # vg0's root on old: the way back
        old.run(["umount", "/mnt/root"])
        timings["reset after the split"] = time.monotonic() - t0

        # ---- commit 3: old logs out, new takes over ---------------------------------------
        checkout(repo, c3, old, new)
        ro3 = reconcile(old, node="old", timeout=300)
        assert ro3.rc == 0, f"{plan_says(ro3)}\n{ro3}"
        rt = reconcile(new, "--wait", node="new", timeout=600)
        assert rt.rc == 0, f"{plan_says(rt)}\n{rt}"
        manifests = {m: old.read_file(f"{STATE}/root/{m}") for m in ("before.md5", "writer.md5")}
        new.run(["mkdir", "-p", f"{STATE}/root"])
        for m, text in manifests.items():
            new.write_file(f"{STATE}/root/{m}", text)
        new.sh("mkdir -p /mnt/root && mount /dev/vg0/root /mnt/root")
        moved = Data(new, "/dev/vg0/root", "/mnt/root", state_dir=f"{STATE}/root")
        moved.writer_files = root.writer_files
        moved.verify()
        timings["taken over"] = time.monotonic() - t0
    finally:
        old.close()
        new.close()
        for d in (*old_disks, *new_disks):
            d.remove()
        if repo is not None:
            subprocess.run(["rm", "-rf", str(repo)], check=False)
    print("server move with two resets of old:", ", ".join(f"{k} at {v:.0f}s" for k, v in timings.items()))

