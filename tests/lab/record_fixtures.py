#!/usr/bin/env python3
"""Record real LVM / md outputs inside lab guests, as parser fixtures.

    python3 tests/lab/record_fixtures.py [--only basic,pvmove,raid1,mirror,inuse,missing,md]
                                          [--jobs 2]
                                          [--out tests/fixtures/outputs]

Writes, under --out:
- ``lvm/<case>.json``: first line ``# lvm2 <version>; kernel <uname -r>; argv: <FULLREPORT_ARGV>``,
  then the exact stdout of ``FULLREPORT_ARGV`` (reconciler/adapters/lvm_report.py) in that state.
- ``lvm/commands/<case>.txt``: the same header line for the command, then ``argv: ...``,
  ``rc: N``, ``--- stdout``, the stdout verbatim, ``--- stderr``, the stderr verbatim.
- ``md/<state>.txt``: one header line, then blocks ``=== argv: ...``, ``rc:``, ``--- stdout``,
  ``--- stderr`` for /proc/mdstat, ``mdadm --detail --export``, the md sysfs files.
- ``lvm/INDEX.md``, ``md/INDEX.md``: how each case was produced, with rc and stderr of reports.

Commands run as the reconciler runs them: argv (no shell), ``LC_ALL=C``,
``LVM_SUPPRESS_FD_WARNINGS=1``. Each scenario boots its own guest, so every case has a short,
known history (written in INDEX.md). Long operations are slowed with qemu's block throttling
on the destination disk so they can be caught mid-way.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import sys
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from harness import Guest, LabError, Result

from reconciler.adapters.lvm_report import FULLREPORT_ARGV

MiB = 1 << 20
THROTTLE = 4 * MiB  # bytes/s on the destination disk while a copy is to be observed
VG = "vgglobal"
LVREPNB = 134217728  # 128 MiB
MYGFS = 339738624  # 324 MiB


def jstr(argv) -> str:
    return " ".join(argv)


class Recorder:
    def __init__(self, guest: Guest, out: Path, scenario: str):
        self.g = guest
        self.out = out
        self.scenario = scenario
        self.lvm_version = self._lvm_version()
        self.index: list[str] = []
        self.lock = threading.Lock()

    def _lvm_version(self) -> str:
        out = self.g.run(["lvm", "version"]).out
        for line in out.splitlines():
            if line.strip().startswith("LVM version:"):
                return line.split(":", 1)[1].strip()
        raise LabError(f"cannot read the LVM version from {out!r}")

    def header(self, argv) -> str:
        return f"# lvm2 {self.lvm_version}; kernel {self.g.kver}; argv: {jstr(argv)}\n"

    # -- LVM observation --------------------------------------------------------------------

    def report(self, case: str, how: str, check=None) -> dict:
        res = self.g.run(list(FULLREPORT_ARGV), timeout=120, check=False)
        if res.rc != 0:
            raise LabError(f"{case}: fullreport exited {res.rc}: {res.err}")
        data = json.loads(res.out)
        if check is not None:
            problem = check(data)
            if problem:
                raise LabError(f"{case}: recorded state is not the intended one: {problem}\n{res.out}")
        self.save_report(case, res, how)
        return data

    def save_report(self, case: str, res: Result, how: str) -> None:
        path = self.out / "lvm" / f"{case}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(self.header(FULLREPORT_ARGV).encode())
            f.write(res.out_bytes)
        line = f"- `{case}.json` ({self.scenario}): {how} rc={res.rc}"
        if res.err.strip():
            # the warnings (a missing PV's) are part of what lvm says in that state: keep
            # them whole, with the same run's stdout, as a command recording
            line += f"; stderr in `commands/fullreport_{case}.txt`"
            cpath = self.out / "lvm" / "commands" / f"fullreport_{case}.txt"
            cpath.parent.mkdir(parents=True, exist_ok=True)
            cpath.write_bytes(self.header(FULLREPORT_ARGV).encode()
                              + render_block(FULLREPORT_ARGV, res, prefix=""))
        self.index.append(line)
        print(f"  [{self.scenario}] lvm/{case}.json")

    # -- commands -----------------------------------------------------------------------------

    def cmd(self, case: str, argv: list[str], how: str = "", expect: str | None = None,
            timeout: float = 120) -> Result:
        """Run argv, record it as commands/<case>.txt. expect: 'ok', 'fail' or None (any)."""
        res = self.g.run(argv, timeout=timeout, check=False)
        self.save_cmd(case, argv, res, how)
        if expect == "ok" and res.rc != 0:
            raise LabError(f"{case}: expected success, got rc {res.rc}: {res.err}")
        if expect == "fail" and res.rc == 0:
            raise LabError(f"{case}: expected a failure, got rc 0: {res.out}")
        return res

    def save_cmd(self, case: str, argv, res: Result, how: str) -> None:
        path = self.out / "lvm" / "commands" / f"{case}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(self.header(argv).encode())
            f.write(render_block(argv, res, prefix=""))
        self.index.append(f"- `commands/{case}.txt` ({self.scenario}): `{jstr(argv)}` -> rc {res.rc}. {how}")
        print(f"  [{self.scenario}] lvm/commands/{case}.txt rc={res.rc}")

    # -- helpers -------------------------------------------------------------------------------

    def lvs(self) -> dict[str, dict]:
        data = json.loads(self.g.run(list(FULLREPORT_ARGV)).out)
        return {lv["lv_name"]: lv for vg in data["report"] for lv in vg.get("lv", [])}

    def wait_until(self, what: str, pred, timeout: float = 180, interval: float = 1.0):
        deadline = time.monotonic() + timeout
        while True:
            v = pred()
            if v:
                return v
            if time.monotonic() > deadline:
                raise LabError(f"{self.scenario}: timed out waiting for {what}")
            time.sleep(interval)


def render_block(argv, res: Result, prefix: str = "") -> bytes:
    """argv/rc lines, then stdout and stderr verbatim, each after its marker line. A section
    that does not end with a newline gets one plus a diff-style note (lvm always ends with one)."""

    def section(text: bytes) -> bytes:
        if text and not text.endswith(b"\n"):
            return text + b"\n\\ no newline at end of output\n"
        return text

    return b"".join([
        f"{prefix}argv: {jstr(argv)}\n".encode(), f"rc: {res.rc}\n".encode(),
        b"--- stdout\n", section(res.out_bytes),
        b"--- stderr\n", section(res.err.encode("utf-8", "surrogateescape")),
    ])


def lv_of(data: dict, name: str) -> dict | None:
    for vg in data["report"]:
        for lv in vg.get("lv", []):
            if lv["lv_name"] == name:
                return lv
    return None


def pct(v: str) -> float:
    return float(v) if v not in ("", None) else -1.0


def basic_layout(g: Guest) -> tuple[str, str]:
    a, b = g.disk(0), g.disk(1)
    g.run(["pvcreate", "--yes", a, b])
    g.run(["vgcreate", VG, a, b])
    g.run(["lvcreate", "--yes", "--name", "lvrepnb", "--size", f"{LVREPNB}b", VG, a])
    g.run(["lvcreate", "--yes", "--name", "mygfs", "--size", f"{MYGFS}b", VG, b])
    return a, b


# ============================================================================================
# scenarios


def scenario_basic(g: Guest, r: Recorder) -> None:
    a, b, c, d = (g.disk(i) for i in range(4))
    r.cmd("lvm_version", ["lvm", "version"], "`lvm version`.", expect="ok")
    r.report("empty", "fresh guest, no PV at all.",
             check=lambda dt: None if dt["report"] == [] else "report not empty")

    r.cmd("pvcreate_ok", ["pvcreate", "--yes", a], "on an unused disk.", expect="ok")
    g.run(["pvcreate", "--yes", b])
    r.cmd("vgcreate_ok", ["vgcreate", VG, a, b], "two fresh PVs.", expect="ok")
    r.cmd("lvcreate_ok", ["lvcreate", "--yes", "--name", "lvrepnb", "--size", f"{LVREPNB}b", VG, a],
          "128 MiB on the 140M PV.", expect="ok")
    g.run(["lvcreate", "--yes", "--name", "mygfs", "--size", f"{MYGFS}b", VG, b])
    r.report("two_pvs_linear", f"seed-000 shape: {VG} on {a} (140M) and {b} (808M); lvrepnb 128M on {a}, "
             f"mygfs 324M on {b}; the other disks untouched.",
             check=lambda dt: None if len(dt["report"]) == 1 and len(dt["report"][0]["lv"]) == 2 else "shape")

    g.run(["pvcreate", "--yes", c])
    r.report("orphan_pv", f"two_pvs_linear plus {c} (200M) pvcreate'd but in no VG.",
             check=lambda dt: None if len(dt["report"]) == 2 else "expected a VG entry and an orphan entry")

    r.cmd("vgcreate_pv_in_other_vg", ["vgcreate", "vgother", a], f"{a} belongs to {VG}.", expect="fail")
    r.cmd("pvcreate_pv_in_vg", ["pvcreate", "--yes", a], f"{a} belongs to {VG}.", expect="fail")
    r.cmd("pvcreate_no_such_device", ["pvcreate", "--yes", "/dev/vdz"], "device does not exist.", expect="fail")
    r.cmd("pvcreate_again_orphan", ["pvcreate", "--yes", c], f"{c} is already an orphan PV.")
    r.cmd("vgextend_ok", ["vgextend", VG, c], f"add orphan PV {c}.", expect="ok")
    r.cmd("vgextend_pv_already_in_vg", ["vgextend", VG, c], f"{c} already in {VG}.")
    r.cmd("lvcreate_no_space", ["lvcreate", "--yes", "--name", "big", "--size", f"{2 << 30}b", VG],
          "2 GiB in a VG with ~680 MiB free.", expect="fail")
    r.cmd("lvcreate_no_space_on_pv", ["lvcreate", "--yes", "--name", "big", "--size", f"{64 * MiB}b", VG, a],
          f"64 MiB restricted to {a}, which has 8 MiB free.", expect="fail")
    r.cmd("lvcreate_exists", ["lvcreate", "--yes", "--name", "lvrepnb", "--size", f"{8 * MiB}b", VG],
          "the name is taken.", expect="fail")
    r.cmd("lvcreate_size_not_sector_multiple", ["lvcreate", "--yes", "--name", "odd", "--size", f"{MiB + 1}b", VG, c],
          "a byte size that is not a multiple of 512.", expect="fail")
    r.cmd("lvcreate_rounded_up", ["lvcreate", "--yes", "--name", "odd", "--size", f"{5 * MiB}b", VG, c],
          "5 MiB: not a multiple of the 4 MiB extent.", expect="ok")
    g.run(["lvremove", "--yes", f"{VG}/odd"])

    g.run(["lvcreate", "--yes", "--name", "lvspan", "--size", f"{8 * MiB}b", VG, a])
    r.cmd("lvextend_ok", ["lvextend", "--size", f"{16 * MiB}b", f"{VG}/lvspan", c],
          f"lvspan (8 MiB, filling {a}) extended onto {c}.", expect="ok")
    r.report("lv_spanning", f"orphan_pv, then {c} added to {VG}, lvspan 8M on {a} (its last 2 extents) "
             f"extended to 16M on {c}: two segments on two PVs.",
             check=lambda dt: None if lv_of(dt, "lvspan") and lv_of(dt, "lvspan")["seg_count"] == "2" else "lvspan segs")
    r.cmd("lvextend_no_space", ["lvextend", "--size", f"{2 << 30}b", f"{VG}/lvspan", c],
          "not enough free space on the named PV.", expect="fail")
    r.cmd("lvextend_not_larger", ["lvextend", "--size", f"{4 * MiB}b", f"{VG}/lvspan"],
          "new size smaller than the current one.", expect="fail")
    r.cmd("lvextend_same_size", ["lvextend", "--size", f"{16 * MiB}b", f"{VG}/lvspan"],
          "new size equal to the current one.")
    r.cmd("lvreduce_ok", ["lvreduce", "--yes", "--size", f"{8 * MiB}b", f"{VG}/lvspan"],
          "16 -> 8 MiB (drops the segment on the second PV).", expect="ok")
    r.cmd("lvreduce_not_smaller", ["lvreduce", "--yes", "--size", f"{64 * MiB}b", f"{VG}/lvspan"],
          "new size larger than the current one.", expect="fail")
    r.cmd("lvremove_ok", ["lvremove", "--yes", f"{VG}/lvspan"], "", expect="ok")
    r.cmd("lvremove_no_such_lv", ["lvremove", "--yes", f"{VG}/nosuchlv"], "", expect="fail")

    r.cmd("vgreduce_pv_in_use", ["vgreduce", VG, a], f"{a} still holds lvrepnb's extents.", expect="fail")
    r.cmd("vgreduce_ok", ["vgreduce", VG, c], f"{c} holds no extents.", expect="ok")
    r.cmd("vgreduce_pv_not_in_vg", ["vgreduce", VG, c], f"{c} is an orphan now.", expect="fail")

    r.cmd("pvmove_nothing_to_move", ["pvmove", "--background", "--name", f"{VG}/lvrepnb", b, a],
          f"lvrepnb has no extent on {b}.", expect="fail")
    r.cmd("pvmove_no_space_on_dst", ["pvmove", "--background", "--name", f"{VG}/mygfs", b, a],
          f"mygfs (324M) cannot fit on {a} (8 MiB free).", expect="fail")
    r.cmd("pvmove_src_not_in_vg", ["pvmove", "--background", "--name", f"{VG}/lvrepnb", c, b],
          f"{c} is an orphan PV.", expect="fail")
    r.cmd("pvmove_dst_not_in_vg", ["pvmove", "--background", "--name", f"{VG}/lvrepnb", a, c],
          f"{c} is an orphan PV.", expect="fail")

    r.cmd("lvcreate_no_such_vg", ["lvcreate", "--yes", "--name", "x", "--size", f"{8 * MiB}b", "novg"], "", expect="fail")
    r.cmd("vgextend_no_such_vg", ["vgextend", "novg", c], "", expect="fail")
    r.cmd("vgreduce_no_such_vg", ["vgreduce", "novg", c], "", expect="fail")
    r.cmd("lvextend_no_such_vg", ["lvextend", "--size", f"{16 * MiB}b", "novg/x"], "", expect="fail")
    r.cmd("lvreduce_no_such_vg", ["lvreduce", "--yes", "--size", f"{4 * MiB}b", "novg/x"], "", expect="fail")
    r.cmd("lvremove_no_such_vg", ["lvremove", "--yes", "novg/x"], "", expect="fail")
    r.cmd("pvmove_no_such_vg", ["pvmove", "--background", "--name", "novg/x", a, b], "", expect="fail")
    r.cmd("lvconvert_no_such_vg", ["lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "novg/x", b], "", expect="fail")
    r.cmd("vgcreate_existing_name", ["vgcreate", VG, d], f"{VG} exists; {d} is not a PV yet.", expect="fail")
    r.cmd("fullreport_no_such_vg", ["lvm", "fullreport", "--reportformat", "json", "novg"],
          "fullreport restricted to a VG that does not exist (not FULLREPORT_ARGV).")


def scenario_pvmove(g: Guest, r: Recorder) -> None:
    a, b = basic_layout(g)
    c = g.disk(2)
    g.run(["pvcreate", "--yes", c])
    g.throttle(1, write_bps=THROTTLE)
    r.cmd("pvmove_ok", ["pvmove", "--background", "--name", f"{VG}/lvrepnb", a, b],
          f"two_pvs_linear layout, {b} writes throttled to 4 MiB/s by qemu.", expect="ok")

    def moving(dt):
        pm = lv_of(dt, "[pvmove0]")
        if pm is None:
            return "no [pvmove0] yet"
        return None if 0 < pct(pm["copy_percent"]) < 100 else f"copy_percent {pm['copy_percent']!r}"

    r.wait_until("the copy to start", lambda: moving(json.loads(g.run(list(FULLREPORT_ARGV)).out)) is None, 60, 0.5)
    r.report("pvmove_in_progress", f"two_pvs_linear + {c} orphan PV; `pvmove --background --name {VG}/lvrepnb "
             f"{a} {b}` copying (destination throttled).", check=moving)
    r.cmd("pvmove_same_lv_again", ["pvmove", "--background", "--name", f"{VG}/lvrepnb", a, b],
          "a second pvmove of the same LV while the first is copying.")
    pollers = g.run(["pgrep", "-x", "pvmove"], check=False).out.split()
    if not pollers:
        raise LabError("no pvmove polling process found")
    g.run(["kill", "-9", *pollers])
    r.wait_until("the poller to die", lambda: not g.run(["pgrep", "-x", "pvmove"], check=False).out.strip(), 30, 0.2)
    r.report("pvmove_interrupted", "pvmove_in_progress, then its polling process killed with SIGKILL "
             "(the kernel mirror keeps copying; LVM metadata still holds pvmove0).", check=moving)
    r.cmd("pvmove_resume_interrupted", ["pvmove", "--background"],
          "no arguments, with the interrupted move above: restarts the polling.", expect="ok")
    g.throttle(1)
    r.wait_until("the move to finish", lambda: "[pvmove0]" not in r.lvs(), 180)
    r.report("pvmove_done", f"pvmove_interrupted, resumed with `pvmove --background`, finished: lvrepnb on {b}.",
             check=lambda dt: None if lv_of(dt, "[pvmove0]") is None else "pvmove0 still there")
    r.cmd("pvmove_resume_none", ["pvmove", "--background"], "no arguments, no move in progress.")

    g.run(["vgextend", VG, c])
    r.cmd("pvmove_name_lv_only", ["pvmove", "--background", "--name", "lvrepnb", b, c],
          f"`--name LV` without the VG (lvrepnb is on {b} now).")
    r.wait_until("that move to finish", lambda: "[pvmove0]" not in r.lvs(), 120)
    seg = g.run(["lvs", "--noheadings", "-o", "devices", f"{VG}/lvrepnb"]).out.strip()
    r.index.append(f"  - after `pvmove_name_lv_only`, lvrepnb devices: `{seg}`")
    r.cmd("pvmove_foreground_ok", ["pvmove", "-i", "1", c, a],
          "foreground pvmove of a whole PV (for comparison of the output).")


def scenario_raid1(g: Guest, r: Recorder) -> None:
    a, b = basic_layout(g)
    g.throttle(1, write_bps=THROTTLE)
    r.cmd("lvconvert_raid1_ok", ["lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", f"{VG}/lvrepnb", b],
          f"two_pvs_linear layout; {b} writes throttled to 4 MiB/s.", expect="ok")

    def syncing(dt):
        lv = lv_of(dt, "lvrepnb")
        return None if lv and 0 <= pct(lv["sync_percent"]) < 100 else f"sync_percent {lv and lv['sync_percent']!r}"

    r.report("raid1_syncing", f"`lvconvert --type raid1 --mirrors 1 {VG}/lvrepnb {b}` just returned; "
             "resync running (destination throttled).", check=syncing)
    res = r.cmd("lvconvert_split_while_syncing", ["lvconvert", "--yes", "--mirrors", "0", f"{VG}/lvrepnb", a],
                f"remove the image on {a} (the only in-sync one) while the resync runs.")
    if res.rc == 0:  # lvm allowed it: rebuild the raid1 so the next states can be recorded
        r.index.append("  - lvm ACCEPTED the split while syncing; raid1 rebuilt before raid1_synced")
        g.throttle(1)
        g.run(["lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", f"{VG}/lvrepnb", a])
    res = r.cmd("lvconvert_raid1_while_syncing", ["lvconvert", "--yes", "--type", "raid1", "--mirrors", "1",
                                                  f"{VG}/lvrepnb", b],
                "the same conversion again while the first one syncs.")
    g.throttle(1)
    r.wait_until("the raid1 sync", lambda: pct(r.lvs()["lvrepnb"]["sync_percent"]) == 100, 180)
    r.report("raid1_synced", "raid1_syncing, throttle removed, sync_percent 100.",
             check=lambda dt: None if pct(lv_of(dt, "lvrepnb")["sync_percent"]) == 100 else "not synced")
    r.cmd("lvconvert_split_ok", ["lvconvert", "--yes", "--mirrors", "0", f"{VG}/lvrepnb", a],
          f"after sync: drop the image on {a}.", expect="ok")
    r.report("raid1_split_done", f"raid1_synced, then `lvconvert --mirrors 0 {VG}/lvrepnb {a}`.",
             check=lambda dt: None if lv_of(dt, "lvrepnb")["lv_layout"] != "raid,raid1" else "still raid1")
    r.cmd("lvconvert_split_not_mirrored", ["lvconvert", "--yes", "--mirrors", "0", f"{VG}/lvrepnb", a],
          "the LV is linear already.")
    r.cmd("lvconvert_raid1_no_space", ["lvconvert", "--yes", "--type", "raid1", "--mirrors", "1",
                                       f"{VG}/mygfs", a],
          f"mygfs (324M) cannot get an image on {a}.", expect="fail")


def scenario_mirror(g: Guest, r: Recorder) -> None:
    _a, b = basic_layout(g)
    g.throttle(1, write_bps=THROTTLE)
    argv = ["lvconvert", "--yes", "--type", "mirror", "--mirrorlog", "core", "--mirrors", "1", f"{VG}/lvrepnb", b]
    fut = g.spawn(argv, timeout=300)

    def syncing(dt):
        lv = lv_of(dt, "lvrepnb")
        return None if lv and 0 < pct(lv["copy_percent"]) < 100 else f"copy_percent {lv and lv['copy_percent']!r}"

    r.wait_until("the mirror to sync", lambda: syncing(json.loads(g.run(list(FULLREPORT_ARGV)).out)) is None, 60, 0.5)
    r.report("mirror_corelog_syncing", f"two_pvs_linear; `{jstr(argv)}` running in the foreground "
             "(it waits for the sync), destination throttled.", check=syncing)
    g.throttle(1)
    res = g.wait(fut)
    r.save_cmd("lvconvert_mirror_corelog", argv, res, "foreground: returns when the mirror is in sync.")
    r.report("mirror_corelog_synced", "mirror_corelog_syncing after the sync.")


def scenario_inuse(g: Guest, r: Recorder) -> None:
    """An LV held open three ways the kernel tells apart (a mounted file system, a device
    stacked on it, a plain open()), lvremove refused in each; tags added and removed."""
    a, _b = basic_layout(g)
    lv = f"{VG}/lvrepnb"
    node = f"/dev/{VG}/lvrepnb"
    g.run(["mkfs.ext4", "-q", node])
    g.run(["mkdir", "-p", "/mnt/lv"])
    g.run(["mount", node, "/mnt/lv"])

    def is_open(dt):
        row = lv_of(dt, "lvrepnb")
        return None if row and row["lv_attr"][5] == "o" else f"lv_attr {row and row['lv_attr']!r}"

    r.report("lv_open_mounted", f"two_pvs_linear, ext4 made on {node} and mounted at /mnt/lv.",
             check=is_open)
    r.cmd("lvremove_open_mounted", ["lvremove", "--yes", lv], "the LV is mounted.", expect="fail")
    r.cmd("lvchange_addtag", ["lvchange", "--addtag", "reconciler_split", lv],
          "tag the (mounted) LV.", expect="ok")
    r.cmd("lvchange_addtag_again", ["lvchange", "--addtag", "reconciler_split", lv],
          "the tag is there already.")
    r.report("lv_tagged", "lv_open_mounted, then lvrepnb tagged reconciler_split.",
             check=lambda dt: None if lv_of(dt, "lvrepnb")["lv_tags"] == "reconciler_split" else "no tag")
    r.cmd("lvchange_deltag", ["lvchange", "--deltag", "reconciler_split", lv], "remove the tag.",
          expect="ok")
    r.cmd("lvchange_deltag_absent", ["lvchange", "--deltag", "reconciler_split", lv],
          "the tag is gone already.")
    r.cmd("lvchange_addtag_no_such_lv", ["lvchange", "--addtag", "reconciler_split", f"{VG}/nosuchlv"],
          "", expect="fail")
    g.run(["umount", "/mnt/lv"])

    sectors = LVREPNB // 512
    g.run(["dmsetup", "create", "--noudevsync", "lvholder", "--table", f"0 {sectors} linear {node} 0"])
    r.report("lv_held", f"two_pvs_linear, {node} unmounted, then a device-mapper device (lvholder, "
             "linear) stacked on it with dmsetup.", check=is_open)
    r.cmd("lvremove_held", ["lvremove", "--yes", lv], "a dm device (lvholder) is stacked on the LV.",
          expect="fail")
    g.run(["dmsetup", "remove", "--noudevsync", "lvholder"])

    pid = g.run(["sh", "-c", f"sleep 3600 < {node} > /dev/null 2>&1 & echo $!"]).out.strip()
    r.report("lv_open_raw", f"two_pvs_linear, {node} held open by a process (`sleep < {node}`), "
             "not mounted, no holder.", check=is_open)
    r.cmd("lvremove_open_raw", ["lvremove", "--yes", lv], "a process holds the LV open "
          "(lvm re-checks the open count for ~5 s before it gives up).", expect="fail")
    g.run(["kill", pid])
    r.wait_until("the opener to exit", lambda: g.run(["kill", "-0", pid], check=False).rc != 0, 30, 0.2)
    r.report("lv_closed", "lv_open_raw after the process exited: lvrepnb not open.",
             check=lambda dt: None if is_open(dt) else "still open")


PVMOVE_FAILED_NOTE = (
    " lvm could not read the device; a first recording (before pvcreate/vgcreate had run in the partial state, one VG on the host) also printed the VG's two warnings and its 'Cannot change VG' refusal before the last line: what decides between the two is not established (lvm's device hints in /run/lvm/hints are the likely cause); the simulator gives this one.")


def scenario_missing(g: Guest, r: Recorder) -> None:
    """A PV's disk fails (qemu drive_del: the device stays, every I/O fails): what lvm shows
    and which changes it still accepts in the partial VG."""
    a, b = basic_layout(g)
    c, d = g.disk(2), g.disk(3)
    g.run(["vgextend", VG, c, d])
    g.run(["lvcreate", "--yes", "--name", "lvonc", "--size", f"{32 * MiB}b", VG, c])
    g.run(["lvcreate", "--yes", "--name", "lvtmp", "--size", f"{8 * MiB}b", VG, d])
    g.run(["lvcreate", "--yes", "--name", "lvmir", "--size", f"{32 * MiB}b", VG, b])
    g.run(["lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", f"{VG}/lvmir", c])
    r.wait_until("lvmir's sync", lambda: pct(r.lvs()["lvmir"]["sync_percent"]) == 100, 120)
    r.report("pv_healthy", f"two_pvs_linear, {c} and {d} added to {VG}; lvonc 32M on {c}, "
             f"lvtmp 8M on {d}, lvmir 32M raid1 on {b} and {c} (in sync).")
    g.fail_disk(2)

    def partial(dt):
        vg = next(o["vg"][0] for o in dt["report"] if o.get("vg") and o["vg"][0]["vg_name"] == VG)
        return None if vg["vg_missing_pv_count"] == "1" else f"vg_missing_pv_count {vg['vg_missing_pv_count']!r}"

    how = f"pv_healthy, then every I/O to {c} fails (QMP drive_del); reported at once."
    r.report("pv_missing", how, check=partial)
    # md notices the dead raid leg at its next bitmap/superblock write (within ~5 s, measured:
    # the image reads 'i' at once and 'I' 6 s later, with no I/O to the LV in between)
    time.sleep(8)
    e, f = g.disk(4), g.disk(5)
    tries = [
        ("pvcreate_while_vg_partial", ["pvcreate", "--yes", e], f"a new disk, while {c} of {VG} is missing."),
        ("vgextend_partial_vg", ["vgextend", VG, e], f"add {e} (an orphan PV now) to {VG}."),
        ("vgcreate_while_vg_partial", ["vgcreate", "vgother", f], f"a new VG on {f} (no PV yet)."),
        ("lvreduce_partial_vg", ["lvreduce", "--yes", "--size", f"{64 * MiB}b", f"{VG}/lvrepnb"],
         "shrink lvrepnb (healthy)."),
        ("lvcreate_partial_vg", ["lvcreate", "--yes", "--name", "new", "--size", f"{8 * MiB}b", VG, d],
         f"new LV on {d} (healthy) while {c} is missing."),
        ("lvextend_partial_vg", ["lvextend", "--size", f"{136 * MiB}b", f"{VG}/lvrepnb", d],
         f"grow lvrepnb (healthy) onto {d}."),
        ("lvchange_addtag_partial_vg", ["lvchange", "--addtag", "reconciler_split", f"{VG}/lvrepnb"],
         "tag a healthy LV."),
        ("vgreduce_partial_vg_healthy_pv", ["vgreduce", VG, a],
         f"remove {a} (holds lvrepnb) while {c} is missing."),
        ("vgreduce_partial_vg_missing_pv", ["vgreduce", VG, c], f"remove the failed {c} by its path."),
        ("pvmove_partial_vg_healthy_lv", ["pvmove", "--background", "--name", f"{VG}/lvrepnb", a, b],
         f"move lvrepnb (healthy) from {a} to {b}."),
        ("pvmove_partial_vg_from_missing", ["pvmove", "--background", "--name", f"{VG}/lvonc", c, b],
         f"move lvonc off the failed {c}." + PVMOVE_FAILED_NOTE),
        ("lvconvert_raid1_partial_vg", ["lvconvert", "--yes", "--type", "raid1", "--mirrors", "1",
                                        f"{VG}/lvrepnb", b], f"mirror lvrepnb (healthy) onto {b}."),
        ("lvconvert_split_partial_keep_missing", ["lvconvert", "--yes", "--mirrors", "0", f"{VG}/lvmir", b],
         f"drop lvmir's healthy image (on {b}), which would keep the one on the failed {c}."),
        ("lvconvert_split_partial_drop_missing", ["lvconvert", "--yes", "--mirrors", "0", f"{VG}/lvmir", c],
         f"drop lvmir's image on the failed {c}."),
        ("lvremove_partial_vg_healthy_lv", ["lvremove", "--yes", f"{VG}/lvtmp"], f"lvtmp is on {d} (healthy)."),
        ("lvremove_partial_lv", ["lvremove", "--yes", f"{VG}/lvonc"], f"lvonc is on the failed {c}."),
    ]
    for case, argv, what in tries:
        r.cmd(case, argv, what)
    r.report("pv_missing_after", "pv_missing, 8 s later and after the commands above.", check=partial)


def _health(dt, name="lvrepnb") -> str:
    lv = lv_of(dt, name)
    return lv["lv_health_status"] if lv else ""


def _fresh(r: Recorder) -> dict:
    return json.loads(r.g.run(list(FULLREPORT_ARGV), check=False).out)


def scenario_raid1fail(g: Guest, r: Recorder) -> None:
    """The new raid1 leg's disk fails (QMP drive_del) while it is being synced."""
    a, b = basic_layout(g)
    g.throttle(1, write_bps=THROTTLE)
    g.run(["lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", f"{VG}/lvrepnb", b])
    r.wait_until("the resync to start", lambda: 0 < pct(r.lvs()["lvrepnb"]["sync_percent"]) < 100, 60, 0.5)
    g.fail_disk(1)
    r.wait_until("lvm to see the failed leg", lambda: _health(_fresh(r)), 60, 0.5)
    r.report("raid1_new_leg_failed_mid_sync",
             f"raid1_syncing (new leg on {b}, throttled), then {b} failed with QMP `drive_del` "
             f"while the resync ran.",
             check=lambda dt: None if _health(dt) else "health still empty")
    r.cmd("lvconvert_split_new_leg_failed", ["lvconvert", "--yes", "--mirrors", "0", f"{VG}/lvrepnb", a],
          f"drop the image on {a} (the only complete one) after the new leg on {b} failed mid-sync.")


