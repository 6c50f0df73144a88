"""DRBD spec validation, the adapter's parsers on lab recordings, rendering and planning
refusals that need no simulator (issue 11)."""

from __future__ import annotations

import dataclasses
import json
import re
import textwrap
from pathlib import Path

import pytest

from support import FIXTURES, ROOT
from support.drbdsim import pair  # noqa: F401  (the fixture)

from reconciler import actions, errors, state
from reconciler.adapters import drbd
from reconciler.planning.drbd import plan_drbd
from reconciler.runner import Command, CommandResult
from reconciler.spec import drbd as drbd_spec
from reconciler.spec import loading

OUT = FIXTURES / "outputs" / "drbd"
BASE = """
[drbd.r0]
{extra}
[drbd.r0.nodes.a]
disk = "/dev/vdb"
address = "10.0.0.1"
role = "{role_a}"
[drbd.r0.nodes.b]
disk = "/dev/vdb"
address = "10.0.0.2"
role = "{role_b}"
"""


def load(tmp_path, extra="", role_a="primary", role_b="secondary"):
    (tmp_path / "s.toml").write_text(textwrap.dedent(BASE.format(extra=extra, role_a=role_a, role_b=role_b)))
    return loading.load(tmp_path / "s.toml")


def problems(tmp_path, **kw) -> str:
    with pytest.raises(errors.SpecError) as exc:
        load(tmp_path, **kw)
    return str(exc.value)


def test_two_primaries_need_the_opt_in(tmp_path):
    assert "allow_two_primaries" in problems(tmp_path, role_b="primary")
    assert load(tmp_path, extra="allow_two_primaries = true", role_b="primary").spec.drbd["r0"].allow_two_primaries


def test_named_nodes_must_be_the_resources_own(tmp_path):
    assert "initial_sync_from 'c' is not one of" in problems(tmp_path, extra='initial_sync_from = "c"')
    assert "split_brain_victim 'x' is not one of" in problems(
        tmp_path, extra='split_brain_victim = "x@0123456789ABCDEF"')


def test_declarations_that_give_data_up_are_bound_to_their_object(tmp_path):
    # a split-brain victim names the incident, a wipe the disk: a bare node or true is refused
    assert '"<node>@<incident>"' in problems(tmp_path, extra='split_brain_victim = "a"')
    text = BASE.replace('role = "{role_a}"', 'role = "{role_a}"\nwipe = true', 1)
    (tmp_path / "w.toml").write_text(textwrap.dedent(text.format(extra="", role_a="primary", role_b="secondary")))
    with pytest.raises(errors.SpecError, match="wipe = true is not accepted.*the disk's identity"):
        loading.load(tmp_path / "w.toml")
    res = load(tmp_path, extra='split_brain_victim = "b@0123456789abcdef"').spec.drbd["r0"]
    assert res.split_brain_victim == "b@0123456789abcdef"


def test_bad_values_are_refused(tmp_path):
    (tmp_path / "s.toml").write_text(textwrap.dedent(BASE.format(extra='protocol = "D"', role_a="primary",
                                                                 role_b="secondary")))
    with pytest.raises(errors.SpecError):
        loading.load(tmp_path / "s.toml")
    bad_addr = BASE.replace('"10.0.0.2"', '"10.0.0.2:7789"')
    (tmp_path / "s.toml").write_text(textwrap.dedent(bad_addr.format(extra="", role_a="primary", role_b="secondary")))
    with pytest.raises(errors.SpecError, match="not an IP address"):
        loading.load(tmp_path / "s.toml")


def test_a_node_gets_only_the_resources_it_is_in(tmp_path):
    loaded = load(tmp_path)
    assert list(loaded.for_node("a").drbd) == ["r0"] and not loaded.for_node("c").drbd


def test_shipped_example_renders_drbd_utils_syntax():
    loaded = loading.load(ROOT / "specs" / "examples" / "drbd.toml")
    text = drbd.render("drbd1", loaded.spec.drbd["drbd1"])
    assert drbd.is_managed(text, "drbd1") and "on node1 {" in text and "address ipv4 10.0.0.1:7789;" in text
    assert drbd.config_disk(text, "node2") == "/dev/hdd1"


def test_proc_drbd_sync_progress_from_the_lab():
    _, minors = drbd.parse_proc((OUT / "proc/29_syncsource_0_node-a.txt").read_text())
    s = minors[0].sync
    assert (minors[0].cstate, s.percent, s.left_kib, s.total_kib, s.speed_kib, s.eta) == (
        "SyncSource", 12.5, 60552, 65496, 4944, 11.0)
    _, minors = drbd.parse_proc((OUT / "proc/30_synctarget_0_node-b.txt").read_text())
    assert minors[0].sync.speed_kib == 5768 and minors[0].syncing


def test_standalone_has_no_protocol_column():
    _, minors = drbd.parse_proc((OUT / "proc/67_split_brain_node-a.txt").read_text())
    assert (minors[0].cstate, minors[0].protocol, minors[0].oos_kib) == ("StandAlone", "", 1064)


