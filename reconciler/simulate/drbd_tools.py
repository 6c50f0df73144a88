"""The simulated host's drbdadm (drbd-utils 9 driving an 8.4 kernel), modprobe drbd,
``wipefs --no-act --json``, ``rm -f`` and the DRBD kernel files (/proc/drbd, holders).

Messages and exit codes are the lab's (tests/fixtures/outputs/drbd/commands). Not recorded,
and raised as UnsupportedCommand rather than guessed: ``up`` on a disk without metadata,
drbdadm verbs the reconciler does not use (dump, role, cstate, dstate, -d dry runs...).
``wipefs`` on a failed disk: as the lab test saw it (rc 0, no signature).

Not recorded in the lab, written from drbdsetup(8)/drbdmeta(8) for 8.4: ``drbdadm get-gi RES``
on a resource that is up (drbdsetup's get-gi: ``CURRENT:BITMAP:HISTORY1:HISTORY2:`` then
flags) and ``drbdmeta MINOR v08 DISK internal get-gi`` on a disk whose resource is down (the
same line, read from the metadata; refused while the minor is configured, as drbdmeta does).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from reconciler.errors import UnsupportedCommand

from .drbd_model import CONNECTED, JUST_CREATED, DrbdNode, Meta, Res, ResConf, gi_text, parse_config
from .tool import Out, Tool

if TYPE_CHECKING:
    from .machine import Machine

CONF_DIR = "/etc/drbd.d/"


def _node(host: Machine) -> DrbdNode:
    if host.drbd is None:
        raise UnsupportedCommand(f"host {host.name} has no simulated DRBD (DrbdNet.join)")
    return host.drbd


def _configs(host: Machine, path: str | None) -> dict[str, ResConf]:
    files = host.md.files
    if path is not None:
        if path not in files:
            raise UnsupportedCommand(f"drbdadm -c {path}: no such file (not modelled)")
        return parse_config(files[path])
    out: dict[str, ResConf] = {}
    for name in sorted(files):
        if name.startswith(CONF_DIR) and name.endswith(".res") and "/." not in name:
            out.update(parse_config(files[name]))
    return out


def _fail(out: Out, minor: int, code: int, text: str, verb: str) -> Out:
    return out.err(f"{minor}: State change failed: ({code}) {text}",
                   f"Command 'drbdsetup-84 {verb} {minor}' terminated with exit code 11", rc=11)


def drbdadm(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``drbdadm [-c FILE] [-- --force|--discard-my-data] VERB RES`` as drbd-utils 8.4 does
    it on this node: the resource from the configuration (refused for a host it does not
    name), then ``get-gi``, ``create-md``, ``up``/``adjust``, ``primary`` (refused without
    UpToDate data unless forced, or while the peer is primary without two primaries),
    ``secondary``/``down`` (refused while the device is held open), ``connect`` (the
    handshake on the net, which may resync or split-brain) and ``disconnect``, with the
    recorded messages and exit codes. Anything else is not modelled: UnsupportedCommand."""
    node = _node(host)
    args = list(argv[1:])
    conf_path = None
    if args[:1] == ["-c"]:
        conf_path, args = args[1], args[2:]
    force = discard = False
    if args[:1] == ["--"]:
        opt = args[1]
        if opt == "--force":
            force = True
        elif opt == "--discard-my-data":
            discard = True
        else:
            raise UnsupportedCommand(f"drbdadm option {opt} not modelled")
        args = args[2:]
    if args[:1] == ["primary"] and "--force" in args:
        args.remove("--force")
        force = True
    if len(args) != 2:
        raise UnsupportedCommand(f"drbdadm form not modelled: {' '.join(argv)}")
    verb, name = args
    confs = _configs(host, conf_path)
    if name not in confs:
        return Out().err(f"'{name}' not defined in your config (for this host).", rc=10)
    conf = confs[name]
    me = conf.nodes.get(node.hostname)
    if me is None:
        return Out().err(f"'{name}' not defined in your config (for this host).", rc=10)
    out = Out()
    if verb == "get-gi":
        r = node.res.get(me.minor) if node.loaded else None
        if r is None or r.disk_path is None:
            raise UnsupportedCommand("drbdadm get-gi on a resource that is down is not modelled "
                                     "(the reconciler reads a down disk with drbdmeta)")
        return Out(stdout=[gi_text(r.uuids)])
    if verb == "create-md":
        # stdin is never a TTY here: drbdmeta does not wait for an answer (lab: the same
        # output with "no" and with nothing on stdin)
        return _create_md(host, node, me.disk, me.minor, force=force)
    if verb not in ("up", "adjust", "primary", "secondary", "connect", "disconnect", "down"):
        raise UnsupportedCommand(f"drbdadm {verb} not modelled")
    if stdin is not None:
        raise UnsupportedCommand(f"stdin is not modelled for: {' '.join(argv)}")
    if not node.loaded:
        raise UnsupportedCommand("drbdadm with the drbd module not loaded is not modelled")
    r = node.res.get(me.minor)
    if verb == "up":
        if r is not None:
            return out.err(f"Device '{me.minor}' is configured!",
                           f"Command 'drbdmeta {me.minor} v08 {me.disk} internal apply-al' "
                           "terminated with exit code 20", rc=1)
        return _up(node, conf, me.minor, me.disk)
    if verb == "adjust":
        if r is None:
            return _up(node, conf, me.minor, me.disk)
        r.conf = conf
        if r.disk == "Diskless":
            # attach runs the same drbdmeta apply-al as up first (its refusal not recorded
            # apart from up's)
            return _claimed(host, me.minor, me.disk, "apply-al") or _attach(node, r, me.disk)
        return out
    if r is None:
        raise UnsupportedCommand(f"drbdadm {verb} on an unconfigured resource is not modelled")
    peer = node.net.peer(node, r)
    if verb == "primary":
        if r.role == "Primary":
            return out
        connected = r.cstate in CONNECTED
        if connected and peer is not None and peer.role == "Primary" and not conf.two_primaries:
            return _fail(out, me.minor, -1, "Multiple primaries not allowed by config", "primary")
        if r.disk != "UpToDate" and not force and not (connected and peer and peer.disk == "UpToDate"):
            return out.err(f"{me.minor}: State change failed: (-2) Need access to UpToDate data",
                           f"Command 'drbdsetup-84 primary {me.minor}' terminated with exit code 17",
                           rc=17)
        r.role = "Primary"
        if force and r.disk == "Inconsistent":
            r.disk = "UpToDate"
            node.net.new_current(r)
            if connected and peer is not None and peer.disk == "Inconsistent":
                node.net._sync(node, r, peer, full=True)
        elif not connected:
            node.net.new_current(r)
        return out
    if verb == "secondary":
        if r.role == "Secondary":
            return out
        if node.in_use(me.minor):
            return _fail(out, me.minor, -12, "Device is held open by someone", "secondary")
        r.role = "Secondary"
        return out
    if verb == "connect":
        if r.cstate != "StandAlone":
            pn = node.net.peer_node(node, r)
            peer_addr = conf.nodes[pn.hostname].address if pn else "?"
            return out.err(f"{name}: Failure: (102) Local address(port) already in use.",
                           f"Command 'drbdsetup-84 connect {name} ipv4:{me.address} ipv4:{peer_addr} "
                           f"--protocol={conf.protocol} ...' terminated with exit code 10", rc=10)
        r.cstate = "WFConnection"
        r.discard = discard
        node.net.handshake(node, r)
        return out
    if verb == "disconnect":
        if r.cstate == "StandAlone":
            return out.err("??: Failure: (162) Invalid configuration request",
                           "additional info from kernel:", "unknown connection",
                           f"Command 'drbdsetup-84 disconnect ipv4:{me.address} ...' "
                           "terminated with exit code 10", rc=10)
        if peer is not None and peer.cstate in CONNECTED:
            peer.cstate = "WFConnection"
            node.net._lost_peer(peer)
        if r.cstate in CONNECTED:
            node.net._lost_peer(r)
        r.cstate = "StandAlone"
        return out
    # down
    if node.in_use(me.minor):
        return _fail(out, me.minor, -12, "Device is held open by someone", "secondary")
    node.net.down(node, r)
    return out