def scenario_raid1fail_synced(g: Guest, r: Recorder) -> None:
    """The new raid1 leg's disk fails after the sync completed, before any split."""
    _a, b = basic_layout(g)
    g.run(["lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", f"{VG}/lvrepnb", b])
    r.wait_until("the raid1 sync", lambda: pct(r.lvs()["lvrepnb"]["sync_percent"]) == 100
                 and r.lvs()["lvrepnb"]["raid_sync_action"] == "idle", 180)
    g.fail_disk(1)
    r.report("raid1_new_leg_failed_after_sync",
             f"raid1_synced (sync_percent 100, idle), then {b} failed with QMP `drive_del`; "
             f"nothing written to the LV since.")
    g.run(["dd", "if=/dev/urandom", f"of=/dev/{VG}/lvrepnb", "bs=1M", "count=4", "oflag=direct"],
          check=False)
    r.report("raid1_new_leg_failed_after_sync_written",
             "raid1_new_leg_failed_after_sync, then 4 MiB written to the LV with O_DIRECT "
             "(the kernel meets the failed leg).")


LEG_DM = "leg"


def scenario_raid1refresh(g: Guest, r: Recorder) -> None:
    """A transient failure: the new leg's PV is a dm device whose table is swapped to
    `error` while the LV is written, then back: the PV is present again, the kernel still
    counts the leg as failed (lv_health_status "refresh needed")."""
    a, _b, c = g.disk(0), g.disk(1), g.disk(2)
    # The dm device starts 1 MiB into the disk, so lvm finds the PV label on the dm device
    # only (the same label seen on the disk too would be a duplicate PV).
    sectors = int(g.run(["blockdev", "--getsz", c]).out.strip()) - 2048
    g.run(["dmsetup", "create", LEG_DM, "--table", f"0 {sectors} linear {c} 2048"])
    g.run(["dmsetup", "mknodes", LEG_DM])  # no udev in the guest: make the node ourselves
    leg = f"/dev/mapper/{LEG_DM}"
    g.run(["test", "-b", leg])
    g.run(["pvcreate", "--yes", a, leg])
    g.run(["vgcreate", VG, a, leg])
    g.run(["lvcreate", "--yes", "--name", "lvrepnb", "--size", f"{64 * MiB}b", VG, a])
    g.run(["lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", f"{VG}/lvrepnb", leg])
    r.wait_until("the raid1 sync", lambda: pct(r.lvs()["lvrepnb"]["sync_percent"]) == 100
                 and r.lvs()["lvrepnb"]["raid_sync_action"] == "idle", 180)
    g.sh(f"""
        dmsetup suspend {LEG_DM}
        dmsetup load {LEG_DM} --table "0 {sectors} error"
        dmsetup resume {LEG_DM}
        dd if=/dev/urandom of=/dev/{VG}/lvrepnb bs=1M count=4 oflag=direct || true
        dmsetup suspend {LEG_DM}
        dmsetup load {LEG_DM} --table "0 {sectors} linear {c} 2048"
        dmsetup resume {LEG_DM}
    """)
    r.wait_until("lvm to report the failed leg", lambda: _health(_fresh(r)), 60, 0.5)
    r.report("raid1_refresh_needed",
             f"vgglobal on {a} and {leg} (dm linear over {c} from 1 MiB on); lvrepnb 64M on {a} converted "
             f"to raid1 with the new leg on {leg}, synced; then {leg}'s table swapped to "
             f"`error` while 4 MiB were written to the LV with O_DIRECT, and back to linear: "
             f"the PV is present again, the kernel still counts the leg as failed.",
             check=lambda dt: None if _health(dt) else "health still empty")