def test_drbd9_proc_is_refused_with_a_reason():
    with pytest.raises(drbd.UnsupportedDrbd, match="drbdsetup status"):
        drbd.parse_proc("version: 9.2.4 (api:2/proto:86-122)\nGIT-hash: x\nTransports (api:18): tcp (9.2.4)\n")


def test_wipefs_recordings():
    def sigs(name):
        text = (OUT / name).read_text().split("--- stdout\n")[1].split("--- stderr")[0]
        return drbd.parse_wipefs(text)
    assert sigs("commands/12_wipefs_used_node-a.txt") == ("ext4",)
    assert sigs("commands/14_wipefs_blank_node-a.txt") == ()
    assert sigs("commands/17_wipefs_after_create_md_node-a.txt") == ("drbd",)


@pytest.mark.parametrize("name,kind", [("43_secondary_mounted_refused_node-a.txt", errors.FailureKind.BUSY),
                                       ("27_primary_inconsistent_refused_node-b.txt", errors.FailureKind.FATAL),
                                       ("10_create_md_used_no_node-a.txt", errors.FailureKind.FATAL)])
def test_recorded_failures_are_classified(name, kind):
    text = (OUT / "commands" / name).read_text()
    head, _, rest = text.partition("--- stdout\n")
    out, _, err = rest.partition("--- stderr\n")
    argv = tuple(head.splitlines()[0].removeprefix("argv: ").split())
    res = CommandResult(command=Command(argv=argv), rc=int(head.splitlines()[1][4:]), stdout=out, stderr=err)
    exc = drbd.failure(res)
    assert exc.kind is kind
    if name.startswith("10_"):
        assert "Found ext3 filesystem" in str(exc.stderr)  # the reason reaches the operator


def _host(config, minors=None, backing=None, mounts=(), records=None, hostname="a"):
    rs = state.DrbdResourceState(name="r0", config_path="/etc/drbd.d/r0.res", config=config, mounts=mounts,
                                 disk_id="serial:vdb-a",
                                 managed=config is not None and drbd.is_managed(config, "r0"),
                                 config_disk=drbd.config_disk(config, "a"))
    if records is None:  # a resource up: its metadata recorded (the ledger's own tests are elsewhere)
        records = [state.DrbdMetaRecord("r0", "a", "serial:vdb-a", "/dev/vdb", state.JUST_CREATED_GI,
                                        "created")] if minors else []
    ledger = state.DrbdLedger("/var/lib/reconciler/drbd.json", {r.key: r for r in records}, epoch=EPOCH)
    return state.HostState(host="local", drbd=state.DrbdHost(loaded=True, version="8.4.11", minors=minors or {},
                                                             resources={"r0": rs}, backing=backing or {},
                                                             hostname=hostname, ledger=ledger,
                                                             boot_id=BOOT))


EPOCH = "5EED0001"  # the DRBD ledger's epoch
BOOT = "0d8a7c1e-2b3f-4a5d-9e6f-7a8b9c0d1e2f"  # /proc/sys/kernel/random/boot_id
NS, NR = 1045, 69938  # /proc/drbd's ns: and nr: while the peer is lost


GI_USED = state.Gi("A923D7CF74DD8F8F", "AE17373DD4A5E47C", "6BDD0A6494603146", "6BDC0A6494603147")


def test_create_md_is_not_planned_on_a_used_disk(tmp_path):
    spec = load(tmp_path).for_node("a")
    st = _host(None, backing={"/dev/vdb": state.DrbdBacking("/dev/vdb", ("ext4",))})
    out = plan_drbd(spec, st, "a")
    assert not any(s.action.key.endswith("create-md") for s in out.steps)
    assert any("holds ext4" in b.reason and 'wipe = "serial:vdb-a"' in b.reason for b in out.blocked)


def test_recorded_metadata_is_brought_up_as_it_is_whatever_the_data_area_holds(tmp_path):
    spec = load(tmp_path).for_node("a")
    rec = state.DrbdMetaRecord("r0", "a", "serial:vdb-a", "/dev/vdb", state.JUST_CREATED_GI, "created")
    for sigs in (("drbd",), ("ext4", "drbd")):
        st = _host(None, backing={"/dev/vdb": state.DrbdBacking("/dev/vdb", sigs, gi=GI_USED)}, records=[rec])
        out = plan_drbd(spec, st, "a")
        keys = [s.action.key for s in out.steps]
        assert "drbd:r0:up" in keys and "drbd:r0:create-md" not in keys and not out.blocked, sigs


def test_metadata_not_tied_to_the_resource_is_refused_with_its_generation_identifiers(tmp_path):
    spec = load(tmp_path).for_node("a")
    other = state.DrbdMetaRecord("r0", "a", "serial:another", "/dev/vdc", state.JUST_CREATED_GI, "created")
    for records in ((), (other,)):
        st = _host(None, backing={"/dev/vdb": state.DrbdBacking("/dev/vdb", ("drbd",), gi=GI_USED)},
                   records=records)
        out = plan_drbd(spec, st, "a")
        assert [s.action.key for s in out.steps] == ["drbd:r0:config"], records  # no up, no create-md
        reason = " ".join(b.reason for b in out.blocked)
        assert "/dev/vdb (serial:vdb-a) holds DRBD metadata the reconciler cannot tie to r0" in reason
        assert str(GI_USED) in reason and "drbdadm dump-md r0" in reason


