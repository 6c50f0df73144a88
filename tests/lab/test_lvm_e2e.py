"""The reconciler run inside lab guests against real lvm2, one test per transition.

Every run is ``python3 -m reconciler --spec DIR --node node-1 --once [--wait] --output json``
in the guest (this checkout and the host's Python, read over 9p). What it executed is read
from PATH shims (``reconciler_lab.install_shims``), not from its own logs. Data-moving
tests keep an ext4 file system mounted on the LV, write files before the move and from a
background writer while the copy runs (qemu throttles the destination disk so the copy
lasts), and check every md5 sum after umount / drop_caches / mount. Every test that
converges ends with a further pass that must exit 0 and plan nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from harness import REPO_ROOT
from loguru import logger
from reconciler_lab import (
    NODE,
    Data,
    MiB,
    assert_settled,
    commands,
    diff_dicts,
    dm_names,
    dm_status_before,
    fullreport_text,
    install_shims,
    kill9,
    mark,
    normalise,
    observe,
    pe_maps,
    put_spec,
    raid_in_sync,
    reconcile,
    spawn_reconcile,
    wait_for,
)

from reconciler import controller
from reconciler.adapters import lvm
from reconciler.simulate import SimulatedHost
from reconciler.spec import loading

pytestmark = pytest.mark.lab

POLL = {"polling_interval": 1}  # lvm's pollers notice the end of a copy after 1 s, not 15
VG = "vgglobal"


def seed000(g, lvrepnb="128M", mygfs="324M"):
    """Seed 000's layout: vgglobal on a 140M PV (lvrepnb) and an 808M PV (mygfs)."""
    small, big = g.disk(0), g.disk(1)
    g.sh(f"""
        pvcreate --yes {small} {big}
        vgcreate {VG} {small} {big}
        lvcreate --yes --name lvrepnb --size {lvrepnb} {VG} {small}
        lvcreate --yes --name mygfs --size {mygfs} {VG} {big}
    """)
    return small, big


def argvs(g, section=None):
    return [argv for sec, argv in commands(g) if section is None or sec == section]


def argv_of(cmd):
    """What the reconciler should have run, spelled by the adapter's own argv builders
    (the tests check it ran exactly that: the right objects and PVs, in the right order)."""
    return list(cmd.argv)


def add_leg(dest, lv="lvrepnb"):
    return [argv_of(lvm.add_tag(VG, lv, lvm.SPLIT_TAG)),
            argv_of(lvm.add_raid1_leg(VG, lv, (dest,)))]


def drop_leg(source, lv="lvrepnb"):
    return [argv_of(lvm.drop_legs_on(VG, lv, (source,))),
            argv_of(lvm.del_tag(VG, lv, lvm.SPLIT_TAG))]


def in_sync_when_split(g, lv):
    """The dm status taken just before each ``lvconvert --mirrors 0``: was the raid in sync?"""
    return [raid_in_sync(status, f"{VG}-{lv}") for argv, status in dm_status_before(g, "lvconvert")
            if "--mirrors" in argv and argv[argv.index("--mirrors") + 1] == "0"]


# -- create, grow, refuse to shrink -----------------------------------------------------------


