"""Simulated iSCSI tools: ``modprobe``, the reconciler's rtslib applier process (``python3 -m
reconciler.adapters.iscsi lio-apply|node-chap``), ``iscsiadm`` (discovery, node login,
logout, delete), and the configfs / sysfs files the observer reads. Messages and exit codes
are those recorded in tests/fixtures/outputs/iscsi/; anything else raises
``UnsupportedCommand``.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from reconciler.errors import UnsupportedCommand

from . import kernel
from .iscsi_model import DEFAULT_TIMEOUTS, Acl, IscsiSide, Session, Target
from .shared import Link, copy_lvm, forget_disk
from .tool import Out, Tool

if TYPE_CHECKING:
    from .machine import Machine

CONFIGFS = "/sys/kernel/config/target"
APPLIER = "reconciler.adapters.iscsi"


def lookup(argv: tuple[str, ...]) -> Tool | None:
    """The tool for an iSCSI command, or None when it is not one (``modprobe drbd`` is
    DRBD's). None reads stdin."""
    if argv[0] == "modprobe" and argv[1:2] == ("-a",):
        return Tool(_modprobe, True)
    if argv[0] == "iscsiadm":
        return Tool(_iscsiadm, True)
    if len(argv) >= 4 and argv[1:3] == ("-m", APPLIER):
        return Tool(_applier, True)
    return None


def _side(host: Machine) -> IscsiSide:
    side = getattr(host, "iscsi", None)
    if side is None:
        raise UnsupportedCommand(f"host {host.name} is on no simulated iSCSI fabric "
                                 f"(iscsi_model.Fabric().join(host))")
    return side


def _modprobe(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    known = {"configfs", "target_core_mod", "target_core_iblock", "iscsi_target_mod",
             "iscsi_tcp", "sd_mod"}
    if argv[1:2] != ("-a",) or not set(argv[2:]) <= known:
        raise UnsupportedCommand(f"modprobe form not modelled: {' '.join(argv)}")
    side = _side(host)
    if "iscsi_target_mod" in argv:
        side.lio_loaded = True
    return Out(0)


# -- the applier -----------------------------------------------------------------------------


def _chap(host: Machine, side: IscsiSide, path: str) -> tuple[str, str] | str:
    text = host.md.files.get(path)
    if text is None:
        return f"reconciler-iscsi: CHAP file {path}: No such file or directory\n"
    mode, uid = side.file_modes.get(path, (0o600, 0))
    if uid != 0 or mode not in (0o600, 0o400):
        return (f"reconciler-iscsi: CHAP file {path}: mode {mode:04o}, owner uid {uid}; it must "
                f"be mode 0600 or 0400 and owned by root (it holds a secret)\n")
    vals = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    vals = {k.strip(): v.strip() for k, v in vals.items()}
    return vals.get("userid", ""), vals.get("password", "")


def _applier(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """The project's rtslib applier (``python3 -m reconciler.adapters.iscsi``) on this host:
    ``node-chap`` sets a node record's CHAP from a file; ``node-clean`` removes a record a
    power cut left empty (``{"broken": ...}``: iscsiadm reads it as no record, discovery
    keeps it); ``lio-apply JSON`` creates, updates
    or deletes one target with its LUNs (refusing a LUN that exports another device, a
    device that does not exist or one another holder claims, with rtslib's errors),
    portals and ACLs (CHAP from the file) in LIO, and prints "ok" (or "deleted").
    Refused (UnsupportedCommand) before LIO's module is loaded or for another form."""
    side = _side(host)
    op = argv[3]
    if op == "node-chap" and len(argv) == 7:
        portal, iqn, path = argv[4:7]
        chap = _chap(host, side, path)
        if isinstance(chap, str):
            return Out(3, stderr=[chap])
        rec = side.nodes.get((portal, iqn))
        if rec is None:
            return Out(3, stderr=[f"reconciler-iscsi: no node record for {iqn} at {portal}: No "
                                  f"records found (discovery does not list that target)\n"])
        rec["userid"], rec["password"] = chap
        return Out(0, stdout=["ok\n"])
    if op == "node-update" and len(argv) == 7:
        portal, iqn, settings = argv[4], argv[5], json.loads(argv[6])
        rec = side.nodes.get((portal, iqn))
        if rec is None or rec.get("broken"):
            return Out(3, stderr=[f"reconciler-iscsi: no node record for {iqn} at {portal}: No "
                                  f"records found (discovery does not list that target)\n"])
        if settings.get("chap_file"):
            chap = _chap(host, side, settings["chap_file"])
            if isinstance(chap, str):
                return Out(3, stderr=[chap])
            rec["userid"], rec["password"] = chap
        timeouts = settings.get("timeouts") or {}
        unknown = set(timeouts) - set(DEFAULT_TIMEOUTS)
        if unknown:
            raise UnsupportedCommand(f"node-update of timeouts not modelled: {sorted(unknown)}")
        rec.update({k: str(v) for k, v in timeouts.items()})
        live = next((x for x in side.sessions if (x.portal, x.target) == (portal, iqn)), None)
        if live is not None and "replacement_timeout" in timeouts:
            live.timeouts["replacement_timeout"] = int(timeouts["replacement_timeout"])
        return Out(0, stdout=["ok\n"])
    if op == "node-clean" and len(argv) == 6:
        key = (argv[4], argv[5])
        if side.nodes.get(key, {}).get("broken"):
            del side.nodes[key]
            return Out(0, stdout=[f"removed the empty node record(s) {argv[4].replace(':', ',')},1\n"])
        return Out(0, stdout=["ok\n"])
    if op != "lio-apply" or len(argv) != 5:
        raise UnsupportedCommand(f"applier form not modelled: {' '.join(argv)}")
    if not side.lio_loaded:
        raise UnsupportedCommand("lio-apply before modprobe of iscsi_target_mod")
    d = json.loads(argv[4])
    chap = None
    if d.get("chap_file"):
        chap = _chap(host, side, d["chap_file"])
        if isinstance(chap, str):
            return Out(3, stderr=[chap])
    prefix = f"{d['name']}_lun"
    own = re.compile(re.escape(prefix) + "[0-9]+")  # "{name}_lunN" exactly, as the applier
    if d.get("delete"):
        side.targets.pop(d["iqn"], None)
        used = {so for t in side.targets.values() for so in t.luns.values()}
        for k in [k for k in side.backstores
                  if own.fullmatch(k.split("/", 1)[1]) and k not in used]:
            del side.backstores[k]
        return Out(0, stdout=["deleted\n"])
    t = side.targets.setdefault(d["iqn"], Target(iqn=d["iqn"]))
    for p in d["portals"]:
        if p not in t.portals:
            t.portals.append(p)
    for n in d.get("remove_luns", ()):
        so = t.luns.pop(int(n), None)
        for acl in t.acls.values():
            acl.mapped.discard(int(n))
        used = {so for t in side.targets.values() for so in t.luns.values()}
        if so is not None and own.fullmatch(so.split("/", 1)[1]) and so not in used:
            side.backstores.pop(so, None)
    for key, dev in sorted(d["luns"].items(), key=lambda kv: int(kv[0])):
        n = int(key)
        if n in t.luns:
            if side.backstores[t.luns[n]] != dev:
                return Out(3, stderr=[f"reconciler-iscsi: LUN {n} of {d['iqn']} exports "
                                      f"{side.backstores[t.luns[n]]}, not {dev}\n"])
            continue
        leftover = next((so for so in side.backstores if so.split("/", 1)[1] == f"{prefix}{n}"),
                        None)
        if leftover is not None and side.backstores[leftover] != dev:
            used = {so for tg in side.targets.values() for so in tg.luns.values()}
            if leftover in used:
                return Out(3, stderr=[f"reconciler-iscsi: storage object {prefix}{n} exports "
                                      f"{side.backstores[leftover]}, not {dev}, and a LUN "
                                      f"exports it\n"])
            # the applier deletes its own unattached leftover over another device (or the
            # same spelled otherwise) and makes it again over the spec's
            side.backstores.pop(leftover)
            leftover = None
        if leftover is not None:  # the applier reuses its own storage object by name
            t.luns[n] = leftover
            continue
        if host.model.device(dev) is None and host.lv_by_path(dev) is None:
            return Out(1, stderr=[f"reconciler-iscsi: RTSLibError: Device {dev} does not "
                                  f"exist\n"])
        if host.refuses_exclusive(dev):
            # rtslib's BlockStorageObject tries an O_EXCL open of the device first and
            # deletes the storage object it could not configure; its message names no
            # device (the literal "{dev}": tests/fixtures/outputs/claim)
            return Out(1, stderr=["reconciler-iscsi: RTSLibError: Cannot configure "
                                  "StorageObject because device {dev} is already in use\n"])
        so = f"iblock_{len(side.backstores)}/{prefix}{n}"
        side.backstores[so] = dev
        t.luns[n] = so
    for initiator in d["acls"]:
        acl = t.acls.setdefault(initiator, Acl())
        if chap is not None:
            acl.userid, acl.password = chap
        acl.mapped |= set(t.luns)
    t.auth = chap is not None
    t.enabled = True
    if side.fabric is not None:
        side.fabric.retry()  # iscsid's retries of a FAILED session may now be admitted
    return Out(0, stdout=["ok\n"])


# -- iscsiadm --------------------------------------------------------------------------------


def _opt(argv: tuple[str, ...], flag: str) -> str | None:
    return argv[argv.index(flag) + 1] if flag in argv else None


def _bracket(iqn: str, portal: str) -> str:
    ip, port = portal.rsplit(":", 1)
    return f"[iface: default, target: {iqn}, portal: {ip},{port}]"


def _iscsiadm(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """open-iscsi's ``iscsiadm``: ``-m discovery -t sendtargets`` (the exporting host's
    enabled targets, or the recorded connection failure when no host answers at the
    portal), and ``-m node`` ``--login``, ``--logout`` and ``-o delete`` of a node record,
    with the recorded exit codes (21: no record or session, 15: already logged in, 8, 3,
    24: the login failed and why). A login checks the target's ACL and CHAP, and makes
    the LUNs mapped to this initiator appear here as SCSI disks (with their by-path names;
    a disk's LVM metadata is then shared with the exporting host, ``shared.Link``)."""
    side = _side(host)
    if side.fabric is not None:
        side.fabric._check()
    mode, portal, iqn = _opt(argv, "-m"), _opt(argv, "-p"), _opt(argv, "-T")
    if mode == "discovery" and _opt(argv, "-t") == "sendtargets" and portal and len(argv) == 7:
        where = side.fabric.at(portal) if side.fabric else None
        if where is None:
            ip = portal.rsplit(":", 1)[0]
            return Out(11, stderr=[f"iscsiadm: cannot make connection to {ip}: No route to "
                                   f"host\n"] * 6 + [
                "iscsiadm: connection login retries (reopen_max) 5 exceeded\n",
                "iscsiadm: Could not perform SendTargets discovery: iSCSI PDU timed out\n"])
        _, remote = where
        lines = []
        for t in sorted(remote.targets.values(), key=lambda t: t.iqn):
            if t.enabled:
                side.nodes.setdefault((portal, t.iqn), {})
                lines.append(f"{portal},1 {t.iqn}\n")
        return Out(0, stdout=lines)
    if mode != "node" or not portal or not iqn or len(argv) not in (8, 9):
        raise UnsupportedCommand(f"iscsiadm form not modelled: {' '.join(argv)}")
    op = argv[7:]
    rec = side.nodes.get((portal, iqn))
    if rec is None or rec.get("broken"):  # an empty record file reads as no record
        return Out(21, stderr=["iscsiadm: No records found\n"])
    if op == ("-o", "delete"):
        del side.nodes[(portal, iqn)]
        return Out(0)
    current = next((s for s in side.sessions if (s.portal, s.target) == (portal, iqn)), None)
    # A FAILED session (iscsid retrying its login) is logged out like any: open-iscsi's
    # session_logout_task accepts a session in reopen and shuts its connection down without
    # a logout PDU; a login finds it present (exit 15) whatever its state.
    if op == ("--logout",):
        if current is None:
            return Out(21, stderr=["iscsiadm: No matching sessions found\n"])
        if current.synced:  # iscsid re-synced it while down: refused until it logs in
            down = side.fabric is not None and portal in side.fabric.unreachable
            rc, what = (32, "target likely not connected") if down else (9, "internal error")
            return Out(rc, stderr=[
                f"iscsiadm: Could not logout of [sid: {current.sid}, target: {iqn}, portal: "
                f"{portal.replace(':', ',')}].\n",
                f"iscsiadm: initiator reported error ({rc} - {what})\n",
                "iscsiadm: Could not logout of all requested sessions\n"])
        _logout(host, side, current)
        return Out(0, stdout=[f"Logging out of session [sid: {current.sid}, target: {iqn}, "
                              f"portal: {portal.replace(':', ',')}]\n",
                              f"Logout of [sid: {current.sid}, target: {iqn}, portal: "
                              f"{portal.replace(':', ',')}] successful.\n"])
    if op != ("--login",):
        raise UnsupportedCommand(f"iscsiadm form not modelled: {' '.join(argv)}")
    if current is not None:
        return Out(15, stderr=["iscsiadm: default: 1 session requested, but 1 already present.\n",
                               "iscsiadm: Could not log into all portals\n"])
    head = [f"Logging in to {_bracket(iqn, portal)}\n"]
    where = side.fabric.at(portal) if side.fabric else None
    t = where[1].targets.get(iqn) if where else None

    def fail(rc: int, why: str) -> Out:
        return Out(rc, stdout=head, stderr=[f"iscsiadm: Could not login to {_bracket(iqn, portal)}.\n",
                                            f"iscsiadm: initiator reported error ({why})\n",
                                            "iscsiadm: Could not log into all portals\n"])
    if where is None:
        return fail(8, "8 - connection timed out")
    if t is None or not t.enabled:
        return fail(3, "3 - iSCSI login failed due to target not found")  # not recorded as such
    acl = t.acls.get(side.initiator)
    if acl is None or (t.auth and (rec.get("userid"), rec.get("password")) != (acl.userid, acl.password)):
        return fail(24, "24 - iSCSI login failed due to authorization failure")
    t.sessions.add(side.initiator)
    s = Session(sid=side.next_sid, portal=portal, target=iqn,
                timeouts={k: int(rec.get(k, v)) for k, v in DEFAULT_TIMEOUTS.items()},
                userid=rec.get("userid", ""), password=rec.get("password", ""))
    side.next_sid += 1
    remote_host, remote = where
    for n in sorted(acl.mapped):
        dev = remote.backstores[t.luns[n]]
        size = _size(remote_host, dev)
        name = _free_sd(host)
        # udev's by-path name (60-persistent-storage.rules), as recorded in commands/by_path.txt
        host.add_device(name, size, (f"/dev/disk/by-path/ip-{portal}-iscsi-{iqn}-lun-{n}",))
        s.disks[n] = name
        backing = remote_host.model.device(dev)
        disk = host.model.device(name)
        # one content on both sides: the disk reads and writes the exported device's
        host.devices.content[disk] = (
            _Through(disk, remote_host.devices.content.setdefault(backing, {}))
            if backing is not None else
            _NotShared(f"the content of {name} on {host.name}, a LUN over the LV {dev}: an "
                       f"LV's content is not shared over iSCSI by the simulator"))
        if backing is not None and side.fabric is not None:
            # a disk (not an LV: lvm does not scan LVs): its LVM metadata is shared
            link = Link(host, name, remote_host, backing.path)
            side.fabric.links.append(link)
            copy_lvm(remote_host, host, {backing.path: name})
    side.sessions.append(s)
    return Out(0, stdout=[*head, f"Login to {_bracket(iqn, portal)} successful.\n"])


class _Through(dict):
    """A session disk's content: the exported device's (``backing``, the same chunks), read
    and written through the session. A write while the disk has failed (its session FAILED:
    the I/O queued, then failed upward) never reaches the exported device; the kernel model
    does not fail a plain write to a failed device, md marks such a member faulty."""

    def __init__(self, disk: object, backing: dict[int, bytes]) -> None:
        super().__init__()
        self.disk, self.backing = disk, backing

    def __setitem__(self, chunk: int, token: bytes) -> None:
        if self.disk.failed_at is None:
            self.backing[chunk] = token

    def pop(self, chunk, default=None):
        return self.backing.pop(chunk, default) if self.disk.failed_at is None else default

    def __getitem__(self, chunk: int) -> bytes:
        return self.backing[chunk]

    def __iter__(self):
        return iter(self.backing)

    def __len__(self) -> int:
        return len(self.backing)

    def get(self, chunk, default=None):
        return self.backing.get(chunk, default)

    def keys(self):
        return self.backing.keys()

    def items(self):
        return self.backing.items()

    def values(self):
        return self.backing.values()


class _NotShared(dict):
    """The content of a session disk the simulator does not model: any use of it fails
    loudly rather than show an empty disk."""

    def __init__(self, why: str) -> None:
        super().__init__()
        self.why = why

    def _refuse(self, *args: object, **kw: object) -> None:
        raise UnsupportedCommand(self.why)

    __getitem__ = __setitem__ = __iter__ = __len__ = get = keys = items = values = _refuse


def _size(host: Machine, path: str) -> int:
    dev = host.model.device(path)
    if dev is not None:
        return dev.size
    lv = host.lv_by_path(path)
    if lv is None:
        raise UnsupportedCommand(f"exported device {path} vanished on {host.name}")
    return lv.extents * lv.vg.extent_size


def _free_sd(host: Machine) -> str:
    for c in "abcdefghijklmnopqrstuvwxyz":
        if host.model.device(f"/dev/sd{c}") is None:
            return f"/dev/sd{c}"
    raise UnsupportedCommand("more than 26 SCSI disks")


def _logout(host: Machine, side: IscsiSide, s: Session) -> None:
    side.sessions.remove(s)
    where = side.fabric.at(s.portal) if side.fabric else None
    if where is not None and s.target in where[1].targets:
        where[1].targets[s.target].sessions.discard(side.initiator)
    for name in s.disks.values():
        if side.fabric is not None:
            side.fabric.links = [k for k in side.fabric.links
                                 if not (k.initiator is host and k.disk == name)]
        dev = host.model.device(name)
        host.devices.content.pop(dev, None)  # the exported device keeps what it holds
        if host.model.pv(name) is not None and not forget_disk(host, name):
            host.fail_device(name)  # the PV stays in lvm's metadata, missing
        else:
            host.devices.remove_device(dev.path)


# -- kernel files ----------------------------------------------------------------------------


def handles(path: str) -> bool:
    return (path.startswith((CONFIGFS, "/sys/class/iscsi_", "/etc/iscsi/"))
            or bool(re.match(r"^/sys/block/sd[a-z]+/", path)))


def read(host: Machine, path: str) -> str | None:
    side = _side(host)
    files, dirs = _tree(host, side)
    if path.endswith("/"):
        entries = dirs.get(path.rstrip("/"))
        return None if entries is None else "".join(f"{e}\n" for e in sorted(entries))
    if path in files:
        return files[path]
    if path in dirs:
        return None
    parent = path.rsplit("/", 1)[0]
    if parent in dirs or path.startswith("/etc/iscsi/"):
        return None
    # a path under a directory that does not exist: absent, like the kernel says
    head = parent
    while head and head not in dirs:
        head = head.rsplit("/", 1)[0]
    if head and path[len(head) + 1:].split("/", 1)[0] not in dirs.get(head, set()):
        return None
    raise UnsupportedCommand(f"iSCSI kernel file not modelled by the simulator: {path}")


def _add(dirs: dict[str, set[str]], path: str) -> None:
    while path.count("/") > 1:
        parent, name = path.rsplit("/", 1)
        dirs.setdefault(parent, set()).add(name)
        dirs.setdefault(path, set())
        path = parent


def _tree(host: Machine, side: IscsiSide) -> tuple[dict[str, str], dict[str, set[str]]]:
    """The host's iSCSI files and directories as the kernel and open-iscsi show them: the
    initiator name, LIO's configfs tree (targets, TPGs, LUNs, portals, ACLs, backstores)
    and the sessions' sysfs; (files by path, directory listings by path)."""
    files: dict[str, str] = {}
    dirs: dict[str, set[str]] = {}

    def f(path: str, text: str) -> None:
        files[path] = text
        _add(dirs, path)

    if side.initiator:
        f("/etc/iscsi/initiatorname.iscsi", f"InitiatorName={side.initiator}\n")
    if side.lio_loaded:
        _add(dirs, f"{CONFIGFS}/core")
        _add(dirs, f"{CONFIGFS}/iscsi")
        for so, dev in side.backstores.items():
            f(f"{CONFIGFS}/core/{so}/udev_path", f"{dev}\n")
        for t in side.targets.values():
            tpg = f"{CONFIGFS}/iscsi/{t.iqn}/tpgt_1"
            f(f"{tpg}/enable", "1\n" if t.enabled else "0\n")
            f(f"{tpg}/attrib/authentication", "1\n" if t.auth else "0\n")
            f(f"{tpg}/attrib/generate_node_acls", "0\n")
            for p in t.portals:
                f(f"{tpg}/np/{p}/iser", "0\n")
            _add(dirs, f"{tpg}/lun")
            _add(dirs, f"{tpg}/acls")
            for n, so in t.luns.items():
                link = f"{tpg}/lun/lun_{n}/{abs(hash(so)) % 10**10:010x}"[:len(tpg) + 22]
                f(f"{link}/udev_path", f"{side.backstores[so]}\n")
                _add(dirs, f"{tpg}/lun/lun_{n}/statistics")
            for initiator, acl in t.acls.items():
                a = f"{tpg}/acls/{initiator}"
                f(f"{a}/auth/userid", f"{acl.userid}\n")
                f(f"{a}/auth/password", f"{acl.password}\n")
                f(f"{a}/info", (f"InitiatorName: {initiator}\nSession State: "
                                f"TARG_SESS_STATE_LOGGED_IN\n") if initiator in t.sessions else
                  f"No active iSCSI Session for Initiator Endpoint: {initiator}\n")
                for n in acl.mapped:
                    f(f"{a}/lun_{n}/write_protect", "0\n")
    for (portal, iqn), rec in side.nodes.items():
        ip, port = portal.rsplit(":", 1)
        # open-iscsi's node record (as iscsiadm writes it); an empty one as a power cut left it
        lines = [] if rec.get("broken") else [
            f"node.name = {iqn}", "node.tpgt = 1", f"node.conn[0].address = {ip}",
            f"node.conn[0].port = {port}",
            "node.session.auth.authmethod = " + ("CHAP" if rec.get("userid") else "None"),
            *([f"node.session.auth.username = {rec['userid']}",
               f"node.session.auth.password = {rec['password']}"] if rec.get("userid") else []),
            *(f"{key} = {rec.get(short, DEFAULT_TIMEOUTS[short])}" for short, key in (
                ("replacement_timeout", "node.session.timeo.replacement_timeout"),
                ("noop_out_interval", "node.conn[0].timeo.noop_out_interval"),
                ("noop_out_timeout", "node.conn[0].timeo.noop_out_timeout")))]
        f(f"/etc/iscsi/nodes/{iqn}/{ip},{port},1/default", "".join(f"{x}\n" for x in lines))
    _add(dirs, "/sys/class/iscsi_session")
    _add(dirs, "/sys/class/iscsi_connection")
    for s in side.sessions:
        base = f"/sys/class/iscsi_session/session{s.sid}"
        f(f"{base}/targetname", f"{s.target}\n")
        f(f"{base}/state", f"{s.sysfs_state(host.clock.now())}\n")
        # the credentials it logged in with (the kernel's copy; root-only: CAP_SYS_ADMIN)
        f(f"{base}/username", f"{s.userid or '(null)'}\n")
        f(f"{base}/password", f"{s.password or '(null)'}\n")
        f(f"{base}/recovery_tmo", f"{s.timeouts['replacement_timeout']}\n")
        ip, port = s.portal.rsplit(":", 1)
        conn = f"/sys/class/iscsi_connection/connection{s.sid}:0"
        f(f"{conn}/persistent_address", f"{ip}\n")
        f(f"{conn}/persistent_port", f"{port}\n")
        f(f"{conn}/recv_tmo", f"{s.timeouts['noop_out_interval']}\n")
        f(f"{conn}/ping_tmo", f"{s.timeouts['noop_out_timeout']}\n")
        hostno = s.sid + 1
        for n, name in s.disks.items():
            kname = name.rsplit("/", 1)[1]
            f(f"{base}/device/target{hostno}:0:0/{hostno}:0:0:{n}/block/{kname}/dev", "")
            dev = host.model.device(name)
            f(f"/sys/block/{kname}/dev", f"{dev.major}:{dev.minor}\n")
            holders = kernel.holders(host, dev)
            _add(dirs, f"/sys/block/{kname}/holders")
            for h in holders:
                _add(dirs, f"/sys/block/{kname}/holders/{h}")
            # its partitions: /sys/block/sdX/sdX1/{dev,holders/}, as the kernel lists them
            for part in host.md.partitions.get(dev.path, []):
                pname = part.path.rsplit("/", 1)[1]
                f(f"/sys/block/{kname}/{pname}/dev", f"{part.major}:{part.minor}\n")
                _add(dirs, f"/sys/block/{kname}/{pname}/holders")
                for h in kernel.holders(host, part):
                    _add(dirs, f"/sys/block/{kname}/{pname}/holders/{h}")
    return files, dirs
