"""Replays the lab's recording of seed 004's server move (tests/lab/record_handover_fixtures.py,
scenarios ``handover`` on the old node and ``takeover`` on the new one) on two simulated hosts
joined by an iSCSI fabric, the way test_recorded_scenarios.py replays the one-host scenarios:
every recorded command gives the recorded exit code, stdout and stderr, every recorded
fullreport describes the same objects (progress columns ignored while a copy runs). The new
node sees what the old one wrote on the shared disk (reconciler/simulate/shared.py).
"""

from __future__ import annotations

import re

from test_recorded_scenarios import PROGRESS, Replay, read_command

from support import M

from reconciler.runner import Command
from reconciler.simulate import SimulatedHost
from reconciler.simulate.clock import SimClock
from reconciler.simulate.iscsi_model import Fabric

IQN = "iqn.2003-01.org.example.new:export0"
INIT_OLD = "iqn.2004-10.com.example:old"

HANDOVER = (
    "handover_raid1_syncing", "handover_link_cut", "handover_refresh_needed",
    "handover_refreshed", "handover_raid1_synced", "handover_raid1_inactive", "handover_split",
    "handover_vgsplit", "handover_exported", "handover_logged_out")
HANDOVER_CMDS = (
    "handover_vgextend", "handover_lvconvert_unescaped", "handover_lvconvert_raid1",
    "handover_split_leg_failed", "handover_lvchange_refresh", "handover_split_inactive",
    "handover_split_root", "handover_split_srv", "handover_vgsplit_lv_active",
    "handover_deactivate_root", "handover_deactivate_srv", "handover_vgsplit",
    "handover_lvrename_root", "handover_lvrename_srv", "handover_vgexport_lv_active",
    "handover_vgexport")
TAKEOVER = ("takeover_exported_seen", "takeover_imported", "takeover_pv_grown", "takeover_grown")
TAKEOVER_CMDS = (
    "takeover_vgimport_while_exported", "takeover_activate_while_exported", "takeover_vgrename",
    "takeover_activate_root", "takeover_pvresize", "takeover_pvresize_again",
    "takeover_lvextend_resizefs", "takeover_lvextend_resizefs_same")

SCENARIOS: dict[str, frozenset[str]] = {
    "handover": frozenset({f"lvm/{c}.json" for c in (*HANDOVER, *TAKEOVER)}
                          | {f"lvm/commands/{c}.txt" for c in (*HANDOVER_CMDS, *TAKEOVER_CMDS,
                                                               "fullreport_handover_link_cut")}),
}
COMPARES: frozenset[str] = frozenset().union(*SCENARIOS.values())


def _ok(host: SimulatedHost, *argv: str) -> None:
    res = host.run(Command(argv=tuple(argv)))
    assert res.rc == 0, (argv, res.stderr)


def _pair(portal: str) -> tuple[SimulatedHost, SimulatedHost]:
    """The lab's guests: old with /dev/vda 128M; new with /dev/vda 32M and /dev/vdb 160M,
    exporting vdb as LUN 0 of IQN to old (no CHAP); old logged in (vdb is old's /dev/sda)."""
    clock = SimClock()
    fabric = Fabric()
    old = SimulatedHost(clock=clock, seed="old", rate_bytes_per_s=M)  # new's disk throttled
    new = SimulatedHost(clock=clock, seed="new")
    fabric.join(old, initiator=INIT_OLD)
    fabric.join(new)
    old.add_device("/dev/vda", 128 * M)
    new.add_device("/dev/vda", 32 * M)
    new.add_device("/dev/vdb", 160 * M)
    _ok(new, "modprobe", "-a", "configfs", "target_core_mod", "target_core_iblock",
        "iscsi_target_mod")
    _lio(new, portal)
    _ok(old, "iscsiadm", "-m", "discovery", "-t", "sendtargets", "-p", portal)
    _ok(old, "iscsiadm", "-m", "node", "-T", IQN, "-p", portal, "--login")
    return old, new