def test_create_then_grow(make_guest):
    g = make_guest("g", disks=["256M", "256M"])
    a, b = g.disk(0), g.disk(1)
    install_shims(g)
    spec = """
        [vg.vgdata]
        nodes = ["node-1"]
        pvs = ["{a}", "{b}"]
        extent_size = "8M"
        [vg.vgdata.lv.data]
        size = "{size}"
        placement = ["{a}"]
        [vg.vgdata.lv.logs]
        size = "20M"
    """
    put_spec(g, spec.format(a=a, b=b, size="64M"))
    run = reconcile(g, "--wait")
    assert run.rc == 0, run
    assert argvs(g) == [
        argv_of(lvm.pvcreate(a)), argv_of(lvm.pvcreate(b)),
        argv_of(lvm.vgcreate("vgdata", (a, b), 8 * MiB)),
        argv_of(lvm.lvcreate("vgdata", "data", 64 * MiB, (a,))),
        argv_of(lvm.lvcreate("vgdata", "logs", 20 * MiB, (a, b))),
    ]
    vg = observe(g).vgs["vgdata"]
    assert vg.extent_size == 8 * MiB and sorted(vg.pvs) == [a, b]
    assert vg.lvs["data"].pv_extents == {a: 8}
    assert vg.lvs["logs"].size == 24 * MiB  # lvm rounds up to whole extents
    settled = assert_settled(g)  # a plain --once: it saves its no-op pass (noop_memo)
    assert g.run(["test", "-s", "/run/reconciler/once-memo"], check=False).ok

    # The next --once on the same host gives the saved plan, after asking every read again
    # (its own fullreport among them), and says exactly what the first said (the number
    # of processes it ran included).
    again = reconcile(g, "--log-level", "DEBUG")
    assert "the last no-op pass's" in again.log and "ran lvm fullreport" in again.log, again
    assert {**again.doc, "duration_s": 0} == {**settled.doc, "duration_s": 0}
    # An LV made by hand: the report differs, so the pass parses and plans, and lists it.
    g.run(["lvcreate", "--yes", "--name", "byhand", "--size", "8M", "vgdata"])
    seen = reconcile(g, "--log-level", "DEBUG")
    assert seen.rc == 0 and "an answer differs" in seen.log, seen
    assert "lv vgdata/byhand" in seen.doc["plan"]["unmanaged"], seen
    g.run(["lvremove", "--yes", "vgdata/byhand"])

    data = Data(g, "/dev/vgdata/data", "/mnt/data").make()
    put_spec(g, spec.format(a=a, b=b, size="96M"))
    mark(g, "grow")
    run = reconcile(g, "--wait")
    assert run.rc == 0, run
    assert argvs(g, "grow") == [argv_of(lvm.lvextend("vgdata", "data", 96 * MiB, (a,)))]
    lv = observe(g).vgs["vgdata"].lvs["data"]
    assert lv.size == 96 * MiB and lv.pv_extents == {a: 12}
    data.verify()
    assert_settled(g)


def test_shrink_refused_without_allow_shrink(make_guest):
    g = make_guest("g", disks=["256M"])
    a = g.disk(0)
    g.sh(f"pvcreate --yes {a} && vgcreate vgdata {a} && lvcreate --yes -n data -L 64M vgdata")
    install_shims(g)
    data = Data(g, "/dev/vgdata/data", "/mnt/data").make(files=3)
    spec = """
        [vg.vgdata]
        nodes = ["node-1"]
        pvs = ["{a}"]
        [vg.vgdata.lv.data]
        size = "32M"
        {extra}
    """
    put_spec(g, spec.format(a=a, extra=""))
    before = fullreport_text(g)
    run = reconcile(g, "--wait")
    assert run.rc == 1, run
    assert run.doc["plan"]["steps"] == [] and run.doc["applied"] == [], run
    [blocked] = run.doc["plan"]["blocked"]
    assert blocked["object"] == "lv vgdata/data"
    assert "shrinking is refused" in blocked["reason"] and "allow_shrink" in blocked["reason"]
    assert "shrinking is refused" in run.log
    assert argvs(g) == []
    assert fullreport_text(g) == before
    data.verify()

    # With allow_shrink, once the file system is smaller, the LV is reduced (and only then).
    g.sh("umount /mnt/data && e2fsck -fy /dev/vgdata/data && resize2fs /dev/vgdata/data 24M"
         " && mount /dev/vgdata/data /mnt/data")
    put_spec(g, spec.format(a=a, extra="allow_shrink = true"))
    run = reconcile(g, "--wait")
    assert run.rc == 0, run
    assert argvs(g) == [argv_of(lvm.lvreduce("vgdata", "data", 32 * MiB))]
    assert observe(g).vgs["vgdata"].lvs["data"].size == 32 * MiB
    data.verify()
    assert_settled(g)


def test_pvcreate_never_wipes_a_file_system(make_guest):
    g = make_guest("g", disks=["64M", "64M"])
    a, b = g.disk(0), g.disk(1)
    install_shims(g)
    g.sh(f"mkfs.ext4 -q {b} && mkdir -p /mnt/b && mount {b} /mnt/b"
         f" && head -c 1M /dev/urandom > /mnt/b/f && md5sum /mnt/b/f > /tmp/f.md5 && umount /mnt/b")
    put_spec(g, f"""
        [vg.vgdata]
        nodes = ["node-1"]
        pvs = ["{a}", "{b}"]
        [vg.vgdata.lv.data]
        size = "16M"
    """)
    run = reconcile(g, "--wait")
    assert run.rc == 1, run
    # the probe (wipefs --no-act, no change) sees ext4 on b: the VG is blocked with the
    # signature named, and no pvcreate is even tried (issue 17 finding 13: before, pvcreate
    # of b ran and lvm refused it on every pass)
    assert argvs(g) == []
    assert not [r for r in run.doc["applied"] if r["outcome"] == "failed"]
    reasons = [x["reason"] for x in run.doc["final"]["blocked"] if x["object"] == "vg vgdata"]
    assert reasons and any(b in r and "ext4" in r and "wipe" not in r.replace("wipefs --no-act", "")
                           for r in reasons), reasons
    assert "TYPE=\"ext4\"" in g.run(["blkid", b]).out
    g.sh(f"mount {b} /mnt/b && md5sum -c /tmp/f.md5")
    assert "vgdata" not in observe(g).vgs


