"""DRBD end to end on the simulator: two nodes, one reconciler each (issue 11)."""

from __future__ import annotations

import pytest
from support.drbdsim import blocked, incident, pair  # noqa: F401 - pair: fixture

from reconciler import actions, controller, observing


def test_create_and_first_sync_from_the_declared_node_only(pair):
    loaded = pair.spec()
    out = pair.converge(loaded)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values()), [str(r.final) for r in out.values()]
    a, b = pair.res("node-a"), pair.res("node-b")
    assert (a.role, b.role, a.disk, b.disk, a.cstate) == ("Primary", "Secondary", "UpToDate", "UpToDate", "Connected")
    assert ("drbdadm", "primary", "--force", "r0") in pair.drbdadm_calls("node-a")
    assert not any("--force" in c for c in pair.drbdadm_calls("node-b"))
    pair.net.write("node-a", 0, "payload")
    assert pair.res("node-b").data == pair.res("node-a").data != ""
    # the resource file is ours and the same on both nodes
    fa = pair.hosts["node-a"].md.files["/etc/drbd.d/r0.res"]
    assert fa == pair.hosts["node-b"].md.files["/etc/drbd.d/r0.res"] and fa.startswith("# managed by reconciler")


def test_no_first_sync_without_initial_sync_from(pair):
    loaded = pair.spec(extra="")
    out = pair.rounds(loaded, 6)
    assert "initial_sync_from" in blocked(out["node-a"])
    assert out["node-a"].exit_code == controller.EXIT_ERROR
    assert not any("--force" in c for n in ("node-a", "node-b") for c in pair.drbdadm_calls(n))
    assert pair.res("node-a").disk == pair.res("node-b").disk == "Inconsistent"


def test_sync_progress_is_in_flight_with_percent_speed_and_eta(pair):
    loaded = pair.spec(extra='initial_sync_from = "node-a"\nresync_rate = "4M"\n[drbd.r0.disk]\nc_plan_ahead = 0')
    pair.rounds(loaded, 3, seconds=0.5)
    r = pair.one_pass("node-b", loaded)
    sync = [f for f in r.final.in_flight if f.key == "drbd:r0:sync"]
    assert sync, str(r.final)
    assert 0 < sync[0].percent < 100 and sync[0].speed == 4096 * 1024 and sync[0].eta > 0


def test_failover_demote_refused_while_mounted_then_promote(pair):
    pair.converge(pair.spec())
    pair.net.write("node-a", 0, "before failover")
    pair.node("node-a").mounts[0] = ["/mnt/d"]
    moved = pair.spec(role_a="secondary", role_b="primary")
    out = pair.rounds(moved, 2)
    assert "/mnt/d" in blocked(out["node-a"]) and "never unmounts" in blocked(out["node-a"])
    assert pair.res("node-a").role == "Primary"
    assert any(f.what.startswith("waiting for node-a") for f in out["node-b"].final.in_flight)
    assert ("drbdadm", "primary", "r0") not in pair.drbdadm_calls("node-b")  # waits for the peer
    pair.node("node-a").mounts.clear()  # the test unmounts
    out = pair.converge(moved)
    assert all(r.exit_code == 0 for r in out.values())
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Secondary", "Primary")
    assert pair.res("node-a").data == pair.res("node-b").data


def test_split_brain_is_left_alone_then_resolved_with_the_declared_victim(pair):
    loaded = pair.spec()
    pair.converge(loaded)
    pair.net.cut("node-a", "node-b")
    pair.by_hand("node-b", "drbdadm", "primary", "r0")  # someone promoted node-b during the cut
    pair.net.write("node-a", 0, "survivor's change")
    pair.net.write("node-b", 0, "victim's change")
    survivor = pair.res("node-a").data
    pair.net.restore("node-a", "node-b")
    assert pair.res("node-a").cstate == pair.res("node-b").cstate == "StandAlone"
    before = {n: len(pair.drbdadm_calls(n)) for n in ("node-a", "node-b")}
    out = pair.rounds(loaded, 3)
    for n in ("node-a", "node-b"):
        assert "SPLIT BRAIN" in blocked(out[n]) and out[n].exit_code == controller.EXIT_ERROR
        assert len(pair.drbdadm_calls(n)) == before[n]  # nothing touched
    assert incident(out["node-a"]) == incident(out["node-b"])  # both print the same incident
    resolve = pair.spec(extra=f'initial_sync_from = "node-a"\nsplit_brain_victim = "node-b@{incident(out["node-a"])}"')
    out = pair.converge(resolve)
    assert all(r.exit_code == 0 for r in out.values()), [str(r.final) for r in out.values()]
    assert pair.res("node-a").data == pair.res("node-b").data == survivor
    assert ("drbdadm", "--", "--discard-my-data", "connect", "r0") in pair.drbdadm_calls("node-b")
    assert not any("--discard-my-data" in c for c in pair.drbdadm_calls("node-a"))
    assert all("/run/reconciler/drbd/r0.split-brain" not in pair.hosts[n].md.files for n in ("node-a", "node-b"))


