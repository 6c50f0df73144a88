"""The iSCSI adapter: LIO targets through rtslib-fb, open-iscsi sessions through iscsiadm.

Observation starts no process. LIO's state is configfs (``/sys/kernel/config/target``:
backstores under ``core/``, targets under ``iscsi/<iqn>/tpgt_N/`` with ``np/`` portals,
``lun/lun_N`` linked to a backstore, ``acls/<initiator>/`` with ``auth/``, mapped ``lun_N``
and an ``info`` file saying whether that initiator has a session). open-iscsi's sessions are
sysfs (``/sys/class/iscsi_session/sessionN`` with ``targetname`` and ``state``, the
connection's ``persistent_address``/``persistent_port``, and the session's disks below its
device: ``device/targetH:C:T/H:C:T:L/block/sdX``). The parsers take a ``read`` callable (the
runner's), so the same code reads a guest, a recording or the simulator.

Changing a target needs rtslib-fb, LIO's own library, which writes configfs itself. That
write is I/O outside the runner, and the rule is that everything touching the host goes
through it. So rtslib runs in a small **applier process**: ``python3 -m
reconciler.adapters.iscsi lio-apply '<json>'``, one ``Command`` like any other. Why a
process and not a Runner method: the runner stays the one boundary (its timeout, process
group kill, LC_ALL and recording apply unchanged; a dry run and the simulator see an argv,
and the simulator models it like any tool); rtslib's own side effects (it shells out to
``modprobe``; it writes ``/etc/target`` as configfs's dbroot) stay out of the reconciler's
process; and the CHAP secret is read from its root-only file by the applier at apply time,
so it is never in an argv, a plan, a log or a recording. It costs one Python start-up per
change (about 0.3 s warm, 1.4 s cold in a TCG guest), only when something is to change.

The same applier writes CHAP into open-iscsi's node record (``node-chap``): iscsiadm only
takes a secret as an argument (``-o update -v SECRET``), which every local user can read in
``/proc/PID/cmdline``; the record is open-iscsi's own root-only file, read at login.
``node-update`` writes CHAP and the link-cut timeouts into the record of a session logged
in, and the replacement timeout into the live session (sysfs ``recovery_tmo``).

Secrets are observed, never kept: the files that hold one (LIO's ``auth/password``, a node
record, a spec's CHAP file) are read through a separate ``private`` reader, and reduced at
once to a ``fingerprint`` (an HMAC keyed with a random key of this process, so it can only
be compared within it, never reversed nor matched against a guess elsewhere). A capture
passes no private reader: what it saves holds no secret, and CHAP is then not compared.

Formats are those of Linux 6.1, rtslib-fb 2.2 and open-iscsi 2.1.8, recorded in
tests/fixtures/outputs/iscsi/.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sys
from collections.abc import Callable, Iterable

from reconciler import errors, paths
from reconciler.runner import Command, CommandResult
from reconciler.state.iscsi import (IscsiDisk, IscsiPartition, IscsiSession, IscsiState,
                                    LioAcl, LioLun, LioTarget, NodeRecord)

CONFIGFS = "/sys/kernel/config/target"
SESSIONS = "/sys/class/iscsi_session"
CONNECTIONS = "/sys/class/iscsi_connection"
INITIATOR_FILE = "/etc/iscsi/initiatorname.iscsi"
NODES_DIR = paths.ISCSI_NODES_DIR
LIO_MODULES = ("configfs", "target_core_mod", "target_core_iblock", "iscsi_target_mod")
INITIATOR_MODULES = ("iscsi_tcp", "sd_mod")
APPLY_TIMEOUT = 120.0
LOGIN_TIMEOUT = 60.0

Read = Callable[[str], str | None]

# Link-cut timeouts: short name (the spec's) -> (node record key, sysfs file under the
# session's or the connection's directory). open-iscsi hands noop_out_timeout to the kernel
# as the connection's ping_tmo and noop_out_interval as its recv_tmo.
TIMEOUTS = {
    "replacement_timeout": ("node.session.timeo.replacement_timeout", "session", "recovery_tmo"),
    "noop_out_interval": ("node.conn[0].timeo.noop_out_interval", "connection", "recv_tmo"),
    "noop_out_timeout": ("node.conn[0].timeo.noop_out_timeout", "connection", "ping_tmo"),
}
_RECORD_CHAP = ("node.session.auth.username", "node.session.auth.password")
_KEY = secrets.token_bytes(32)  # this process's fingerprint key: never written anywhere


def fingerprint(userid: str, password: str) -> str:
    """A comparable stand-in for CHAP credentials, valid within this process only."""
    if not userid and not password:
        return ""
    mac = hmac.new(_KEY, f"{userid}\0{password}".encode(), hashlib.sha256)
    return mac.hexdigest()[:24]


def _lines(text: str | None) -> list[str]:
    return [x for x in (text or "").splitlines() if x]


def _one(read: Read, path: str) -> str:
    return (read(path) or "").strip()


# -- observation: configfs ---------------------------------------------------------------------


def observe_targets(read: Read, private: Read | None = None
                    ) -> tuple[dict[str, LioTarget] | None, dict[str, str]]:
    """The iSCSI targets and the backstores (``hba/name`` -> udev_path) configfs shows.

    ``None`` for targets when LIO's iscsi fabric is not loaded (nothing can be exported)."""
    backstores: dict[str, str] = {}
    for hba in _lines(read(f"{CONFIGFS}/core/")):
        if not re.match(r"^(iblock|fileio|rd_mcp|pscsi|user)_[0-9]+$", hba):
            continue
        for so in _lines(read(f"{CONFIGFS}/core/{hba}/")):
            if so in ("hba_info", "hba_mode"):
                continue
            backstores[f"{hba}/{so}"] = _one(read, f"{CONFIGFS}/core/{hba}/{so}/udev_path")
    top = read(f"{CONFIGFS}/iscsi/")
    if top is None:
        return None, backstores
    targets = {}
    for iqn in _lines(top):
        if not re.match(r"^(iqn|eui|naa)\.", iqn):
            continue
        targets[iqn] = _target(read, iqn, backstores, private)
    return targets, backstores