def _lvm_conf(g: Guest, source: str, system_id: str | None) -> None:
    g.sh(f"""sed -i 's/^\\(\\s*\\)#\\?\\s*system_id_source = .*/\\1system_id_source = "{source}"/' /etc/lvm/lvm.conf""")
    body = f'local {{\n\tsystem_id = "{system_id}"\n}}\n' if system_id else "local {\n}\n"
    g.write_file("/etc/lvm/lvmlocal.conf", body)


def scenario_sysid(g: Guest, r: Recorder) -> None:
    """LVM system IDs: a VG owned by this host, one owned by another host, one with none."""
    a, b, c = g.disk(0), g.disk(1), g.disk(2)
    r.cmd("lvm_systemid_none", ["lvm", "systemid"], "system_id_source = \"none\" (Debian's default).",
          expect="ok")
    g.run(["pvcreate", "--yes", a, b, c])
    g.run(["vgcreate", "vgfree", b])
    _lvm_conf(g, "lvmlocal", "hosta")
    r.cmd("lvm_systemid", ["lvm", "systemid"],
          "system_id_source = \"lvmlocal\", lvmlocal.conf local/system_id = \"hosta\".", expect="ok")
    r.cmd("vgcreate_with_system_id", ["vgcreate", "vgown", a],
          "with system_id_source = \"lvmlocal\": lvm records this host's system ID itself.",
          expect="ok")
    g.run(["vgcreate", "vgforeign", c])
    g.run(["lvcreate", "--yes", "--name", "data", "--size", f"{8 * MiB}b", "vgforeign"])
    g.run(["vgchange", "--activate", "n", "vgforeign"])  # lvm refuses while LVs are active
    g.run(["vgchange", "--yes", "--systemid", "hostb", "vgforeign"])
    r.report("foreign_vg",
             f"this host's system ID is hosta (lvmlocal); vgown on {a} (created here: system ID "
             f"hosta), vgfree on {b} (created before system IDs were set: none), vgforeign on "
             f"{c} with LV data 8M, deactivated and given system ID hostb with `vgchange --systemid hostb`.",
             check=lambda dt: None if len(dt["report"]) == 3 else "expected three VGs")
    r.cmd("pvcreate_pv_in_foreign_vg", ["pvcreate", c], f"{c} is the PV of vgforeign (hostb).",
          expect="fail")
    r.cmd("vgextend_pv_in_foreign_vg", ["vgextend", "vgown", c], f"{c} is the PV of vgforeign (hostb).",
          expect="fail")
    r.cmd("lvcreate_in_foreign_vg", ["lvcreate", "--yes", "--name", "x", "--size", f"{8 * MiB}b",
                                     "vgforeign"], "vgforeign belongs to hostb.", expect="fail")
    fr = list(FULLREPORT_ARGV)
    fr.remove("--foreign")
    r.cmd("fullreport_without_foreign", fr,
          "FULLREPORT_ARGV without --foreign, same state: vgforeign and its PV are not shown.",
          expect="ok")
    _lvm_conf(g, "none", None)
    r.report("foreign_vg_no_local_id",
             "foreign_vg, then system_id_source = \"none\" and no local/system_id: this host has "
             "no system ID, so vgown and vgforeign are both foreign to it.")


