"""The lvmlockd adapter: argv builders, ``lvmlockctl --info`` and dm sysfs parsers. Pure.

lvmlockd's refusals reach us as what an lvm command prints, so they are classified with
every other lvm failure, by ``adapters.lvm.classify`` (this module imports lvm, never the
reverse); ``setup_hint`` and ``peer_message`` are re-exported here. Every message was
recorded in the lab (lvm2 2.03.16, sanlock; the files are in
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

from reconciler.adapters.lvm import lockd_peer_message as peer_message
from reconciler.adapters.lvm import lockd_setup_hint as setup_hint
from reconciler.runner import Command
from reconciler.state.names import lv_uuid_of_dm, split_dm_name  # noqa: F401  (their home is state.names)

__all__ = ["peer_message", "setup_hint"]  # lvm's, re-exported: what to do about lvmlockd

CHANGE_TIMEOUT = 600.0
# A first lock-start takes ~2.5 x sanlock's io_timeout (10 s by default) and up to minutes.
LOCK_START_TIMEOUT = 300.0
LOCKCTL_INFO = ("lvmlockctl", "--info")
# corosync's quorum, read-only (issue 20): DLM grants no lock on a node without quorum.
QUORUM_ARGV = ("corosync-quorumtool", "-s")


def _cmd(*argv: str, host: str, timeout: float = CHANGE_TIMEOUT) -> Command:
    return Command(argv=tuple(argv), host=host, mutates=True, timeout=timeout)


def lockctl_info(host: str = "local") -> Command:
    return Command(argv=LOCKCTL_INFO, host=host, mutates=False, timeout=30.0)


def quorum_status(host: str = "local") -> Command:
    return Command(argv=QUORUM_ARGV, host=host, mutates=False, timeout=30.0)


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




# -- corosync-quorumtool -s ----------------------------------------------------------------------

_QUORATE_RE = re.compile(r"^Quorate:\s+(Yes|No)\s*$", re.M)
_FIELD_RE = re.compile(r"^(Total votes|Expected votes|Flags):\s+(.*?)\s*$", re.M)


def parse_quorum(rc: int, stdout: str, stderr: str) -> tuple[bool | None, str]:
    """(quorate, what corosync says) from ``corosync-quorumtool -s``.

    Recorded (corosync 3.1.7, tests/fixtures/outputs/dlm/commands/quorumtool_*): rc 0 and
    ``Quorate: Yes``; rc 2 and ``Quorate: No`` (e.g. two_node's wait_for_all before both
    nodes were seen: ``Flags: 2Node WaitForAll``, ``Quorum: 1 Activity blocked``); rc 1 and
    ``Cannot initialize CMAP service`` when corosync is not running: quorate None (unknown).
    """
    m = _QUORATE_RE.search(stdout)
    if m is None:
        said = (stderr.strip() or stdout.strip() or f"exit {rc}").splitlines()[0]
        return None, f"corosync-quorumtool -s: {said} (rc {rc})"
    fields = dict(_FIELD_RE.findall(stdout))
    votes = (f"{fields['Total votes']} of {fields['Expected votes']} votes"
             if "Total votes" in fields and "Expected votes" in fields else "")
    flags = f"flags {fields['Flags']}" if fields.get("Flags") else ""
    detail = "; ".join(x for x in (votes, flags) if x)
    quorate = m.group(1) == "Yes"
    return quorate, ("quorate" if quorate else "not quorate") + (f" ({detail})" if detail else "")