def _target(read: Read, iqn: str, backstores: dict[str, str],
            private: Read | None = None) -> LioTarget:
    base = f"{CONFIGFS}/iscsi/{iqn}"
    tpgs = sorted(int(t[5:]) for t in _lines(read(f"{base}/")) if re.match(r"^tpgt_[0-9]+$", t))
    if not tpgs:
        return LioTarget(iqn=iqn, tpg=0)
    tag = tpgs[0]
    tpg = f"{base}/tpgt_{tag}"
    luns: dict[int, LioLun] = {}
    for name in _lines(read(f"{tpg}/lun/")):
        if not re.match(r"^lun_[0-9]+$", name):
            continue
        idx = int(name[4:])
        link = [e for e in _lines(read(f"{tpg}/lun/{name}/"))
                if e != "statistics" and not e.startswith("alua_")]
        device = _one(read, f"{tpg}/lun/{name}/{link[0]}/udev_path") if link else ""
        so = next((k for k, v in backstores.items() if v == device and device), "")
        luns[idx] = LioLun(index=idx, device=device, backstore=so)
    acls: dict[str, LioAcl] = {}
    for initiator in _lines(read(f"{tpg}/acls/")):
        a = f"{tpg}/acls/{initiator}"
        mapped = tuple(sorted(int(e[4:]) for e in _lines(read(f"{a}/"))
                              if re.match(r"^lun_[0-9]+$", e)))
        info = read(f"{a}/info") or ""
        userid = _one(read, f"{a}/auth/userid")
        password = private(f"{a}/auth/password") if private is not None else None
        chap = fingerprint(userid, password.strip()) if password is not None else None
        acls[initiator] = LioAcl(initiator=initiator, mapped_luns=mapped, chap_userid=userid,
                                 session=parse_acl_session(info), chap=chap)
    return LioTarget(
        iqn=iqn, tpg=tag, enabled=_one(read, f"{tpg}/enable") == "1",
        authentication=_one(read, f"{tpg}/attrib/authentication") == "1",
        generate_node_acls=_one(read, f"{tpg}/attrib/generate_node_acls") == "1",
        portals=tuple(sorted(p for p in _lines(read(f"{tpg}/np/")) if ":" in p)),
        luns=dict(sorted(luns.items())), acls=dict(sorted(acls.items())))


def parse_acl_session(info: str) -> bool:
    """``acls/<initiator>/info``: "No active iSCSI Session for Initiator Endpoint: …" when
    none, else the session's description ("InitiatorName: …", "Session State: …")."""
    return bool(info.strip()) and not info.startswith("No active iSCSI Session")


# -- observation: sysfs ------------------------------------------------------------------------


def parse_mounts(text: str | None) -> dict[tuple[int, int], tuple[str, ...]]:
    """/proc/self/mountinfo: device number -> mount points (field 5, octal escapes kept)."""
    out: dict[tuple[int, int], list[str]] = {}
    for line in _lines(text):
        f = line.split()
        if len(f) > 4 and ":" in f[2]:
            major, minor = f[2].split(":", 1)
            out.setdefault((int(major), int(minor)), []).append(f[4])
    return {k: tuple(v) for k, v in out.items()}