# -- moving data ---------------------------------------------------------------------------------


def test_evacuate_pv_seed000_with_pvmove_then_vgreduce(make_guest):
    g = make_guest("g", disks=["140M", "808M"], lvm=POLL)
    small, big = seed000(g)
    install_shims(g)
    data = Data(g, f"/dev/{VG}/lvrepnb", "/mnt/lvrepnb").make()
    put_spec(g, f"""
        [vg.{VG}]
        nodes = ["node-1"]
        pvs = ["{big}"]
        [vg.{VG}.lv.lvrepnb]
        size = "128M"
        placement = ["{big}"]
        [vg.{VG}.lv.mygfs]
        size = "324M"
    """)
    g.throttle(1, write_bps=10 * MiB)
    data.start_writer()
    run = reconcile(g, "--wait")
    data.stop_writer()
    g.throttle(1)
    assert run.rc == 0, run

    assert argvs(g) == [argv_of(lvm.pvmove(VG, "lvrepnb", small, (big,))),
                        argv_of(lvm.vgreduce(VG, small))]
    st = observe(g)
    vg = st.vgs[VG]
    assert vg.pvs == (big,) and st.pvs[small].vg is None and not vg.pvmoves
    assert vg.lvs["lvrepnb"].pv_extents == {big: 32} and vg.lvs["mygfs"].pv_extents == {big: 81}
    assert len(data.written_during) >= 3, (data.written_during, data.writer_files)
    data.verify()
    assert_settled(g)


def test_placement_change_moves_each_source_pv_one_at_a_time(make_guest):
    g = make_guest("g", disks=["128M", "128M", "128M"], lvm=POLL)
    a, b, c = g.disk(0), g.disk(1), g.disk(2)
    g.sh(f"""
        pvcreate --yes {a} {b} {c}
        vgcreate vgdata {a} {b} {c}
        lvcreate --yes --name data --size 32M vgdata {a}
        lvextend --size 64M vgdata/data {b}
    """)
    assert observe(g).vgs["vgdata"].lvs["data"].pv_extents == {a: 8, b: 8}
    install_shims(g)
    data = Data(g, "/dev/vgdata/data", "/mnt/data").make()
    put_spec(g, f"""
        [vg.vgdata]
        nodes = ["node-1"]
        pvs = ["{a}", "{b}", "{c}"]
        [vg.vgdata.lv.data]
        size = "64M"
        placement = ["{c}"]
    """)
    g.throttle(2, write_bps=8 * MiB)
    data.start_writer()
    run = reconcile(g, "--wait")
    data.stop_writer()
    g.throttle(2)
    assert run.rc == 0, run

    assert argvs(g) == [argv_of(lvm.pvmove("vgdata", "data", a, (c,))),
                        argv_of(lvm.pvmove("vgdata", "data", b, (c,)))]
    # one move at a time: when the second started, the first one's mirror was gone
    second_status = dm_status_before(g, "pvmove")[1][1]
    assert not any("pvmove" in line.split(":")[0] for line in second_status), second_status
    st = observe(g)
    assert st.vgs["vgdata"].lvs["data"].pv_extents == {c: 16}
    assert sorted(st.vgs["vgdata"].pvs) == [a, b, c] and not st.vgs["vgdata"].pvmoves
    assert len(data.written_during) >= 3, (data.written_during, data.writer_files)
    data.verify()
    assert_settled(g)


MIRROR_SPEC = f"""
    [vg.{VG}]
    nodes = ["node-1"]
    pvs = ["{{small}}", "{{big}}"]
    [vg.{VG}.lv.lvrepnb]
    size = "{{size}}"
    placement = ["{{big}}"]
    move = "mirror-then-split"
    [vg.{VG}.lv.mygfs]
    size = "324M"
"""


