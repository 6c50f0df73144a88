"""The lab's lvmlockd + sanlock recordings (tests/fixtures/outputs/lvmlockd/INDEX.md), checked.

Groundwork for issue 10: nothing in the reconciler or the simulator models lvmlockd yet, so
these recordings are not replayed. What is checked instead, so that they cannot rot unnoticed
and so that the coming implementation can rely on them:

- every report parses with the project's parser, whose columns are the pass's plus the lock
  columns; the parser ignores the lock columns (parsing gives the same state without them),
  and each report is the stdout its ``commands/fullreport_<case>.txt`` recorded, when lvm
  wrote to stderr;
- every command and state recording has the recorder's header, on the node its name says;
- the facts INDEX.md's findings state and the coming work will rely on: the exact lock
  messages, ``lv_active_exclusively`` after ``-asy``, the ``<vg>-lvmlock`` dm device of a
  started lockspace, a lock-start that says rc 0 without a lockspace, ``--lockopt shupdate``
  leaving the other node's table unrefreshed.

These recordings predate the pass's ``--foreign`` and its PV area columns (``RECORDED_ARGV``
says exactly how their argv differs); re-recording them changes ``RECORDED_ARGV`` here.
``COMPARES`` lists every file this module checks (test_fixture_coverage.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from support import FIXTURES

from reconciler.adapters import lvm
from reconciler.adapters.lvm_report import FULLREPORT_ARGV

LOCKD = FIXTURES / "outputs" / "lvmlockd"
VG = "vgs"

# Columns the pass's report gained after these recordings were made (recorded without them).
NOT_YET_RECORDED = ("--foreign", "vg_systemid", "pe_start", "pv_mda_count", "pv_mda_size")
# The lock columns the lab asked for on top of the pass's (tests/lab/lockd.py, LOCKD_*_EXTRA).
LOCK_VG_COLUMNS = ("vg_shared", "vg_lock_args", "vg_systemid")
LOCK_LV_COLUMNS = ("lv_lockargs", "lv_active_remotely")
IGNORED_BY_PARSER = {"vg_shared", "vg_lock_args", "lv_lockargs", "lv_active_remotely"}


def _recorded_argv() -> tuple[str, ...]:
    out: list[str] = []
    for i, arg in enumerate(FULLREPORT_ARGV):
        if arg in NOT_YET_RECORDED:
            continue
        if FULLREPORT_ARGV[i - 1] == "-o":
            section = FULLREPORT_ARGV[i - 2]
            cols = [c for c in arg.split(",") if c not in NOT_YET_RECORDED]
            cols += {"vg": LOCK_VG_COLUMNS, "lv": LOCK_LV_COLUMNS}.get(section, ())
            arg = ",".join(cols)
        out.append(arg)
    return tuple(out)


RECORDED_ARGV = _recorded_argv()

REPORTS = (
    'after_pvmoves_a', 'after_vgsplit_a', 'after_vgsplit_with_lv_a', 'daemons_no_vg_a',
    'lock_stopped_b', 'lv_ex_a_a', 'lv_ex_a_b', 'lv_ex_b_b', 'lv_inactive_a', 'lv_inactive_b',
    'lv_removed_elsewhere_b', 'lv_sh_both_a', 'lv_sh_both_b', 'lv_sh_extended_elsewhere_b',
    'no_daemons_a', 'peer_disk_failed_a', 'raid1_ex_a', 'started_b', 'vg_not_started_b',
    'vg_shared_no_lvmlockd_b', 'vg_shared_no_sanlock_b', 'vg_started_a',
)
# Reports whose run wrote to stderr: recorded whole as commands/fullreport_<case>.txt too.
REPORT_STDERR = {
    'daemons_no_vg_a': "  Skipping global lock: lockspace not found or started\n",
    'no_daemons_a': "  WARNING: lvmlockd process is not running.\n"
                    "  Reading without shared global lock.\n",
    'vg_not_started_b': "  Skipping global lock: lockspace not found or started\n"
                        "  Reading VG vgs without a lock.\n",
    'vg_shared_no_lvmlockd_b': "  WARNING: lvmlockd process is not running.\n"
                               "  Reading without shared global lock.\n"
                               "  Reading VG vgs without a lock.\n",
    'vg_shared_no_sanlock_b': "  Start a lock manager, lvmlockd did not find one running.\n"
                              "  Skipping global lock: lockspace not found or started\n"
                              "  Reading VG vgs without a lock.\n",
    'lv_sh_extended_elsewhere_b': "  WARNING: Cannot find matching striped segment for vgs/lv1.\n",
}
COMMANDS = (
    'dmsetup_remove_stale_b', 'dmsetup_remove_stale_open_b', 'field_lock_type_lvs_a',
    'field_lock_type_vgs_a', 'field_lv_lock_args_a', 'lock_start_again_a', 'lock_start_again_b',
    'lock_start_b', 'lock_start_disk_failed_b', 'lock_start_host_id_in_use_b',
    'lock_start_no_host_id_b', 'lock_start_no_lvmlockd_b', 'lock_start_no_sanlock_b',
    'lock_stop_active_a', 'lock_stop_b', 'lvchange_aey_a', 'lvchange_aey_again_a',
    'lvchange_aey_b', 'lvchange_aey_conflict_b', 'lvchange_aey_lv3_b', 'lvchange_aey_raid1_a',
    'lvchange_aey_while_shared_a', 'lvchange_aln_a', 'lvchange_aln_b', 'lvchange_aln_ex_a',
    'lvchange_aln_lv2_a', 'lvchange_aln_lv2_b', 'lvchange_aln_lv3_a', 'lvchange_aln_raid1_a',
    'lvchange_aln_shared_a', 'lvchange_aln_shared_b', 'lvchange_aln_stale_b', 'lvchange_asy_a',
    'lvchange_asy_b', 'lvchange_asy_conflict_b', 'lvchange_asy_disk_failed_b',
    'lvchange_asy_lv2_b', 'lvchange_asy_no_lvmlockd_b', 'lvchange_asy_not_started_b',
    'lvchange_asy_raid1_b', 'lvchange_refresh_b', 'lvconvert_m0_a', 'lvconvert_splitmirrors_a',
    'lvcreate_a', 'lvcreate_lv2_a', 'lvcreate_lv3_a', 'lvcreate_lv4_a',
    'lvcreate_not_started_b', 'lvcreate_raid1_a', 'lvextend_active_elsewhere_b',
    'lvextend_ex_a', 'lvextend_inactive_a', 'lvextend_not_started_b', 'lvextend_shared_both_a',
    'lvextend_shared_one_a', 'lvextend_shupdate_a', 'lvm_version_a',
    'lvmlockctl_info_after_host_id_in_use_b', 'lvmlockctl_info_after_peer_host_id_in_use_a',
    'lvmlockctl_info_disk_failed_b', 'lvmlockctl_info_no_lvmlockd_a',
    'lvmlockctl_info_no_sanlock_b', 'lvremove_active_elsewhere_b', 'lvremove_ex_elsewhere_a',
    'lvremove_inactive_a', 'lvremove_shared_elsewhere_a', 'lvremove_skiplv_a',
    'pvmove_active_elsewhere_b', 'pvmove_ex_a', 'pvmove_inactive_a', 'pvmove_no_lvmpolld_a',
    'pvmove_shared_a', 'pvmove_whole_pv_a', 'sanlock_status_after_peer_host_id_in_use_a',
    'sanlock_status_disk_failed_b', 'vgcreate_shared_a', 'vgcreate_shared_no_lvmlockd_a',
    'vgextend_a', 'vgmerge_a', 'vgs_no_lvmlockd_b', 'vgsplit_empty_pv_a', 'vgsplit_with_lv_a',
)
STATES = (
    'after_host_id_in_use_b', 'after_refresh_b', 'before_refresh_b', 'daemons_no_vg_b',
    'disk_failed_b', 'end_a', 'end_b', 'lock_stopped_b', 'lockspace_started_b', 'lv_sh_both_b',
    'no_daemons_a', 'stale_dm_closed_b', 'stale_dm_open_b', 'stale_dm_removed_b',
    'vg_not_started_b', 'vg_started_a',
)
# States with the VG's lockspace started on that node, and without it.
LOCKSPACE_STARTED = ('vg_started_a', 'lockspace_started_b', 'lv_sh_both_b', 'before_refresh_b',
                     'after_refresh_b', 'end_a', 'end_b')
NO_LOCKSPACE = ('daemons_no_vg_b', 'vg_not_started_b', 'no_daemons_a')

COMPARES: frozenset[str] = frozenset(
    [f"lvmlockd/{c}.json" for c in REPORTS]
    + [f"lvmlockd/commands/fullreport_{c}.txt" for c in REPORT_STDERR]
    + [f"lvmlockd/commands/{c}.txt" for c in COMMANDS]
    + [f"lvmlockd/state/{c}.txt" for c in STATES])

HEADER = re.compile(r"# lvm2 2\.03\.16\(2\) \(2022-05-18\); kernel [\w.-]+; ")


def node_of(case: str) -> str:
    return {"a": "node-a", "b": "node-b"}[case.rsplit("_", 1)[1]]


def read_report(case: str) -> tuple[str, str]:
    header, body = (LOCKD / f"{case}.json").read_text().split("\n", 1)
    return header, body


def read_command(case: str) -> tuple[tuple[str, ...], int, str, str]:
    """A recorded command, its header checked; a missing recording is an error."""
    text = (LOCKD / "commands" / f"{case}.txt").read_text()
    first, second, third, rest = text.split("\n", 3)
    assert HEADER.match(first), f"{case}: header {first!r}"
    argv = first.split("; argv: ", 1)[1]
    assert second == f"argv: {argv}", f"{case}: argv line {second!r}"
    assert re.fullmatch(r"rc: -?\d+", third), f"{case}: rc line {third!r}"
    assert rest.startswith("--- stdout\n"), case
    stdout, stderr = rest[len("--- stdout\n"):].split("--- stderr\n", 1)
    return tuple(argv.split()), int(third[4:]), stdout, stderr


def read_state(case: str) -> dict[str, str]:
    """A state capture: its ``=== argv:`` blocks' stdout by argv, header checked."""
    text = (LOCKD / "state" / f"{case}.txt").read_text()
    first, rest = text.split("\n", 1)
    assert HEADER.match(first) and first.endswith(f"; node: {node_of(case)}; state: {case}"), first
    blocks = {}
    for block in rest.split("=== argv: ")[1:]:
        argv, body = block.split("\n", 1)
        assert re.match(r"rc: -?\d+\n--- stdout\n", body), f"{case}: {argv}"
        blocks[argv] = body.split("--- stdout\n", 1)[1].split("--- stderr\n", 1)[0]
    assert len(blocks) == 7, f"{case}: {list(blocks)}"
    return blocks


