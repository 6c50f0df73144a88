"""Seed 004 in the simulator: node a exports a disk and an LV over iSCSI (LIO, ACL, CHAP);
node b logs in, adds the disk to its VG and moves an LV onto it, in one plan. Each refusal,
and each login error naming the session while unrelated steps go on."""

from __future__ import annotations

import sys
import textwrap

import pytest
from support import M
from support.nodes import Nodes

from reconciler import controller
from reconciler.simulate import SimulatedHost
from reconciler.simulate.cluster import Cluster
from reconciler.spec import loading

IQN = "iqn.2003-01.org.example.a:export0"
INIT_B = "iqn.2004-10.com.example:b"
PORTAL = "192.0.2.1:3260"
DISK0 = f"/dev/disk/by-path/ip-{PORTAL}-iscsi-{IQN}-lun-0"
CHAP = "userid = b\npassword = abcdefghijkl\n"

SPEC = f"""
[vg.exp]
nodes = ["a"]
pvs = ["/dev/vdc"]
[vg.exp.lv.lv0]
size = "32M"

[iscsi_target.export0]
nodes = ["a"]
iqn = "{IQN}"
portals = ["{PORTAL}"]
acls = ["{INIT_B}"]
chap_file = "/etc/reconciler/a.chap"
[iscsi_target.export0.lun.0]
device = "/dev/vdb"
{{lun0_state}}
[iscsi_target.export0.lun.1]
device = "/dev/exp/lv0"

[iscsi_session.from_a]
nodes = ["b"]
portal = "{PORTAL}"
target = "{IQN}"
chap_file = "/etc/reconciler/b.chap"
luns = [0]
state = "{{session}}"

[vg.vg0]
nodes = ["b"]
pvs = [{{pvs}}]
[vg.vg0.lv.data]
size = "64M"
placement = ["{DISK0}"]
move = "pvmove"
[vg.vg0.lv.other]
size = "16M"
placement = ["/dev/vda"]
"""


class Pair(Nodes):
    """Node a (the target) and node b (the initiator) under the one harness."""

    def __init__(self, tmp_path):
        cluster = Cluster()
        self.fabric = cluster.fabric
        self.a = cluster.add_host("a", seed="a")
        self.b = cluster.add_host("b", seed="b")
        cluster.join_iscsi("a")
        cluster.join_iscsi("b", initiator=INIT_B)
        self.a.add_device("/dev/vdb", 256 * M)
        self.a.add_device("/dev/vdc", 128 * M)
        self.a.md.files["/etc/reconciler/a.chap"] = CHAP
        self.b.md.files["/etc/reconciler/b.chap"] = CHAP
        self.b.add_device("/dev/vda", 256 * M)
        self.b.add_vg("vg0", ["/dev/vda"])
        self.b.add_lv("vg0", "data", 64 * M)
        super().__init__(tmp_path, cluster)

    def spec(self, extra="", *, target_state="", back=False, session="logged-in",
             pvs=f'"/dev/vda", "{DISK0}"', lun0_state=""):
        """The pair's spec (``SPEC``), with ``extra`` TOML appended, ``target_state`` in the
        target, and ``back``: vg0's data back on /dev/vda (b lets go of LUN 0)."""
        text = textwrap.dedent(SPEC).format(session=session, pvs=pvs, lun0_state=lun0_state) + extra
        if target_state:
            text = text.replace('chap_file = "/etc/reconciler/a.chap"\n',
                                f'chap_file = "/etc/reconciler/a.chap"\nstate = "{target_state}"\n', 1)
        if back:
            text = text.replace(f'placement = ["{DISK0}"]', 'placement = ["/dev/vda"]')
        return super().spec(text)

    def run(self, node, loaded, *, dry_run=False):
        return self.one_pass(node, loaded, dry_run=dry_run)

    def converge(self, node, loaded, passes=200):
        return self.converge_node(node, loaded, max_passes=passes)


@pytest.fixture
def pair(tmp_path):
    return Pair(tmp_path)


def _keys(plan):
    return [s.key for s in plan.steps]


