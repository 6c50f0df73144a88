"""Pacemaker owns what it owns (issue 20) on a shared VG (lvmlockd, sanlock): an
``ocf:heartbeat:LVM-activate`` primitive in ``vg_access_mode = lvmlockd`` owns the LV's
activation on every node, so moving the LV in the spec moves nothing; the lockspace start
and a grow are not Pacemaker's. The lockd simulator does not model Pacemaker's tools, so
each node's real observation gets the Pacemaker state its CIB would give (the same parser)."""

from __future__ import annotations

import dataclasses

from support.lockd_sim import c, converge, data, mode, n, shared_vg  # noqa: F401 - c, n: fixtures

from reconciler import actions, observing, planning
from reconciler.adapters import pacemaker as pcmk
from reconciler.simulate.pacemaker_tools import cib, primitive

LVM_DATA = primitive("lvm-data", "ocf:heartbeat:LVM-activate", vgname="vgs", lvname="data",
                     vg_access_mode="lvmlockd", activation_mode="exclusive")


def plan_on(n, node: str, doc: dict, where: dict[str, str]):
    """``node``'s plan for ``doc`` on its observed state, with Pacemaker running ``lvm-data``
    as ``where`` says (node -> role)."""
    loaded = n.spec(doc)
    spec = loaded.for_node(node)
    env = n.env(node)
    st = observing.observe(env.runner, host="local", devices=observing.spec_devices(spec),
                           resolve=env.resolve, lockd=True)
    seen = pcmk.pacemaker_state(pcmk.parse_cib(cib(LVM_DATA)), "cibadmin --query",
                                ({"lvm-data": where}, {"lvm-data": True}, ""))
    return planning.plan(spec, dataclasses.replace(st, pacemaker=seen), node=node)


def test_moving_an_lv_pacemaker_activates_moves_nothing_on_either_node(c, n):
    converge(n, shared_vg(data(node_a="exclusive", all="inactive")))
    assert mode(c, "node-a") == "ex"
    moved = shared_vg(data(node_b="exclusive", all="inactive"))
    for node in ("node-a", "node-b"):
        p = plan_on(n, node, moved, {"node-a": "Started"})
        assert not [s for s in p.steps if isinstance(s.action, actions.SetActivation)], p.steps
        why = "\n".join(f"{b.object}: {b.reason}" for b in p.blocked)
        assert ("lv vgs/data: managed by Pacemaker (ocf:heartbeat:LVM-activate primitive "
                "lvm-data, from cibadmin --query; Pacemaker runs it Started on node-a)") in why
        assert "lv vgs/data (Pacemaker's: ocf:heartbeat:LVM-activate primitive lvm-data)" in p.unmanaged


def test_the_lockspace_start_and_a_grow_are_still_planned(c, n):
    """The agent's own ``vgchange --lockstart`` succeeds on a started lockspace, and it stops
    the lockspace only once no LV of the VG is active: starting it does not fight the agent."""
    doc = shared_vg(data(node_a="exclusive", all="inactive"))
    converge(n, doc)
    c.crash("node-b")
    c.recover("node-b")  # lvmlockd back without the VG's lockspace
    p = plan_on(n, "node-b", doc, {"node-a": "Started"})
    assert not p.blocked, p.blocked
    assert [s.action for s in p.steps if isinstance(s.action, actions.StartLockspace)], p.steps
    grown = shared_vg(data(size="64M", node_a="exclusive", all="inactive"))
    p = plan_on(n, "node-a", grown, {"node-a": "Started"})
    assert not p.blocked, p.blocked
    assert any(isinstance(s.action, actions.ResizeLv) for s in p.steps), p.steps


def test_a_mounted_lv_pacemaker_runs_here_is_refused_naming_pacemaker(c, n):
    """Lab finding: after ``crm_resource --move`` the LV is active and mounted (by Pacemaker's
    Filesystem) on the node the spec wants it inactive on. The refusal must name Pacemaker
    and what to do with it, not tell the operator to unmount what Pacemaker mounted."""
    converge(n, shared_vg(data(node_b="exclusive", all="inactive")))
    c.mount("node-b", "vgs", "data", "/mnt/data")
    p = plan_on(n, "node-b", shared_vg(data(node_a="exclusive", all="inactive")),
                {"node-b": "Started"})
    assert not [s for s in p.steps if isinstance(s.action, actions.SetActivation)], p.steps
    (why,) = [b.reason for b in p.blocked if b.object == "lv vgs/data"]
    assert why.startswith("managed by Pacemaker (ocf:heartbeat:LVM-activate primitive lvm-data, "
                          "from cibadmin --query; Pacemaker runs it Started on node-b)"), why
    assert "crm_resource --move lvm-data" in why and "unmount" not in why, why
