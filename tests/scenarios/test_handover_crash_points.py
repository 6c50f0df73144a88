"""Issue 17, finding 8: the old server's handover (seed 004, commit 2) crashed, and rebooted,
right after each command that changes the host, enumerated from one clean run rather than
hand-picked. After every crash the controller's real pass, from a fresh process, must
finish the handover by itself, with:

* the data intact: the LVs old keeps, and the copies new takes over (simulator content);
* no copy left active, nor autoactivated at a later reboot, next to the LV whose file
  system UUID it carries (udev's autoactivation at boot is the simulator's);
* the takeover on new (commit 3) converging on complete copies.

Then random walks (fixed seeds) between commits 1 and 2 with crashes.
"""

from __future__ import annotations

import copy
import random

import pytest
from test_server_move_three_commits import COMMIT1, COMMIT2, COMMIT3, VG0_ON_VDA, Move

from reconciler import controller
from reconciler.runner import Command
from reconciler.simulate.host import SimulatedCrash

LVS = ("root", "srv")


def _prepared(tmp_path) -> tuple[Move, dict[str, str]]:
    move = Move(tmp_path)
    for lv in LVS:
        move.old.mkfs(f"/dev/vg0/{lv}", "ext4")
        move.old.fill(f"/dev/vg0/{lv}", lv)
    data = {lv: move.old.fingerprint(f"/dev/vg0/{lv}") for lv in LVS}
    c1 = move.commit(COMMIT1)
    assert move.converge("new", c1).exit_code == 0
    assert move.converge("old", c1).exit_code == 0
    return move, data


def _twins_active(host) -> list[str]:
    """Active LVs sharing a file system UUID, and LVs that share one with an LV of a VG
    this host would activate at boot while they have autoactivation on (and are in such a
    VG themselves)."""
    seen: dict[str, list] = {}
    for vg in host.model.vgs.values():
        for lv in vg.lvs.values():
            if lv.parent is None and lv.fs_uuid:
                seen.setdefault(lv.fs_uuid, []).append(lv)
    out = []
    for lvs in seen.values():
        active = [lv.full_name for lv in lvs if lv.is_active]
        if len(active) > 1:
            out.append(f"active together: {active}")
        boot = [lv.full_name for lv in lvs if lv.autoactivation and not lv.vg.exported]
        if len(boot) > 1:
            out.append(f"autoactivated together at boot: {boot}")
    return out


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return _prepared(tmp_path_factory.mktemp("handover"))


def _clean_run(prepared) -> list[str]:
    move, _ = copy.deepcopy(prepared)
    before = len(move.old.calls)
    assert move.converge("old", move.commit(COMMIT2)).exit_code == 0
    return [" ".join(c.argv) for c in move.old.calls[before:] if c.mutates]


def _crash_reboot_converge(prepared, after: int, ran: list[str]) -> str | None:
    """Crash old right after its ``after``-th command of the handover, reboot, run fresh
    passes; then a later reboot, and the takeover. What went wrong, or None."""
    move, data = copy.deepcopy(prepared)
    old, new = move.old, move.new
    c2 = move.commit(COMMIT2)
    old.crash_after(after)
    with pytest.raises(SimulatedCrash):
        move.converge("old", c2)
    assert " ".join(old.calls[-1].argv) == ran[after - 1]
    old.recover()  # the reboot: udev autoactivates what it may
    move.memory["old"] = controller.Memory()
    r = move.converge("old", c2)
    if r.exit_code != 0:
        return f"not converged: {r.final.blocked}"
    if _twins_active(old):
        return f"{_twins_active(old)}"
    if not old.vg("vg0moved").exported or sorted(old.vg("vg0moved").lvs) != list(LVS):
        return f"vg0moved: {sorted(old.vg('vg0moved').lvs)}"
    for lv in LVS:
        if old.fingerprint(f"/dev/vg0/{lv}") != data[lv]:
            return f"vg0/{lv}'s data changed"
        if old.lv("vg0", lv).kind != "linear":
            return f"vg0/{lv} is {old.lv('vg0', lv).kind}"
        tags = [t for t in old.lv("vg0", lv).tags if t.startswith("reconciler_")]
        if tags:
            return f"vg0/{lv} keeps {tags}"
    # a later reboot activates nothing twice
    old.crash_after(0)
    old.recover()
    if _twins_active(old):
        return f"after a later reboot: {_twins_active(old)}"
    move.memory["old"] = controller.Memory()
    if move.converge("old", c2).exit_code != 0:
        return "not converged after a later reboot"
    # and new takes complete copies over
    c3 = move.commit(COMMIT3)
    if move.converge("old", c3).exit_code != 0:
        return "commit 3 on old"
    r = move.converge("new", c3)
    if r.exit_code != 0:
        return f"takeover: {r.final.blocked}"
    for lv in LVS:
        if new.fingerprint(f"/dev/vgnew/{lv}") != data[lv]:
            return f"vgnew/{lv} taken over without its data"
        if new.lv("vgnew", lv).fs_uuid != old.lv("vg0", lv).fs_uuid:
            return f"vgnew/{lv} has another file system"
    return None


