"""Planning for a session that is there but not logged in (FAILED, FREE), pure: what the
initiator's reconciler does with it depends on the credentials it logged in with (sysfs)
against the declared ones, and on whether its disks are in use."""

from __future__ import annotations

import pytest
from support import specs

from reconciler import state
from reconciler.planning.iscsi import elsewhere, plan_iscsi
from reconciler.state import iscsi as state_iscsi

IQN = "iqn.2003-01.org.example.a:export0"
PORTAL = "192.0.2.1:3260"
FILE = "/etc/reconciler/b.chap"
SESSION = {"nodes": ["b"], "portal": PORTAL, "target": IQN, "chap_file": FILE, "luns": [0]}
SPEC = {"iscsi_session": {"from_a": SESSION}}
NO_CHAP = {"iscsi_session": {"from_a": {k: v for k, v in SESSION.items() if k != "chap_file"}}}


def _export0(*acls: str) -> dict:
    """a's target exporting /dev/vdb as the session's LUN 0, CHAP from a's own file."""
    return {"iscsi_target": {"export0": {
        "nodes": ["a"], "iqn": IQN, "portals": [PORTAL], "acls": list(acls),
        "chap_file": "/etc/reconciler/a.chap", "lun": {"0": {"device": "/dev/vdb"}}}}}


def _drbd_r0(disk: str, **b) -> dict:
    """DRBD r0 with node b's backing disk ``disk`` (``b``: more of b's keys)."""
    return {"drbd": {"r0": {"protocol": "C", "nodes": {
        "b": {"disk": disk, "address": "10.0.0.2", **b},
        "c": {"disk": "/dev/vdb", "address": "10.0.0.3"}}}}}


def _plan(*, state_="FAILED", live="old", declared="new", holders=(), spec=SPEC,
          devices=None, partitions=(), initiator=""):
    disk = state_iscsi.IscsiDisk(lun=0, name="sda", devno=(8, 0), holders=tuple(holders),
                                 partitions=tuple(partitions))
    s = state_iscsi.IscsiSession(sid="session1", target=IQN, portal=PORTAL, state=state_,
                                 disks=(disk,), timeouts={"replacement_timeout": 30},
                                 chap=live)
    st = state.HostState(host="b", devices=devices or {}, iscsi=state_iscsi.IscsiState(
        sessions=(s,), chap_files={FILE: declared} if declared is not None else {},
        initiator_name=initiator))
    loaded = specs.load(spec)
    return plan_iscsi(loaded.for_node("b"), st, others=elsewhere(loaded.spec, "b"))


def test_an_idle_free_session_with_other_live_credentials_is_logged_out():
    out = _plan(state_="FREE")
    (step,) = out.steps
    assert step.key == "iscsi-session:from_a:logout" and not out.blocked
    assert "FREE" in step.reason and "idle" in step.reason and "30s" in step.reason
    assert "queued I/O already failed" in step.reason


def test_an_idle_failed_session_waits_for_its_replacement_timeout():
    """While FAILED the kernel still holds the I/O queued on its disks (a writer blocked in
    its last close, dirty pages: no fd, mount or holder shows them); the previous secret
    back on the target would still deliver it, a logout would fail it (REVIEW7 F5)."""
    out = _plan(state_="FAILED")
    assert out.steps == []
    (why,) = out.blocked
    assert "is FAILED" in why.reason and "not taken over before its replacement_timeout " \
        "(30s) has passed (FREE)" in why.reason, why.reason
    assert "putting the previous secret back on the target" in why.reason
    assert "a logout now would fail them" in why.reason
    assert "Once FREE" in why.reason and "the next pass logs it out" in why.reason


DISK0 = f"/dev/disk/by-path/ip-{PORTAL}-iscsi-{IQN}-lun-0"
BYID = "/dev/disk/by-id/wwn-0x6001405abcdef0123456789abcdef012"


