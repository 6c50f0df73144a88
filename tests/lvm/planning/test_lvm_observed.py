"""Planner rules on states parsed from real lvm2 output (tests/fixtures/outputs/lvm/, see
INDEX.md there for how each state was produced in the lab).

Issue 8: a leg is dropped only when every field lvm reports says the kept leg is complete,
healthy and on present PVs (item 4); a VG owned by another host is never touched (item 8);
an orphan PV counts for what it will hold (item 9); one disk named by two spellings is
never pvcreate'd / vgcreate'd twice (item 16).
"""

from dataclasses import replace
from pathlib import Path

import pytest
from support import M, FIXTURES
from support.specs import spec

from reconciler import actions, observing, planning, state
from reconciler.adapters import lvm
from reconciler.adapters.lvm_report import FULLREPORT_ARGV
from reconciler.runner import Command, CommandResult
from reconciler.spec import models
from reconciler.units import Size

FIX = FIXTURES / "outputs" / "lvm"


def body(case):
    return (FIX / f"{case}.json").read_text().split("\n", 1)[1]


def observed(case, **kw):
    return replace(lvm.parse_fullreport(body(case)), **kw)


def tagged(st, vg="vgglobal", lv="lvrepnb"):
    """The recorded state as the reconciler leaves it after adding the leg (its tag)."""
    g = st.vgs[vg]
    lvs = dict(g.lvs)
    lvs[lv] = replace(lvs[lv], tags=(lvm.SPLIT_TAG,))
    return replace(st, vgs={**st.vgs, vg: replace(g, lvs=lvs)})


def mirror_spec(source, dest, size="128M"):
    return spec({"vg": {"vgglobal": {
        "nodes": ["*"], "scope": "local", "pvs": [source, dest],
        "lv": {"lvrepnb": {"size": size, "placement": [dest], "move": "mirror-then-split"},
               "mygfs": {"size": "324M"}}}}})


def plan_of(sp, st):
    return planning.plan(sp, st, node="n1")


def lv_blocks(p, lv="lv vgglobal/lvrepnb"):
    return [b.reason for b in p.blocked if b.object == lv]


# -- item 4: the kept leg must be complete and healthy by every field ---------------------------


def test_healthy_synced_leg_is_dropped():
    p = plan_of(mirror_spec("/dev/vda", "/dev/vdb"), tagged(observed("raid1_synced")))
    (drop,) = p.steps
    assert isinstance(drop.action, actions.DropMirrorLeg) and drop.action.sources == ("/dev/vda",)
    assert drop.action.waiting_for(tagged(observed("raid1_synced"))) is None


@pytest.mark.parametrize("case, field", [
    ("raid1_new_leg_failed_mid_sync", "lv_health_status 'partial'"),
    ("raid1_new_leg_failed_after_sync", "lv_health_status 'partial'"),
    ("raid1_new_leg_failed_after_sync_written", "lv_health_status 'partial'"),
])
def test_new_leg_on_a_failed_disk_is_never_the_one_kept(case, field):
    # sync_percent 100 and raid_sync_action idle in all three: the percent is no proof.
    st = tagged(observed(case))
    p = plan_of(mirror_spec("/dev/vda", "/dev/vdb"), st)
    assert p.steps == ()
    (reason,) = lv_blocks(p)
    assert field in reason and "no leg is dropped" in reason
    assert "[unknown]" in reason  # the PV lvm cannot find, named as lvm names it
    assert not any(f.object == "lv vgglobal/lvrepnb" for f in p.in_flight)


def test_refresh_needed_leg_is_refreshed_and_no_leg_is_dropped():
    # The failed leg's PV is back (a transient failure): present, but the kernel still
    # counts the leg as failed. Issue 17 finding 11: it used to block for good; now it is
    # refreshed as ``copies`` does it (one rule), and no leg is dropped in that pass.
    st = tagged(observed("raid1_refresh_needed"))
    sp = spec({"vg": {"vgglobal": {"nodes": ["*"], "scope": "local", "pvs": ["/dev/vda", "/dev/mapper/leg"],
                                   "lv": {"lvrepnb": {"size": "64M", "placement": ["/dev/mapper/leg"],
                                                      "move": "mirror-then-split"}}}}})
    p = plan_of(sp, st)
    assert [type(s.action).__name__ for s in p.steps] == ["RefreshCopy"]
    assert p.in_flight == () and p.blocked == ()


