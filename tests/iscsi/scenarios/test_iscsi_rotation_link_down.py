"""A CHAP rotation applied while the link between initiator and target is down (issue 19's
gap). The exporting node sees no session then (LIO dropped it) and applies the new secret;
the initiator's session keeps the credentials it logged in with and, once the link is back,
every re-login is refused (the lab): FAILED for good. Idle, the initiator's reconciler logs
it out and in with the declared credentials; busy, it is never logged out and the operator
is told what recovers it."""

from __future__ import annotations

import pytest

from reconciler import controller
from reconciler.runner import Command

from test_iscsi_chap_and_timeouts import _NotRoot, _rotate, _converged
from test_iscsi_simulated import IQN, PORTAL, Pair

OLD = "userid = b\npassword = abcdefghijkl\n"


@pytest.fixture
def pair(tmp_path):
    return Pair(tmp_path)


def _cut_and_rotate(pair, loaded):
    """The link goes down, both files are rotated, and the exporting node's pass applies the
    new secret: it sees no session."""
    pair.fabric.cut(PORTAL)
    (s,) = pair.b.iscsi.sessions
    assert s.state == "FAILED" and pair.a.iscsi.targets[IQN].sessions == set()
    _rotate(pair)
    ra = pair.run("a", loaded)
    assert [x.key for x in ra.plan.steps] == ["iscsi-target:export0:apply"], ra.plan
    assert pair.a.iscsi.targets[IQN].acls["iqn.2004-10.com.example:b"].password == "rotated-0987"
    return s


def _state(pair, s):
    return pair.b.read(f"/sys/class/iscsi_session/session{s.sid}/state").strip()


def test_the_link_back_alone_leaves_the_session_failed_for_good(pair):
    """What the lab showed, in the simulator: after the rotation the session's own
    re-logins are refused, whatever the link does; it is FREE once its replacement
    timeout passes, and only the old secret back on the target lets it in again."""
    loaded = pair.spec(pvs='"/dev/vda"', back=True)
    _converged(pair, loaded)
    s = _cut_and_rotate(pair, loaded)
    pair.fabric.reconnect(PORTAL)
    assert _state(pair, s) == "FAILED"
    pair.b.clock.advance(s.timeouts["replacement_timeout"])
    assert _state(pair, s) == "FREE"
    pair.a.iscsi.targets[IQN].acls["iqn.2004-10.com.example:b"].password = "abcdefghijkl"
    pair.fabric.retry()
    assert _state(pair, s) == "LOGGED_IN"
    assert pair.b.model.device(s.disks[0]).failed_at is None


def test_an_idle_session_failed_by_a_rotation_while_the_link_was_down_logs_in_again(pair):
    loaded = pair.spec(pvs='"/dev/vda"', back=True)  # b logs in, does not use the disk
    _converged(pair, loaded)
    (s,) = pair.b.iscsi.sessions
    disk = s.disks[0]
    for chunk in range(4):
        pair.b.write(disk, chunk, b"written through the session %d" % chunk)
    before = pair.b.fingerprint(disk)
    assert pair.a.fingerprint("/dev/vdb") == before  # one content: the exported device's
    _cut_and_rotate(pair, loaded)
    pair.b.write(disk, 0, b"lost")  # I/O on the FAILED session: never reaches the target
    assert pair.a.fingerprint("/dev/vdb") == before
    rb = pair.run("b", loaded)  # FAILED: its queued I/O could still be saved, it waits
    assert rb.plan.steps == (), rb.plan
    (why,) = [b.reason for b in rb.plan.blocked if b.object == "iscsi session from_a"]
    assert "is FAILED" in why and "not taken over before its replacement_timeout" in why
    assert pair.b.iscsi.sessions and not any(c.argv[-1:] == ("--logout",)
                                             for c in pair.b.calls)
    pair.b.clock.advance(pair.b.iscsi.sessions[0].timeouts["replacement_timeout"])
    rb = pair.run("b", loaded)  # FREE, the link still down: logged out, the login waits
    keys = [x.key for x in rb.plan.steps]
    assert keys == ["iscsi-session:from_a:logout"], rb.plan
    step = rb.plan.steps[0]
    assert "FREE" in step.reason and "idle" in step.reason, step.reason
    assert pair.b.iscsi.sessions == [] and rb.plan.blocked == ()
    rb = pair.run("b", loaded)
    assert rb.exit_code != 0 and "unreachable" in str(rb.error or rb.final), rb.final
    pair.fabric.reconnect(PORTAL)
    rb = pair.converge("b", loaded)
    assert rb.exit_code == 0, rb.final
    (again,) = pair.b.iscsi.sessions
    assert again.state == "LOGGED_IN" and again.password == "rotated-0987"
    assert pair.b.fingerprint(again.disks[0]) == before == pair.a.fingerprint("/dev/vdb")
    for node in ("a", "b"):
        r = pair.run(node, loaded)
        assert r.plan.steps == () and r.plan.blocked == (), r.plan
    pair.fabric.blip(PORTAL)  # its live credentials are the target's now
    assert again.state == "LOGGED_IN"