def _number(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def parse_node_record(text: str | None) -> NodeRecord | None:
    """open-iscsi's node record (``key = value`` lines): CHAP as a fingerprint, the
    timeouts; None for no record (absent, or empty as a power cut leaves it)."""
    values: dict[str, str] = {}
    for line in _lines(text):
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    if "node.name" not in values:
        return None
    chap = ""
    if values.get("node.session.auth.authmethod", "None") == "CHAP":
        chap = fingerprint(*(values.get(k, "") for k in _RECORD_CHAP))
    timeouts = {short: n for short, (key, _, _) in TIMEOUTS.items()
                if (n := _number(values.get(key, ""))) is not None}
    return NodeRecord(chap=chap, timeouts=timeouts)


def record_paths(read: Read, portal: str, target: str) -> list[str]:
    """The node record file(s) of ``target`` at ``portal``: ``<nodes>/<iqn>/<ip>,<port>,<tpgt>``,
    a directory holding ``default`` (or, in old layouts, the file itself)."""
    ip, port = portal.rsplit(":", 1)
    out = []
    for e in _lines(read(f"{NODES_DIR}/{target}/")):
        if e.startswith(f"{ip},{port},"):
            base = f"{NODES_DIR}/{target}/{e}"
            out.append(f"{base}/default" if read(f"{base}/") is not None else base)
    return out


def observe_sessions(read: Read, private: Read | None = None) -> tuple[IscsiSession, ...]:
    out = []
    mounts: dict[tuple[int, int], tuple[str, ...]] | None = None
    for sid in _lines(read(f"{SESSIONS}/")):
        if not re.match(r"^session[0-9]+$", sid):
            continue
        base = f"{SESSIONS}/{sid}"
        conn = f"{CONNECTIONS}/connection{sid[7:]}:0"
        addr = _one(read, f"{conn}/persistent_address") or _one(read, f"{conn}/address")
        port = _one(read, f"{conn}/persistent_port") or _one(read, f"{conn}/port")
        disks = []
        dev = f"{base}/device"
        for tgt in _lines(read(f"{dev}/")):
            if not tgt.startswith("target"):
                continue
            for hctl in _lines(read(f"{dev}/{tgt}/")):
                if not re.match(r"^[0-9]+:[0-9]+:[0-9]+:[0-9]+$", hctl):
                    continue
                for blk in _lines(read(f"{dev}/{tgt}/{hctl}/block/")):
                    devno = _devno(_one(read, f"/sys/block/{blk}/dev"))
                    holders = tuple(_lines(read(f"/sys/block/{blk}/holders/")))
                    if mounts is None:
                        mounts = parse_mounts(read("/proc/self/mountinfo"))
                    disks.append(IscsiDisk(
                        lun=int(hctl.rsplit(":", 1)[1]), name=blk, devno=devno,
                        holders=holders, mounts=mounts.get(devno, ()) if devno else (),
                        partitions=_partitions(read, blk, mounts)))
        timeouts = {}
        for short, (_, where, name) in TIMEOUTS.items():
            n = _number(_one(read, f"{base if where == 'session' else conn}/{name}"))
            if n is not None:
                timeouts[short] = n
        target = _one(read, f"{base}/targetname")
        record = None
        live = None
        if private is not None:  # /etc/iscsi/nodes is root's alone: the listing too
            for path in record_paths(private, f"{addr}:{port}", target):
                record = parse_node_record(private(path)) or record
            live = session_chap(private, base)
        out.append(IscsiSession(sid=sid, target=target,
                                portal=f"{addr}:{port}", state=_one(read, f"{base}/state"),
                                disks=tuple(sorted(disks, key=lambda d: d.lun)),
                                timeouts=timeouts, record=record, chap=live))
    return tuple(sorted(out, key=lambda s: int(s.sid[7:])))


def _devno(raw: str) -> tuple[int, int] | None:
    """"8:17" -> (8, 17); None for anything else."""
    major, sep, minor = raw.partition(":")
    return (int(major), int(minor)) if sep and major.isdigit() and minor.isdigit() else None


def _partitions(read: Read, blk: str,
                mounts: dict[tuple[int, int], tuple[str, ...]]) -> tuple[IscsiPartition, ...]:
    """The partitions of session disk ``blk``: the subdirectories of /sys/block/<blk>/
    named after it (sda1, nvme0n1p1) that have a ``dev``, with their holders (an LV of a PV
    on the partition, md) and mounts. What uses a partition uses the disk: the logout takes
    both away."""
    out = []
    for e in _lines(read(f"/sys/block/{blk}/")):
        if not e.startswith(blk) or e == blk:
            continue
        devno = _devno(_one(read, f"/sys/block/{blk}/{e}/dev"))
        if devno is None:
            continue
        out.append(IscsiPartition(name=e, devno=devno,
                                  holders=tuple(_lines(read(f"/sys/block/{blk}/{e}/holders/"))),
                                  mounts=mounts.get(devno, ())))
    return tuple(sorted(out, key=lambda p: p.name))


def session_chap(private: Read, base: str) -> str | None:
    """The fingerprint of the CHAP credentials a live session logged in with: the kernel's
    copy in sysfs (``username``, ``password``), which open-iscsi's iscsid also holds and
    re-logs in with after a link cut. "" for none ("(null)": libiscsi prints a NULL name so;
    no CHAP). None when unreadable: the files are mode 0444 but the kernel answers them
    only to CAP_SYS_ADMIN (``show_session_param_*`` in scsi_transport_iscsi.c returns
    EACCES), so a reader without it knows nothing, never "no CHAP"."""
    values = []
    for name in ("username", "password"):
        text = private(f"{base}/{name}")
        if text is None:
            return None
        value = text.strip()
        values.append("" if value == "(null)" else value)
    return fingerprint(*values)


def parse_initiator_name(text: str | None) -> str:
    for line in _lines(text):
        if line.startswith("InitiatorName="):
            return line.split("=", 1)[1].strip()
    return ""


def chap_file_fingerprint(private: Read, path: str) -> str:
    """The fingerprint of a CHAP file's credentials; "" when it cannot be read or parsed
    (the applier, which checks its owner and mode too, then says why)."""
    text = private(path)
    if text is None:
        return ""
    try:
        return fingerprint(*parse_chap(path, text))
    except ApplyError:
        return ""


def observe(read: Read, *, targets: bool, sessions: bool, private: Read | None = None,
            chap_files: Iterable[str] = ()) -> IscsiState:
    """``private``: the reader of files that hold a secret (reduced to fingerprints here);
    None reads none of them (CHAP is then not compared). ``chap_files``: the spec's."""
    t, b = observe_targets(read, private) if targets else (None, {})
    return IscsiState(targets=t, backstores=b,
                      sessions=observe_sessions(read, private) if sessions else (),
                      initiator_name=parse_initiator_name(read(INITIATOR_FILE)) if sessions else "",
                      chap_files={p: chap_file_fingerprint(private, p) for p in chap_files}
                      if private is not None else {})


# -- commands ----------------------------------------------------------------------------------


def _cmd(*argv: str, host: str, timeout: float = APPLY_TIMEOUT) -> Command:
    return Command(argv=tuple(argv), host=host, mutates=True, timeout=timeout)


def modprobe(modules: tuple[str, ...], *, host: str = "local") -> Command:
    return _cmd("modprobe", "-a", *modules, host=host)


def lio_apply(desired: dict, *, host: str = "local") -> Command:
    """The applier process building (or removing) one target as ``desired`` says; see
    ``apply_target`` for the keys."""
    return _cmd(sys.executable, "-m", "reconciler.adapters.iscsi", "lio-apply",
                json.dumps(desired, sort_keys=True, separators=(",", ":")), host=host)


def _portal_arg(portal: str) -> str:
    return portal  # iscsiadm takes "ip:port"


def discover(portal: str, *, host: str = "local") -> Command:
    return _cmd("iscsiadm", "-m", "discovery", "-t", "sendtargets", "-p", _portal_arg(portal),
                host=host, timeout=LOGIN_TIMEOUT)


def node_chap(portal: str, target: str, chap_file: str, *, host: str = "local") -> Command:
    return _cmd(sys.executable, "-m", "reconciler.adapters.iscsi", "node-chap", portal, target,
                chap_file, host=host)


def node_update(portal: str, target: str, settings: dict, *, host: str = "local") -> Command:
    """The applier writing ``settings`` (``chap_file``: CHAP from that file; ``timeouts``:
    short name -> seconds) into the node record of ``target`` at ``portal``, and the
    replacement timeout into its live session, if one is logged in."""
    return _cmd(sys.executable, "-m", "reconciler.adapters.iscsi", "node-update", portal, target,
                json.dumps(settings, sort_keys=True, separators=(",", ":")), host=host)


def node_clean(portal: str, target: str, *, host: str = "local") -> Command:
    """Remove a node record of ``target`` at ``portal`` that holds no record (``node-clean``:
    see ``node_record_clean``), so that discovery writes it anew."""
    return _cmd(sys.executable, "-m", "reconciler.adapters.iscsi", "node-clean", portal, target,
                host=host)


def login(portal: str, target: str, *, host: str = "local") -> Command:
    return _cmd("iscsiadm", "-m", "node", "-T", target, "-p", _portal_arg(portal), "--login",
                host=host, timeout=LOGIN_TIMEOUT)


def logout(portal: str, target: str, *, host: str = "local") -> Command:
    return _cmd("iscsiadm", "-m", "node", "-T", target, "-p", _portal_arg(portal), "--logout",
                host=host, timeout=LOGIN_TIMEOUT)


def forget_node(portal: str, target: str, *, host: str = "local") -> Command:
    """Delete the node record (it holds the CHAP secret; nothing should log in from it)."""
    return _cmd("iscsiadm", "-m", "node", "-T", target, "-p", _portal_arg(portal), "-o",
                "delete", host=host)


# -- errors ------------------------------------------------------------------------------------

# open-iscsi's exit codes (iscsi_err.h) and their messages, as recorded.
_ERRORS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"authorization failure|\(24 - "),
     "the target refused the login (authorization failure, iscsiadm exit 24): a wrong CHAP "
     "secret, or an ACL on the target that does not admit this initiator's name ({initiator})"),
    (re.compile(r"No records found|target not found|\(3 - |non-existent|does not exist"),
     "no such target at that portal: {target} is not offered by {portal} (discovery does not "
     "list it)"),
    (re.compile(r"cannot make connection|No route to host|Connection refused|Connection timed "
                r"out|\(8 - |\(4 - |connection.*timed out", re.IGNORECASE),
     "the portal {portal} is unreachable (no connection could be made)"),
    (re.compile(r"CHAP file"), "{stderr}"),
)
_CODES = {24: 0, 21: 1, 3: 1, 4: 2, 8: 2, 11: 2}