@pytest.mark.parametrize("case", ["raid1_new_leg_failed_mid_sync", "raid1_new_leg_failed_after_sync",
                                  "raid1_refresh_needed"])
def test_drop_rechecked_right_before_the_command(case):
    # The plan was made while all was well; the leg failed before the step ran.
    drop = actions.DropMirrorLeg(vg="vgglobal", lv="lvrepnb", sources=("/dev/vda",))
    why = drop.waiting_for(tagged(observed(case)))
    assert why is not None and "no leg is dropped" in why and "lv_health_status" in why


def edited(case, old, new):
    text = body(case)
    assert old in text
    return lvm.parse_fullreport(text.replace(old, new, 1))


def test_health_field_alone_blocks_even_when_images_say_in_sync():
    # raid1_synced with only the LV's health fields changed as lvm prints them for a leg
    # the kernel failed ("refresh needed", attr bit 9 'r'): every other field says in sync.
    # The leg is refreshed (finding 11), never dropped.
    st = edited("raid1_synced", '"lv_attr":"rwi-a-r---", "lv_layout":"raid,raid1"',
                '"lv_attr":"rwi-a-r-r-", "lv_layout":"raid,raid1"')
    st = replace(st, vgs={"vgglobal": replace(st.vgs["vgglobal"], lvs={
        **st.vgs["vgglobal"].lvs,
        "lvrepnb": replace(st.vgs["vgglobal"].lvs["lvrepnb"], health_status="refresh needed")})})
    st = tagged(st)
    assert st.vgs["vgglobal"].lvs["lvrepnb"].is_synced  # what the old rule looked at
    p = plan_of(mirror_spec("/dev/vda", "/dev/vdb"), st)
    assert [type(s.action).__name__ for s in p.steps] == ["RefreshCopy"]
    # A health flag no refresh cures ('m': mismatches between the copies) blocks, the
    # flag named.
    st = edited("raid1_synced", '"lv_attr":"rwi-a-r---", "lv_layout":"raid,raid1"',
                '"lv_attr":"rwi-a-r-m-", "lv_layout":"raid,raid1"')
    st = tagged(st)
    assert st.vgs["vgglobal"].lvs["lvrepnb"].is_synced
    p = plan_of(mirror_spec("/dev/vda", "/dev/vdb"), st)
    assert p.steps == ()
    (reason,) = lv_blocks(p)
    assert "health flag is 'm'" in reason


def test_unknown_image_letter_blocks_instead_of_counting_as_in_sync():
    st = tagged(edited("raid1_synced", '"lv_attr":"iwi-aor---", "lv_layout":"linear", "lv_role":"private,raid,image"',
                       '"lv_attr":"?wi-aor---", "lv_layout":"linear", "lv_role":"private,raid,image"'))
    p = plan_of(mirror_spec("/dev/vda", "/dev/vdb"), st)
    assert p.steps == ()
    (reason,) = lv_blocks(p)
    assert "lvrepnb_rimage_0" in reason and "does not count as in sync" in reason


def test_sync_running_is_waited_for_not_blocked():
    st = tagged(observed("raid1_syncing"))
    p = plan_of(mirror_spec("/dev/vda", "/dev/vdb"), st)
    assert not p.blocked
    assert [f.what for f in p.in_flight] == ["raid1 sync"]
    (drop,) = p.steps
    assert drop.action.waiting_for(st) == "the legs are not 100% in sync yet"


# -- item 9: an orphan PV counts for what it will hold -----------------------------------------


def test_orphan_pv_is_added_with_vgextend_and_holds_the_move():
    st = observed("orphan_pv")
    sp = spec({"vg": {"vgglobal": {"nodes": ["*"], "scope": "local", "pvs": ["/dev/vda", "/dev/vdb", "/dev/vdc"],
                                   "lv": {"lvrepnb": {"size": "128M", "placement": ["/dev/vdc"]},
                                          "mygfs": {"size": "324M"}}}}})
    p = plan_of(sp, st)
    assert p.blocked == ()
    extend, move = p.steps
    assert isinstance(extend.action, actions.ExtendVg) and extend.action.device == "/dev/vdc"
    assert isinstance(move.action, actions.MoveExtents) and move.action.destinations == ("/dev/vdc",)
    assert extend.key in move.after
    assert not any(isinstance(s.action, actions.CreatePv) for s in p.steps)


