"""Review of issue 17's merges: failing demonstrations of findings NOT fixed on branch
``review``. Not collected by default (the name matches neither test_*.py nor *_test.py); run with

    PYTHONPATH=$PWD python3 -m pytest -q tests/review_findings.py

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


# -- md clones: a recopy value used twice, when the spec is reverted while its copy runs -------------

def _md_clone():
    import importlib.util
    here = Path(__file__).parent / "scenarios"
    sys.path.insert(0, str(here))
    spec = importlib.util.spec_from_file_location("review_scenarios_conftest", here / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    import test_md_clone
    return mod.Scenario, test_md_clone


def test_a_recopy_value_whose_copy_ran_is_used_once_even_if_the_spec_was_reverted_meanwhile(
        tmp_path):
    """planning/md.py: a copy asked by a new recopy value keeps the old record until the sync
    replaces it, and nothing records the new value as used before that. Reverted while md
    writes the target (a quick Git revert), the copy completes under the old value's record
    (recopy "v1"), and the new value "v2" is in neither the record nor recopies_used: re-applying
    "v2" later copies over the target again, after the second split handed it to its user."""
    Scenario, mdc = _md_clone()
    host = mdc.clone_host()
    sc = Scenario(tmp_path, host)
    v1 = sc.spec(mdc.clone_spec("split", 'recopy = "v1"'))
    mdc.split_and_live_on_the_target(sc, host, v1)
    host.fill("/dev/vda", "newer data")
    v2 = sc.spec(mdc.clone_spec("split", 'recopy = "v2"'))
    sc.one_pass(v2)  # the v2 copy starts: md writes the target
    assert mdc.ADD in sc.mutations()
    assert sc.converge(v1).exit_code == 0  # reverted while it runs: the copy completes, split
    host.write("/dev/vdb", 3, b"life after the second split")
    target = host.fingerprint("/dev/vdb")
    done = len(sc.mutations())
    sc.one_pass(v2)  # the revert reverted: "v2" asked its copy already
    assert mdc.ADD not in sc.mutations()[done:] and mdc.BUILD not in sc.mutations()[done:], \
        f"v2 copied a second time: {sc.mutations()[done:]}"
    assert host.fingerprint("/dev/vdb") == target
