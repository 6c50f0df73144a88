"""lvmlockd with DLM (issue 20): corosync's quorum is read before a DLM VG is touched.

On the lab's recordings (tests/fixtures/outputs/dlm, corosync 3.1.7 two-node, dlm-controld
4.2.0, lvm2 2.03.16): ``corosync-quorumtool -s`` quorate, not quorate (node-b not seen yet:
two_node's wait_for_all) and corosync not running; ``lvmlockctl --info`` with DLM
lockspaces. The node's LVM state is the lvmlockd recording of a node with no VG yet.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from support import FIXTURES
from support.specs import spec

from reconciler import planning, state
from reconciler.adapters import lockd as lockd_adapter
from reconciler.adapters import lvm

DLM = FIXTURES / "outputs" / "dlm" / "commands"
NO_VG = FIXTURES / "outputs" / "lvmlockd" / "daemons_no_vg_a.json"


def recorded(case: str) -> tuple[int, str, str]:
    """(rc, stdout, stderr) of a recorded command."""
    text = (DLM / f"{case}.txt").read_text()
    rc = int(re.search(r"^rc: (-?\d+)$", text, re.M).group(1))
    out, err = text.split("--- stdout\n", 1)[1].split("--- stderr\n", 1)
    return rc, out, err


def dlm_vg(create_on: str = "node-a") -> dict:
    return {"vg": {"vgd": {"nodes": ["node-a", "node-b"], "scope": "shared", "lock_type": "dlm",
                           "create_on": create_on, "pvs": ["/dev/vda"]}}}


def node(quorum_case: str | None, spaces: dict[str, str] | None = None) -> state.HostState:
    text = NO_VG.read_text()
    st = lvm.parse_fullreport(text[text.index("\n") + 1:])
    q = lockd_adapter.parse_quorum(*recorded(quorum_case)) if quorum_case else None
    return dataclasses.replace(st, lockd=state.Lockd(running=True, lockspaces=spaces or {},
                                                     quorum=q))


def blocked(plan) -> str:
    return "\n".join(b.reason for b in plan.blocked)


@pytest.mark.parametrize("case, quorate, words", [
    ("quorumtool_quorate_a", True, "quorate (2 of 2 votes; flags 2Node Quorate WaitForAll)"),
    ("quorumtool_alone_a", False, "not quorate (1 of 2 votes; flags 2Node WaitForAll)"),
    ("quorumtool_no_corosync_a", None, "corosync-quorumtool -s: Cannot initialize CMAP service (rc 1)"),
])
def test_corosync_quorumtool_is_parsed_from_its_recordings(case, quorate, words):
    assert lockd_adapter.parse_quorum(*recorded(case)) == (quorate, words)


def test_dlm_lockspaces_are_read_from_lvmlockctl():
    rc, out, _ = recorded("lockctl_info_b")
    spaces, locks = lockd_adapter.parse_info(out)
    assert rc == 0 and spaces == {"vgd": "dlm"}  # lvm_global's "LS  lvm_global" has no manager
    rc, out, _ = recorded("lockctl_info_a")
    spaces, locks = lockd_adapter.parse_info(out)
    assert spaces == {"vgd": "dlm"} and list(locks.values()) == ["ex"]


def test_the_creator_creates_a_dlm_vg_only_while_quorate():
    plan = planning.plan(spec(dlm_vg()), node("quorumtool_quorate_a"), node="node-a")
    assert [s.action.describe() for s in plan.steps][:1] == ["vgcreate --shared (dlm) on /dev/vda"], plan
    assert not plan.blocked


@pytest.mark.parametrize("case, words", [
    ("quorumtool_alone_a", "corosync is not quorate (1 of 2 votes; flags 2Node WaitForAll) on node-a"),
    ("quorumtool_no_corosync_a", "corosync's quorum cannot be read (corosync-quorumtool -s: "
                                 "Cannot initialize CMAP service (rc 1)) on node-a"),
    (None, "corosync's quorum was not observed on node-a"),
])
def test_nothing_is_done_to_a_dlm_vg_without_quorum(case, words):
    plan = planning.plan(spec(dlm_vg()), node(case), node="node-a")
    assert not plan.steps
    assert words in blocked(plan) and "DLM grants no lock without quorum" in blocked(plan)


def test_a_sanlock_vg_does_not_ask_for_quorum():
    sanlock = dlm_vg()
    del sanlock["vg"]["vgd"]["lock_type"]
    plan = planning.plan(spec(sanlock), node(None), node="node-a")
    assert plan.steps and not plan.blocked


def test_lvmlockd_not_running_says_what_dlm_needs():
    st = dataclasses.replace(node("quorumtool_quorate_a"),
                             lockd=state.Lockd(running=False, problem="Cannot connect to lvmlockd."))
    reason = blocked(planning.plan(spec(dlm_vg()), st, node="node-a"))
    assert "corosync.service, dlm.service and lvmlockd.service" in reason and "host_id" not in reason


def test_a_dlm_lockspace_that_failed_to_start_is_not_started():
    """lvmlockd lists a lockspace whose start failed (dlm_controld not running) as
    ``LS dlm REM:lvm_vgd``: not a started one; its lock-start's message names what to start."""
    rc, out, _ = recorded("lockctl_info_no_dlm_controld_b")
    assert rc == 0 and "REM:lvm_vgd" in out
    assert lockd_adapter.parse_info(out)[0] == {}
    rc, _, err = recorded("lock_start_no_dlm_controld_b")
    assert rc == 5 and "systemctl enable --now dlm" in lockd_adapter.setup_hint(err)


def test_the_lock_held_by_the_other_node_is_a_wait_with_dlm_too():
    rc, _, err = recorded("lvchange_aey_held_b")
    assert rc == 5 and lockd_adapter.peer_message(err) == "LV locked by other host: vgd/lv1"