def test_a_wipe_is_bound_to_the_disk_it_names(tmp_path):
    backing = {"/dev/vdb": state.DrbdBacking("/dev/vdb", ("drbd",), gi=GI_USED)}
    text = BASE.replace('role = "{role_a}"', 'role = "{role_a}"\nwipe = "serial:another-disk"', 1)
    (tmp_path / "w.toml").write_text(textwrap.dedent(text.format(extra="", role_a="primary", role_b="secondary")))
    out = plan_drbd(loading.load(tmp_path / "w.toml").for_node("a"), _host(None, backing=backing), "a")
    assert [s.action.key for s in out.steps] == ["drbd:r0:config"]
    assert 'wipe = "serial:another-disk" names another disk' in out.blocked[0].reason
    text = BASE.replace('role = "{role_a}"', 'role = "{role_a}"\nwipe = "serial:vdb-a"', 1)
    (tmp_path / "w.toml").write_text(textwrap.dedent(text.format(extra="", role_a="primary", role_b="secondary")))
    out = plan_drbd(loading.load(tmp_path / "w.toml").for_node("a"), _host(None, backing=backing), "a")
    create = [s.action for s in out.steps if s.action.key == "drbd:r0:create-md"]
    assert create and create[0].force, out
    assert [s.action.key for s in out.steps if s.action.key == "drbd:r0:record"]


def test_no_promotion_while_the_peer_is_unreachable(tmp_path):
    spec = load(tmp_path).for_node("a")
    text = drbd.render("r0", spec.drbd["r0"])
    m = state.DrbdMinor(minor=0, cstate="WFConnection", role="Secondary", peer_role="Unknown",
                        disk="UpToDate", peer_disk="DUnknown", protocol="C")
    out = plan_drbd(spec, _host(text, {0: m}), "a")
    # a wait on the peer (issue 17: waiting on another node, not an error), never a promotion
    assert not out.steps and not out.blocked
    assert [(f.waiting_on, "split brain" in f.what) for f in out.in_flight] == [("b", True)]


def test_timeouts_and_controller_are_drbds_defaults_unless_declared(tmp_path):
    text = drbd.render("r0", load(tmp_path).spec.drbd["r0"])
    for option in ("connect-int", "ping-int", "ping-timeout", "c-plan-ahead", "after-sb", "net {", "disk {"):
        assert option not in text, text
    extra = ("resync_rate = \"400M\"\n[drbd.r0.net]\nconnect_int = 1\nping_int = 1\nping_timeout = 2\n"
             "[drbd.r0.disk]\nc_plan_ahead = 0")
    text = drbd.render("r0", load(tmp_path, extra=extra).spec.drbd["r0"])
    assert ("  net {\n    connect-int 1;\n    ping-int 1;\n    ping-timeout 20;\n  }\n"
            "  disk {\n    c-plan-ahead 0;\n    resync-rate 409600k;\n  }\n") in text
    text = drbd.render("r0", load(tmp_path, extra="[drbd.r0.disk]\nc_plan_ahead = 2.5").spec.drbd["r0"])
    assert "  disk {\n    c-plan-ahead 25;\n  }\n" in text


@pytest.mark.parametrize("table,bad,match", [
    ("net", "connect_int = 0", "greater than or equal to 1"),
    ("net", "ping_int = 121", "less than or equal to 120"),
    ("net", "ping_timeout = 0.25", "tenths of a second"),
    ("net", "ping_timeout = true", "not a boolean"),
    ("disk", "c_plan_ahead = 31", "less than or equal to 30"),
    ("net", "after_sb_0pri = \"discard-secondary\"", "not one of DRBD 8.4's"),
    ("net", "after_sb_1pri = \"discard-younger-primary\"", "not one of DRBD 8.4's"),
    ("net", "after_sb_2pri = \"consensus\"", "not one of DRBD 8.4's"),
    ("net", "after_sb_0pri = \"discard-node-c\"", "'c' is not one of this resource's nodes"),
    ("net", "after_sb_3pri = \"disconnect\"", "after_sb_3pri"),
])
def test_bad_net_and_disk_options_are_refused(tmp_path, table, bad, match):
    assert re.search(match, problems(tmp_path, extra=f"[drbd.r0.{table}]\n{bad}")), bad


def test_after_split_brain_policies_are_rendered_into_net(tmp_path):
    extra = ("allow_two_primaries = true\n[drbd.r0.net]\nafter_sb_0pri = \"discard-node-b\"\n"
             "after_sb_1pri = \"discard-secondary\"\nafter_sb_2pri = \"disconnect\"")
    text = drbd.render("r0", load(tmp_path, extra=extra, role_b="primary").spec.drbd["r0"])
    assert ("  net {\n    allow-two-primaries yes;\n    after-sb-0pri discard-node-b;\n"
            "    after-sb-1pri discard-secondary;\n    after-sb-2pri disconnect;\n  }\n") in text