@pytest.mark.parametrize("extra, devices, role", [
    (_drbd_r0(DISK0, role="primary"), {}, "drbd.r0.nodes.b.disk (DRBD's backing disk"),
    (_drbd_r0(BYID), {BYID: (8, 0)}, "drbd.r0.nodes.b.disk"),
    ({"iscsi_target": {"gw": {"nodes": ["b"], "iqn": "iqn.2003-01.org.example.b:gw",
                              "portals": ["10.0.0.2:3260"], "acls": ["iqn.2004-10.com.example:c"],
                              "lun": {"0": {"device": DISK0}}}}},
     {}, "iscsi_target.gw.lun.0.device (a LUN this node exports"),
    (specs.local_vg("vg0", [BYID], nodes=["b"]), {BYID: (8, 0)}, "vg.vg0.pvs"),
    (specs.local_vg("vg0", [BYID + "-part1"], nodes=["b"]), {BYID + "-part1": (8, 1)},
     "vg.vg0.pvs"),
    ({"clone": {"c0": {"nodes": ["b"], "source": BYID, "target": "/dev/vdc",
                       "md": "/dev/md100"}}}, {BYID: (8, 0)}, "clone.c0.source"),
], ids=["drbd-backing", "drbd-backing-by-id", "lio-reexport", "vg-pvs-by-id",
        "vg-pvs-partition-by-id", "clone-source"])
def test_a_disk_this_nodes_spec_uses_keeps_a_free_session(extra, devices, role):
    """A kernel user that may link no holder (LIO's iblock; DRBD's backing disk before attach) or a PV
    that lvm reports missing once the disk fails: only the spec ties them to the disk, by
    its names or by device number (REVIEW7 F2)."""
    out = _plan(state_="FREE", spec={**SPEC, **extra}, devices=devices,
                partitions=(state_iscsi.IscsiPartition(name="sda1", devno=(8, 1)),))
    assert [s.key for s in out.steps if s.key.startswith("iscsi-session")] == [], out.steps
    (why,) = [b for b in out.blocked if b.object == "iscsi session from_a"]
    assert f"/dev/sda (LUN 0) is named in {role}" in why.reason, why.reason


@pytest.mark.parametrize("state_, io, lost", [
    ("FAILED", "fails once its replacement_timeout", "a logout would fail the I/O queued"),
    ("FREE", "has passed", "a logout would take them away from under what uses them")])
def test_a_busy_failed_session_is_blocked_never_logged_out(state_, io, lost):
    out = _plan(state_=state_, holders=("dm-3",))
    assert out.steps == []
    (why,) = out.blocked
    assert f"is {state_}" in why.reason and io in why.reason and "held by dm-3" in why.reason
    assert lost in why.reason
    assert "put the previous secret back on the target" in why.reason


def test_a_busy_failed_session_names_the_targets_secret_file_the_spec_declares():
    whole = {**SPEC, **_export0("iqn.2004-10.com.example:b")}
    from reconciler.planning.iscsi import elsewhere
    loaded = specs.load(whole)
    disk = state_iscsi.IscsiDisk(lun=0, name="sda", devno=(8, 0), mounts=("/srv",))
    s = state_iscsi.IscsiSession(sid="session1", target=IQN, portal=PORTAL, state="FAILED",
                                 disks=(disk,), chap="old")
    st = state.HostState(host="b", iscsi=state_iscsi.IscsiState(sessions=(s,),
                                                                chap_files={FILE: "new"}))
    out = plan_iscsi(loaded.for_node("b"), st, others=elsewhere(loaded.spec, "b"))
    (why,) = out.blocked
    assert "/etc/reconciler/a.chap on a (iscsi_target.export0.chap_file)" in why.reason
    assert "mounted at /srv" in why.reason


def test_live_credentials_not_read_block_with_the_reason_not_a_guess():
    out = _plan(live=None)
    assert out.steps == []
    (why,) = out.blocked
    assert "cannot be read" in why.reason and "CAP_SYS_ADMIN" in why.reason