def rows(case: str, section: str) -> list[dict]:
    return [row for obj in json.loads(read_report(case)[1])["report"] for row in obj.get(section, [])]


def lv_row(case: str, name: str) -> dict:
    (row,) = [r for r in rows(case, "lv") if r["lv_name"] == name]
    return row


def dm(case: str) -> dict[str, int]:
    """dm device name -> size in 512-byte sectors, from the state's /sys/block/dm-* lines."""
    sysfs = next(v for k, v in read_state(case).items() if k.startswith("sh -c grep -H . /sys/block"))
    names = dict(re.findall(r"^/sys/block/(dm-\d+)/dm/name:(.*)$", sysfs, re.M))
    sizes = dict(re.findall(r"^/sys/block/(dm-\d+)/size:(\d+)$", sysfs, re.M))
    return {name: int(sizes[dev]) for dev, name in names.items()}


# -- every recording ----------------------------------------------------------------------

@pytest.mark.parametrize("case", REPORTS)
def test_each_report_parses_and_the_parser_ignores_only_the_lock_columns(case):
    header, body = read_report(case)
    assert HEADER.match(header) and header.endswith("; argv: " + " ".join(RECORDED_ARGV)), case
    doc = json.loads(body)
    columns = {s: a.split(",") for s, a in zip(RECORDED_ARGV[RECORDED_ARGV.index("--configreport") + 1::4],
                                               RECORDED_ARGV[RECORDED_ARGV.index("--configreport") + 3::4])}
    for obj in doc["report"]:
        for section, section_rows in obj.items():
            for row in section_rows:
                assert list(row) == columns[section], (case, section)
    parsed = lvm.parse_fullreport(body)
    stripped = {"report": [{s: [{k: v for k, v in r.items() if k not in IGNORED_BY_PARSER} for r in rs]
                            for s, rs in obj.items()} for obj in doc["report"]]}
    assert lvm.parse_fullreport(json.dumps(stripped)) == parsed, case
    assert all(vg.lock_type == "sanlock" for name, vg in parsed.vgs.items() if name == VG), case