def _claimed(host: Machine, minor: int, disk: str, verb: str) -> Out | None:
    """drbdmeta opens the backing disk with O_EXCL before it reads anything: while another
    holder claims it (``Kernel.refuses_exclusive``) create-md asks whether to go on anyway
    (twice; stdin is no TTY, so no) and exits 20, and ``up``'s ``apply-al`` fails at once
    (tests/fixtures/outputs/claim). None when the disk is not claimed."""
    if not host.refuses_exclusive(disk):
        return None
    failed = f"open({disk}) failed: Device or resource busy"
    tail = f"Command 'drbdmeta {minor} v08 {disk} internal {verb}' terminated with exit code 20"
    out = Out(stdout=["Operation canceled.\n"])
    if verb == "create-md":
        ask = (failed, "", "Exclusive open failed. Do it anyways?",
               "stdin not a TTY, not waiting for confirmation")
        return out.err(*ask, *ask, tail, rc=20)
    return out.err(failed, tail, rc=1)


def _create_md(host: Machine, node: DrbdNode, disk: str, minor: int, *, force: bool) -> Out:
    dev = host.model.device(disk)
    if dev is None or dev.failed_at is not None:
        raise UnsupportedCommand(f"create-md on a missing or failed disk {disk} is not modelled")
    r = node.res.get(minor)
    if r is not None and r.disk_path is not None:
        raise UnsupportedCommand(f"create-md on the attached minor {minor} is not modelled")
    if force:
        if host.refuses_exclusive(disk):
            raise UnsupportedCommand(f"create-md --force on the claimed disk {disk} is not "
                                     f"modelled (drbdmeta would go on without its exclusive "
                                     f"open)")
    else:
        refused = _claimed(host, minor, disk, "create-md")
        if refused is not None:
            return refused
    out = Out()
    if not force and dev.signature is not None:
        out.stdout += ["\n", f"Found {'ext3' if dev.signature.startswith('ext') else dev.signature} filesystem\n",
                       "Operation refused.\n", "\n"]
        return out.err(f"Command 'drbdmeta {minor} v08 {disk} internal create-md' terminated with exit code 40", rc=40)
    if not force and disk in node.metadata:
        out.stdout.append("Operation cancelled.\n")
        return out.err("You want me to create a v08 style flexible-size internal meta data block.",
                       "There appears to be a v08 flexible-size internal meta data block",
                       f"already in place on {disk} at byte offset {dev.size - 4096}", "",
                       "Do you really want to overwrite the existing meta-data?",
                       "stdin not a TTY, not waiting for confirmation", rc=1)
    old = node.metadata.get(disk)
    # internal metadata lives at the end: the data area (and a file system in it) stays
    node.metadata[disk] = Meta("Inconsistent", old.data if old else node.contents.get(disk, ""),
                               JUST_CREATED)
    out.stdout += ["initializing activity log\n", "Writing meta data...\n",
                   "New drbd meta data block successfully created.\n"]
    out.stderr.append("initializing bitmap (4 KB) to all zero\n")
    return out


