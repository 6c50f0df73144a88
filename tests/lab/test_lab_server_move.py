"""Seed 004 end to end (issue 13): a live server's LVM data moved to a new server over iSCSI,
the old server kept as a fallback, driven only by three commits of one spec.

Two guests on a Link, a reconciler on each. The spec lives in a small git repository on the
host; each step is ``git show <commit>:spec.toml`` put into both guests, as a GitOps
checkout would:

1. ``new`` exports its /dev/vdb (LUN 0) and /dev/vda (LUN 1) through LIO; ``old`` logs in,
   keeps every LV of vg0 as two copies (its /dev/vda and the remote disk) while ext4 on them
   is mounted and written to, and clones its small /dev/vdb (/boot) onto LUN 1 with the md
   clone (``state = "split"``).
   Fault: the link is cut during the mirror sync (iscsid's replacement_timeout 5 s, so the
   remote legs fail instead of blocking I/O for two minutes): nothing is detached, the writer
   keeps writing, the plan says why; the link returns: the legs are refreshed and the sync
   completes.
2. Handover (the services stopped first: file systems unmounted): old splits the copy on the
   remote disk off into its own exported VG ``vg0moved``. Fault: old is killed (qemu SIGKILL)
   in the middle, then booted again on the same disks; its reconciler finishes the handover.
3. ``old`` logs out, ``new`` ends the export, takes the VG over, activates it, and grows the
   PV (its disk grew) and root with its file system.

Then: every file written before the handover has its md5 on new, e2fsck is clean, new's VG
has no missing PV, the /boot clone equals old's /dev/vdb byte for byte, and old's vg0 is
complete and can be activated again with its data intact (the way back).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from harness import Disk, Guest, LabError, Link, boot
from reconciler_lab import (FULLREPORT_ARGV, Data, commands, held, hold, install_shims, mark,
                            put_spec, reconcile, spawn_reconcile, wait_for)

pytestmark = [pytest.mark.lab, pytest.mark.lab_pair]  # two guests booted by hand

MiB = 1 << 20
IQN = "iqn.2003-01.org.example.new:move"
INIT_OLD = "iqn.2004-10.com.example:old"
LEDGER_DIR = "/var/lib/reconciler"  # a real host keeps /var across a reboot; the guest's is tmpfs
SPLITTING = ("vgreduce", "vgsplit", "vgexport", "lvremove")  # what must not run while a leg is down

COMMON = """
[iscsi_target.move]
nodes = ["new"]
iqn = "{iqn}"
portals = ["{portal}"]
acls = ["{init}"]
state = "{target}"
[iscsi_target.move.lun.0]
device = "/dev/vdb"
[iscsi_target.move.lun.1]
device = "/dev/vda"

[iscsi_session.move]
nodes = ["old"]
portal = "{portal}"
target = "{iqn}"
luns = [0, 1]
state = "{session}"
initiator = "{init}"
"""

CLONE = """
[clone.boot]
nodes = ["old"]
source = "/dev/vdb"
target = "{lun1}"
md = "/dev/md100"
state = "split"
"""

MIRRORED = """
[vg.vg0]
nodes = ["old"]
pvs = ["/dev/vda", "{lun0}"]
[vg.vg0.lv.root]
size = "48M"
copies = [["/dev/vda"], ["{lun0}"]]
[vg.vg0.lv.srv]
size = "16M"
copies = [["/dev/vda"], ["{lun0}"]]
"""

HANDOVER = """
[vg.vg0]
nodes = ["old"]
pvs = ["/dev/vda"]
[vg.vg0.handover]
pvs = ["{lun0}"]
vg = "vg0moved"
[vg.vg0.lv.root]
size = "48M"
placement = ["/dev/vda"]
[vg.vg0.lv.srv]
size = "16M"
placement = ["/dev/vda"]
"""

TAKEOVER = """
[vg.vg0]
nodes = ["new"]
pvs = ["/dev/vdb"]
takeover = "vg0moved"
grow_pvs = true
[vg.vg0.lv.root]
size = "64M"
resize_fs = true
activation = {{ new = "active" }}
[vg.vg0.lv.srv]
size = "16M"
activation = {{ new = "active" }}
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env={"GIT_AUTHOR_NAME": "lab", "GIT_AUTHOR_EMAIL": "lab@lab",
                                          "GIT_COMMITTER_NAME": "lab",
                                          "GIT_COMMITTER_EMAIL": "lab@lab", "PATH": "/usr/bin:/bin"}
                          ).stdout


