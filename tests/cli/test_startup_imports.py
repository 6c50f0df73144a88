"""What ``reconcile --once`` imports (issue 22): only the subsystems the spec, or what the pass
finds on the host, needs.

Each test imports the product (and the test support built on it) anew in this process, with
``sys.modules`` put back as it was afterwards (a unit test starts no process, see
tests/conftest.py), and looks at which modules that import, and the real pass under the one
harness, loaded.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import M

# A module of md, DRBD, iSCSI or Pacemaker in a layer of the pass (the simulator, which stands
# for the host's tools, is not the product's start-up).
OTHER_SUBSYSTEM = re.compile(
    r"^reconciler\.(spec|state|adapters|actions|planning)\.(md|drbd|iscsi|pacemaker)$")
# loguru too: the product imports it for the first record a sink takes (reconciler/logs.py)
ANEW = ("reconciler", "support", "loguru")

LVM_ONLY = {"vg": {"vg0": {"nodes": ["node-1"], "pvs": ["/dev/vdb"],
                           "lv": {"data": {"size": "8M"}}}}}
CLONE = {"clone": {"db": {"nodes": ["node-1"], "source": "/dev/mapper/old",
                          "target": "/dev/mapper/new", "md": "/dev/md100"}}}


@contextlib.contextmanager
def anew() -> Iterator[None]:
    """The product and the test support imported anew inside; sys.modules as it was after."""
    def ours() -> list[str]:
        return [n for n in sys.modules if n.split(".")[0] in ANEW]

    saved = {n: sys.modules.pop(n) for n in ours()}
    try:
        yield
    finally:
        for n in ours():
            del sys.modules[n]
        sys.modules.update(saved)


def loaded_subsystems() -> list[str]:
    return sorted(n for n in sys.modules if OTHER_SUBSYSTEM.match(n))


# What every pass reads whatever the spec holds, and so imports with the CLI: md's adapter
# (the mount table and the clone ledger, which keeps protecting a copy after its clone is no
# longer declared) and Pacemaker's (whether its CIB file exists: a VG can be Pacemaker's).
EVERY_PASS = ["reconciler.adapters.md", "reconciler.adapters.pacemaker"]


# The actions, which only a plan with steps makes (a settled host's pass makes none).
ACTIONS = re.compile(r"^reconciler\.actions\.(lvm|lockd|md|drbd|iscsi)$")


def loaded_actions() -> list[str]:
    return sorted(n for n in sys.modules if ACTIONS.match(n))


# lvmlockd's observation (its adapter and observed state): only for a shared VG. Its planner
# stays, which plans every VG (it tells a VG declared local from one the host shows shared).
LOCKD_OBSERVED = ("reconciler.adapters.lockd", "reconciler.state.lockd")


def loaded_lockd() -> list[str]:
    return [m for m in LOCKD_OBSERVED if m in sys.modules]


def test_importing_the_cli_loads_no_other_subsystem_than_what_every_pass_reads():
    with anew():
        importlib.import_module("reconciler.cli")
        assert "reconciler.controller" in sys.modules  # the pass's own modules are there
        assert loaded_subsystems() == EVERY_PASS
        assert loaded_actions() == []  # not even LVM's
        assert loaded_lockd() == []


def test_an_action_class_asked_for_is_imported_then():
    with anew():
        actions = importlib.import_module("reconciler.actions")
        assert loaded_actions() == []
        assert actions.CreateVg.__module__ == "reconciler.actions.lvm"
        assert loaded_actions() == ["reconciler.actions.lvm"]
        assert actions.SetActivation.__module__ == "reconciler.actions.lockd"
        assert loaded_actions() == ["reconciler.actions.lockd", "reconciler.actions.lvm"]


def lvm_only(tmp_path, host):
    """(the harness, the LVM-only spec loaded) on ``host``."""
    nodes = importlib.import_module("support.nodes")
    tmp_path.mkdir()
    n = nodes.Nodes.of_hosts(tmp_path, {"node-1": host})
    return n, n.spec(LVM_ONLY)


def test_an_lvm_only_pass_loads_only_what_the_host_shows(tmp_path):
    with anew():
        host = importlib.import_module("reconciler.simulate").SimulatedHost()
        host.add_device("/dev/vdb", 64 * M)
        n, loaded = lvm_only(tmp_path / "first", host)
        first = n.one_pass("node-1", loaded)
        assert first.exit_code == 0 and ("vgcreate", "vg0", "/dev/vdb") in first.changes
        # A pass with steps imports all of its code before its first one (the test below).
        assert [m for m in product_modules() if m not in sys.modules] == []
    with anew():  # the same host, settled, under a new process
        n, loaded = lvm_only(tmp_path / "again", host)
        settled = n.one_pass("node-1", loaded)
        assert settled.exit_code == 0 and settled.plan.converged and not settled.changes
        # No CIB here, so neither Pacemaker's state nor its planner.
        assert loaded_subsystems() == [*EVERY_PASS, "reconciler.state.md"]
        assert loaded_actions() == []  # a plan of no step makes no action


def test_a_clone_table_loads_md_and_only_md():
    with anew():
        specs = importlib.import_module("support.specs")
        spec = specs.spec(CLONE)
        assert list(spec.clone) == ["db"]
        assert loaded_subsystems() == ["reconciler.spec.md"]
        planning = importlib.import_module("reconciler.planning")
        state = importlib.import_module("reconciler.state")
        p = planning.plan(spec, state.HostState(host="node-1"), node="node-1")
        assert [b.object for b in p.blocked] == ["clone db"]  # the ledger was not read
        assert loaded_subsystems() == ["reconciler.planning.md", "reconciler.spec.md"]


# What only another subsystem's spec, or another command, needs: the real host's path of
# ``reconcile --once`` must not bring them back for an LVM-only spec.
NOT_FOR_LVM_ONCE = ("reconciler.adapters.iscsi", "reconciler.state.iscsi", "reconciler.status",
                    "reconciler.forecasting", "reconciler.simulate", "reconciler.simulate.demo")


def settled_host(tmp_path):
    """A simulated host a first pass settled on the LVM-only spec, and that spec written."""
    with anew():
        host = importlib.import_module("reconciler.simulate").SimulatedHost()
        host.add_device("/dev/vdb", 64 * M)
        n, loaded = lvm_only(tmp_path / "first", host)
        assert n.one_pass("node-1", loaded).exit_code == 0
    return host, importlib.import_module("support.specs").write(LVM_ONLY, tmp_path)


def real_once(tmp_path, host, spec, monkeypatch, capsys):
    """``reconcile --once`` down the real host's path (not ``--simulate``: the spec's
    permissions checked, the instance lock taken, the host's runner made), its runner and
    device lookups answered by ``host``, in the product as imported now: (exit code, what
    it printed, the commands it ran)."""
    cli = importlib.import_module("reconciler.cli")
    controller = importlib.import_module("reconciler.controller")
    runner = importlib.import_module("reconciler.runner")
    monkeypatch.setattr(runner, "SubprocessRunner", lambda **_: host)
    real = controller.Environment
    monkeypatch.setattr(controller, "Environment", lambda **kw: real(
        **kw, resolve=host.resolve_device, clock=host.clock))
    before = len(host.calls)
    # (one lock file per call: this process keeps each it took; the saved pass beside them)
    code = cli.main(["--once", "--spec", str(spec), "--node", "node-1",
                     "--lock-file", str(tmp_path / f"lock{before}")])
    return code, capsys.readouterr().out, host.calls[before:]


def test_a_real_once_of_an_lvm_only_spec_on_a_settled_host_loads_only_what_it_reads(
        tmp_path, monkeypatch, capsys):
    host, spec = settled_host(tmp_path)
    with anew():
        code, _, ran = real_once(tmp_path, host, spec, monkeypatch, capsys)
        assert code == 0 and ran and not [c.argv for c in ran if c.mutates]
        assert [m for m in NOT_FOR_LVM_ONCE if m in sys.modules] == []
        assert "difflib" not in vars(importlib.import_module("reconciler.cli"))  # (pytest
        # has it loaded) only for a misspelt word
        assert loaded_subsystems() == [*EVERY_PASS, "reconciler.state.md"]
        assert loaded_actions() == []
        assert loaded_lockd() == []  # no shared VG
        # Nothing said at INFO or above (the pass's lines are DEBUG): loguru not imported.
        assert "loguru" not in sys.modules


# What parses the spec and plans: a --once whose every input is its last no-op pass's needs
# none of it (nor pydantic, which only the models import).
PARSE_AND_PLAN = ("reconciler.spec.loading", "reconciler.spec.models", "reconciler.spec.lvm",
                  "reconciler.planning", "reconciler.planning.lvm")


def test_a_second_real_once_on_a_settled_host_neither_parses_nor_plans(
        tmp_path, monkeypatch, capsys):
    host, spec = settled_host(tmp_path)
    with anew():  # the first: parses, plans, and keeps its no-op pass beside the lock
        first = real_once(tmp_path, host, spec, monkeypatch, capsys)
        assert [m for m in PARSE_AND_PLAN if m not in sys.modules] == []
    with anew():  # the next process: the same spec, code and answers
        again = real_once(tmp_path, host, spec, monkeypatch, capsys)
        assert [m for m in PARSE_AND_PLAN if m in sys.modules] == []
        assert "pydantic" not in vars(importlib.import_module("reconciler.noop_memo"))
        assert "loguru" not in sys.modules
    assert again[:2] == first[:2] and first[0] == 0 and "in sync" in first[1]
    assert [c.argv for c in again[2]] == [c.argv for c in first[2]]  # the same reads, once
    with anew():  # one byte of the spec changed: parsed and planned again
        spec.write_text(spec.read_text() + "\n")
        edited = real_once(tmp_path, host, spec, monkeypatch, capsys)
        assert [m for m in PARSE_AND_PLAN if m not in sys.modules] == []
    assert edited[0] == 0 and edited[1] != first[1]  # (its digest is the edited spec's)
    assert edited[1].splitlines()[1:] == first[1].splitlines()[1:]
    assert [c.argv for c in edited[2]] == [c.argv for c in first[2]]


def test_the_lio_applier_is_looked_up_only_for_a_spec_that_could_declare_a_target():
    import argparse
    with anew():
        cli = importlib.import_module("reconciler.cli")
        env, _ = cli._environment(argparse.Namespace(simulate=None, node="n1"),
                                  iscsi_targets=False)
        assert env.lio_applier == "" and "reconciler.adapters.iscsi" not in sys.modules


def test_the_help_lists_the_simulated_hosts_it_imports_only_when_shown():
    with anew():
        cli = importlib.import_module("reconciler.cli")
        parser = cli._run_parser()
        assert "reconciler.simulate" not in sys.modules  # parsing a pass's arguments
        text = parser.format_help()
        hosts = importlib.import_module("reconciler.simulate.demo").HOSTS
        assert hosts and all(f"  {name:<9} {e.spec}" in text for name, e in hosts.items())


def product_modules() -> list[str]:
    """Every module of the product, but the simulator and the entry point, by its files."""
    import pkgutil
    root = importlib.import_module("reconciler")
    out, todo = [], [(root.__path__, "reconciler.")]
    while todo:
        path, prefix = todo.pop()
        for m in pkgutil.iter_modules(path, prefix):
            if m.name.startswith("reconciler.simulate") or m.name == "reconciler.__main__":
                continue
            out.append(m.name)
            if m.ispkg:
                todo.append(([str(Path(p) / m.name.rsplit(".", 1)[1]) for p in path],
                             m.name + "."))
    return sorted(out)


def test_a_pass_with_steps_has_imported_all_of_its_code_before_its_first_command(tmp_path):
    """A process that changes the host imports every module of the product before its first
    command that does (``ondemand.load_everything``): what it imports later could come from a
    package upgraded on disk since it started (review of issue 22's lazy imports)."""
    with anew():
        # no record imports loguru: what a pass logs at CRITICAL
        importlib.import_module("reconciler.logs").setup("CRITICAL", stream=io.StringIO())
        host = importlib.import_module("reconciler.simulate").SimulatedHost()
        host.add_device("/dev/vdb", 64 * M)
        seen: list[list[str]] = []
        run = host.run

        def first_change_sees_the_modules(cmd):
            if cmd.mutates and not seen:
                seen.append(sorted(n for n in sys.modules
                                   if n.startswith("reconciler") or n == "loguru"))
            return run(cmd)

        host.run = first_change_sees_the_modules
        n, loaded = lvm_only(tmp_path / "first", host)
        assert n.one_pass("node-1", loaded).exit_code == 0 and seen
        missing = [m for m in product_modules() + ["loguru"] if m not in seen[0]]
        assert missing == [], missing
        assert "tenacity" in sys.modules and "xml.etree.ElementTree" in sys.modules


def test_the_daemon_imports_all_of_its_code_as_it_starts(tmp_path, monkeypatch):
    with anew():
        loop = importlib.import_module("reconciler.daemon.loop")
        ondemand = importlib.import_module("reconciler.ondemand")
        assert loaded_actions() == []

        class Started(Exception):
            pass

        def acquire():
            raise Started(sorted(n for n in sys.modules if n.startswith("reconciler")))

        daemon = loop.Daemon.__new__(loop.Daemon)
        daemon.lock = type("Lock", (), {"acquire": staticmethod(acquire)})()
        try:
            daemon.run()
        except Started as started:
            modules = started.args[0]
        missing = [m for m in product_modules() if m not in modules]
        assert missing == [] and ondemand._everything_loaded, missing


def test_code_that_cannot_be_imported_before_the_first_step_runs_nothing(tmp_path, monkeypatch):
    from reconciler import controller, ondemand
    from reconciler.simulate import SimulatedHost

    def half_upgraded():
        raise ImportError("cannot import name 'CreateVg' from 'reconciler.actions.lvm'")

    monkeypatch.setattr(ondemand, "load_everything", half_upgraded)
    host = SimulatedHost()
    host.add_device("/dev/vdb", 64 * M)
    n, loaded = lvm_only(tmp_path / "one", host)
    result = n.one_pass("node-1", loaded)
    assert result.exit_code == controller.EXIT_ERROR and not result.changes
    assert "could not be imported before the first step" in result.error
    assert "nothing was run" in result.error and result.plan.steps


def test_at_debug_loguru_comes_with_the_process_not_inside_the_first_pass():
    """Every pass writes DEBUG records: at that level loguru is imported as logging is set
    up, with its sink (adding one reads sysconfig's paths: 0.04 s of a pass under TCG), so
    neither is counted in the first pass's time; at INFO neither is."""
    for level, imported in (("INFO", False), ("DEBUG", True)):
        with anew():
            cli = importlib.import_module("reconciler.cli")
            logs = importlib.import_module("reconciler.logs")
            assert cli._logging(level)
            assert ("loguru" in sys.modules) is imported
            assert (logs._pending is None) is imported
            if imported:
                sink = io.StringIO()
                logs.setup("DEBUG", stream=sink)
                logs.attach()
                logs.logger.debug("seen")
                assert "seen" in sink.getvalue()


@pytest.mark.real_process  # new interpreters: this one has pydantic loaded by the tests
def test_the_next_real_once_on_a_settled_host_imports_no_pydantic(tmp_path):
    """``bench/startup_pass.py`` drives ``reconcile --once`` down the real host's path in a
    new interpreter and lists the modules the product imported (the simulated host's own
    not counted): the first parses and plans; the next, its inputs all the same, imports
    neither pydantic nor the spec's models nor the planner."""
    import json
    import os
    import subprocess
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    work = tmp_path / "pass"
    work.mkdir(mode=0o700)

    def helper(*argv):
        subprocess.run([sys.executable, str(root / "bench" / "startup_pass.py"), *argv],
                       env=env, cwd=root, check=True, capture_output=True)
    helper("settle", str(work))
    helper("modules", str(work), str(tmp_path / "first.json"))
    helper("modules", str(work), str(tmp_path / "next.json"), "saved")
    first, after = (json.loads((tmp_path / n).read_text()) for n in ("first.json", "next.json"))
    heavy = ("pydantic", "pydantic_core", "reconciler.spec.models", "reconciler.spec.loading",
             "reconciler.planning")
    assert [m for m in heavy if m not in first] == []
    assert [m for m in after if m.split(".")[0] in ("pydantic", "pydantic_core")
            or m in heavy] == []
    assert len(after) < len(first) / 2