def _up(node: DrbdNode, conf: ResConf, minor: int, disk: str) -> Out:
    refused = _claimed(node.host, minor, disk, "apply-al")
    if refused is not None:
        return refused
    if disk not in node.metadata:
        raise UnsupportedCommand(f"drbdadm up on {disk} without DRBD metadata is not modelled")
    r = Res(conf=conf, minor=minor, disk_path=disk)
    dev = node.host.model.device(disk)
    if dev is not None and dev.failed_at is not None:
        raise UnsupportedCommand(f"drbdadm up on the failed disk {disk} is not modelled")
    meta = node.metadata[disk]
    r.disk, r.data, r.uuids, r.fs = meta.disk, meta.data, list(meta.uuids), dev.signature if dev else None
    r.dirty, r.oos_kib = meta.dirty, meta.oos_kib
    r.cstate = "WFConnection"
    node.res[minor] = r
    node.net.handshake(node, r)
    return Out()


def _attach(node: DrbdNode, r: Res, disk: str) -> Out:
    if disk not in node.metadata:
        raise UnsupportedCommand(f"attach of {disk} without DRBD metadata is not modelled")
    dev = node.host.model.device(disk)
    if dev is None or dev.failed_at is not None:
        raise UnsupportedCommand(f"attach of the failed disk {disk} is not modelled")
    r.disk_path = disk
    meta = node.metadata[disk]
    r.disk, r.data, r.uuids, r.fs = meta.disk, meta.data, list(meta.uuids), dev.signature
    if r.disk == "UpToDate":
        r.disk = "Outdated"  # not modelled further: the lab attached fresh metadata only
        raise UnsupportedCommand("attaching a disk with old DRBD data is not modelled")
    peer = node.net.peer(node, r)
    if r.cstate in CONNECTED and peer is not None and peer.disk == "UpToDate":
        pn = node.net.peer_node(node, r)
        node.net._sync(pn, peer, r, full=True)
    return Out()


