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
from support import M, FIXTURES
from support.specs import spec

from reconciler import actions, executing, planning, state
from reconciler.state import iscsi as state_iscsi
from reconciler.adapters import lvm
from reconciler.runner import CommandResult
from reconciler.units import Size

FIX = FIXTURES / "outputs" / "lvm"


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
    # the image's lv_uuid goes on the LV before the split (the copy keeps it); the copy's
    # own tag comes once it is inactive and out of autoactivation, the pending tag goes last
    image = st.vgs["vgglobal"].lvs["lvrepnb"].images[1]
    assert image.name == "lvrepnb_rimage_1" and image.uuid
    pending = f"reconciler_handover_pending_{image.uuid}"
    assert argvs(p) == [
        f"lvchange --addtag {pending} vgglobal/lvrepnb",
        "lvconvert --yes --splitmirrors 1 --name lvrepnb_handover vgglobal/lvrepnb /dev/vdb",
        "lvchange --activate n vgglobal/lvrepnb_handover",
        "lvchange --setautoactivation n vgglobal/lvrepnb_handover",
        "lvchange --addtag reconciler_handover vgglobal/lvrepnb_handover",
        f"lvchange --deltag {pending} vgglobal/lvrepnb",
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
    assert "/dev/vda is exported by iSCSI target" in " ".join(reasons(p, "vg vg0")), p.blocked


def test_takeover_after_the_export_ends_in_the_same_plan():
    st = lio(exported_as(observed("two_pvs_linear"), "vgglobal", "vgmoved"), "/dev/vda")
    p = plan_of(takeover_spec("absent"), st)
    assert p.blocked == (), p.blocked
    keys = [s.key for s in p.steps]
    assert keys == ["iscsi-target:e0:delete", "vg:vg0:takeover"], keys
    assert argvs(p)[-5:] == ["vgimport vgmoved",
                             "lvchange --setautoactivation y vgmoved/lvrepnb",
                             "lvchange --setautoactivation y vgmoved/mygfs",
                             "vgchange --addtag reconciler_takeover vgmoved",
                             "vgrename vgmoved vg0"]
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
    assert "nothing is done to it" in " ".join(reasons(p, "vg vg0")), p.blocked


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


# -- from a storage engineer's review: crash points and look-alikes -------------------------------

def rename_lv(st, vg, old, new, **kw):
    g = st.vgs[vg]
    lvs = {(new if k == old else k): (replace(v, name=new, **kw) if k == old else v)
           for k, v in g.lvs.items()}
    return replace(st, vgs={**st.vgs, vg: replace(g, lvs=lvs)})


def split_not_exported(**kw):
    """The old host stopped after vgsplit, before lvrename/vgexport: the new host sees
    vgmoved complete, not exported (no system IDs), its LV still named *_handover."""
    st = exported_as(observed("two_pvs_linear"), "vgglobal", "vgmoved")
    st = replace(st, vgs={"vgmoved": replace(st.vgs["vgmoved"], exported=False, **kw)})
    return rename_lv(st, "vgmoved", "lvrepnb", "lvrepnb_handover")


def test_takeover_refuses_a_vg_the_old_host_never_exported():
    p = plan_of(takeover_spec(), split_not_exported())
    assert not any(isinstance(s.action, actions.TakeOverVg) for s in p.steps), argvs(p)
    assert "never exported" in " ".join(reasons(p, "vg vg0"))


def test_a_vg_of_the_takeovers_name_not_tagged_here_is_not_taken_for_done():
    # Had it been renamed anyway, the next pass must not lvcreate an empty LV beside the data.
    st = split_not_exported()
    g = st.vgs["vgmoved"]
    vg0 = replace(g, name="vg0", lvs={k: replace(v, vg="vg0") for k, v in g.lvs.items()})
    st = replace(st, vgs={"vg0": vg0}, pvs={k: replace(v, vg="vg0") for k, v in st.pvs.items()})
    p = plan_of(takeover_spec(), st)
    assert p.steps == (), argvs(p)
    assert "was not taken over by this reconciler" in " ".join(reasons(p, "vg vg0"))


def test_takeover_resumes_after_its_own_crash_between_tag_and_rename():
    st = exported_as(observed("two_pvs_linear"), "vgglobal", "vgmoved")
    st = replace(st, vgs={"vgmoved": replace(st.vgs["vgmoved"], exported=False,
                                             tags=("reconciler_takeover",))})
    p = plan_of(takeover_spec(), st)
    assert argvs(p) == ["lvchange --setautoactivation y vgmoved/lvrepnb",
                        "lvchange --setautoactivation y vgmoved/mygfs",
                        "vgrename vgmoved vg0"]


def test_a_user_lv_named_x_handover_is_not_handed_over_as_x():
    # lvrepnb: linear on /dev/vda (no copy on the handover PV); lvrepnb_handover: the user's
    # own LV on /dev/vdb, untagged.
    st = rename_lv(observed("two_pvs_linear"), "vgglobal", "mygfs", "lvrepnb_handover")
    p = plan_of(handover_spec(), st)
    assert p.steps == (), argvs(p)
    assert "no reconciler_handover tag" in " ".join(reasons(p, "lv vgglobal/lvrepnb_handover"))


def test_export_refuses_a_new_vg_with_lvs_this_handover_did_not_split():
    # The old host after its vgsplit: vgglobal on /dev/vda, vgmoved on /dev/vdb with the
    # copy still named lvrepnb_handover, here untagged.
    base = without(observed("raid1_synced"), "mygfs")
    g = base.vgs["vgglobal"]
    lv = g.lvs["lvrepnb"]
    kept = replace(lv, images=(), attr=state.LvAttr("-wi-a-----"), pv_extents={"/dev/vda": 32})
    copy = replace(lv, vg="vgmoved", name="lvrepnb_handover", images=(),
                   attr=state.LvAttr("-wi-------"), pv_extents={"/dev/vdb": 32})
    st = replace(base, vgs={"vgglobal": replace(g, pvs=("/dev/vda",), lvs={"lvrepnb": kept}),
                            "vgmoved": replace(g, name="vgmoved", pvs=("/dev/vdb",),
                                               lvs={"lvrepnb_handover": copy})},
                 pvs={**base.pvs, "/dev/vdb": replace(base.pvs["/dev/vdb"], vg="vgmoved")})
    p = plan_of(handover_spec(), st)
    assert not any(isinstance(s.action, actions.ExportVg) for s in p.steps), argvs(p)
    tagged = rename_lv(st, "vgmoved", "lvrepnb_handover", "lvrepnb_handover",
                       tags=("reconciler_handover",))
    p = plan_of(handover_spec(), tagged)
    assert argvs(p) == ["lvrename vgmoved lvrepnb_handover lvrepnb",
                        "vgchange --activate n vgmoved", "vgexport vgmoved"], argvs(p)


def takeover_byid(pvs):
    return spec({"vg": {"vg0": {"nodes": ["n1"], "pvs": pvs, "takeover": "vgmoved",
                                "lv": {"lvrepnb": {"size": "128M",
                                                   "activation": {"n1": "active"}}}}},
                 "iscsi_target": {"e0": {"nodes": ["n1"], "iqn": "iqn.2003-01.org.example.new:e0",
                                         "portals": ["192.0.2.10:3260"], "state": "absent",
                                         "acls": ["iqn.2004-10.com.example:old"],
                                         "lun": {"0": {"device": "/dev/vda"}}}}})


def byid_state():
    st = lio(exported_as(observed("two_pvs_linear"), "vgglobal", "vgmoved"), "/dev/vda")
    byid = {"/dev/disk/by-id/virtio-a": st.pvs["/dev/vda"].devno,
            "/dev/disk/by-id/virtio-b": st.pvs["/dev/vdb"].devno}
    return replace(st, devices={**st.devices, **byid, "/dev/vda": st.pvs["/dev/vda"].devno}), byid


def test_takeover_depends_on_the_target_removal_whatever_the_spelling():
    st, byid = byid_state()
    p = plan_of(takeover_byid(list(byid)), st)
    (take,) = [s for s in p.steps if isinstance(s.action, actions.TakeOverVg)]
    assert "iscsi-target:e0:delete" in take.after, (take.after, argvs(p))


class FailingTargetRunner:
    """rtslib fails (the target stays); every lvm command 'succeeds'."""

    def __init__(self):
        self.ran = []

    def run(self, command):
        self.ran.append(" ".join(command.argv))
        ok = command.argv[0].startswith(("vg", "lv", "pv")) or command.argv[0] == "modprobe"
        return CommandResult(command=command, rc=0 if ok else 1, stdout="",
                             stderr="" if ok else "boom")

    def openers(self, paths, *, host="local"):
        return {}

    def claimed(self, paths, *, host="local"):
        return {}

    def read(self, path, *, host="local"):  # the Runner protocol's kernel files: none here
        return None


def test_vgimport_never_runs_when_the_export_could_not_be_ended():
    st, byid = byid_state()
    p = plan_of(takeover_byid(list(byid)), st)
    r = FailingTargetRunner()
    executing.apply(p, r, observe=lambda: st, current=st, sleep=lambda s: None, attempts=1)
    assert any("lio-apply" in c for c in r.ran), r.ran
    assert not any(c.startswith(("vgimport", "vgrename")) for c in r.ran), r.ran


def test_nothing_runs_on_a_taken_over_vg_while_its_disk_is_still_exported():
    # Taken over, but last pass's target removal failed: LIO still exports /dev/vda. The
    # removal is planned again; the VG's own steps (activation...) wait for a pass after it.
    st = observed("two_pvs_linear")
    g = st.vgs["vgglobal"]
    vg0 = replace(g, name="vg0", tags=("reconciler_takeover",),
                  lvs={k: replace(v, vg="vg0", attr=state.LvAttr("-wi-------"))
                       for k, v in g.lvs.items()})
    st = lio(replace(st, vgs={"vg0": vg0},
                     pvs={k: replace(v, vg="vg0") for k, v in st.pvs.items()}), "/dev/vda")
    p = plan_of(takeover_spec("absent"), st)
    assert [s.key for s in p.steps] == ["iscsi-target:e0:delete"], argvs(p)
    assert "exported by iSCSI target" in " ".join(reasons(p, "vg vg0"))


def test_split_copy_done_on_a_three_copy_lv():
    st = without(observed("raid1_synced"), "mygfs")
    lv = st.vgs["vgglobal"].lvs["lvrepnb"]
    img = lv.images
    third = replace(img[0], name="lvrepnb_rimage_2", pv_extents={"/dev/vdc": 33})
    after = replace(lv, images=(img[0], third), pv_extents={"/dev/vda": 33, "/dev/vdc": 33})
    split = replace(lv, name="lvrepnb_handover", images=(), attr=state.LvAttr("-wi-------"),
                    pv_extents={"/dev/vdb": 32}, tags=("reconciler_handover",))
    g = st.vgs["vgglobal"]
    st = replace(st, vgs={"vgglobal": replace(g, lvs={"lvrepnb": after,
                                                       "lvrepnb_handover": split})})
    a = actions.SplitCopy(vg="vgglobal", lv="lvrepnb", pvs=("/dev/vdb",), name="lvrepnb_handover")
    assert a.is_done(st)


def test_a_split_copy_is_deactivated_even_while_the_handover_waits():
    # lvrepnb split (its copy active again: udev after a reboot); "other" is open: the
    # handover waits, but the copy, which has lvrepnb's file system UUID, goes inactive.
    st = without(observed("raid1_synced"), "mygfs")
    g = st.vgs["vgglobal"]
    lv = g.lvs["lvrepnb"]
    kept = replace(lv, images=(), attr=state.LvAttr("-wi-a-----"), pv_extents={"/dev/vda": 32})
    copy = replace(lv, name="lvrepnb_handover", images=(), attr=state.LvAttr("-wi-a-----"),
                   pv_extents={"/dev/vdb": 32}, tags=("reconciler_handover",))
    other = replace(lv, name="other", attr=state.LvAttr("rwi-aor---"))
    st = replace(st, vgs={"vgglobal": replace(g, lvs={"lvrepnb": kept,
                                                       "lvrepnb_handover": copy,
                                                       "other": other})})
    p = plan_of(handover_spec(), st)
    assert "open (mounted or in use)" in " ".join(reasons(p, "lv vgglobal/other"))
    assert argvs(p) == ["lvchange -an vgglobal/lvrepnb_handover"] or argvs(p) == [
        "lvchange --activate n vgglobal/lvrepnb_handover"], argvs(p)


def test_a_failed_copy_is_refreshed_during_a_handover_which_waits_for_it():
    sp = spec({"vg": {"vgglobal": {"nodes": ["n1"], "pvs": ["/dev/vda"],
                                   "handover": {"pvs": ["/dev/mapper/leg"], "vg": "vgmoved"},
                                   "lv": {"lvrepnb": {"size": "64M"}}}}})
    p = plan_of(sp, observed("raid1_refresh_needed"))
    assert argvs(p) == ["lvchange --refresh vgglobal/lvrepnb"]
    assert "being refreshed" in " ".join(reasons(p, "lv vgglobal/lvrepnb"))


def test_resizefs_runs_after_the_activation_planned_with_it():
    st = observed("two_pvs_linear")
    st = with_lv(st, "lvrepnb", attr=state.LvAttr("-wi-------"))
    sp = spec({"vg": {"vgglobal": {"nodes": ["n1"], "pvs": ["/dev/vda", "/dev/vdb"], "lv": {
        "lvrepnb": {"size": "132M", "resize_fs": True, "activation": {"n1": "active"}},
        "mygfs": {"size": "324M"}}}}})
    p = plan_of(sp, st)
    resize = next(s for s in p.steps if s.key == "lv:vgglobal/lvrepnb:resize")
    assert "lv:vgglobal/lvrepnb:activate" in resize.after, p.steps


def test_a_takeover_reads_the_targets_even_without_a_target_table():
    from reconciler import observing
    sp = spec({"vg": {"vg0": {"nodes": ["n1"], "pvs": ["/dev/vdb"], "takeover": "vgmoved"}}})
    assert observing.iscsi_parts(sp) == (True, False)
    assert observing.iscsi_parts(spec({"vg": {"vg0": {"nodes": ["n1"], "pvs": ["/dev/vdb"]}}})) \
        == (False, False)


def test_a_handover_half_way_waits_for_its_pv_after_a_reboot_and_keeps_the_copies_off():
    # Old rebooted after splitting (before vgsplit), not logged in yet: the handover PV's
    # by-path name resolves to nothing, vg0 misses a PV, its split copies (tagged) are there
    # and one was autoactivated. Lab: this fell into evacuation planning ("move it yourself").
    base = observed("raid1_new_leg_failed_after_sync")
    g = base.vgs["vgglobal"]
    lv = g.lvs["lvrepnb"]
    kept = replace(lv, images=(), attr=state.LvAttr("-wi-a-----"), health_status="",
                   pv_extents={"/dev/vda": 32})
    copy = replace(lv, name="lvrepnb_handover", images=(), attr=state.LvAttr("-wi-a---p-"),
                   pv_extents={"[unknown]": 32}, tags=("reconciler_handover",))
    st = replace(base, vgs={"vgglobal": replace(g, lvs={"lvrepnb": kept,
                                                         "lvrepnb_handover": copy})})
    disk = "/dev/disk/by-path/ip-192.0.2.10:3260-iscsi-iqn.2003-01.org.example.new:e0-lun-0"
    sp = spec({"vg": {"vgglobal": {
        "nodes": ["n1"], "pvs": ["/dev/vda"], "handover": {"pvs": [disk], "vg": "vgmoved"},
        "lv": {"lvrepnb": {"size": "128M", "placement": ["/dev/vda"]}}}}})
    p = plan_of(sp, replace(st, devices={**st.devices, disk: None}))
    why = " ".join(reasons(p, "vg vgglobal"))
    assert "are not there" in why and "lvrepnb_handover" in why, p.blocked
    assert not any("move it yourself" in b.reason for b in p.blocked), p.blocked
    assert argvs(p) in (["lvchange -an vgglobal/lvrepnb_handover"],
                        ["lvchange --activate n vgglobal/lvrepnb_handover"]), argvs(p)


def test_a_login_is_done_only_once_udev_named_its_disks():
    # Lab (udev 3 s late): the pass's pvcreate of the by-path name failed "No device found"
    # when the login counted done at the session alone. Now the login is a long step until
    # the names exist, and what needs them waits for the next pass.
    portal, iqn = "192.0.2.10:3260", "iqn.2003-01.org.example.new:e0"
    disk = f"/dev/disk/by-path/ip-{portal}-iscsi-{iqn}-lun-0"
    sess = state_iscsi.IscsiSession(sid="session1", target=iqn, portal=portal,
                                    state="LOGGED_IN",
                                    disks=(state_iscsi.IscsiDisk(lun=0, name="sda",
                                                                 devno=(8, 0)),))
    st = replace(observed("two_pvs_linear"), iscsi=state_iscsi.IscsiState(sessions=(sess,)))
    login = actions.LoginSession(name="e0", portal=portal, target=iqn, luns=(0,))
    not_yet = replace(st, devices={**st.devices, disk: None})
    assert login.long and login.is_started(not_yet) and not login.is_done(not_yet)
    assert login.is_done(replace(st, devices={**st.devices, disk: (8, 0)}))
    sp = spec({"iscsi_session": {"e0": {"nodes": ["n1"], "portal": portal, "target": iqn,
                                        "luns": [0]}},
               "vg": {"vgglobal": {"nodes": ["n1"], "pvs": ["/dev/vda", "/dev/vdb", disk]}}})
    p = plan_of(sp, not_yet)
    keys = [s.key for s in p.steps]
    assert keys[0] == "iscsi-session:e0:login" and "udev has not named" in p.steps[0].reason
    create = next(s for s in p.steps if s.key == f"pv:{disk}:create")
    assert "iscsi-session:e0:login" in create.after
