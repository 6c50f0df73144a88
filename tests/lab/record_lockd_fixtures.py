#!/usr/bin/env python3
"""Record real lvm2 + lvmlockd + sanlock outputs on two lab guests sharing a disk.

    python3 tests/lab/record_lockd_fixtures.py [--only shared,unstarted] [--jobs 1]
                                               [--out tests/fixtures/outputs/lvmlockd]

Groundwork for issue 10 (cluster LVM): the messages lvmlockd gives (lock held by the other
node, lockspace not started, refused while shared, daemons or host_id missing), what
``lvm fullreport`` says about shared VGs and per-node activation, and what the kernel shows
without a process (/sys/block/dm-*, /run). Two scenarios, each on a fresh pair from
``lockd.lockd_pair`` (node-a host_id 1, node-b host_id 2, shared disks shared0 1G -> /dev/vda
and shared1 256M -> /dev/vdb):

- ``shared``: sanlock + lvmlockd running on both from the start; the VG's life from
  ``vgcreate --shared`` to activation moves, resizes, refresh, removal with a stale dm
  device, pvmove, and the refusals.
- ``unstarted``: the daemons are started one by one on node-b, recording what lock-start says
  when lvmlockd, sanlock or the host_id is missing.

Writes, under --out (same formats as record_fixtures.py):
- ``<case>.json``: ``# lvm2 <version>; kernel <kver>; argv: <LOCKD_FULLREPORT_ARGV>`` then the
  exact stdout of that argv on the node the case name ends with (``_a``/``_b``); when the
  report's rc is not 0 or it wrote to stderr, also ``commands/fullreport_<case>.txt``.
- ``commands/<case>.txt``: the header line, then ``argv:``, ``rc:``, ``--- stdout``,
  ``--- stderr`` verbatim. The node is the case name's suffix.
- ``state/<case>.txt``: kernel / daemon state on one node: ``=== argv:`` blocks for the dm
  sysfs files, ``dmsetup``, ``/run`` listings, ``lvmlockctl --info``, ``sanlock client status``.
- ``INDEX.md``: how each file was produced, in order, with rc and timings.

Commands run as the reconciler runs them: argv lists, ``LC_ALL=C``, ``LVM_SUPPRESS_FD_WARNINGS=1``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import sys
import threading
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import Guest, LabError, Result
from lockd import (HOST_IDS, LOCKD_FULLREPORT_ARGV, LOCKD_LV_EXTRA, LOCKD_VG_EXTRA, LVMLOCKD_ARGV,
                   LVMPOLLD_ARGV, SANLOCK_ARGV, LockdPair, lockd_pair, lv_of)
from record_fixtures import jstr, render_block

VG = "vgs"
MiB = 1 << 20

# Fields the brief asked about, and whether lvm2 2.03.16 knows them (checked in the guest).
ASKED_FIELDS = ("lock_type", "vg_lock_type", "vg_lock_args", "lv_lock_args", "lv_lockargs", "vg_shared",
                "lv_active_exclusively", "lv_active_locally", "lv_active_remotely", "vg_systemid",
                "lv_health_status", "raid_sync_action")

STATE_PROBES: tuple[list[str], ...] = (
    ["sh", "-c", "grep -H . /sys/block/dm-*/dm/name /sys/block/dm-*/dm/uuid /sys/block/dm-*/size "
     "/sys/block/dm-*/dm/suspended /sys/block/dm-*/ro 2>&1; ls /sys/block/dm-*/holders /sys/block/dm-*/slaves 2>&1"],
    ["dmsetup", "ls"],
    ["dmsetup", "table"],
    ["dmsetup", "info", "-c", "-o", "name,uuid,major,minor,open,attr,segments,events"],
    ["sh", "-c", "ls -la /run/lvm /run/sanlock /run/lock/lvm 2>&1; cat /run/lvmlockd.pid /run/sanlock/sanlock.pid 2>&1"],
    ["lvmlockctl", "--info"],
    ["sanlock", "client", "status"],
)


# Every file this run wrote: scenarios run in threads into one directory, and a case name
# used by two of them would silently keep only the last one's recording.
_WRITTEN: set[Path] = set()
_WRITTEN_LOCK = threading.Lock()


def _claim(path: Path) -> Path:
    with _WRITTEN_LOCK:
        if path in _WRITTEN:
            raise LabError(f"{path} written twice in one run: give the cases distinct names")
        _WRITTEN.add(path)
    return path


class Recorder:
    def __init__(self, pair: LockdPair, out: Path, scenario: str):
        self.pair = pair
        self.out = out
        self.scenario = scenario
        self.index: list[str] = []
        ver = pair.a.run(["lvm", "version"]).out
        self.lvm_version = next(ln.split(":", 1)[1].strip() for ln in ver.splitlines()
                                if ln.strip().startswith("LVM version:"))

    def header(self, g: Guest, argv) -> str:
        return f"# lvm2 {self.lvm_version}; kernel {g.kver}; argv: {jstr(argv)}\n"

    @staticmethod
    def suffix(g: Guest) -> str:
        return g.name.rsplit("-", 1)[1]  # node-a -> a

    def note(self, text: str) -> None:
        self.index.append(f"  - {text}")
        print(f"  [{self.scenario}] note: {text}", flush=True)

    def cmd(self, g: Guest, case: str, argv: list[str], how: str = "", expect: str | None = None,
            timeout: float = 300) -> Result:
        """Run argv on g, save commands/<case>_<node>.txt. expect: 'ok', 'fail' or None."""
        case = f"{case}_{self.suffix(g)}"
        t0 = time.monotonic()
        res = g.run(argv, timeout=timeout, check=False)
        dt = time.monotonic() - t0
        self._save_cmd(g, case, argv, res)
        self.index.append(f"- `commands/{case}.txt` ({g.name}): `{jstr(argv)}` -> rc {res.rc} "
                          f"in {dt:.1f}s. {how}")
        print(f"  [{self.scenario}] {case} rc={res.rc} {dt:.1f}s {res.err.strip()[:200]!r}", flush=True)
        if expect == "ok" and res.rc != 0:
            raise LabError(f"{case}: expected success, got rc {res.rc}: {res.err}")
        if expect == "fail" and res.rc == 0:
            raise LabError(f"{case}: expected a failure, got rc 0: {res.out} {res.err}")
        return res

    def _save_cmd(self, g: Guest, case: str, argv, res: Result) -> None:
        path = _claim(self.out / "commands" / f"{case}.txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.header(g, argv).encode() + render_block(argv, res))

    def report(self, g: Guest, case: str, how: str, check=None) -> dict:
        case = f"{case}_{self.suffix(g)}"
        res = g.run(list(LOCKD_FULLREPORT_ARGV), timeout=120, check=False)
        data = json.loads(res.out) if res.out.strip() else {"report": []}
        if check is not None:
            problem = check(data)
            if problem:
                raise LabError(f"{case}: recorded state is not the intended one: {problem}\n{res.out}\n{res.err}")
        path = _claim(self.out / f"{case}.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.header(g, LOCKD_FULLREPORT_ARGV).encode() + res.out_bytes)
        line = f"- `{case}.json` ({g.name}): {how} rc={res.rc}"
        if res.rc != 0 or res.err.strip():
            self._save_cmd(g, f"fullreport_{case}", LOCKD_FULLREPORT_ARGV, res)
            line += f"; stderr: `{' / '.join(s.strip() for s in res.err.strip().splitlines())}` " \
                    f"(full: `commands/fullreport_{case}.txt`)"
        self.index.append(line)
        print(f"  [{self.scenario}] {case}.json rc={res.rc}", flush=True)
        return data

    def state(self, g: Guest, case: str, how: str) -> str:
        case = f"{case}_{self.suffix(g)}"
        blocks = [f"# lvm2 {self.lvm_version}; kernel {g.kver}; node: {g.name}; state: {case}\n".encode()]
        for argv in STATE_PROBES:
            blocks.append(b"=== " + render_block(argv, g.run(argv, check=False)))
        text = b"".join(blocks)
        path = _claim(self.out / "state" / f"{case}.txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text)
        self.index.append(f"- `state/{case}.txt` ({g.name}): {how}")
        return text.decode(errors="replace")


def lv_is(data: dict, name: str, **want: str):
    lv = lv_of(data, name)
    if lv is None:
        return f"no LV {name}"
    bad = {k: lv.get(k) for k, v in want.items() if lv.get(k) != v}
    return f"{name}: {bad} (want {want})" if bad else None


def dm_size_sectors(g: Guest, dm_name: str) -> int | None:
    res = g.run(["sh", "-c", 'for d in /sys/block/dm-*; do [ "$(cat $d/dm/name)" = "$1" ] && cat $d/size; done; true',
                 "sh", dm_name])
    return int(res.out.split()[0]) if res.out.strip() else None


# ============================================================================================


def scenario_shared(p: LockdPair, r: Recorder) -> None:
    a, b = p
    pv0, pv1 = a.disk("shared0"), a.disk("shared1")
    assert (pv0, pv1) == (b.disk("shared0"), b.disk("shared1"))

    r.cmd(a, "lvm_version", ["lvm", "version"], expect="ok")
    for f in ASKED_FIELDS:
        for tool in ("lvs", "vgs"):
            res = a.run([tool, "--noheadings", "-o", f], check=False)
            why = "" if res.rc == 0 else ": " + " ".join(ln.strip() for ln in res.err.splitlines()
                                                         if "Unrecognised" in ln)
            r.note(f"field `{f}` with {tool}: rc {res.rc}{why}")
    r.cmd(a, "field_lock_type_lvs", ["lvs", "-o", "lock_type"], "`lock_type` with lvs (lv_ prefix assumed).")
    r.cmd(a, "field_lock_type_vgs", ["vgs", "-o", "lock_type"], "`lock_type` with vgs (vg_ prefix assumed).")
    r.cmd(a, "field_lv_lock_args", ["lvs", "-o", "lv_lock_args"], "the field is listed as `lv_lockargs`.")

    r.report(a, "daemons_no_vg", "sanlock + lvmlockd running, no PV or VG at all.")
    r.state(b, "daemons_no_vg", "sanlock + lvmlockd running, no VG: no lockspace, no dm device.")

    r.cmd(a, "vgcreate_shared_both", ["vgcreate", "--shared", VG, pv0],
          f"`{pv0}` not yet a PV; makes the PV, the lvmlock LV (256 MiB) and starts the lockspace on node-a.",
          expect="ok")
    r.report(a, "vg_started", "right after vgcreate --shared on node-a (lockspace started there).",
             check=lambda d: None if any(v.get("vg_shared") == "shared" for vg in d["report"] for v in vg["vg"])
             else "VG not shared")
    r.state(a, "vg_started", "node-a after vgcreate --shared: the `vgs-lvmlock` dm device and the lockspace.")
    r.report(b, "vg_not_started", "node-b, lvmlockd running, the VG exists but its lockspace is not started there.")
    r.state(b, "vg_not_started", "node-b before its lock-start: no dm device at all, `lvmlockctl --info` empty.")

    r.cmd(a, "lvcreate_lv1", ["lvcreate", "--yes", "--name", "lv1", "--size", f"{32 * MiB}b", VG, pv0],
          "in the shared VG on node-a: the new LV is active exclusively there.", expect="ok")
    r.cmd(b, "lvchange_asy_not_started", ["lvchange", "-asy", f"{VG}/lv1"],
          "node-b has not started the lockspace.", expect="fail")
    r.cmd(b, "lvcreate_not_started", ["lvcreate", "--yes", "--name", "lvb", "--size", f"{8 * MiB}b", VG],
          "node-b has not started the lockspace.", expect="fail")
    r.cmd(b, "lvextend_not_started", ["lvextend", "--size", f"+{4 * MiB}b", f"{VG}/lv1"],
          "node-b has not started the lockspace.", expect="fail")

    r.cmd(a, "lock_start_again", ["vgchange", "--lock-start", VG], "already started on node-a.")
    r.cmd(b, "lock_start_joins", ["vgchange", "--lock-start", VG], "first lock-start on node-b (sanlock joins "
          "the lockspace: about 2.5 x io_timeout 3 s).", expect="ok")
    r.cmd(b, "lock_start_again", ["vgchange", "--lock-start", VG], "already started on node-b.")
    r.cmd(a, "vgextend", ["vgextend", VG, pv1], f"{pv1} added (pvmove destination later).", expect="ok")

    r.report(a, "lv_ex_a", "lv1 active exclusively on node-a (seen from node-a).",
             check=lambda d: lv_is(d, "lv1", lv_active_exclusively="active exclusively"))
    r.report(b, "lv_ex_a", "lv1 active exclusively on node-a, seen from node-b (both lockspaces started).",
             check=lambda d: lv_is(d, "lv1", lv_active=""))
    r.state(b, "lockspace_started", "node-b after its lock-start, lv1 active on node-a only.")

    r.cmd(b, "lvchange_aey_conflict", ["lvchange", "-aey", f"{VG}/lv1"], "lv1 active exclusively on node-a.",
          expect="fail")
    r.cmd(b, "lvchange_asy_conflict", ["lvchange", "-asy", f"{VG}/lv1"], "lv1 active exclusively on node-a.",
          expect="fail")
    r.cmd(b, "lvextend_active_elsewhere", ["lvextend", "--size", f"+{4 * MiB}b", f"{VG}/lv1"],
          "lv1 active exclusively on node-a, inactive on node-b.", expect="fail")
    r.cmd(b, "lvremove_active_elsewhere", ["lvremove", "--yes", f"{VG}/lv1"],
          "lv1 active exclusively on node-a.", expect="fail")
    r.cmd(a, "lvextend_ex", ["lvextend", "--size", f"+{4 * MiB}b", f"{VG}/lv1"],
          "lv1 active exclusively on node-a (36 MiB now).", expect="ok")
    r.cmd(a, "lvchange_aey_again", ["lvchange", "-aey", f"{VG}/lv1"], "already active exclusively here.")

    r.cmd(a, "lvchange_aln", ["lvchange", "-aln", f"{VG}/lv1"], "deactivate on node-a (releases the lock).",
          expect="ok")
    r.report(a, "lv_inactive", "lv1 inactive everywhere.", check=lambda d: lv_is(d, "lv1", lv_active=""))
    r.report(b, "lv_inactive", "lv1 inactive everywhere.", check=lambda d: lv_is(d, "lv1", lv_active=""))
    r.cmd(a, "lvextend_inactive", ["lvextend", "--size", f"+{4 * MiB}b", f"{VG}/lv1"],
          "lv1 inactive on both nodes (40 MiB now).", expect="ok")
    r.cmd(b, "lvchange_aey", ["lvchange", "-aey", f"{VG}/lv1"], "node-b takes lv1 after node-a released it.",
          expect="ok")
    r.report(b, "lv_ex_b", "lv1 active exclusively on node-b.",
             check=lambda d: lv_is(d, "lv1", lv_active_exclusively="active exclusively"))
    r.cmd(b, "lvchange_aln", ["lvchange", "-aln", f"{VG}/lv1"], "", expect="ok")

    r.cmd(a, "lvchange_asy", ["lvchange", "-asy", f"{VG}/lv1"], "lv1 inactive everywhere before.", expect="ok")
    r.cmd(b, "lvchange_asy", ["lvchange", "-asy", f"{VG}/lv1"], "lv1 active shared on node-a.", expect="ok")
    r.report(a, "lv_sh_both", "lv1 active shared on both nodes.", check=lambda d: lv_is(d, "lv1", lv_active="active"))
    r.report(b, "lv_sh_both", "lv1 active shared on both nodes.", check=lambda d: lv_is(d, "lv1", lv_active="active"))
    r.state(b, "lv_sh_both", "lv1 active shared on both nodes.")
    r.cmd(a, "lvchange_aey_while_shared", ["lvchange", "-aey", f"{VG}/lv1"],
          "lv1 active shared on both nodes (node-a asks to upgrade).", expect="fail")
    r.cmd(a, "lvextend_shared_both", ["lvextend", "--size", f"+{4 * MiB}b", f"{VG}/lv1"],
          "lv1 active shared on both nodes.", expect="fail")
    r.cmd(a, "pvmove_no_lvmpolld", ["pvmove", "--config", "global/use_lvmpolld=0", "-i", "1", "--name",
                                    f"{VG}/lv1", pv0, pv1],
          "lvmpolld disabled for this command; lv1 active shared on both nodes.", expect="fail")
    r.cmd(a, "pvmove_shared", ["pvmove", "-i", "1", "--name", f"{VG}/lv1", pv0, pv1],
          "lv1 active shared on both nodes.", expect="fail")

    # refresh: extend with the shared lock in place (--lockopt shupdate), node-b's table goes stale
    res = r.cmd(a, "lvextend_shupdate", ["lvextend", "--lockopt", "shupdate", "--size", f"+{4 * MiB}b", f"{VG}/lv1"],
                "lv1 active shared on both nodes; `--lockopt shupdate` keeps the shared lock (lvmlockd(8)).")
    if res.rc == 0:
        d = r.report(b, "lv_sh_extended_elsewhere", "node-a extended lv1 (shupdate) while it is active shared on "
                     "both; node-b not refreshed yet: metadata larger than node-b's dm table.")
        meta = int(lv_of(d, "lv1")["lv_size"]) // 512
        before = dm_size_sectors(b, f"{VG}-lv1")
        r.state(b, "before_refresh", f"node-b, after node-a's shupdate extend: /sys/block/dm-N/size {before} "
                f"sectors vs lv_size {meta} sectors in the metadata.")
        r.note(f"node-b before refresh: dm size {before} sectors, metadata {meta} sectors; "
               f"node-a dm size {dm_size_sectors(a, f'{VG}-lv1')}")
        r.cmd(b, "lvchange_refresh", ["lvchange", "--refresh", f"{VG}/lv1"],
              "node-b reloads lv1's table from the metadata.", expect="ok")
        r.note(f"node-b after refresh: dm size {dm_size_sectors(b, f'{VG}-lv1')} sectors")
        r.state(b, "after_refresh", "node-b after `lvchange --refresh`.")
    r.cmd(b, "lvchange_aln_shared", ["lvchange", "-aln", f"{VG}/lv1"], "lv1 shared on both; node-b leaves.",
          expect="ok")
    r.cmd(a, "lvextend_shared_one", ["lvextend", "--size", f"+{4 * MiB}b", f"{VG}/lv1"],
          "lv1 active shared on node-a only (node-b deactivated).")
    r.cmd(a, "lvchange_aln_shared", ["lvchange", "-aln", f"{VG}/lv1"], "", expect="ok")

    # pvmove
    r.cmd(a, "lvchange_aey", ["lvchange", "-aey", f"{VG}/lv1"], "", expect="ok")
    a.sh(f"mkfs.ext4 -q /dev/{VG}/lv1 && mkdir -p /mnt/lv1 && mount /dev/{VG}/lv1 /mnt/lv1 && "
         "head -c 8M /dev/urandom > /mnt/lv1/blob && sync")
    md5 = a.run("md5sum /mnt/lv1/blob").out.split()[0]
    r.cmd(a, "pvmove_whole_pv", ["pvmove", "-i", "1", pv0, pv1],
          "a whole PV (no --name) in a shared VG; lv1 active exclusively on node-a and mounted.", expect="fail")
    r.cmd(b, "pvmove_active_elsewhere", ["pvmove", "-i", "1", "--name", f"{VG}/lv1", pv0, pv1],
          "lv1 active exclusively on node-a.", expect="fail")
    r.cmd(a, "pvmove_ex", ["pvmove", "-i", "1", "--name", f"{VG}/lv1", pv0, pv1],
          "lv1 active exclusively on node-a, ext4 mounted with an 8 MiB file.", expect="ok")
    a.sh("umount /mnt/lv1 && echo 3 > /proc/sys/vm/drop_caches && mount /dev/vgs/lv1 /mnt/lv1")
    after = a.run("md5sum /mnt/lv1/blob").out.split()[0]
    devices = a.run(["lvs", "--noheadings", "-o", "devices", f"{VG}/lv1"]).out.strip()
    r.note(f"after pvmove_ex_a: lv1 devices `{devices}`, md5 {'unchanged' if after == md5 else 'CHANGED'}")
    if after != md5:
        raise LabError("pvmove changed the data")
    a.run(["umount", "/mnt/lv1"])
    r.cmd(a, "lvchange_aln_ex", ["lvchange", "-aln", f"{VG}/lv1"], "", expect="ok")
    r.cmd(a, "pvmove_inactive", ["pvmove", "-i", "1", "--name", f"{VG}/lv1", pv1, pv0],
          "lv1 inactive on both nodes.")
    r.report(a, "after_pvmoves", "after the pvmoves above; lv1 state as the last pvmove left it.")

    # removal
    r.cmd(a, "lvcreate_lv2", ["lvcreate", "--yes", "--name", "lv2", "--size", f"{8 * MiB}b", VG, pv0], "", expect="ok")
    r.cmd(a, "lvchange_aln_lv2", ["lvchange", "-aln", f"{VG}/lv2"], "", expect="ok")
    r.cmd(b, "lvchange_asy_lv2", ["lvchange", "-asy", f"{VG}/lv2"], "", expect="ok")
    r.cmd(a, "lvremove_shared_elsewhere", ["lvremove", "--yes", f"{VG}/lv2"], "lv2 active shared on node-b.",
          expect="fail")
    r.cmd(b, "lvchange_aln_lv2", ["lvchange", "-aln", f"{VG}/lv2"], "", expect="ok")
    r.cmd(a, "lvremove_inactive", ["lvremove", "--yes", f"{VG}/lv2"], "lv2 inactive on both nodes.", expect="ok")

    # the seed's stale dm device: removal on node-a while node-b still has the LV active.
    r.cmd(a, "lvcreate_lv3", ["lvcreate", "--yes", "--name", "lv3", "--size", f"{16 * MiB}b", VG, pv0], "", expect="ok")
    r.cmd(a, "lvchange_aln_lv3", ["lvchange", "-aln", f"{VG}/lv3"], "", expect="ok")
    r.cmd(b, "lvchange_aey_lv3", ["lvchange", "-aey", f"{VG}/lv3"], "", expect="ok")
    b.sh(f"mkfs.ext4 -q /dev/{VG}/lv3 && mkdir -p /mnt/lv3 && mount /dev/{VG}/lv3 /mnt/lv3")
    r.cmd(a, "lvremove_ex_elsewhere", ["lvremove", "--yes", f"{VG}/lv3"], "lv3 active exclusively (and mounted) "
          "on node-b.", expect="fail")
    res = r.cmd(a, "lvremove_skiplv", ["lvremove", "--yes", "--lockopt", "skiplv", f"{VG}/lv3"],
                "lv3 active exclusively and mounted on node-b; `--lockopt skiplv` skips the LV lock: the way to "
                "get the seed's stale device (node-a's metadata no longer has lv3, node-b's dm device stays).")
    stale = res.rc == 0
    if not stale:
        # Second way: lvmlockd on node-b dies, its leases go with it, the dm device stays.
        r.note("`--lockopt skiplv` refused; killing lvmlockd on node-b instead")
    if stale:
        r.report(b, "lv_removed_elsewhere", "node-a removed lv3 (skiplv) while node-b has it active and mounted.",
                 check=lambda d: None if lv_of(d, "lv3") is None else "lv3 still in the metadata")
        r.state(b, "stale_dm_open", "node-b after lv3's removal on node-a: `vgs-lv3` still in dm, mounted (open 1).")
        r.cmd(b, "dmsetup_remove_stale_open", ["dmsetup", "remove", f"{VG}-lv3"],
              "the stale device is mounted on node-b.", expect="fail")
        b.run(["umount", "/mnt/lv3"])
        r.cmd(b, "lvchange_aln_stale", ["lvchange", "-aln", f"{VG}/lv3"], "what lvm says about the stale device "
              "on node-b (the LV is gone from the metadata).")
        r.state(b, "stale_dm_closed", "node-b, the stale device unmounted (open 0).")
        r.cmd(b, "dmsetup_remove_stale", ["dmsetup", "remove", f"{VG}-lv3"], "unmounted stale device.", expect="ok")
        r.state(b, "stale_dm_removed", "node-b after `dmsetup remove`.")

    # mirror split, raid sharing, vgsplit
    r.cmd(a, "lvcreate_raid1", ["lvcreate", "--yes", "--type", "raid1", "--mirrors", "1", "--name", "r1",
                                "--size", f"{16 * MiB}b", VG, pv0, pv1], "", expect="ok")
    r.cmd(a, "lvchange_aln_raid1", ["lvchange", "-aln", f"{VG}/r1"], "")
    r.cmd(b, "lvchange_asy_raid1", ["lvchange", "-asy", f"{VG}/r1"], "raid1 cannot be active shared.")
    b.run(["lvchange", "-aln", f"{VG}/r1"], check=False)
    r.cmd(a, "lvchange_aey_raid1", ["lvchange", "-aey", f"{VG}/r1"], "", expect="ok")
    deadline = time.monotonic() + 120
    while float(lv_of(json.loads(a.run(list(LOCKD_FULLREPORT_ARGV)).out), "r1")["sync_percent"] or 0) < 100:
        if time.monotonic() > deadline:
            raise LabError("r1 never synced")
        time.sleep(1)
    r.report(a, "raid1_ex", "raid1 r1 active exclusively on node-a, in sync.")
    r.cmd(a, "lvconvert_splitmirrors", ["lvconvert", "--yes", "--splitmirrors", "1", "--name", "r1split",
                                        f"{VG}/r1"], "r1 in sync, active exclusively on node-a.", expect="fail")
    r.cmd(a, "lvconvert_m0", ["lvconvert", "--yes", "--mirrors", "0", f"{VG}/r1", pv1],
          "dropping a leg (not a split), r1 active exclusively on node-a.")
    r.cmd(a, "vgsplit_empty_pv", ["vgsplit", VG, "vgnew", pv1], f"a shared VG; {pv1} holds no extent now.")
    r.report(a, "after_vgsplit", "after vgsplit_empty_pv: what became of vgnew (lock type, system id).")
    r.cmd(a, "vgmerge", ["vgmerge", VG, "vgnew"], "merge vgnew back into the shared VG.")
    a.run(["vgremove", "--yes", "vgnew"], check=False)
    a.run(["vgextend", VG, pv1], check=False)
    r.cmd(a, "lvcreate_lv4", ["lvcreate", "--yes", "--activate", "n", "--name", "lv4", "--size", f"{8 * MiB}b",
                              VG, pv1], f"an inactive LV on {pv1}.")
    r.cmd(a, "vgsplit_with_lv", ["vgsplit", VG, "vgnew2", pv1], f"a shared VG; {pv1} holds lv4 (inactive).")
    r.report(a, "after_vgsplit_with_lv", "after vgsplit_with_lv.")
    r.cmd(a, "lock_stop_active", ["vgchange", "--lock-stop", VG], "lv1 and r1 still active on node-a.")
    r.state(a, "end", "node-a at the end of the scenario (lv1, r1 active exclusively).")
    r.state(b, "end", "node-b at the end of the scenario (nothing active; the lock of the removed lv3 leaked).")
    r.cmd(b, "lock_stop", ["vgchange", "--lock-stop", VG], "nothing active on node-b.")
    r.state(b, "lock_stopped", "node-b after `vgchange --lock-stop`: is the `vgs-lvmlock` dm device gone?")
    r.report(b, "lock_stopped", "node-b after its lock-stop; lv1 and r1 active on node-a.")


def scenario_unstarted(p: LockdPair, r: Recorder) -> None:
    a, b = p
    pv0 = a.disk("shared0")
    r.report(a, "no_daemons", "use_lvmlockd=1, host_id set, sanlock and lvmlockd NOT running, no VG.")
    r.state(a, "no_daemons", "daemons not running.")
    r.cmd(a, "vgcreate_shared_no_lvmlockd", ["vgcreate", "--shared", VG, pv0], "lvmlockd not running.",
          expect="fail")
    r.cmd(a, "lvmlockctl_info_no_lvmlockd", ["lvmlockctl", "--info"], "lvmlockd not running.")
    p.start_daemons(a)
    r.cmd(a, "vgcreate_shared", ["vgcreate", "--shared", VG, pv0], "daemons started on node-a only.", expect="ok")
    r.cmd(a, "lvcreate", ["lvcreate", "--yes", "--name", "lv1", "--size", f"{8 * MiB}b", VG], "", expect="ok")

    r.report(b, "vg_shared_no_lvmlockd", "node-b: the shared VG exists, lvmlockd and sanlock not running.")
    r.cmd(b, "lock_start_no_lvmlockd", ["vgchange", "--lock-start", VG], "lvmlockd not running on node-b.",
          expect="fail")
    r.cmd(b, "lvchange_asy_no_lvmlockd", ["lvchange", "-asy", f"{VG}/lv1"], "lvmlockd not running on node-b.",
          expect="fail")
    r.cmd(b, "vgs_no_lvmlockd", ["vgs", VG], "lvmlockd not running on node-b.")

    p.start_lvmlockd(b)
    r.report(b, "vg_shared_no_sanlock", "node-b: lvmlockd running, sanlock not.")
    r.cmd(b, "lock_start_no_sanlock", ["vgchange", "--lock-start", VG], "lvmlockd running, sanlock not.",
          expect="fail")
    r.cmd(b, "lvmlockctl_info_no_sanlock", ["lvmlockctl", "--info"], "after the failed lock-start.")

    p.start_sanlock(b)
    p.set_host_id(b, None)
    r.cmd(b, "lock_start_no_host_id", ["vgchange", "--lock-start", VG],
          "sanlock + lvmlockd running, lvmlocal.conf without host_id.", expect="fail")
    p.set_host_id(b, HOST_IDS["node-a"])
    r.cmd(b, "lock_start_host_id_in_use", ["vgchange", "--lock-start", VG],
          "node-b configured with host_id 1, which node-a holds (live) in this lockspace.", timeout=400)
    started = r.cmd(b, "lvmlockctl_info_after_host_id_in_use", ["lvmlockctl", "--info"],
                    "right after lock_start_host_id_in_use_b returned.").out
    r.state(b, "after_host_id_in_use", "node-b right after the lock-start with node-a's host_id returned rc 0.")
    r.cmd(a, "lvmlockctl_info_after_peer_host_id_in_use", ["lvmlockctl", "--info"],
          "node-a after node-b tried to join with node-a's host_id.")
    r.cmd(a, "sanlock_status_after_peer_host_id_in_use", ["sanlock", "client", "status"],
          "node-a after node-b tried to join with node-a's host_id.")
    if "LS sanlock lvm_vgs" in started:
        r.note("node-b STARTED the lockspace with node-a's host_id; stopping it again")
        b.run(["vgchange", "--lock-stop", VG], check=False)
    else:
        r.note("lock-start with a host_id held by a live node: rc 0, same output as a good start, "
               "but no lockspace (lvmlockctl --info empty)")
    p.set_host_id(b, HOST_IDS["node-b"])
    r.cmd(b, "lock_start", ["vgchange", "--lock-start", VG], "node-b with its own host_id 2.", expect="ok")
    r.report(b, "started", "node-b after a good lock-start; lv1 active exclusively on node-a.")

    # lease storage failing under node-b's lockspace: qemu fails every I/O of the shared disk
    b.fail_disk("shared0")
    t0 = time.monotonic()
    r.cmd(b, "lvchange_asy_disk_failed", ["lvchange", "-asy", f"{VG}/lv1"],
          "node-b's shared disk failed with QMP drive_del (every I/O EIO), right away.", timeout=120)
    time.sleep(max(0.0, 30 - (time.monotonic() - t0)))
    r.cmd(b, "lvmlockctl_info_disk_failed", ["lvmlockctl", "--info"], "30 s after the disk failed on node-b.")
    r.cmd(b, "sanlock_status_disk_failed", ["sanlock", "client", "status"], "30 s after the disk failed on node-b.")
    r.cmd(b, "lock_start_disk_failed", ["vgchange", "--lock-start", VG], "30 s after the disk failed on node-b.",
          timeout=120)
    r.report(a, "peer_disk_failed", "node-a while node-b's view of the shared disk is failed.")
    r.state(b, "disk_failed", "node-b 30+ s after its shared disk failed: sanlock dropped the lockspace, "
            "lvmlockd still lists it.")


SCENARIOS = {"shared": (True, scenario_shared), "unstarted": (False, scenario_unstarted)}


def run_scenario(name: str, out: Path) -> tuple[list[str], float, str]:
    start, fn = SCENARIOS[name]
    t0 = time.monotonic()
    with lockd_pair(start=start) as p:
        setup = f"boot {p.boot_s:.1f}s" + (f", daemons {p.start_s:.1f}s" if start else "")
        print(f"[{name}] pair up: {setup}", flush=True)
        r = Recorder(p, out, name)
        try:
            fn(p, r)
        finally:
            dt = time.monotonic() - t0
            r.index.insert(0, f"\n## scenario `{name}` ({setup}; whole scenario {dt:.0f}s)\n")
    return r.index, time.monotonic() - t0, setup


INTRO = f"""Recorded by `python3 tests/lab/record_lockd_fixtures.py` on two lab guests (qemu TCG, Debian
kernel, the host's own lvm2 2.03.16 / lvm2-lockd / sanlock) built by `tests/lab/lockd.py`:
node-a (host_id 1) and node-b (host_id 2), both with udev, sharing two raw disks with
`share-rw=on` (shared0 1 GiB = /dev/vda, shared1 256 MiB = /dev/vdb). lvm.conf:
`use_lvmlockd = 1`, `use_lvmpolld = 1` (lvmpolld running: pvmove needs it with lvmlockd), `polling_interval = 1`; lvmlocal.conf
`local {{ host_id = N }}`. Daemons: `{' '.join(LVMPOLLD_ARGV)}`, `{' '.join(SANLOCK_ARGV)}`, then `{' '.join(LVMLOCKD_ARGV)}`.
Commands run as argv lists with LC_ALL=C and LVM_SUPPRESS_FD_WARNINGS=1. The VG is `vgs`.

The node of each file is the last letter of its name (`_a` node-a, `_b` node-b). Reports use
`LOCKD_FULLREPORT_ARGV` (tests/lab/lockd.py): the project's FULLREPORT_ARGV plus the VG fields
{', '.join(LOCKD_VG_EXTRA)} and the LV fields {', '.join(LOCKD_LV_EXTRA)}. `state/*.txt` files
are what a node shows without lvm: dm sysfs (`/sys/block/dm-*/dm/name|uuid`, `size` in
512-byte sectors), `dmsetup`, `/run` listings, `lvmlockctl --info`, `sanlock client status`.
Cases are listed in the order they were produced; each scenario starts from fresh guests."""


FINDINGS = """## What these recordings show (lvm2 2.03.16, sanlock; checked in the files below)

- Fields: all asked-for fields exist except `lock_type` (`lvs -o lock_type`: "Unrecognised
  field: lock_type"; vgs takes it as vg_lock_type). `lv_lock_args` is accepted but `lvs -o help`
  lists it as `lv_lockargs` (used here). A shared VG: `vg_attr` 6th char `s`, `vg_shared`
  "shared", `vg_lock_type` "sanlock", `vg_lock_args` "1.0.0:lvmlock", `vg_systemid` "". Each LV:
  `lv_lockargs` "1.0.0:<byte offset of its lease in the lvmlock LV>". The hidden `[lvmlock]` LV
  (256 MiB, `lv_role` "private,lockd,sanlock") is active on every node that started the lockspace.
- **The report cannot tell shared from exclusive, nor see other nodes**: `lv_active_exclusively`
  is "active exclusively" on a node that activated the LV with `-asy` (`lv_sh_both_a.json`,
  `lv_sh_both_b.json`), and `lv_active_remotely` is always "". On node-b, an LV active on node-a
  looks inactive (`lv_ex_a_b.json`). The mode per node is in `lvmlockctl --info`
  (`LK LV sh|ex <lv_uuid>`) and `sanlock client status` (`r lvm_<vg>:<lv_uuid>:...:<offset>:SH`
  for shared); what other nodes hold is only learnt by asking for the lock.
- Without a process: a started lockspace shows as the dm device `<vg>-lvmlock`
  (`/sys/block/dm-*/dm/name`, held open by sanlock); before the lock-start there is none
  (`state/vg_not_started_b.txt`). After sanlock lost the lease storage it is still there.
  `/run/lvm/lvmlockd.socket`, `/run/lvmlockd.pid`, `/run/sanlock/sanlock.sock` say only that the
  daemons run. A node's dm table length is `/sys/block/dm-N/size` (512-byte sectors).
- Messages (stderr, rc 5 unless said): lock held by the other node: "LV locked by other host:
  vgs/lv1" (+ "Failed to lock logical volume vgs/lv1." for lvchange); `-aey` returns in 0.3 s,
  `-asy` against an exclusive holder retries for ~5 s first. Lockspace not started on this node:
  "Cannot access VG vgs due to failed lock." Resize with a shared lock (even if no other node has
  it): "LV is already locked with incompatible mode: vgs/lv1". raid1 `-asy`: "Shared activation
  not compatible with LV type raid1 of vgs/r1". A report or `vgs` on a node without the lockspace
  still works (rc 0) with "Skipping global lock: lockspace not found or started" / "Reading VG vgs
  without a lock.".
- lock-start: ~10 s (io_timeout 3), stdout "VG vgs starting sanlock lockspace" / "Starting
  locking.  Waiting for sanlock may take 20 sec to 3 min...". Again when started: rc 0 at once.
  lvmlockd not running: "VG vgs start failed: lvmlockd is not running" (with "WARNING: lvmlockd
  process is not running."); sanlock not running: "VG vgs start failed: lock manager sanlock is
  not running" (with "Start a lock manager, lvmlockd did not find one running."); no host_id:
  "VG vgs start failed: invalid sanlock host_id, set in lvmlocal.conf". **A host_id held by a live
  node: rc 0 after ~89 s with the same output as a good start, but no lockspace** (`lvmlockctl
  --info` empty; node-a unaffected): rc 0 does not prove the start. `vgcreate --shared` without
  lvmlockd: rc 3, "Failed to detect a running lock manager to select lock type.".
- Resize: allowed active exclusively on the node, or inactive everywhere. `lvextend --lockopt
  shupdate` works with the LV shared on both nodes and prints "Refreshing LV /dev//vgs/lv1 on other
  hosts...", but with sanlock nothing is refreshed: node-b's dm size stayed 81920 sectors against
  90112 in the metadata until its own `lvchange --refresh` (`state/before_refresh_b.txt`).
- pvmove needs lvmpolld ("Enable lvmpolld when using lvmlockd." with use_lvmpolld=0) and a named
  LV ("pvmove in a shared VG requires a named LV."); an LV shared or active on the other node:
  "LV locked by other host: vgs/lv1" + "pvmove in a shared VG requires exclusive lock on named
  LV."; exclusive on this node (mounted, md5 kept) or inactive everywhere: works.
- Removal: `lvremove` is refused while any node has the LV active ("LV locked by other host"), so
  the seed's stale dm device does not come from a normal lvremove here; `lvremove --lockopt skiplv`
  makes it ("WARNING: skipping LV lock in lvmlockd."). node-b then keeps the dm device (`dmsetup
  remove` while mounted: "device-mapper: remove ioctl on vgs-lv3  failed: Device or resource busy",
  rc 1; `lvchange -aln`: "Failed to find logical volume \"vgs/lv3\"") **and the LV's exclusive lock**,
  which `dmsetup remove` does not release: node-b's `vgchange --lock-stop` is then refused ("VG vgs
  stop failed: LVs must first be deactivated"), and the next LV created (r1) got the same lease
  offset (`lv_lockargs` 1.0.0:71303168) that node-b still holds under lv3's name.
- Refused in a sanlock VG: `lvconvert --splitmirrors` ("Splitting raid image is not allowed with
  lock_type sanlock."), `vgmerge` ("vgmerge not allowed for lock_type sanlock"), `vgsplit` of a PV
  holding an LV ("Internal error: LV vgnew2/lv4 with no lock_type has lock_args ...", VG left as it
  was). Allowed: `lvconvert --mirrors 0` (drop a leg), and `vgsplit` of an empty PV, which makes a
  *local* VG (`after_vgsplit_a.json`: vgnew, no lock type). `vgchange --lock-stop` with active
  LVs: "VG vgs stop failed: LVs must first be deactivated".
- Lease storage failing on node-b (QMP drive_del of its shared disk): "VG vgs lock skipped: error
  -221" + "Volume group \"vgs\" not found"; 30 s later sanlock has dropped the lockspace (no `s`
  line) while `lvmlockctl --info` still lists it; lock-start: "Global lock failed: error -221."
  (-221 is lvmlockd's ELMERR, lock manager error).
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    ap.add_argument("--jobs", "-j", type=int, default=1,
                    help="scenarios in parallel (each is 2 guests; sanlock's 3 s io_timeout dislikes a starved CPU)")
    ap.add_argument("--out", type=Path, default=HERE.parent / "fixtures" / "outputs" / "lvmlockd")
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
                results[n] = fut.result()
                print(f"[{n}] done in {results[n][1]:.1f}s", flush=True)
            except Exception:
                failures.append(n)
                print(f"[{n}] FAILED\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    if set(results) == set(SCENARIOS):
        lines = [ln for n in SCENARIOS for ln in results[n][0]]
        (args.out / "INDEX.md").write_text("# Real lvm2 + lvmlockd + sanlock outputs (two nodes)\n\n"
                                           + INTRO + "\n" + FINDINGS + "\n".join(lines) + "\n")
    print(f"recorded {len(results)}/{len(names)} scenarios in {time.monotonic() - t0:.1f}s"
          + (f"; FAILED: {failures}" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