def spec_repo(portal: str) -> tuple[Path, list[str]]:
    """The GitOps repository: three commits of spec.toml; returns (repo, [commit ids])."""
    lun0 = f"/dev/disk/by-path/ip-{portal}-iscsi-{IQN}-lun-0"
    lun1 = f"/dev/disk/by-path/ip-{portal}-iscsi-{IQN}-lun-1"
    repo = Path(tempfile.mkdtemp(prefix="seed004-spec-"))
    _git(repo, "init", "-q")
    fill = dict(iqn=IQN, portal=portal, init=INIT_OLD, lun0=lun0, lun1=lun1)
    versions = [
        ("mirror every LV of vg0 onto new's disk; clone /boot",
         COMMON.format(target="present", session="logged-in", **fill) + CLONE.format(**fill)
         + MIRRORED.format(**fill)),
        ("hand vg0's copy on new's disk over as vg0moved",
         COMMON.format(target="present", session="logged-in", **fill) + CLONE.format(**fill)
         + HANDOVER.format(**fill)),
        ("new takes vg0 over and grows it; the export ends",
         COMMON.format(target="absent", session="absent", **fill) + TAKEOVER.format(**fill)),
    ]
    ids = []
    for message, text in versions:
        (repo / "spec.toml").write_text(text)
        _git(repo, "add", "spec.toml")
        _git(repo, "commit", "-q", "-m", message)
        ids.append(_git(repo, "rev-parse", "HEAD").strip())
    return repo, ids


def checkout(repo: Path, commit: str, *guests: Guest) -> None:
    text = _git(repo, "show", f"{commit}:spec.toml")
    for g in guests:
        put_spec(g, text)


def report(g: Guest) -> dict:
    return json.loads(g.run(list(FULLREPORT_ARGV), timeout=120).out)


def vgs(rep: dict) -> dict[str, dict]:
    return {v["vg_name"]: v for obj in rep["report"] for v in obj.get("vg", [])}


def lvs(rep: dict) -> dict[str, dict]:
    return {lv["lv_full_name"]: lv for obj in rep["report"] for lv in obj.get("lv", [])}


def pvs_of(rep: dict, vg: str) -> list[str]:
    return sorted(p["pv_name"] for obj in rep["report"] if any(v["vg_name"] == vg for v in obj.get("vg", []))
                  for p in obj.get("pv", []))


# The lab's udev names a new disk within a fraction of a second; a loaded production host's
# can take seconds. Made late on purpose, so that nothing passes by winning that race: a
# login is not over until the by-path names of its disks exist.
SLOW_UDEV = 'ACTION=="add", SUBSYSTEM=="block", KERNEL=="sd*", PROGRAM="/bin/sleep 3"\n'


def prepare_old(g: Guest) -> None:
    """What an administrator set up on old before the spec: the initiator name, iscsid (with
    a short replacement timeout, so a dead link fails the remote legs in seconds)."""
    g.write_file("/etc/iscsi/initiatorname.iscsi", f"InitiatorName={INIT_OLD}\n")
    g.write_file("/etc/udev/rules.d/00-lab-slow-disks.rules", SLOW_UDEV)
    g.sh("udevadm control --reload; "
         "sed -i 's/^node.session.timeo.replacement_timeout = .*/"
         "node.session.timeo.replacement_timeout = 5/' /etc/iscsi/iscsid.conf; "
         "modprobe iscsi_tcp; modprobe sd_mod; iscsid")
    install_shims(g)


def ran(g: Guest, section: str) -> list[list[str]]:
    return [argv for sec, argv in commands(g) if sec == section]


def plan_says(run) -> str:
    doc = run.doc or {}
    plan = doc.get("plan", {})
    return json.dumps({k: plan.get(k) for k in ("steps", "blocked", "in_flight")}, indent=1)[:4000]


def dm_status(g: Guest, name: str) -> str:
    return g.run(["dmsetup", "status", name], check=False).out


