#!/bin/sh
# Install the reconciler as a systemd service (README, "Running as a service"). As root, from
# this checkout, on Debian 12 (or any systemd host with python3 >= 3.11 and its venv module):
#
#   sh install.sh            # again after a `git pull`: upgrades in place, restarts the unit
#
# 1. The package goes into a venv, /opt/reconciler (Debian refuses a root `pip install`
#    outside one: externally-managed-environment). --system-site-packages lets it use the
#    distribution's python3-rtslib-fb for iSCSI targets (no second targetctl from PyPI);
#    --no-build-isolation builds with the venv's own setuptools (nothing downloaded to build).
#    The dependencies (pydantic, tenacity, loguru, watchdog) come from PyPI, or, on a host
#    without network, from a directory of wheels: PIP_NO_INDEX=1 PIP_FIND_LINKS=/path sh install.sh
# 2. /usr/local/sbin/reconcile, what the unit's ExecStart runs, links to the venv's program.
# 3. The unit, the tmpfiles entry (/etc/reconciler/specs, root-only) and the README (the
#    unit's Documentation=), then `systemctl enable --now reconciler`.
#
# Environment: PYTHON (default python3), RECONCILER_VENV (default /opt/reconciler); pip's own
# PIP_* variables pass through.
set -eu

PYTHON=${PYTHON:-python3}
VENV=${RECONCILER_VENV:-/opt/reconciler}
SRC=$(cd "$(dirname "$0")" && pwd)

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (it writes $VENV, /usr/local/sbin, /etc/systemd/system)"
command -v systemctl >/dev/null || die "no systemctl: this installs a systemd service"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  die "$PYTHON is older than 3.11 (or missing)"
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null ||
  die "$PYTHON has no venv module: apt-get install python3-venv"

say "venv $VENV ($("$PYTHON" --version 2>&1))"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$VENV"
say "pip install $SRC into $VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-build-isolation --upgrade "$SRC"

ln -sf "$VENV/bin/reconcile" /usr/local/sbin/reconcile
install -D -m 0644 "$SRC/README.md" /usr/share/doc/reconciler/README.md
install -D -m 0644 "$SRC/systemd/reconciler.service" /etc/systemd/system/reconciler.service
install -D -m 0644 "$SRC/systemd/reconciler-tmpfiles.conf" /usr/lib/tmpfiles.d/reconciler.conf
systemd-tmpfiles --create reconciler.conf
systemctl daemon-reload
systemctl enable reconciler
if systemctl is-active --quiet reconciler; then
  say "restarting reconciler (new version: $(/usr/local/sbin/reconcile --version))"
  systemctl restart reconciler
else
  say "starting reconciler ($(/usr/local/sbin/reconcile --version))"
  systemctl start reconciler
fi
say "done: specs go in /etc/reconciler/specs; see \`reconcile status\`, \`journalctl -u reconciler\`"
