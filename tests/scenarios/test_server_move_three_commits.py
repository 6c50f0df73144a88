"""Seed 004's server move on two simulated hosts sharing an iSCSI disk, driven only by
three versions of one spec, as a GitOps repo would change it (the lab test,
tests/lab/test_lab_server_move.py, does the same on real kernels and checks the data).

1. new exports its disks; old logs in, keeps every LV as a copy on each server, clones its
   /boot device onto the second LUN; a link cut during the sync detaches nothing, and the
   copy is refreshed and completes once the link is back.
2. handover, with old crashing half way: the next pass finishes it from what it observes.
3. old logs out; new ends the export, takes the VG over, activates it, grows the PV and an LV.
Afterwards old still has a complete vg0 (the way back) and new has one with no missing PV.
"""

from __future__ import annotations

import pytest
from support import M
from support.nodes import NodeCrashed, Nodes

from reconciler import controller
from reconciler.adapters import lvm
from reconciler.simulate.clock import SimClock
from reconciler.simulate.cluster import Cluster

IQN = "iqn.2003-01.org.example.new:move"
OLD_IQN = "iqn.2004-10.com.example:old"
PORTAL = "192.0.2.10:3260"
LUN0 = f"/dev/disk/by-path/ip-{PORTAL}-iscsi-{IQN}-lun-0"
LUN1 = f"/dev/disk/by-path/ip-{PORTAL}-iscsi-{IQN}-lun-1"

TARGET = f"""
[iscsi_target.move]
nodes = ["new"]
iqn = "{IQN}"
portals = ["{PORTAL}"]
acls = ["{OLD_IQN}"]
state = "{{target}}"
[iscsi_target.move.lun.0]
device = "/dev/vdb"
[iscsi_target.move.lun.1]
device = "/dev/vdc"

[iscsi_session.new]
nodes = ["old"]
portal = "{PORTAL}"
target = "{IQN}"
luns = [0, 1]
state = "{{session}}"
initiator = "{OLD_IQN}"
"""

COMMIT1 = TARGET.format(target="present", session="logged-in") + f"""
[vg.vg0]
nodes = ["old"]
pvs = ["/dev/vda", "{LUN0}"]
[vg.vg0.lv.root]
size = "48M"
copies = [["/dev/vda"], ["{LUN0}"]]
[vg.vg0.lv.srv]
size = "96M"
copies = [["/dev/vda"], ["{LUN0}"]]

[clone.boot]
nodes = ["old"]
source = "/dev/vdd"
target = "{LUN1}"
md = "/dev/md100"
state = "split"
"""

COMMIT2 = TARGET.format(target="present", session="logged-in") + f"""
[vg.vg0]
nodes = ["old"]
pvs = ["/dev/vda"]
[vg.vg0.handover]
pvs = ["{LUN0}"]
vg = "vg0moved"
[vg.vg0.lv.root]
size = "48M"
placement = ["/dev/vda"]
[vg.vg0.lv.srv]
size = "96M"
placement = ["/dev/vda"]

[clone.boot]
nodes = ["old"]
source = "/dev/vdd"
target = "{LUN1}"
md = "/dev/md100"
state = "split"
"""

COMMIT3 = TARGET.format(target="absent", session="absent") + """
[vg.vg0]
nodes = ["old"]
pvs = ["/dev/vda"]
[vg.vg0.lv.root]
size = "48M"
placement = ["/dev/vda"]
[vg.vg0.lv.srv]
size = "96M"
placement = ["/dev/vda"]

[vg.vgnew]
nodes = ["new"]
pvs = ["/dev/vdb"]
takeover = "vg0moved"
grow_pvs = true
[vg.vgnew.lv.root]
size = "48M"
activation = { new = "active" }
[vg.vgnew.lv.srv]
size = "200M"
activation = { new = "active" }
"""


class Move(Nodes):
    """The old and the new server on one iSCSI fabric, under the one harness."""

    def __init__(self, tmp_path):
        cluster = Cluster()
        self.old = cluster.add_host("old", seed="old")
        self.new = cluster.add_host("new", seed="new")
        cluster.join_iscsi("old", initiator=OLD_IQN)
        cluster.join_iscsi("new")
        self.old.add_device("/dev/vda", 512 * M)
        self.old.add_device("/dev/vdd", 64 * M)  # /boot
        self.old.add_vg("vg0", ["/dev/vda"])
        self.old.add_lv("vg0", "root", 48 * M)
        self.old.add_lv("vg0", "srv", 96 * M)
        self.new.add_device("/dev/vdb", 512 * M)
        self.new.add_device("/dev/vdc", 64 * M)
        super().__init__(tmp_path, cluster)

    def host(self, node):
        return self.old if node == "old" else self.new

    def commit(self, text):
        return self.spec(text)

    def run(self, node, loaded):
        return self.one_pass(node, loaded)

    def converge(self, node, loaded, passes=400):
        return self.converge_node(node, loaded, max_passes=passes)


@pytest.fixture
def move(tmp_path):
    return Move(tmp_path)


def observed(host):
    return lvm.parse_fullreport(host.run(lvm.fullreport()).stdout)