def test_mirror_then_split(make_guest):
    g = make_guest("g", disks=["140M", "808M"], lvm=POLL)
    small, big = seed000(g)
    install_shims(g)
    data = Data(g, f"/dev/{VG}/lvrepnb", "/mnt/lvrepnb").make()
    put_spec(g, MIRROR_SPEC.format(small=small, big=big, size="128M"))
    g.throttle(1, write_bps=10 * MiB)
    data.start_writer()
    run = reconcile(g, "--wait")
    data.stop_writer()
    g.throttle(1)
    assert run.rc == 0, run

    assert argvs(g) == [*add_leg(big), *drop_leg(small)]
    assert in_sync_when_split(g, "lvrepnb") == [True]
    st = observe(g)
    lv = st.vgs[VG].lvs["lvrepnb"]
    assert lv.pv_extents == {big: 32} and lv.segtypes == ("linear",) and not lv.images
    assert st.pvs[small].pe_alloc_count == 0
    assert len(data.written_during) >= 3, (data.written_during, data.writer_files)
    data.verify()
    assert_settled(g)


def test_mirror_then_split_with_a_full_source_pv_is_blocked(make_guest):
    # lvm puts the raid metadata of the existing leg on the LV's own PV: with no free
    # extent there, `lvconvert --type raid1` fails ("Insufficient free space: 1 extents
    # needed, but only 0 available"); the plan must say so instead of trying.
    g = make_guest("g", disks=["140M", "808M"])
    small, big = seed000(g, lvrepnb="136M")  # all 34 extents of the 140M PV
    install_shims(g)
    put_spec(g, MIRROR_SPEC.format(small=small, big=big, size="136M"))
    before = fullreport_text(g)
    run = reconcile(g)
    assert run.rc == 1, run
    assert argvs(g) == []
    [blocked] = run.doc["plan"]["blocked"]
    assert blocked["object"] == f"lv {VG}/lvrepnb" and small in blocked["reason"], blocked
    assert fullreport_text(g) == before


# -- crash resume -----------------------------------------------------------------------------


def test_sigkill_during_pvmove_resumes_only_once_the_poller_is_gone(make_guest):
    g = make_guest("g", disks=["140M", "808M"], lvm=POLL)
    small, big = seed000(g, lvrepnb="64M")
    install_shims(g)
    data = Data(g, f"/dev/{VG}/lvrepnb", "/mnt/lvrepnb").make()
    put_spec(g, f"""
        [vg.{VG}]
        nodes = ["node-1"]
        pvs = ["{big}"]
        [vg.{VG}.lv.lvrepnb]
        size = "64M"
        placement = ["{big}"]
        [vg.{VG}.lv.mygfs]
        size = "324M"
    """)
    g.throttle(1, write_bps=2 * MiB)
    data.start_writer()

    # 1. killed right after it started the move; lvm's poller outlives it
    mark(g, "run 1")
    first = spawn_reconcile(g, "--wait")
    wait_for(lambda: f"{VG}-pvmove0" in dm_names(g), 90, "the pvmove to start")
    kill9(g, first)
    move = observe(g).vgs[VG].pvmoves[0]
    assert move.lvs == ("lvrepnb",) and move.copy_percent < 100, move

    # 2. restarted: the move's poller (the process pvmove --background forked) is alive,
    #    so it waits and never resumes (a bare pvmove would start a second poller)
    pollers = g.run("pgrep -x pvmove || true").out.split()
    assert len(pollers) == 1, pollers
    mark(g, "run 2")
    second = reconcile(g)
    assert second.rc == 2, second
    notes = [f["note"] for f in second.doc["final"]["in_flight"]]
    assert notes and f"polled by pid {pollers[0]}" in notes[0], notes
    assert g.run("pgrep -x pvmove || true").out.split() == pollers
    #    then the poller is killed (as a cgroup kill would): nobody advances the move
    g.run(["kill", "-9", *pollers])
    wait_for(lambda: not g.run("pgrep -x pvmove || true").out.split(), 30, "the pollers to die")
    assert observe(g).vgs[VG].pvmoves, "the interrupted move should still be in the metadata"

    # 3. restarted again: resumes from the checkpoint and finishes, then vgreduce
    mark(g, "run 3")
    g.throttle(1)
    run = reconcile(g, "--wait")
    data.stop_writer()
    assert run.rc == 0, run

    # the move was issued once; only the run that found it unpolled resumed it
    assert argvs(g, "run 1") == [argv_of(lvm.pvmove(VG, "lvrepnb", small, (big,)))]
    assert argvs(g, "run 2") == []
    assert argvs(g, "run 3") == [["pvmove", "--background"], argv_of(lvm.vgreduce(VG, small))]
    st = observe(g)
    assert st.vgs[VG].pvs == (big,) and not st.vgs[VG].pvmoves
    assert st.vgs[VG].lvs["lvrepnb"].pv_extents == {big: 16}
    assert len(data.written_during) >= 3, (data.written_during, data.writer_files)
    data.verify()
    assert_settled(g)