def test_dual_primary_waits_for_the_peers_disk_to_be_uptodate(tmp_path):
    spec = load(tmp_path, extra="allow_two_primaries = true", role_b="primary").for_node("a")
    text = drbd.render("r0", spec.drbd["r0"])
    for peer_role, peer_disk in (("Primary", "Inconsistent"), ("Primary", "Diskless"), ("Secondary", "Inconsistent")):
        m = state.DrbdMinor(minor=0, cstate="Connected", role="Secondary", peer_role=peer_role,
                            disk="UpToDate", peer_disk=peer_disk, protocol="C")
        out = plan_drbd(spec, _host(text, {0: m}), "a")
        assert not out.steps and any("UpToDate" in f.what for f in out.in_flight), (peer_role, peer_disk)
    m = state.DrbdMinor(minor=0, cstate="Connected", role="Secondary", peer_role="Primary",
                        disk="UpToDate", peer_disk="UpToDate", protocol="C")
    assert [s.action.key for s in plan_drbd(spec, _host(text, {0: m}), "a").steps] == ["drbd:r0:role"]


def test_two_primaries_without_the_opt_in_never_promote_while_the_peer_is_primary(tmp_path):
    spec = load(tmp_path).for_node("a")
    text = drbd.render("r0", spec.drbd["r0"])
    assert "allow-two-primaries" not in text
    m = state.DrbdMinor(minor=0, cstate="Connected", role="Secondary", peer_role="Primary",
                        disk="UpToDate", peer_disk="UpToDate", protocol="C")
    out = plan_drbd(spec, _host(text, {0: m}), "a")
    assert not out.steps and any("to become secondary" in f.what for f in out.in_flight)


def test_a_split_brain_without_a_bitmap_uuid_has_no_incident_and_is_never_resolved(tmp_path):
    spec = load(tmp_path, extra='split_brain_victim = "a@0000000000000000"').for_node("a")
    text = drbd.render("r0", spec.drbd["r0"])
    m = state.DrbdMinor(minor=0, cstate="StandAlone", role="Primary", peer_role="Unknown",
                        disk="UpToDate", peer_disk="DUnknown")
    st = _host(text, {0: m})
    rs = dataclasses.replace(st.drbd.resources["r0"], split_brain=True,
                             gi=state.Gi("A923D7CF74DD8F8F", "0000000000000001", "0" * 16, "0" * 16))
    st = dataclasses.replace(st, drbd=dataclasses.replace(st.drbd, resources={"r0": rs}))
    out = plan_drbd(spec, st, "a")
    assert not out.steps and "its incident cannot be identified" in out.blocked[0].reason


def test_a_resource_file_change_never_adjusts_an_unconfigured_minor_onto_untied_metadata(tmp_path):
    # 8.4's /proc/drbd says "cs:Unconfigured" for a minor that exists StandAlone, Diskless and
    # Secondary (a detached and disconnected node): drbdadm adjust would attach the declared
    # disk and connect, whatever metadata it holds, around the identity check of create-md/up
    spec = load(tmp_path).for_node("a")
    m = drbd.parse_proc("version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Unconfigured\n")[1]
    assert m[0].cstate == m[0].disk == "Unconfigured"
    older = drbd.render("r0", spec.drbd["r0"]).replace(":7789;", ":7790;")  # ours, an older spec
    for config in (None, older):
        st = _host(config, minors=m, records=[],
                   backing={"/dev/vdb": state.DrbdBacking("/dev/vdb", ("drbd",), gi=GI_USED)})
        out = plan_drbd(spec, st, "a")
        adjusts = [s.action for s in out.steps if "adjust" in " ".join(
            " ".join(c.argv) for c in s.action.commands())]
        assert not adjusts, (config, [a.describe() for a in adjusts])
        assert any("cannot tie to r0" in b.reason for b in out.blocked), config


def test_a_fence_declaration_is_bound_to_one_node_and_incident(tmp_path):
    """``fenced = "NODE@INCIDENT"`` (issue 20): the node must be the resource's, the incident
    as the pass prints it ("GENERATION-EPOCH-N"), and a node declared fenced is never
    declared primary. The earlier forms (a generation alone; "GENERATION-N", without the
    ledger's epoch) are refused, saying why and what to write."""
    form = '"<node>@<generation>-<epoch>-<loss>"'
    assert form in problems(tmp_path, extra='fenced = "b"')
    assert "fenced 'x' is not one of" in problems(tmp_path, extra='fenced = "x@0123456789ABCDEF-5EED0001-1"')
    assert "declared primary" in problems(tmp_path, extra='fenced = "a@0123456789ABCDEF-5EED0001-1"')
    assert form in problems(tmp_path, extra='fenced = "b@0123456789ABCDEF-5EED0001-0"')
    old = problems(tmp_path, extra='fenced = "b@0123456789ABCDEF"')
    assert "a generation alone" in old and "later loss" in old and "as the pass prints it" in old
    old = problems(tmp_path, extra='fenced = "b@0123456789ABCDEF-1"')
    assert "the earlier form" in old and "epoch" in old and "re-created" in old and form in old
    res = load(tmp_path, extra='fenced = "b@0123456789abcdef-5eed0001-12"').spec.drbd["r0"]
    assert res.fenced == "b@0123456789abcdef-5eed0001-12"
    assert drbd_spec.fenced_node(res.fenced) == ("b", "0123456789ABCDEF-5EED0001-12")


