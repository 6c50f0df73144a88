"""Planner rules on hand-built observed states (pure: no runner involved)."""


from support import M
from support.specs import spec

from reconciler import planning, state
from reconciler.spec import models
from reconciler.units import Size

EXT = 4 * M


def pv(name, vg, pe=100, alloc=0, devno=None, missing=False):
    return state.Pv(name=name, uuid=f"u-{name}", vg=vg, devno=devno, dev_size=Size(pe * EXT),
                    size=Size(pe * EXT), free=Size((pe - alloc) * EXT), pe_count=pe,
                    pe_alloc_count=alloc, missing=missing, allocatable=True)


def lv(name, extents_on, vg="vg0", attr="-wi-a-----", images=(), sync=None, via=None, tags=()):
    size = sum(extents_on.values()) if not images else max(sum(i.pv_extents.values()) for i in images)
    # a raid LV always reports its sync action (as real lvm does: idle once synced)
    action = ("idle" if sync is not None and sync >= 100 else "recover") if attr[0] == "r" else None
    return state.Lv(vg=vg, name=name, uuid=f"u-{name}", size=Size(size * EXT),
                    attr=state.LvAttr(attr), layout=("raid", "raid1") if images else ("linear",),
                    segtypes=("raid1",) if images else ("linear",), pv_extents=dict(extents_on),
                    images=tuple(images), sync_percent=sync, moving_via=via, tags=tuple(tags),
                    raid_sync_action=action)


def host(pvs, lvs=(), vg="vg0", lock_type="none", pvmoves=(), devices=None):
    vgs = {}
    members = tuple(sorted(p.name for p in pvs if p.vg == vg))
    if members:
        vgs[vg] = state.Vg(name=vg, uuid="vgu", extent_size=Size(EXT), extent_count=0,
                           free_count=0, lock_type=lock_type, missing_pv_count=0, pvs=members,
                           lvs={x.name: x for x in lvs}, pvmoves=tuple(pvmoves))
    return state.HostState(host="local", vgs=vgs, pvs={p.name: p for p in pvs},
                           devices=devices or {})


def vg_table(pvs, lvs=None, vg="vg0", **kw) -> dict:
    """One VG on every node, its PVs ``pvs`` and LVs ``lvs``: a ``[vg.NAME]`` table for ``spec``."""
    return {"vg": {vg: {"nodes": ["*"], "scope": "local", "pvs": pvs, "lv": lvs or {}, **kw}}}


def plan_of(sp, st, **kw):
    return planning.plan(sp, st, node="n1", **kw)


def kinds(p):
    return [type(s.action).__name__ for s in p.steps]


def test_in_sync_plans_nothing():
    st = host([pv("/dev/a", "vg0", alloc=32)], [lv("data", {"/dev/a": 32})])
    p = plan_of(spec(vg_table(["/dev/a"], {"data": {"size": "128M"}})), st)
    assert p.converged and str(p).endswith("nothing to do: in sync with the spec")


def test_new_vg_from_scratch_is_ordered():
    st = host([], devices={"/dev/a": (8, 0), "/dev/b": (8, 16)})
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b"], {"data": {"size": "1G", "placement": ["/dev/b"]}})), st)
    assert kinds(p) == ["CreatePv", "CreatePv", "CreateVg", "CreateLv"]
    create = p.steps[-1]
    assert create.after == {"vg:vg0:create"}
    assert create.action.commands()[0].argv == (
        "lvcreate", "--yes", "--name", "data", "--size", f"{1024 * M}b", "vg0", "/dev/b")


def test_missing_device_blocks_whole_vg():
    st = host([], devices={"/dev/a": (8, 0), "/dev/b": None})
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b"])), st)
    assert not p.steps
    assert "device /dev/b does not exist" in p.blocked[0].reason


def test_pv_of_another_vg_is_never_taken():
    st = host([pv("/dev/a", "vg0"), pv("/dev/b", "other")])
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b"])), st)
    assert not p.steps and "is a PV of VG 'other'" in p.blocked[0].reason


def test_symlink_spelling_matches_by_device_number():
    st = host([pv("/dev/sdb", "vg0", devno=(8, 16))], devices={"/dev/disk/by-id/x": (8, 16)})
    p = plan_of(spec(vg_table(["/dev/disk/by-id/x"])), st)
    assert p.converged


def test_grow():
    st = host([pv("/dev/a", "vg0", alloc=32)], [lv("big", {"/dev/a": 32})])
    p = plan_of(spec(vg_table(["/dev/a"], {"big": {"size": "256M"}})), st)
    assert kinds(p) == ["ResizeLv"]
    assert p.steps[0].action.commands()[0].argv == (
        "lvextend", "--size", f"{256 * M}b", "vg0/big", "/dev/a")