def test_diskless_is_reported_then_a_replacement_disk_resyncs(pair):
    loaded = pair.spec()
    pair.converge(loaded)
    pair.net.fail_disk("node-b", "/dev/vdb")
    pair.net.write("node-a", 0, "while b is diskless")
    out = pair.rounds(loaded, 1)
    assert "DISKLESS on node-b" in blocked(out["node-b"]) and "replacement" in blocked(out["node-b"])
    replaced = pair.spec(disk_b="/dev/vdc")
    out = pair.converge(replaced)
    assert all(r.exit_code == 0 for r in out.values()), [str(r.final) for r in out.values()]
    assert pair.res("node-b").disk == "UpToDate" and pair.res("node-b").disk_path == "/dev/vdc"
    assert pair.res("node-b").data == pair.res("node-a").data


def test_diskless_replacement_refused_once_is_not_a_dead_end(pair):
    """A replacement disk whose create-md is refused once (a process had it open) must be
    taken up again once the process is gone; the resource file already names it."""
    loaded = pair.spec()
    pair.converge(loaded)
    pair.net.fail_disk("node-b", "/dev/vdb")
    replaced = pair.spec(disk_b="/dev/vdc")
    pair.hosts["node-b"].open_device("/dev/vdc", 4242, "dd")
    out = pair.rounds(replaced, 1)
    assert out["node-b"].exit_code == controller.EXIT_ERROR
    pair.hosts["node-b"].close_device("/dev/vdc", 4242)
    out = pair.converge(replaced)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values()), \
        [str(r.final) for r in out.values()]
    assert pair.res("node-b").disk == "UpToDate" and pair.res("node-b").disk_path == "/dev/vdc"


def test_create_md_is_refused_on_a_disk_that_holds_a_file_system(pair):
    pair.hosts["node-a"].model.device("/dev/vdb").signature = "ext4"
    loaded = pair.spec()
    out = pair.rounds(loaded, 3)
    assert "holds ext4" in blocked(out["node-a"]) and 'wipe = "serial:sim-vdb"' in blocked(out["node-a"])
    assert not any(c[:2] == ("drbdadm", "create-md") or "create-md" in c for c in pair.drbdadm_calls("node-a"))
    # declared expendable, bound to this disk: metadata is created with --force
    wiped = pair.spec(wipe_a='wipe = "serial:sim-vdb"')
    out = pair.converge(wiped)
    assert ("drbdadm", "--", "--force", "create-md", "r0") in pair.drbdadm_calls("node-a")
    assert all(r.exit_code == 0 for r in out.values())


def test_a_resource_file_not_written_by_us_is_never_overwritten(pair):
    pair.hosts["node-a"].md.files["/etc/drbd.d/r0.res"] = "resource r0 { }\n"
    out = pair.rounds(pair.spec(), 1)
    assert "was not written by the reconciler" in blocked(out["node-a"])
    assert "+# managed by reconciler" in blocked(out["node-a"])
    assert pair.hosts["node-a"].md.files["/etc/drbd.d/r0.res"] == "resource r0 { }\n"


DUAL = 'initial_sync_from = "node-a"\nallow_two_primaries = true\nresync_rate = "4M"\n[drbd.r0.disk]\nc_plan_ahead = 0'


def _promotions(pair, loaded, rounds: int) -> list[tuple[str, tuple]]:
    """Run ``rounds`` rounds; for each plain ``drbdadm primary`` a node ran, the states
    (own disk, peer disk, connection) it saw just before its pass."""
    seen = []
    for _ in range(rounds):
        for n in ("node-a", "node-b"):
            r = pair.node(n).res.get(0)
            before = (r.disk, pair.net.peer(pair.node(n), r).disk if pair.net.peer(pair.node(n), r) else None,
                      r.cstate) if r else None
            calls = len(pair.drbdadm_calls(n))
            pair.one_pass(n, loaded)
            if ("drbdadm", "primary", "r0") in pair.drbdadm_calls(n)[calls:]:
                seen.append((n, before))
        pair.clock.advance(1.0)
    return seen