def _which(result: CommandResult) -> int | None:
    """The index in ``_ERRORS`` of what went wrong (message first, then exit code)."""
    text = result.stderr + result.stdout
    for i, (pattern, _why) in enumerate(_ERRORS):
        if pattern.search(text):
            return i
    return _CODES.get(result.rc)


def reason(result: CommandResult, *, portal: str, target: str, initiator: str = "") -> str:
    """Why a failed iscsiadm/applier command failed, in one line."""
    idx = _which(result)
    why = _ERRORS[idx][1] if idx is not None else "iscsiadm failed (exit {rc})"
    return why.format(
        portal=portal, target=target, initiator=initiator or "unknown", rc=result.rc,
        stderr=result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "")


def explain(result: CommandResult, *, session: str, portal: str, target: str,
            initiator: str = "") -> str:
    """A one-line reason for a failed iscsiadm/applier command, naming the session."""
    return f"iscsi session {session}: " + reason(result, portal=portal, target=target,
                                                 initiator=initiator)


# What iscsid answers ``iscsiadm -m node -u`` when it will not log a session out
# (open-iscsi's session_logout_task; include/iscsi_err.h): a refusal, with its reason, that
# repeating the logout does not change while the session stays as it is.
_RESYNCED_CURE = ("A session failed by a CHAP rotation never logs in again by itself: put "
                  "the previous secret back on the target, while no other initiator of it is "
                  "logged in with the new one (the session then logs in, and its rotation is "
                  "finished as a logged-in one's); nothing was done to it")