def test_refuse_shrink():
    st = host([pv("/dev/a", "vg0", alloc=32)], [lv("small", {"/dev/a": 32})])
    p = plan_of(spec(vg_table(["/dev/a"], {"small": {"size": "64M"}})), st)
    assert not p.steps
    assert p.blocked[0].object == "lv vg0/small" and "shrinking is refused" in p.blocked[0].reason


def test_blocked_lv_discards_the_whole_vg_plan():
    st = host([pv("/dev/a", "vg0", alloc=32)], [lv("small", {"/dev/a": 32})])
    p = plan_of(spec(vg_table(["/dev/a"], {"small": {"size": "64M"}, "new": {"size": "4M"}})), st)
    assert not p.steps and len(p.blocked) == 1


def test_shrink_with_opt_in():
    st = host([pv("/dev/a", "vg0", alloc=32)], [lv("small", {"/dev/a": 32})])
    p = plan_of(spec(vg_table(["/dev/a"], {"small": {"size": "64M", "allow_shrink": True}})), st)
    assert p.steps[0].action.commands()[0].argv == ("lvreduce", "--yes", "--size", f"{64 * M}b", "vg0/small")


def test_seed_000_evacuate_then_reduce():
    st = host([pv("/dev/lun02", "vg0", pe=200, alloc=81), pv("/dev/lun30", "vg0", pe=35, alloc=32)],
              [lv("lvrepnb", {"/dev/lun30": 32}), lv("mygfs", {"/dev/lun02": 81})])
    p = plan_of(spec(vg_table(["/dev/lun02"], {"lvrepnb": {"size": "128M"}, "mygfs": {"size": "324M"}})), st)
    assert kinds(p) == ["MoveExtents", "ReduceVg"]
    move, reduce_ = p.steps
    assert move.action.commands()[0].argv == (
        "pvmove", "--background", "--name", "vg0/lvrepnb", "/dev/lun30", "/dev/lun02")
    assert reduce_.after == {move.key}
    assert reduce_.action.commands()[0].argv == ("vgreduce", "vg0", "/dev/lun30")


def test_evacuation_refuses_to_touch_unmanaged_lv():
    st = host([pv("/dev/a", "vg0"), pv("/dev/b", "vg0", alloc=10)], [lv("stranger", {"/dev/b": 10})])
    p = plan_of(spec(vg_table(["/dev/a"])), st)
    assert not p.steps and "unmanaged LV" in p.blocked[0].reason
    assert "lv vg0/stranger" in p.unmanaged


def test_missing_pv_is_never_removed():
    st = host([pv("/dev/a", "vg0"), pv("/dev/b", "vg0", missing=True)])
    p = plan_of(spec(vg_table(["/dev/a"])), st)
    assert not p.steps and "--removemissing" in p.blocked[0].reason


def test_pvmove_precheck_free_extents():
    st = host([pv("/dev/a", "vg0", pe=10, alloc=5), pv("/dev/b", "vg0", alloc=32)],
              [lv("data", {"/dev/b": 32})])
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b"], {"data": {"size": "128M", "placement": ["/dev/a"]}})), st)
    assert not p.steps and "needs that many free extents" in p.blocked[0].reason


def test_moves_in_one_vg_are_chained():
    st = host([pv("/dev/a", "vg0"), pv("/dev/b", "vg0", alloc=20)],
              [lv("x", {"/dev/b": 10}), lv("y", {"/dev/b": 10})])
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b"], {"x": {"size": "40M", "placement": ["/dev/a"]},
                                           "y": {"size": "40M", "placement": ["/dev/a"]}})), st)
    x, y = p.steps
    assert y.after == {x.key}


def test_in_flight_pvmove_is_waited_for_not_reissued():
    mv = state.PvMove(vg="vg0", name="pvmove0", source="/dev/b", copy_percent=40.0, lvs=("x",),
                      destinations=("/dev/a",))
    st = host([pv("/dev/a", "vg0", alloc=10), pv("/dev/b", "vg0", alloc=10)],
              [lv("x", {}, attr="-wI-ao----", via="pvmove0")], pvmoves=[mv])
    p = plan_of(spec(vg_table(["/dev/a"], {"x": {"size": "40M"}})), st)
    assert kinds(p) == ["ReduceVg"]
    assert p.steps[0].after == {"lv:vg0/x:moving"}
    assert p.in_flight[0].percent == 40.0
    p2 = plan_of(spec(vg_table(["/dev/a"], {"x": {"size": "40M"}})), st, stalled=frozenset({"vg0/pvmove0"}))
    assert sorted(kinds(p2)) == ["ReduceVg", "ResumeMoves"]
    (resume,) = [s for s in p2.steps if s.key == "host:resume-pvmove"]
    assert resume.action.commands()[0].argv == ("pvmove", "--background")


