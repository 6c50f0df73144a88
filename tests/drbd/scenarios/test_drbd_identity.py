"""Issue 17, DRBD: reboots of a used resource, metadata identity, wipes and split-brain
declarations bound to their object, --node against the host name, waits on the peer.

Each test runs the real controller pass on two simulated nodes (tests/support/drbdsim.py)."""

from __future__ import annotations

import json

import pytest
from support import specs
from support.drbdsim import Pair, blocked, incident, pair, resource  # noqa: F401 - pair: fixture

from reconciler import controller
from reconciler.runner import Command
from reconciler.simulate.host import SimulatedCrash
from reconciler.state import JUST_CREATED_GI

LEDGER = "/var/lib/reconciler/drbd.json"
DISK_ID = "serial:sim-vdb"  # /dev/vdb's identity on both simulated nodes


def wipefs_types(pair, node: str, disk: str = "/dev/vdb") -> list[str]:
    res = pair.hosts[node].run(Command(argv=("wipefs", "--no-act", "--json", disk)))
    return [s["type"] for s in json.loads(res.stdout)["signatures"]]


def create_mds(pair, node: str) -> list[tuple]:
    return [c for c in pair.drbdadm_calls(node) if "create-md" in c]


def used_resource(pair):
    """r0 created and synced by the reconciler, a file system made on node-a's /dev/drbd0
    and written to: (the spec, the content)."""
    loaded = pair.spec()
    out = pair.converge(loaded)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values())
    pair.net.mkfs("node-a", 0)
    pair.net.write("node-a", 0, "a file")
    content = pair.res("node-a").data
    assert pair.res("node-b").data == content
    return loaded, content


# -- 1. a reboot of a used resource ----------------------------------------------------------------

@pytest.mark.parametrize("how", ["down", "reboot"])
def test_a_used_resource_comes_back_up_as_it_is_after_a_reboot(pair, how):
    loaded, content = used_resource(pair)
    if how == "down":  # what a reboot leaves, by hand
        pair.by_hand("node-a", "drbdadm", "secondary", "r0")
        for n in ("node-a", "node-b"):
            pair.by_hand(n, "drbdadm", "down", "r0")
    else:
        for n in ("node-a", "node-b"):
            pair.reboot(n)
    for n in ("node-a", "node-b"):  # internal metadata: the file system starts the data area
        assert not pair.node(n).res
        assert wipefs_types(pair, n) == ["ext4", "drbd"]
    before = {n: len(create_mds(pair, n)) for n in ("node-a", "node-b")}
    out = pair.converge(loaded)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values()), [str(r.final) for r in out.values()]
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Primary", "Secondary")
    assert pair.res("node-a").data == pair.res("node-b").data == content
    assert {n: len(create_mds(pair, n)) for n in ("node-a", "node-b")} == before  # never create-md
    assert ("drbdadm", "up", "r0") in pair.drbdadm_calls("node-a")[-3:]


def test_a_host_upgraded_while_running_adopts_its_up_resource_and_survives_a_reboot(pair):
    loaded, content = used_resource(pair)
    for n in ("node-a", "node-b"):  # the ledger did not exist before this version
        del pair.hosts[n].md.files[LEDGER]
    out = pair.rounds(loaded, 1)
    for n in ("node-a", "node-b"):
        assert out[n].exit_code == controller.EXIT_IN_SYNC, str(out[n].final)
        records = json.loads(pair.hosts[n].md.files[LEDGER])["metadata"]
        assert [(r["resource"], r["node"], r["disk"]["id"], r["how"]) for r in records] == [
            ("r0", n, DISK_ID, "adopted")]
    for n in ("node-a", "node-b"):
        pair.reboot(n)
    out = pair.converge(loaded)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values())
    assert pair.res("node-a").data == pair.res("node-b").data == content


# -- 2. metadata identity, wipe bound to its disk ---------------------------------------------------

EARLIER = """resource r0 {
  on node-a { device /dev/drbd0 minor 0; disk /dev/vdb; address ipv4 10.9.9.1:7789; meta-disk internal; }
  on old-peer { device /dev/drbd0 minor 0; disk /dev/vdb; address ipv4 10.9.9.2:7789; meta-disk internal; }
}
"""


