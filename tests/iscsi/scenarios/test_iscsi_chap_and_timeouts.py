"""Issue 19: a rotated CHAP secret reaches the target and the initiator's node record, found
by comparing what each holds with the file (observation, not memory), never in an argv or a
log; the session's link-cut timeouts declared, validated, applied and observed."""

from __future__ import annotations

import pytest
from loguru import logger

from reconciler import controller, errors, observing
from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command
from reconciler.adapters import iscsi as adapter
from reconciler.spec import loading

from test_iscsi_simulated import DISK0, INIT_B, IQN, PORTAL, Pair

NEW = "userid = b\npassword = rotated-0987\n"
TIMEOUTS = 'timeouts = { replacement_timeout = 15, noop_out_interval = 7, noop_out_timeout = 9 }\n'


@pytest.fixture
def pair(tmp_path):
    return Pair(tmp_path)


def _with_timeouts(pair, text=TIMEOUTS):
    loaded = pair.spec()
    spec_text = (pair.tmp / "spec.toml").read_text().replace(
        'state = "logged-in"\n', 'state = "logged-in"\n' + text, 1)
    (pair.tmp / "spec.toml").write_text(spec_text)
    return loading.load(pair.tmp / "spec.toml")


def _converged(pair, loaded):
    assert pair.converge("a", loaded).exit_code == 0
    r = pair.converge("b", loaded)
    assert r.exit_code == 0, r.final
    return r


def _argvs(host):
    return [" ".join(c.argv) for c in host.calls]


def _rotate(pair):
    pair.a.md.files["/etc/reconciler/a.chap"] = NEW
    pair.b.md.files["/etc/reconciler/b.chap"] = NEW


def _capture_logs():
    lines: list[str] = []
    return lines, logger.add(lambda m: lines.append(str(m)), level="DEBUG")


def test_a_rotation_is_held_on_the_target_while_the_initiator_is_logged_in(pair):
    """The lab: open-iscsi re-logs in after a link cut with the credentials the session
    logged in with. The target keeps the old secret while that session lives, so a link cut
    after the rotation recovers; the initiator's node record gets the new one (its next
    login), and its disks in use say what the operator must do to finish."""
    loaded = pair.spec()
    _converged(pair, loaded)
    acl = pair.a.iscsi.targets[IQN].acls[INIT_B]
    assert pair.run("a", loaded).plan.steps == ()  # in sync: nothing re-applied
    lines, sink = _capture_logs()
    try:
        _rotate(pair)
        ra = pair.run("a", loaded)
        assert ra.plan.steps == () and ra.exit_code == 1
        (held,) = ra.plan.blocked
        assert held.object == "iscsi target export0"
        assert "the CHAP rotation is held" in held.reason and INIT_B in held.reason
        assert "re-logs in after a link cut" in held.reason
        assert acl.password == "abcdefghijkl"  # LIO still admits the session's secret
        (session,) = pair.b.iscsi.sessions
        rb = pair.run("b", loaded)
        (step,) = rb.plan.steps
        assert step.key == "iscsi-session:from_a:update" and rb.exit_code == 1
        assert "CHAP credentials are not those of /etc/reconciler/b.chap" in step.reason
        (why,) = rb.plan.blocked
        assert why.object == "iscsi session from_a"
        assert "logged in with other CHAP credentials" in why.reason
        assert "an LVM PV of VG vg0" in why.reason and "reboot this node" in why.reason
        assert pair.b.iscsi.nodes[(PORTAL, IQN)]["password"] == "rotated-0987"
        assert pair.b.iscsi.sessions == [session]  # the session went on: no logout
        pair.fabric.blip(PORTAL)  # a link cut after the rotation: the session recovers
        assert session.state == "LOGGED_IN"
        assert pair.b.model.device(session.disks[0]).failed_at is None
        again = pair.run("b", loaded)
        assert again.plan.steps == () and len(again.plan.blocked) == 1
    finally:
        logger.remove(sink)
    calls = _argvs(pair.a) + _argvs(pair.b)
    assert not any("rotated-0987" in c or "abcdefghijkl" in c for c in calls)
    assert not any("rotated-0987" in line or "abcdefghijkl" in line for line in lines)
    assert any("node-update" in c for c in _argvs(pair.b))