# -- spent fence declarations (storage review, issue 20) ---------------------------------------

def _lost_peer(tmp_path, *, role="Secondary", cstate="WFConnection", spent=(), problem=None,
               records=None, gi=GI_USED, losses=None, declared=None):
    """Node a, declared primary with b declared fenced (``declared``; by default for loss 1
    at the generation it holds, GI_USED's current), b unreachable; the ledger as given (by
    default recording loss 1 at that generation, still open)."""
    if losses is None:
        losses = [_loss(1, gi.generation, True)]
    if declared is None:
        declared = f"{gi.generation}-{EPOCH}-1"
    spec = load(tmp_path, extra=f'fenced = "b@{declared}"').for_node("a")
    text = drbd.render("r0", spec.drbd["r0"])
    m = state.DrbdMinor(minor=0, cstate=cstate, role=role, peer_role="Unknown", disk="UpToDate",
                        peer_disk="DUnknown", protocol="C", ns_kib=NS, nr_kib=NR)
    st = _host(text, {0: m}, records=records)
    d = st.drbd
    ledger = dataclasses.replace(d.ledger, spent={f.key: f for f in spent}, problem=problem,
                                 losses={x.key: x for x in losses})
    rs = dataclasses.replace(d.resources["r0"], gi=gi)
    return spec, dataclasses.replace(st, drbd=dataclasses.replace(d, ledger=ledger, resources={"r0": rs}))


def _loss(n, generation=GI_USED.generation, open=True, **kw):
    """Loss ``n`` of b on a, recorded under EPOCH in this boot with the counters of now."""
    return state.DrbdLoss("r0", "a", n, generation, open, **{
        "epoch": EPOCH, "boot_id": BOOT, "ns": NS, "nr": NR, **kw})


INCIDENT = f"{GI_USED.generation}-{EPOCH}-1"


def test_the_ledger_keeps_its_epoch_spent_fence_declarations_and_losses():
    rec = state.DrbdMetaRecord("r0", "a", "serial:vdb-a", "/dev/vdb", state.JUST_CREATED_GI, "created")
    f = state.DrbdSpentFence("r0", "a", f"b@A923D7CF74DD8F8E-{EPOCH}-1", "connected")
    loss = _loss(3, "A923D7CF74DD8F8E")
    assert loss.incident == f"A923D7CF74DD8F8E-{EPOCH}-3"
    text = drbd.ledger_text([rec], [f], [loss], epoch=EPOCH)
    doc = json.loads(text)
    assert (doc["format"], doc["epoch"]) == (2, EPOCH) == (drbd.LEDGER_FORMAT, EPOCH)
    assert doc["losses"] == [{"resource": "r0", "node": "a", "ordinal": 3, "generation": "A923D7CF74DD8F8E",
                              "open": True, "boot_id": BOOT, "ns": NS, "nr": NR}]
    ledger = drbd.parse_ledger("/x", text)
    assert ledger.problem is None and ledger.epoch == EPOCH and ledger.records == {rec.key: rec}
    assert ledger.spent == {f.key: f} and ledger.losses == {loss.key: loss}
    with pytest.raises(ValueError):  # a loss is written under the ledger's own epoch only
        drbd.ledger_text([rec], [], [loss], epoch="5EED0002")
    with pytest.raises(ValueError):
        drbd.ledger_text([rec], epoch="")
    bare = drbd.ledger_text([rec], epoch=EPOCH)
    assert "fences" not in bare and "losses" not in bare
    for bad in (bare.replace('"metadata"', '"fences": [{"resource": "r0"}], "metadata"'),
                bare.replace('"metadata"', '"losses": [{"resource": "r0", "node": "a", "ordinal": 1, '
                             '"generation": "A923D7CF74DD8F8E", "open": true, "boot_id": "x", '
                             '"ns": -1, "nr": 0}], "metadata"'),
                bare.replace(f'"epoch": "{EPOCH}"', '"epoch": "xyz"'),
                bare.replace(f'"epoch": "{EPOCH}",', ''),
                bare.replace('"format": 2', '"format": 3')):
        assert drbd.parse_ledger("/x", bad).problem.startswith("/x cannot be read"), bad


