"""Failover after losing a node, declared (issue 20): without a cluster manager the survivor
of a lost primary is never promoted by itself; ``fenced = "NODE@INCIDENT"`` says the lost
node is fenced for that one incident, and only then is the survivor promoted. The incident
is "GENERATION-EPOCH-N": the generation the survivor holds, the epoch of its DRBD ledger
(random, drawn when the ledger was created), and N, the ordinal of the loss of its peer as
that ledger recorded it when a pass first saw it (a loss ends when a pass sees the nodes
connected, or that the survivor exchanged data with its peer since; the next is N + 1)."""

from __future__ import annotations

import json
import re

import pytest
from support.drbdsim import Pair

from reconciler import actions, controller, executing, status


@pytest.fixture
def pair(tmp_path):
    return Pair(tmp_path)


def report(r) -> str:
    return str(r.final)


def blocked(r) -> str:
    return "\n".join(b.reason for b in r.final.blocked)


def offered(r) -> str:
    """The incident of the fence declaration the pass offers ("GENERATION-EPOCH-N", printed once,
    in the form to write)."""
    found = set(re.findall(r'declare fenced = "node-a@([0-9A-F]{16}-[0-9A-F]{8}-[0-9]+)" in \[drbd\.r0\] once '
                           r'node-a is powered off or cut from its disk', report(r)))
    assert len(found) == 1, report(r)
    return found.pop()


def generation(pair, name) -> str:
    """The generation ``name`` holds (its current UUID, DRBD's flag bit masked)."""
    return f"{pair.res(name).uuids[0] & ~1:016X}"


def at(pair, name, n: int) -> str:
    """The incident of loss ``n`` at the generation ``name`` holds, under its DRBD ledger's
    epoch ("GENERATION-EPOCH-N")."""
    epoch = json.loads(pair.hosts[name].read(LEDGER))["epoch"]
    return f"{generation(pair, name)}-{epoch}-{n}"


def lose_node_a(pair) -> None:
    """node-a (the primary) dies: its reconciler stops and node-b cannot reach it."""
    pair.crash("node-a")
    pair.net.cut("node-a", "node-b")


def primary_calls(pair, name):
    return [c for c in pair.drbdadm_calls(name) if "primary" in c]


def test_the_survivor_is_not_promoted_without_a_declaration_and_is_told_what_to_declare(pair):
    pair.converge(pair.spec())
    pair.net.write("node-a", 0, "before the loss")
    lose_node_a(pair)
    moved = pair.spec(role_a="secondary", role_b="primary")
    out = pair.rounds(moved, 3)
    b = out["node-b"]
    assert "node-a" not in out  # down: no pass
    assert b.exit_code == controller.EXIT_PENDING and "split brain" in report(b)
    # the generation node-b holds since it lost node-a, and the first loss its ledger recorded
    incident = offered(b)
    assert incident == at(pair, "node-b", 1)
    # reconcile status (the daemon's status document) says it in the form to write
    doc = {"format": 1, "node": "node-b", "state": status.pass_state(b), "pid": 1,
           **status.pass_section(b, number=1, reason="test", started_at=0.0, finished_at=1.0,
                                 etas={})}
    assert (f'declare fenced = "node-a@{incident}" in [drbd.r0] once node-a is powered off or '
            f'cut from its disk') in status.render(doc)
    assert pair.res("node-b").role == "Secondary" and not primary_calls(pair, "node-b")


def test_a_fence_declared_for_this_incident_promotes_the_survivor_then_the_lost_node_resyncs(pair):
    pair.converge(pair.spec())
    pair.net.write("node-a", 0, "before the loss")
    before = pair.res("node-a").data
    lose_node_a(pair)
    moved = pair.spec(role_a="secondary", role_b="primary")
    incident = offered(pair.one_pass("node-b", moved))
    fenced = pair.spec(role_a="secondary", role_b="primary",
                       extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{incident}"')
    b = pair.converge_node("node-b", fenced)
    assert b.exit_code == controller.EXIT_IN_SYNC, report(b)
    assert pair.res("node-b").role == "Primary" and pair.res("node-b").data == before
    assert ("drbdadm", "primary", "r0") in pair.drbdadm_calls("node-b")
    assert not any("--force" in c for c in primary_calls(pair, "node-b"))
    # the promotion started a new generation: the declaration is spent
    assert at(pair, "node-b", 1) != incident
    pair.net.write("node-b", 0, "written on the survivor")
    # node-a comes back (secondary in the spec): it resyncs from node-b, no split brain
    pair.reboot("node-a")
    pair.net.restore("node-a", "node-b")
    out = pair.converge(fenced)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values()), [report(r) for r in out.values()]
    a, b = pair.res("node-a"), pair.res("node-b")
    assert (a.role, b.role, a.cstate, a.disk) == ("Secondary", "Primary", "Connected", "UpToDate")
    assert a.data == b.data != before
    assert not any("--discard-my-data" in c for n in ("node-a", "node-b") for c in pair.drbdadm_calls(n))


