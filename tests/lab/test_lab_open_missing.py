"""Issue 8 item 12 in a real guest: an LV held open and a PV whose disk failed, as real lvm2
shows them, and what the reconciler (run in the guest) does about them; then the simulator,
seeded with the same states, must plan exactly the same.

- vga/mnt (mounted ext4) and vga/raw (held by a plain ``open()``: ``sleep < /dev/vga/raw``)
  are marked absent: the pass is blocked naming why and runs no lvremove; once the mount and
  the holder are gone, the next pass removes both.
- vgb's PV on vdc is failed with QMP ``drive_del`` while the spec still lists it: no
  vgreduce (``--removemissing`` or not), no pvcreate, nothing that changes vgb; the VG is
  blocked with the missing PV named; the ext4 on vgb/data (on the healthy vdb) keeps every
  md5 sum.

One guest boot, two reconciler passes, one simulated pass in this process.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from harness import REPO_ROOT
from loguru import logger
from reconciler_lab import NODE, Data, MiB, commands, install_shims, mark, observe, put_spec, reconcile, wait_for

from reconciler import controller
from reconciler.simulate import SimulatedHost
from reconciler.spec import loading

sys.path.insert(0, str(REPO_ROOT / "tests" / "simulate"))
from simtools import open_device, run  # noqa: E402

pytestmark = pytest.mark.lab

DISK_MIB = 160
SPEC = """
[vg.vga]
nodes = ["node-1"]
pvs = ["/dev/vda"]
[vg.vga.lv.mnt]
state = "absent"
[vg.vga.lv.raw]
state = "absent"