def test_resume_refused_when_it_would_touch_an_unmanaged_vg():
    mv = state.PvMove(vg="vg0", name="pvmove0", source="/dev/b", copy_percent=40.0, lvs=("x",),
                      destinations=("/dev/a",))
    st = host([pv("/dev/a", "vg0", alloc=10), pv("/dev/b", "vg0", alloc=10)],
              [lv("x", {}, attr="-wI-ao----", via="pvmove0")], pvmoves=[mv])
    other = state.Vg(name="other", uuid="o", extent_size=Size(EXT), extent_count=0, free_count=0,
                     lock_type="none", missing_pv_count=0, pvs=(), lvs={},
                     pvmoves=(state.PvMove(vg="other", name="pvmove0", source="/dev/z",
                                           copy_percent=1.0, lvs=(), destinations=()),))
    st = state.HostState(host="local", vgs={**st.vgs, "other": other}, pvs=st.pvs)
    p = plan_of(spec(vg_table(["/dev/a"], {"x": {"size": "40M"}})), st, stalled=frozenset({"vg0/pvmove0"}))
    assert "ResumeMoves" not in kinds(p)
    assert any("unmanaged VG(s) other" in b.reason for b in p.blocked)


def test_mirror_then_split_adds_leg_on_placement():
    st = host([pv("/dev/a", "vg0"), pv("/dev/b", "vg0", alloc=10)], [lv("x", {"/dev/b": 10})])
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b"], {"x": {"size": "40M", "placement": ["/dev/a"],
                                                  "move": "mirror-then-split"}})), st)
    add, drop = p.steps
    assert [c.argv for c in add.action.commands()] == [
        ("lvchange", "--addtag", "reconciler_split", "vg0/x"),
        ("lvconvert", "--yes", "--type", "raid1", "--mirrors", "1", "vg0/x", "/dev/a")]
    assert drop.after == {add.key}
    assert [c.argv for c in drop.action.commands()] == [
        ("lvconvert", "--yes", "--mirrors", "0", "vg0/x", "/dev/b"),
        ("lvchange", "--deltag", "reconciler_split", "vg0/x")]


def leg(name, pvs, in_sync=True):
    attr = state.LvAttr(("i" if in_sync else "I") + "wi-aor---")
    return state.RaidImage(name=name, in_sync=in_sync, pv_extents=pvs,
                           parts=(state.LegPart(name=name, attr=attr, is_image=True),))


def test_split_waits_for_sync():
    st = host([pv("/dev/a", "vg0", alloc=11), pv("/dev/b", "vg0", alloc=11)],
              [lv("x", {"/dev/a": 11, "/dev/b": 11}, attr="rwi-a-r---", sync=42.0,
                  images=[leg("x_rimage_0", {"/dev/b": 11}), leg("x_rimage_1", {"/dev/a": 11}, False)],
                  tags=["reconciler_split"])])
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b"], {"x": {"size": "44M", "placement": ["/dev/a"],
                                                  "move": "mirror-then-split"}})), st)
    assert p.in_flight[0].what == "raid1 sync" and p.in_flight[0].percent == 42.0
    (drop,) = p.steps
    assert drop.after == {"lv:vg0/x:syncing"}


def test_split_once_in_sync_drops_the_source_leg():
    st = host([pv("/dev/a", "vg0", alloc=11), pv("/dev/b", "vg0", alloc=11)],
              [lv("x", {"/dev/a": 11, "/dev/b": 11}, attr="rwi-a-r---", sync=100.0,
                  images=[leg("x_rimage_0", {"/dev/b": 11}), leg("x_rimage_1", {"/dev/a": 11})],
                  tags=["reconciler_split"])])
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b"], {"x": {"size": "44M", "placement": ["/dev/a"],
                                                  "move": "mirror-then-split"}})), st)
    (drop,) = p.steps
    assert drop.action.sources == ("/dev/b",) and not drop.after