def test_a_fence_declared_for_another_incident_is_reported_and_ignored(pair):
    pair.converge(pair.spec())
    lose_node_a(pair)
    moved = pair.spec(role_a="secondary", role_b="primary")
    incident = offered(pair.one_pass("node-b", moved))
    stale = "0123456789ABCDEF-00000000-1"
    assert stale != incident
    out = pair.rounds(pair.spec(role_a="secondary", role_b="primary",
                                extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{stale}"'), 3)
    b = out["node-b"]
    assert b.exit_code == controller.EXIT_ERROR
    assert f'fenced = "node-a@{stale}"' in blocked(b) and "another incident" in blocked(b)
    assert f'"node-a@{incident}"' in blocked(b)
    assert pair.res("node-b").role == "Secondary" and not primary_calls(pair, "node-b")


def test_a_fence_spent_on_an_earlier_incident_does_not_promote_after_the_next_loss(pair):
    """A declaration left in the spec is bound to the incident it was written for: after a
    failover and the old node's return, losing the new primary's peer again is a new
    incident, and the old declaration promotes nothing."""
    pair.converge(pair.spec())
    lose_node_a(pair)
    moved = pair.spec(role_a="secondary", role_b="primary")
    incident = offered(pair.one_pass("node-b", moved))
    fenced = pair.spec(role_a="secondary", role_b="primary",
                       extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{incident}"')
    pair.converge_node("node-b", fenced)
    pair.reboot("node-a")
    pair.net.restore("node-a", "node-b")
    pair.converge(fenced)
    # a planned switch back to node-a (the old declaration still in the spec) ...
    back = pair.spec(role_a="primary", role_b="secondary",
                     extra=f'initial_sync_from = "node-a"\nfenced = "node-b@{incident}"')
    out = pair.converge(back)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values())
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Primary", "Secondary")
    # ... then node-a is lost again and the operator flips the roles, keeping the old fence
    pair.net.write("node-a", 0, "x")
    lose_node_a(pair)
    calls = len(primary_calls(pair, "node-b"))
    out = pair.rounds(fenced, 3)
    # (its promotion recorded it spent in node-b's ledger: refused as such)
    assert "already spent" in blocked(out["node-b"]) and out["node-b"].exit_code == controller.EXIT_ERROR
    assert f'fenced = "node-a@{incident}"' in blocked(out["node-b"])
    assert pair.res("node-b").role == "Secondary" and len(primary_calls(pair, "node-b")) == calls


def test_a_fence_does_not_make_a_survivor_without_uptodate_data_primary(pair):
    """node-b was still receiving the first sync when node-a was lost: its disk is
    Inconsistent, and a fence declaration does not make it usable."""
    loaded = pair.spec(extra='initial_sync_from = "node-a"\nresync_rate = "1M"\n[drbd.r0.disk]\nc_plan_ahead = 0')
    pair.rounds(loaded, 3, seconds=0.5)
    assert pair.res("node-b").cstate == "SyncTarget"
    lose_node_a(pair)
    fenced = pair.spec(role_a="secondary", role_b="primary",
                       extra='initial_sync_from = "node-a"\nfenced = "node-a@0123456789ABCDEF-00000000-1"\n'
                             'resync_rate = "1M"\n[drbd.r0.disk]\nc_plan_ahead = 0')
    out = pair.rounds(fenced, 3)
    assert out["node-b"].exit_code != controller.EXIT_IN_SYNC
    assert "Inconsistent" in report(out["node-b"])
    assert pair.res("node-b").role == "Secondary" and not primary_calls(pair, "node-b")


LEDGER = "/var/lib/reconciler/drbd.json"


def spent(pair, name) -> list[dict]:
    """The spent fence declarations ``name``'s DRBD ledger records (the file on its disk)."""
    text = pair.hosts[name].read(LEDGER)
    return json.loads(text).get("fences", []) if text else []


def test_a_declaration_seen_connected_is_spent_and_promotes_nothing_after_a_later_cut(pair):
    """(storage review) A Secondary that loses its peer keeps its generation, and so does a
    promotion made while connected: a declaration the link's return made moot would match
    the next cut too. Seen Connected while declared, it is spent (in the ledger on disk),
    and refused from then on."""
    pair.converge(pair.spec())
    moved = pair.spec(role_a="secondary", role_b="primary")
    pair.one_pass("node-a", moved)  # a planned switch: node-a demotes first
    assert pair.res("node-a").role == "Secondary"
    pair.net.cut("node-a", "node-b")  # incident X: the link is cut, node-a alive
    incident = offered(pair.one_pass("node-b", moved))
    fenced = pair.spec(role_a="secondary", role_b="primary",
                       extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{incident}"')
    pair.net.restore("node-a", "node-b")  # the link returns before node-b's pass
    pair.converge(fenced)
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Secondary", "Primary")
    assert spent(pair, "node-b") == [{"resource": "r0", "node": "node-b",
                                      "fenced": f"node-a@{incident}", "how": "connected"}]
    # node-b still holds X (a promotion while connected starts no new generation) ...
    assert at(pair, "node-b", 1) == incident
    pair.reboot("node-b")  # ... reboots cleanly and comes back to a cut link; node-a is alive
    pair.net.cut("node-a", "node-b")
    calls = len(primary_calls(pair, "node-b"))
    out = pair.rounds(fenced, 4, order=["node-b"])
    b = out["node-b"]
    assert pair.res("node-b").role == "Secondary" and len(primary_calls(pair, "node-b")) == calls
    assert b.exit_code == controller.EXIT_ERROR
    assert f'fenced = "node-a@{incident}"' in blocked(b) and "already spent" in blocked(b)
    assert "remove it" in blocked(b)


def test_a_fenced_promotion_spends_its_declaration_and_says_what_it_gives_up(pair):
    pair.converge(pair.spec())
    lose_node_a(pair)
    moved = pair.spec(role_a="secondary", role_b="primary")
    incident = offered(pair.one_pass("node-b", moved))
    fenced = pair.spec(role_a="secondary", role_b="primary",
                       extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{incident}"')
    b = pair.one_pass("node-b", fenced, dry_run=True)
    [promote] = [s for s in b.plan.steps if isinstance(s.action, actions.SetDrbdRole)]
    assert promote.action.fenced_incident == incident
    assert "whatever node-a wrote after the link was lost is given up" in promote.action.gives_up()
    assert incident in promote.action.describe() and incident in promote.action.key
    connected = actions.SetDrbdRole(resource="r0", role="Primary")
    assert (connected.key, connected.describe()) != (promote.action.key, promote.action.describe())
    assert not connected.gives_up()
    b = pair.converge_node("node-b", fenced)
    assert b.exit_code == controller.EXIT_IN_SYNC, report(b)
    assert pair.res("node-b").role == "Primary"
    assert spent(pair, "node-b") == [{"resource": "r0", "node": "node-b",
                                      "fenced": f"node-a@{incident}", "how": "used"}]


def test_a_promotion_planned_while_connected_is_not_run_once_the_link_drops_mid_pass(pair):
    pair.converge(pair.spec())
    moved = pair.spec(role_a="secondary", role_b="primary")
    pair.one_pass("node-a", moved)  # node-a demotes
    # node-b's pass rewrites its resource file (adjust), then promotes: the link drops
    # right after the adjust, between the plan and the promotion
    changed = pair.spec(role_a="secondary", role_b="primary",
                        extra='initial_sync_from = "node-a"\nresync_rate = "7M"')

    def cut(node, cmd):
        if node == "node-b" and "adjust" in cmd.argv:
            pair.net.cut("node-a", "node-b")
    pair.watchers.append(cut)
    b = pair.one_pass("node-b", changed)
    assert any("adjust" in c for c in pair.drbdadm_calls("node-b"))
    assert pair.res("node-b").cstate != "Connected"
    assert pair.res("node-b").role == "Secondary" and not primary_calls(pair, "node-b"), report(b)
    assert b.outcome("drbd:r0:role").outcome is executing.Outcome.DEFERRED


def test_a_survivor_still_holding_a_spent_generation_is_offered_the_next_loss_and_promoted(pair):
    """(storage review) The declaration for loss 1 was spent when the nodes were seen
    connected; nobody wrote since, so node-b still holds the same generation when node-a is
    lost again. The new loss is another incident (same generation, loss 2): the pass offers
    it, the old declaration left in the spec promotes nothing, the new one promotes node-b."""
    pair.converge(pair.spec())
    moved = pair.spec(role_a="secondary", role_b="primary")
    pair.one_pass("node-a", moved)  # a planned switch: node-a demotes first
    pair.net.cut("node-a", "node-b")
    first = offered(pair.one_pass("node-b", moved))
    old = pair.spec(role_a="secondary", role_b="primary",
                    extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{first}"')
    pair.net.restore("node-a", "node-b")
    pair.converge(old)  # seen connected: loss 1 is over, its declaration spent
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Secondary", "Primary")
    back = pair.spec(extra='initial_sync_from = "node-a"')
    pair.converge(back)  # node-a primary again, node-b secondary: nothing written since
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Primary", "Secondary")
    assert generation(pair, "node-b") == first.split("-")[0]
    pair.net.write("node-a", 0, "written before the second loss")
    data = pair.res("node-a").data
    lose_node_a(pair)
    # node-b holds the spent generation (the write went to both: no new generation) ...
    assert generation(pair, "node-b") == first.split("-")[0] and pair.res("node-b").data == data
    out = pair.rounds(old, 3, order=["node-b"])
    b = out["node-b"]
    assert pair.res("node-b").role == "Secondary" and b.exit_code == controller.EXIT_ERROR
    assert f'fenced = "node-a@{first}"' in blocked(b) and "already spent" in blocked(b)
    # ... and is offered the second loss at that generation, which promotes it
    second = offered(b)
    assert second == at(pair, "node-b", 2) != first
    new = pair.spec(role_a="secondary", role_b="primary",
                    extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{second}"')
    b = pair.converge_node("node-b", new)
    assert b.exit_code == controller.EXIT_IN_SYNC, report(b)
    assert pair.res("node-b").role == "Primary" and pair.res("node-b").data == data
    assert spent(pair, "node-b")[-1] == {"resource": "r0", "node": "node-b",
                                         "fenced": f"node-a@{second}", "how": "used"}


def test_a_loss_ends_when_the_nodes_are_seen_connected_even_with_nothing_declared(pair):
    """A declaration is never standing: the incident a pass printed during loss 1, written
    only after the link came back and was cut again, names an incident that is over."""
    pair.converge(pair.spec())
    moved = pair.spec(role_a="secondary", role_b="primary")
    pair.one_pass("node-a", moved)
    pair.net.cut("node-a", "node-b")
    first = offered(pair.one_pass("node-b", moved))
    pair.net.restore("node-a", "node-b")
    pair.one_pass("node-b", moved)  # seen connected (and promoted: node-a is secondary)
    pair.one_pass("node-b", pair.spec())  # the roles back as they were
    pair.one_pass("node-a", pair.spec())
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Primary", "Secondary")
    lose_node_a(pair)
    late = pair.spec(role_a="secondary", role_b="primary",
                     extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{first}"')
    calls = len(primary_calls(pair, "node-b"))
    out = pair.rounds(late, 3, order=["node-b"])
    b = out["node-b"]
    assert pair.res("node-b").role == "Secondary" and len(primary_calls(pair, "node-b")) == calls
    assert "another incident" in blocked(b) and offered(b) != first
    assert offered(b).split("-")[0] == first.split("-")[0]  # the same generation, loss 2


def test_the_incident_is_the_same_across_a_restart_of_the_reconciler_and_of_the_survivor(pair):
    """Derived from observation and the ledger, not from the reconciler's memory: what a
    dry run prints before anything is recorded, a pass after a crash of the reconciler, and
    a pass after the survivor's reboot (the peer still gone) all name the same incident,
    and the declaration written for it then promotes."""
    pair.converge(pair.spec())
    lose_node_a(pair)
    moved = pair.spec(role_a="secondary", role_b="primary")
    seen = [offered(pair.one_pass("node-b", moved, dry_run=True))]  # reconcile status
    assert spent(pair, "node-b") == [] and "losses" not in (pair.hosts["node-b"].read(LEDGER) or "")
    pair.crash_after("node-b", 1)  # the reconciler dies while it records the loss
    pair.one_pass("node-b", moved)
    pair.reboot("node-b")  # the survivor restarts too (DRBD down, the peer still gone)
    for _ in range(3):
        seen.append(offered(pair.one_pass("node-b", moved)))
    pair.memory["node-b"] = controller.Memory()  # the reconciler alone restarts
    seen.append(offered(pair.one_pass("node-b", moved)))
    pair.reboot("node-b")
    seen.append(offered(pair.one_pass("node-b", moved)))
    assert len(set(seen)) == 1, seen
    fenced = pair.spec(role_a="secondary", role_b="primary",
                       extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{seen[0]}"')
    b = pair.converge_node("node-b", fenced)
    assert b.exit_code == controller.EXIT_IN_SYNC and pair.res("node-b").role == "Primary", report(b)


def test_a_declaration_written_from_a_dry_run_promotes_in_the_pass_that_records_the_loss(pair):
    """reconcile status printed the incident before any pass recorded the loss: the pass
    records it first, then promotes (re-checked against the ledger just written)."""
    pair.converge(pair.spec())
    lose_node_a(pair)
    moved = pair.spec(role_a="secondary", role_b="primary")
    incident = offered(pair.one_pass("node-b", moved, dry_run=True))
    fenced = pair.spec(role_a="secondary", role_b="primary",
                       extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{incident}"')
    b = pair.one_pass("node-b", fenced)
    assert [r.step.key for r in b.report.results] == [
        "drbd:r0:loss", f"drbd:r0:role:fenced:node-a@{incident}", "drbd:r0:fence-spent"]
    assert b.exit_code == controller.EXIT_IN_SYNC and pair.res("node-b").role == "Primary", report(b)


def test_a_lost_ledger_never_revives_a_spent_declaration(pair):
    """(storage review, F1) The survivor's DRBD ledger is lost after its declaration was
    spent (a reinstall, a replaced disk, a first write that was not durable): the re-created
    ledger numbers its losses from 1 again, but never reproduces the old incident (each
    ledger has an epoch of its own, part of every incident), so the line left in the spec
    promotes nothing while node-a is alive and primary behind a cut link."""
    pair.converge(pair.spec())
    moved = pair.spec(role_a="secondary", role_b="primary")
    pair.one_pass("node-a", moved)
    pair.net.cut("node-a", "node-b")
    first = offered(pair.one_pass("node-b", moved))
    old = pair.spec(role_a="secondary", role_b="primary",
                    extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{first}"')
    pair.net.restore("node-a", "node-b")
    pair.converge(old)  # loss 1 over, its declaration spent
    pair.converge(pair.spec(extra='initial_sync_from = "node-a"'))
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Primary", "Secondary")
    del pair.hosts["node-b"].md.files[LEDGER]  # node-b's ledger is gone
    pair.net.cut("node-a", "node-b")  # node-a alive and primary: only the link is cut
    pair.net.write("node-a", 0, "written by node-a after the cut")
    calls = len(primary_calls(pair, "node-b"))
    out = pair.rounds(old, 3, order=["node-b"])
    b = out["node-b"]
    assert pair.res("node-b").role == "Secondary" and len(primary_calls(pair, "node-b")) == calls
    assert "another incident" in blocked(b) and f'fenced = "node-a@{first}"' in blocked(b)
    again = offered(b)
    assert again != first and again.split("-")[0] == first.split("-")[0]  # same generation
    assert again.endswith("-1")  # the new ledger's first loss: its epoch tells them apart


def test_a_reconnection_no_pass_saw_with_the_peer_writing_ends_the_loss(pair):
    """(storage review, F2) node-b records loss 1 and the declaration for it is deployed;
    the link returns before node-b's next pass, node-a (its spec copy stale) is promoted
    while connected and writes, which DRBD replicates to node-b without a new generation;
    the link drops again. node-b's ledger recorded, with the loss, its boot and what DRBD
    had received from its peer then (/proc/drbd's nr:): it received writes since, so loss 1
    is over and the declaration promotes nothing."""
    pair.converge(pair.spec())
    moved = pair.spec(role_a="secondary", role_b="primary")
    pair.one_pass("node-a", moved)  # a planned switch: node-a demotes
    pair.net.cut("node-a", "node-b")  # loss 1: both Secondary, node-b keeps its generation
    first = offered(pair.one_pass("node-b", moved))
    fenced = pair.spec(role_a="secondary", role_b="primary",
                       extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{first}"')
    pair.net.restore("node-a", "node-b")  # no node-b pass sees it
    for _ in range(10):
        pair.one_pass("node-a", pair.spec())  # node-a's stale spec: node-a primary
        if pair.res("node-a").role == "Primary" and pair.res("node-a").cstate == "Connected":
            break
    assert (pair.res("node-a").role, pair.res("node-a").cstate) == ("Primary", "Connected")
    pair.net.write("node-a", 0, "a write node-b receives")
    pair.net.cut("node-a", "node-b")  # loss 2: node-a alive, primary, writing
    pair.net.write("node-a", 0, "after the second cut")
    assert generation(pair, "node-b") == first.split("-")[0]  # the generation alone matches
    calls = len(primary_calls(pair, "node-b"))
    out = pair.rounds(fenced, 3, order=["node-b"])
    b = out["node-b"]
    assert pair.res("node-b").role == "Secondary" and len(primary_calls(pair, "node-b")) == calls
    assert "another incident" in blocked(b)
    second = offered(b)
    assert second.split("-")[:-1] == first.split("-")[:-1] and second.endswith("-2")


def test_a_restored_ledger_that_reopens_a_loss_the_survivor_received_writes_after(pair):
    """(storage review, F1) node-b's ledger is restored from a backup taken while loss 1 was
    open: the loss is open again, at the same epoch, with its declaration's spent record
    gone. node-b received node-a's writes since the loss was recorded (same boot, more
    received): the loss is over, and the line left in the spec promotes nothing."""
    pair.converge(pair.spec())
    moved = pair.spec(role_a="secondary", role_b="primary")
    pair.one_pass("node-a", moved)
    pair.net.cut("node-a", "node-b")
    first = offered(pair.one_pass("node-b", moved))
    backup = pair.hosts["node-b"].read(LEDGER)
    assert '"open": true' in backup
    old = pair.spec(role_a="secondary", role_b="primary",
                    extra=f'initial_sync_from = "node-a"\nfenced = "node-a@{first}"')
    pair.net.restore("node-a", "node-b")
    pair.converge(old)
    pair.converge(pair.spec(extra='initial_sync_from = "node-a"'))
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Primary", "Secondary")
    pair.net.write("node-a", 0, "replicated to node-b")
    pair.hosts["node-b"].md.files[LEDGER] = backup  # the backup comes back
    pair.net.cut("node-a", "node-b")
    pair.net.write("node-a", 0, "after the cut")
    assert generation(pair, "node-b") == first.split("-")[0]
    calls = len(primary_calls(pair, "node-b"))
    out = pair.rounds(old, 3, order=["node-b"])
    assert pair.res("node-b").role == "Secondary" and len(primary_calls(pair, "node-b")) == calls
    assert "another incident" in blocked(out["node-b"]) and offered(out["node-b"]) != first


def test_without_a_ledger_a_dry_run_prints_no_incident_and_the_pass_that_creates_it_does(pair):
    """No DRBD ledger yet (lost): the epoch a dry run would draw is never written, so it
    prints no incident (nothing a later ledger could reproduce); the pass records the loss
    in a new ledger, and from then on the incident it names is the one printed."""
    pair.converge(pair.spec())
    lose_node_a(pair)
    del pair.hosts["node-b"].md.files[LEDGER]
    moved = pair.spec(role_a="secondary", role_b="primary")
    dry = pair.one_pass("node-b", moved, dry_run=True)
    assert "declare fenced" not in report(dry) and "has no epoch yet" in report(dry)
    assert pair.hosts["node-b"].read(LEDGER) is None
    incident = offered(pair.one_pass("node-b", moved))
    assert incident == at(pair, "node-b", 1)
    assert offered(pair.one_pass("node-b", moved, dry_run=True)) == incident