def drbdmeta(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    """``drbdmeta MINOR v08 DISK internal get-gi`` (read only; the one form modelled)."""
    if len(argv) != 6 or argv[2] != "v08" or argv[4] != "internal" or argv[5] != "get-gi" \
            or stdin is not None:
        raise UnsupportedCommand(f"drbdmeta form not modelled: {' '.join(argv)}")
    node = _node(host)
    minor, disk = int(argv[1]), argv[3]
    if minor in node.res and node.res[minor].disk_path is not None:  # attached
        return Out().err(f"Device '{minor}' is configured!", rc=20)
    meta = node.metadata.get(disk)
    dev = host.model.device(disk)
    if meta is None or dev is None or dev.failed_at is not None:
        raise UnsupportedCommand(f"drbdmeta get-gi on {disk} without DRBD metadata is not modelled")
    return Out(stdout=[gi_text(meta.uuids)])


def modprobe(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    if argv != ("modprobe", "drbd") or stdin is not None:
        raise UnsupportedCommand(f"modprobe form not modelled: {' '.join(argv)}")
    _node(host).loaded = True
    return Out()


def wipefs(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    if argv[:3] != ("wipefs", "--no-act", "--json") or len(argv) != 4 or stdin is not None:
        raise UnsupportedCommand(f"wipefs form not modelled: {' '.join(argv)}")
    path = argv[3]
    dev = host.model.device(path)
    if dev is None:
        return Out().err(f"wipefs: error: {path}: probing initialization failed: No such file or directory")
    if dev.failed_at is not None:  # lab: a drive_del'd disk probes as blank, rc 0
        return Out(stdout=[json.dumps({"signatures": []}, indent=3) + "\n"])
    sigs = []
    if dev.signature is not None:
        sigs.append({"device": path.rsplit("/", 1)[-1], "offset": "0x438", "type": dev.signature,
                     "uuid": "00000000-0000-0000-0000-000000000000", "label": None})
    if host.drbd is not None and path in host.drbd.metadata:
        sigs.append({"device": path.rsplit("/", 1)[-1], "offset": hex(dev.size - 4036), "type": "drbd",
                     "uuid": "231e582cda70cbbf", "label": None})
    return Out(stdout=[json.dumps({"signatures": sigs}, indent=3) + "\n"])


def rm(host: Machine, argv: tuple[str, ...], stdin: str | None) -> Out:
    if len(argv) != 3 or argv[1] != "-f" or stdin is not None:
        raise UnsupportedCommand(f"rm form not modelled: {' '.join(argv)}")
    host.md.files.pop(argv[2], None)
    return Out()


# each handler checks stdin itself (create-md takes an empty one, the others refuse it)
_TOOLS: dict[str, Tool] = {"drbdadm": Tool(drbdadm, True, stdin=True),
                           "modprobe": Tool(modprobe, True, stdin=True),
                           "drbdmeta": Tool(drbdmeta, False, stdin=True),
                           "wipefs": Tool(wipefs, False, stdin=True), "rm": Tool(rm, True, stdin=True)}


def lookup(argv: tuple[str, ...]) -> Tool | None:
    if argv[:1] == ("drbdadm",) and "get-gi" in argv:
        return Tool(drbdadm, False, stdin=True)  # reads the generation identifiers only
    return _TOOLS.get(argv[0])


_HOLDERS = re.compile(r"^/sys/block/drbd(\d+)/holders/$")


def read(host: Machine, path: str) -> str | None:
    """/proc/drbd and /sys/block/drbdN/holders/ (None when the minor does not exist)."""
    node = host.drbd
    if path == "/proc/drbd":
        return node.proc() if node is not None else None
    m = _HOLDERS.match(path)
    if m:
        minor = int(m.group(1))
        if node is None or minor not in node.res:
            return None
        return "".join(f"{h}\n" for h in sorted(node.holders.get(minor, [])))
    raise UnsupportedCommand(f"DRBD kernel file not modelled: {path}")


def mount_lines(host: Machine) -> str:
    node = host.drbd
    if node is None:
        return ""
    return "".join(f"{60 + minor * 4 + i} 24 147:{minor} / {mp} rw,relatime - ext4 /dev/drbd{minor} rw\n"
                   for minor, mps in sorted(node.mounts.items()) for i, mp in enumerate(mps))