_LOGOUT_REFUSED = {
    32: ("iscsid refuses to log this session out: it is trying to reconnect it and has "
         "re-synced it (iscsid was restarted while the session was down), which it does "
         "not log out until the session has logged in again (iscsiadm exit 32, target "
         "likely not connected). " + _RESYNCED_CURE),
    9: ("iscsid refuses to log this session out in its present state (iscsiadm exit 9, "
        "invalid state for logout): a first login still in progress, or a session iscsid "
        "re-synced after a restart while it was down, which it does not log out until it "
        "has logged in again. " + _RESYNCED_CURE),
    28: ("iscsid refuses to log this session out: iscsid.safe_logout = Yes and it found a "
         "mount or swap on its disks, their partitions or holders (iscsiadm exit 28, device "
         "or resource in use); take them out of use here; nothing was done to it"),
}


def logout_refused(result: CommandResult) -> str:
    """Why iscsid refused a logout (exit 32, 9, 28: ``_LOGOUT_REFUSED``), or ""."""
    if result.timed_out:
        return ""
    for rc, why in _LOGOUT_REFUSED.items():
        if result.rc == rc or f"({rc} - " in result.stderr:
            return why
    return ""


def explain_logout(result: CommandResult, *, session: str, portal: str, target: str) -> str:
    """A one-line reason for a failed logout: iscsid's refusal when it refused."""
    refused = logout_refused(result)
    if refused:
        return f"iscsi session {session}: {refused}"
    return explain(result, session=session, portal=portal, target=target)