def test_dual_primary_both_promote_only_when_both_are_uptodate_and_connected(pair):
    loaded = pair.spec(role_b="primary", extra=DUAL)
    seen = _promotions(pair, loaded, 40)
    assert pair.hosts["node-a"].md.files["/etc/drbd.d/r0.res"].count("allow-two-primaries yes;") == 1
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Primary", "Primary")
    assert seen and all(before == ("UpToDate", "UpToDate", "Connected") for _, before in seen), seen
    pair.net.write("node-b", 0, "written on b")
    assert pair.res("node-a").data == pair.res("node-b").data
    # a replacement disk on node-b: both declared primary, node-b secondary while it resyncs
    pair.node("node-b").res[0].role = "Secondary"  # the operator demoted it to replace the disk
    pair.net.fail_disk("node-b", "/dev/vdb")
    replaced = pair.spec(role_b="primary", extra=DUAL, disk_b="/dev/vdc")
    seen = _promotions(pair, replaced, 40)
    assert [n for n, _ in seen] == ["node-b"] and seen[0][1] == ("UpToDate", "UpToDate", "Connected"), seen
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Primary", "Primary")
    assert pair.res("node-a").data == pair.res("node-b").data


def test_dual_primary_the_first_node_waits_for_the_peers_resync(pair):
    loaded = pair.spec(role_a="secondary", extra=DUAL)
    pair.converge(loaded)
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Secondary", "Secondary")
    pair.net.fail_disk("node-b", "/dev/vdb")
    seen = _promotions(pair, pair.spec(role_b="primary", extra=DUAL, disk_b="/dev/vdc"), 40)
    assert sorted(n for n, _ in seen) == ["node-a", "node-b"], seen
    assert all(before == ("UpToDate", "UpToDate", "Connected") for _, before in seen), seen
    assert pair.res("node-b").data == pair.res("node-a").data



def test_dual_primary_with_a_cluster_fs_the_link_cut_is_reported_never_fixed(pair):
    # seed 003 §6: GFS2 mounted on both primaries. A demotion is refused while mounted; the
    # link cut leaves DRBD's own policy in charge (both stay primary, each writes its own
    # copy): reported on both (degraded, in flight on the peer), nothing demoted, discarded
    # or promoted without the peer; the split brain at reconnection is reported, not resolved
    loaded = pair.spec(role_b="primary", extra=DUAL)
    pair.converge(loaded)
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Primary", "Primary")
    for n in ("node-a", "node-b"):
        pair.node(n).mounts[0] = ["/mnt/gfs2"]
    out = pair.rounds(pair.spec(role_b="secondary", extra=DUAL), 2)
    assert "to become secondary, /dev/drbd0 must be closed" in blocked(out["node-b"])
    assert "(/mnt/gfs2)" in blocked(out["node-b"]) and "never unmounts" in blocked(out["node-b"])
    assert ("drbdadm", "secondary", "r0") not in pair.drbdadm_calls("node-b")
    before = {n: len(pair.drbdadm_calls(n)) for n in ("node-a", "node-b")}

    pair.net.cut("node-a", "node-b")
    pair.net.write("node-a", 0, "on a")
    pair.net.write("node-b", 0, "on b")
    out = pair.rounds(loaded, 3)
    for n, peer in (("node-a", "node-b"), ("node-b", "node-a")):
        r = out[n]
        assert pair.res(n).role == "Primary" and pair.res(n).cstate == "WFConnection"
        cond = [c for c in r.final.conditions if c.object == "drbd r0"]
        assert [c.kind for c in cond] == [actions.Health.DEGRADED], r.final.conditions
        assert f"{n} is primary and not connected to {peer} (WFConnection)" in cond[0].detail
        assert f"{peer} may be primary and written too" in cond[0].detail
        waits = [f for f in r.final.in_flight if f.waiting_on == peer]
        assert waits and "no demotion, no discard" in waits[0].what, r.final
        assert r.exit_code == controller.EXIT_PENDING, str(r.final)
    assert {n: len(pair.drbdadm_calls(n)) for n in before} == before  # nothing run

    # node-b's operator unmounts and demotes it by hand: not promoted again without node-a
    pair.node("node-b").mounts.clear()
    pair.by_hand("node-b", "drbdadm", "secondary", "r0")
    out = pair.rounds(loaded, 2)
    waits = [f.what for f in out["node-b"].final.in_flight if f.waiting_on == "node-a"]
    assert any("not promoted: node-a cannot be reached" in w for w in waits), out["node-b"].final
    assert ("drbdadm", "primary", "r0") not in pair.drbdadm_calls("node-b")[before["node-b"]:]

    # the link back: both wrote, a split brain: reported with its incident, nothing discarded
    pair.net.restore("node-a", "node-b")
    out = pair.rounds(loaded, 2)
    for n in ("node-a", "node-b"):
        assert "SPLIT BRAIN, incident" in blocked(out[n]), blocked(out[n])
        assert not any("--discard-my-data" in c for c in pair.drbdadm_calls(n))
    assert incident(out["node-a"]) == incident(out["node-b"])