def test_orphan_pv_for_mirror_then_split_counts_its_capacity():
    st = observed("orphan_pv")
    sp = spec({"vg": {"vgglobal": {"nodes": ["*"], "scope": "local", "pvs": ["/dev/vda", "/dev/vdb", "/dev/vdc"],
                                   "lv": {"lvrepnb": {"size": "128M", "placement": ["/dev/vdc"],
                                                      "move": "mirror-then-split"},
                                          "mygfs": {"size": "324M"}}}}})
    p = plan_of(sp, st)
    assert p.blocked == ()
    assert [type(s.action).__name__ for s in p.steps] == ["ExtendVg", "AddMirrorLeg", "DropMirrorLeg"]


def test_orphan_pv_too_small_is_counted_conservatively():
    st = observed("orphan_pv")
    small = replace(st.pvs["/dev/vdc"], dev_size=Size(129 * M))  # (129 - 1) MiB = 32 extents
    st = replace(st, pvs={**st.pvs, "/dev/vdc": small})
    sp = spec({"vg": {"vgglobal": {"nodes": ["*"], "scope": "local", "pvs": ["/dev/vda", "/dev/vdb", "/dev/vdc"],
                                   "lv": {"lvrepnb": {"size": "128M", "placement": ["/dev/vdc"],
                                                      "move": "mirror-then-split"},
                                          "mygfs": {"size": "324M"}}}}})
    (reason,) = lv_blocks(plan_of(sp, st))
    assert "needs 33 free extents on /dev/vdc, which have 32" in reason


# -- item 16: one disk, two spellings ---------------------------------------------------------


@pytest.mark.parametrize("vgs", [
    {"vga": ["/dev/vdc"], "vgb": ["/dev/disk/by-id/virtio-spare"]},
    {"vga": ["/dev/vdd", "/dev/vdc", "/dev/disk/by-id/virtio-spare"]},
])
def test_one_disk_named_twice_is_never_created_twice(vgs):
    st = observed("two_pvs_linear", devices={"/dev/vdc": (254, 32), "/dev/vdd": (254, 48),
                                             "/dev/disk/by-id/virtio-spare": (254, 32)})
    sp = spec({"vg": {n: {"nodes": ["*"], "scope": "local", "pvs": pvs} for n, pvs in vgs.items()}})
    p = plan_of(sp, st)
    assert p.steps == ()
    assert sorted(b.object for b in p.blocked) == sorted(f"vg {n}" for n in vgs)
    for b in p.blocked:
        assert "/dev/vdc" in b.reason and "/dev/disk/by-id/virtio-spare" in b.reason
        assert "same device (254:32)" in b.reason


# -- item 8: LVM system IDs ---------------------------------------------------------------------


def test_foreign_vg_is_never_touched():
    st = observed("foreign_vg", lvm_system_id="hosta")
    sp = spec({"vg": {"vgforeign": {"nodes": ["*"], "scope": "local", "pvs": ["/dev/vdc"],
                                    "lv": {"data": {"size": "16M"}}}}})
    p = plan_of(sp, st)
    assert p.steps == ()
    (b,) = p.blocked
    assert b.object == "vg vgforeign" and "vg_systemid 'hostb'" in b.reason
    assert "this host's system ID: hosta" in b.reason


def test_pv_of_a_foreign_vg_is_never_taken():
    st = observed("foreign_vg", lvm_system_id="hosta")
    # /dev/vdc in two VGs: the loader refuses that spec (a PV belongs to one VG), so this one
    # is the planner's input built directly: the planner blocks both on its own too
    sp = models.Spec.model_validate(
        {"vg": {"vgown": {"nodes": ["*"], "scope": "local", "pvs": ["/dev/vda", "/dev/vdc"]},
                "vgnew": {"nodes": ["*"], "scope": "local", "pvs": ["/dev/vdc"]}}})
    p = plan_of(sp, st)
    assert p.steps == ()
    assert {b.object for b in p.blocked} == {"vg vgown", "vg vgnew"}
    assert all("PV of VG 'vgforeign' (foreign: owned by system ID 'hostb')" in b.reason
               for b in p.blocked)


def test_own_and_unrestricted_vgs_are_managed_and_foreign_ones_listed():
    st = observed("foreign_vg", lvm_system_id="hosta")
    sp = spec({"vg": {"vgown": {"nodes": ["*"], "scope": "local", "pvs": ["/dev/vda"], "lv": {"x": {"size": "8M"}}},
                      "vgfree": {"nodes": ["*"], "scope": "local", "pvs": ["/dev/vdb"]}}})
    p = plan_of(sp, st)
    assert p.blocked == ()
    assert [s.action.object for s in p.steps] == ["lv vgown/x"]
    assert "vg vgforeign (foreign: system ID hostb)" in p.unmanaged