def earlier_cluster(pair, node: str) -> None:
    """``node``'s /dev/vdb was r0 of an earlier cluster (written by hand, no reconciler):
    metadata created, forced primary alone, written to, down; its resource file gone."""
    files = pair.hosts[node].md.files
    files["/etc/drbd.d/r0.res"] = EARLIER
    for argv in (("modprobe", "drbd"), ("drbdadm", "--", "--force", "create-md", "r0"),
                 ("drbdadm", "up", "r0"), ("drbdadm", "primary", "--force", "r0")):
        pair.by_hand(node, *argv)
    pair.net.write(node, 0, "the earlier cluster's data")
    for argv in (("drbdadm", "secondary", "r0"), ("drbdadm", "down", "r0")):
        pair.by_hand(node, *argv)
    del files["/etc/drbd.d/r0.res"]
    pair.hosts[node].calls.clear()


def test_stale_metadata_from_an_earlier_cluster_is_never_brought_up(pair):
    # node-a's disk holds UpToDate metadata written by an earlier cluster; node-b's disk holds
    # the data that must seed r0 (a file system the spec gives up to DRBD's metadata only)
    earlier_cluster(pair, "node-a")
    assert pair.node("node-a").metadata["/dev/vdb"].disk == "UpToDate"
    old_gi = ":".join(f"{u:016X}" for u in pair.node("node-a").metadata["/dev/vdb"].uuids)
    pair.node("node-b").contents["/dev/vdb"] = "b's data"
    pair.hosts["node-b"].model.device("/dev/vdb").signature = "ext4"
    loaded = pair.spec(extra='initial_sync_from = "node-b"', wipe_b=f'wipe = "{DISK_ID}"')
    out = pair.rounds(loaded, 8)
    a = blocked(out["node-a"])
    assert "/dev/vdb (serial:sim-vdb) holds DRBD metadata the reconciler cannot tie to r0" in a
    assert old_gi in a and "a data generation was started on it" in a
    assert out["node-a"].exit_code == controller.EXIT_ERROR
    assert not pair.node("node-a").res  # never up
    assert not any(c[1:2] == ("up",) or "primary" in c for c in pair.drbdadm_calls("node-a"))
    assert ("drbdadm", "--", "--force", "create-md", "r0") in pair.drbdadm_calls("node-b")
    b = pair.res("node-b")
    assert (b.data, b.disk, b.cstate) == ("b's data", "Inconsistent", "WFConnection")
    assert out["node-b"].exit_code == controller.EXIT_PENDING
    assert any(f.waiting_on == "node-a" for f in out["node-b"].final.in_flight)
    # the operator checked: node-a's old metadata may go; the first sync comes from node-b
    wiped = pair.spec(extra='initial_sync_from = "node-b"', wipe_a=f'wipe = "{DISK_ID}"',
                      wipe_b=f'wipe = "{DISK_ID}"')
    out = pair.converge(wiped)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values()), [str(r.final) for r in out.values()]
    assert ("drbdadm", "--", "--force", "create-md", "r0") in pair.drbdadm_calls("node-a")
    assert ("drbdadm", "primary", "--force", "r0") in pair.drbdadm_calls("node-b")
    assert not any("--force" in c and "primary" in c for c in pair.drbdadm_calls("node-a"))
    assert pair.res("node-a").data == pair.res("node-b").data == "b's data"
    # the wipe is not standing: once the metadata is recorded, a reboot never re-creates it
    pair.net.write("node-a", 0, "after the first sync")
    content = pair.res("node-a").data
    calls = {n: len(create_mds(pair, n)) for n in ("node-a", "node-b")}
    for n in ("node-a", "node-b"):
        pair.reboot(n)
    out = pair.converge(wiped)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values())
    assert {n: len(create_mds(pair, n)) for n in ("node-a", "node-b")} == calls
    assert pair.res("node-a").data == pair.res("node-b").data == content


def test_a_wipe_for_another_disk_gives_nothing_up(pair):
    pair.hosts["node-a"].model.device("/dev/vdb").signature = "ext4"
    out = pair.rounds(pair.spec(wipe_a='wipe = "serial:sim-vdc"'), 3)
    assert 'wipe = "serial:sim-vdc" names another disk: this one is "serial:sim-vdb"' in blocked(out["node-a"])
    assert not create_mds(pair, "node-a")