def test_dry_run_on_b_before_anything_exists_shows_the_whole_chain_in_order(pair):
    r = pair.run("b", pair.spec(), dry_run=True)
    keys = _keys(r.plan)
    assert not r.plan.blocked, r.plan.blocked
    chain = ["iscsi-session:from_a:login", f"pv:{DISK0}:create", f"vg:vg0:extend:{DISK0}",
             "lv:vg0/data:move:/dev/vda"]
    assert [k for k in keys if k in chain] == chain, keys
    assert "iscsi-session:from_a:login" in r.plan.steps[keys.index(f"pv:{DISK0}:create")].after
    assert pair.b.calls and all(c.argv[0] == "lvm" for c in pair.b.calls)  # observed only


def test_a_exports_then_b_converges_and_the_data_moves(pair):
    loaded = pair.spec()
    ra = pair.converge("a", loaded)
    assert ra.exit_code == 0, ra.final
    keys = _keys(ra.plan)
    # the LV is created before the target that exports it (needs/provides on node a)
    assert keys.index("lv:exp/lv0:create") < keys.index("iscsi-target:export0:apply")
    t = pair.a.iscsi.targets[IQN]
    assert t.enabled and t.auth and set(t.luns) == {0, 1}
    rb = pair.converge("b", loaded)
    assert rb.exit_code == 0, rb.final
    lv = pair.b.lv("vg0", "data")
    assert {area.device.path for seg in lv.segments for area, _ in seg.areas} == {"/dev/sda"}
    # (the simulator models LV placement, not LV content: the lab test checks the data's md5)
    assert pair.a.iscsi.targets[IQN].sessions == {INIT_B}
    # settled on both: nothing more to do, observation costs one process (lvm fullreport)
    for node in ("a", "b"):
        r = pair.run(node, loaded)
        assert r.plan.converged and r.processes == 1, (node, str(r.plan))


def _converged_pair(pair):
    loaded = pair.spec()
    assert pair.converge("a", loaded).exit_code == 0
    assert pair.converge("b", loaded).exit_code == 0


def test_logout_is_refused_while_the_disk_is_a_pv_of_bs_vg(pair):
    _converged_pair(pair)
    r = pair.run("b", pair.spec(session="absent"))
    (b,) = [b for b in r.plan.blocked if b.object == "iscsi session from_a"]
    assert "logout refused" in b.reason and "an LVM PV of VG vg0" in b.reason
    assert not any(c.argv[:2] == ("iscsiadm", "-m") and "--logout" in c.argv for c in pair.b.calls)


def test_removing_a_lun_while_b_is_logged_in_is_refused_unless_the_export_ends(pair):
    _converged_pair(pair)
    r = pair.run("a", pair.spec(lun0_state='state = "absent"'))
    (b,) = r.plan.blocked
    assert b.object == "iscsi target export0"
    assert "removing LUN 0 is refused" in b.reason and INIT_B in b.reason
    assert 0 in pair.a.iscsi.targets[IQN].luns


def test_a_lun_removal_the_spec_pairs_with_a_logout_waits_on_that_node(pair):
    """Issue 17 (9): the spec already says the session is absent on b: a waits for b's
    logout (exit 2, naming b), it is not refused with advice to change the spec."""
    _converged_pair(pair)
    before = len(pair.a.calls)
    loaded = pair.spec(lun0_state='state = "absent"', session="absent")
    r = pair.run("a", loaded)
    assert r.exit_code == controller.EXIT_PENDING and not r.final.blocked, r.final
    (wait,) = r.final.waits
    assert (wait.object, wait.waiting_on) == ("iscsi target export0", "b")
    assert wait.what == (f"log out of {IQN} (iscsi_session.from_a absent there; logged in "
                         f"now: {INIT_B}; declaring initiator = \"<iqn>\" in each session (the "
                         f"node's /etc/iscsi/initiatorname.iscsi) lets an initiator no spec "
                         f"declares be told apart, and refused instead of waited on)")
    assert r.final.only_waiting_on_others
    assert not [c for c in pair.a.calls[before:] if c.mutates]
    assert 0 in pair.a.iscsi.targets[IQN].luns
    # the same spec seen without the other nodes' part (a planner given only a's slice)
    from reconciler import planning
    sliced = planning.plan(loaded.for_node("a"), _observed(pair.a, loaded), node="a")
    (b,) = sliced.blocked
    assert "removing LUN 0 is refused" in b.reason


def _observed(host, loaded):
    from reconciler import observing
    spec = loaded.for_node("a")
    return observing.observe(host, host="local", devices=observing.spec_devices(spec),
                             resolve=host.resolve_device, now=host.clock.now(),
                             iscsi_parts=observing.iscsi_parts(spec))