def test_sigkill_during_mirror_sync_waits_for_sync_then_splits(make_guest):
    g = make_guest("g", disks=["140M", "808M"], lvm=POLL)
    small, big = seed000(g, lvrepnb="64M")
    install_shims(g)
    data = Data(g, f"/dev/{VG}/lvrepnb", "/mnt/lvrepnb").make()
    put_spec(g, MIRROR_SPEC.format(small=small, big=big, size="64M"))
    g.throttle(1, write_bps=2 * MiB)
    data.start_writer()

    mark(g, "run 1")
    first = spawn_reconcile(g, "--wait")
    wait_for(lambda: f"{VG}-lvrepnb_rimage_1" in dm_names(g), 90, "the raid1 leg to appear")
    kill9(g, first)
    lv = observe(g).vgs[VG].lvs["lvrepnb"]
    assert len(lv.images) == 2 and not lv.is_synced, lv

    # restarted: it finds the leg syncing and waits (throttle lifted once it has seen that)
    mark(g, "run 2")
    second = spawn_reconcile(g, "--wait", log="/tmp/run2.log")
    wait_for(lambda: "in flight: raid1 sync" in g.run("cat /tmp/run2.log || true").out, 90,
             "the restarted reconciler to see the sync in flight")
    # a file written from start to end while the leg synced, before the sync is let go: each
    # write waits behind the throttled sync, so how many fit in the window varies (one CI
    # run had two where three were asked)
    wait_for(lambda: g.run(f"cat {data.state_dir}/during 2>/dev/null || true").out.split(), 120,
             "a file written during the sync")
    g.throttle(1)
    run = g.wait(second, timeout=240)
    data.stop_writer()
    assert run.rc == 0, f"{run}\n{g.read_file('/tmp/run2.log')}"
    assert argvs(g, "run 1") == add_leg(big)
    assert argvs(g, "run 2") == drop_leg(small)
    assert in_sync_when_split(g, "lvrepnb") == [True]
    lv = observe(g).vgs[VG].lvs["lvrepnb"]
    assert lv.pv_extents == {big: 16} and not lv.images
    assert data.written_during, (data.written_during, data.writer_files)
    data.verify()
    assert_settled(g)


# -- the simulator against the real thing ---------------------------------------------------------

DIFF_DISKS = (("/dev/vda", 140), ("/dev/vdb", 808), ("/dev/vdc", 200))
DIFF_SPECS = (
    # 1. create everything: pvcreate, vgcreate, lvcreate with and without placement
    """
    [vg.vgdiff]
    nodes = ["node-1"]
    pvs = ["/dev/vda", "/dev/vdb"]
    [vg.vgdiff.lv.lvrepnb]
    size = "128M"
    placement = ["/dev/vda"]
    [vg.vgdiff.lv.mygfs]
    size = "324M"
    placement = ["/dev/vdb"]
    [vg.vgdiff.lv.small]
    size = "20M"
    """,
    # 2. a new PV (pvcreate, vgextend), two LVs grown
    """
    [vg.vgdiff]
    nodes = ["node-1"]
    pvs = ["/dev/vda", "/dev/vdb", "/dev/vdc"]
    [vg.vgdiff.lv.lvrepnb]
    size = "128M"
    placement = ["/dev/vda"]
    [vg.vgdiff.lv.mygfs]
    size = "400M"
    placement = ["/dev/vdb"]
    [vg.vgdiff.lv.small]
    size = "40M"
    """,
    # 3. evacuate /dev/vda (pvmove, vgreduce) and mirror-then-split small onto /dev/vdc
    """
    [vg.vgdiff]
    nodes = ["node-1"]
    pvs = ["/dev/vdb", "/dev/vdc"]
    [vg.vgdiff.lv.lvrepnb]
    size = "128M"
    placement = ["/dev/vdb"]
    [vg.vgdiff.lv.mygfs]
    size = "400M"
    placement = ["/dev/vdb"]
    [vg.vgdiff.lv.small]
    size = "40M"
    placement = ["/dev/vdc"]
    move = "mirror-then-split"
    """,
)