def test_the_first_sync_never_runs_the_other_way(pair):
    # node-a's stale metadata says UpToDate: were it brought up, it would seed node-b
    earlier_cluster(pair, "node-a")
    pair.node("node-b").contents["/dev/vdb"] = "b's data"
    loaded = pair.spec(extra='initial_sync_from = "node-b"')
    for order in (("node-a", "node-b"), ("node-b", "node-a")) * 4:
        for n in order:
            pair.one_pass(n, loaded)
        pair.clock.advance(5)
    assert pair.res("node-b").data == "b's data" and not pair.node("node-a").res
    assert not any("up" in c for c in pair.drbdadm_calls("node-a"))


# -- 3. split-brain declarations bound to the incident ---------------------------------------------

def _split_brain(pair, promoted_by_hand: str, writer_labels: dict[str, str]):
    pair.net.cut("node-a", "node-b")
    pair.by_hand(promoted_by_hand, "drbdadm", "primary", "r0")
    for n, label in writer_labels.items():
        pair.net.write(n, 0, label)
    pair.net.restore("node-a", "node-b")
    assert pair.res("node-a").cstate == pair.res("node-b").cstate == "StandAlone"


def test_an_old_split_brain_declaration_never_resolves_a_new_incident(pair):
    extra = 'initial_sync_from = "node-a"'
    pair.converge(pair.spec(extra=extra))
    # the first split brain: node-b promoted by hand during a cut; its changes are dropped
    _split_brain(pair, "node-b", {"node-a": "a's writes", "node-b": "b's junk"})
    first = incident(pair.rounds(pair.spec(extra=extra), 1)["node-a"])
    line = f'{extra}\nsplit_brain_victim = "node-b@{first}"'
    out = pair.converge(pair.spec(extra=line))
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values())
    # a planned failover: node-b is the primary now (the old line stays in the spec)
    moved = pair.spec(role_a="secondary", role_b="primary", extra=line)
    pair.converge(moved)
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Secondary", "Primary")
    pair.net.write("node-b", 0, "b's real writes")
    # months later: node-a promoted by hand during a cut and written to; node-b keeps writing
    _split_brain(pair, "node-a", {"node-a": "a's junk", "node-b": "b's new writes"})
    b_data = pair.res("node-b").data
    discards = len([c for c in pair.drbdadm_calls("node-b") if "--discard-my-data" in c])
    out = pair.rounds(moved, 4)
    second = incident(out["node-b"])
    assert second != first and incident(out["node-a"]) == second
    for n in ("node-a", "node-b"):
        assert f'"node-b@{first}" was written for another incident' in blocked(out[n])
        assert out[n].exit_code == controller.EXIT_ERROR
    assert len([c for c in pair.drbdadm_calls("node-b") if "--discard-my-data" in c]) == discards
    assert pair.res("node-b").role == "Primary" and pair.res("node-b").data == b_data
    # the operator declares this incident's victim: node-a's junk goes, node-b's writes stay
    fixed = pair.spec(role_a="secondary", role_b="primary",
                      extra=f'{extra}\nsplit_brain_victim = "node-a@{second}"')
    out = pair.converge(fixed)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values()), [str(r.final) for r in out.values()]
    assert pair.res("node-a").data == pair.res("node-b").data == b_data


# -- 4. --node against the host name ----------------------------------------------------------------

def test_a_unit_with_the_wrong_node_does_nothing(pair):
    loaded = pair.spec()  # node-a seeds the first sync and is primary
    pair.rounds(loaded, 2)  # both up, nothing synced yet... then node-b's unit says --node node-a
    calls = len(pair.drbdadm_calls("node-b"))
    r = pair.one_pass("node-b", loaded, as_node="node-a")
    assert r.exit_code == controller.EXIT_ERROR
    assert "--node is 'node-a' but this host's name is 'node-b' (uname -n)" in blocked(r)
    assert len(pair.drbdadm_calls("node-b")) == calls
    assert not any("--force" in c for c in pair.drbdadm_calls("node-b"))


def test_a_host_name_that_cannot_be_read_stops_the_drbd_part(pair):
    pair.hosts["node-a"].hostname = ""
    r = pair.one_pass("node-a", pair.spec())
    assert "could not be read" in blocked(r) and not pair.drbdadm_calls("node-a")