MD_DEV = "/dev/md0"


def md_capture(g: Guest, out: Path, state: str, how: str, index: list[str]) -> None:
    mdver = g.run(["mdadm", "--version"], check=False)
    ver = (mdver.out + mdver.err).strip()
    blocks = [f"# {ver}; kernel {g.kver}; state: {state}\n".encode()]
    cmds = [["cat", "/proc/mdstat"], ["mdadm", "--detail", "--export", MD_DEV], ["mdadm", "--detail", MD_DEV],
            ["ls", "/sys/block/md0/md/"]]
    for f in ("array_state", "sync_action", "sync_completed", "degraded", "level", "raid_disks", "metadata_version"):
        cmds.append(["cat", f"/sys/block/md0/md/{f}"])
    members = g.run(["sh", "-c", "cd /sys/block/md0/md && ls -d dev-* 2>/dev/null || true"]).out.split()
    for m in members:
        for f in ("state", "slot", "errors"):
            cmds.append(["cat", f"/sys/block/md0/md/{m}/{f}"])
    for argv in cmds:
        blocks.append(b"=== " + render_block(argv, g.run(argv, check=False)))
    path = out / "md" / f"{state}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(blocks))
    index.append(f"- `{state}.txt`: {how}")
    print(f"  [md] md/{state}.txt")


