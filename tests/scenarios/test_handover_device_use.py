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


MPATH_UUID = "mpath-3600140512345678901234567890abcde"


def test_vgexport_is_refused_while_a_map_not_of_its_vg_holds_a_pv(tmp_path):
    """Issue 22's note (the probe): a holder of a PV that is not a map of the VG's own LVs
    (here a multipath map, told by its dm uuid, read in sysfs right before the step) is no
    use of vgexport's: refused naming it, with what to check; done once it has gone. The
    VG's own LVs' maps, active until its vgchange -an, are its own."""
    move = Move(tmp_path)
    old = move.old
    c1 = move.commit(COMMIT1)
    assert move.converge("new", c1).exit_code == 0
    assert move.converge("old", c1).exit_code == 0
    old.add_device("/dev/mapper/mpatha", 1 << 30, major=253, minor=60, dm_uuid=MPATH_UUID)
    old.hold(LUN0, "dm-60")
    c2 = move.commit(COMMIT2)
    r = move.converge("old", c2)
    assert r.exit_code == controller.EXIT_ERROR
    step = next(x for x in r.report.results if x.step.key == "vg:vg0moved:export")
    assert str(step.outcome) == "failed" and not step.results
    assert (f"the PV {LUN0} is held by dm-60 (device-mapper map mpatha, uuid {MPATH_UUID}: "
            "not a device-mapper map of an LV of VG vg0moved; check what it is before the "
            f"disk leaves this host: dmsetup info dm-60, lsblk {LUN0})") in step.detail, \
        step.detail
    assert not old.vg("vg0moved").exported
    assert not any(c.argv[0] == "vgexport" for c in old.calls)
    old.unhold(LUN0, "dm-60")
    assert move.converge("old", c2).exit_code == 0
    assert old.vg("vg0moved").exported


def test_vgexport_is_refused_when_a_map_of_its_vg_outlives_its_vgchange_an(tmp_path,
                                                                         monkeypatch):
    """REVIEW8c F2: a map of the VG's own (its uuid carries the VG's) that ``vgchange -an``
    does not remove (a map left by a crashed lvconvert or pvmove, or of an LV another host
    removed while it was active here, perhaps mounted) is the step's own before its
    ``vgchange -an``, and must be gone after it: checked again between the two commands,
    refused naming it before vgexport hands the disk over; done once it has gone."""
    move = Move(tmp_path)
    old = move.old
    c1 = move.commit(COMMIT1)
    assert move.converge("new", c1).exit_code == 0
    assert move.converge("old", c1).exit_code == 0
    left: list[str] = []
    real = old.run

    def run(cmd):
        result = real(cmd)
        if cmd.argv[:4] == ("vgchange", "--activate", "n", "vg0moved") and not left:
            uuid = "LVM-" + old.vg("vg0moved").uuid.replace("-", "") + "G" * 32
            old.add_device("/dev/mapper/vg0moved-orphan", 1 << 20, major=253, minor=61,
                           dm_uuid=uuid)
            old.hold(LUN0, "dm-61")
            left.append(uuid)
        return result
    monkeypatch.setattr(old, "run", run)
    c2 = move.commit(COMMIT2)
    r = move.converge("old", c2)
    assert r.exit_code == controller.EXIT_ERROR and left
    step = next(x for x in r.report.results if x.step.key == "vg:vg0moved:export")
    assert str(step.outcome) == "failed"
    assert [c.command.argv[0] for c in step.results] == ["vgchange"]
    assert f"after vgchange -an, the PV {LUN0} is held by dm-61" in step.detail, step.detail
    assert not old.vg("vg0moved").exported
    assert not any(c.argv[0] == "vgexport" for c in old.calls)
    old.unhold(LUN0, "dm-61")
    assert move.converge("old", c2).exit_code == 0
    assert old.vg("vg0moved").exported
