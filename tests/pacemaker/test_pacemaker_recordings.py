"""Pacemaker's CIB and crm_mon XML (issue 20), parsed from the lab's recordings
(tests/fixtures/outputs/pacemaker: Pacemaker 2.1.5, a promotable ocf:linbit:drbd clone for
r0, promoted on node-b), and the simulator's crm_mon in the same format."""

from __future__ import annotations

import re

import pytest
from support import FIXTURES
from support.drbdsim import Pair

from reconciler.adapters import pacemaker as pcmk
from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command
from reconciler.simulate.pacemaker_tools import PacemakerSim

REC = FIXTURES / "outputs" / "pacemaker" / "commands"
# every recording is read by the tests below (the parsers, the simulator's crm_mon)
COMPARES = tuple(f"pacemaker/commands/{p.name}" for p in sorted(REC.glob("*.txt")))


def recorded(case: str) -> tuple[int, str, str]:
    text = (REC / f"{case}.txt").read_text()
    rc = int(re.search(r"^rc: (-?\d+)$", text, re.M).group(1))
    out, err = text.split("--- stdout\n", 1)[1].split("--- stderr\n", 1)
    return rc, out, err


def test_the_cib_names_the_drbd_primitive_its_clone_and_resource():
    rc, out, _ = recorded("cibadmin_query_a")
    [prim] = pcmk.parse_cib(out)
    assert rc == 0 and (prim.id, prim.agent, prim.parent) == ("drbd-r0", "ocf:linbit:drbd", "drbd-r0-clone")
    assert prim.params == {"drbd_resource": "r0"}


def test_crm_mon_gives_each_nodes_role_and_says_when_pacemaker_is_not_running():
    for node in ("a", "b"):
        rc, out, _ = recorded(f"crm_mon_drbd_promoted_{node}")
        assert rc == 0 and pcmk.parse_crm_mon(out) == (
            {"drbd-r0": {"node-b": "Promoted", "node-a": "Unpromoted"}}, {"drbd-r0": True}, "")
    rc, out, _ = recorded("crm_mon_online_a")
    assert pcmk.parse_crm_mon(out) == ({}, {}, "")
    rc, out, _ = recorded("crm_mon_not_running_a")
    roles, _, status = pcmk.parse_crm_mon(out)
    assert rc == 102 and roles == {} and status == (
        "Not connected (code 102); error: Could not connect to launcher: Connection refused; "
        "crm_mon: Connection to cluster failed: Connection refused")


def test_the_kernel_roles_recorded_beside_crm_mon_agree_with_it():
    assert "ro:Secondary/Primary" in recorded("proc_drbd_promoted_a")[1]
    assert "ro:Primary/Secondary" in recorded("proc_drbd_promoted_b")[1]


def test_the_simulators_crm_mon_parses_as_the_recording_does(tmp_path):
    """The simulated crm_mon for the recorded state (r0 Primary on node-b) parses to what
    the real one recorded, and the simulator refuses Pacemaker's changing tools."""
    pair = Pair(tmp_path)
    pair.converge(pair.spec(role_a="secondary", role_b="primary", extra='initial_sync_from = "node-b"'))
    cib = recorded("cibadmin_query_a")[1]
    a = pair.hosts["node-a"]
    a.pacemaker = PacemakerSim(cib)
    sim = a.run(Command(argv=pcmk.CRM_MON_ARGV))
    assert sim.ok and pcmk.parse_crm_mon(sim.stdout) == pcmk.parse_crm_mon(
        recorded("crm_mon_drbd_promoted_a")[1])
    assert a.run(Command(argv=pcmk.CIB_QUERY_ARGV)).stdout == cib
    a.pacemaker.running = False
    down = a.run(Command(argv=pcmk.CRM_MON_ARGV))
    assert down.rc == 102 and pcmk.parse_crm_mon(down.stdout) == pcmk.parse_crm_mon(
        recorded("crm_mon_not_running_a")[1])
    with pytest.raises(UnsupportedCommand, match="never changes what Pacemaker manages"):
        a.run(Command(argv=("crm_resource", "--move", "--resource", "drbd-r0-clone")))
    with pytest.raises(UnsupportedCommand, match="not modelled on this host"):
        pair.hosts["node-b"].run(Command(argv=pcmk.CRM_MON_ARGV))
