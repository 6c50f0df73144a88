"""Root fixtures: size constants, and the tripwire that keeps unit tests off real processes.

``M`` and ``G`` (bytes) come from ``support`` (``from support import M, G``); the fixtures
``host`` (support.fixtures) and ``scenario`` (support.scenario) are registered here, and
the autouse ``time_shift`` (support.timeshift): every plan a daemon would reuse, in every
test, is planned again with the time moved and must be the same (issue 22's plan reuse).

The tripwire (autouse): a test that starts a real process fails, whether it meant to or
not: a runner left a ``SubprocessRunner`` where a simulated host belonged, a helper
shelled out. It replaces, for the test's duration, every way Python starts a process
(``subprocess``'s fork_exec, ``os.fork``/``forkpty``, ``os.posix_spawn[p]``, ``os.system``,
``os.exec*``, ``os.spawn*``); the call raises ``RealProcessStarted`` (a BaseException, so
no ``except Exception`` swallows it) and the test fails at teardown even if something did.

Opting out, explicitly: tests under ``tests/lab`` (marked ``lab``), and tests marked
``real_process`` because running a real process is what they test. Those are:

* tests/runner/test_runner.py: the SubprocessRunner itself (timeouts, kills, openers, the
  exclusive-open probe, a forked child);
* tests/daemon/test_logs.py, test_runtime_errors.py, test_signals_and_lock.py: the CLI
  or daemon as a separate process (signals, the instance lock, stderr);
* tests/daemon/test_spec_writers.py: git commits a spec like a GitOps writer;
* tests/daemon/test_systemd_unit.py: ``systemd-analyze verify`` of the unit;
* tests/cli/test_readme_commands.py: the README's shell commands, run by bash;
* tests/daemon/test_monitoring.py: ``promtool`` checks the alert rules and runs them on
  textfiles the daemon wrote;
* tests/controller/test_noop_memo.py, tests/cli/test_startup_imports.py: new interpreters,
  to see which modules importing ``noop_memo``, or a ``reconcile --once``, imports.
"""

from __future__ import annotations

import _posixsubprocess
import os
import subprocess

import pytest

from support import G, M  # noqa: F401 - the size constants, importable from here too
from support.fixtures import host  # noqa: F401 - the small simulated host (tests/simulate, tests/lvm/simulate)
from support.scenario import scenario  # noqa: F401 - one host under the real pass (tests/*/scenarios)
from support.timeshift import time_shift  # noqa: F401 - autouse: reused plans do not depend on the time


class RealProcessStarted(BaseException):
    """A test not marked ``lab`` or ``real_process`` tried to start a real process."""


_SPAWNERS = ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system", "execv", "execve",
             "execvp", "execvpe", "execl", "execle", "execlp", "execlpe", "spawnv", "spawnve",
             "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe", "popen")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "real_process: the test starts real processes on purpose (see "
        "tests/conftest.py, which lists the files that do)")


@pytest.fixture(autouse=True)
def no_real_process(request, monkeypatch):
    if request.node.get_closest_marker("lab") or request.node.get_closest_marker("real_process"):
        yield
        return
    tried: list[str] = []

    def trip(what: str):
        def refuse(*args, **kwargs):
            shown = " ".join(str(a) for a in (args[0] if args and isinstance(args[0], (list, tuple))
                                               else args[:2]))
            tried.append(f"{what}: {shown}"[:200])
            raise RealProcessStarted(
                f"{request.node.nodeid} started a real process ({what}: {shown[:120]}); "
                "use a simulated host, or mark the test real_process (tests/conftest.py)")
        return refuse

    monkeypatch.setattr(_posixsubprocess, "fork_exec", trip("subprocess"))
    if hasattr(subprocess, "_fork_exec"):  # 3.12+: imported by name
        monkeypatch.setattr(subprocess, "_fork_exec", trip("subprocess"))
    for name in _SPAWNERS:
        if hasattr(os, name):
            monkeypatch.setattr(os, name, trip(f"os.{name}"))
    yield
    if tried:
        pytest.fail(f"a real process was started: {tried[0]}", pytrace=False)