def images(host, vg, lv):
    found = host.lv(vg, lv)
    return sorted({area.device.path for img in found.images for seg in img.segments
                   for area, _ in seg.areas})


def where(host, vg, lv):
    return sorted({area.device.path for seg in host.lv(vg, lv).segments
                   for area, _ in seg.areas})


def test_the_server_move_in_three_commits(move):
    old, new = move.old, move.new
    c1 = move.commit(COMMIT1)
    assert move.converge("new", c1).exit_code == 0

    # 1. old: login, pvcreate, vgextend, the first copy; the link is cut during its sync
    r = move.run("old", c1)
    assert r.exit_code == controller.EXIT_PENDING, r.final
    assert old.lv("vg0", "root").kind == "raid1"
    old.fail_device("/dev/sda")
    old.clock.advance(10)
    r = move.run("old", c1)
    blocked = {b.object: b.reason for b in r.plan.blocked}
    assert "a copy is on a missing PV" in blocked.get("lv vg0/root", ""), blocked
    before = len(old.calls)
    r = move.run("old", c1)
    assert all(c.argv[0] == "lvm" for c in old.calls[before:]), old.calls[before:]
    assert old.lv("vg0", "root").is_active  # old keeps working on its own copy
    old.restore_device("/dev/sda")
    r = move.converge("old", c1)
    assert r.exit_code == 0, r.final
    ran = [" ".join(c.argv) for c in old.calls]
    assert "lvchange --refresh vg0/root" in ran
    seen = observed(old)
    for lv in ("root", "srv"):
        assert images(old, "vg0", lv) == ["/dev/sda", "/dev/vda"]
        got = seen.vgs["vg0"].lvs[lv]
        assert got.is_synced and got.sync_percent == 100.0 and not got.health_status
    assert not old.md.arrays  # the /boot clone was split after its copy

    # 2. handover; old crashes right after its vgsplit (the 15th command that changes the
    # host: 6 per split copy, an lvchange -an of each copy, vgsplit), and reboots
    c2 = move.commit(COMMIT2)
    move.crash_after("old", 15)
    with pytest.raises(NodeCrashed):
        move.converge("old", c2)
    assert " ".join(old.calls[-1].argv).startswith("vgsplit vg0 vg0moved")
    move.reboot("old")  # the host comes back, a new reconciler process starts
    assert not old.vg("vg0moved").exported
    assert sorted(old.vg("vg0moved").lvs) == ["root_handover", "srv_handover"]
    r = move.converge("old", c2)
    assert r.exit_code == 0, r.final
    assert old.vg("vg0moved").exported
    assert sorted(old.vg("vg0moved").lvs) == ["root", "srv"]
    for lv in ("root", "srv"):
        assert where(old, "vg0", lv) == ["/dev/vda"]
        assert old.lv("vg0", lv).kind == "linear"

    # 3. old logs out; new ends the export, takes the VG over, activates and grows it
    c3 = move.commit(COMMIT3)
    r = move.converge("old", c3)
    assert r.exit_code == 0, (r.final.blocked, r.report.results if r.report else None)
    new.grow_device("/dev/vdb", 1024 * M)
    r = move.converge("new", c3)
    assert r.exit_code == 0, r.final
    ran = [" ".join(c.argv) for c in new.calls]
    assert ran.index("vgimport vg0moved") > max(
        i for i, c in enumerate(ran) if "lio-apply" in c and '"delete":true' in c)
    assert "vgrename vg0moved vgnew" in ran and "pvresize /dev/vdb" in ran
    vg = new.vg("vgnew")
    assert not vg.exported and not vg.missing_pvs
    assert new.lv("vgnew", "srv").extents * vg.extent_size == 200 * M
    assert all(new.lv("vgnew", lv).is_active for lv in ("root", "srv"))
    # the way back: old's vg0 complete, its LVs active on its own disk
    assert not old.vg("vg0").missing_pvs and old.lv("vg0", "srv").is_active


def _pass(code, *, changed, failed=False):
    from reconciler import actions, executing

    step = actions.Step(actions.RefreshCopy(vg="vg0", lv="root"), "test")
    outcome = executing.Outcome.FAILED if failed else executing.Outcome.DONE
    results = [executing.StepResult(step, outcome, "", 0.0, [object()] if changed else [])]
    empty = actions.Plan(node="old")
    blocked = actions.Plan(node="old", blocked=(actions.Blocked("vg vg0", "not there yet"),))
    return controller.PassResult(empty, blocked if code else empty,
                                 executing.ApplyReport(results, None), code, 1, 0.0, None)


@pytest.mark.parametrize("first, passes, code", [
    (_pass(controller.EXIT_ERROR, changed=True), 2, 0),    # looks once more, then in sync
    (_pass(controller.EXIT_ERROR, changed=False), 1, 1),   # nothing done: blocked is final
    (_pass(controller.EXIT_ERROR, changed=True, failed=True), 1, 1),  # a failure is final
])
def test_wait_looks_once_more_after_a_pass_that_changed_the_host_then_blocked(
        monkeypatch, tmp_path, first, passes, code):
    # (udev makes a login's by-path names a moment after iscsiadm returns: lab, issue 13)
    runs = iter([first, _pass(controller.EXIT_IN_SYNC, changed=False),
                 _pass(controller.EXIT_ERROR, changed=True)])
    monkeypatch.setattr(controller, "reconcile_once", lambda *a, **k: next(runs))
    env = controller.Environment(runner=None, node="old", clock=SimClock())
    settled = controller.reconcile_until_settled(None, env)
    assert (settled.passes, settled.exit_code) == (passes, code)


