"""The LVM parser and error classifier on outputs recorded from real lvm2 (see the INDEX.md
beside the fixtures for how each was produced)."""

from pathlib import Path

import pytest

from reconciler import errors
from reconciler.adapters import lvm
from reconciler.adapters.lvm_report import FULLREPORT_ARGV
from reconciler.runner import Command, CommandResult

FIX = Path(__file__).parents[1] / "fixtures" / "outputs" / "lvm"
M = 1024**2


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
