"""The LVM parser and error classifier on outputs recorded from real lvm2 (see the INDEX.md
beside the fixtures for how each was produced)."""

from pathlib import Path

import pytest
from support import M, FIXTURES

from reconciler import errors, state
from reconciler.adapters import lvm
from reconciler.adapters.lvm_report import FULLREPORT_ARGV
from reconciler.runner import Command, CommandResult

FIX = FIXTURES / "outputs" / "lvm"


def report(case):
    header, body = (FIX / f"{case}.json").read_text().split("\n", 1)
    assert header.startswith("# lvm2 2.03")
    assert header.endswith("argv: " + " ".join(FULLREPORT_ARGV)), "fixture recorded with another argv"
    return lvm.parse_fullreport(body)


def recorded(case):
    lines = (FIX / "commands" / f"{case}.txt").read_text().splitlines()
    argv = tuple(lines[1].removeprefix("argv: ").split())
    rc = int(lines[2].removeprefix("rc: "))
    i_err = lines.index("--- stderr")
    stderr = "\n".join(lines[i_err + 1:]) + "\n"
    return CommandResult(command=Command(argv=argv), rc=rc, stdout="", stderr=stderr)


def test_every_fixture_parses():
    cases = sorted(p.stem for p in FIX.glob("*.json"))
    assert len(cases) >= 10
    for case in cases:
        report(case)


def test_empty():
    st = report("empty")
    assert st.vgs == {} and st.pvs == {}


def test_two_pvs_linear_seed000_shape():
    st = report("two_pvs_linear")
    vg = st.vgs["vgglobal"]
    assert vg.extent_size == 4 * M and vg.pvs == ("/dev/vda", "/dev/vdb")
    assert vg.lock_type == "none" and vg.pvmoves == ()
    lvrepnb = vg.lvs["lvrepnb"]
    assert lvrepnb.size == 128 * M and lvrepnb.pv_extents == {"/dev/vda": 32}
    assert lvrepnb.is_linear and lvrepnb.attr.is_active and not lvrepnb.attr.is_open
    vda = st.pvs["/dev/vda"]
    assert vda.devno == (254, 0) and vda.pe_count == 34 and vda.free_extents == 2
    assert vda.allocatable and not vda.missing


def test_orphan_pv_has_no_vg():
    st = report("orphan_pv")
    assert st.pvs["/dev/vdc"].vg is None
    assert set(st.vgs) == {"vgglobal"} and "/dev/vdc" not in st.vgs["vgglobal"].pvs


def test_spanning_lv_counts_extents_per_pv():
    lv = report("lv_spanning").vgs["vgglobal"].lvs["lvspan"]
    assert lv.pv_extents == {"/dev/vda": 2, "/dev/vdc": 2}
    assert lv.segtypes == ("linear", "linear")


@pytest.mark.parametrize("case", ["pvmove_in_progress", "pvmove_interrupted"])
def test_pvmove_in_flight(case):
    vg = report(case).vgs["vgglobal"]
    (mv,) = vg.pvmoves
    assert mv.name == "pvmove0" and mv.source == "/dev/vda" and mv.lvs == ("lvrepnb",)
    assert mv.destinations == ("/dev/vdb",) and 0 < mv.copy_percent < 100
    lv = vg.lvs["lvrepnb"]
    assert lv.moving_via == "pvmove0" and lv.attr.is_locked_by_pvmove
    assert "pvmove0" not in vg.lvs  # hidden LVs are not user LVs


def test_pvmove_done():
    vg = report("pvmove_done").vgs["vgglobal"]
    assert vg.pvmoves == () and vg.lvs["lvrepnb"].pv_extents == {"/dev/vdb": 32}
    assert vg.lvs["lvrepnb"].moving_via is None


def test_raid1_syncing_then_synced():
    syncing = report("raid1_syncing").vgs["vgglobal"].lvs["lvrepnb"]
    assert syncing.attr.is_raid and not syncing.is_synced and not syncing.is_linear
    assert [(i.name, i.in_sync) for i in syncing.images] == [
        ("lvrepnb_rimage_0", True), ("lvrepnb_rimage_1", False)]
    assert syncing.images[1].pv_extents == {"/dev/vdb": 33}  # image + its metadata extent
    assert 0 < syncing.sync_percent < 100
    synced = report("raid1_synced").vgs["vgglobal"].lvs["lvrepnb"]
    assert synced.is_synced and synced.sync_percent == 100.0
    assert synced.pv_extents == {"/dev/vda": 33, "/dev/vdb": 33}


def test_raid1_split_done_is_linear_on_new_pv():
    lv = report("raid1_split_done").vgs["vgglobal"].lvs["lvrepnb"]
    assert lv.is_linear and lv.images == () and lv.pv_extents == {"/dev/vdb": 32}


def test_old_style_mirror_syncing():
    lv = report("mirror_corelog_syncing").vgs["vgglobal"].lvs["lvrepnb"]
    assert lv.attr.is_mirror and len(lv.images) == 2 and not lv.is_synced
    assert report("mirror_corelog_synced").vgs["vgglobal"].lvs["lvrepnb"].is_synced


