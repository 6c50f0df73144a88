"""Seed 004's server move, planned on states parsed from real lvm2 output
(tests/fixtures/outputs/lvm/, INDEX.md says how each was made in the lab).

``copies`` keeps an LV a raid1 with one copy on each PV set; a ``handover`` splits off the
copy on the given PVs only when every LV has one, complete and healthy, and is closed, and
then vgsplit / lvrename / vgexport in that order; a ``takeover`` imports and renames the
exported VG only once this host no longer exports its disk. ``grow_pvs`` and ``resize_fs``
grow what the move left.
"""

from dataclasses import replace
from pathlib import Path

from reconciler import actions, planning, state, state_iscsi
from reconciler.adapters import lvm
from reconciler.spec import models
from reconciler.units import Size

FIX = Path(__file__).parents[1] / "fixtures" / "outputs" / "lvm"
M = 1024**2


def observed(case):
    return lvm.parse_fullreport((FIX / f"{case}.json").read_text().split("\n", 1)[1])


def without(st, *lvs, vg="vgglobal"):
    """``st`` without some LVs (their extents freed), to make a VG of only mirrored LVs."""
    g = st.vgs[vg]
    return replace(st, vgs={**st.vgs, vg: replace(g, lvs={k: v for k, v in g.lvs.items()
                                                          if k not in lvs})})


def with_lv(st, lv, vg="vgglobal", **kw):
    g = st.vgs[vg]
    return replace(st, vgs={**st.vgs, vg: replace(g, lvs={**g.lvs, lv: replace(g.lvs[lv], **kw)})})


def spec(doc):
    return models.Spec.model_validate(doc)


def copies_spec(**lv):
    return spec({"vg": {"vgglobal": {"nodes": ["n1"], "pvs": ["/dev/vda", "/dev/vdb"], "lv": {
        "lvrepnb": {"size": "128M", "copies": [["/dev/vda"], ["/dev/vdb"]], **lv},
        "mygfs": {"size": "324M"}}}}})


def handover_spec(**lv):
    return spec({"vg": {"vgglobal": {
        "nodes": ["n1"], "pvs": ["/dev/vda"],
        "handover": {"pvs": ["/dev/vdb"], "vg": "vgmoved"},
        "lv": {"lvrepnb": {"size": "128M", "placement": ["/dev/vda"], **lv}}}}})


def plan_of(sp, st):
    return planning.plan(sp, st, node="n1")


def argvs(p):
    return [" ".join(c.argv) for s in p.steps for c in s.action.commands()]


def reasons(p, obj):
    return [b.reason for b in p.blocked if b.object == obj]


# -- copies ----------------------------------------------------------------------------------

def test_copies_adds_the_missing_copy_on_its_own_pv_set():
    p = plan_of(copies_spec(), observed("two_pvs_linear"))
    assert argvs(p) == ["lvconvert --yes --type raid1 --mirrors 1 vgglobal/lvrepnb /dev/vdb"]
    assert p.blocked == ()


def test_copies_syncing_is_in_flight_with_its_percent_and_nothing_else():
    p = plan_of(copies_spec(), observed("raid1_syncing"))
    assert p.steps == () and p.blocked == ()
    (f,) = p.in_flight
    assert (f.object, f.what, f.percent) == ("lv vgglobal/lvrepnb", "raid1 sync", 6.3)


def test_copies_in_sync_and_healthy_is_converged():
    p = plan_of(copies_spec(), observed("raid1_synced"))
    assert (p.steps, p.blocked, p.in_flight) == ((), (), ())


def test_a_copy_whose_pv_went_missing_blocks_and_nothing_is_dropped():
    p = plan_of(copies_spec(), observed("raid1_new_leg_failed_after_sync"))
    assert not any(isinstance(s.action, (actions.DropMirrorLeg, actions.SplitCopy))
                   for s in p.steps)
    why = " ".join(reasons(p, "lv vgglobal/lvrepnb"))
    assert "missing" in why or "partial" in why, p.blocked


def test_a_copy_failed_while_away_is_refreshed_once_its_device_is_back():
    sp = spec({"vg": {"vgglobal": {"nodes": ["n1"], "pvs": ["/dev/vda", "/dev/mapper/leg"],
                                   "lv": {"lvrepnb": {"size": "64M", "copies": [
                                       ["/dev/vda"], ["/dev/mapper/leg"]]}}}}})
    p = plan_of(sp, observed("raid1_refresh_needed"))
    assert argvs(p) == ["lvchange --refresh vgglobal/lvrepnb"]
    assert p.blocked == ()


def test_a_copy_outside_every_set_is_never_dropped_or_moved():
    st = observed("raid1_synced")
    sp = spec({"vg": {"vgglobal": {"nodes": ["n1"], "pvs": ["/dev/vda", "/dev/vdb", "/dev/vdc"],
                                   "lv": {"mygfs": {"size": "324M"},
                                          "lvrepnb": {"size": "128M", "copies": [
                                              ["/dev/vda"], ["/dev/vdc"]]}}}}})
    p = plan_of(sp, st)
    assert "outside every PV set" in " ".join(reasons(p, "lv vgglobal/lvrepnb")), p
    assert not any(s.action.object == "lv vgglobal/lvrepnb" for s in p.steps)


