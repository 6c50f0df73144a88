"""The lvmlockd adapter: argv builders, ``lvmlockctl --info`` and dm sysfs parsers, and the
classification of lvmlockd's messages. Pure.

Every message below was recorded in the lab (lvm2 2.03.16, sanlock; the files are in
tests/fixtures/outputs/lvmlockd/):

* "LV locked by other host: vgs/lv1" (rc 5): another node holds the LV's lock. The step
  waits for that node (``FailureKind.PEER``): it is deferred to a later pass, never retried
  in a loop and never an error -- moving an LV between nodes is exactly this wait;
* "Cannot access VG vgs due to failed lock.": this node has not started the lockspace;
* "lock start in progress": retried (``LOCKED``);
* "error -221" / "Global lock failed": sanlock lost its lease storage, or (pvcreate before
  any shared VG's lockspace is started) there is no global lock yet (an error; planning
  leaves the first PVs to ``vgcreate --shared``);
* "lvmlockd is not running", "lock manager sanlock is not running", "invalid sanlock
  host_id": the node is not set up (errors that say what to enable).

``vgchange --lock-start`` can exit 0 without starting anything (a host_id a live node
holds): only the observed lockspace proves it (the step's ``is_done``).
"""

from __future__ import annotations

import re

from reconciler import errors
from reconciler.runner import Command
from reconciler.state.names import lv_uuid_of_dm, split_dm_name  # noqa: F401  (their home is state.names)

CHANGE_TIMEOUT = 600.0
# A first lock-start takes ~2.5 x sanlock's io_timeout (10 s by default) and up to minutes.
LOCK_START_TIMEOUT = 300.0
LOCKCTL_INFO = ("lvmlockctl", "--info")


def _cmd(*argv: str, host: str, timeout: float = CHANGE_TIMEOUT) -> Command:
    return Command(argv=tuple(argv), host=host, mutates=True, timeout=timeout)


def lockctl_info(host: str = "local") -> Command:
    return Command(argv=LOCKCTL_INFO, host=host, mutates=False, timeout=30.0)


def lock_start(vg: str, *, host: str = "local") -> Command:
    return _cmd("vgchange", "--lock-start", vg, host=host, timeout=LOCK_START_TIMEOUT)


def vgcreate_shared(vg: str, devices: tuple[str, ...], lock_type: str,
                    extent_size: int | None = None, *, host: str = "local") -> Command:
    opts = ("--physicalextentsize", f"{extent_size}b") if extent_size else ()
    return _cmd("vgcreate", "--shared", "--locktype", lock_type, *opts, vg, *devices,
                host=host, timeout=LOCK_START_TIMEOUT)


def lvcreate_inactive(vg: str, lv: str, size: int, pvs: tuple[str, ...] = (), *,
                      host: str = "local") -> Command:
    """In a shared VG an LV is created inactive: lvcreate would otherwise take its exclusive
    lock on the creating node, whatever the spec's activation says."""
    return _cmd("lvcreate", "--yes", "--activate", "n", "--name", lv, "--size", f"{size}b",
                vg, *(p.replace(":", "\\:").replace("@", "\\@") for p in pvs), host=host)


ACTIVATE_FLAG = {"ex": "-aey", "sh": "-asy", "active": "-ay", "off": "-aln", "off-local": "-an"}


def lvchange_activate(vg: str, lv: str, flag: str, *, host: str = "local") -> Command:
    return _cmd("lvchange", flag, f"{vg}/{lv}", host=host)


def lvchange_refresh(vg: str, lv: str, *, host: str = "local") -> Command:
    return _cmd("lvchange", "--refresh", f"{vg}/{lv}", host=host)


def dmsetup_remove(name: str, *, host: str = "local") -> Command:
    return _cmd("dmsetup", "remove", name, host=host)


# -- lvmlockctl --info -------------------------------------------------------------------------

_LS_RE = re.compile(r"^LS (\S+) lvm_(\S+)$")
_LK_LV_RE = re.compile(r"^LK LV (ex|sh) (\S+)$")


def parse_info(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(VG -> lock manager of each started lockspace, LV uuid -> "ex"|"sh" held here).

    Recorded form: ``VG vgs lock_type=sanlock <uuid>`` / ``LS sanlock lvm_vgs`` /
    ``LK VG un ver 7`` / ``LK LV sh QgJkT7-...``. ``un`` (unlocked) lines are not locks.
    """
    spaces: dict[str, str] = {}
    locks: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if m := _LS_RE.match(line):
            spaces[m.group(2)] = m.group(1)
        elif m := _LK_LV_RE.match(line):
            locks[m.group(2)] = m.group(1)
    return spaces, locks


# -- errors ------------------------------------------------------------------------------------

_PEER = re.compile(r"LV locked by other host|locked by other host")
_NOT_STARTED = re.compile(r"Cannot access VG \S+ due to failed lock")
_IN_PROGRESS = re.compile(r"lock start in progress|lockspace is starting", re.IGNORECASE)
_SETUP = {
    "lvmlockd is not running": "start lvmlockd on this node (systemctl enable --now "
                               "lvmlockd; with sanlock also sanlock and wdmd)",
    "lock manager sanlock is not running": "start sanlock on this node (systemctl enable "
                                           "--now wdmd sanlock)",
    "lock manager dlm is not running": "start dlm on this node (systemctl enable --now dlm)",
    "invalid sanlock host_id": "set a host_id unique in the cluster in /etc/lvm/lvmlocal.conf "
                               "(local { host_id = N })",
}


def peer_message(stderr: str) -> str | None:
    """lvmlockd's own line when another node holds the lock, else None."""
    for line in stderr.splitlines():
        if _PEER.search(line):
            return line.strip()
    return None


def classify(stderr: str) -> errors.FailureKind | None:
    """The kind of an lvmlockd failure, or None when the message is not lvmlockd's."""
    if _PEER.search(stderr):
        return errors.FailureKind.PEER
    if _IN_PROGRESS.search(stderr):
        return errors.FailureKind.LOCKED
    if (_NOT_STARTED.search(stderr) or any(k in stderr for k in _SETUP) or "error -221" in stderr
            or "Global lock failed" in stderr):
        return errors.FailureKind.FATAL
    return None


def setup_hint(stderr: str) -> str | None:
    """What to do about a node that is not set up for lvmlockd, from lvm's message."""
    for key, hint in _SETUP.items():
        if key in stderr:
            return f"{key}: {hint}"
    if _NOT_STARTED.search(stderr):
        return "the VG's lockspace is not started on this node (vgchange --lock-start)"
    if "error -221" in stderr:
        return "sanlock cannot reach its leases (error -221): check this node's path to the shared disk"
    return None