def test_wrong_chap_is_a_clear_error_naming_the_session_and_unrelated_steps_go_on(pair):
    loaded = pair.spec()
    assert pair.converge("a", loaded).exit_code == 0
    pair.b.md.files["/etc/reconciler/b.chap"] = "userid = b\npassword = wrongwrong99\n"
    r = pair.run("b", loaded)
    by_key = {x.step.key: x for x in r.report.results}
    login = by_key["iscsi-session:from_a:login"]
    assert login.outcome == "failed"
    assert "iscsi session from_a: the target refused the login" in str(login.error)
    assert by_key[f"pv:{DISK0}:create"].outcome == "skipped"
    assert by_key["lv:vg0/other:create"].outcome == "done"  # nothing unrelated held back


def test_unreachable_portal_and_missing_target_are_named(pair):
    loaded = pair.spec()
    pair.fabric.unreachable.add(PORTAL)
    r = pair.run("b", loaded)
    login = next(x for x in r.report.results if x.step.key == "iscsi-session:from_a:login")
    assert "iscsi session from_a: the portal 192.0.2.1:3260 is unreachable" in str(login.error)
    # the spec declares the target on a: a wait on a (exit 2), not an error (issue 17)
    assert login.outcome == "deferred" and r.exit_code == controller.EXIT_PENDING
    assert login.detail.startswith(f"waiting on another node: a: export {IQN} at {PORTAL}; ")
    pair.fabric.unreachable.clear()
    pair.converge("a", loaded)
    pair.a.iscsi.targets[IQN].iqn = IQN  # (the target exists, but under another name below)
    pair.a.iscsi.targets["iqn.2003-01.org.example.a:other"] = pair.a.iscsi.targets.pop(IQN)
    r = pair.run("b", loaded)
    login = next(x for x in r.report.results if x.step.key == "iscsi-session:from_a:login")
    assert "iscsi session from_a: no such target at that portal" in str(login.error)
    assert login.outcome == "deferred" and r.exit_code == controller.EXIT_PENDING
    # a target the spec does not declare anywhere: nobody to wait for, an error
    text = (pair.tmp / "spec.toml").read_text()
    head, rest = text.split("[iscsi_target.export0]")
    (pair.tmp / "spec.toml").write_text(head + "[iscsi_session" + rest.split("[iscsi_session", 1)[1])
    alone = loading.load(pair.tmp / "spec.toml")
    assert not alone.spec.iscsi_target and alone.spec.iscsi_session
    r = pair.run("b", alone)
    login = next(x for x in r.report.results if x.step.key == "iscsi-session:from_a:login")
    assert login.outcome == "failed" and r.exit_code == controller.EXIT_ERROR
    assert "iscsi session from_a: no such target at that portal" in login.detail


def test_chap_file_readable_by_others_is_refused_at_apply(pair):
    pair.a.iscsi.file_modes["/etc/reconciler/a.chap"] = (0o644, 0)
    r = pair.run("a", pair.spec())
    res = next(x for x in r.report.results if x.step.key == "iscsi-target:export0:apply")
    assert res.outcome == "failed" and "mode 0644" in str(res.error)
    assert "abcdefghijkl" not in str(res.error)


def test_a_target_the_spec_does_not_name_is_unmanaged_and_untouched(pair):
    loaded = pair.spec()
    pair.converge("a", loaded)
    from reconciler.simulate.iscsi_model import Target
    pair.a.iscsi.targets["iqn.2003-01.org.example.a:theirs"] = Target(
        iqn="iqn.2003-01.org.example.a:theirs", enabled=True)
    r = pair.run("a", loaded)
    assert "iscsi target iqn.2003-01.org.example.a:theirs" in r.plan.unmanaged
    assert r.plan.converged