[vg.vgb]
nodes = ["node-1"]
pvs = ["/dev/vdb", "/dev/vdc"]
[vg.vgb.lv.data]
size = "64M"
placement = ["/dev/vdb"]
[vg.vgb.lv.lost]
size = "32M"
placement = ["/dev/vdc"]
"""
LVS = (("vga", "mnt", 16, None), ("vga", "raw", 16, None),
       ("vgb", "data", 64, "/dev/vdb"), ("vgb", "lost", 32, "/dev/vdc"))
DESTRUCTIVE = ("vgreduce", "vgremove", "pvcreate", "lvreduce", "lvconvert", "pvmove", "lvchange")


def blocked_of(doc: dict) -> dict[str, str]:
    return {b["object"]: b["reason"] for b in doc["plan"]["blocked"]}


def simulated_plan(tmp: Path) -> tuple[controller.PassResult, str]:
    """The guest's state before the first pass, built on a SimulatedHost: the same disks,
    VGs and LVs, vga/mnt mounted, vga/raw opened by a process, vdc failed. Returns the
    pass and the uuid of the simulated PV on vdc."""
    h = SimulatedHost()
    for p in ("/dev/vda", "/dev/vdb", "/dev/vdc"):
        h.add_device(p, DISK_MIB * MiB)
    h.add_vg("vga", ["/dev/vda"])
    h.add_vg("vgb", ["/dev/vdb", "/dev/vdc"])
    for vg, lv, mib, pv in LVS:
        res = run(h, "lvcreate", "--yes", "--name", lv, "--size", f"{mib * MiB}b", vg,
                  *([pv] if pv else []))
        assert res.rc == 0, res.stderr
    h.mount("/dev/mapper/vga-mnt", "/mnt/m")
    h.mount("/dev/mapper/vgb-data", "/mnt/d")
    open_device(h, "/dev/vga/raw", 4242, "sleep")
    h.fail_device("/dev/vdc")
    calls_before = len(h.calls)
    tmp.mkdir()
    (tmp / "spec.toml").write_text(textwrap.dedent(SPEC))
    env = controller.Environment(runner=h, node=NODE, resolve=h.resolve_device, clock=h.clock)
    logger.disable("reconciler")
    try:
        r = controller.reconcile_once(loading.load(tmp / "spec.toml"), env,
                                      memory=controller.Memory())
    finally:
        logger.enable("reconciler")
    assert [c.argv[0] for c in h.calls[calls_before:] if c.mutates] == []
    return r, h.pv("/dev/vdc").uuid


def test_open_lvs_and_a_failed_pv_are_never_acted_on(make_guest, tmp_path):
    g = make_guest("g", disks=[f"{DISK_MIB}M"] * 3)
    assert [g.disk(i) for i in range(3)] == ["/dev/vda", "/dev/vdb", "/dev/vdc"]
    g.sh("pvcreate --yes /dev/vda /dev/vdb /dev/vdc\n"
         "vgcreate vga /dev/vda\nvgcreate vgb /dev/vdb /dev/vdc\n"
         + "".join(f"lvcreate --yes --name {lv} --size {mib}M {vg} {pv or ''}\n"
                   for vg, lv, mib, pv in LVS))
    data = Data(g, "/dev/vgb/data", "/mnt/d").make(files=4)
    g.sh("mkfs.ext4 -q -F /dev/vga/mnt && mkdir -p /mnt/m && mount /dev/vga/mnt /mnt/m")
    g.run("sleep 3600 < /dev/vga/raw > /dev/null 2>&1 & echo $! > /tmp/holder.pid")
    install_shims(g)
    g.fail_disk(2)  # vdc: every I/O fails with EIO, the device stays
    st = wait_for(lambda: (s := observe(g)).vgs["vgb"].missing_pv_count == 1 and s, 60,
                  "lvm to see vdc's PV missing")
    assert st.vgs["vga"].lvs["mnt"].attr.is_open and st.vgs["vga"].lvs["raw"].attr.is_open
    (lost_uuid,) = [pv.uuid for pv in st.pvs.values() if pv.missing]

    put_spec(g, SPEC)
    mark(g, "held")
    held = reconcile(g)
    assert held.rc == 1 and held.doc is not None, held
    blocked = blocked_of(held.doc)
    for lv in ("mnt", "raw"):
        assert "open" in blocked[f"lv vga/{lv}"], blocked
    assert "missing" in blocked["vg vgb"] and lost_uuid in blocked["vg vgb"], blocked
    assert held.doc["plan"]["steps"] == [] and held.doc["applied"] == [], held
    assert [a for sec, a in commands(g) if sec == "held"] == []  # not even an lvremove

    # (c) the simulator, seeded with the same states, plans the same: same blocks, no steps
    sim, sim_uuid = simulated_plan(tmp_path / "sim")
    assert sim.exit_code == held.rc
    assert ({(b.object, b.reason.replace(sim_uuid, "UUID")) for b in sim.plan.blocked}
            == {(o, r.replace(lost_uuid, "UUID")) for o, r in blocked.items()})
    assert sim.plan.steps == ()

    # the holders go: the next pass removes both LVs, and still leaves vgb alone
    g.sh("umount /mnt/m\nkill $(cat /tmp/holder.pid)")
    wait_for(lambda: not observe(g).vgs["vga"].lvs["raw"].attr.is_open, 20, "raw to be closed")
    mark(g, "released")
    freed = reconcile(g)
    assert freed.rc == 1 and freed.doc is not None, freed
    ran = [a for sec, a in commands(g) if sec == "released"]
    assert sorted(a[0] for a in ran) == ["lvremove", "lvremove"], ran
    assert sorted(a[-1] for a in ran) == ["vga/mnt", "vga/raw"], ran
    assert not [a for _, a in commands(g) if a[0] in DESTRUCTIVE or "vgb" in " ".join(a)]
    assert set(blocked_of(freed.doc)) == {"vg vgb"}, freed.doc["plan"]["blocked"]
    st = observe(g)
    assert st.vgs["vga"].lvs == {} and set(st.vgs["vgb"].lvs) == {"data", "lost"}
    assert st.vgs["vgb"].missing_pv_count == 1
    data.verify()