def scenario_md(g: Guest, out: Path, index: list[str]) -> None:
    d1, d2 = g.disk(0), g.disk(1)
    g.run(["sh", "-c", f"head -c {64 * MiB} /dev/urandom > {d1}"])
    argv = ["mdadm", "--build", MD_DEV, "--level", "1", "--raid-disks=2", d1, "missing"]
    res = g.run(argv, check=False)
    save_md_cmd(g, out, "build", argv, res, index)
    if res.rc != 0:
        raise LabError(f"mdadm --build failed: {res.err}")
    md_capture(g, out, "build_degraded", f"`{jstr(argv)}` (no superblock), before --add.", index)
    g.throttle(1, write_bps=THROTTLE)
    argv = ["mdadm", MD_DEV, "--add", d2]
    res = g.run(argv, check=False)
    save_md_cmd(g, out, "add", argv, res, index)
    md = "/sys/block/md0/md"
    def recovering() -> bool:
        done = g.run(["cat", f"{md}/sync_completed"]).out.split("/")[0].strip()
        return g.run(["cat", f"{md}/sync_action"]).out.strip() == "recover" and done.isdigit() and int(done) > 0

    r_wait(recovering, 60)
    md_capture(g, out, "recovering", f"build_degraded, then `mdadm {MD_DEV} --add {d2}`; "
               f"recovery running ({d2} writes throttled to 4 MiB/s).", index)
    g.throttle(1)
    r_wait(lambda: g.run(["cat", f"{md}/sync_action"]).out.strip() == "idle"
           and g.run(["cat", f"{md}/degraded"]).out.strip() == "0", 180)
    md_capture(g, out, "in_sync", "recovering, throttle removed, recovery finished.", index)
    argv = ["mdadm", "--wait", MD_DEV]
    save_md_cmd(g, out, "wait_nothing_to_wait", argv, g.run(argv, check=False), index)
    argv = ["mdadm", "--stop", MD_DEV]
    save_md_cmd(g, out, "stop", argv, g.run(argv, check=False), index)


