"""A pass whose inputs are byte-identical to the previous pass's reuses that pass's parse of
``lvm fullreport`` and its plan (issue 22): the parse is a pure function of the report's
text, and the plan a pure function of (the node's spec, the observed state, what is
stalled). Anything else (one changed byte of the report, another spec, another observed
fact, an operation in flight, a clone, a plan that read the observation's time) makes a
full pass, and every pass's plan is the one a fresh process would make: a plan that read
the time (``Plan.reads_time``) is made again at every pass, so a step that waits for the
time is taken when the time says so."""

from __future__ import annotations

import dataclasses

import pytest
from support import G, M
from support.fixtures import disks_host, mirror_host, mirror_spec
from support.mdfix import clone_host, clone_spec
from support.nodes import Nodes
from support.specs import local_vg
from support.edited import Edited

from reconciler import actions, controller, planning
from reconciler.adapters import lvm
from reconciler.adapters.lvm_report import FULLREPORT_ARGV
from reconciler.planning.partial import observed_time
from reconciler.runner import CommandResult

NODE = "node-1"


def _settled(tmp_path, spec=None, host=None):
    """A node whose first pass created what ``spec`` declares, then one no-op pass."""
    host = host or disks_host(G, "/dev/vdb", "/dev/vdc", vg="vg0")
    edited = Edited(host)
    nodes = Nodes.of_hosts(tmp_path, {NODE: host})
    nodes.nodes[NODE].runner = edited
    loaded = nodes.spec(spec or local_vg("vg0", ["/dev/vdb", "/dev/vdc"],
                                         lv={"data": {"size": "64M"}, "logs": {"size": "8M"}}))
    assert nodes.one_pass(NODE, loaded).changes  # lvcreate x2
    second = nodes.one_pass(NODE, loaded)
    assert second.exit_code == 0 and not second.changes
    return nodes, edited, loaded, second


def _fresh(nodes, loaded):
    """The same pass by a fresh process (a new Memory): what every pass must equal."""
    memory = nodes.nodes[NODE].memory
    try:
        return nodes.one_pass(NODE, loaded, fresh_memory=True)
    finally:
        nodes.nodes[NODE].memory = memory


def test_a_no_op_pass_on_identical_inputs_reuses_the_parse_and_the_plan(tmp_path, calls):
    nodes, _, loaded, second = _settled(tmp_path)
    before = dict(calls)
    third = nodes.one_pass(NODE, loaded)
    assert (calls["parse"], calls["plan"]) == (before["parse"], before["plan"])
    # ... but it observed as every pass does, and says the same
    assert [c.argv for c in third.commands] == [c.argv for c in second.commands]
    assert third.commands[0].argv == FULLREPORT_ARGV
    assert third.exit_code == 0 and third.plan.as_dict() == second.plan.as_dict()
    assert third.result.processes == second.result.processes
    fresh = _fresh(nodes, loaded)
    assert calls["parse"] == before["parse"] + 1 and calls["plan"] == before["plan"] + 1
    assert fresh.plan.as_dict() == third.plan.as_dict()


def test_one_changed_byte_of_the_report_forces_a_full_pass(tmp_path, calls):
    nodes, edited, loaded, second = _settled(tmp_path)
    # One byte of a column the planner never reads (the segment's first extent): parsed
    # and planned again all the same, and the plan is still the no-op.
    text = edited.host.run(lvm.fullreport()).stdout
    assert text.count('"seg_start_pe":"0"') >= 1
    edited.edit = lambda t: t.replace('"seg_start_pe":"0"', '"seg_start_pe":"1"', 1)
    before = dict(calls)
    third = nodes.one_pass(NODE, loaded)
    assert (calls["parse"], calls["plan"]) == (before["parse"] + 1, before["plan"] + 1)
    assert third.exit_code == 0
    # One byte that matters: LV "logs" reported as "logz": logs must be made again (a dry
    # run: the plan is what is looked at).
    edited.edit = lambda t: t.replace('"lv_name":"logs"', '"lv_name":"logz"', 1)
    fourth = nodes.one_pass(NODE, loaded, dry_run=True)
    assert (calls["parse"], calls["plan"]) == (before["parse"] + 2, before["plan"] + 2)
    assert [s.action.describe() for s in fourth.plan.steps], fourth.plan.as_dict()
    assert any("logs" in s.key for s in fourth.plan.steps)


def test_another_spec_forces_a_full_plan(tmp_path, calls):
    nodes, _, loaded, second = _settled(tmp_path)
    doc = local_vg("vg0", ["/dev/vdb", "/dev/vdc"],
                   lv={"data": {"size": "64M"}, "logs": {"size": "16M"}})
    other = nodes.spec(doc)
    assert other.digest != loaded.digest
    before = dict(calls)
    third = nodes.one_pass(NODE, other)
    assert calls["plan"] == before["plan"] + 2  # planned, grown, planned again
    assert calls["parse"] > before["parse"]  # lvextend changed the report
    assert third.changes and third.changes[0][0] == "lvextend"


