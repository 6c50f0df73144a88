import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

UNIT = REPO / "systemd" / "reconciler.service"
TMPFILES = REPO / "systemd" / "reconciler-tmpfiles.conf"
README = REPO / "README.md"
# Where ExecStart finds the program, whatever the install (the README's install step links it)
INSTALLED = "/usr/local/sbin/reconcile"


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
    unit.write_text(unit_text.replace(f"ExecStart={INSTALLED} ", f"ExecStart={start} "))
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
    assert d["Service.ExecStart"][0].startswith(f"{INSTALLED} --spec /etc/reconciler/specs")
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
    writable = " ".join(d["Service.ReadWritePaths"]).split()
    assert "/etc/lvm" in writable and "/run" in writable


def test_tmpfiles_lines_are_well_formed():
    lines = [line.split() for line in TMPFILES.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert {tuple(f[:2]) for f in lines} >= {("d", "/etc/reconciler/specs")}
    for fields in lines:
        assert len(fields) == 6 and fields[0] == "d" and fields[2] == "0755", fields


# -- every path written is writable under the unit; the program is found (issue 19) ----------


def read_write_paths() -> list[tuple[str, bool]]:
    """The unit's ReadWritePaths= entries: (path, optional: the "-" prefix)."""
    entries = " ".join(directives(UNIT.read_text())["Service.ReadWritePaths"]).split()
    return [(e.lstrip("-"), e.startswith("-")) for e in entries]


def allowed(path: str) -> tuple[str, bool] | None:
    """The entry that makes ``path`` writable (itself or a directory above it), or None."""
    for entry, optional in read_write_paths():
        if path == entry or path.startswith(entry.rstrip("/") + "/"):
            return entry, optional
    return None


def test_every_path_the_product_writes_is_writable_under_the_unit():
    from reconciler import paths
    assert len(paths.WRITTEN) >= 10
    for w in paths.WRITTEN:
        entry = allowed(w.path)
        assert entry is not None, f"{w.path} ({w.by}: {w.what}) is read-only under the unit"
        if entry[0] == w.path and not w.optional:
            assert not entry[1], f"{w.path} is always there: no '-' needed"
        if entry[0] == w.path and w.optional:
            # absent on a host without the subsystem: without "-" the unit would not start
            assert entry[1], f"{w.path} may be absent: the unit must name it -{w.path}"
    named = {p for p, _ in read_write_paths()}
    for needed in ("/etc/drbd.d", "/etc/iscsi", "/etc/target", "/etc/rtslib-fb-target",
                   "/var/lib/reconciler", "/etc/lvm", "/run"):
        assert needed in named, needed
    for path in ("/run/reconciler", "/run/lvm", "/run/lock", "/etc/lvm/archive",
                 "/etc/lvm/backup", "/etc/iscsi/nodes", "/var/lib/reconciler/clones.json"):
        assert allowed(path), path


def test_nothing_outside_the_unit_s_paths_is_allowed_by_accident():
    for path in ("/etc", "/etc/reconciler/specs", "/usr/local/sbin", "/var/lib", "/home",
                 "/etc/passwd", "/var/log"):
        assert allowed(path) is None, path


# Absolute paths the code names that it only reads (never written), with why.
ONLY_READ = {
    "/etc/reconciler": "the specs and CHAP files: read, and refused unless root-only",
    "/var/lib/pacemaker/cib/cib.xml": "Pacemaker's CIB file: what it manages when it does "
                                      "not answer (issue 20); read only",
}


def test_no_other_path_in_the_code_is_written():
    """Every /etc, /var or /run path named in the product's code (the simulator aside) is
    in the table or known to be only read: a new file written elsewhere fails here until
    paths.WRITTEN (and so the unit) says so. /proc, /sys and /dev stay writable under
    ProtectSystem=strict (device policy and tunables are left open; see the unit)."""
    import re

    from reconciler import paths
    written = [w.path for w in paths.WRITTEN]
    found: dict[str, str] = {}
    for f in sorted((REPO / "reconciler").rglob("*.py")):
        rel = f.relative_to(REPO).as_posix()
        if rel.startswith("reconciler/simulate/") or rel == "reconciler/paths.py":
            continue
        for m in re.finditer(r"[\"'](/(?:etc|var|run)/[^\"'\s{]*)", f.read_text()):
            found.setdefault(m.group(1).rstrip("/"), rel)
    assert "/etc/drbd.d" not in found  # the adapters take it from the table (below)
    for path, where in sorted(found.items()):
        covered = [p for p in [*written, *ONLY_READ]
                   if path == p or path.startswith(p + "/")]
        assert covered, f"{where} names {path}: add it to reconciler/paths.py (and the unit)"


def test_the_adapters_and_the_daemon_take_their_paths_from_the_table():
    from reconciler import cli, daemon, paths, status
    from reconciler.state import drbd as state_drbd
    from reconciler.adapters import drbd, iscsi, md
    assert drbd.CONF_DIR == paths.DRBD_CONF_DIR and drbd.MARK_DIR == paths.DRBD_MARK_DIR
    assert iscsi.NODES_DIR == paths.ISCSI_NODES_DIR
    assert md.DEFAULT_LEDGER == paths.CLONE_LEDGER
    assert state_drbd.DEFAULT_LEDGER == paths.DRBD_LEDGER
    assert str(status.DEFAULT_DIR) == paths.RUN_DIR == str(daemon.RUN_DIR)
    assert cli.STUCK_FILE == paths.STUCK_FILE
    d = directives(UNIT.read_text())
    assert d["Service.RuntimeDirectory"] == [paths.RUN_DIR.removeprefix("/run/")]
    assert d["Service.StateDirectory"] == [paths.STATE_DIR.removeprefix("/var/lib/")]


def test_the_lio_directories_exist_before_the_unit_starts():
    """rtslib-fb needs its dbroot to exist; under the unit /etc is read-only but for the
    directories named, which systemd only opens when they exist at start: tmpfiles makes
    them (the install step runs systemd-tmpfiles --create, and so does every boot)."""
    from reconciler import paths
    made = {line.split()[1] for line in TMPFILES.read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    assert set(paths.LIO_DBROOTS) <= made


def service_section() -> str:
    text = README.read_text()
    return text[text.index("## Running as a service"):text.index("## Offline planning")]


INSTALL_SH = REPO / "install.sh"  # what the README's second install command runs


def test_exec_start_finds_the_program_whatever_the_install():
    d = directives(UNIT.read_text())
    argv = d["Service.ExecStart"][0].split()
    assert argv[0] == INSTALLED  # absolute: never systemd's PATH lookup of a bare name
    script = INSTALL_SH.read_text()
    assert 'VENV=${RECONCILER_VENV:-/opt/reconciler}' in script
    assert f'ln -sf "$VENV/bin/reconcile" {INSTALLED}' in script
    assert '-m venv --system-site-packages "$VENV"' in script  # Debian 12 refuses a root pip install
    section = service_section()
    assert "\nsh install.sh " in section  # the README's second command
    assert f'ln -sf "$(command -v reconcile)" {INSTALLED}' in section  # any other install


def test_documentation_points_at_what_the_install_step_puts_there():
    d = directives(UNIT.read_text())
    assert d["Unit.Documentation"] == ["file:///usr/share/doc/reconciler/README.md"]
    assert ('install -D -m 0644 "$SRC/README.md" /usr/share/doc/reconciler/README.md'
            in INSTALL_SH.read_text())
    assert f'"$SRC/{UNIT.relative_to(REPO)}" /etc/systemd/system/{UNIT.name}' in INSTALL_SH.read_text()


def test_the_unit_s_command_line_starts_the_daemon(monkeypatch, capsys):
    """ExecStart's arguments, parsed as the program parses them, start the daemon on the
    spec directory with its status in the RuntimeDirectory (not a usage error, not --once)."""
    from reconciler import cli, daemon
    started = []
    monkeypatch.setattr(daemon.Daemon, "run", lambda self: started.append(self) or 0)
    argv = directives(UNIT.read_text())["Service.ExecStart"][0].split()
    assert cli.main(argv[1:]) == 0, capsys.readouterr().err
    (d,) = started
    assert d.settings.spec == Path("/etc/reconciler/specs")
    assert d.settings.status_dir == Path("/run/reconciler")