def test_seed_004_server_move_with_fallback():
    t0 = time.monotonic()
    timings: dict[str, float] = {}
    link = Link()
    old_disks = [Disk("128M", "o0"), Disk("32M", "o1")]  # vg0; /boot
    new_disks = [Disk("32M", "n0"), Disk("160M", "n1")]  # /boot's clone; the VG's disk
    old = Guest("old", old_disks, nics=[link.a], udev=True, lvm={"polling_interval": 1})
    new = Guest("new", new_disks, nics=[link.b], lvm={"polling_interval": 1})
    repo = None
    try:
        boot(old, new)
        portal = f"{link.b.ip}:3260"
        lun0 = f"/dev/disk/by-path/ip-{portal}-iscsi-{IQN}-lun-0"
        repo, (c1, c2, c3) = spec_repo(portal)
        prepare_old(old)
        install_shims(new)
        # The live server: vg0 with two ext4 LVs, and /boot on its own small disk.
        old.sh("pvcreate -q /dev/vda; vgcreate -q vg0 /dev/vda; "
               "lvcreate -q -y -n root -L 48M vg0 /dev/vda; lvcreate -q -y -n srv -L 16M vg0 /dev/vda; "
               "mkfs.ext4 -q -F /dev/vdb; mkdir -p /mnt/boot; mount /dev/vdb /mnt/boot; "
               "head -c 6M /dev/urandom > /mnt/boot/vmlinuz; umount /mnt/boot")
        root = Data(old, "/dev/vg0/root", "/mnt/root").make(files=4, size="2M")
        srv = Data(old, "/dev/vg0/srv", "/mnt/srv").make(files=2, size="1M")
        boot_md5 = old.run(["md5sum", "/dev/vdb"]).out.split()[0]
        timings["setup"] = time.monotonic() - t0

        # ---- commit 1: export, login, two copies of every LV, /boot cloned -----------------
        checkout(repo, c1, old, new)
        rn = reconcile(new, node="new")
        assert rn.rc == 0, rn
        new.throttle(1, write_bps=1 * MiB)  # the remote legs sync slowly enough to cut the link
        root.start_writer()
        mark(old, "c1-first")
        # --once passes until root's second copy is syncing (the login is a long step: the
        # steps that need its disks run once udev has named them, in a later pass)
        for _ in range(4):
            ro = reconcile(old, node="old", timeout=300)
            assert ro.doc is not None, ro
            failed = [a for a in ro.doc["applied"] if a["outcome"] == "failed"]
            assert not failed, json.dumps(failed, indent=1)
            conv = [a for a in ran(old, "c1-first") if a[0] == "lvconvert"]
            if conv:
                break
        # copies are added one LV at a time per VG (a raid1 sync at a time): root first
        assert [a[-2] for a in conv] == ["vg0/root"], (conv, ro)
        rep = report(old)
        assert lvs(rep)["vg0/root"]["lv_layout"] == "raid,raid1", ro
        # the clone copies to LUN 1 (not throttled): let it finish before the link goes
        wait_for(lambda: old.run("test ! -e /sys/block/md100/md/sync_action || "
                                 "grep -qx idle /sys/block/md100/md/sync_action",
                                 check=False).ok, 120, "the /boot clone's sync")
        timings["commit1_first_pass"] = time.monotonic() - t0

        # Fault: the link is cut during the mirror sync.
        assert "recover" in dm_status(old, "vg0-root"), dm_status(old, "vg0-root")
        files_before_cut = int(old.run("wc -l < /tmp/data-mnt-root/writer.md5").out or 0)
        new.qmp("set_link", name="net0", up=False)
        wait_for(lambda: " AD " in dm_status(old, "vg0-root") or " DA " in dm_status(old, "vg0-root"),
                 90, "the remote leg of root to fail")
        mark(old, "c1-link-down")
        rd = reconcile(old, node="old", timeout=300)
        assert rd.doc is not None, rd
        done = ran(old, "c1-link-down")
        assert not [a for a in done if a[0] in SPLITTING or "--splitmirrors" in a
                    or ("--mirrors" in a and a[a.index("--mirrors") + 1] == "0")
                    or (a[0] == "iscsiadm" and "--logout" in a)], done
        blocked = rd.doc["plan"]["blocked"]
        assert blocked, f"the plan does not say why nothing proceeds:\n{plan_says(rd)}"
        assert any("missing" in b["reason"] and b["object"] in ("vg vg0", "lv vg0/root")
                   for b in blocked), plan_says(rd)
        print("link down, the plan says:", json.dumps(blocked, indent=1))
        rep = report(old)
        assert lvs(rep)["vg0/root"]["lv_layout"] == "raid,raid1"  # nothing detached
        assert sorted(vgs(rep)) == ["vg0"]
        time.sleep(2)
        files_during_cut = int(old.run("wc -l < /tmp/data-mnt-root/writer.md5").out)
        assert files_during_cut > files_before_cut, "old stopped writing while the link was down"

        # The link returns: the legs come back, the sync resumes and completes.
        new.qmp("set_link", name="net0", up=True)
        new.throttle(1)
        wait_for(lambda: old.run("cat /sys/class/iscsi_session/session*/state",
                                 check=False).out.split() == ["LOGGED_IN"], 90, "iscsid's re-login")
        mark(old, "c1-link-back")
        rw = reconcile(old, "--wait", node="old", timeout=600)
        assert rw.rc == 0, f"{plan_says(rw)}\n{rw}"
        back = ran(old, "c1-link-back")
        assert ["lvchange", "--refresh", "vg0/root"] in back, back
        rep = report(old)
        for name in ("vg0/root", "vg0/srv"):
            lv = lvs(rep)[name]
            assert (lv["lv_layout"], lv["sync_percent"], lv["lv_health_status"]) == \
                ("raid,raid1", "100.00", ""), lv
        assert old.run("test -e /sys/block/md100/md", check=False).rc != 0, "clone array not split"
        root.stop_writer()
        assert root.writer_files > 0
        timings["commit1_converged"] = time.monotonic() - t0

        # The seed stops the services: data checked and unmounted before the handover.
        root.verify()
        srv.verify()
        old.run(["umount", "/mnt/root"])
        old.run(["umount", "/mnt/srv"])
        manifests = {f"{d}/{m}": old.read_file(f"{d}/{m}")
                     for d, ms in (("/tmp/data-mnt-root", ("before.md5", "writer.md5")),
                                   ("/tmp/data-mnt-srv", ("before.md5",)))
                     for m in ms}
        ledger = old.run(f"if [ -d {LEDGER_DIR} ]; then tar -C / -cz {LEDGER_DIR.lstrip('/')} "
                         "| base64 -w0; fi").out

        # ---- commit 2: handover, old killed in the middle ---------------------------------
        checkout(repo, c2, old, new)
        mark(old, "c2")
        hold(old, "vgsplit")  # killed after the splits and deactivations, before vgsplit runs
        fut = spawn_reconcile(old, "--wait", node="old", timeout=300)
        try:
            wait_for(lambda: held(old, "vgsplit") or fut.done(), 240, "the handover's vgsplit")
        except LabError:
            pass
        if not held(old, "vgsplit"):
            res = old.wait(fut, timeout=60)
            raise AssertionError(f"the handover never reached vgsplit; rc {res.rc}\n"
                                 f"{res.out[-4000:]}\n{res.err[-4000:]}")
        before_kill = ran(old, "c2")
        old.kill()
        killed_after = before_kill[-2]
        assert before_kill[-1][0] == "vgsplit", before_kill
        print("old killed after:", killed_after)
        old.close()
        timings["commit2_killed"] = time.monotonic() - t0
        old = Guest("old", old_disks, nics=[link.a], udev=True, lvm={"polling_interval": 1})
        boot(old)
        prepare_old(old)
        if ledger:
            old.run("base64 -d | tar -C / -xz", input=ledger)
        checkout(repo, c2, old)
        mark(old, "c2-after-restart")
        rh = reconcile(old, "--wait", node="old", timeout=600)
        assert rh.rc == 0, f"{plan_says(rh)}\n{rh}"
        print("after the restart old ran:", ran(old, "c2-after-restart"))
        rep = report(old)
        assert pvs_of(rep, "vg0") == ["/dev/vda"], rep
        assert vgs(rep)["vg0"]["vg_missing_pv_count"] == "0"
        assert vgs(rep)["vg0moved"]["vg_attr"][2] == "x", vgs(rep)  # exported
        for name in ("root", "srv"):
            assert lvs(rep)[f"vg0/{name}"]["lv_layout"] == "linear"
            assert lvs(rep)[f"vg0moved/{name}"]["lv_active"] == ""
        rn2 = reconcile(new, node="new")
        assert rn2.rc == 0, rn2
        timings["commit2_done"] = time.monotonic() - t0

        # ---- commit 3: old logs out, new ends the export, takes over and grows -----------
        checkout(repo, c3, old, new)
        ro3 = reconcile(old, node="old", timeout=300)
        assert ro3.rc == 0, f"{plan_says(ro3)}\n{ro3}"
        assert old.run("ls /sys/class/iscsi_session/", check=False).out.split() == [], ro3
        new.qmp("block_resize", device="d1", size=256 * MiB)
        mark(new, "c3")
        rt = reconcile(new, "--wait", node="new", timeout=600)
        assert rt.rc == 0, f"{plan_says(rt)}\n{rt}"
        done = ran(new, "c3")
        assert ["vgimport", "vg0moved"] in done and ["vgrename", "vg0moved", "vg0"] in done, done
        assert ["pvresize", "/dev/vdb"] in done, done
        assert [a for a in done if a[0] == "lvextend" and "--resizefs" in a], done
        targets = new.run(["ls", "/sys/kernel/config/target/iscsi"], check=False).out.split()
        assert not [t for t in targets if t.startswith("iqn.")], f"the export did not end: {targets}"
        timings["commit3_done"] = time.monotonic() - t0

        # ---- the proof on new ---------------------------------------------------------------
        rep = report(new)
        assert vgs(rep)["vg0"]["vg_missing_pv_count"] == "0" and vgs(rep)["vg0"]["vg_attr"] == "wz--n-"
        assert pvs_of(rep, "vg0") == ["/dev/vdb"]
        pv = [p for obj in rep["report"] for p in obj.get("pv", []) if p["pv_name"] == "/dev/vdb"][0]
        assert int(pv["pv_size"]) > 250 * MiB, pv
        assert lvs(rep)["vg0/root"]["lv_size"] == str(64 * MiB)
        for path, text in manifests.items():
            new.run(["mkdir", "-p", path.rsplit("/", 1)[0]])
            new.write_file(path, text)
        new.sh("mkdir -p /mnt/root /mnt/srv; mount /dev/vg0/root /mnt/root; mount /dev/vg0/srv /mnt/srv")
        blocks, bsize = map(int, new.run(["stat", "-f", "-c", "%b %S", "/mnt/root"]).out.split())
        # 48 MiB of LV held ~40 MiB of ext4 data blocks; 64 MiB hold ~55
        assert blocks * bsize > 50 * MiB, f"root's file system did not grow: {blocks} x {bsize}"
        for d, n in (("root", root.writer_files), ("srv", 0)):
            moved = Data(new, f"/dev/vg0/{d}", f"/mnt/{d}")
            moved.writer_files = n
            moved.verify()  # umount, e2fsck -fn, drop caches, mount, every md5
        assert new.run(["md5sum", "/dev/vda"]).out.split()[0] == boot_md5, "the /boot clone differs"

        # ---- the way back: old's vg0 is complete and its data intact --------------------------
        rep = report(old)
        assert vgs(rep)["vg0"]["vg_missing_pv_count"] == "0" and pvs_of(rep, "vg0") == ["/dev/vda"]
        old.run(["vgchange", "--activate", "y", "vg0"])
        for path, text in manifests.items():
            old.run(["mkdir", "-p", path.rsplit("/", 1)[0]])
            old.write_file(path, text)
        old.sh("mkdir -p /mnt/root /mnt/srv; mount /dev/vg0/root /mnt/root; mount /dev/vg0/srv /mnt/srv")
        for d, n in (("root", root.writer_files), ("srv", 0)):
            fallback = Data(old, f"/dev/vg0/{d}", f"/mnt/{d}")
            fallback.writer_files = n
            fallback.verify()
        assert old.run(["md5sum", "/dev/vdb"]).out.split()[0] == boot_md5
    finally:
        old.close()
        new.close()
        for d in (*old_disks, *new_disks):
            d.remove()
        if repo is not None:
            subprocess.run(["rm", "-rf", str(repo)], check=False)
    print(f"seed 004 server move: {time.monotonic() - t0:.1f}s;",
          ", ".join(f"{k} at {v:.0f}s" for k, v in timings.items()))
