"""The lockd simulator and the lockd parsers against the lab's recordings
(tests/fixtures/outputs/lvmlockd, lvm2 2.03.16 + lvmlockd + sanlock on two nodes).

The ``shared`` scenario is replayed in its recorded order on a simulated two-node cluster
and every modelled command must give the recorded exit code, stdout and stderr, byte for
byte; the parsers read the recorded ``lvmlockctl --info`` and dm sysfs listings; the
classifier sorts each recorded lvmlockd message as the issue asks (wait, start it, retry,
error). ``COMPARES`` claims the recordings for tests/simulate/test_fixture_coverage.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support import M, FIXTURES

from reconciler import errors
from reconciler.adapters import lockd as lockd_adapter
from reconciler.adapters import lvm
from reconciler.runner import Command, CommandResult
from reconciler.simulate.lockd_tools import LockdCluster
from reconciler.simulate.ops import extend_lv

OUTPUTS = FIXTURES / "outputs"
LOCKD = OUTPUTS / "lvmlockd"


def recorded(case: str) -> tuple[tuple[str, ...], int, str, str]:
    text = (LOCKD / "commands" / f"{case}.txt").read_text()
    argv = tuple(re.search(r"^argv: (.*)$", text, re.M).group(1).split())
    rc = int(re.search(r"^rc: (-?\d+)$", text, re.M).group(1))
    out = text.split("--- stdout\n", 1)[1].split("--- stderr\n", 1)
    return argv, rc, out[0], out[1]


# The ``shared`` scenario, in its recorded order: (case, node). None: a step of the
# scenario done directly on the model (what no command of the reconciler's does).
SHARED = [
    ("vgcreate_shared_a", "a"), ("lvcreate_lv1_32m", None), ("lvchange_asy_not_started_b", "b"),
    ("lvcreate_not_started_b", "b"), ("lvextend_not_started_b", "b"),
    ("lock_start_again_a", "a"), ("lock_start_b", "b"), ("lock_start_again_b", "b"),
    ("lvchange_aey_conflict_b", "b"), ("lvchange_asy_conflict_b", "b"),
    ("lvextend_active_elsewhere_b", "b"), ("lvremove_active_elsewhere_b", "b"),
    ("lvextend_ex_a", "a"), ("lvchange_aey_again_a", "a"), ("lvchange_aln_a", "a"),
    ("lvextend_inactive_a", "a"), ("lvchange_aey_b", "b"), ("lvchange_aln_b", "b"),
    ("lvchange_asy_a", "a"), ("lvchange_asy_b", "b"), ("lvchange_aey_while_shared_a", "a"),
    ("lvextend_shared_both_a", "a"), ("pvmove_shared_a", "a"),
    ("shupdate", None), ("lvchange_refresh_b", "b"), ("lvchange_aln_shared_b", "b"),
    ("lvextend_shared_one_a", "a"), ("lvchange_aln_shared_a", "a"), ("lvchange_aey_a", "a"),
    ("pvmove_active_elsewhere_b", "b"), ("lvchange_aln_ex_a", "a"),
    ("lvcreate_lv2_a", "a"), ("lvchange_aln_lv2_a", "a"), ("lvchange_asy_lv2_b", "b"),
    ("lvremove_shared_elsewhere_a", "a"), ("lvchange_aln_lv2_b", "b"),
    ("lvremove_inactive_a", "a"), ("lvcreate_lv3_a", "a"), ("lvchange_aln_lv3_a", "a"),
    ("lvchange_aey_lv3_b", "b"), ("mount_lv3_b", None), ("lvremove_ex_elsewhere_a", "a"),
    ("lvremove_skiplv_a", "a"), ("dmsetup_remove_stale_open_b", "b"),
    ("lvchange_aln_stale_b", "b"), ("umount_lv3_b", None), ("dmsetup_remove_stale_b", "b"),
]
# lvcreate_a.txt is the ``unstarted`` scenario's (8 MiB; both scenarios wrote that name).
COMPARED = {f"lvmlockd/commands/{case}.txt" for case, node in SHARED if node} | {
    "lvmlockd/commands/lvcreate_a.txt"}


def test_the_shared_scenario_replays_as_recorded():
    c = LockdCluster({"node-a": 1, "node-b": 2})
    c.add_disk("/dev/vda", 1024 * M)
    c.add_disk("/dev/vdb", 256 * M)
    nodes = {"a": c.node("node-a"), "b": c.node("node-b")}
    compared = []
    for case, node in SHARED:
        if case == "shupdate":  # lvextend --lockopt shupdate on node-a (not modelled): +4M
            lv1 = c.lvm.vgs["vgs"].lvs["lv1"]
            extend_lv(lv1, lv1.extents + 1, lv1.vg.pvs)
            c.nodes["node-a"].dm["vgs-lv1"].sectors += 8192
            continue
        if case == "lvcreate_lv1_32m":  # the shared scenario's lvcreate (32 MiB on /dev/vda)
            assert nodes["a"].run(Command(argv=("lvcreate", "--yes", "--name", "lv1", "--size",
                                                "33554432b", "vgs", "/dev/vda"))).ok
            continue
        if case == "mount_lv3_b":
            c.mount("node-b", "vgs", "lv3", "/mnt/lv3")
            continue
        if case == "umount_lv3_b":
            c.umount("node-b", "vgs", "lv3")
            continue
        argv, rc, out, err = recorded(case)
        res = nodes[node].run(Command(argv=argv, mutates=True))
        assert (res.rc, res.stdout, res.stderr) == (rc, out, err), case
        compared.append(f"lvmlockd/commands/{case}.txt")
    # The unstarted scenario's lvcreate (lvcreate_a.txt), on a fresh cluster.
    c2 = LockdCluster({"node-a": 1, "node-b": 2})
    c2.add_disk("/dev/vda", 1024 * M)
    a2 = c2.node("node-a")
    assert a2.run(Command(argv=("vgcreate", "--shared", "vgs", "/dev/vda"))).ok
    argv, rc, out, err = recorded("lvcreate_a")
    assert (lambda r: (r.rc, r.stdout, r.stderr))(a2.run(Command(argv=argv))) == (rc, out, err)
    compared.append("lvmlockd/commands/lvcreate_a.txt")
    assert set(compared) == COMPARED
    b = c.nodes["node-b"]
    # What the scenario ends with on node-b: the stale device gone, lv3's lock leaked.
    assert "vgs-lv3" not in b.dm and any("node-b" in h for h in c.locks.held.values())


def _state_section(name: str, argv: str) -> str:
    text = (LOCKD / "state" / f"{name}.txt").read_text()
    part = text.split(f"=== argv: {argv}\n", 1)[1]
    return part.split("--- stdout\n", 1)[1].split("--- stderr\n", 1)[0]


@pytest.mark.parametrize("name, spaces, locks", [
    ("lv_sh_both_b", {"vgs": "sanlock"}, {"QgJkT7-CB6z-GHcQ-j195-FRTb-3dzy-YSoBZI": "sh"}),
    ("vg_not_started_b", {}, {}),
    ("after_host_id_in_use_b", {}, {}),
])
def test_lvmlockctl_info_as_recorded(name, spaces, locks):
    assert lockd_adapter.parse_info(_state_section(name, "lvmlockctl --info")) == (spaces, locks)


def test_the_dm_names_and_uuids_of_the_recordings():
    listing = _state_section("lv_sh_both_b", "sh -c grep -H . /sys/block/dm-*/dm/name "
                             "/sys/block/dm-*/dm/uuid /sys/block/dm-*/size /sys/block/dm-*/dm/suspended "
                             "/sys/block/dm-*/ro 2>&1; ls /sys/block/dm-*/holders /sys/block/dm-*/slaves 2>&1")
    names = dict(re.findall(r"^/sys/block/(dm-\d+)/dm/name:(.*)$", listing, re.M))
    uuids = dict(re.findall(r"^/sys/block/(dm-\d+)/dm/uuid:(.*)$", listing, re.M))
    assert [lockd_adapter.split_dm_name(names[k]) for k in sorted(names)] == [
        ("vgs", "lvmlock"), ("vgs", "lv1")]
    vg_uuid = "hSkTd1-TeRR-VQZo-b1xV-3HAK-qoOA-WqEXoy"
    assert lockd_adapter.lv_uuid_of_dm(uuids["dm-1"], vg_uuid) == \
        "QgJkT7-CB6z-GHcQ-j195-FRTb-3dzy-YSoBZI".replace("-", "")
    assert lockd_adapter.lv_uuid_of_dm(uuids["dm-1"], "other") is None
    assert lockd_adapter.split_dm_name("my--vg-lv--1") == ("my-vg", "lv-1")
    assert lockd_adapter.split_dm_name("vgs-lv1-real") is None


@pytest.mark.parametrize("case, kind", [
    ("lvchange_aey_conflict_b", errors.FailureKind.PEER),  # wait for the other node
    ("lvchange_asy_conflict_b", errors.FailureKind.PEER),
    ("lvremove_active_elsewhere_b", errors.FailureKind.PEER),
    ("pvmove_active_elsewhere_b", errors.FailureKind.PEER),
    ("lvchange_asy_not_started_b", errors.FailureKind.FATAL),  # start the lockspace
    ("lock_start_no_lvmlockd_b", errors.FailureKind.FATAL),
    ("lock_start_no_sanlock_b", errors.FailureKind.FATAL),
    ("lock_start_no_host_id_b", errors.FailureKind.FATAL),
    ("lock_start_disk_failed_b", errors.FailureKind.FATAL),  # sanlock lease I/O error
    ("lvextend_shared_both_a", errors.FailureKind.FATAL),
])
def test_lvmlockds_messages_are_classified(case, kind):
    argv, rc, out, err = recorded(case)
    res = CommandResult(command=Command(argv=argv), rc=rc, stdout=out, stderr=err)
    assert lvm.classify(res) is kind
    if kind is errors.FailureKind.FATAL and "lock_start" in case and "disk" not in case:
        assert lockd_adapter.setup_hint(err)


def test_a_peer_lock_is_not_retried_but_waited_for():
    """Old main classified "Failed to lock logical volume" as LOCKED: retried 5 times with
    backoff inside the pass, then a failure."""
    argv, rc, out, err = recorded("lvchange_aey_conflict_b")
    res = CommandResult(command=Command(argv=argv), rc=rc, stdout=out, stderr=err)
    assert not lvm.classify(res).is_transient


NOT_MODELLED = {
    "lvmlockd/commands/" + n + ".txt" for n in (
        # argv or tools the reconciler never runs on a shared VG; their messages are
        # checked by the classifier above or only documented in INDEX.md
        "field_lock_type_lvs_a", "field_lock_type_vgs_a", "field_lv_lock_args_a",
        "fullreport_daemons_no_vg_a", "fullreport_lv_sh_extended_elsewhere_b",
        "fullreport_no_daemons_a", "fullreport_vg_not_started_b",
        "fullreport_vg_shared_no_lvmlockd_b", "fullreport_vg_shared_no_sanlock_b",
        "lock_start_disk_failed_b", "lock_start_host_id_in_use_b", "lock_start_no_host_id_b",
        "lock_start_no_lvmlockd_b", "lock_start_no_sanlock_b", "lock_stop_active_a",
        "lock_stop_b", "lvchange_aey_raid1_a", "lvchange_aln_raid1_a", "lvchange_asy_raid1_b",
        "lvchange_asy_disk_failed_b", "lvchange_asy_no_lvmlockd_b", "lvconvert_m0_a",
        "lvconvert_splitmirrors_a", "lvcreate_lv4_a", "lvcreate_raid1_a", "lvextend_shupdate_a",
        "lvm_version_a", "lvmlockctl_info_after_host_id_in_use_b",
        "lvmlockctl_info_after_peer_host_id_in_use_a", "lvmlockctl_info_disk_failed_b",
        "lvmlockctl_info_no_lvmlockd_a", "lvmlockctl_info_no_sanlock_b", "pvmove_ex_a",
        "pvmove_inactive_a", "pvmove_no_lvmpolld_a", "pvmove_whole_pv_a",
        "sanlock_status_after_peer_host_id_in_use_a", "sanlock_status_disk_failed_b",
        "vgcreate_shared_no_lvmlockd_a", "vgextend_a", "vgmerge_a", "vgs_no_lvmlockd_b",
        "vgsplit_empty_pv_a", "vgsplit_with_lv_a")
} | {str(p.relative_to(OUTPUTS)) for p in LOCKD.glob("*.json")} \
  | {str(p.relative_to(OUTPUTS)) for p in (LOCKD / "state").glob("*.txt")}
COMPARES = frozenset(COMPARED | NOT_MODELLED)


def test_a_shared_disks_sysfs_lists_the_maps_that_claim_it_on_each_node():
    """/sys/dev/block/M:m/ of a shared disk, as each node's kernel shows it: its name
    (uevent), no partition, and as holders the device-mapper maps of the LVs active on that
    node with extents on it: what makes the exclusive-open probe answer EBUSY there
    (``claimed``), so what explains it."""
    c = LockdCluster({"node-a": 1, "node-b": 2})
    c.add_disk("/dev/vda", 1024 * M)
    a, b = c.node("node-a"), c.node("node-b")
    major, minor = a.resolve_device("/dev/vda")
    base = f"/sys/dev/block/{major}:{minor}"
    assert a.read(f"{base}/uevent") == f"MAJOR={major}\nMINOR={minor}\nDEVNAME=vda\nDEVTYPE=disk\n"
    assert "vda1" not in a.read(f"{base}/") and "holders" in a.read(f"{base}/").split()
    assert a.read(f"{base}/holders/") == "" and a.claimed(["/dev/vda"]) == {"/dev/vda": False}
    assert a.run(Command(argv=("vgcreate", "--shared", "vgs", "/dev/vda"))).ok
    assert a.run(Command(argv=("vgchange", "--lock-start", "vgs"))).ok
    assert a.run(Command(argv=("lvcreate", "--yes", "--name", "lv1", "--size", "33554432b",
                               "vgs", "/dev/vda"))).ok
    held = a.read(f"{base}/holders/").split()
    minors = {f"dm-{d.minor}" for d in c.nodes["node-a"].dm.values()}
    assert held and set(held) <= minors, (held, minors)
    assert a.claimed(["/dev/vda"]) == {"/dev/vda": True}
    assert b.read(f"{base}/holders/") == "" and b.claimed(["/dev/vda"]) == {"/dev/vda": False}
    assert a.read("/sys/dev/block/254:999/holders/") is None  # no such device