def _lio(new: SimulatedHost, portal: str, delete: bool = False) -> None:
    import json
    _ok(new, "python3", "-m", "reconciler.adapters.iscsi", "lio-apply", json.dumps(
        {"acls": [INIT_OLD], "chap_file": "", "delete": delete, "iqn": IQN,
         "luns": {"0": "/dev/vdb"}, "name": "export0", "portals": [portal], "remove_luns": []}))


def test_handover_and_takeover_scenario():
    argv = read_command("handover_vgextend")[0]
    portal = re.fullmatch(r"/dev/disk/by-path/ip-(.+:\d+)-iscsi-.*", argv[-1]).group(1)
    old, new = _pair(portal)
    ro, rn = Replay(old), Replay(new)
    for a in (("pvcreate", "--yes", "/dev/vda"), ("vgcreate", "vg0", "/dev/vda"),
              ("lvcreate", "--yes", "--name", "root", "--size", f"{48 * M}b", "vg0", "/dev/vda"),
              ("lvcreate", "--yes", "--name", "srv", "--size", f"{16 * M}b", "vg0", "/dev/vda")):
        _ok(old, *a)
    old.mkfs("/dev/vg0/root", "ext4")
    old.mount("/dev/vg0/root", "/mnt/root")
    ro.command("handover_vgextend")
    ro.command("handover_lvconvert_unescaped")
    ro.command("handover_lvconvert_raid1")
    old.clock.advance(2)
    ro.report("handover_raid1_syncing", ignore=PROGRESS)
    old.fail_device("/dev/sda")  # the link cut: the session's I/O fails after its timeouts
    old.clock.advance(15)
    ro.report("handover_link_cut", ignore=PROGRESS)
    ro.command("handover_split_leg_failed")
    old.restore_device("/dev/sda")  # iscsid logged in again by itself
    ro.report("handover_refresh_needed")
    ro.command("handover_lvchange_refresh")
    ro.report("handover_refreshed", ignore=PROGRESS)
    old.rate_bytes_per_s = 64 * M  # throttle off
    old.clock.advance(60)
    _ok(old, "lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vg0/srv",
        argv[-1].replace(":", "\\:"))
    old.clock.advance(60)
    ro.report("handover_raid1_synced")
    old.umount("/mnt/root")
    _ok(old, "lvchange", "--activate", "n", "vg0/srv")
    ro.report("handover_raid1_inactive")
    ro.command("handover_split_inactive")
    _ok(old, "lvchange", "--activate", "y", "vg0/srv")
    for case in ("handover_split_root", "handover_split_srv"):
        ro.command(case)
    ro.report("handover_split")
    for case in ("handover_vgsplit_lv_active", "handover_deactivate_root",
                 "handover_deactivate_srv", "handover_vgsplit"):
        ro.command(case)
    ro.report("handover_vgsplit")
    ro.command("handover_lvrename_root")
    ro.command("handover_lvrename_srv")
    _ok(old, "lvchange", "--activate", "y", "vg0moved/srv")
    ro.command("handover_vgexport_lv_active")
    _ok(old, "lvchange", "--activate", "n", "vg0moved/srv")
    ro.command("handover_vgexport")
    ro.report("handover_exported")
    _ok(old, "iscsiadm", "-m", "node", "-T", IQN, "-p", portal, "--logout")
    ro.report("handover_logged_out")
    # the takeover on new
    rn.report("takeover_exported_seen")
    rn.command("takeover_vgimport_while_exported")
    rn.command("takeover_activate_while_exported")
    _lio(new, portal, delete=True)
    rn.command("takeover_vgrename")
    rn.command("takeover_activate_root")
    _ok(new, "lvchange", "--activate", "y", "vg0/srv")
    new.mount("/dev/vg0/root", "/mnt/root")
    rn.report("takeover_imported")
    new.grow_device("/dev/vdb", 256 * M)
    rn.report("takeover_pv_grown")
    for case in ("takeover_pvresize", "takeover_pvresize_again", "takeover_lvextend_resizefs",
                 "takeover_lvextend_resizefs_same"):
        rn.command(case)
    rn.report("takeover_grown")
    assert frozenset(ro.compared + rn.compared) == SCENARIOS["handover"]
