"""Issue 17: vgexport takes the VG's disks away from this host (the next step logs out of
them), so the handover's vgexport does not run while a process holds one of them open with
a plain open() (a dd, a VM): refused naming the process; done once it has gone."""

from __future__ import annotations

import sys

from test_server_move_three_commits import COMMIT1, COMMIT2, LUN0, Move

from reconciler import controller

DD = "pid 4242 (dd)"


def _at_commit1(tmp_path) -> Move:
    """Both servers converged on the first commit (the old one's disks on the new SAN)."""
    move = Move(tmp_path)
    c1 = move.commit(COMMIT1)
    assert move.converge("new", c1).exit_code == 0
    assert move.converge("old", c1).exit_code == 0
    return move


def test_vgexport_is_refused_while_a_process_holds_a_pv_of_the_vg_open(tmp_path):
    move = _at_commit1(tmp_path)
    old = move.old
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
    move = _at_commit1(tmp_path)
    old = move.old
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
    move = _at_commit1(tmp_path)
    old = move.old
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
    assert step.detail.startswith(
        "`vgexport vg0moved` not run (done: `vgchange --activate n vg0moved`): "
        f"the PV {LUN0} is held by dm-61 (device-mapper map vg0moved-orphan, uuid {left[0]}, "
        "still there; check what it is and whether anything uses it: dmsetup info dm-61, "
        f"lsblk {LUN0}); take it out of use here first"), step.detail
    assert not old.vg("vg0moved").exported
    assert not any(c.argv[0] == "vgexport" for c in old.calls)
    old.unhold(LUN0, "dm-61")
    assert move.converge("old", c2).exit_code == 0
    assert old.vg("vg0moved").exported


def test_a_process_that_opens_a_pv_after_vgchange_an_for_a_moment_is_waited_out(
        tmp_path, monkeypatch):
    """Right after vgchange -an, a process's open alone (a udev-started lvm reading the
    disk) is waited out for a few seconds before vgexport; a holder is not (above)."""
    move = _at_commit1(tmp_path)
    old = move.old
    real_run, real_openers = old.run, old.openers
    seen: list[dict] = []

    def run(cmd):
        result = real_run(cmd)
        if cmd.argv[:4] == ("vgchange", "--activate", "n", "vg0moved") and not seen:
            old.open_device(LUN0, 4343, "lvm")
        return result

    def openers(paths, **kw):
        found = real_openers(paths, **kw)
        if any("lvm" in " ".join(w) for w in found.values()):
            seen.append(found)
            old.close_device(LUN0, 4343)  # gone by the next look
        return found
    monkeypatch.setattr(old, "run", run)
    monkeypatch.setattr(old, "openers", openers)
    r = move.converge("old", move.commit(COMMIT2))
    assert r.exit_code == 0 and seen and old.vg("vg0moved").exported
    # in the same step: vgchange -an ran once, not again in a later pass after a refusal
    assert [c.argv[:4] for c in old.calls].count(("vgchange", "--activate", "n", "vg0moved")) == 1


def test_holders_that_cannot_be_read_after_vgchange_an_refuse_vgexport(tmp_path, monkeypatch):
    """Between vgchange -an and vgexport the holders are what sysfs lists then: when it
    cannot be read, vgexport is refused saying so, not judged on the maps observed before
    vgchange -an removed them."""
    move = _at_commit1(tmp_path)
    old = move.old
    real_run, real_read = old.run, old.read
    after: list[int] = []

    def run(cmd):
        if cmd.argv[:4] == ("vgchange", "--activate", "n", "vg0moved"):
            after.append(1)
        return real_run(cmd)

    def read(path, **kw):
        # the executor's read (not observation's, which has no answer for such an error)
        callers = {sys._getframe(i).f_code.co_name for i in range(1, 6)}
        if after and path.endswith("/holders/") and "_holders_now" in callers:
            raise PermissionError(13, "Permission denied", path)
        return real_read(path, **kw)
    monkeypatch.setattr(old, "run", run)
    monkeypatch.setattr(old, "read", read)
    r = move.converge("old", move.commit(COMMIT2))
    assert r.exit_code == controller.EXIT_ERROR
    step = next(x for x in r.report.results if x.step.key == "vg:vg0moved:export")
    assert "`vgexport vg0moved` not run" in step.detail
    assert "/holders/ lists (it cannot be read now)" in step.detail, step.detail
    assert "dm-" not in step.detail  # (no map observed before vgchange -an is named)
    assert not old.vg("vg0moved").exported