def test_a_crash_and_reboot_after_any_handover_command_is_finished_by_the_next_passes(
        prepared):
    ran = _clean_run(prepared)
    assert ran[-1] == "vgexport vg0moved" and len(ran) > 10, ran
    wrong = {}
    for after in range(1, len(ran) + 1):
        why = _crash_reboot_converge(prepared, after, ran)
        if why:
            wrong[f"{after}: {ran[after - 1]}"] = why
    assert wrong == {}


def test_a_crash_between_the_split_and_the_copys_tag_is_finished(prepared):
    # finding 8 itself: the copy, untagged, is autoactivated at boot next to root (same
    # file system UUID); the handover used to block for good ("rename it")
    ran = _clean_run(prepared)
    split = next(i for i, c in enumerate(ran, 1) if "--splitmirrors" in c)
    assert "--addtag reconciler_handover " not in ran[split - 1]
    assert _crash_reboot_converge(prepared, split, ran) is None


def test_an_untagged_copy_whose_uuid_no_pending_tag_names_still_blocks(prepared):
    # identity, not name: an LV merely named root_handover is not taken for the copy
    move, _ = copy.deepcopy(prepared)
    old = move.old
    old.add_lv("vg0", "root_handover", 8 * 1024**2)
    r = move.run("old", move.commit(COMMIT2))
    reason = {b.object: b.reason for b in r.plan.blocked}.get("lv vg0/root_handover", "")
    assert "no handover of this reconciler split off" in reason, r.plan.blocked
    assert "rename it (lvrename), and the handover goes on" in reason
    assert old.lv("vg0", "root_handover").is_active  # not touched


def test_a_copy_split_before_the_spec_went_back_to_copies_is_not_handed_over_for_the_new(
        prepared):
    # handover half done (root split off, then a crash), the spec goes back to commit 1
    # (root gets a new copy on the iSCSI disk), then forward again: the old copy is not
    # taken for root's; the reason says what to check and do, and doing it finishes
    move, data = copy.deepcopy(prepared)
    old = move.old
    ran = _clean_run(prepared)
    after = next(i for i, c in enumerate(ran, 1) if c.startswith("lvchange --deltag"))
    old.crash_after(after)  # root's copy split off and finished
    with pytest.raises(SimulatedCrash):
        move.converge("old", move.commit(COMMIT2))
    old.recover()
    move.memory["old"] = controller.Memory()
    assert move.converge("old", move.commit(COMMIT1)).exit_code == 0
    assert old.lv("vg0", "root").kind == "raid1"
    c2 = move.commit(COMMIT2)
    r = move.converge("old", c2)
    assert r.exit_code == controller.EXIT_ERROR
    (block,) = r.final.blocked
    assert block.object == "lv vg0/root_handover"
    assert "root has a newer copy" in block.reason
    assert "lvremove vg0/root_handover" in block.reason
    assert old.lv("vg0", "root").kind == "raid1"  # nothing split, nothing handed over
    assert old.run(Command(argv=("lvremove", "--yes", "vg0/root_handover"), mutates=True)).rc == 0
    assert move.converge("old", c2).exit_code == 0
    c3 = move.commit(COMMIT3)
    assert move.converge("old", c3).exit_code == 0
    assert move.converge("new", c3).exit_code == 0
    for lv in LVS:
        assert move.new.fingerprint(f"/dev/vgnew/{lv}") == data[lv]
        assert old.fingerprint(f"/dev/vg0/{lv}") == data[lv]