def test_an_idle_session_logs_out_so_that_the_target_takes_the_new_secret_then_logs_in(pair):
    loaded = pair.spec(pvs='"/dev/vda"', back=True)  # b logs in but does not use the disk
    _converged(pair, loaded)
    acl = pair.a.iscsi.targets[IQN].acls[INIT_B]
    _rotate(pair)
    assert pair.run("a", loaded).plan.blocked  # held: b is logged in
    rb = pair.run("b", loaded)
    (step,) = rb.plan.steps
    assert step.key == "iscsi-session:from_a:logout" and "(rotated)" in step.reason
    assert rb.plan.blocked == () and pair.b.iscsi.sessions == []
    ra = pair.run("a", loaded)
    (step,) = ra.plan.steps
    assert step.key == "iscsi-target:export0:apply" and "(rotated)" in step.reason
    assert ra.exit_code == 0 and acl.password == "rotated-0987"
    rb = pair.run("b", loaded)
    assert [s.key for s in rb.plan.steps] == ["iscsi-session:from_a:login"], rb.final
    assert rb.exit_code == 0
    (session,) = pair.b.iscsi.sessions
    assert session.password == "rotated-0987"
    for node in ("a", "b"):
        r = pair.run(node, loaded)
        assert r.plan.steps == () and r.plan.blocked == (), r.plan
    pair.fabric.blip(PORTAL)
    assert session.state == "LOGGED_IN"


def test_a_disk_the_spec_is_about_to_make_a_pv_is_not_idle_for_a_rotation(pair):
    idle = pair.spec(pvs='"/dev/vda"', back=True)
    _converged(pair, idle)
    _rotate(pair)
    rb = pair.run("b", pair.spec(back=True), dry_run=True)  # now vg0 takes the disk too
    keys = [s.key for s in rb.plan.steps]
    assert "iscsi-session:from_a:logout" not in keys and f"pv:{DISK0}:create" in keys, keys
    (why,) = [b for b in rb.plan.blocked if b.object == "iscsi session from_a"]
    assert "named in vg.vg0.pvs" in why.reason


def test_a_target_with_no_initiator_logged_in_takes_the_new_secret_at_once(pair):
    loaded = pair.spec(session="absent", pvs='"/dev/vda"', back=True)
    assert pair.converge("a", loaded).exit_code == 0
    _rotate(pair)
    ra = pair.run("a", loaded)
    (step,) = ra.plan.steps
    assert "(rotated)" in step.reason and ra.plan.blocked == ()
    assert pair.a.iscsi.targets[IQN].acls[INIT_B].password == "rotated-0987"


def test_the_rotation_is_seen_by_a_fresh_reconciler_not_remembered(pair):
    loaded = pair.spec()
    _converged(pair, loaded)
    pair.b.iscsi.nodes[(PORTAL, IQN)]["password"] = "changed-by-hand"  # the record, by hand
    r = controller.reconcile_once(loaded, pair.env("b"))  # a new process: no memory
    assert [s.key for s in r.plan.steps] == ["iscsi-session:from_a:update"]
    assert pair.b.iscsi.nodes[(PORTAL, IQN)]["password"] == "abcdefghijkl"


def test_an_unreadable_chap_file_is_not_a_rotation(pair):
    loaded = pair.spec()
    _converged(pair, loaded)
    pair.b.md.files["/etc/reconciler/b.chap"] = "userid = b\n"  # half-written: no password
    assert pair.run("b", loaded).plan.steps == ()