def test_a_login_to_a_portal_no_node_is_declared_to_export_at_is_an_error_not_a_wait(
        tmp_path, monkeypatch):
    """A session whose portal is mistyped: a exports the target at PORTAL as declared and is
    in sync; b's login finds nothing at the typo. That is not a wait on a (a will never
    export there): the pass fails naming the session, as without an exporting node."""
    wrong = "192.0.2.9:3260"
    text = (SPEC.replace(f'portal = "{PORTAL}"', f'portal = "{wrong}"')
            .replace(f'placement = ["{DISK0}"]', 'placement = ["/dev/vda"]'))
    assert text.count(wrong) == 1
    monkeypatch.setattr(sys.modules[__name__], "SPEC", text)
    pair = Pair(tmp_path)
    loaded = pair.spec(pvs='"/dev/vda"')
    assert pair.converge("a", loaded).exit_code == 0
    r = pair.run("b", loaded)
    assert not r.final.waits, r.final
    assert r.exit_code == controller.EXIT_ERROR and "iscsi session from_a" in r.error, r.final


# -- a removal waits on the declared nodes only for the initiators their sessions name ------------

INIT_C = "iqn.2004-10.com.example:c"


def _with_c(tmp_path, monkeypatch, initiator=INIT_B, more=""):
    """a exports to b and c (both in the ACLs); b's session (``from_a``) names ``initiator``
    when given; c logs in with a spec of its own that a's spec never declares."""
    text = (SPEC.replace(f'acls = ["{INIT_B}"]', f'acls = ["{INIT_B}", "{INIT_C}"]')
            .replace(f'placement = ["{DISK0}"]', 'placement = ["/dev/vda"]'))
    if initiator:
        text = text.replace('state = "{session}"', f'state = "{{session}}"\ninitiator = "{initiator}"')
    monkeypatch.setattr(sys.modules[__name__], "SPEC", text + more)
    pair = Pair(tmp_path)
    c = SimulatedHost(seed="c")
    pair.fabric.join(c, initiator=INIT_C)
    c.md.files["/etc/reconciler/c.chap"] = CHAP
    loaded = pair.spec(session="absent", pvs='"/dev/vda"')
    assert pair.converge("a", loaded).exit_code == 0
    (tmp_path / "c.toml").write_text(textwrap.dedent(f"""
        [iscsi_session.mine]
        nodes = ["c"]
        portal = "{PORTAL}"
        target = "{IQN}"
        chap_file = "/etc/reconciler/c.chap"
        luns = [0]
        """))
    env = controller.Environment(runner=c, node="c", resolve=c.resolve_device, clock=c.clock)
    mem = controller.Memory()
    for _ in range(5):
        controller.reconcile_once(loading.load(tmp_path / "c.toml"), env, memory=mem)
    assert pair.a.iscsi.targets[IQN].sessions == {INIT_C}
    assert pair.run("b", loaded).exit_code == controller.EXIT_IN_SYNC  # b: nothing to do, ever
    return pair


def test_a_target_removal_never_waits_on_a_node_while_an_undeclared_initiator_is_logged_in(
        tmp_path, monkeypatch):
    """Review of issue 17 (9): the export may end once every session the spec declares to
    the target is absent, and waited on those nodes while anything was logged in, never
    checking that what is logged in is one of them. b (the declared session, absent, naming
    its initiator) is in sync and never logged in; c, which no spec declares, is logged in
    and may be writing: the removal is refused naming c (it waited on b for ever)."""
    pair = _with_c(tmp_path, monkeypatch)
    gone = pair.spec(session="absent", pvs='"/dev/vda"', lun0_state='state = "absent"')
    r = pair.run("a", gone)
    assert 0 in pair.a.iscsi.targets[IQN].luns
    assert r.exit_code == controller.EXIT_ERROR and not r.final.waits, (
        f"a waits on b, which has nothing to do, while c is logged in: {r.final}")
    (b,) = r.final.blocked
    assert b.object == "iscsi target export0"
    assert b.reason.startswith(f"removing LUN 0 is refused: initiator(s) {INIT_C} are logged "
                               f"in to {IQN}")
    assert f"no session the spec declares absent names {INIT_C}" in b.reason
    assert f"iscsi_session.from_a on b: {INIT_B}" in b.reason


