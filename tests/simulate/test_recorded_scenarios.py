"""Replays the lab's recorded scenarios (tests/fixtures/outputs/lvm/INDEX.md) on the simulator.

Each scenario starts from the lab guest's disks; each recorded command must give the
recorded exit code, stdout and stderr byte for byte, and each recorded fullreport must
describe the same objects once UUIDs (random on both sides) are replaced by names.
Steps the lab ran without recording them are replayed as plain commands. A recording
that does not exist (yet) is skipped, so this file grows with the fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from simtools import run

from reconciler.adapters.lvm_report import FULLREPORT_ARGV
from reconciler.runner import Command
from reconciler.simulate import SimulatedHost

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "outputs" / "lvm"
M = 1 << 20
PROGRESS = ("copy_percent", "sync_percent")

pytestmark = pytest.mark.skipif(not (FIXTURES / "commands").is_dir(),
                                reason="no recorded lvm outputs yet")


def lab_host() -> SimulatedHost:
    host = SimulatedHost()
    for name, size in (("vda", 140), ("vdb", 808), ("vdc", 200), ("vdd", 200)):
        host.add_device(f"/dev/{name}", size * M)
    return host


def recorded_command(case: str) -> tuple[tuple[str, ...], int, str, str] | None:
    path = FIXTURES / "commands" / f"{case}.txt"
    if not path.exists():
        return None
    text = path.read_text()
    head, rest = text.split("--- stdout\n", 1)
    stdout, stderr = rest.split("--- stderr\n", 1)
    fields = dict(line.split(": ", 1) for line in head.splitlines()[1:] if ": " in line)
    return tuple(fields["argv"].split()), int(fields["rc"]), stdout, stderr


COMPARED: list[str] = []


def check_command(host: SimulatedHost, case: str) -> None:
    recorded = recorded_command(case)
    if recorded is None:
        return
    argv, rc, stdout, stderr = recorded
    res = run(host, *argv)
    assert (res.rc, res.stdout, res.stderr) == (rc, stdout, stderr), case
    COMPARED.append(case)


def canonical(report: list[dict], ignore: tuple[str, ...] = ()) -> list[dict]:
    """The report with every UUID replaced by the name it stands for, rows in name order."""
    out = []
    for obj in report:
        names = {}
        for row in obj.get("vg", []):
            names[row["vg_uuid"]] = row["vg_name"]
        for row in obj.get("pv", []):
            names[row["pv_uuid"]] = row["pv_name"]
        for row in obj.get("lv", []):
            names[row["lv_uuid"]] = row["lv_full_name"]
        sections = {}
        for section, rows in obj.items():
            rows = [{k: names.get(v, v) if k.endswith("uuid") else v
                     for k, v in row.items() if k not in ignore} for row in rows]
            if section in ("pvseg", "seg"):
                rows.sort(key=lambda r: json.dumps(r, sort_keys=True))
            sections[section] = rows
        out.append(sections)
    return out


def check_report(host: SimulatedHost, case: str, ignore: tuple[str, ...] = ()) -> None:
    path = FIXTURES / f"{case}.json"
    if not path.exists():
        return
    real = json.loads(path.read_text().split("\n", 1)[1])["report"]
    ours = json.loads(host.run(Command(argv=FULLREPORT_ARGV, mutates=False)).stdout)["report"]
    assert canonical(ours, ignore) == canonical(real, ignore), case
    COMPARED.append(case)


def two_pvs_linear(host: SimulatedHost) -> None:
    for argv in (("vgcreate", "vgglobal", "/dev/vda", "/dev/vdb"),
                 ("lvcreate", "--yes", "--name", "lvrepnb", "--size", f"{128 * M}b", "vgglobal",
                  "/dev/vda"),
                 ("lvcreate", "--yes", "--name", "mygfs", "--size", f"{324 * M}b", "vgglobal",
                  "/dev/vdb")):
        assert run(host, *argv).rc == 0


def test_basic_scenario():
    COMPARED.clear()
    host = lab_host()
    check_command(host, "lvm_version")
    check_report(host, "empty")
    check_command(host, "pvcreate_ok")
    check_command(host, "vgcreate_ok")
    check_command(host, "lvcreate_ok")
    if "vgglobal" not in host.model.vgs:
        two_pvs_linear(host)
    else:
        run(host, "lvcreate", "--yes", "--name", "mygfs", "--size", f"{324 * M}b", "vgglobal",
            "/dev/vdb")
    check_report(host, "two_pvs_linear")
    run(host, "pvcreate", "--yes", "/dev/vdc")
    check_report(host, "orphan_pv")
    for case in ("vgcreate_pv_in_other_vg", "pvcreate_pv_in_vg", "pvcreate_no_such_device",
                 "pvcreate_again_orphan", "vgextend_ok", "vgextend_pv_already_in_vg",
                 "lvcreate_no_space", "lvcreate_no_space_on_pv", "lvcreate_exists",
                 "lvcreate_bad_size"):
        check_command(host, case)
    if "/dev/vdc" not in [pv.name for pv in host.vg("vgglobal").pvs]:
        run(host, "vgextend", "vgglobal", "/dev/vdc")
    run(host, "lvcreate", "--yes", "--name", "lvspan", "--size", f"{8 * M}b", "vgglobal",
        "/dev/vda")
    check_command(host, "lvextend_ok")
    check_report(host, "lv_spanning")
    for case in ("lvextend_no_space", "lvextend_not_larger", "lvextend_same_size", "lvreduce_ok",
                 "lvreduce_not_smaller", "lvremove_ok", "lvremove_no_such_lv",
                 "vgreduce_pv_in_use", "vgreduce_ok", "vgreduce_pv_not_in_vg",
                 "pvmove_nothing_to_move", "pvmove_no_space_on_dst", "pvmove_src_not_in_vg",
                 "pvmove_dst_not_in_vg", "lvcreate_no_such_vg", "vgextend_no_such_vg",
                 "vgreduce_no_such_vg", "lvextend_no_such_vg", "lvreduce_no_such_vg",
                 "lvremove_no_such_vg", "pvmove_no_such_vg", "lvconvert_no_such_vg",
                 "vgcreate_existing_name"):
        check_command(host, case)
    assert COMPARED, "the recordings exist but none of the basic cases was found"


def test_pvmove_scenario():
    COMPARED.clear()
    host = lab_host()
    two_pvs_linear(host)
    run(host, "pvcreate", "--yes", "/dev/vdc")
    check_command(host, "pvmove_ok")
    if "pvmove0" not in host.vg("vgglobal").lvs:
        run(host, "pvmove", "--background", "--name", "vgglobal/lvrepnb", "/dev/vda", "/dev/vdb")
    check_report(host, "pvmove_in_progress", ignore=PROGRESS)
    check_command(host, "pvmove_same_lv_again")
    host.crash_after(0)  # the lab killed the poller; here the whole host goes down
    host.recover()
    check_report(host, "pvmove_interrupted", ignore=PROGRESS)
    host.clock.advance(3600)
    assert "pvmove0" in host.vg("vgglobal").lvs  # nothing polls it
    check_command(host, "pvmove_resume_interrupted")
    run(host, "pvmove", "--background")
    host.clock.advance(3600)
    check_report(host, "pvmove_done")
    check_command(host, "pvmove_resume_none")
    run(host, "vgextend", "vgglobal", "/dev/vdc")
    check_command(host, "pvmove_name_lv_only")
    host.clock.advance(3600)
    assert host.lv("vgglobal", "lvrepnb").segments[0].areas[0][0].name == "/dev/vdc"
    assert COMPARED


def test_raid1_scenario():
    COMPARED.clear()
    host = lab_host()
    two_pvs_linear(host)
    check_command(host, "lvconvert_raid1_ok")
    if host.lv("vgglobal", "lvrepnb").kind != "raid1":
        run(host, "lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vgglobal/lvrepnb",
            "/dev/vdb")
    check_report(host, "raid1_syncing", ignore=PROGRESS)
    check_command(host, "lvconvert_split_while_syncing")
    check_command(host, "lvconvert_raid1_while_syncing")
    host.clock.advance(3600)
    check_report(host, "raid1_synced")
    check_command(host, "lvconvert_split_ok")
    check_report(host, "raid1_split_done")
    check_command(host, "lvconvert_split_not_mirrored")
    check_command(host, "lvconvert_raid1_no_space")
    assert COMPARED