@pytest.mark.parametrize("text", ["", "not json", '{"nope": []}', '{"report": [{"pv": [{"x": 1}]}]}'])
def test_garbage_is_an_observation_error(text):
    with pytest.raises(errors.ObservationError) as exc:
        lvm.parse_fullreport(text)
    assert "lvm fullreport" in str(exc.value)


@pytest.mark.parametrize("case, kind", [
    ("vgextend_no_such_vg", errors.FailureKind.NOT_FOUND),
    ("lvremove_no_such_lv", errors.FailureKind.NOT_FOUND),
    ("vgreduce_pv_in_use", errors.FailureKind.FATAL),
    ("pvmove_nothing_to_move", errors.FailureKind.FATAL),
    ("lvcreate_no_space", errors.FailureKind.FATAL),
    ("lvconvert_split_while_syncing", errors.FailureKind.FATAL),
])
def test_classify_recorded_failures(case, kind):
    res = recorded(case)
    assert res.rc != 0
    assert lvm.classify(res) is kind
    assert not lvm.classify(res).is_transient


def test_lock_messages_are_transient():
    res = CommandResult(command=Command(argv=("lvcreate",)), rc=5,
                        stderr="  VG vgs lock failed: lock start in progress\n", stdout="")
    assert lvm.classify(res) is errors.FailureKind.LOCKED and lvm.classify(res).is_transient


def test_version():
    text = (FIX / "commands" / "lvm_version.txt").read_text().split("--- stdout\n", 1)[1]
    assert lvm.parse_version(text).startswith("2.03.16(2)")


# -- leg health, system IDs, orphan capacity (issue 8, items 4, 8, 9) --------------------------


@pytest.mark.parametrize("case", ["raid1_new_leg_failed_mid_sync", "raid1_new_leg_failed_after_sync",
                                  "raid1_new_leg_failed_after_sync_written"])
def test_failed_new_leg_reads_100_percent_but_partial(case):
    # The percent says 100 and the action idle: only the health fields tell the truth.
    st = report(case)
    lv = st.vgs["vgglobal"].lvs["lvrepnb"]
    assert lv.sync_percent == 100.0 and lv.raid_sync_action == "idle"
    assert lv.health_status == "partial" and lv.attr.health_char == "p"
    old, new = lv.images
    # the missing PV by its uuid (the one the recording's stderr names), not "[unknown]"
    gone = state.missing_pv_key({"raid1_new_leg_failed_mid_sync": "eryStV-td2y-7s0x-GRKj-O3xK-1asd-NJ394y"}
                                .get(case, "o1919U-BR0q-1Otq-nC6O-sygc-7RhR-P68oTy"))
    assert old.pv_extents == {"/dev/vda": 33} and new.pv_extents == {gone: 33}
    assert st.pvs[gone].missing and not st.pvs["/dev/vda"].missing
    assert st.vgs["vgglobal"].missing_pv_count == 1
    (image,) = [p for p in new.parts if p.is_image]
    assert image.health_status == "partial" and image.attr.health_char == "p"
    assert state.split_problems(lv, st.pvs)  # never a safe split


def test_mid_sync_failure_leaves_the_new_image_out_of_sync():
    lv = report("raid1_new_leg_failed_mid_sync").vgs["vgglobal"].lvs["lvrepnb"]
    assert [i.in_sync for i in lv.images] == [True, False] and not lv.is_synced


def test_healthy_synced_raid1_has_no_split_problem():
    st = report("raid1_synced")
    lv = st.vgs["vgglobal"].lvs["lvrepnb"]
    assert lv.health_status == "" and lv.raid_sync_action == "idle" and lv.is_synced
    assert [p.name for p in lv.images[0].parts] == ["lvrepnb_rimage_0", "lvrepnb_rmeta_0"]
    assert state.split_problems(lv, st.pvs, frozenset({"/dev/vda"})) == []
    syncing = report("raid1_syncing").vgs["vgglobal"].lvs["lvrepnb"]
    assert syncing.raid_sync_action == "recover" and not syncing.is_synced
    assert state.split_problems(syncing, st.pvs) == []


def test_unknown_image_letter_is_not_in_sync():
    body = (FIX / "raid1_synced.json").read_text().split("\n", 1)[1]
    body = body.replace('"lv_attr":"iwi-aor---", "lv_layout":"linear", "lv_role":"private,raid,image"',
                        '"lv_attr":"?wi-aor---", "lv_layout":"linear", "lv_role":"private,raid,image"', 1)
    st = lvm.parse_fullreport(body)
    lv = st.vgs["vgglobal"].lvs["lvrepnb"]
    assert not lv.images[0].in_sync and not lv.is_synced


def test_foreign_vg_and_its_pv_are_seen_with_their_system_id():
    st = report("foreign_vg")
    assert {n: vg.system_id for n, vg in st.vgs.items()} == {
        "vgforeign": "hostb", "vgfree": "", "vgown": "hosta"}
    assert st.pvs["/dev/vdc"].vg == "vgforeign"
    assert report("foreign_vg_no_local_id").vgs["vgforeign"].system_id == "hostb"