# -- handover --------------------------------------------------------------------------------

def test_handover_splits_every_copy_then_vgsplit_rename_export_in_that_order():
    st = without(observed("raid1_synced"), "mygfs")
    p = plan_of(handover_spec(), st)
    assert p.blocked == ()
    assert argvs(p) == [
        "lvconvert --yes --splitmirrors 1 --name lvrepnb_handover vgglobal/lvrepnb /dev/vdb",
        "lvchange --activate n vgglobal/lvrepnb_handover",
        "vgsplit vgglobal vgmoved /dev/vdb",
        "lvrename vgmoved lvrepnb_handover lvrepnb",
        "vgchange --activate n vgmoved",
        "vgexport vgmoved",
    ]


def test_handover_refuses_while_a_copy_is_syncing_or_an_lv_has_no_copy_there():
    p = plan_of(handover_spec(), without(observed("raid1_syncing"), "mygfs"))
    assert p.steps == ()
    assert "not 100% in sync" in " ".join(reasons(p, "lv vgglobal/lvrepnb")), p
    p = plan_of(handover_spec(), observed("raid1_synced"))  # mygfs: linear on /dev/vdb
    assert p.steps == ()
    assert "no complete copy of its own on /dev/vdb" in " ".join(reasons(p, "lv vgglobal/mygfs"))


def test_handover_refuses_an_open_lv():
    st = with_lv(without(observed("raid1_synced"), "mygfs"), "lvrepnb",
                 attr=state.LvAttr("rwi-aor---"))
    p = plan_of(handover_spec(), st)
    assert p.steps == ()
    assert "open (mounted or in use)" in " ".join(reasons(p, "lv vgglobal/lvrepnb"))


def test_handover_waits_for_a_missing_pv_and_splits_nothing():
    st = without(observed("raid1_new_leg_failed_after_sync"), "mygfs")
    sp = spec({"vg": {"vgglobal": {
        "nodes": ["n1"], "pvs": ["/dev/vda"],
        "handover": {"pvs": ["/dev/vdb"], "vg": "vgmoved"},
        "lv": {"lvrepnb": {"size": "128M", "placement": ["/dev/vda"]}}}}})
    p = plan_of(sp, st)
    assert p.steps == ()
    assert p.blocked, p


def test_handover_activates_an_inactive_raid1_before_splitting_it():
    st = with_lv(without(observed("raid1_synced"), "mygfs"), "lvrepnb",
                 attr=state.LvAttr("rwi---r---"))
    p = plan_of(handover_spec(), st)
    assert argvs(p) == ["lvchange -ay vgglobal/lvrepnb"] or argvs(p) == [
        "lvchange --activate y vgglobal/lvrepnb"], argvs(p)


def test_handover_then_logout_in_one_plan():
    st = without(observed("raid1_synced"), "mygfs")
    disk = "/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-iqn.2003-01.org.example.new:e0-lun-0"
    sess = state_iscsi.IscsiSession(sid="session1", target="iqn.2003-01.org.example.new:e0",
                                    portal="192.0.2.10:3260", state="LOGGED_IN",
                                    disks=(state_iscsi.IscsiDisk(lun=0, name="vdb",
                                                                 devno=st.pvs["/dev/vdb"].devno),))
    st = replace(st, iscsi=state_iscsi.IscsiState(sessions=(sess,)),
                 devices={**st.devices, disk: st.pvs["/dev/vdb"].devno})
    sp = spec({"vg": {"vgglobal": {
        "nodes": ["n1"], "pvs": ["/dev/vda"], "handover": {"pvs": [disk], "vg": "vgmoved"},
        "lv": {"lvrepnb": {"size": "128M", "placement": ["/dev/vda"]}}}},
        "iscsi_session": {"e0": {"nodes": ["n1"], "portal": "192.0.2.10:3260",
                                 "target": "iqn.2003-01.org.example.new:e0", "luns": [0],
                                 "state": "absent"}}})
    p = plan_of(sp, st)
    assert p.blocked == (), p.blocked
    keys = [s.key for s in p.steps]
    assert keys.index("vg:vgmoved:export") < keys.index("iscsi-session:e0:logout"), keys
    logout = next(s for s in p.steps if s.key == "iscsi-session:e0:logout")
    assert "vg:vgmoved:export" in logout.after


# -- takeover --------------------------------------------------------------------------------

def exported_as(st, old, new):
    g = st.vgs[old]
    vg = replace(g, name=new, exported=True, system_id="",
                 lvs={k: replace(v, vg=new) for k, v in g.lvs.items()})
    pvs = {k: replace(v, vg=new) if v.vg == old else v for k, v in st.pvs.items()}
    return replace(st, vgs={new: vg}, pvs=pvs)