def save_md_cmd(g: Guest, out: Path, case: str, argv, res: Result, index: list[str]) -> None:
    path = out / "md" / "commands" / f"{case}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    ver = g.run(["mdadm", "--version"], check=False)
    path.write_bytes(f"# {(ver.out + ver.err).strip()}; kernel {g.kver}; argv: {jstr(argv)}\n".encode()
                     + render_block(argv, res))
    index.append(f"- `commands/{case}.txt`: `{jstr(argv)}` -> rc {res.rc}")


def r_wait(pred, timeout: float, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise LabError("timed out waiting for the md state")
        time.sleep(interval)


# ============================================================================================

SCENARIOS = {
    # name: (disks, runner)
    "basic": (["140M", "808M", "200M", "200M"], scenario_basic),
    "pvmove": (["140M", "808M", "200M"], scenario_pvmove),
    "raid1": (["140M", "808M"], scenario_raid1),
    "mirror": (["140M", "808M"], scenario_mirror),
    "inuse": (["140M", "808M"], scenario_inuse),
    "missing": (["140M", "808M", "200M", "200M", "200M", "200M"], scenario_missing),
    "md": (["256M", "256M"], None),
    "raid1fail": (["140M", "808M"], scenario_raid1fail),
    "raid1fail_synced": (["140M", "808M"], scenario_raid1fail_synced),
    "raid1refresh": (["140M", "808M", "200M"], scenario_raid1refresh),
    "sysid": (["64M", "64M", "64M"], scenario_sysid),
}


def run_scenario(name: str, out: Path) -> tuple[str, list[str], list[str], float]:
    disks, fn = SCENARIOS[name]
    t0 = time.monotonic()
    lvm_index: list[str] = []
    md_index: list[str] = []
    # polling_interval=1: pollers notice the end of a copy after 1 s instead of 15 s.
    with Guest(f"rec-{name.replace('_', '-')}", disks, lvm={"polling_interval": 1}, mem="768M") as g:
        print(f"[{name}] guest up in {g.boot_time:.1f}s", flush=True)
        if name == "md":
            scenario_md(g, out, md_index)
        else:
            rec = Recorder(g, out, name)
            try:
                fn(g, rec)
            finally:
                lvm_index.extend(rec.index)
    return name, lvm_index, md_index, time.monotonic() - t0


def write_index(path: Path, title: str, intro: str, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {title}\n\n{intro}\n\n" + "\n".join(lines) + "\n")


def merge_index(path: Path, fresh: dict[str, list[str]]) -> list[str]:
    """INDEX.md's entries, scenario by scenario in SCENARIOS order: the ones recorded now
    replace that scenario's old entries, the others are kept as they were (also those of
    scenarios another script records, after these)."""
    old: dict[str, list[str]] = {}
    current = None
    if path.exists():
        for line in path.read_text().splitlines():
            m = re.match(r"- `[^`]+` \((\w+)\)", line)
            if m:
                current = m.group(1)
            elif not line.startswith("  - "):
                current = None
                continue
            if current is not None:
                old.setdefault(current, []).append(line)
    # entries of other recorders' scenarios (record_handover_fixtures.py's) stay, at the end
    others = [n for n in old if n not in SCENARIOS]
    return [line for name in (*SCENARIOS, *others) for line in fresh.get(name, old.get(name, []))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    ap.add_argument("--jobs", "-j", type=int, default=2)
    ap.add_argument("--out", type=Path, default=HERE.parent / "fixtures" / "outputs")
    args = ap.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown scenarios {sorted(unknown)}; known: {sorted(SCENARIOS)}")

    t0 = time.monotonic()
    results, failures = {}, []
    with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futs = {pool.submit(run_scenario, n, args.out): n for n in names}
        for fut in concurrent.futures.as_completed(futs):
            n = futs[fut]
            try:
                name, lvm_idx, md_idx, dt = fut.result()
                results[name] = (lvm_idx, md_idx)
                print(f"[{name}] done in {dt:.1f}s", flush=True)
            except Exception:
                failures.append(n)
                print(f"[{n}] FAILED\n{traceback.format_exc()}", file=sys.stderr, flush=True)

    md_lines = []
    for n in names:
        if n in results:
            md_lines += results[n][1]
    lvm_lines = merge_index(args.out / "lvm" / "INDEX.md",
                            {n: results[n][0] for n in names if n in results and results[n][0]})
    common = ("Recorded by `python3 tests/lab/record_fixtures.py` in lab guests (qemu TCG, Debian "
              "kernel, the host's own lvm2/mdadm, no udev); commands run as argv with LC_ALL=C and "
              "LVM_SUPPRESS_FD_WARNINGS=1. Each scenario is a fresh guest; its cases are listed in "
              "the order they were produced. Copies were slowed down with qemu block throttling "
              "(4 MiB/s of writes on the destination disk) to catch them mid-way.")
    lvm_intro = (common + "\n\nDisks: /dev/vda 140M, /dev/vdb 808M, /dev/vdc 200M, /dev/vdd 200M; "
                 "extent size 4 MiB (the missing scenario adds /dev/vde and /dev/vdf, 200M; scenario sysid: three 64M disks). lvm.conf: use_lvmpolld=0, udev_sync=0, udev_rules=0, "
                 "obtain_device_list_from_udev=0, polling_interval=1 (pollers check every second). "
                 "A disk is failed with qemu's `drive_del` (QMP): the device stays, every I/O to it "
                 "fails with EIO. A state whose `lvm fullreport` wrote to stderr has that run "
                 "recorded whole as `commands/fullreport_<state>.txt` too.")
    md_intro = common + "\n\nDisks: /dev/vda and /dev/vdb, 256M each; /dev/vda filled with 64 MiB of random data first."
    if any(results[n][0] for n in results):
        write_index(args.out / "lvm" / "INDEX.md", "Real LVM outputs", lvm_intro, lvm_lines)
    if md_lines:
        write_index(args.out / "md" / "INDEX.md", "Real md outputs", md_intro, md_lines)
    print(f"recorded {len(results)}/{len(names)} scenarios in {time.monotonic() - t0:.1f}s"
          + (f"; FAILED: {failures}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