@pytest.mark.parametrize("case, local", [("foreign_vg_no_local_id", ""), ("foreign_vg", None)])
def test_without_a_local_system_id_every_vg_with_one_is_foreign(case, local):
    # None: this host's system ID is unknown; ownership that cannot be checked counts as
    # foreign.
    st = observed(case, lvm_system_id=local)
    sp = spec({"vg": {"vgown": {"nodes": ["*"], "scope": "local", "pvs": ["/dev/vda"], "lv": {"x": {"size": "8M"}}}}})
    p = plan_of(sp, st)
    assert p.steps == () and "vg_systemid 'hosta'" in p.blocked[0].reason


class FakeRunner:
    """Answers the observation commands with recorded output; records what was run."""

    def __init__(self, report_case, systemid_case=None):
        self.report = body(report_case)
        self.systemid = systemid_case
        self.argvs = []

    def run(self, command: Command) -> CommandResult:
        self.argvs.append(command.argv)
        if command.argv == FULLREPORT_ARGV:
            return CommandResult(command=command, rc=0, stdout=self.report, stderr="")
        if command.argv == ("lvm", "systemid") and self.systemid:
            text = (FIX / "commands" / f"{self.systemid}.txt").read_text()
            out = text.split("--- stdout\n", 1)[1].split("--- stderr\n", 1)[0]
            return CommandResult(command=command, rc=0, stdout=out, stderr="")
        raise AssertionError(f"unexpected command {command.argv}")


def test_system_id_asked_only_when_a_vg_carries_one():
    plain = FakeRunner("two_pvs_linear")
    st = observing.observe(plain, host="local", devices=(), resolve=lambda p: None)
    assert plain.argvs == [FULLREPORT_ARGV] and st.lvm_system_id is None
    ids = FakeRunner("foreign_vg", "lvm_systemid")
    st = observing.observe(ids, host="local", devices=(), resolve=lambda p: None)
    assert ids.argvs == [FULLREPORT_ARGV, ("lvm", "systemid")]
    assert st.lvm_system_id == "hosta"
    assert st.foreign_owner(st.vgs["vgforeign"]) == "hostb"
    assert st.foreign_owner(st.vgs["vgown"]) is None and st.foreign_owner(st.vgs["vgfree"]) is None


def test_fullreport_shows_foreign_vgs():
    assert "--foreign" in FULLREPORT_ARGV and "vg_systemid" in " ".join(FULLREPORT_ARGV)


def test_created_vgs_take_the_hosts_system_id_from_lvm_itself():
    # lvm records the host's system ID at vgcreate (recorded with system_id_source =
    # "lvmlocal"); the reconciler's vgcreate passes no --systemid, so lvm's rule applies.
    text = (FIX / "commands" / "vgcreate_with_system_id.txt").read_text()
    assert 'successfully created with system ID hosta' in text
    argv = actions.CreateVg(vg="vgnew", devices=("/dev/vda",)).commands()[0].argv
    assert "--systemid" not in argv
    assert state.HostState(host="h", lvm_system_id="hosta").foreign_owner(
        observed("foreign_vg").vgs["vgown"]) is None


# -- issue 17: pvcreate only on a disk wipefs found blank ----------------------------------------


@pytest.mark.parametrize("probe, said", [
    (state.DiskProbe("/dev/vdd", ("gpt", "PMBR")), "holds gpt, PMBR"),
    (state.DiskProbe("/dev/vdd", error="wipefs: error: /dev/vdd: probing initialization "
                     "failed: Input/output error"), "could not be read"),
])
def test_a_disk_not_seen_blank_is_never_pvcreated(probe, said):
    st = observed("orphan_pv", devices={"/dev/vdc": (254, 32), "/dev/vdd": (254, 48)},
                  probes={"/dev/vdd": probe})
    sp = spec({"vg": {"vgnew": {"nodes": ["*"], "scope": "local", "pvs": ["/dev/vdd"],
                                "lv": {"x": {"size": "8M"}}}}})
    p = plan_of(sp, st)
    assert p.steps == ()
    (b,) = p.blocked
    assert b.object == "vg vgnew" and said in b.reason
    blank = replace(st, probes={"/dev/vdd": state.DiskProbe("/dev/vdd")})
    assert [s.action.verb for s in plan_of(sp, blank).steps][:2] == ["pvcreate", "vgcreate"]