def test_existing_mirror_is_never_reduced_implicitly():
    st = host([pv("/dev/a", "vg0", alloc=11), pv("/dev/b", "vg0", alloc=11)],
              [lv("x", {"/dev/a": 11, "/dev/b": 11}, attr="rwi-a-r---", sync=100.0,
                  images=[leg("x_rimage_0", {"/dev/b": 11}), leg("x_rimage_1", {"/dev/a": 11})])])
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b"], {"x": {"size": "44M", "placement": ["/dev/a"]}})), st)
    assert not p.steps and "lower its redundancy" in p.blocked[0].reason


def test_users_own_mirror_is_not_split_even_with_mirror_then_split():
    # raid1 on a+b that the reconciler did not build (no tag); the spec moves placement to a+c
    st = host([pv("/dev/a", "vg0", alloc=11), pv("/dev/b", "vg0", alloc=11), pv("/dev/c", "vg0")],
              [lv("x", {"/dev/a": 11, "/dev/b": 11}, attr="rwi-a-r---", sync=100.0,
                  images=[leg("x_rimage_0", {"/dev/a": 11}), leg("x_rimage_1", {"/dev/b": 11})])])
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b", "/dev/c"],
                     {"x": {"size": "44M", "placement": ["/dev/a", "/dev/c"],
                            "move": "mirror-then-split"}})), st)
    assert not p.steps and "lower its redundancy" in p.blocked[0].reason


def test_mirrored_lv_with_size_rounded_to_extents_is_in_sync():
    st = host([pv("/dev/a", "vg0", alloc=11), pv("/dev/b", "vg0", alloc=11)],
              [lv("x", {"/dev/a": 11, "/dev/b": 11}, attr="rwi-a-r---", sync=100.0,
                  images=[leg("x_rimage_0", {"/dev/a": 11}), leg("x_rimage_1", {"/dev/b": 11})])])
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b"], {"x": {"size": "42M"}})), st)  # lvm made it 44M
    assert p.converged


def test_leftover_split_tag_is_removed():
    st = host([pv("/dev/a", "vg0", alloc=10)], [lv("x", {"/dev/a": 10}, tags=["reconciler_split"])])
    p = plan_of(spec(vg_table(["/dev/a"], {"x": {"size": "40M"}})), st)
    assert kinds(p) == ["ForgetSplit"]
    assert p.steps[0].action.commands()[0].argv == ("lvchange", "--deltag", "reconciler_split", "vg0/x")


def test_removing_an_origin_or_thin_pool_is_refused():
    st = host([pv("/dev/a", "vg0", alloc=20)], [lv("orig", {"/dev/a": 10}, attr="owi-a-s---")])
    p = plan_of(spec(vg_table(["/dev/a"], {"orig": {"state": "absent"}})), st)
    assert not p.steps and "snapshot origin or a thin pool" in p.blocked[0].reason


def test_by_path_devices_are_escaped_for_lvm():
    dev = "/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-iqn.2026-11.lab:t-lun-0"
    st = host([], devices={dev: (8, 0)})
    p = plan_of(spec(vg_table([dev], {"d": {"size": "8M"}})), st)
    create = [s for s in p.steps if s.key == "lv:vg0/d:create"][0]
    assert create.action.commands()[0].argv[-1] == dev.replace(":", "\\:")
    pvcreate = [s for s in p.steps if s.key.startswith("pv:")][0]
    assert pvcreate.action.commands()[0].argv == ("pvcreate", dev)  # no PE ranges there


def test_mirror_split_refused_in_lockd_vg():
    st = host([pv("/dev/a", "vg0"), pv("/dev/b", "vg0", alloc=10)], [lv("x", {"/dev/b": 10})],
              lock_type="sanlock")
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b"], {"x": {"size": "40M", "placement": ["/dev/a"],
                                                  "move": "mirror-then-split"}})), st)
    assert not p.steps and "lvmlockd" in p.blocked[0].reason


def test_absent_lv_removed_but_not_when_open():
    st = host([pv("/dev/a", "vg0", alloc=20)], [lv("old", {"/dev/a": 10}),
                                                lv("busy", {"/dev/a": 10}, attr="-wi-ao----")])
    p = plan_of(spec(vg_table(["/dev/a"], {"old": {"state": "absent"}})), st)
    assert kinds(p) == ["RemoveLv"] and "lv vg0/busy" in p.unmanaged
    p = plan_of(spec(vg_table(["/dev/a"], {"old": {"state": "absent"}, "busy": {"state": "absent"}})), st)
    assert not p.steps and "is open" in p.blocked[0].reason


def test_unmanaged_vgs_listed():
    st = host([pv("/dev/a", "vgx")], vg="vgx")
    p = plan_of(spec(vg_table(["/dev/b"])), st)
    assert "vg vgx" in p.unmanaged


