"""rtslib-fb is the ``[iscsi]`` extra, not a hard dependency (issue 19): a host without it
still observes LIO and logs in to targets, but a change to a target it exports is blocked
with what to install, never attempted. Tested by making the import fail."""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

import pytest
from support import G, ROOT

from reconciler import cli, controller
from reconciler.adapters import iscsi
from reconciler.simulate import SimulatedHost
from reconciler.simulate.iscsi_model import Fabric
from reconciler.spec import loading

SPEC = ROOT / "specs" / "examples" / "iscsi.toml"
WHAT_TO_INSTALL = ("pip install 'reconciler[iscsi]'", "python3-rtslib-fb")


@pytest.fixture
def no_rtslib(monkeypatch):
    """``import rtslib_fb`` fails, as on a host installed without the extra."""
    monkeypatch.setitem(sys.modules, "rtslib_fb", None)


def test_rtslib_is_the_iscsi_extra_and_kept_for_the_tests():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not any(d.startswith("rtslib") for d in project["dependencies"])
    extras = project["optional-dependencies"]
    assert any(d.startswith("rtslib-fb") for d in extras["iscsi"])
    assert any(d.startswith("rtslib-fb") for d in extras["test"])


def test_the_applier_problem_says_what_to_install(no_rtslib):
    problem = iscsi.applier_problem()
    for words in WHAT_TO_INSTALL:
        assert words in problem
    assert sys.executable in problem


def test_no_problem_when_rtslib_is_there():
    assert iscsi.applier_problem() == ""  # the test extra installs it


def test_the_applier_process_refuses_with_what_to_install(no_rtslib, capsys):
    desired = {"iqn": "iqn.2003-01.org.example.new:export0", "name": "export0",
               "portals": [], "luns": {}, "acls": [], "chap_file": None}
    assert iscsi.main(["lio-apply", json.dumps(desired)]) == 3
    err = capsys.readouterr().err
    assert "rtslib-fb" in err and all(w in err for w in WHAT_TO_INSTALL), err
    assert "Traceback" not in err and "ModuleNotFoundError" not in err


def test_a_real_host_without_rtslib_carries_the_problem(no_rtslib):
    args = argparse.Namespace(simulate=None, node="new")
    env, _ = cli._environment(args)
    assert "pip install 'reconciler[iscsi]'" in env.lio_applier


def _new_server(problem: str):
    fabric = Fabric()
    new = SimulatedHost(seed="rtslib-extra")
    fabric.join(new)
    new.add_device("/dev/md1", 64 * G, major=9, minor=1)
    new.md.files["/etc/reconciler/export0.chap"] = "userid = old-server\npassword = demo-secret-16ch\n"
    env = controller.Environment(runner=new, node="new", resolve=new.resolve_device,
                                 clock=new.clock, lio_applier=problem)
    return new, env


def test_a_target_change_is_blocked_with_what_to_install(no_rtslib):
    new, env = _new_server(iscsi.applier_problem())
    result = controller.reconcile_once(loading.load(SPEC), env)
    assert result.exit_code == 1
    blocked = [b for b in result.plan.blocked if b.object == "iscsi target export0"]
    assert len(blocked) == 1, result.plan
    assert "changing the target is refused: rtslib-fb" in blocked[0].reason
    assert all(w in blocked[0].reason for w in WHAT_TO_INSTALL)
    assert not result.plan.steps
    assert not [c for c in new.calls if "lio-apply" in c.argv]


def test_with_rtslib_the_same_target_is_made():
    new, env = _new_server("")
    result = controller.reconcile_once(loading.load(SPEC), env)
    assert result.exit_code == 0, result.plan
    assert [c for c in new.calls if "lio-apply" in c.argv]


def test_an_initiator_needs_no_rtslib(no_rtslib):
    old = SimulatedHost(seed="rtslib-extra-old")
    Fabric().join(old, initiator="iqn.2004-10.com.example:old")
    old.add_device("/dev/md1", 64 * G, major=9, minor=1)
    env = controller.Environment(runner=old, node="old", resolve=old.resolve_device,
                                 clock=old.clock, lio_applier=iscsi.applier_problem())
    result = controller.reconcile_once(loading.load(SPEC), env, dry_run=True)
    assert "rtslib" not in str(result.plan)


def test_the_applier_makes_the_dbroot_its_rtslib_prefers(monkeypatch, tmp_path):
    """Debian's python3-rtslib-fb prefers /etc/rtslib-fb-target, upstream /etc/target: the
    directory made is the installed rtslib's, before rtslib sets configfs's dbroot to it."""
    import types

    dbroot = tmp_path / "rtslib-fb-target"

    class Stop(Exception):
        pass

    class RTSRoot:
        _preferred_dbroot = str(dbroot)

        def __init__(self):
            assert dbroot.is_dir()
            raise Stop

    monkeypatch.setitem(sys.modules, "rtslib_fb", types.SimpleNamespace(RTSRoot=RTSRoot))
    monkeypatch.setattr(iscsi, "_mount_configfs", lambda: None)
    with pytest.raises(Stop):
        iscsi.apply_target({"iqn": "iqn.2003-01.org.example.new:export0", "name": "export0",
                            "portals": [], "luns": {}, "acls": [], "chap_file": None})
    assert dbroot.is_dir()