@pytest.mark.parametrize("case", REPORTS)
def test_a_report_that_wrote_to_stderr_is_recorded_whole(case):
    companion = LOCKD / "commands" / f"fullreport_{case}.txt"
    assert companion.exists() == (case in REPORT_STDERR), case
    if case in REPORT_STDERR:
        argv, rc, stdout, stderr = read_command(f"fullreport_{case}")
        assert (argv, rc, stdout, stderr) == (RECORDED_ARGV, 0, read_report(case)[1],
                                              REPORT_STDERR[case])


@pytest.mark.parametrize("case", COMMANDS)
def test_each_command_recording_has_the_recorders_format(case):
    argv, rc, stdout, stderr = read_command(case)
    assert argv and all(line.startswith("  ") or not line for line in stderr.split("\n")
                        if argv[0] not in ("dmsetup", "sanlock", "lvmlockctl")), case


@pytest.mark.parametrize("case", STATES)
def test_each_state_capture_has_its_probes(case):
    blocks = read_state(case)
    assert "lvmlockctl --info" in blocks and "sanlock client status" in blocks, case


# -- the findings the coming lvmlockd work relies on -----------------------------------------

def test_a_lock_held_by_the_other_node_is_named_in_these_words():
    for case in ("lvchange_aey_conflict_b", "lvchange_asy_conflict_b"):
        assert read_command(case)[1:] == (5, "", "  LV locked by other host: vgs/lv1\n"
                                                 "  Failed to lock logical volume vgs/lv1.\n"), case
    for case, lv in (("lvextend_active_elsewhere_b", "lv1"), ("lvremove_active_elsewhere_b", "lv1"),
                     ("lvremove_shared_elsewhere_a", "lv2"), ("lvremove_ex_elsewhere_a", "lv3")):
        assert read_command(case)[1:] == (5, "", f"  LV locked by other host: vgs/{lv}\n"), case
    assert read_command("pvmove_active_elsewhere_b")[1:] == (
        5, "", "  LV locked by other host: vgs/lv1\n"
               "  pvmove in a shared VG requires exclusive lock on named LV.\n")


