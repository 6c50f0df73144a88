import os
import shutil
import subprocess
import sys

import pytest

from .conftest import REPO

UNIT = REPO / "systemd" / "reconciler.service"
TMPFILES = REPO / "systemd" / "reconciler-tmpfiles.conf"


@pytest.fixture(scope="session")
def systemd_analyze() -> str:
    """systemd-analyze, installed from Debian's systemd package when missing (as root)."""
    found = shutil.which("systemd-analyze")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "systemd"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True, check=True)
        found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze is needed (Debian package systemd)"
    return found


def directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


def verify(analyze: str, unit_text: str, where) -> str:
    """Run ``systemd-analyze verify`` on a copy whose ExecStart names this machine's
    reconcile; returns everything it printed (warnings included)."""
    exe = shutil.which("reconcile")
    start = exe if exe else f"{sys.executable} -m reconciler"
    unit = where / "reconciler.service"
    unit.write_text(unit_text.replace("ExecStart=reconcile ", f"ExecStart={start} "))
    res = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True,
                         text=True, timeout=60, env=dict(os.environ, SYSTEMD_LOG_COLOR="0"))
    return f"rc={res.returncode}\n{res.stdout}{res.stderr}".strip()


@pytest.mark.real_process
def test_unit_verifies_without_a_single_warning(systemd_analyze, tmp_path):
    assert verify(systemd_analyze, UNIT.read_text(), tmp_path) == "rc=0"


@pytest.mark.real_process
def test_verify_does_catch_a_broken_unit(systemd_analyze, tmp_path):
    broken = UNIT.read_text().replace("Type=notify", "Type=notifyy").replace(
        "KillMode=mixed", "KillMode=mixed\nWatchdogSecs=1")
    out = verify(systemd_analyze, broken, tmp_path)
    assert "Failed to parse service type" in out
    assert "Unknown key" in out and "WatchdogSecs" in out


def test_unit_contract_with_the_daemon():
    d = directives(UNIT.read_text())
    assert d["Service.Type"] == ["notify"]
    assert d["Service.ExecStart"][0].startswith("reconcile --spec /etc/reconciler/specs")
    assert "--once" not in d["Service.ExecStart"][0]
    assert d["Service.ExecReload"] == ["kill -HUP $MAINPID"]
    assert d["Service.Restart"] == ["on-failure"]
    assert d["Service.KillMode"] == ["mixed"]  # SIGTERM to the daemon, not to lvm
    assert d["Service.WatchdogSec"] and d["Service.RuntimeDirectory"] == ["reconciler"]
    assert d["Install.WantedBy"] == ["multi-user.target"]


def test_hardening_leaves_block_devices_reachable():
    d = directives(UNIT.read_text())
    for key in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock",
                "PrivateNetwork", "ProtectKernelModules", "ProtectKernelTunables", "User",
                "DynamicUser", "CapabilityBoundingSet"):
        assert f"Service.{key}" not in d, key
    assert d["Service.ProtectSystem"] == ["strict"]
    writable = d["Service.ReadWritePaths"][0].split()
    assert "/etc/lvm" in writable and "/run" in writable


def test_tmpfiles_lines_are_well_formed():
    lines = [line.split() for line in TMPFILES.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert {tuple(f[:2]) for f in lines} >= {("d", "/etc/reconciler/specs")}
    for fields in lines:
        assert len(fields) == 6 and fields[0] == "d" and fields[2] == "0755", fields