def test_a_busy_session_is_never_logged_out_and_says_what_recovers_it(pair):
    loaded = pair.spec()  # LUN 0 is a PV of vg0, LV data on it, active
    _converged(pair, loaded)
    data = "/dev/vg0/data"
    for chunk in range(3):
        pair.b.write(data, chunk, b"data %d" % chunk)
    before = pair.b.fingerprint(data)
    s = _cut_and_rotate(pair, loaded)
    pair.fabric.reconnect(PORTAL)
    rb = pair.run("b", loaded)
    keys = [x.key for x in rb.plan.steps]
    assert "iscsi-session:from_a:logout" not in keys and "iscsi-session:from_a:login" \
        not in keys, keys
    (why,) = [b for b in rb.plan.blocked if b.object == "iscsi session from_a"]
    text = why.reason
    assert f"to {IQN}" in text and "FAILED" in text
    assert "rotated while the link was down" in text
    assert "keeps the credentials it logged in with" in text
    assert "will not log in again on its own" in text
    assert "/etc/reconciler/a.chap" in text and "iscsi_target.export0" in text  # the cure
    assert "held by dm-" in text or "an LVM PV" in text  # what uses the disks
    # no logout is ever advised as safe while FAILED: stopping the users costs the writes
    assert "logs the session out" not in text and "logout" not in text.replace(
        "logout would", "")
    assert "no safe way out while the session is FAILED" in text
    assert "a logout would fail the I/O queued" in text
    assert pair.b.iscsi.sessions == [s] and _state(pair, s) == "FAILED"
    # the operator puts the previous secret back on the target: the session recovers
    pair.a.md.files["/etc/reconciler/a.chap"] = OLD
    ra = pair.run("a", loaded)
    assert [x.key for x in ra.plan.steps] == ["iscsi-target:export0:apply"], ra.plan
    assert _state(pair, s) == "LOGGED_IN" and pair.b.fingerprint(data) == before
    rb = pair.run("b", loaded)  # now the rotation held while it is in use, as before
    (held,) = [b for b in rb.plan.blocked if b.object == "iscsi session from_a"]
    assert "logged in with other CHAP credentials" in held.reason
    assert pair.b.iscsi.sessions == [s]


def test_live_credentials_that_cannot_be_read_are_said_not_guessed(pair):
    loaded = pair.spec(pvs='"/dev/vda"', back=True)
    _converged(pair, loaded)
    _cut_and_rotate(pair, loaded)
    pair.fabric.reconnect(PORTAL)

    class NoSysfsSecret(_NotRoot):
        def read(self, path, *, host="local"):
            if path.endswith(("/username", "/password")) and "iscsi_session" in path:
                raise PermissionError(13, "Permission denied", path)  # EACCES: no CAP_SYS_ADMIN
            return self.inner.read(path, host=host)

    r = controller.reconcile_once(loaded, pair.env("b", NoSysfsSecret(pair.nodes["b"].runner)))
    assert [x.key for x in r.plan.steps if x.key.startswith("iscsi-session")] == [], r.plan
    (why,) = [b for b in r.plan.blocked if b.object == "iscsi session from_a"]
    assert "cannot be read" in why.reason and "CAP_SYS_ADMIN" in why.reason
    assert pair.b.iscsi.sessions and pair.b.iscsi.sessions[0].state == "FAILED"


def test_a_failed_session_with_the_declared_credentials_is_left_to_recover_itself(pair):
    """A link cut with no rotation: iscsid logs the session in again when the link is back;
    the reconciler neither logs it out nor tries a login that would find it present."""
    loaded = pair.spec(pvs='"/dev/vda"', back=True)
    _converged(pair, loaded)
    pair.fabric.cut(PORTAL)
    (s,) = pair.b.iscsi.sessions
    rb = pair.run("b", loaded)
    assert not [x for x in rb.plan.steps if x.key.startswith("iscsi-session")], rb.plan
    (why,) = [b for b in rb.plan.blocked if b.object == "iscsi session from_a"]
    assert "re-logs in by itself" in why.reason
    pair.fabric.reconnect(PORTAL)
    assert s.state == "LOGGED_IN"
    r = pair.run("b", loaded)
    assert r.plan.steps == () and r.plan.blocked == () and r.exit_code == 0
    assert not any(c.argv[-1:] == ("--logout",) for c in pair.b.calls if isinstance(c, Command))