def test_other_lock_refusals_are_named_in_these_words():
    for case in ("lvchange_asy_not_started_b", "lvcreate_not_started_b", "lvextend_not_started_b"):
        assert read_command(case)[1:] == (5, "", "  Cannot access VG vgs due to failed lock.\n"), case
    for case in ("lvextend_shared_both_a", "lvextend_shared_one_a"):
        assert read_command(case)[1:] == (
            5, "", "  LV is already locked with incompatible mode: vgs/lv1\n"), case
    assert read_command("lvchange_asy_raid1_b")[1:] == (
        5, "", "  Shared activation not compatible with LV type raid1 of vgs/r1\n"
               "  Failed to lock logical volume vgs/r1.\n")
    assert read_command("lvconvert_splitmirrors_a")[1] == 5
    assert "Splitting raid image is not allowed with lock_type sanlock." in \
        read_command("lvconvert_splitmirrors_a")[3]


def test_the_report_cannot_tell_shared_from_exclusive_nor_see_the_other_node():
    for case in ("lv_sh_both_a", "lv_sh_both_b"):  # lv1 activated with -asy on both nodes
        row = lv_row(case, "lv1")
        assert (row["lv_active"], row["lv_active_exclusively"]) == ("active", "active exclusively")
    assert {r["lv_active_remotely"] for case in REPORTS for r in rows(case, "lv")} <= {""}
    row = lv_row("lv_ex_a_b", "lv1")  # active exclusively on node-a, seen from node-b
    assert (row["lv_active"], row["lv_active_exclusively"]) == ("", "")
    assert not lvm.parse_fullreport(read_report("lv_ex_a_b")[1]).vgs[VG].lvs["lv1"].attr.is_active
    # the mode per node is lvmlockctl's: "LK LV sh <lv_uuid>" on node-b
    info = read_state("lv_sh_both_b")["lvmlockctl --info"]
    assert f"LK LV sh {lv_row('lv_sh_both_b', 'lv1')['lv_uuid']}\n" in info