def _through_commit2(move):
    assert move.converge("new", move.commit(COMMIT1)).exit_code == 0
    assert move.converge("old", move.commit(COMMIT1)).exit_code == 0
    assert move.converge("old", move.commit(COMMIT2)).exit_code == 0
    return move.commit(COMMIT3)


def _mutations(host, since):
    return [c.argv for c in host.calls[since:] if c.mutates]


@pytest.mark.parametrize("order", ["old first", "new first", "in turns"])
def test_the_third_commit_converges_whichever_node_passes_first(move, order):
    """Issue 17 (9): the new server's pass before the old one logged out ended in exit 1,
    "takeover waits: ... end the export first (mark the target or LUN absent)", though the
    spec already said absent: it waits on the old server's logout (exit 2, naming it)."""
    old, new = move.old, move.new
    c3 = _through_commit2(move)
    if order == "new first":
        before = len(new.calls)
        r = move.run("new", c3)
        assert r.exit_code == controller.EXIT_PENDING, r.final
        assert not r.final.blocked and r.final.only_waiting_on_others, r.final
        (wait,) = r.final.waits
        assert wait.waiting_on == "old" and wait.object == "iscsi target move"
        assert wait.what == (f"log out of {IQN} (iscsi_session.new absent there; logged in "
                             f"now: {OLD_IQN})")  # the session names old's initiator
        assert "waiting on another node: old: log out of" in str(r.final)
        assert _mutations(new, before) == []
        r = move.run("new", c3)  # still waiting, every pass, nothing done
        assert r.exit_code == controller.EXIT_PENDING and _mutations(new, before) == []
        assert move.converge("old", c3).exit_code == 0
    elif order == "in turns":
        for _ in range(200):
            a, b = move.run("new", c3), move.run("old", c3)
            assert controller.EXIT_ERROR not in (a.exit_code, b.exit_code), (a.final, b.final)
            if a.exit_code == b.exit_code == 0:
                break
            new.clock.advance(5.0)
    else:
        assert move.converge("old", c3).exit_code == 0
    r = move.converge("new", c3)
    assert r.exit_code == 0, r.final
    ran = [" ".join(c.argv) for c in new.calls]
    assert ran.index("vgimport vg0moved") > max(
        i for i, c in enumerate(ran) if "lio-apply" in c and '"delete":true' in c)
    vg = new.vg("vgnew")
    assert not vg.exported and not vg.missing_pvs
    assert all(new.lv("vgnew", lv).is_active for lv in ("root", "srv"))
    assert not old.vg("vg0").missing_pvs and old.lv("vg0", "srv").is_active


@pytest.mark.parametrize("order", ["new first", "old first", "in turns"])
def test_the_first_commit_converges_whichever_node_passes_first(move, order):
    """Issue 17: a first bring-up never ends in an error because of which node started
    first. Old's login before new exports is a wait on new (exit 2, naming it), not exit 1."""
    old, new = move.old, move.new
    c1 = move.commit(COMMIT1)
    if order == "old first":
        r = move.run("old", c1)
        assert r.exit_code == controller.EXIT_PENDING, (r.error, r.final)
        assert not r.final.blocked and not r.report.failed, r.final
        login, = [x for x in r.report.results if x.step.key == "iscsi-session:new:login"]
        assert login.detail == (f"waiting on another node: new: export {IQN} at {PORTAL}; "
                                f"seen from here: the portal {PORTAL} is unreachable (no "
                                f"connection could be made)")
        assert not any(c.argv[0] in ("pvcreate", "vgextend", "lvconvert") for c in old.calls)
        (wait,) = r.final.waits
        assert (wait.object, wait.waiting_on) == ("iscsi session new", "new")
        assert wait.what.startswith(f"export {IQN} at {PORTAL}; seen from here: ")
        assert r.final.only_waiting_on_others, r.final
        assert controller.exit_meaning(r.exit_code, r.final).startswith(
            f"waiting on another node: new: export {IQN}")
        assert move.run("old", c1).exit_code == controller.EXIT_PENDING
    elif order == "in turns":
        for _ in range(400):
            a, b = move.run("old", c1), move.run("new", c1)
            assert controller.EXIT_ERROR not in (a.exit_code, b.exit_code), (a.final, b.final)
            if a.exit_code == b.exit_code == 0:
                break
            old.clock.advance(a.requeue_after or 5.0)
    assert move.converge("new", c1).exit_code == 0
    r = move.converge("old", c1)
    assert r.exit_code == 0, r.final
    for lv in ("root", "srv"):
        assert images(old, "vg0", lv) == ["/dev/sda", "/dev/vda"]
    assert not old.md.arrays
