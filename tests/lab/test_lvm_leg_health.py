"""Issue 8 in real guests: a mirror-then-split whose new disk fails never loses the old leg
(item 4), and a VG owned by another host is never touched while this host's new VGs take
its system ID (item 8).

Runs ``python3 -m reconciler --once`` in the guest, like test_lvm_e2e.py; what it executed
is read from the PATH shims. Disks are failed with QMP ``drive_del`` (every I/O fails with
EIO, the device stays).
"""

from __future__ import annotations

import pytest
from reconciler_lab import Data, MiB, commands, install_shims, mark, observe, put_spec, reconcile, wait_for

pytestmark = pytest.mark.lab


def argvs_of(g, section=None):
    return [argv for sec, argv in commands(g) if section is None or sec == section]


def lvconverts(g, section=None):
    return [a for a in argvs_of(g, section) if a[0] == "lvconvert"]


def test_new_leg_failing_mid_sync_or_after_sync_never_drops_the_old_leg(make_guest):
    # vga: data on vda, new leg on vdb (throttled: still copying when vdb fails)
    # vgb: data on vdc, new leg on vdd (synced when vdd fails, before the split pass)
    g = make_guest("g", disks=["160M", "160M", "160M", "160M"], lvm={"polling_interval": 1})
    a, b, c, d = (g.disk(i) for i in range(4))
    g.sh(f"""
        pvcreate --yes {a} {b} {c} {d}
        vgcreate vga {a} {b}
        vgcreate vgb {c} {d}
        lvcreate --yes --name data --size 64M vga {a}
        lvcreate --yes --name data --size 64M vgb {c}
    """)
    install_shims(g)
    da = Data(g, "/dev/vga/data", "/mnt/a").make(files=4)
    db = Data(g, "/dev/vgb/data", "/mnt/b").make(files=4)
    put_spec(g, f"""
        [vg.vga]
        nodes = ["node-1"]
        pvs = ["{a}", "{b}"]
        [vg.vga.lv.data]
        size = "64M"
        placement = ["{b}"]
        move = "mirror-then-split"
        [vg.vgb]
        nodes = ["node-1"]
        pvs = ["{c}", "{d}"]
        [vg.vgb.lv.data]
        size = "64M"
        placement = ["{d}"]
        move = "mirror-then-split"
    """)
    g.throttle(1, write_bps=MiB)
    g.throttle(3, write_bps=4 * MiB)  # slow enough that this pass cannot split it too
    run = reconcile(g)  # adds both legs; the syncs are in flight
    assert run.rc == 2, run
    assert [x[-1] for x in lvconverts(g)] == [b, d]
    g.throttle(3)

    def state_now():
        st = observe(g)
        return st.vgs["vga"].lvs["data"], st.vgs["vgb"].lvs["data"]

    wait_for(lambda: state_now()[1].is_synced, 120, "vgb/data's new leg to be in sync")
    va, _ = state_now()
    assert len(va.images) == 2 and not va.is_synced, va  # vga's copy still running
    g.fail_disk(1)  # vdb: mid-sync
    g.fail_disk(3)  # vdd: after sync, before the split pass
    wait_for(lambda: all(lv.health_status for lv in state_now()), 60, "lvm to see both failures")

    mark(g, "after the failures")
    run = reconcile(g)
    assert run.rc == 1 and run.doc is not None, run
    assert lvconverts(g, "after the failures") == []  # no leg dropped, nothing converted
    blocked = {b_["object"]: b_["reason"] for b_ in run.doc["plan"]["blocked"]}
    for vg in ("vga", "vgb"):
        reason = blocked[f"lv {vg}/data"]
        assert "no leg is dropped" in reason and "lv_health_status 'partial'" in reason, reason
    va, vb = state_now()
    assert va.images[0].pv_extents == {a: 17} and vb.images[0].pv_extents == {c: 17}
    da.verify()
    db.verify()


def test_foreign_vg_untouched_and_new_vg_takes_this_hosts_system_id(make_guest):
    g = make_guest("g", disks=["64M", "64M", "64M"])
    a, b, c = g.disk(0), g.disk(1), g.disk(2)
    g.sh(f"""
        pvcreate --yes {c}
        vgcreate vgforeign {c}
        lvcreate --yes --name data --size 8M vgforeign
        vgchange --activate n vgforeign
        sed -i 's/^\\(\\s*\\)#\\?\\s*system_id_source = .*/\\1system_id_source = "lvmlocal"/' /etc/lvm/lvm.conf
        printf 'local {{\\n\\tsystem_id = "hosta"\\n}}\\n' > /etc/lvm/lvmlocal.conf
        vgchange --yes --systemid hostb vgforeign
    """)
    assert g.run(["lvm", "systemid"]).out.strip() == "system ID: hosta"
    install_shims(g)
    put_spec(g, f"""
        [vg.vgnew]
        nodes = ["node-1"]
        pvs = ["{a}"]
        [vg.vgnew.lv.x]
        size = "8M"
        [vg.vgforeign]
        nodes = ["node-1"]
        pvs = ["{c}"]
        [vg.vgforeign.lv.data]
        size = "16M"
    """)
    run = reconcile(g)
    assert run.rc == 1 and run.doc is not None, run
    blocked = {x["object"]: x["reason"] for x in run.doc["plan"]["blocked"]}
    assert "vg_systemid 'hostb'" in blocked["vg vgforeign"]
    ran = argvs_of(g)
    assert [x[0] for x in ran] == ["pvcreate", "vgcreate", "lvcreate"], ran
    assert not any(c in x or "vgforeign" in x for x in ran), ran

    # a VG that wants the foreign VG's disk: refused before anything runs
    put_spec(g, f"""
        [vg.vgsteal]
        nodes = ["node-1"]
        pvs = ["{b}", "{c}"]
    """)
    mark(g, "steal")
    run = reconcile(g)
    assert run.rc == 1 and run.doc is not None, run
    (blocked,) = run.doc["plan"]["blocked"]
    assert blocked["object"] == "vg vgsteal"
    assert "foreign: owned by system ID 'hostb'" in blocked["reason"], blocked
    assert argvs_of(g, "steal") == []
    out = g.run(["vgs", "--foreign", "--noheadings", "-o", "vg_name,vg_systemid,lv_count"]).out
    rows = {r.split()[0]: r.split()[1:] for r in out.splitlines() if r.strip()}
    assert rows["vgnew"] == ["hosta", "1"]  # lvm gave the new VG this host's system ID
    assert rows["vgforeign"] == ["hostb", "1"]
    size = g.run(["lvs", "--foreign", "--noheadings", "--units", "b", "--nosuffix", "-o",
                  "lv_size", "vgforeign/data"]).out.strip()
    assert size == str(8 * MiB)
