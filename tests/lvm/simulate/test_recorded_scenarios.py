"""Replays the lab's recorded scenarios (tests/fixtures/outputs/lvm/INDEX.md) on the simulator.

Each scenario starts from the lab guest's disks; each recorded command must give the
recorded exit code, stdout and stderr byte for byte (UUIDs, random on both sides, replaced
by the device or LV they stand for), and each recorded fullreport must describe the same
objects, with the same stderr. Steps the lab ran without recording them are replayed as
plain commands. A recording that is missing fails the test, and each scenario must compare
exactly the files it claims in ``SCENARIOS``: test_fixture_coverage.py checks that every
recording under tests/fixtures/outputs/ is claimed by some comparison.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from support import M, FIXTURES
from support.simtools import open_device, run

from reconciler.adapters import lvm
from reconciler.adapters.lvm_report import FULLREPORT_ARGV
from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command
from reconciler.simulate import SimulatedHost

OUTPUTS = FIXTURES / "outputs"
FIXTURES = OUTPUTS / "lvm"
PROGRESS = ("copy_percent", "sync_percent")
UUID = re.compile(r"\b[A-Za-z0-9]{6}(?:-[A-Za-z0-9]{4}){5}-[A-Za-z0-9]{6}\b")


def lab_host(disks: int = 4) -> SimulatedHost:
    host = SimulatedHost()
    for name, size in zip(("vda", "vdb", "vdc", "vdd", "vde", "vdf"), (140, 808, 200, 200, 200, 200)):
        if disks:
            host.add_device(f"/dev/{name}", size * M)
            disks -= 1
    return host


def read_command(case: str) -> tuple[tuple[str, ...], int, str, str]:
    """A recorded command; a missing recording is an error, never a skip."""
    text = (FIXTURES / "commands" / f"{case}.txt").read_text()
    head, rest = text.split("--- stdout\n", 1)
    stdout, stderr = rest.split("--- stderr\n", 1)
    fields = dict(line.split(": ", 1) for line in head.splitlines()[1:] if ": " in line)
    return tuple(fields["argv"].split()), int(fields["rc"]), stdout, stderr


def read_report(case: str) -> str:
    header, body = (FIXTURES / f"{case}.json").read_text().split("\n", 1)
    assert header.endswith("argv: " + " ".join(FULLREPORT_ARGV)), f"{case}: recorded with another argv"
    return body


def index_stderr(case: str) -> str | None:
    """The first line of a report's stderr, for the few states whose INDEX.md entry records
    it inline (``rc=0; stderr: `...``) instead of in ``commands/fullreport_<case>.txt``."""
    m = re.search(rf"^- `{case}\.json` .* rc=0; stderr: `([^`\n]*)$", (FIXTURES / "INDEX.md").read_text(),
                  re.M)
    return m.group(1).strip() if m else None


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


class Replay:
    """Compares a simulated host with one recorded scenario, and lists what it compared."""

    def __init__(self, host: SimulatedHost):
        self.host = host
        self.compared: list[str] = []
        self.real_names: dict[str, str] = {}  # the lab's UUIDs -> device path / VG/LV name

    def _sim_names(self) -> dict[str, str]:
        names = {}
        for pv in self.host.model.pvs.values():
            names[pv.uuid] = f"<pv {pv.device.path}>"
        for vg in self.host.model.vgs.values():
            names[vg.uuid] = f"<vg {vg.name}>"
            for lv in vg.lvs.values():
                names[lv.uuid] = f"<lv {lv.full_name}>"
        return names

    def _learn(self, report: list[dict]) -> None:
        for obj in report:
            for row in obj.get("vg", []):
                self.real_names[row["vg_uuid"]] = f"<vg {row['vg_name']}>"
            for row in obj.get("pv", []):
                if row["pv_name"] != "[unknown]":  # a missing PV keeps its earlier name
                    self.real_names[row["pv_uuid"]] = f"<pv {row['pv_name']}>"
            for row in obj.get("lv", []):
                self.real_names[row["lv_uuid"]] = f"<lv {row['lv_full_name']}>"

    @staticmethod
    def _named(text: str, names: dict[str, str]) -> str:
        return UUID.sub(lambda m: names.get(m.group(0), "<uuid not in the scenario>"), text)

    def command(self, case: str) -> None:
        argv, rc, stdout, stderr = read_command(case)
        res = run(self.host, *argv)
        sim = self._sim_names()
        got = (res.rc, self._named(res.stdout, sim), self._named(res.stderr, sim))
        want = (rc, self._named(stdout, self.real_names), self._named(stderr, self.real_names))
        assert got == want, case
        self.compared.append(f"lvm/commands/{case}.txt")

    def report(self, case: str, ignore: tuple[str, ...] = (), failed: str | None = None) -> None:
        """The state ``case``.json; and its stderr, recorded as commands/fullreport_<case>.txt
        when lvm wrote any (otherwise lvm wrote none, and neither may the simulator).
        ``failed``: the device the lab failed, when no earlier report of the scenario named
        the PV lvm now calls "[unknown]"."""
        body = read_report(case)
        real = json.loads(body)["report"]
        res = self.host.run(Command(argv=FULLREPORT_ARGV, mutates=False))
        ours = json.loads(res.stdout)["report"]
        assert canonical(ours, ignore) == canonical(real, ignore), case
        if failed is not None:
            (uuid,) = [row["pv_uuid"] for obj in real for row in obj.get("pv", [])
                       if row["pv_name"] == "[unknown]"]
            self.real_names[uuid] = f"<pv {failed}>"
        self._learn(real)
        self.compared.append(f"lvm/{case}.json")
        companion = FIXTURES / "commands" / f"fullreport_{case}.txt"
        inline = index_stderr(case)
        if inline is not None:  # only the first line was recorded, in INDEX.md
            assert not companion.exists(), case
            first = res.stderr.split("\n", 1)[0].strip()
            assert (res.rc, self._named(first, self._sim_names())) == \
                (0, self._named(inline, self.real_names)), case
        elif companion.exists():
            argv, rc, stdout, stderr = read_command(f"fullreport_{case}")
            assert argv == FULLREPORT_ARGV and stdout == body, f"{companion} is not {case}.json's run"
            assert (res.rc, self._named(res.stderr, self._sim_names())) == \
                (rc, self._named(stderr, self.real_names)), case
            self.compared.append(f"lvm/commands/fullreport_{case}.txt")
        else:
            assert (res.rc, res.stderr) == (0, ""), case


def two_pvs_linear(host: SimulatedHost) -> None:
    for argv in (("vgcreate", "vgglobal", "/dev/vda", "/dev/vdb"),
                 ("lvcreate", "--yes", "--name", "lvrepnb", "--size", f"{128 * M}b", "vgglobal",
                  "/dev/vda"),
                 ("lvcreate", "--yes", "--name", "mygfs", "--size", f"{324 * M}b", "vgglobal",
                  "/dev/vdb")):
        assert run(host, *argv).rc == 0


def _files(*names: str) -> frozenset[str]:
    return frozenset(f"lvm/{n}.json" if "/" not in n else f"lvm/{n}.txt" for n in names)


def _cmds(*cases: str) -> tuple[str, ...]:
    return tuple(f"commands/{c}" for c in cases)


BASIC_COMMANDS = (
    "vgcreate_pv_in_other_vg", "pvcreate_pv_in_vg", "pvcreate_no_such_device",
    "pvcreate_again_orphan", "vgextend_ok", "vgextend_pv_already_in_vg", "lvcreate_no_space",
    "lvcreate_no_space_on_pv", "lvcreate_exists", "lvcreate_size_not_sector_multiple",
    "lvcreate_rounded_up")
BASIC_LATER = (
    "lvextend_no_space", "lvextend_not_larger", "lvextend_same_size", "lvreduce_ok",
    "lvreduce_not_smaller", "lvremove_ok", "lvremove_no_such_lv", "vgreduce_pv_in_use",
    "vgreduce_ok", "vgreduce_pv_not_in_vg", "pvmove_nothing_to_move", "pvmove_no_space_on_dst",
    "pvmove_src_not_in_vg", "pvmove_dst_not_in_vg", "lvcreate_no_such_vg", "vgextend_no_such_vg",
    "vgreduce_no_such_vg", "lvextend_no_such_vg", "lvreduce_no_such_vg", "lvremove_no_such_vg",
    "pvmove_no_such_vg", "lvconvert_no_such_vg", "vgcreate_existing_name")
INUSE_LABELS = ("lvchange_addtag", "lvchange_addtag_again")
INUSE_TAGS = ("lvchange_deltag", "lvchange_deltag_absent", "lvchange_addtag_no_such_lv")
MISSING_COMMANDS = (
    "pvcreate_while_vg_partial", "vgextend_partial_vg", "vgcreate_while_vg_partial",
    "lvreduce_partial_vg", "lvcreate_partial_vg", "lvextend_partial_vg",
    "lvchange_addtag_partial_vg", "vgreduce_partial_vg_healthy_pv",
    "vgreduce_partial_vg_missing_pv", "pvmove_partial_vg_healthy_lv",
    "pvmove_partial_vg_from_missing", "lvconvert_raid1_partial_vg",
    "lvconvert_split_partial_keep_missing", "lvconvert_split_partial_drop_missing",
    "lvremove_partial_vg_healthy_lv", "lvremove_partial_lv")

# What each scenario test compares, exactly (relative to tests/fixtures/outputs).
SCENARIOS: dict[str, frozenset[str]] = {
    "basic": _files("empty", "two_pvs_linear", "orphan_pv", "lv_spanning", *_cmds(
        "lvm_version", "pvcreate_ok", "vgcreate_ok", "lvcreate_ok", "lvextend_ok",
        *BASIC_COMMANDS, *BASIC_LATER)),
    "pvmove": _files("pvmove_in_progress", "pvmove_interrupted", "pvmove_done", *_cmds(
        "pvmove_ok", "pvmove_same_lv_again", "pvmove_resume_interrupted", "pvmove_resume_none",
        "pvmove_name_lv_only")),
    "raid1": _files("raid1_syncing", "raid1_synced", "raid1_split_done", *_cmds(
        "lvconvert_raid1_ok", "lvconvert_split_while_syncing", "lvconvert_raid1_while_syncing",
        "lvconvert_split_ok", "lvconvert_split_not_mirrored", "lvconvert_raid1_no_space")),
    "inuse": _files("lv_open_mounted", "lv_tagged", "lv_held", "lv_open_raw", "lv_closed", *_cmds(
        "lvremove_open_mounted", *INUSE_LABELS, *INUSE_TAGS, "lvremove_held",
        "lvremove_open_raw")),
    "missing": _files("pv_healthy", "pv_missing", "pv_missing_after", *_cmds(
        "fullreport_pv_missing", "fullreport_pv_missing_after", *MISSING_COMMANDS)),
    "raid1fail": _files("raid1_new_leg_failed_mid_sync", *_cmds("lvconvert_split_new_leg_failed")),
    "raid1fail_synced": _files("raid1_new_leg_failed_after_sync"),
    "raid1refresh": _files("raid1_refresh_needed"),
}

# Recordings of what the simulator does not model, each with the reason; for each, the
# simulator must refuse the command that made it (UnsupportedCommand), never imitate it,
# and the recorded state must parse (tests/lvm/parse/test_lvm_parse.py checks its content).
NOT_MODELLED: dict[str, str] = {
    "lvm/commands/pvmove_foreground_ok.txt": "pvmove in the foreground: the reconciler only "
                                             "runs it with --background",
    "lvm/commands/fullreport_no_such_vg.txt": "a report restricted to one VG: the reconciler "
                                              "only runs FULLREPORT_ARGV",
    "lvm/commands/lvconvert_mirror_corelog.txt": "old-style mirrors (--type mirror): the "
                                                 "reconciler makes raid1",
    "lvm/mirror_corelog_syncing.json": "made by lvconvert --type mirror (not modelled)",
    "lvm/mirror_corelog_synced.json": "made by lvconvert --type mirror (not modelled)",
    "lvm/raid1_new_leg_failed_after_sync_written.json": "a write to the LV that meets the failed "
                                                        "leg: the simulator models no LV I/O",
    "lvm/commands/lvm_systemid_none.txt": "LVM system IDs: the simulated host has none",
    "lvm/commands/lvm_systemid.txt": "LVM system IDs: the simulated host has none",
    "lvm/commands/vgcreate_with_system_id.txt": "a VG given the host's system ID (lvmlocal.conf): "
                                                "the simulated host has none",
    "lvm/foreign_vg.json": "a VG with another host's system ID (vgchange --systemid)",
    "lvm/foreign_vg_no_local_id.json": "VGs with system IDs on a host without one",
    "lvm/commands/pvcreate_pv_in_foreign_vg.txt": "needs a foreign VG (vgchange --systemid)",
    "lvm/commands/vgextend_pv_in_foreign_vg.txt": "needs a foreign VG (vgchange --systemid)",
    "lvm/commands/lvcreate_in_foreign_vg.txt": "needs a foreign VG (vgchange --systemid)",
    "lvm/commands/fullreport_without_foreign.txt": "a report without --foreign: the reconciler "
                                                   "only runs FULLREPORT_ARGV",
}
# What made each state, when it is not the recording's own argv: a recorded case's name, or
# the argv of the lab's unrecorded step (tests/lab/record_fixtures.py), which the simulator
# must refuse.
SYSTEMID = ("vgchange", "--yes", "--systemid", "hostb", "vgglobal")
MADE_BY: dict[str, str | tuple[str, ...]] = {
    "lvm/mirror_corelog_syncing.json": "lvconvert_mirror_corelog",
    "lvm/mirror_corelog_synced.json": "lvconvert_mirror_corelog",
    "lvm/raid1_new_leg_failed_after_sync_written.json": (
        "dd", "if=/dev/urandom", "of=/dev/vgglobal/lvrepnb", "bs=1M", "count=4", "oflag=direct"),
    "lvm/commands/vgcreate_with_system_id.txt": "lvm_systemid",
    "lvm/foreign_vg.json": SYSTEMID,
    "lvm/foreign_vg_no_local_id.json": SYSTEMID,
    "lvm/commands/pvcreate_pv_in_foreign_vg.txt": SYSTEMID,
    "lvm/commands/vgextend_pv_in_foreign_vg.txt": SYSTEMID,
    "lvm/commands/lvcreate_in_foreign_vg.txt": SYSTEMID,
}

COMPARES: frozenset[str] = frozenset().union(*SCENARIOS.values(), NOT_MODELLED)


def test_basic_scenario():
    host = lab_host()
    r = Replay(host)
    r.command("lvm_version")
    r.report("empty")
    r.command("pvcreate_ok")
    run(host, "pvcreate", "--yes", "/dev/vdb")
    r.command("vgcreate_ok")
    r.command("lvcreate_ok")
    run(host, "lvcreate", "--yes", "--name", "mygfs", "--size", f"{324 * M}b", "vgglobal",
        "/dev/vdb")
    r.report("two_pvs_linear")
    run(host, "pvcreate", "--yes", "/dev/vdc")
    r.report("orphan_pv")
    for case in BASIC_COMMANDS:
        r.command(case)
    assert run(host, "lvremove", "--yes", "vgglobal/odd").rc == 0
    assert run(host, "lvcreate", "--yes", "--name", "lvspan", "--size", f"{8 * M}b", "vgglobal",
               "/dev/vda").rc == 0
    r.command("lvextend_ok")
    r.report("lv_spanning")
    for case in BASIC_LATER:
        r.command(case)
    assert frozenset(r.compared) == SCENARIOS["basic"]


def test_pvmove_scenario():
    host = lab_host(3)
    r = Replay(host)
    two_pvs_linear(host)
    run(host, "pvcreate", "--yes", "/dev/vdc")
    r.command("pvmove_ok")
    r.report("pvmove_in_progress", ignore=PROGRESS)
    r.command("pvmove_same_lv_again")
    host.crash_after(0)  # the lab killed the poller; here the whole host goes down
    host.recover()
    r.report("pvmove_interrupted", ignore=PROGRESS)
    host.clock.advance(3600)
    assert "pvmove0" in host.vg("vgglobal").lvs  # nothing polls it
    r.command("pvmove_resume_interrupted")
    host.clock.advance(3600)
    r.report("pvmove_done")
    r.command("pvmove_resume_none")
    run(host, "vgextend", "vgglobal", "/dev/vdc")
    r.command("pvmove_name_lv_only")
    host.clock.advance(3600)
    assert host.lv("vgglobal", "lvrepnb").segments[0].areas[0][0].name == "/dev/vdc"
    assert frozenset(r.compared) == SCENARIOS["pvmove"]


def test_raid1_scenario():
    host = lab_host(2)
    r = Replay(host)
    two_pvs_linear(host)
    r.command("lvconvert_raid1_ok")
    r.report("raid1_syncing", ignore=PROGRESS)
    r.command("lvconvert_split_while_syncing")
    r.command("lvconvert_raid1_while_syncing")
    host.clock.advance(3600)
    r.report("raid1_synced")
    r.command("lvconvert_split_ok")
    r.report("raid1_split_done")
    r.command("lvconvert_split_not_mirrored")
    r.command("lvconvert_raid1_no_space")
    assert frozenset(r.compared) == SCENARIOS["raid1"]


def test_inuse_scenario():
    """An open LV as the kernel counts it (mounted, a device stacked on it, a process that
    opened it): lv_attr's 'o' and lvremove's three refusals; tags on an open LV."""
    host = lab_host(2)
    r = Replay(host)
    two_pvs_linear(host)
    node = "/dev/vgglobal/lvrepnb"
    host.mount(node, "/mnt/lv")  # the lab made ext4 on it first: no content is modelled
    r.report("lv_open_mounted")
    r.command("lvremove_open_mounted")
    for case in INUSE_LABELS:
        r.command(case)
    r.report("lv_tagged")
    for case in INUSE_TAGS:
        r.command(case)
    host.umount("/mnt/lv")
    host.hold(node, "dm-2")  # dmsetup create lvholder ... linear /dev/vgglobal/lvrepnb 0
    r.report("lv_held")
    r.command("lvremove_held")
    host.unhold(node, "dm-2")
    close = open_device(host, node, 4242, "sleep")
    r.report("lv_open_raw")
    r.command("lvremove_open_raw")
    close()
    r.report("lv_closed")
    assert frozenset(r.compared) == SCENARIOS["inuse"]


def test_missing_scenario():
    """A PV's disk fails: "[unknown]" and missing, the VG partial, the LVs on it partial, a
    raid1 image out of sync once md noticed; which changes lvm still makes and with what
    words."""
    host = lab_host(6)
    r = Replay(host)
    two_pvs_linear(host)
    for argv in (("vgextend", "vgglobal", "/dev/vdc", "/dev/vdd"),
                 ("lvcreate", "--yes", "--name", "lvonc", "--size", f"{32 * M}b", "vgglobal",
                  "/dev/vdc"),
                 ("lvcreate", "--yes", "--name", "lvtmp", "--size", f"{8 * M}b", "vgglobal",
                  "/dev/vdd"),
                 ("lvcreate", "--yes", "--name", "lvmir", "--size", f"{32 * M}b", "vgglobal",
                  "/dev/vdb"),
                 ("lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vgglobal/lvmir",
                  "/dev/vdc")):
        assert run(host, *argv).rc == 0
    host.clock.advance(60)
    r.report("pv_healthy")
    host.fail_device("/dev/vdc")
    r.report("pv_missing")
    host.clock.advance(8)  # the lab waited 8 s: md has noticed the dead image by then
    for case in MISSING_COMMANDS:
        r.command(case)
    r.report("pv_missing_after")
    assert frozenset(r.compared) == SCENARIOS["missing"]


def test_raid1fail_scenario():
    """The new raid1 leg's disk fails while the resync runs: lvm says 100 % and partial;
    dropping the only complete leg is refused as any change is while a PV is missing."""
    host = lab_host(2)
    r = Replay(host)
    two_pvs_linear(host)
    assert run(host, "lvconvert", "--yes", "--type", "raid1", "--mirrors", "1",
               "vgglobal/lvrepnb", "/dev/vdb").rc == 0
    host.clock.advance(3)  # the lab waited for the resync to start (throttled)
    host.fail_device("/dev/vdb")
    host.clock.advance(8)  # and for lvm to see the failed leg
    r.report("raid1_new_leg_failed_mid_sync", ignore=PROGRESS, failed="/dev/vdb")
    r.command("lvconvert_split_new_leg_failed")
    assert frozenset(r.compared) == SCENARIOS["raid1fail"]


def test_raid1fail_synced_scenario():
    host = lab_host(2)
    r = Replay(host)
    two_pvs_linear(host)
    assert run(host, "lvconvert", "--yes", "--type", "raid1", "--mirrors", "1",
               "vgglobal/lvrepnb", "/dev/vdb").rc == 0
    host.clock.advance(3600)
    host.fail_device("/dev/vdb")
    r.report("raid1_new_leg_failed_after_sync", failed="/dev/vdb")
    assert frozenset(r.compared) == SCENARIOS["raid1fail_synced"]


@pytest.mark.parametrize("path", sorted(NOT_MODELLED))
def test_what_is_not_modelled_is_refused_not_imitated(path):
    made_by = MADE_BY.get(path, Path(path).stem)
    argv = made_by if isinstance(made_by, tuple) else read_command(made_by)[0]
    host = lab_host()
    two_pvs_linear(host)
    with pytest.raises(UnsupportedCommand):
        run(host, *argv)
    if path.endswith(".json"):
        assert lvm.parse_fullreport(read_report(Path(path).stem)).vgs


def test_a_missing_recording_fails_the_replay(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "FIXTURES", tmp_path)
    with pytest.raises(FileNotFoundError):
        Replay(lab_host()).command("lvm_version")
    with pytest.raises(FileNotFoundError):
        Replay(lab_host()).report("empty")


def test_raid1refresh_scenario():
    """A raid1 leg whose device failed (the lab swapped its dm table to error while writing to
    the LV) and works again: "refresh needed" on the LV and that leg (issue 13)."""
    host = SimulatedHost()
    host.add_device("/dev/vda", 140 * M)
    host.add_device("/dev/mapper/leg", 407552 * 512)  # dm linear over /dev/vdc from 1 MiB on
    r = Replay(host)
    for argv in (("vgcreate", "vgglobal", "/dev/vda", "/dev/mapper/leg"),
                 ("lvcreate", "--yes", "--name", "lvrepnb", "--size", f"{64 * M}b", "vgglobal",
                  "/dev/vda"),
                 ("lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vgglobal/lvrepnb",
                  "/dev/mapper/leg")):
        assert run(host, *argv).rc == 0
    host.clock.advance(60)
    host.fail_device("/dev/mapper/leg")
    host.clock.advance(8)  # the write met the error table: md failed the leg
    host.restore_device("/dev/mapper/leg")
    r.report("raid1_refresh_needed")
    assert frozenset(r.compared) == SCENARIOS["raid1refresh"]
