"""``Action.gives_up`` (issue 18): the one place that says a step overwrites or gives up
data; the plan's text and JSON and the forecast read it from there."""

from support import M
from support.specs import spec

from reconciler import actions, planning
from md.planning.test_clone_planning import clone_tables, copy, host


GIVE_UP = [
    (actions.RemoveLv(vg="vg", lv="x"), "the data of vg/x is removed"),
    (actions.ResizeLv(vg="vg", lv="x", size=64 * M, extent_size=4 * M, shrink=True),
     "what vg/x holds beyond 64M is cut off"),
    (actions.CreateDrbdMetadata(resource="r0", minor=0, disk="/dev/sdb", disk_id="serial:b",
                                node="n", force=True),
     "what /dev/sdb holds is overwritten (wipe declared: create-md --force)"),
    (actions.SeedFirstSync(resource="r0", minor=0),
     "the peer's disk is overwritten with this node's (primary --force)"),
    (actions.ConnectDrbd(resource="r0", minor=0, discard=True),
     "this node's changes since the split brain are discarded (--discard-my-data)"),
    (actions.AddMdMember(clone="c", md="/dev/md1", target="/dev/t", recopy="2"),
     'the completed copy on /dev/t is copied over again (recopy = "2")'),
]

KEEP = [actions.ResizeLv(vg="vg", lv="x", size=64 * M, extent_size=4 * M),
        actions.CreateDrbdMetadata(resource="r0", minor=0, disk="/dev/sdb", disk_id="serial:b",
                                   node="n"),
        actions.ConnectDrbd(resource="r0", minor=0),
        actions.AddMdMember(clone="c", md="/dev/md1", target="/dev/t"),
        actions.RemoveVg(vg="vg"), actions.MoveExtents(vg="vg", lv="x", source="/dev/a",
                                                       destinations=("/dev/b",))]


def test_each_step_that_gives_up_data_says_what():
    for action, words in GIVE_UP:
        assert action.gives_up() == words, action
    for action in KEEP:
        assert action.gives_up() == "", action


def test_the_plan_marks_it_in_text_and_json():
    p = actions.Plan(node="n", steps=(actions.Step(GIVE_UP[0][0], "marked absent"),
                                      actions.Step(KEEP[0], "too small")))
    assert (f"  - lv vg/x: lvremove  # marked absent\n"
            f"    {actions.GIVES_UP_MARK}: the data of vg/x is removed\n") in str(p) + "\n"
    assert [s["gives_up"] for s in p.as_dict()["steps"]] == [
        "the data of vg/x is removed", None]


def test_a_clone_recopy_is_marked_a_first_copy_is_not():
    asked = planning.plan(spec(clone_tables(db={"recopy": "2"})), host(records=[copy()]),
                          node="n")
    add = next(s.action for s in asked.steps if s.key == "clone:db:add")
    assert add.gives_up() == 'the completed copy on /dev/vdb is copied over again (recopy = "2")'
    first = planning.plan(spec(clone_tables(db={"recopy": "2"})), host(), node="n")
    add = next(s.action for s in first.steps if s.key == "clone:db:add")
    assert add.gives_up() == ""