# -- 5. dual-primary failover ---------------------------------------------------------------------

DUAL = 'initial_sync_from = "node-a"\nallow_two_primaries = true'


def test_dual_primary_allowed_but_one_declared_the_new_primary_waits_for_the_old(pair):
    pair.converge(pair.spec(extra=DUAL))
    pair.node("node-a").mounts[0] = ["/srv"]  # still in use on the old primary
    moved = pair.spec(role_a="secondary", role_b="primary", extra=DUAL)
    for _ in range(3):
        out = pair.rounds(moved, 1)
        assert pair.res("node-b").role == "Secondary"
        assert any(f.waiting_on == "node-a" for f in out["node-b"].final.in_flight), str(out["node-b"].final)
    pair.node("node-a").mounts.clear()
    seen = []
    for _ in range(10):
        for n in ("node-a", "node-b"):
            pair.one_pass(n, moved)
            seen.append((pair.res("node-a").role, pair.res("node-b").role))
    assert ("Primary", "Primary") not in seen, seen
    assert seen[-1] == ("Secondary", "Primary")


# -- 6. the first bring-up in every order -----------------------------------------------------------

ORDERS = {
    "node-a first": ["node-a"] * 4 + ["node-b", "node-a"] * 12,
    "node-b first": ["node-b"] * 4 + ["node-a", "node-b"] * 12,
    "interleaved": ["node-a", "node-b"] * 14,
    "node-b then both": ["node-b", "node-b", "node-a", "node-a", "node-b"] + ["node-a", "node-b"] * 10,
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_the_first_bring_up_never_fails_whichever_node_starts_first(pair, order):
    loaded = pair.spec()  # seed 003: node-a seeds the first sync and is primary
    codes = []
    for n in ORDERS[order]:
        r = pair.one_pass(n, loaded)
        codes.append((n, r.exit_code, blocked(r)))
        assert r.exit_code != controller.EXIT_ERROR, codes
        for f in r.final.in_flight:
            if f.key in ("drbd:r0:connect", "drbd:r0:first-sync"):
                assert f.waiting_on == ("node-b" if n == "node-a" else "node-a"), f
        pair.clock.advance(2)
    out = pair.converge(loaded)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values())
    assert (pair.res("node-a").role, pair.res("node-b").role) == ("Primary", "Secondary")
    assert ("drbdadm", "primary", "--force", "r0") in pair.drbdadm_calls("node-a")
    assert not any("--force" in c for c in pair.drbdadm_calls("node-b"))


TWO = {"drbd": {"r0": resource("/dev/vdb"), "r1": resource("/dev/vdc", port=7790, minor=1)}}


def test_two_resources_created_in_one_pass_are_both_recorded_and_survive_a_reboot(pair, tmp_path):
    loaded = specs.load(TWO, directory=tmp_path, name="two.toml")
    out = pair.converge(loaded)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values()), [str(r.final) for r in out.values()]
    for n in ("node-a", "node-b"):
        records = json.loads(pair.hosts[n].md.files[LEDGER])["metadata"]
        assert sorted((r["resource"], r["disk"]["id"], r["how"], r["gi"]) for r in records) == [
            ("r0", "serial:sim-vdb", "created", JUST_CREATED_GI),
            ("r1", "serial:sim-vdc", "created", JUST_CREATED_GI)]
    for minor in (0, 1):
        pair.net.write("node-a", minor, f"data {minor}")
    content = {m: pair.node("node-a").res[m].data for m in (0, 1)}
    calls = {n: len(create_mds(pair, n)) for n in ("node-a", "node-b")}
    for n in ("node-a", "node-b"):
        pair.reboot(n)
    out = pair.converge(loaded)
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values())
    assert {n: len(create_mds(pair, n)) for n in ("node-a", "node-b")} == calls
    for m in (0, 1):
        assert pair.node("node-a").res[m].data == pair.node("node-b").res[m].data == content[m]


# -- the ledger and the crash between create-md and its record ----------------------------------------

