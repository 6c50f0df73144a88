"""Every place on a host that the reconciler writes, or that a tool it runs writes, in one
table. The adapters and the daemon take their paths from here, and
tests/daemon/test_systemd_unit.py checks that the unit as shipped (``ProtectSystem=strict``:
the file system read-only except ``ReadWritePaths=``) lets each be written, and that no
other absolute path in the code is written.

A tool's own writes count as much as ours: lvm cannot archive its metadata under a
read-only /etc/lvm, and the command fails. ``optional``: only a host with that subsystem has
the directory; the unit names it with systemd's ``-`` prefix (ignored when absent at start).
"""

from __future__ import annotations

from dataclasses import dataclass

# The reconciler's own.
RUN_DIR = "/run/reconciler"  # the unit's RuntimeDirectory=
STUCK_FILE = f"{RUN_DIR}/stuck-command"
DRBD_MARK_DIR = f"{RUN_DIR}/drbd"  # split-brain markers, written by DRBD's handler
STATE_DIR = "/var/lib/reconciler"  # the unit's StateDirectory=
CLONE_LEDGER = f"{STATE_DIR}/clones.json"
DRBD_LEDGER = f"{STATE_DIR}/drbd.json"
DRBD_CONF_DIR = "/etc/drbd.d"
ISCSI_DIR = "/etc/iscsi"
ISCSI_NODES_DIR = f"{ISCSI_DIR}/nodes"
# LIO's configuration directory, configfs's dbroot: rtslib-fb sets it and the kernel needs it
# to exist. Upstream rtslib-fb uses /etc/target, Debian's python3-rtslib-fb
# /etc/rtslib-fb-target. The applier makes the one its rtslib prefers when missing; it never
# saves LIO's configuration there (no save_to_file).
LIO_DBROOTS = ("/etc/target", "/etc/rtslib-fb-target")
NODE_EXPORTER_DIR = "/var/lib/prometheus/node-exporter"  # a --metrics-file there, if chosen


@dataclass(frozen=True)
class Written:
    path: str  # a directory: what is written is in it or below
    by: str
    what: str
    optional: bool = False


WRITTEN: tuple[Written, ...] = (
    Written(RUN_DIR, "reconciler", "status.json, reconciler.prom, the instance lock, the note "
            "of a command abandoned after its timeout, DRBD's split-brain markers, "
            "reconcile --once's last no-op pass (once-memo)"),
    Written(STATE_DIR, "reconciler", "the clone ledger and the DRBD ledger"),
    Written(DRBD_CONF_DIR, "reconciler (DRBD adapter)", "the rendered resource files",
            optional=True),
    Written("/var/lib/drbd", "drbdadm", "its per-minor state", optional=True),
    Written("/run/drbd", "drbdadm, drbdsetup", "lock files (/var/run/drbd/lock)"),
    Written(ISCSI_DIR, "iscsiadm; the applier's node-chap", "node records (discovery), CHAP "
            "in a node record", optional=True),
    *(Written(d, "the LIO applier (rtslib-fb)", "configfs's dbroot, made when missing",
              optional=True) for d in LIO_DBROOTS),
    Written("/etc/lvm", "lvm", "metadata archive and backup, the devices file"),
    Written("/run/lvm", "lvm, lvmpolld, lvmlockd", "locks, hints, sockets"),
    Written("/run/lock", "lvm, iscsiadm", "lock files (lvm/, iscsi/)"),
    Written("/run/mdadm", "mdadm", "the array map"),
    Written(NODE_EXPORTER_DIR, "reconciler --metrics-file", "the textfile collector's file, "
            "when pointed there", optional=True),
)