def test_a_ledger_of_the_earlier_format_is_read_and_rewritten_under_a_new_epoch(tmp_path):
    """Format 1 (no epoch; its losses without boot or counters) is read, its records kept;
    its next write is format 2 under a new epoch (a version that knows format 1 only refuses
    it), and its open loss is over: the next loss is offered once that write is made."""
    rec = state.DrbdMetaRecord("r0", "a", "serial:vdb-a", "/dev/vdb", state.JUST_CREATED_GI, "created")
    old = json.dumps({"format": 1, "metadata": [{"resource": "r0", "node": "a", "disk": {
        "id": "serial:vdb-a", "path": "/dev/vdb"}, "gi": state.JUST_CREATED_GI, "how": "created"}],
        "losses": [{"resource": "r0", "node": "a", "ordinal": 1, "generation": GI_USED.generation,
                    "open": True}]})
    ledger = drbd.parse_ledger("/var/lib/reconciler/drbd.json", old)
    assert ledger.problem is None and ledger.epoch is None and ledger.records == {rec.key: rec}
    assert ledger.losses[("r0", "a")].incident == f"{GI_USED.generation}--1"  # never declarable
    spec, st = _lost_peer(tmp_path, declared=f"{GI_USED.generation}-5EED0002-2")
    st = dataclasses.replace(st, drbd=dataclasses.replace(st.drbd, ledger=dataclasses.replace(
        ledger, new_epoch="5EED0002")))
    out = plan_drbd(spec, st, "a")
    [rec_step] = [s.action for s in out.steps]
    assert isinstance(rec_step, actions.RecordDrbdLoss) and (rec_step.ordinal, rec_step.open) == (2, True)
    assert json.loads(rec_step.text)["format"] == 2 and json.loads(rec_step.text)["epoch"] == "5EED0002"
    assert not any(isinstance(s.action, actions.SetDrbdRole) for s in out.steps)
    # no incident is printed before the ledger has an epoch on disk: the one drawn for this
    # write is not written yet (a dry run would print a string no later ledger reproduces)
    [b] = out.blocked
    assert b.reason.count("5EED0002") == 1 and "has no epoch yet" in b.reason  # (the quote)
    assert "declare fenced" not in b.reason


def test_the_ledger_write_syncs_its_directory_and_the_directorys_parent():
    """(storage review, F6) mkdir -p may have just created the directory: without a sync of
    its parent, a power loss can take the ledger with it."""
    argv = [c.argv for c in drbd.write_ledger("/var/lib/reconciler/drbd.json", "{}\n")]
    assert argv == [("mkdir", "-p", "/var/lib/reconciler"),
                    ("dd", "of=/var/lib/reconciler/.drbd.json.tmp", "conv=fsync", "status=none"),
                    ("mv", "-f", "/var/lib/reconciler/.drbd.json.tmp", "/var/lib/reconciler/drbd.json"),
                    ("sync", "/var/lib/reconciler"), ("sync", "/var/lib")]


def test_proc_drbd_counters_from_the_lab_and_the_simulator_give_the_same_fields(pair):
    """What DRBD exchanged with its peer (ns:, nr:, KiB) is read per minor from /proc/drbd
    (lab recording); the simulator prints the same fields, and counts replicated writes."""
    lab = (OUT / "proc" / "62_link_cut_node-b.txt").read_text()
    _, minors = drbd.parse_proc(lab)
    assert (minors[0].ns_kib, minors[0].nr_kib) == (1045, 69938)
    assert drbd.parse_proc("version: 8.4.11 (api:1/proto:86-101)\n 1: cs:Unconfigured\n")[1][1].nr_kib is None
    pair.converge(pair.spec())
    before = drbd.parse_proc(pair.hosts["node-b"].read("/proc/drbd"))[1][0]
    pair.net.write("node-a", 0, "replicated", kib=64)
    sim = pair.hosts["node-b"].read("/proc/drbd")
    fields = lambda text: [w.split(":")[0] for w in text.splitlines()[3].split()]
    assert fields(sim) == fields(lab)
    after = drbd.parse_proc(sim)[1][0]
    assert (after.ns_kib, after.nr_kib) == (before.ns_kib, before.nr_kib + 64)


def test_a_loss_is_over_once_the_survivor_exchanged_data_with_its_peer_in_the_same_boot(tmp_path):
    """(storage review, F2) In the boot the loss was recorded in, /proc/drbd's ns:/nr: moved:
    the nodes reconnected (no pass saw it) and exchanged data; the loss is over, the next is
    recorded and offered, and the declaration for the old one promotes nothing. After a
    reboot (the counters began again) the open loss is recorded again with this boot's id
    and counters, the same incident, and its declaration promotes."""
    for moved in (dict(nr=NR - 64), dict(ns=NS - 1)):
        spec, st = _lost_peer(tmp_path, losses=[_loss(1, **moved)])
        out = plan_drbd(spec, st, "a")
        [rec] = [s.action for s in out.steps]
        assert isinstance(rec, actions.RecordDrbdLoss) and (rec.ordinal, rec.open) == (2, True)
        assert (rec.boot_id, rec.ns, rec.nr) == (BOOT, NS, NR)
        [b] = out.blocked
        assert "another incident" in b.reason and f'"b@{GI_USED.generation}-{EPOCH}-2"' in b.reason
    spec, st = _lost_peer(tmp_path, losses=[_loss(1, boot_id="an-earlier-boot", nr=5, ns=7)])
    out = plan_drbd(spec, st, "a")
    rec, promote, spend = out.steps
    assert isinstance(rec.action, actions.RecordDrbdLoss) and rec.action.loss == _loss(1)
    assert "rebooted" in rec.reason and promote.action.fenced == f"b@{INCIDENT}"
    assert promote.after >= {rec.action.key}