def test_an_initiator_declared_by_no_session_refuses_the_removal_also_beside_one_without_a_name(
        tmp_path, monkeypatch):
    """A second absent session (on c) that names no initiator: c's IQN, logged in, is named
    by no session, so the removal is refused, saying which session could name it."""
    more = textwrap.dedent(f"""
        [iscsi_session.to_c]
        nodes = ["c"]
        portal = "{PORTAL}"
        target = "{IQN}"
        state = "absent"
        """)
    pair = _with_c(tmp_path, monkeypatch, more=more)
    r = pair.run("a", pair.spec(session="absent", pvs='"/dev/vda"',
                                lun0_state='state = "absent"'))
    assert r.exit_code == controller.EXIT_ERROR and not r.final.waits, r.final
    (b,) = r.final.blocked
    assert f"initiator(s) {INIT_C} are logged in" in b.reason
    assert "iscsi_session.to_c on c declares no initiator" in b.reason
    assert 0 in pair.a.iscsi.targets[IQN].luns


def test_without_declared_initiators_the_wait_lists_who_is_logged_in_and_how_to_tell_apart(
        tmp_path, monkeypatch):
    """No session names its initiator: the removal waits on b as before (the exporter cannot
    tell b's initiator from c's), and the wait says who is logged in and what tells them
    apart."""
    pair = _with_c(tmp_path, monkeypatch, initiator="")
    r = pair.run("a", pair.spec(session="absent", pvs='"/dev/vda"',
                                lun0_state='state = "absent"'))
    assert r.exit_code == controller.EXIT_PENDING and not r.final.blocked, r.final
    (wait,) = r.final.waits
    assert wait.waiting_on == "b"
    assert wait.what == (
        f"log out of {IQN} (iscsi_session.from_a absent there; logged in now: {INIT_C}; "
        f"declaring initiator = \"<iqn>\" in each session (the node's "
        f"/etc/iscsi/initiatorname.iscsi) lets an initiator no spec declares be told apart, "
        f"and refused instead of waited on)")
    assert 0 in pair.a.iscsi.targets[IQN].luns


@pytest.mark.parametrize("declared", [False, True])
def test_a_removal_waits_on_the_node_whose_initiator_is_logged_in_then_goes(
        tmp_path, monkeypatch, declared):
    """b logged in, its session now absent (naming its initiator or not): a waits on b
    (exit 2), b logs out, a removes the LUN."""
    text = SPEC.replace(f'placement = ["{DISK0}"]', 'placement = ["/dev/vda"]')
    if declared:
        text = text.replace('state = "{session}"', f'state = "{{session}}"\ninitiator = "{INIT_B}"')
    monkeypatch.setattr(sys.modules[__name__], "SPEC", text)
    pair = Pair(tmp_path)
    ready = pair.spec(pvs='"/dev/vda"')
    assert pair.converge("a", ready).exit_code == 0
    assert pair.converge("b", ready).exit_code == 0  # logged in, the disk in no VG
    assert pair.a.iscsi.targets[IQN].sessions == {INIT_B}
    gone = pair.spec(lun0_state='state = "absent"', session="absent", pvs='"/dev/vda"')
    r = pair.run("a", gone)
    assert r.exit_code == controller.EXIT_PENDING and not r.final.blocked, r.final
    (wait,) = r.final.waits
    assert wait.waiting_on == "b" and f"logged in now: {INIT_B}" in wait.what
    assert ("lets an initiator no spec declares be told apart" in wait.what) is not declared
    assert pair.converge("b", gone).exit_code == 0
    assert pair.a.iscsi.targets[IQN].sessions == set()
    assert pair.converge("a", gone).exit_code == 0
    assert 0 not in pair.a.iscsi.targets[IQN].luns


def test_a_session_naming_another_initiator_than_the_nodes_own_is_blocked(tmp_path, monkeypatch):
    """b's spec says its initiator is INIT_C, its /etc/iscsi/initiatorname.iscsi says INIT_B:
    the session is blocked, naming both (no login), since the exporter would take c's logins
    for b's."""
    text = (SPEC.replace('state = "{session}"', f'state = "{{session}}"\ninitiator = "{INIT_C}"')
            .replace(f'placement = ["{DISK0}"]', 'placement = ["/dev/vda"]'))
    monkeypatch.setattr(sys.modules[__name__], "SPEC", text)
    pair = Pair(tmp_path)
    loaded = pair.spec(pvs='"/dev/vda"')
    assert pair.converge("a", loaded).exit_code == 0
    for session in ("logged-in", "absent"):
        r = pair.run("b", pair.spec(pvs='"/dev/vda"', session=session))
        assert r.exit_code == controller.EXIT_ERROR, r.final
        (b,) = [b for b in r.final.blocked if b.object == "iscsi session from_a"]
        assert b.reason == (
            f"the spec says this node's initiator is {INIT_C}, but "
            f"/etc/iscsi/initiatorname.iscsi here says {INIT_B}: the exporting node tells "
            f"this node's session from others by that name; correct initiator in "
            f"iscsi_session.from_a (or the file)")
        assert not [c for c in pair.b.calls if c.argv[0] == "iscsiadm"]
    assert pair.a.iscsi.targets[IQN].sessions == set()