def test_a_shared_vg_says_so_in_the_report():
    (vg,) = rows("vg_started_a", "vg")
    assert (vg["vg_attr"][5], vg["vg_shared"], vg["vg_lock_type"], vg["vg_lock_args"],
            vg["vg_systemid"]) == ("s", "shared", "sanlock", "1.0.0:lvmlock", "")
    lock = lv_row("vg_started_a", "[lvmlock]")
    assert (lock["lv_size"], lock["lv_role"]) == (str(256 << 20), "private,lockd,sanlock")
    for row in rows("lv_ex_a_a", "lv"):
        if row["lv_name"] == "lv1":
            assert re.fullmatch(r"1\.0\.0:\d+", row["lv_lockargs"])
    (new,) = [r for r in rows("after_vgsplit_a", "vg") if r["vg_name"] == "vgnew"]
    assert (new["vg_lock_type"], new["vg_shared"]) == ("", "")  # vgsplit made a local VG


def test_a_started_lockspace_shows_as_the_vgs_lvmlock_dm_device():
    for case in LOCKSPACE_STARTED:
        assert "vgs-lvmlock" in dm(case), case
    for case in NO_LOCKSPACE:
        assert "vgs-lvmlock" not in dm(case), case
    assert read_state("vg_not_started_b")["lvmlockctl --info"] == ""


def test_a_lock_start_with_a_host_id_in_use_says_rc_0_without_a_lockspace():
    good = read_command("lock_start_b")
    in_use = read_command("lock_start_host_id_in_use_b")
    assert in_use[1:] == good[1:] and in_use[1] == 0
    assert read_command("lvmlockctl_info_after_host_id_in_use_b")[1:] == (0, "", "")
    assert "VG vgs starting sanlock lockspace" in good[2]


def test_shupdate_leaves_the_other_nodes_table_until_its_refresh():
    rc, _, stderr = read_command("lvextend_shupdate_a")[1:]
    assert rc == 0 and "  Refreshing LV /dev//vgs/lv1 on other hosts...\n" in stderr
    size = int(lv_row("lv_sh_extended_elsewhere_b", "lv1")["lv_size"]) // 512
    assert (dm("before_refresh_b")["vgs-lv1"], size) == (81920, 90112)
    assert read_command("lvchange_refresh_b")[1] == 0
    assert dm("after_refresh_b")["vgs-lv1"] == 90112


def test_a_stale_dm_device_stays_where_the_lv_was_removed_with_skiplv():
    assert read_command("lvremove_skiplv_a")[1:] == (
        0, '  Logical volume "lv3" successfully removed.\n', "  WARNING: skipping LV lock in lvmlockd.\n")
    assert "lv3" not in {r["lv_name"] for r in rows("lv_removed_elsewhere_b", "lv")}
    assert "vgs-lv3" in dm("stale_dm_open_b") and "vgs-lv3" not in dm("stale_dm_removed_b")
    assert read_command("dmsetup_remove_stale_open_b")[1] == 1
    assert read_command("dmsetup_remove_stale_b")[1] == 0


def test_the_files_both_scenarios_named_alike_hold_the_unstarted_ones():
    """``commands/vgcreate_shared_a``, ``lvcreate_a`` and ``lock_start_b`` were written by
    both scenarios; the second (``unstarted``) overwrote the first's (INDEX.md says so)."""
    assert read_command("lvcreate_a")[0] == ("lvcreate", "--yes", "--name", "lv1", "--size",
                                             f"{8 << 20}b", VG)
    assert read_command("lock_start_b")[1] == 0
    assert read_command("vgcreate_shared_a")[1] == 0