def test_the_boot_or_counters_unreadable_give_no_incident(tmp_path):
    spec, st = _lost_peer(tmp_path)
    for d in (dataclasses.replace(st.drbd, boot_id=None),
              dataclasses.replace(st.drbd, minors={0: dataclasses.replace(st.drbd.minors[0], nr_kib=None)})):
        out = plan_drbd(spec, dataclasses.replace(st, drbd=d), "a")
        assert not out.steps and "cannot be told from an earlier one" in out.blocked[0].reason


def test_a_fenced_promotion_is_planned_then_recorded_as_spent(tmp_path):
    spec, st = _lost_peer(tmp_path)
    out = plan_drbd(spec, st, "a")
    assert not out.blocked
    assert [s.action.key for s in out.steps] == [f"drbd:r0:role:fenced:b@{INCIDENT}", "drbd:r0:fence-spent"]
    promote, spend = out.steps
    assert spend.after == {promote.action.key}
    assert (spend.action.how, spend.action.fenced) == ("used", f"b@{INCIDENT}")
    assert '"fenced": "b@' + INCIDENT + '"' in spend.action.text  # the records stay too
    assert '"serial:vdb-a"' in spend.action.text and '"ordinal": 1' in spend.action.text


def test_the_first_pass_to_see_the_loss_records_it_and_offers_it(tmp_path):
    """No loss recorded yet (or the last one over, or recorded at another generation): the
    pass records the next one and offers it; a declaration for it (a dry run printed it)
    promotes only after the record is written."""
    for losses, n in (([], 1), ([_loss(4, GI_USED.generation, False)], 5),
                      ([_loss(4, "1111111111111110", True)], 5)):
        spec, st = _lost_peer(tmp_path, losses=losses, declared=f"0123456789ABCDEF-{EPOCH}-9")
        out = plan_drbd(spec, st, "a")
        [rec] = [s.action for s in out.steps]
        assert isinstance(rec, actions.RecordDrbdLoss) and (rec.ordinal, rec.generation, rec.open) == (
            n, GI_USED.generation, True)
        assert f'declare fenced = "b@{GI_USED.generation}-{EPOCH}-{n}" in [drbd.r0] once b is powered off' in out.blocked[0].reason
        spec, st = _lost_peer(tmp_path, losses=losses, declared=f"{GI_USED.generation}-{EPOCH}-{n}")
        out = plan_drbd(spec, st, "a")
        rec, promote, spend = out.steps
        assert isinstance(rec.action, actions.RecordDrbdLoss) and promote.after >= {rec.action.key}
        assert promote.action.fenced == f"b@{GI_USED.generation}-{EPOCH}-{n}" and spend.action.how == "used"
        assert '"ordinal": ' + str(n) in spend.action.text  # the chained write keeps the loss


def test_a_loss_is_closed_once_the_nodes_are_seen_connected(tmp_path):
    spec, st = _lost_peer(tmp_path, role="Primary", cstate="Connected")
    out = plan_drbd(spec, st, "a")
    [close] = [s.action for s in out.steps if isinstance(s.action, actions.RecordDrbdLoss)]
    assert (close.ordinal, close.open) == (1, False)
    spec, st = _lost_peer(tmp_path, role="Primary", cstate="Connected",
                          losses=[_loss(1, GI_USED.generation, False)])
    assert not any(isinstance(s.action, actions.RecordDrbdLoss) for s in plan_drbd(spec, st, "a").steps)


def test_a_spent_declaration_or_an_unreadable_ledger_promotes_nothing(tmp_path):
    for how in ("used", "connected"):
        # (the loss it named still open: a pass that recorded the declaration spent ended
        # before it recorded the loss over, and the link dropped again)
        f = state.DrbdSpentFence("r0", "a", f"b@{INCIDENT}", how)
        spec, st = _lost_peer(tmp_path, spent=[f])
        out = plan_drbd(spec, st, "a")
        [b] = out.blocked
        assert "already spent" in b.reason and "remove it" in b.reason
        # that loss is over for fencing: this one is the next, which the pass offers
        [rec] = [s.action for s in out.steps]
        assert isinstance(rec, actions.RecordDrbdLoss) and (rec.ordinal, rec.open) == (2, True)
        assert f'declare fenced = "b@{GI_USED.generation}-{EPOCH}-2"' in b.reason
    spec, st = _lost_peer(tmp_path, problem="/var/lib/reconciler/drbd.json cannot be read as the DRBD ledger")
    out = plan_drbd(spec, st, "a")
    assert not out.steps and "cannot be read" in out.blocked[0].reason
    assert "already spent cannot be known" in out.blocked[0].reason