class _NotRoot:
    """The host as another user than root sees it: secrets' files refuse to be read."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def read(self, path, *, host="local"):
        if path.startswith(("/etc/iscsi/nodes", "/etc/reconciler/")) or "/auth/password" in path:
            raise PermissionError(13, "Permission denied", path)
        return self.inner.read(path, host=host)


def test_a_dry_run_that_may_not_read_the_secrets_compares_nothing_and_goes_on(pair):
    loaded = pair.spec()
    _converged(pair, loaded)
    pair.a.md.files["/etc/reconciler/a.chap"] = NEW
    pair.b.md.files["/etc/reconciler/b.chap"] = NEW
    for node in ("a", "b"):
        r = controller.reconcile_once(loaded, pair.env(node, _NotRoot(pair.nodes[node].runner)),
                                      dry_run=True)
        assert r.error is None and r.plan.steps == () and r.exit_code == 0, r.plan


def test_timeouts_are_written_before_the_login_and_observed_live(pair):
    loaded = _with_timeouts(pair)
    _converged(pair, loaded)
    (s,) = pair.b.iscsi.sessions
    assert s.timeouts == {"replacement_timeout": 15, "noop_out_interval": 7,
                          "noop_out_timeout": 9}
    calls = _argvs(pair.b)
    update = next(i for i, c in enumerate(calls) if "node-update" in c)
    assert update < next(i for i, c in enumerate(calls) if "--login" in c)
    st = pair.run("b", loaded)
    assert st.plan.steps == ()


def test_a_changed_replacement_timeout_applies_to_the_live_session_without_a_logout(pair):
    loaded = _with_timeouts(pair)
    _converged(pair, loaded)
    (s,) = pair.b.iscsi.sessions
    changed = _with_timeouts(pair, TIMEOUTS.replace("15", "30").replace("= 7", "= 10"))
    r = pair.run("b", changed)
    (step,) = r.plan.steps
    assert step.key == "iscsi-session:from_a:update"
    assert "replacement_timeout is 15 in the node record, the spec says 30" in step.reason
    assert "the live session's replacement timeout (recovery_tmo) is 15s" in step.reason
    assert r.exit_code == 0
    assert pair.b.iscsi.sessions == [s] and s.timeouts["replacement_timeout"] == 30
    assert s.timeouts["noop_out_interval"] == 7  # the kernel's until the next login
    assert pair.b.iscsi.nodes[(PORTAL, IQN)]["noop_out_interval"] == "10"
    assert pair.run("b", changed).plan.steps == ()


def test_the_live_timeouts_are_observed_from_sysfs(pair):
    loaded = _with_timeouts(pair)
    _converged(pair, loaded)
    spec = loaded.for_node("b")
    st = observing.observe(pair.b, host="local", devices=observing.spec_devices(spec),
                           resolve=pair.b.resolve_device, iscsi_parts=observing.iscsi_parts(spec),
                           chap_files=observing.chap_files(spec))
    (seen,) = st.iscsi.sessions
    assert st.iscsi.chap_files["/etc/reconciler/b.chap"] == seen.record.chap
    assert seen.timeouts == {"replacement_timeout": 15, "noop_out_interval": 7,
                             "noop_out_timeout": 9}
    assert seen.record is not None and seen.record.timeouts == seen.timeouts
    assert seen.record.chap and "abcdefghijkl" not in repr(seen)


@pytest.mark.parametrize("text, words", [
    ("timeouts = { replacement_timeout = 0 }", "greater than or equal to 1"),
    ("timeouts = { noop_out_interval = 0, noop_out_timeout = 5 }", "sends no ping"),
    ("timeouts = { noop_out_interval = 5, noop_out_timeout = 0 }", "never calls the link down"),
    ("timeouts = { replacement_timout = 5 }", "replacement_timout"),
])
def test_timeouts_are_validated(pair, text, words):
    with pytest.raises(errors.SpecError, match=words):
        _with_timeouts(pair, text + "\n")


def test_the_node_record_parser_and_fingerprints():
    rec = adapter.parse_node_record(
        "node.name = iqn.x:y\nnode.session.auth.authmethod = CHAP\n"
        "node.session.auth.username = u\nnode.session.auth.password = secret123456\n"
        "node.session.timeo.replacement_timeout = 20\nnode.conn[0].timeo.noop_out_timeout = 4\n")
    assert rec.timeouts == {"replacement_timeout": 20, "noop_out_timeout": 4}
    assert rec.chap == adapter.fingerprint("u", "secret123456") != adapter.fingerprint("u", "x")
    assert "secret" not in rec.chap and len(rec.chap) == 24
    assert adapter.parse_node_record("") is None  # empty, as a power cut leaves it
    plain = adapter.parse_node_record("node.name = iqn.x:y\nnode.session.auth.authmethod = None\n")
    assert plain.chap == ""


def test_a_capture_of_either_node_holds_no_secret(pair, tmp_path):
    from reconciler.offline import capturing
    loaded = pair.spec()
    _converged(pair, loaded)
    for node, host in (("a", pair.a), ("b", pair.b)):
        out = tmp_path / f"cap-{node}"
        capturing.capture_simulated(str(out), host, node=node)
        text = "".join(p.read_text() for p in out.rglob("*") if p.is_file())
        assert "abcdefghijkl" not in text and "auth/password" not in text
    assert "/sys/class/iscsi_session/" in (tmp_path / "cap-b" / "kernel-files.json").read_text()


# -- session recovery after a link cut (the lab: open-iscsi re-logs in with the credentials the
# session logged in with, held by iscsid and the kernel, not the node record's) -------------


def test_the_simulator_re_logs_in_after_a_link_cut_with_the_sessions_own_credentials(pair):
    loaded = pair.spec()
    _converged(pair, loaded)
    (s,) = pair.b.iscsi.sessions
    sysfs = f"/sys/class/iscsi_session/session{s.sid}"
    assert pair.b.read(f"{sysfs}/username") == "b\n"
    assert pair.b.read(f"{sysfs}/password") == "abcdefghijkl\n"
    pair.b.iscsi.nodes[(PORTAL, IQN)]["password"] = "rotated-0987"  # the record only
    pair.fabric.blip(PORTAL)
    assert pair.b.read(f"{sysfs}/state") == "LOGGED_IN\n"  # the old secret still admitted
    disk = pair.b.model.device(s.disks[0])
    assert disk.failed_at is None


def test_the_simulator_fails_a_session_whose_credentials_the_target_no_longer_admits(pair):
    loaded = pair.spec()
    _converged(pair, loaded)
    (s,) = pair.b.iscsi.sessions
    pair.b.iscsi.nodes[(PORTAL, IQN)]["password"] = "rotated-0987"
    pair.a.iscsi.targets[IQN].acls[INIT_B].password = "rotated-0987"  # the target changed
    pair.fabric.blip(PORTAL)
    assert pair.b.read(f"/sys/class/iscsi_session/session{s.sid}/state") == "FAILED\n"
    assert pair.b.model.device(s.disks[0]).failed_at is not None  # I/O fails upward
    assert INIT_B not in pair.a.iscsi.targets[IQN].sessions
    with pytest.raises(UnsupportedCommand, match="already FAILED"):
        pair.fabric.blip(PORTAL)  # iscsid's retries of a refused re-login: not modelled
    pair.b.clock.advance(s.timeouts["replacement_timeout"])
    assert pair.b.read(f"/sys/class/iscsi_session/session{s.sid}/state") == "FREE\n"
    node = ("iscsiadm", "-m", "node", "-T", IQN, "-p", PORTAL)
    login = pair.b.run(Command(argv=(*node, "--login")))
    assert login.rc == 15 and "already present" in login.stderr  # the session is there
    logout = pair.b.run(Command(argv=(*node, "--logout")))
    assert logout.rc == 0 and "successful" in logout.stdout  # open-iscsi drops it
    assert pair.b.iscsi.sessions == []