def not_offered(result: CommandResult) -> bool:
    """The target is not offered at the portal, or nothing answers there: what a login
    sees before the exporting node has exported (not a refusal: CHAP, ACL)."""
    return _which(result) in (1, 2)


def classify(result: CommandResult) -> errors.FailureKind:
    if result.timed_out:
        return errors.FailureKind.TIMEOUT
    if result.rc == 127:
        return errors.FailureKind.MISSING_TOOL
    if result.rc == 15 or "already present" in result.stderr:
        return errors.FailureKind.BUSY
    return errors.FailureKind.FATAL


def failure(result: CommandResult, reason: str = "") -> errors.CommandFailed:
    stderr = result.stderr + (f"\n{reason}" if reason else "")
    return errors.CommandFailed(result.command.host, result.command.argv, result.rc, stderr,
                                classify(result))


# -- the applier (runs as its own process; the only importer of rtslib_fb) ---------------------

RTSLIB_MISSING = ("rtslib-fb (LIO's library, which the reconciler's applier changes targets "
                  "with) is not installed for {python}: install the iscsi extra into the "
                  "reconciler's environment (pip install 'reconciler[iscsi]'), or Debian's "
                  "python3-rtslib-fb (apt install python3-rtslib-fb; a venv sees it only "
                  "when made with --system-site-packages)")


def applier_problem(python: str = sys.executable) -> str:
    """Why the applier (``python -m reconciler.adapters.iscsi``, this interpreter) cannot
    change LIO targets here, with what to install; empty when it can. Looks rtslib-fb up
    without importing it (it is imported in the applier process only)."""
    import importlib.util

    try:
        found = importlib.util.find_spec("rtslib_fb") is not None
    except (ImportError, ValueError):
        found = False
    return "" if found else RTSLIB_MISSING.format(python=python)



class ApplyError(Exception):
    pass