def test_a_declaration_for_a_loss_that_is_over_promotes_nothing(tmp_path):
    """Loss 1 ended (seen connected) and loss 2 is open at the same generation: the
    declaration for loss 1 is another incident's, whatever the generation."""
    spec, st = _lost_peer(tmp_path, losses=[_loss(2, GI_USED.generation, True)])
    out = plan_drbd(spec, st, "a")
    assert not out.steps
    [b] = out.blocked
    assert "another incident" in b.reason and f'"b@{GI_USED.generation}-{EPOCH}-2"' in b.reason


def test_a_declaration_is_spent_when_seen_connected_or_this_node_is_primary_without_its_peer(tmp_path):
    for role, cstate, how in (("Secondary", "Connected", "connected"),
                              ("Primary", "Connected", "connected"),
                              ("Primary", "WFConnection", "used")):
        spec, st = _lost_peer(tmp_path, role=role, cstate=cstate)
        out = plan_drbd(spec, st, "a")
        spends = [s.action for s in out.steps if isinstance(s.action, actions.SpendDrbdFence)]
        assert [(a.how, a.node, a.fenced) for a in spends] == [(how, "a", f"b@{INCIDENT}")], (role, cstate)
        assert not any(isinstance(s.action, actions.SetDrbdRole) and s.action.fenced for s in out.steps)
    f = state.DrbdSpentFence("r0", "a", f"b@{INCIDENT}", "connected")
    spec, st = _lost_peer(tmp_path, cstate="Connected", spent=[f])
    assert not any(isinstance(s.action, actions.SpendDrbdFence) for s in plan_drbd(spec, st, "a").steps)


def test_a_metadata_record_written_in_the_same_pass_keeps_the_spent_declarations(tmp_path):
    f = state.DrbdSpentFence("r1", "a", "b@0123456789ABCDEE-5EED0001-1", "used")
    spec, st = _lost_peer(tmp_path, cstate="Connected", records=[], spent=[f])
    out = plan_drbd(spec, st, "a")
    keys = [s.action.key for s in out.steps]
    assert {"drbd:r0:fence-spent", "drbd:r0:record", "drbd:r0:loss"} <= set(keys)
    last = out.steps[max(keys.index("drbd:r0:fence-spent"), keys.index("drbd:r0:record"),
                         keys.index("drbd:r0:loss"))].action
    ledger = drbd.parse_ledger("/x", last.text)
    assert set(ledger.spent) == {f.key, ("r0", "a", f"b@{INCIDENT}")}
    assert set(ledger.records) == {("r0", "a")}
    assert ledger.losses == {("r0", "a"): _loss(1, GI_USED.generation, False)}


def test_a_promotion_is_checked_again_on_the_host_as_last_observed(tmp_path):
    """SetDrbdRole(Primary).waiting_for: connected (the peer not primary unless both are
    declared primary), or, planned as a fenced promotion, still cut off, still holding the
    declared incident's generation, and that loss still the one the ledger has open."""
    _, st = _lost_peer(tmp_path)

    def at(cstate="Connected", peer_role="Secondary", gi=GI_USED, losses=None):
        m = dataclasses.replace(st.drbd.minors[0], cstate=cstate, peer_role=peer_role)
        rs = dataclasses.replace(st.drbd.resources["r0"], gi=gi)
        ledger = st.drbd.ledger if losses is None else dataclasses.replace(
            st.drbd.ledger, losses={x.key: x for x in losses})
        return dataclasses.replace(st, drbd=dataclasses.replace(st.drbd, minors={0: m}, resources={"r0": rs},
                                                                ledger=ledger))

    plain = actions.SetDrbdRole(resource="r0", role="Primary")
    assert plain.waiting_for(at()) is None
    assert "not connected" in plain.waiting_for(at("WFConnection", "Unknown"))
    assert "the peer is primary" in plain.waiting_for(at(peer_role="Primary"))
    assert dataclasses.replace(plain, two_primaries=True).waiting_for(at(peer_role="Primary")) is None
    fenced = actions.SetDrbdRole(resource="r0", role="Primary", fenced_node="b",
                                 fenced_incident=INCIDENT)
    assert fenced.waiting_for(at("WFConnection", "Unknown")) is None
    assert "connected again" in fenced.waiting_for(at())
    newer = dataclasses.replace(GI_USED, current="1111111111111111")
    assert "now holds 1111111111111110" in fenced.waiting_for(at("WFConnection", "Unknown", newer))
    assert "cannot be read" in fenced.waiting_for(at("WFConnection", "Unknown", None))
    for losses in ([], [_loss(1, GI_USED.generation, False)],
                   [_loss(2, GI_USED.generation, True)],
                   [dataclasses.replace(_loss(1), epoch="5EED0002")]):
        assert "not the loss" in fenced.waiting_for(at("WFConnection", "Unknown", losses=losses)), losses
    # the loss recorded in another boot, or data exchanged with the peer since (F2)
    for loss, why in ((_loss(1, boot_id="an-earlier-boot"), "rebooted"),
                      (_loss(1, nr=NR - 1), "exchanged data with its peer")):
        assert why in fenced.waiting_for(at("WFConnection", "Unknown", losses=[loss])), loss