def lio(st, *devices, iqn="iqn.2003-01.org.example.new:e0"):
    luns = {i: state_iscsi.LioLun(index=i, device=d, backstore=f"iblock_0/e{i}")
            for i, d in enumerate(devices)}
    t = state_iscsi.LioTarget(iqn=iqn, enabled=True, luns=luns)
    return replace(st, iscsi=state_iscsi.IscsiState(targets={iqn: t}))


def takeover_spec(target_state=None):
    doc = {"vg": {"vg0": {"nodes": ["n1"], "pvs": ["/dev/vda", "/dev/vdb"],
                          "takeover": "vgmoved",
                          "lv": {"lvrepnb": {"size": "128M",
                                             "activation": {"n1": "active"}}}}}}
    if target_state:
        doc["iscsi_target"] = {"e0": {"nodes": ["n1"], "iqn": "iqn.2003-01.org.example.new:e0",
                                      "portals": ["192.0.2.10:3260"], "state": target_state,
                                      "acls": ["iqn.2004-10.com.example:old"],
                                      "lun": {"0": {"device": "/dev/vda"}}}}
    return spec(doc)


def test_takeover_waits_while_this_host_still_exports_the_disk():
    st = lio(exported_as(observed("two_pvs_linear"), "vgglobal", "vgmoved"), "/dev/vda")
    p = plan_of(takeover_spec(), st)
    assert not any(s.key.startswith("vg:vg0") for s in p.steps)
    assert "still exported by iSCSI target" in " ".join(reasons(p, "vg vg0")), p.blocked


def test_takeover_after_the_export_ends_in_the_same_plan():
    st = lio(exported_as(observed("two_pvs_linear"), "vgglobal", "vgmoved"), "/dev/vda")
    p = plan_of(takeover_spec("absent"), st)
    assert p.blocked == (), p.blocked
    keys = [s.key for s in p.steps]
    assert keys == ["iscsi-target:e0:delete", "vg:vg0:takeover"], keys
    assert argvs(p)[-2:] == ["vgimport vgmoved", "vgrename vgmoved vg0"]
    assert "iscsi-target:e0:delete" in p.steps[1].after


def test_takeover_refuses_a_vg_with_missing_pvs_and_never_removes_them():
    st = exported_as(observed("raid1_new_leg_failed_after_sync"), "vgglobal", "vgmoved")
    sp = spec({"vg": {"vg0": {"nodes": ["n1"], "pvs": ["/dev/vda"], "takeover": "vgmoved"}}})
    p = plan_of(sp, st)
    assert p.steps == ()
    assert "missing PV" in " ".join(reasons(p, "vg vg0"))
    assert "--removemissing" not in " ".join(argvs(p))


def test_takeover_never_touches_the_old_hosts_vg_seen_through_the_export():
    # The new host, before the handover: the old host's vg0 is on the disk it exports.
    st = lio(observed("two_pvs_linear"), "/dev/vdb")
    st = replace(st, vgs={"vg0": replace(st.vgs["vgglobal"], name="vg0")},
                 pvs={k: replace(v, vg="vg0") for k, v in st.pvs.items()})
    p = plan_of(takeover_spec(), st)
    assert p.steps == ()
    assert "exported by iSCSI target" in " ".join(reasons(p, "vg vg0")), p.blocked


def test_takeover_with_nothing_handed_over_yet_creates_nothing():
    p = plan_of(takeover_spec(), observed("two_pvs_linear"))
    assert not any(isinstance(s.action, (actions.CreateVg, actions.CreatePv)) for s in p.steps)
    assert "not seen on this host yet" in " ".join(reasons(p, "vg vg0"))


# -- growth after the move -------------------------------------------------------------------

def test_grow_pvs_then_lvextend_with_resizefs():
    st = observed("two_pvs_linear")
    vda = st.pvs["/dev/vda"]
    st = replace(st, pvs={**st.pvs, "/dev/vda": replace(vda, dev_size=Size(vda.dev_size + 64 * M))})
    sp = spec({"vg": {"vgglobal": {"nodes": ["n1"], "pvs": ["/dev/vda", "/dev/vdb"],
                                   "grow_pvs": True, "lv": {
                                       "lvrepnb": {"size": "160M", "resize_fs": True,
                                                   "placement": ["/dev/vda"]},
                                       "mygfs": {"size": "324M"}}}}})
    p = plan_of(sp, st)
    assert argvs(p) == ["pvresize /dev/vda",
                        f"lvextend --resizefs --size {160 * M}b vgglobal/lvrepnb /dev/vda"]
    assert "pv:/dev/vda:resize" in p.steps[1].after


def test_grow_pvs_leaves_a_pv_that_fills_its_device():
    # pv_size is whole extents, a little under the device: not a reason to pvresize.
    sp = spec({"vg": {"vgglobal": {"nodes": ["n1"], "pvs": ["/dev/vda", "/dev/vdb"],
                                   "grow_pvs": True}}})
    assert plan_of(sp, observed("two_pvs_linear")).steps == ()
