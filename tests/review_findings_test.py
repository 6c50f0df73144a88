"""Review of issue 17's merges: failing demonstrations of findings NOT fixed on branch
``review``. Not collected by default (the name has no ``test_`` prefix); run with

    PYTHONPATH=$PWD python3 -m pytest -q tests/review_findings_test.py

Each test asserts the behaviour the issue asks for and fails on the code as merged."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "iscsi"))
sys.path.insert(0, str(Path(__file__).parent / "drbd"))

from reconciler import controller  # noqa: E402
from reconciler.simulate import SimulatedHost  # noqa: E402
from reconciler.spec import loading  # noqa: E402


# -- waits: a removal refused before is now a wait on a node that has nothing left to do ----------

def test_a_target_removal_never_waits_on_a_node_while_an_undeclared_initiator_is_logged_in(
        tmp_path, monkeypatch):
    """planning/iscsi.py _logout_awaited: the export may end once every session the spec
    declares to the target is absent, and waits on those nodes while anything is logged in;
    it never checks that what is logged in is one of them. Here b (the declared session,
    absent) is in sync and never logged in; c, which no spec declares, is logged in and may
    be writing. a exits 2 "waiting on b" for ever (before issue 17: refused, blocked)."""
    import test_iscsi_simulated as sim
    init_c = "iqn.2004-10.com.example:c"
    spec = (sim.SPEC.replace(f'acls = ["{sim.INIT_B}"]', f'acls = ["{sim.INIT_B}", "{init_c}"]')
            .replace(f'placement = ["{sim.DISK0}"]', 'placement = ["/dev/vda"]'))
    monkeypatch.setattr(sim, "SPEC", spec)
    pair = sim.Pair(tmp_path)
    c = SimulatedHost(seed="c")
    pair.fabric.join(c, initiator=init_c)
    c.md.files["/etc/reconciler/c.chap"] = sim.CHAP
    loaded = pair.spec(session="absent", pvs='"/dev/vda"')
    assert pair.converge("a", loaded).exit_code == 0
    (tmp_path / "c.toml").write_text(textwrap.dedent(f"""
        [iscsi_session.mine]
        nodes = ["c"]
        portal = "{sim.PORTAL}"
        target = "{sim.IQN}"
        chap_file = "/etc/reconciler/c.chap"
        luns = [0]
        """))
    env = controller.Environment(runner=c, node="c", resolve=c.resolve_device, clock=c.clock)
    mem = controller.Memory()
    for _ in range(5):
        controller.reconcile_once(loading.load(tmp_path / "c.toml"), env, memory=mem)
    assert pair.a.iscsi.targets[sim.IQN].sessions == {init_c}
    assert pair.run("b", loaded).exit_code == controller.EXIT_IN_SYNC  # b: nothing to do, ever
    gone = pair.spec(session="absent", pvs='"/dev/vda"', lun0_state='state = "absent"')
    r = pair.run("a", gone)
    assert 0 in pair.a.iscsi.targets[sim.IQN].luns
    assert r.exit_code == controller.EXIT_ERROR and r.final.blocked, (
        f"a waits on b, which has nothing to do, while c is logged in: {r.final}")