def test_a_node_record_left_empty_by_a_power_cut_is_written_anew_and_the_login_succeeds(pair):
    """Lab (reset of the initiator right after a login): open-iscsi's node record was still
    0 bytes on disk; discovery keeps such a record as it is, and every login then says "No
    records found". The login step removes a record with no ``node.name`` (nothing of it can
    be lost) before discovery, which writes it anew; a record with content is never touched."""
    from reconciler.runner import Command
    assert pair.converge("a", pair.spec()).exit_code == 0
    loaded = pair.spec(pvs='"/dev/vda"', back=True)
    assert pair.converge("b", loaded).exit_code == 0
    argv = ("iscsiadm", "-m", "node", "-T", IQN, "-p", PORTAL, "--logout")
    assert pair.b.run(Command(argv=argv)).rc == 0  # the session ends with the machine
    pair.b.iscsi.nodes[(PORTAL, IQN)] = {"broken": "0 bytes"}  # the power cut's record
    r = pair.converge("b", loaded)
    assert r.exit_code == 0, str(r.final)
    assert len(pair.b.iscsi.sessions) == 1 and not pair.b.iscsi.nodes[(PORTAL, IQN)].get("broken")
    ran = [c.argv for c in pair.b.calls]
    clean = next(i for i, a in enumerate(ran) if "node-clean" in a)
    assert any(a[:3] == ("iscsiadm", "-m", "discovery") for a in ran[clean:])


def test_node_clean_removes_only_a_record_that_holds_nothing(tmp_path):
    from reconciler.adapters import iscsi
    nodes = tmp_path / "nodes"
    empty = nodes / IQN / "192.0.2.1,3260,1"
    empty.mkdir(parents=True)
    (empty / "default").write_text("")
    kept = nodes / IQN / "192.0.2.1,3261,1"
    kept.mkdir(parents=True)
    (kept / "default").write_text(f"node.name = {IQN}\nnode.tpgt = 1\n")
    assert "192.0.2.1,3260,1" in iscsi.node_record_clean(PORTAL, IQN, str(nodes))
    assert not empty.exists()
    assert iscsi.node_record_clean("192.0.2.1:3261", IQN, str(nodes)) == "ok"
    assert (kept / "default").read_text().startswith("node.name")
    assert iscsi.node_record_clean(PORTAL, "iqn.2003-01.org.example:none", str(nodes)) == "ok"


def test_a_node_logging_in_to_its_own_target_applies_the_target_first(tmp_path):
    """One node exports a disk and logs in to it itself (the lab's systemd guest, a loopback
    check of a new target): the first pass applies the target before the login, so the
    login does not fail on a portal that this very plan is about to offer."""
    me, portal = "iqn.2004-10.com.example:sd", "127.0.0.1:3260"
    cluster = Cluster()
    sd = cluster.add_host("sd", seed="sd")
    cluster.join_iscsi("sd", initiator=me)
    sd.add_device("/dev/vdd", 8 * M)
    nodes = Nodes(tmp_path, cluster)
    loaded = nodes.spec(f"""
        [iscsi_session.self0]
        nodes = ["sd"]
        portal = "{portal}"
        target = "{IQN}"
        initiator = "{me}"

        [iscsi_target.self0]
        nodes = ["sd"]
        iqn = "{IQN}"
        portals = ["{portal}"]
        acls = ["{me}"]
        [iscsi_target.self0.lun.0]
        device = "/dev/vdd"
        """)
    r = nodes.one_pass("sd", loaded)
    assert r.exit_code == 0, r.final
    assert [(s.key, str(r.outcome(s.key).outcome)) for s in r.plan.steps] == [
        ("iscsi-target:self0:apply", "done"), ("iscsi-session:self0:login", "done")]
    assert sd.iscsi.targets[IQN].sessions == {me}
    assert nodes.one_pass("sd", loaded).plan.converged