def test_a_crash_right_after_create_md_leaves_metadata_that_is_recorded_not_refused(pair):
    loaded = pair.spec()
    h = pair.hosts["node-a"]
    pair.one_pass("node-a", loaded)  # a clean first pass: how many commands change the host
    changing = [c.argv for c in h.calls if c.mutates]
    assert ("drbdadm", "create-md", "r0") in changing
    for n in range(1, len(changing) + 1):  # crash node-a right after its n-th such command
        p = Pair(pair.tmp / f"crash{n}")
        p.hosts["node-a"].crash_after(n)
        with pytest.raises(SimulatedCrash):
            p.one_pass("node-a", loaded)
        created = any("create-md" in c.argv for c in p.hosts["node-a"].calls)
        p.hosts["node-a"].recover()
        out = p.converge(loaded)
        assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values()), (n, [str(r.final) for r in out.values()])
        assert len(create_mds(p, "node-a")) == 1, (n, created)  # never a second create-md
        records = json.loads(p.hosts["node-a"].md.files[LEDGER])["metadata"]
        assert [(r["resource"], r["how"]) for r in records] == [("r0", "created")], n
    assert h is pair.hosts["node-a"]


def test_an_unreadable_ledger_trusts_and_creates_nothing(pair):
    loaded, content = used_resource(pair)
    pair.by_hand("node-a", "drbdadm", "secondary", "r0")
    for n in ("node-a", "node-b"):
        pair.by_hand(n, "drbdadm", "down", "r0")
    pair.hosts["node-a"].md.files[LEDGER] = "{not json"
    out = pair.rounds(loaded, 2)
    assert f"{LEDGER} cannot be read as the DRBD ledger" in blocked(out["node-a"])
    assert not pair.node("node-a").res and not create_mds(pair, "node-a")[1:]


def test_generation_identifiers_and_the_ledger_parse():
    from reconciler.adapters import drbd as adapter
    gi = adapter.parse_gi("A923D7CF74DD8F8F:AE17373DD4A5E47D:6BDD0A6494603146:6BDC0A6494603147:1:1:1:0:0:0:0\n")
    assert (gi.current, gi.incident, gi.just_created) == ("A923D7CF74DD8F8F", "AE17373DD4A5E47C", False)
    assert adapter.parse_gi("0000000000000004:0000000000000000:0000000000000000:0000000000000000:0:0\n").just_created
    with pytest.raises(ValueError):
        adapter.parse_gi("Device '0' is configured!\n")
    ledger = adapter.parse_ledger(LEDGER, json.dumps({"format": 1, "metadata": [
        {"resource": "r0", "node": "a", "disk": {"id": "serial:x", "path": "/dev/vdb"},
         "gi": JUST_CREATED_GI, "how": "created"}] * 2}))
    assert "two records for r0 on a" in ledger.problem


R1_OVER_R0 = {"drbd": {"r1": resource("/dev/vdb", port=7790, minor=1, wipe="serial:sim-vdb")}}


def test_a_resource_declared_again_never_comes_up_on_the_metadata_another_resource_took_over(
        pair, tmp_path):
    # r0 leaves the spec (taken down by hand); r1 is declared over the same disks and gives
    # their content up (wipe), is used; then r1 leaves and r0 is declared again: the ledger's
    # r0 record names the disk, but the metadata on it is r1's now, never brought up as r0
    r0, _ = used_resource(pair)
    pair.by_hand("node-a", "drbdadm", "secondary", "r0")
    for n in ("node-a", "node-b"):
        pair.by_hand(n, "drbdadm", "down", "r0")
        del pair.hosts[n].md.files["/etc/drbd.d/r0.res"]
    out = pair.converge(specs.load(R1_OVER_R0, directory=tmp_path, name="r1.toml"))
    assert all(r.exit_code == controller.EXIT_IN_SYNC for r in out.values())
    pair.net.write("node-a", 1, "r1's data")
    pair.by_hand("node-a", "drbdadm", "secondary", "r1")
    for n in ("node-a", "node-b"):
        pair.by_hand(n, "drbdadm", "down", "r1")
        records = json.loads(pair.hosts[n].md.files[LEDGER])["metadata"]
        assert [(r["resource"], r["disk"]["id"]) for r in records] == [("r1", DISK_ID)]
    out = pair.rounds(r0, 4)
    for n in ("node-a", "node-b"):
        assert "holds DRBD metadata the reconciler cannot tie to r0" in blocked(out[n])
        assert not pair.node(n).res
        assert ("drbdadm", "up", "r0") not in pair.drbdadm_calls(n)[-4:]