def _split(pair):
    pair.net.cut("node-a", "node-b")
    pair.by_hand("node-b", "drbdadm", "primary", "r0")  # node-a is primary too: (2pri)
    pair.net.write("node-a", 0, "a")
    pair.net.write("node-b", 0, "b")


def test_after_sb_disconnect_leaves_the_split_brain_to_the_operator(pair):
    loaded = pair.spec(extra='initial_sync_from = "node-a"\n[drbd.r0.net]\nafter_sb_2pri = "disconnect"')
    pair.converge(loaded)
    assert "after-sb-2pri disconnect;" in pair.hosts["node-a"].md.files["/etc/drbd.d/r0.res"]
    _split(pair)
    pair.net.restore("node-a", "node-b")
    out = pair.rounds(loaded, 1)
    assert "SPLIT BRAIN" in blocked(out["node-a"]) and pair.res("node-a").cstate == "StandAlone"


def test_the_simulator_refuses_to_guess_an_automatic_after_sb_policy(pair):
    from reconciler.errors import UnsupportedCommand
    loaded = pair.spec(extra='initial_sync_from = "node-a"\n[drbd.r0.net]\nafter_sb_2pri = "violently-as0p"')
    pair.converge(loaded)
    _split(pair)
    with pytest.raises(UnsupportedCommand, match="violently-as0p"):
        pair.net.restore("node-a", "node-b")


def _observed(pair, name, loaded):
    env = pair.env(name)
    targets = observing.drbd_targets(loaded.for_node(name), name)
    return observing.observe(env.runner, host="local", devices=(), resolve=env.resolve,
                             drbd_targets=targets).drbd.resources["r0"]


def test_observation_delivers_what_the_resource_file_says(pair):
    """The planner reads the resource file's facts from the observed state (issue 21): ours
    or not (the marker), and the backing disk it gives this node (each node its own)."""
    loaded = pair.spec(disk_b="/dev/vdc")
    pair.converge(loaded)
    a, b = _observed(pair, "node-a", loaded), _observed(pair, "node-b", loaded)
    assert (a.managed, a.config_disk, b.managed, b.config_disk) == (
        True, "/dev/vdb", True, "/dev/vdc")
    pair.hosts["node-a"].md.files["/etc/drbd.d/r0.res"] = "resource r0 {\n}\n"
    a = _observed(pair, "node-a", loaded)
    assert (a.managed, a.config_disk) == (False, None)
    assert "was not written by the reconciler" in blocked(pair.one_pass("node-a", loaded))


def test_a_split_brain_survives_a_reboot_of_either_node(pair):
    """DRBD keeps what each side changed while disconnected in its metadata (the generation
    identifiers and the bitmap): a node rebooted after writing during a cut still has those
    changes to tell, so the handshake is a split brain, never a resync that silently drops
    one side's writes (found by the DRBD random walk, seed 10)."""
    loaded = pair.spec()
    pair.converge(loaded)
    pair.net.cut("node-a", "node-b")
    pair.by_hand("node-b", "drbdadm", "primary", "r0")
    pair.net.write("node-a", 0, "the primary's change")
    pair.net.write("node-b", 0, "a change on the node promoted by hand")
    pair.by_hand("node-b", "drbdadm", "secondary", "r0")
    pair.net.nodes["node-a"].reboot()  # the primary crashes and comes back
    assert pair.by_hand("node-a", "modprobe", "drbd").ok
    assert pair.by_hand("node-a", "drbdadm", "up", "r0").ok
    pair.net.restore("node-a", "node-b")
    assert pair.res("node-a").cstate == pair.res("node-b").cstate == "StandAlone"
    out = pair.rounds(loaded, 1)
    assert incident(out["node-a"]) == incident(out["node-b"])