def test_a_process_holding_a_disk_open_keeps_the_failed_session(pair):
    """No PV, mount or holder, but a process has the disk open (qemu): the logout is
    refused when it would run, naming the process; once it closes, the session is taken
    over to the declared credentials."""
    loaded = pair.spec(pvs='"/dev/vda"', back=True)
    _converged(pair, loaded)
    (s,) = pair.b.iscsi.sessions
    pair.b.open_device(s.disks[0], 4242, "qemu-system-x86")
    _cut_and_rotate(pair, loaded)
    pair.fabric.reconnect(PORTAL)
    pair.b.clock.advance(s.timeouts["replacement_timeout"])  # FREE: taken over when idle
    rb = pair.run("b", loaded)
    assert rb.exit_code != 0 and pair.b.iscsi.sessions == [s] and _state(pair, s) == "FREE"
    assert not any(c.argv[-1:] == ("--logout",) for c in pair.b.calls)
    assert "qemu-system-x86" in str(rb.final) or "qemu-system-x86" in str(rb.error), rb.final
    pair.b.close_device(s.disks[0], 4242)
    assert pair.converge("b", loaded).exit_code == 0
    (again,) = pair.b.iscsi.sessions
    assert again.state == "LOGGED_IN" and again.password == "rotated-0987"


@pytest.mark.parametrize("link_back, rc, words", [
    (False, 32, "it is trying to reconnect it and has re-synced it"),
    (True, 9, "in its present state (iscsiadm exit 9, invalid state for logout)")])
def test_iscsid_refusing_the_logout_of_a_session_it_resynced_is_a_refusal_said(
        pair, link_back, rc, words):
    """REVIEW7 F6: iscsid restarted while the session was down re-syncs it and refuses
    ``-u`` until it has logged in again (open-iscsi session_logout_task: exit 32 waiting to
    reconnect, 9 in a login attempt). The step fails with that reason, once per pass (a
    refusal, not a busy retry), and the session is left as it is."""
    loaded = pair.spec(pvs='"/dev/vda"', back=True)
    _converged(pair, loaded)
    s = _cut_and_rotate(pair, loaded)
    if link_back:
        pair.fabric.reconnect(PORTAL)
    pair.b.clock.advance(s.timeouts["replacement_timeout"])  # FREE: taken over when idle
    pair.b.iscsi.restart_iscsid()
    rb = pair.run("b", loaded)
    assert [x.key for x in rb.plan.steps] == ["iscsi-session:from_a:logout"], rb.plan
    (res,) = [x for x in rb.report.results if x.step.key == "iscsi-session:from_a:logout"]
    assert str(res.outcome) == "failed", res
    assert res.error.rc == rc and not res.error.kind.is_transient, res.error
    text = str(res.error)
    assert "iscsid refuses to log this session out" in text and words in text, text
    assert "put the previous secret back on the target" in text
    logouts = [c for c in pair.b.calls if "--logout" in c.argv]
    assert len(logouts) == 1 and pair.b.iscsi.sessions == [s]
    # the previous secret back on the target: the session logs in, iscsid forgets the sync
    pair.a.md.files["/etc/reconciler/a.chap"] = OLD
    if not link_back:
        pair.fabric.reconnect(PORTAL)
    assert pair.run("a", loaded).plan.steps
    assert _state(pair, s) == "LOGGED_IN" and not s.synced


def test_chap_introduced_while_a_session_runs_without_it_is_held_then_taken_over(pair):
    """REVIEW7 F4: a session logged in without CHAP ("(null)" in sysfs) when the spec
    introduces CHAP: the target holds it while that session is logged in (its re-login
    without CHAP would be refused), the initiator's idle session logs out, the target then
    takes CHAP and the next login uses it."""
    from reconciler.spec import loading
    loaded = pair.spec(pvs='"/dev/vda"', back=True)
    text = (pair.tmp / "spec.toml").read_text()
    plain_text = text.replace('chap_file = "/etc/reconciler/a.chap"\n', "").replace(
        'chap_file = "/etc/reconciler/b.chap"\n', "")
    assert plain_text != text
    (pair.tmp / "spec.toml").write_text(plain_text)
    plain = loading.load(pair.tmp / "spec.toml")
    assert pair.converge("a", plain).exit_code == 0
    assert pair.converge("b", plain).exit_code == 0
    (s,) = pair.b.iscsi.sessions
    assert s.state == "LOGGED_IN" and not s.userid and not pair.a.iscsi.targets[IQN].auth
    ra = pair.run("a", loaded)  # CHAP introduced: held while b is logged in without it
    assert not [x for x in ra.plan.steps if x.key.startswith("iscsi-target")], ra.plan
    (held,) = [b.reason for b in ra.plan.blocked if b.object == "iscsi target export0"]
    assert "the CHAP rotation is held" in held and not pair.a.iscsi.targets[IQN].auth
    rb = pair.run("b", loaded)  # idle: logs out so that the target can take CHAP
    assert "iscsi-session:from_a:logout" in [x.key for x in rb.plan.steps], rb.plan
    assert pair.b.iscsi.sessions == []
    assert pair.converge("a", loaded).exit_code == 0 and pair.a.iscsi.targets[IQN].auth
    assert pair.converge("b", loaded).exit_code == 0
    (again,) = pair.b.iscsi.sessions
    assert again.state == "LOGGED_IN" and (again.userid, again.password) == ("b", "abcdefghijkl")
    pair.fabric.blip(PORTAL)
    assert again.state == "LOGGED_IN"