def test_another_observed_fact_forces_a_full_plan(tmp_path, calls):
    """Same report bytes, but a spec device now resolves to another device (/dev/vdc is
    /dev/vdb's number: one disk named twice): the parse is reused (same text), the plan
    is not."""
    nodes, edited, loaded, second = _settled(tmp_path)
    edited.moved["/dev/vdc"] = "/dev/vdb"
    before = dict(calls)
    third = nodes.one_pass(NODE, loaded)
    assert calls["parse"] == before["parse"]
    assert calls["plan"] == before["plan"] + 1
    assert third.plan.as_dict() == _fresh(nodes, loaded).plan.as_dict()
    assert third.plan.as_dict() != second.plan.as_dict()


def test_nothing_is_reused_while_an_operation_is_in_flight(tmp_path, calls):
    """A pvmove in flight: its stall window is judged on the clock, so even a report that
    did not change (the clock stood still) is planned again."""
    host = mirror_host(rate=1 * M)
    edited = Edited(host)
    nodes = Nodes.of_hosts(tmp_path, {NODE: host})
    nodes.nodes[NODE].runner = edited
    spec = mirror_spec()
    spec["vg"]["vg0"]["lv"]["data"]["move"] = "pvmove"
    loaded = nodes.spec(spec)
    first = nodes.one_pass(NODE, loaded)
    assert any(c[0] == "pvmove" for c in first.changes), first.changes
    texts = []
    edited.edit = lambda t: texts.append(t) or t
    before = dict(calls)
    for _ in range(2):
        p = nodes.one_pass(NODE, loaded)
        assert p.exit_code == 2 and p.final.in_flight
    assert texts[-1] == texts[-2]  # byte-identical reports
    assert calls["plan"] == before["plan"] + 2


def test_a_pass_with_a_clone_is_always_planned(tmp_path, calls):
    """md's planning reads the observation's time (when a split copy was complete): a
    clone in the node's spec makes every pass plan, even on identical inputs."""
    host = clone_host()
    edited = Edited(host)
    nodes = Nodes.of_hosts(tmp_path, {NODE: host})
    nodes.nodes[NODE].runner = edited
    loaded = nodes.spec(clone_spec("split"))
    nodes.converge(loaded, seconds=30)
    assert nodes.nodes[NODE].last.exit_code == 0, nodes.nodes[NODE].last.plan.as_dict()
    before = dict(calls)
    for _ in range(2):
        assert nodes.one_pass(NODE, loaded).exit_code == 0
    assert calls["plan"] == before["plan"] + 2


SETTLE = 60.0  # the test planner's "wait this long, then act"


def test_a_plan_that_waits_on_the_clock_is_planned_again_as_time_passes(
        tmp_path, calls, monkeypatch):
    """No planner waits on the clock today (tests/planning/test_time_reads.py), but one
    that did must not have its waiting plan kept by the daemon: the simulator's virtual
    time advances and nothing else changes, and the step is taken when the time says so.
    The test planner holds VG vg0's steps back for ``SETTLE`` seconds from the clock's
    start (a settle period), reading the observation's time the one way planning may
    (``observed_time``; a direct read of ``st.observed_at``, as this test first did,
    failed here: the blocked plan was kept and lvcreate never ran)."""
    host = disks_host(G, "/dev/vdb", "/dev/vdc", vg="vg0")
    nodes = Nodes.of_hosts(tmp_path, {NODE: host})
    loaded = nodes.spec(local_vg("vg0", ["/dev/vdb", "/dev/vdc"], lv={"data": {"size": "64M"}}))
    start = nodes.clock.now()
    plan_vgs = planning.lvm.plan_vgs

    def settling(spec, st, *args, **kwargs):
        part = plan_vgs(spec, st, *args, **kwargs)
        if observed_time(st) < start + SETTLE and part.steps:
            part.held.extend(part.steps)
            part.steps.clear()
            part.blocked.append(actions.Blocked("vg vg0", "settling (a test planner)"))
        return part

    monkeypatch.setattr(planning.lvm, "plan_vgs", settling)
    first = nodes.one_pass(NODE, loaded)
    assert first.exit_code == 1 and first.plan.blocked and not first.changes
    nodes.clock.advance(SETTLE / 2)
    second = nodes.one_pass(NODE, loaded)
    assert second.exit_code == 1 and not second.changes  # still settling
    nodes.clock.advance(SETTLE)
    third = nodes.one_pass(NODE, loaded)
    assert third.changes and third.changes[0][0] == "lvcreate", third.plan.as_dict()
    assert third.exit_code == 0
    assert calls["plan"] == 3 + 1  # every pass planned (and the third once more, after)