@pytest.mark.parametrize("seed", range(24))
def test_random_walks_between_the_mirror_and_the_handover_with_crashes(prepared, seed):
    """Commits 1 and 2 in random order, passes cut short by crashes and reboots; the
    handover then runs to its end, or is blocked for a reason that says what to do, and
    never with a file-system UUID active twice or data lost."""
    rng = random.Random(seed)
    move, data = copy.deepcopy(prepared)
    old, log = move.old, []
    for _ in range(6):
        text = rng.choice([COMMIT1, COMMIT2, COMMIT2])
        spec = move.commit(text)
        if rng.random() < 0.5:
            old.crash_after(rng.randint(1, 8))
        for _ in range(rng.randint(1, 4)):
            try:
                r = move.run("old", spec)
                log.append((text is COMMIT1, r.exit_code))
            except SimulatedCrash:
                old.recover()
                move.memory["old"] = controller.Memory()
                log.append("crash")
            old.clock.advance(5)
        for lv in LVS:
            assert old.fingerprint(f"/dev/vg0/{lv}") == data[lv], log
    old.crash_after(10**9)  # a crash still armed: never, from here
    c2 = move.commit(COMMIT2)
    r = move.converge("old", c2)
    assert _twins_active(old) == [], log
    for lv in LVS:
        assert old.fingerprint(f"/dev/vg0/{lv}") == data[lv], log
    if r.exit_code != 0:
        for b in r.final.blocked:
            assert "has a newer copy" in b.reason and "lvremove" in b.reason, (b, log)
        return
    c3 = move.commit(COMMIT3)
    assert move.converge("old", c3).exit_code == 0
    assert move.converge("new", c3).exit_code == 0, log
    for lv in LVS:
        assert move.new.fingerprint(f"/dev/vgnew/{lv}") == data[lv], log


WAY_BACK = COMMIT1.split("[vg.vg0]")[0] + VG0_ON_VDA


def test_copies_split_off_by_a_handover_taken_out_of_the_spec_say_what_to_do(prepared):
    # both copies split off (and finished), a crash, then the handover leaves the spec and
    # the iSCSI disk leaves the VG: the copies are the reconciler's own; they are never
    # removed from here, and the reason says so and what to check
    move, data = copy.deepcopy(prepared)
    old = move.old
    ran = _clean_run(prepared)
    after = [i for i, c in enumerate(ran, 1) if c.startswith("lvchange --deltag")][1]
    old.crash_after(after)
    with pytest.raises(SimulatedCrash):
        move.converge("old", move.commit(COMMIT2))
    old.recover()
    move.memory["old"] = controller.Memory()
    back = move.commit(WAY_BACK)
    r = move.converge("old", back)
    assert r.exit_code == controller.EXIT_ERROR
    reasons = {(b.object, b.reason) for b in r.final.blocked}
    for lv in LVS:
        assert any(o == f"lv vg0/{lv}_handover" and "the spec has no handover any more" in why
                   and f"lvremove vg0/{lv}_handover" in why for o, why in reasons), reasons
        assert not old.lv("vg0", f"{lv}_handover").is_active
    assert _twins_active(old) == []
    for lv in LVS:
        cmd = Command(argv=("lvremove", "--yes", f"vg0/{lv}_handover"), mutates=True)
        assert old.run(cmd).rc == 0
    assert move.converge("old", back).exit_code == 0
    assert [pv.device.path for pv in old.vg("vg0").pvs] == ["/dev/vda"]
    for lv in LVS:
        assert old.fingerprint(f"/dev/vg0/{lv}") == data[lv]