class _Sim:
    """The same specs applied to a SimulatedHost in this process."""

    def __init__(self, tmp: Path):
        self.host = SimulatedHost()
        for path, mib in DIFF_DISKS:
            self.host.add_device(path, mib * MiB)
        self.tmp = tmp
        tmp.mkdir()

    def converge(self, spec_text: str) -> int:
        (self.tmp / "spec.toml").write_text(textwrap.dedent(spec_text))
        env = controller.Environment(runner=self.host, node=NODE, resolve=self.host.resolve_device,
                                     clock=self.host.clock)
        logger.disable("reconciler")
        try:
            return controller.reconcile_until_settled(loading.load(self.tmp), env).exit_code
        finally:
            logger.enable("reconciler")

    def fullreport(self) -> str:
        return self.host.run(lvm.fullreport()).stdout

    def mutations(self) -> list[list[str]]:
        return [list(c.argv) for c in self.host.calls if c.mutates]  # not the reports, probes


def test_simulator_ends_where_real_lvm_ends(make_guest, tmp_path):
    g = make_guest("g", disks=[f"{mib}M" for _, mib in DIFF_DISKS], lvm=POLL)
    names = {g.disk(i): f"disk{i}" for i in range(len(DIFF_DISKS))}
    sim_names = {path: f"disk{i}" for i, (path, _) in enumerate(DIFF_DISKS)}
    assert sorted(names) == sorted(sim_names)  # the spec names /dev/vdX on both sides
    install_shims(g)
    sim = _Sim(tmp_path / "sim-spec")
    for n, spec in enumerate(DIFF_SPECS, 1):
        if n == len(DIFF_SPECS):
            _check_offline_plan(g, spec, tmp_path / "capture")
        put_spec(g, spec)
        real = reconcile(g, "--wait")
        assert real.rc == 0, real
        assert sim.converge(spec) == 0
        real_text, sim_text = fullreport_text(g), sim.fullreport()
        differences = diff_dicts(normalise(lvm.parse_fullreport(real_text), names),
                                 normalise(lvm.parse_fullreport(sim_text), sim_names))
        assert not differences, f"after spec {n}, real != simulated:\n" + "\n".join(differences)
        assert pe_maps(real_text, names) == pe_maps(sim_text, sim_names), f"after spec {n}"
    assert argvs(g) == sim.mutations()
    assert_settled(g)


def _check_offline_plan(g, spec: str, capdir: Path) -> None:
    """`reconcile capture` in the guest, then `--simulate CAPTURE --once --dry-run` here
    must print the plan `--once --dry-run` prints in the guest."""
    put_spec(g, spec)
    in_guest = reconcile(g, "--dry-run")
    assert in_guest.rc == 2, in_guest
    g.run(["python3", "-m", "reconciler", "capture", "/tmp/capture"], timeout=120)
    capdir.mkdir()
    for name in g.run(["ls", "-1", "/tmp/capture"]).out.split():  # every file it wrote
        (capdir / name).write_text(g.read_file(f"/tmp/capture/{name}"))
    specdir = capdir.parent / "offline-spec"
    specdir.mkdir()
    (specdir / "spec.toml").write_text(textwrap.dedent(spec))
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), NO_COLOR="1")
    here = subprocess.run(
        [sys.executable, "-m", "reconciler", "--simulate", str(capdir), "--spec", str(specdir),
         "--node", NODE, "--once", "--dry-run", "--output", "json"],
        check=False, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(),
        timeout=120)
    assert here.returncode == 2, here.stderr
    offline, guest_plan = json.loads(here.stdout)["plan"], dict(in_guest.doc["plan"])
    # the digest hashes the spec files' absolute paths too, which differ here
    offline.pop("spec_digest"), guest_plan.pop("spec_digest")
    assert offline["steps"], offline
    assert offline == guest_plan, (
        "offline plan differs:\n" + "\n".join(diff_dicts(offline, guest_plan)))