def test_vgreduce_waits_for_lvremove():
    st = host([pv("/dev/a", "vg0"), pv("/dev/b", "vg0", alloc=10)], [lv("old", {"/dev/b": 10})])
    p = plan_of(spec(vg_table(["/dev/a"], {"old": {"state": "absent"}})), st)
    remove, reduce_ = p.steps
    assert kinds(p) == ["RemoveLv", "ReduceVg"] and reduce_.after == {remove.key}


def test_absent_vg_removes_lvs_then_vg():
    st = host([pv("/dev/a", "vg0", alloc=10)], [lv("old", {"/dev/a": 10})])
    sp = models.Spec.model_validate({"vg": {"vg0": {"nodes": ["*"], "scope": "local", "state": "absent",
                                                    "lv": {"old": {"state": "absent"}}}}})
    p = plan_of(sp, st)
    assert kinds(p) == ["RemoveLv", "RemoveVg"]
    sp = models.Spec.model_validate({"vg": {"vg0": {"nodes": ["*"], "scope": "local", "state": "absent"}}})
    p = plan_of(sp, st)
    assert not p.steps and "still holds LV(s) old" in p.blocked[0].reason


def test_plan_json_carries_argv():
    st = host([pv("/dev/a", "vg0")])
    d = plan_of(spec(vg_table(["/dev/a"], {"n": {"size": "8M"}})), st).as_dict()
    assert d["steps"][0]["argv"] == [["lvcreate", "--yes", "--name", "n", "--size", f"{8 * M}b", "vg0", "/dev/a"]]
    assert d["steps"][0]["action"] == "CreateLv" and d["converged"] is False


def test_mirror_then_split_needs_a_free_extent_on_the_source_for_its_metadata():
    # found in the lab: lvm allocates the existing leg's rmeta on the LV's own PVs
    st = host([pv("/dev/a", "vg0"), pv("/dev/b", "vg0", pe=10, alloc=10)], [lv("x", {"/dev/b": 10})])
    p = plan_of(spec(vg_table(["/dev/a", "/dev/b"], {"x": {"size": "40M", "placement": ["/dev/a"],
                                                  "move": "mirror-then-split"}})), st)
    assert not p.steps and "one free extent on /dev/b" in p.blocked[0].reason


def test_an_origin_marked_absent_says_what_to_check_never_to_remove_its_dependents():
    # its snapshots or thin volumes are not marked absent: they may hold someone's data
    st = host([pv("/dev/a", "vg0", alloc=20)], [lv("orig", {"/dev/a": 10}, attr="owi-a-s---")])
    reason = plan_of(spec(vg_table(["/dev/a"], {"orig": {"state": "absent"}})), st).blocked[0].reason
    assert "remove them" not in reason
    assert "check whether they are still needed" in reason, reason


def test_resume_refused_when_it_would_touch_a_vg_blocked_in_this_pass():
    """Review finding: a bare pvmove resumes every interrupted move on the host, so it must
    not run while another managed VG with a move in it is blocked (a DLM VG without quorum,
    a missing disk): that VG is not to be touched until its block is gone."""
    mv = state.PvMove(vg="vg0", name="pvmove0", source="/dev/b", copy_percent=40.0, lvs=("x",),
                      destinations=("/dev/a",))
    st = host([pv("/dev/a", "vg0", alloc=10), pv("/dev/b", "vg0", alloc=10)],
              [lv("x", {}, attr="-wI-ao----", via="pvmove0")], pvmoves=[mv])
    other = state.Vg(name="other", uuid="o", extent_size=Size(EXT), extent_count=0, free_count=0,
                     lock_type="none", missing_pv_count=1, pvs=("/dev/z",), lvs={},
                     pvmoves=(state.PvMove(vg="other", name="pvmove0", source="/dev/z",
                                           copy_percent=1.0, lvs=(), destinations=()),))
    st = state.HostState(host="local", vgs={**st.vgs, "other": other},
                         pvs={**st.pvs, "/dev/z": pv("/dev/z", "other", missing=True)})
    doc = {"vg": {**vg_table(["/dev/a"], {"x": {"size": "40M"}})["vg"],
                  **vg_table(["/dev/z"], {}, vg="other")["vg"]}}
    p = plan_of(spec(doc), st, stalled=frozenset({"vg0/pvmove0"}))
    assert any(b.object == "vg other" for b in p.blocked), p.blocked  # the missing PV
    assert "ResumeMoves" not in kinds(p)
    assert any("would also resume the one in VG(s) other, blocked in this pass" in b.reason
               for b in p.blocked)
