"""The README's commands run exactly as written, so the README cannot drift (issue 9).

Every line of a ```sh block that runs ``reconcile`` is run through bash, in a scratch
directory that sees the project's ``specs/`` (so relative paths work and captures land in
the scratch directory), with ``reconcile`` on PATH running this checkout. A trailing
``# exit N`` comment gives the expected exit code (default 0). Commands that cannot run here
are listed below with the reason, and must still be in the README.
"""

import os
import re
import stat
import subprocess
import sys

import pytest

from conftest import ROOT

README = ROOT / "README.md"

NOT_RUN = {
    "bash .ci/run": "installs Debian packages and runs the whole suite, the lab included",
    "pip install .": "installs the package into the environment (bash .ci/run does it); "
                     "the rest of that line is run",
    # The service install and its day-to-day commands: root on a host with systemd; run as
    # written, through the unit, by tests/lab/test_lab_systemd.py (a Debian 12 guest whose
    # PID 1 is systemd).
    "apt-get install --no-install-recommends python3-venv lvm2": "the service install (root)",
    "sh install.sh": "the service install (root, systemd)",
    "systemctl status reconciler": "needs the service installed",
    "cp my.toml /etc/reconciler/specs/": "needs the service installed",
    "systemctl reload reconciler": "needs the service installed",
    "journalctl -u reconciler -p warning": "needs the service installed",
    "systemctl stop reconciler": "needs the service installed",
}
NOT_RUN_PREFIX = ()


def sh_lines() -> list[str]:
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), flags=re.M | re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def commands() -> list[str]:
    out = []
    for line in sh_lines():
        for part in line.split(" && "):
            if part.startswith("reconcile ") or part == "reconcile":
                out.append(part)
    return out


def test_every_sh_line_is_run_or_listed_with_a_reason():
    for line in sh_lines():
        parts = line.split("#")[0].strip().split(" && ")
        for part in parts:
            part = part.strip()
            assert (part.startswith("reconcile") or part in NOT_RUN
                    or part.startswith(NOT_RUN_PREFIX)), f"README command not covered: {part}"
    listed = {p.strip() for line in sh_lines() for p in line.split("#")[0].split(" && ")}
    for cmd in NOT_RUN:  # the list must not go stale either
        assert cmd in listed, f"listed as not run but not in the README: {cmd}"
    assert commands()[0] == "reconcile --simulate default --spec specs/demo --once --wait"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    (d / "specs").symlink_to(ROOT / "specs")
    bin_dir = d / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "reconcile"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m reconciler "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT),
               XDG_RUNTIME_DIR=str(d), NO_COLOR="1")
    env.pop("RECONCILER_LOG_LEVEL", None)
    return d, env


@pytest.mark.real_process
def test_readme_commands_run_as_written(scratch):
    d, env = scratch
    cmds = commands()
    assert len(cmds) >= 10
    for cmd in cmds:  # in README order: a capture is written before it is used
        m = re.search(r"#\s*exit (\d)", cmd)
        expected = int(m.group(1)) if m else 0
        res = subprocess.run(["bash", "-c", cmd], cwd=d, env=env, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == expected, f"{cmd}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
        assert "Traceback" not in res.stderr, f"{cmd}\n{res.stderr[-3000:]}"
        if "--wait" in cmd and expected == 0:
            assert "Exit 0: in sync with the spec." in res.stdout, cmd