def read_chap(path: str) -> tuple[str, str]:
    """(userid, password) from a root-only file: mode 0600 or 0400, owned by root, a regular
    file; lines ``userid = …`` and ``password = …`` (``#`` comments). The secret is never put
    in a message."""
    import os
    import stat

    try:
        st = os.lstat(path)
    except OSError as e:
        raise ApplyError(f"CHAP file {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ApplyError(f"CHAP file {path}: not a regular file")
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != 0 or mode not in (0o600, 0o400):
        raise ApplyError(f"CHAP file {path}: mode {mode:04o}, owner uid {st.st_uid}; it must be "
                         f"mode 0600 or 0400 and owned by root (it holds a secret)")
    with open(path, encoding="utf-8") as f:
        return parse_chap(path, f.read())


def parse_chap(path: str, text: str) -> tuple[str, str]:
    values: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or key not in ("userid", "password"):
            raise ApplyError(f"CHAP file {path}, line {n}: expected 'userid = …' or "
                             f"'password = …'")
        values[key] = value.strip()
    if not values.get("userid") or not values.get("password"):
        raise ApplyError(f"CHAP file {path}: needs both a userid and a password line")
    if not 12 <= len(values["password"]) <= 16:
        # RFC 3720 asks for at least 96 bits; open-iscsi and LIO cap it at 16 characters
        raise ApplyError(f"CHAP file {path}: the password must be 12 to 16 characters")
    return values["userid"], values["password"]


def apply_target(desired: dict) -> str:
    """Make one LIO target as ``desired`` says, through rtslib-fb. Keys: ``iqn``, ``name``
    (the spec's, prefixing the backstores made here), ``portals``, ``luns`` ({"N": device}),
    ``remove_luns`` ([N]), ``acls`` (initiator names), ``chap_file`` (or null), ``delete``.

    Only what ``desired`` names is touched: other ACLs, LUNs and backstores stay."""
    import os

    try:
        import rtslib_fb  # the only import of rtslib in the project (import contract)
    except ImportError:
        raise ApplyError(RTSLIB_MISSING.format(python=sys.executable)) from None

    chap = read_chap(desired["chap_file"]) if desired.get("chap_file") else None
    _mount_configfs()
    # rtslib sets configfs's dbroot to its preferred directory, which must exist
    # (Debian's python3-rtslib-fb prefers /etc/rtslib-fb-target, upstream /etc/target)
    os.makedirs(getattr(rtslib_fb.RTSRoot, "_preferred_dbroot", paths.LIO_DBROOTS[0]),
                exist_ok=True)
    root = rtslib_fb.RTSRoot()
    fabric = rtslib_fb.FabricModule("iscsi")
    prefix = f"{desired['name']}_lun"
    # this target's own storage objects: "{name}_lunN" exactly (another target's name may
    # start with this one's: "t1" and "t1_lunA", whose objects are "t1_lunA_lunN")
    own = re.compile(re.escape(prefix) + "[0-9]+")
    if desired.get("delete"):
        for t in root.targets:
            if t.wwn == desired["iqn"]:
                t.delete()
        for so in root.storage_objects:
            if own.fullmatch(so.name) and not list(so.attached_luns):
                so.delete()
        return "deleted"
    target = rtslib_fb.Target(fabric, desired["iqn"], "any")
    tpg = rtslib_fb.TPG(target, 1, "any")
    have_np = {f"{np.ip_address}:{np.port}" for np in tpg.network_portals}
    for portal in desired["portals"]:
        if portal not in have_np:
            ip, port = portal.rsplit(":", 1)
            rtslib_fb.NetworkPortal(tpg, ip, int(port), "create")
    luns = {lun.lun: lun for lun in tpg.luns}
    for n in desired.get("remove_luns", ()):
        lun = luns.pop(int(n), None)
        if lun is not None:
            so = lun.storage_object
            lun.delete()
            if own.fullmatch(so.name) and not list(so.attached_luns):
                so.delete()
    for key, device in sorted(desired["luns"].items(), key=lambda kv: int(kv[0])):
        n = int(key)
        if n in luns:
            if luns[n].storage_object.udev_path != device:
                raise ApplyError(f"LUN {n} of {desired['iqn']} exports "
                                 f"{luns[n].storage_object.udev_path}, not {device}")
            continue
        so = next((s for s in root.storage_objects if s.name == f"{prefix}{n}"), None)
        if so is not None and so.udev_path != device:
            if list(so.attached_luns):  # exported by some LUN: never taken from it here
                raise ApplyError(f"storage object {so.name} exports {so.udev_path}, not "
                                 f"{device}, and a LUN exports it")
            # an earlier apply's, unattached, over another device or the same one spelled
            # otherwise (a by-id name for /dev/sdb): it exports nothing; exporting it would
            # hand the initiator a disk nobody asked for as this LUN, or keep a spelling the
            # spec no longer has: made again over the spec's device
            so.delete()
            so = None
        if so is None:
            so = rtslib_fb.BlockStorageObject(f"{prefix}{n}", dev=device)
        luns[n] = rtslib_fb.LUN(tpg, n, so)
    acls = {a.node_wwn: a for a in tpg.node_acls}
    for initiator in desired["acls"]:
        acl = acls.get(initiator) or rtslib_fb.NodeACL(tpg, initiator, "create")
        if chap is not None:
            acl.chap_userid, acl.chap_password = chap
        mapped = {m.mapped_lun for m in acl.mapped_luns}
        for n, lun in sorted(luns.items()):
            if n not in mapped:
                rtslib_fb.MappedLUN(acl, n, lun)
    tpg.set_attribute("authentication", "1" if chap is not None else "0")
    tpg.set_attribute("generate_node_acls", "0")
    tpg.enable = True
    return "ok"


def _mount_configfs() -> None:
    """Mount configfs when nothing did (systemd's sys-kernel-config.mount usually has):
    rtslib-fb 2.2's own fallback passes the literal "{config_dir}" to mount and fails."""
    import ctypes
    import os

    if os.path.ismount("/sys/kernel/config"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(b"configfs", b"/sys/kernel/config", b"configfs", 0, None) != 0:
        err = ctypes.get_errno()
        raise ApplyError(f"cannot mount configfs on /sys/kernel/config: {os.strerror(err)}")


def node_record_chap(portal: str, target: str, chap_file: str, nodes_dir: str = NODES_DIR) -> str:
    """Put CHAP credentials into open-iscsi's node record(s) for ``target`` at ``portal``
    (``<nodes_dir>/<target>/<ip>,<port>,<tpgt>/default``, made by discovery)."""
    user, secret = read_chap(chap_file)
    for path in _record_files(portal, target, nodes_dir):
        _rewrite_record(path, {"node.session.auth.authmethod": "CHAP",
                               "node.session.auth.username": user,
                               "node.session.auth.password": secret})
    return "ok"


def _record_files(portal: str, target: str, nodes_dir: str) -> list[str]:
    import os

    ip, port = portal.rsplit(":", 1)
    tdir = os.path.join(nodes_dir, target)
    try:
        entries = [e for e in os.listdir(tdir) if e.startswith(f"{ip},{port},")]
    except OSError:
        entries = []
    if not entries:
        raise ApplyError(f"no node record for {target} at {portal}: No records found "
                         f"(discovery does not list that target)")
    out = []
    for e in entries:
        path = os.path.join(tdir, e)
        out.append(os.path.join(path, "default") if os.path.isdir(path) else path)
    return out


def _rewrite_record(path: str, values: dict[str, str]) -> None:
    """Set ``values`` (key -> value) in a node record, other lines kept; the file is
    replaced whole, root-only (it may hold a secret)."""
    import os

    with open(path, encoding="utf-8") as f:
        lines = [x for x in f.read().splitlines()
                 if x.partition("=")[0].strip() not in values]
    lines += [f"{k} = {v}" for k, v in values.items()]
    tmp = path + ".reconciler"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def node_record_update(portal: str, target: str, settings: dict, nodes_dir: str = NODES_DIR,
                       sysfs: str = "/sys/class") -> str:
    """Write ``settings`` into the node record(s) of ``target`` at ``portal`` (CHAP from
    ``chap_file``; ``timeouts``), and ``replacement_timeout`` into the live session's
    ``recovery_tmo`` (the kernel applies it at once). The noop timeouts of a live
    connection are the kernel's until the next login (sysfs shows them read-only)."""
    import os

    values: dict[str, str] = {}
    if settings.get("chap_file"):
        user, secret = read_chap(settings["chap_file"])
        values.update({"node.session.auth.authmethod": "CHAP", _RECORD_CHAP[0]: user,
                       _RECORD_CHAP[1]: secret})
    timeouts = settings.get("timeouts") or {}
    for short, seconds in timeouts.items():
        if short not in TIMEOUTS:
            raise ApplyError(f"unknown timeout {short!r}")
        values[TIMEOUTS[short][0]] = str(int(seconds))
    for path in _record_files(portal, target, nodes_dir):
        _rewrite_record(path, values)
    if "replacement_timeout" in timeouts:
        ip, port = portal.rsplit(":", 1)
        base = os.path.join(sysfs, "iscsi_session")
        for sid in sorted(os.listdir(base)) if os.path.isdir(base) else []:
            conn = os.path.join(sysfs, "iscsi_connection", f"connection{sid[7:]}:0")

            def one(p: str) -> str:
                try:
                    with open(p, encoding="utf-8") as f:
                        return f.read().strip()
                except OSError:
                    return ""
            if (one(os.path.join(base, sid, "targetname")) == target
                    and one(os.path.join(conn, "persistent_address")) == ip
                    and one(os.path.join(conn, "persistent_port")) == port):
                with open(os.path.join(base, sid, "recovery_tmo"), "w", encoding="utf-8") as f:
                    f.write(f"{int(timeouts['replacement_timeout'])}\n")
    return "ok"


def node_record_clean(portal: str, target: str, nodes_dir: str = NODES_DIR) -> str:
    """Remove the node record(s) of ``target`` at ``portal`` that hold no record: a file with
    no ``node.name`` line (lab: a reset right after a login left it 0 bytes, as a power cut
    does; discovery then keeps it as it is and every login says "No records found"). A
    record with content is never touched. Prints what it removed, or "ok"."""
    import os

    ip, port = portal.rsplit(":", 1)
    tdir = os.path.join(nodes_dir, target)
    try:
        entries = [e for e in os.listdir(tdir) if e.startswith(f"{ip},{port},")]
    except OSError:
        return "ok"
    removed = []
    for e in entries:
        path = os.path.join(tdir, e)
        record = os.path.join(path, "default") if os.path.isdir(path) else path
        try:
            with open(record, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        if any(line.strip().startswith("node.name") for line in text.splitlines()):
            continue
        if os.path.exists(record):
            os.remove(record)
        if os.path.isdir(path) and not os.listdir(path):
            os.rmdir(path)
        removed.append(e)
    return f"removed the empty node record(s) {', '.join(removed)}" if removed else "ok"


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["lio-apply"] and len(argv) == 2:
            print(apply_target(json.loads(argv[1])))
        elif argv[:1] == ["node-chap"] and len(argv) == 4:
            print(node_record_chap(argv[1], argv[2], argv[3]))
        elif argv[:1] == ["node-clean"] and len(argv) == 3:
            print(node_record_clean(argv[1], argv[2]))
        elif argv[:1] == ["node-update"] and len(argv) == 4:
            print(node_record_update(argv[1], argv[2], json.loads(argv[3])))
        else:
            print("usage: python3 -m reconciler.adapters.iscsi lio-apply JSON | "
                  "node-chap PORTAL TARGET CHAP_FILE | node-clean PORTAL TARGET | "
                  "node-update PORTAL TARGET JSON",
                  file=sys.stderr)
            return 2
    except ApplyError as e:
        print(f"reconciler-iscsi: {e}", file=sys.stderr)
        return 3
    except Exception as e:  # rtslib's own errors: say what, never a secret (none is in them)
        print(f"reconciler-iscsi: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
