"""The iSCSI observers on real configfs / sysfs trees and iscsiadm outputs recorded in the lab
(tests/fixtures/outputs/iscsi/, see its INDEX.md): no process, every field the planner uses."""

from __future__ import annotations

import pytest
from support.iscsi_recorded import INITIATOR, TARGET, Tree, command, portal

from reconciler.adapters import iscsi


def test_nothing_built_shows_no_target():
    # the iscsi fabric directory appears only once something is built on it
    targets, backstores = iscsi.observe_targets(Tree("a_empty"))
    assert targets is None and backstores == {}


def test_an_exported_target_with_luns_acl_and_chap():
    targets, backstores = iscsi.observe_targets(Tree("a_exported"))
    assert backstores == {"iblock_0/export0_0": "/dev/vda", "iblock_1/export0_1": "/dev/exp/lv0"}
    t = targets[TARGET]
    assert (t.tpg, t.enabled, t.authentication, t.generate_node_acls) == (1, True, True, False)
    assert t.portals == (portal(),)
    assert {n: (lun.device, lun.backstore) for n, lun in t.luns.items()} == {
        0: ("/dev/vda", "iblock_0/export0_0"), 1: ("/dev/exp/lv0", "iblock_1/export0_1")}
    acl = t.acls[INITIATOR]
    assert acl.mapped_luns == (0, 1) and acl.chap_userid == "labuser"
    assert not acl.session and t.sessions == ()


def test_a_logged_in_initiator_is_seen_on_the_target():
    targets, _ = iscsi.observe_targets(Tree("a_with_session"))
    assert targets[TARGET].sessions == (INITIATOR,)


def test_an_acl_removed_leaves_the_luns():
    targets, _ = iscsi.observe_targets(Tree("a_no_acl"))
    assert targets[TARGET].acls == {} and set(targets[TARGET].luns) == {0, 1}


def test_a_session_and_its_disks_from_sysfs():
    read = Tree("b_logged_in", "b_logged_in_blocks")
    (s,) = iscsi.observe_sessions(read)
    assert (s.target, s.portal, s.state) == (TARGET, portal(), "LOGGED_IN")
    assert [(d.lun, d.name, d.devno) for d in s.disks] == [(0, "sda", (8, 0)), (1, "sdb", (8, 16))]


def test_the_live_session_credentials_as_root_as_another_user_and_not_read():
    """The lab's sysfs as root: username/password are the login's (``(null)`` for those not
    set, as password_in shows); without CAP_SYS_ADMIN the kernel answers EACCES (the private
    reader gives None): unknown, never taken for "no CHAP"."""
    read = Tree("b_logged_in", "b_logged_in_blocks")
    (s,) = iscsi.observe_sessions(read, private=read)
    assert s.chap == iscsi.fingerprint("labuser", "labsecret1234")
    base = "/sys/class/iscsi_session/session2"
    assert iscsi.session_chap(lambda p: read(p.replace("/username", "/username_in").replace(
        "/password", "/password_in")), base) == ""  # both "(null)": no CHAP
    denied = lambda p: None if p.endswith(("/username", "/password")) else read(p)  # noqa: E731
    (s,) = iscsi.observe_sessions(read, private=denied)
    assert s.chap is None
    (s,) = iscsi.observe_sessions(read)  # a capture reads no secret
    assert s.chap is None


@pytest.mark.parametrize("state", ["b_none", "b_logged_out"])
def test_no_session(state):
    assert iscsi.observe_sessions(Tree(state)) == ()


def test_the_by_path_names_udev_made_are_the_ones_a_login_provides():
    from reconciler.spec.iscsi import disk_path
    listing = command("by_path").stdout
    for lun in (0, 1):
        name = disk_path(portal(), TARGET, lun).rsplit("/", 1)[1]
        assert f" {name} -> " in listing


@pytest.mark.parametrize("case, words", [
    # LIO answers both with the same "authorization failure" (recorded: identical output),
    # so the reason names both causes
    ("login_wrong_chap", "a wrong CHAP secret"),
    ("login_not_in_acl", "an ACL on the target that does not admit"),
    ("login_no_such_target", "no such target"),
    ("login_unreachable", "unreachable"),
    ("discovery_unreachable", "unreachable"),
])
def test_each_login_error_is_explained_naming_the_session(case, words):
    r = command(case)
    assert r.rc != 0
    why = iscsi.explain(r, session="from-a", portal=portal(), target=TARGET)
    assert why.startswith("iscsi session from-a: ") and words in why, why


def test_discovery_lists_the_target():
    assert f"{portal()},1 {TARGET}" in command("discovery").stdout


def test_chap_file_rules(tmp_path):
    assert iscsi.parse_chap("f", "# c\nuserid = u\npassword = abcdefghijkl\n") == ("u", "abcdefghijkl")
    with pytest.raises(iscsi.ApplyError, match="12 to 16"):
        iscsi.parse_chap("f", "userid = u\npassword = short\n")
    p = tmp_path / "chap"
    p.write_text("userid = u\npassword = abcdefghijkl\n")
    p.chmod(0o644)
    with pytest.raises(iscsi.ApplyError, match="mode 0644") as e:
        iscsi.read_chap(str(p))
    assert "abcdefghijkl" not in str(e.value)
    p.chmod(0o600)
    assert iscsi.read_chap(str(p)) == ("u", "abcdefghijkl")


@pytest.mark.parametrize("rc, words", [
    (32, "trying to reconnect it and has re-synced it"),
    (9, "invalid state for logout"),
    (28, "iscsid.safe_logout = Yes")])
def test_iscsids_refusal_of_a_logout_is_a_refusal_with_its_reason(rc, words):
    """open-iscsi's session_logout_task (include/iscsi_err.h: 32 SESSION_NOT_CONNECTED, 9
    INTERNAL, 28 BUSY): said with its reason, and not a transient (busy) failure."""
    from reconciler import actions
    from reconciler.runner import CommandResult

    step = actions.LogoutSession(name="from_a", portal="192.0.2.1:3260", target="iqn.x:t")
    cmd = step.commands()[0]
    err = step.failure(CommandResult(command=cmd, rc=rc, stdout="", stderr=(
        f"iscsiadm: initiator reported error ({rc} - whatever)\n")))
    assert "iscsid refuses to log this session out" in str(err) and words in str(err)
    assert not err.kind.is_transient
    plain = step.failure(CommandResult(command=cmd, rc=1, stdout="",
                                       stderr="iscsiadm: something else\n"))
    assert "refuses" not in str(plain)