@pytest.mark.parametrize("live, declared, spec, also", [
    ("same", "same", SPEC, "which are the declared ones"),  # a link cut, no rotation
    ("old", "", SPEC, f"{FILE} cannot be read"),  # the declared file unreadable: not compared
    ("", None, NO_CHAP, "which are the declared ones"),
    # unreadable live credentials are not said to be the declared ones (REVIEW7 F4)
    (None, None, NO_CHAP, "not read, so not compared"),
    ("old", None, NO_CHAP, "(CHAP, while the spec declares none for it)"),
])
def test_a_failed_session_is_left_to_open_iscsi_when_nothing_says_it_cannot_recover(
        live, declared, spec, also):
    out = _plan(live=live, declared=declared, spec=spec)
    assert out.steps == []  # no login over it (iscsiadm: already present), no logout
    (why,) = out.blocked
    assert "re-logs in by itself" in why.reason and also in why.reason


def test_a_logged_in_session_is_not_taken_for_a_failed_one():
    out = _plan(state_="LOGGED_IN", live="same", declared="same")
    assert out.steps == [] and out.blocked == []


TARGET = _export0("iqn.2004-10.com.example:b", "iqn.2004-10.com.example:c")


def test_the_previous_secret_back_is_said_not_to_help_while_another_initiator_holds_it():
    """REVIEW7 F3: c, logged in with the new secret, makes a's node hold it: writing the old
    one back does not reach LIO, and b's session runs into its replacement_timeout."""
    out = _plan(spec={**SPEC, **TARGET}, holders=("dm-3",), initiator="iqn.2004-10.com.example:b")
    (why,) = out.blocked
    text = why.reason
    assert "put the previous secret back on the target before its replacement_timeout " \
        "passes" in text, text
    assert "works only while no other initiator of " + IQN + " is logged in with the new " \
        "secret" in text
    assert "admits iqn.2004-10.com.example:c)" in text and ":b," not in text
    assert "the CHAP rotation is held" in text and "is not applied" in text


def test_stopping_what_uses_a_failed_sessions_disks_is_said_to_lose_the_queued_writes():
    """REVIEW7 F8: while FAILED an unmount or a deactivation flushes into queued I/O: it
    blocks, then the writes fail. Never offered as a safe way, never a logout promised."""
    text = _plan(holders=("dm-3",)).blocked[0].reason
    assert "no safe way out while the session is FAILED" in text, text
    assert "blocks until the replacement_timeout passes and then those writes fail" in text
    assert "what was queued is lost" in text and "pvmove off them cannot read them" in text
    assert "next pass logs the session out" not in text
    assert "The one way out that keeps the I/O queued on them: put the previous secret back" \
        in text


def test_a_busy_free_session_says_its_queued_io_already_failed():
    text = _plan(state_="FREE", holders=("dm-3",)).blocked[0].reason
    assert "has already failed (expect I/O errors" in text, text
    assert "before its replacement_timeout passes" not in text
    assert "Once nothing uses them, the next pass logs the session out" in text
    assert "give up what uses them" in text


def test_a_failed_session_without_chap_is_not_said_to_have_the_declared_credentials():
    """REVIEW7 F4: "(null)" live credentials are no CHAP, a credential state: with CHAP
    declared, the session cannot log in again once the target requires it."""
    out = _plan(state_="FAILED", live="")
    assert out.steps == []
    (why,) = out.blocked
    assert "which are the declared ones" not in why.reason
    assert "not taken over before its replacement_timeout" in why.reason, why.reason
    (step,) = _plan(state_="FREE", live="").steps
    assert step.key == "iscsi-session:from_a:logout"


def test_a_free_session_with_no_credentials_and_no_disk_yet_is_unknown_not_taken_over():
    """A first login still under way shows FREE with "(null)" credentials (iscsid keeps the
    kernel session across its initial login retries): not a session without CHAP."""
    disk = state_iscsi.IscsiSession(sid="session1", target=IQN, portal=PORTAL, state="FREE",
                                    chap="")
    st = state.HostState(host="b", iscsi=state_iscsi.IscsiState(
        sessions=(disk,), chap_files={FILE: "new"}))
    out = plan_iscsi(specs.load(SPEC).for_node("b"), st)
    assert out.steps == []
    assert "re-logs in by itself" in out.blocked[0].reason
