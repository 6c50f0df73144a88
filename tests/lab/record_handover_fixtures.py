#!/usr/bin/env python3
"""Record real LVM outputs of seed 004's server move (issue 13) in two lab guests.

    python3 tests/lab/record_handover_fixtures.py [--out tests/fixtures/outputs]

Two guests on a Link. ``new`` exports its /dev/vdb as LUN 0 through LIO (rtslib, no CHAP);
``old`` (udev on, for the by-path name, as production runs) logs in with open-iscsi
(``node.session.timeo.replacement_timeout = 5`` in iscsid.conf before discovery, so a cut
link fails the remote leg within seconds instead of blocking I/O for 120 s) and mirrors
vg0's LVs onto the remote disk, then hands the copy over with split mirrors, vgsplit and
vgexport; ``new`` drops the export, imports, renames, activates and grows. The link is cut
with QMP ``set_link`` on new's NIC during the mirror sync.

Everything goes to ``lvm/`` beside record_fixtures.py's recordings, in its format
(``<case>.json`` = FULLREPORT_ARGV's stdout after a header line; ``commands/<case>.txt`` =
argv, rc, stdout, stderr), every case named ``handover_*`` (old node) or ``takeover_*``
(new node), and this script's entries (scenarios ``handover`` and ``takeover``, in the order
they were produced, both nodes interleaved) replace the earlier ones in ``lvm/INDEX.md``.
PV arguments are passed as the reconciler passes them: udev's by-path name with ``:``
escaped (adapters/lvm.py ``pv_arg``); lvm reports the PV as /dev/sda.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from harness import Guest, LabError, Link, boot  # noqa: E402
from record_fixtures import Recorder, lv_of, pct  # noqa: E402

from reconciler.adapters.lvm import pv_arg  # noqa: E402

MiB = 1 << 20
IQN = "iqn.2003-01.org.example.new:export0"
INIT_OLD = "iqn.2004-10.com.example:old"
SCENARIOS = ("handover", "takeover")
ROOT = 48 * MiB
SRV = 16 * MiB

EXPORT = r'''
import sys
from rtslib_fb import (RTSRoot, BlockStorageObject, FabricModule, Target, TPG, NetworkPortal,
                       LUN, NodeACL, MappedLUN)
iqn, initiator, ip, dev = sys.argv[1:5]
RTSRoot()
tpg = TPG(Target(FabricModule("iscsi"), iqn, "create"), 1, "create")
NetworkPortal(tpg, ip, 3260, "create")
lun = LUN(tpg, 0, BlockStorageObject("export0_0", dev=dev))
MappedLUN(NodeACL(tpg, initiator, "create"), 0, lun)
tpg.set_attribute("authentication", "0")
tpg.set_attribute("generate_node_acls", "0")
tpg.enable = True
'''
UNEXPORT = ("from rtslib_fb import RTSRoot\nr = RTSRoot()\n"
            "for t in list(r.targets): t.delete()\n"
            "for so in list(r.storage_objects): so.delete()\n")


def vg_of(data: dict, name: str) -> dict | None:
    for obj in data["report"]:
        for vg in obj.get("vg", []):
            if vg["vg_name"] == name:
                return vg
    return None


def expect(cond: bool, what: str):
    return None if cond else what


def record(out: Path) -> list[str]:
    link = Link(net=1)
    old = Guest("old", ["128M"], nics=[link.a], udev=True, lvm={"polling_interval": 1})
    new = Guest("new", ["32M", "160M"], nics=[link.b], lvm={"polling_interval": 1})
    boot(old, new)
    try:
        portal = f"{link.b.ip}:3260"
        remote = f"/dev/disk/by-path/ip-{portal}-iscsi-{IQN}-lun-0"
        rpv = pv_arg(remote)
        ro = Recorder(old, out, "handover")
        rn = Recorder(new, out, "takeover")
        rn.index = ro.index  # one list: both nodes' cases in the order they happened

        new.sh("modprobe configfs; mountpoint -q /sys/kernel/config || "
               "mount -t configfs none /sys/kernel/config; modprobe target_core_iblock; "
               "modprobe iscsi_target_mod; mkdir -p /etc/target")
        new.run(["python3", "-c", EXPORT, IQN, INIT_OLD, link.b.ip, "/dev/vdb"])
        old.write_file("/etc/iscsi/initiatorname.iscsi", f"InitiatorName={INIT_OLD}\n")
        old.sh(f"""
            sed -i 's/^node.session.timeo.replacement_timeout = .*/node.session.timeo.replacement_timeout = 5/' /etc/iscsi/iscsid.conf
            modprobe iscsi_tcp; modprobe sd_mod; iscsid
            iscsiadm -m discovery -t sendtargets -p {portal}
            iscsiadm -m node -T {IQN} -p {portal} --login
            udevadm settle
            test -b {remote}
        """)
        old.run(["pvcreate", "--yes", "/dev/vda"])
        old.run(["vgcreate", "vg0", "/dev/vda"])
        old.run(["lvcreate", "--yes", "--name", "root", "--size", f"{ROOT}b", "vg0", "/dev/vda"])
        old.run(["lvcreate", "--yes", "--name", "srv", "--size", f"{SRV}b", "vg0", "/dev/vda"])
        old.sh("mkfs.ext4 -q /dev/vg0/root && mkdir -p /mnt/root && mount /dev/vg0/root /mnt/root"
               " && head -c 4M /dev/urandom > /mnt/root/f && sync")
        ro.cmd("handover_vgextend", ["vgextend", "vg0", remote],
               f"old: vg0 on /dev/vda (root {ROOT // MiB}M ext4 mounted, srv {SRV // MiB}M), new's "
               f"/dev/vdb logged in as LUN 0 (/dev/sda, udev by-path {remote}; not escaped: "
               "vgextend takes no PE ranges).", expect="ok")
        ro.cmd("handover_lvconvert_unescaped", ["lvconvert", "--yes", "--type", "raid1",
                                                "--mirrors", "1", "vg0/root", remote],
               "the by-path name NOT escaped: lvm reads `:3260-...` as a PE range.", expect="fail")

        # -- the copy onto the remote disk, the link cut during its sync, refresh -------------
        new.throttle(1, write_bps=1 * MiB)
        ro.cmd("handover_lvconvert_raid1", ["lvconvert", "--yes", "--type", "raid1", "--mirrors", "1",
                                            "vg0/root", rpv],
               "root mirrored onto the remote disk (escaped by-path name); new's /dev/vdb "
               "throttled to 1 MiB/s of writes.", expect="ok")
        ro.report("handover_raid1_syncing",
                  "root raid1 with its new leg on the iSCSI disk (/dev/sda), resync running.",
                  check=lambda d: expect(0 <= pct(lv_of(d, "root")["sync_percent"]) < 100,
                                         "root not mid-sync"))
        new.qmp("set_link", name="net0", up=False)
        ro.report("handover_link_cut",
                  "handover_raid1_syncing, then the link cut (QMP set_link off on new's NIC); this "
                  "fullreport, started at once, blocked until the iSCSI session's recovery "
                  "timed out (noop 5 s + replacement_timeout 5 s) and the leg failed.",
                  check=lambda d: expect(vg_of(d, "vg0")["vg_missing_pv_count"] == "1",
                                         "no PV missing"))
        ro.cmd("handover_split_leg_failed", ["lvconvert", "--yes", "--splitmirrors", "1", "--name",
                                             "root_handover", "vg0/root", rpv],
               "split the remote copy off while its leg is failed (link down).", expect="fail")
        new.qmp("set_link", name="net0", up=True)
        ro.wait_until("the iSCSI session back", lambda: old.run(
            "cat /sys/class/iscsi_session/session*/state").out.split() == ["LOGGED_IN"], 120)
        ro.wait_until("the PV back", lambda: vg_of(ro_report(old), "vg0")["vg_missing_pv_count"] == "0", 60)
        ro.report("handover_refresh_needed",
                  "handover_link_cut, then the link back: iscsid logged in again by itself (same "
                  "/dev/sda); the raid leg stays failed (dm `AD`).",
                  check=lambda d: expect(lv_of(d, "root")["lv_health_status"] == "refresh needed",
                                         "not refresh needed"))
        ro.cmd("handover_lvchange_refresh", ["lvchange", "--refresh", "vg0/root"],
               "lvmraid(7)'s transient failure recovery.", expect="ok")
        ro.report("handover_refreshed", "handover_refresh_needed, then `lvchange --refresh vg0/root`: "
                  "the recovery starts again (destination still throttled).",
                  check=lambda d: expect(lv_of(d, "root")["lv_health_status"] == "", "still unhealthy"))
        new.throttle(1)
        ro.wait_until("root in sync", lambda: pct(lv_of(ro_report(old), "root")["sync_percent"]) == 100
                      and lv_of(ro_report(old), "root")["raid_sync_action"] == "idle", 180)
        old.run(["lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vg0/srv", rpv])
        ro.wait_until("srv in sync", lambda: pct(lv_of(ro_report(old), "srv")["sync_percent"]) == 100
                      and lv_of(ro_report(old), "srv")["raid_sync_action"] == "idle", 180)
        ro.report("handover_raid1_synced",
                  "handover_refreshed, throttle off, root in sync; srv converted the same way "
                  "(not recorded) and in sync: every LV of vg0 has a complete leg on /dev/sda.",
                  check=lambda d: expect(all(pct(lv_of(d, n)["sync_percent"]) == 100
                                             for n in ("root", "srv")), "not in sync"))

        # -- the handover ---------------------------------------------------------------------
        old.run(["umount", "/mnt/root"])
        old.run(["lvchange", "--activate", "n", "vg0/srv"])
        ro.report("handover_raid1_inactive", "handover_raid1_synced, root unmounted, srv deactivated "
                  "(`lvchange --activate n vg0/srv`, not recorded).",
                  check=lambda d: expect(lv_of(d, "srv")["lv_active"] == "", "srv active"))
        ro.cmd("handover_split_inactive", ["lvconvert", "--yes", "--splitmirrors", "1", "--name",
                                           "srv_handover", "vg0/srv", rpv],
               "split an INACTIVE in-sync raid1: lvm cannot read its sync status.", expect="fail")
        old.run(["lvchange", "--activate", "y", "vg0/srv"])
        ro.cmd("handover_split_root", ["lvconvert", "--yes", "--splitmirrors", "1", "--name",
                                       "root_handover", "vg0/root", rpv],
               "root active (unmounted), in sync.", expect="ok")
        ro.cmd("handover_split_srv", ["lvconvert", "--yes", "--splitmirrors", "1", "--name",
                                      "srv_handover", "vg0/srv", rpv],
               "srv reactivated (`lvchange --activate y`, not recorded), in sync.", expect="ok")
        ro.report("handover_split", "both LVs split: root and srv linear on /dev/vda, "
                  "root_handover and srv_handover linear on /dev/sda, active.",
                  check=lambda d: expect(lv_of(d, "root_handover") is not None, "no root_handover"))
        ro.cmd("handover_vgsplit_lv_active", ["vgsplit", "vg0", "vg0moved", rpv],
               "the _handover LVs are still active.", expect="fail")
        ro.cmd("handover_deactivate_root", ["lvchange", "--activate", "n", "vg0/root_handover"], "",
               expect="ok")
        ro.cmd("handover_deactivate_srv", ["lvchange", "--activate", "n", "vg0/srv_handover"], "",
               expect="ok")
        ro.cmd("handover_vgsplit", ["vgsplit", "vg0", "vg0moved", rpv], "", expect="ok")
        ro.report("handover_vgsplit", "handover_split, the _handover LVs deactivated, then "
                  "`vgsplit vg0 vg0moved <remote>`.",
                  check=lambda d: expect(vg_of(d, "vg0moved") is not None, "no vg0moved"))
        ro.cmd("handover_lvrename_root", ["lvrename", "vg0moved", "root_handover", "root"], "", expect="ok")
        ro.cmd("handover_lvrename_srv", ["lvrename", "vg0moved", "srv_handover", "srv"], "", expect="ok")
        old.run(["lvchange", "--activate", "y", "vg0moved/srv"])
        ro.cmd("handover_vgexport_lv_active", ["vgexport", "vg0moved"],
               "vg0moved/srv active (as udev's autoactivation leaves it after a reboot and login).",
               expect="fail")
        old.run(["lvchange", "--activate", "n", "vg0moved/srv"])
        ro.cmd("handover_vgexport", ["vgexport", "vg0moved"], "every LV of vg0moved inactive.", expect="ok")
        ro.report("handover_exported", "handover_vgsplit, LVs renamed back, `vgexport vg0moved`: as "
                  "old sees it, still logged in.",
                  check=lambda d: expect(vg_of(d, "vg0moved")["vg_attr"][2] == "x", "not exported"))
        old.run(["iscsiadm", "-m", "node", "-T", IQN, "-p", portal, "--logout"])
        ro.report("handover_logged_out", "handover_exported, then the iSCSI logout: old keeps a "
                  "complete vg0.",
                  check=lambda d: expect(vg_of(d, "vg0moved") is None
                                         and vg_of(d, "vg0")["vg_missing_pv_count"] == "0", "shape"))

        # -- the takeover on new ----------------------------------------------------------------
        rn.report("takeover_exported_seen", "new, its /dev/vdb still exported by LIO, old logged "
                  "out: the exported vg0moved as new sees it.",
                  check=lambda d: expect(vg_of(d, "vg0moved") is not None, "no vg0moved"))
        rn.cmd("takeover_vgimport_while_exported", ["vgimport", "vg0moved"],
               "while LIO still exports /dev/vdb (lvm lets it happen).", expect="ok")
        rn.cmd("takeover_activate_while_exported", ["lvchange", "--activate", "y", "vg0moved/root"],
               "LIO's iblock holds /dev/vdb open exclusively.", expect="fail")
        new.run(["python3", "-c", UNEXPORT])
        rn.cmd("takeover_vgrename", ["vgrename", "vg0moved", "vg0"], "the LIO target deleted first.",
               expect="ok")
        rn.cmd("takeover_activate_root", ["lvchange", "--activate", "y", "vg0/root"], "", expect="ok")
        new.run(["lvchange", "--activate", "y", "vg0/srv"])
        new.sh("e2fsck -fn /dev/vg0/root && mkdir -p /mnt/root && mount /dev/vg0/root /mnt/root")
        rn.report("takeover_imported", "after `vgimport vg0moved` (above), the target removed, "
                  "`vgrename vg0moved vg0`, both LVs activated (srv not recorded), root mounted.",
                  check=lambda d: expect(vg_of(d, "vg0")["vg_attr"] == "wz--n-", "vg0 not plain"))
        new.qmp("block_resize", device="d1", size=256 * MiB)
        rn.wait_until("the new size", lambda: new.run(["blockdev", "--getsize64", "/dev/vdb"]).out.strip()
                      == str(256 * MiB), 30)
        rn.report("takeover_pv_grown", "takeover_imported, then /dev/vdb grown 160M -> 256M (QMP "
                  "block_resize; the virtio disk reports it at once): dev_size > pv_size.",
                  check=lambda d: expect(any(p["dev_size"] == str(256 * MiB) for o in d["report"]
                                             for p in o.get("pv", [])), "size not seen"))
        rn.cmd("takeover_pvresize", ["pvresize", "/dev/vdb"], "", expect="ok")
        rn.cmd("takeover_pvresize_again", ["pvresize", "/dev/vdb"], "nothing to grow.", expect="ok")
        rn.cmd("takeover_lvextend_resizefs", ["lvextend", "--resizefs", "--size", f"{64 * MiB}b",
                                              "vg0/root"],
               "root (ext4, mounted) 48M -> 64M; lvm runs fsadm, which runs resize2fs online.",
               expect="ok")
        rn.cmd("takeover_lvextend_resizefs_same", ["lvextend", "--resizefs", "--size", f"{64 * MiB}b",
                                                   "vg0/root"], "the same size again.")
        rn.report("takeover_grown", "takeover_pv_grown, then `pvresize /dev/vdb` and root grown "
                  "to 64M with its file system.",
                  check=lambda d: expect(lv_of(d, "root")["lv_size"] == str(64 * MiB), "not grown"))
        return ro.index
    finally:
        old.close()
        new.close()


def ro_report(g: Guest) -> dict:
    import json

    from reconciler.adapters.lvm_report import FULLREPORT_ARGV
    return json.loads(g.run(list(FULLREPORT_ARGV), timeout=120).out)


def merge(index: Path, fresh: list[str]) -> None:
    """INDEX.md with this script's scenarios' entries replaced by ``fresh`` (at the end)."""
    text = index.read_text()
    kept, current = [], None
    for line in text.splitlines():
        m = re.match(r"- `[^`]+` \((\w+)\)", line)
        if m:
            current = m.group(1)
        elif not line.startswith("  - "):
            current = None
        if current not in SCENARIOS:
            kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    index.write_text("\n".join(kept + fresh) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=HERE.parent / "fixtures" / "outputs")
    args = ap.parse_args()
    t0 = time.monotonic()
    lines = record(args.out)
    if not lines:
        raise LabError("nothing recorded")
    merge(args.out / "lvm" / "INDEX.md", lines)
    print(f"recorded {len(lines)} entries in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