def test_without_foreign_lvm_hides_the_vg_and_its_pv():
    # Why FULLREPORT_ARGV carries --foreign: the recorded report without it.
    text = (FIX / "commands" / "fullreport_without_foreign.txt").read_text()
    body = text.split("--- stdout\n", 1)[1].split("--- stderr\n", 1)[0]
    st = lvm.parse_fullreport(body)
    assert set(st.vgs) == {"vgfree", "vgown"} and "/dev/vdc" not in st.pvs


@pytest.mark.parametrize("case, expected", [("lvm_systemid", "hosta"), ("lvm_systemid_none", "")])
def test_systemid(case, expected):
    text = (FIX / "commands" / f"{case}.txt").read_text().split("--- stdout\n", 1)[1]
    assert lvm.parse_systemid(text.split("--- stderr\n", 1)[0]) == expected


def test_systemid_garbage_is_an_observation_error():
    with pytest.raises(errors.ObservationError):
        lvm.parse_systemid("nothing here\n")


def test_orphan_pv_capacity_matches_what_lvm_gives_it_at_vgextend():
    orphan = report("orphan_pv").pvs["/dev/vdc"]
    assert orphan.pe_count == 0 and orphan.pe_start == M and orphan.mda_count == 1
    added = report("lv_spanning").pvs["/dev/vdc"]  # the same disk after vgextend
    assert orphan.extents_once_added(4 * M) == added.pe_count == 49
    assert added.extents_once_added(4 * M) == 0  # in a VG: counted by its free extents


def test_a_vg_name_reported_twice_is_kept_apart_and_blocked():
    """With --foreign, a local vgown and another host's vgown are two report objects of one
    name: never merged or overwritten silently; the planner blocks the name, naming both
    system IDs."""
    import copy
    import json

    from reconciler import planning
    from reconciler.spec import models

    header, body = (FIX / "foreign_vg.json").read_text().split("\n", 1)
    doc = json.loads(body)
    reports = doc["report"]
    foreign = next(r for r in reports if r.get("vg") and r["vg"][0]["vg_name"] == "vgforeign")
    twin = copy.deepcopy(foreign)
    twin["vg"][0]["vg_name"] = "vgown"
    twin["vg"][0]["vg_uuid"] = "twin-" + twin["vg"][0]["vg_uuid"][5:]
    reports.append(twin)
    st = lvm.parse_fullreport(json.dumps(doc))
    assert st.vgs["vgown"].system_id == "hosta"  # the first reported stays
    assert st.vg_names_twice == {"vgown": ("hosta", "hostb")}
    spec = models.Spec.model_validate({"vg": {"vgown": {"nodes": ["n"], "scope": "local",
                                                        "pvs": ["/dev/vdb"]}}})
    p = planning.plan(spec, st, node="n")
    reason, = [b.reason for b in p.blocked if b.object == "vg vgown"]
    assert "more than one VG named vgown (system IDs: 'hosta', 'hostb')" in reason
    assert not [s for s in p.steps if "vgown" in s.key]


# -- issue 17: a missing PV is known by its uuid, not by lvm's name "[unknown]" ----------------


def test_a_missing_pv_is_keyed_by_its_uuid():
    st = report("pv_missing")  # /dev/vdc failed (drive_del): lvm prints "[unknown]"
    uuid = "aDhaCQ-MomH-IJKT-H8WG-e9Sw-5jlG-iwUsPz"  # its pv_uuid in the recording
    key = state.missing_pv_key(uuid)
    assert uuid in key and key != state.MISSING_PV_NAME and state.is_missing_pv_key(key)
    pv = st.pvs[key]
    assert pv.missing and pv.uuid == uuid and pv.devno is None and pv.name == key
    assert state.MISSING_PV_NAME not in st.pvs
    g = st.vgs["vgglobal"]
    assert key in g.pvs and g.missing_pv_count == 1
    assert g.lvs["lvonc"].pv_extents == {key: 8}


def test_an_observed_lv_is_built_as_its_dataclass_declares_and_stays_frozen():
    """``state.Lv`` sets its slots itself (the parser builds 10,000 per pass): the same
    fields, order and defaults as the dataclass declares, each value where it belongs."""
    import dataclasses
    import inspect

    fields = dataclasses.fields(state.Lv)
    params = list(inspect.signature(state.Lv.__init__).parameters.values())[1:]
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [
        inspect.Parameter.empty if f.default is dataclasses.MISSING else f.default
        for f in fields]
    values = [object() for _ in fields]  # a distinct value per field
    for lv in (state.Lv(*values), state.Lv(**{f.name: v for f, v in zip(fields, values)})):
        assert [getattr(lv, f.name) for f in fields] == values
    lv = state.Lv(*values[:8])
    assert [getattr(lv, f.name) for f in fields[8:]] == [f.default for f in fields[8:]]
    with pytest.raises(dataclasses.FrozenInstanceError):
        lv.name = "other"
    assert dataclasses.replace(lv, name="other").name == "other"
