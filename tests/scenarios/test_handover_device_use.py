"""Issue 17: vgexport takes the VG's disks away from this host (the next step logs out of
them), so the handover's vgexport does not run while a process holds one of them open with
a plain open() (a dd, a VM): refused naming the process; done once it has gone."""

from __future__ import annotations

from test_server_move_three_commits import COMMIT1, COMMIT2, LUN0, Move

from reconciler import controller

DD = "pid 4242 (dd)"


def test_vgexport_is_refused_while_a_process_holds_a_pv_of_the_vg_open(tmp_path):
    move = Move(tmp_path)
    old = move.old
    c1 = move.commit(COMMIT1)
    assert move.converge("new", c1).exit_code == 0
    assert move.converge("old", c1).exit_code == 0
    old.open_device(LUN0, 4242, "dd")
    c2 = move.commit(COMMIT2)
    r = move.converge("old", c2)
    assert r.exit_code == controller.EXIT_ERROR
    step = next(x for x in r.report.results if x.step.key == "vg:vg0moved:export")
    assert str(step.outcome) == "failed" and not step.results
    assert f"the PV {LUN0} is open by {DD}; stop it first" in step.detail
    assert not old.vg("vg0moved").exported
    assert not any(c.argv[0] == "vgexport" for c in old.calls)
    old.close_device(LUN0, 4242)
    assert move.converge("old", c2).exit_code == 0
    assert old.vg("vg0moved").exported
