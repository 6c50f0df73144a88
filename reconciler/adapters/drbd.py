"""DRBD: read /proc/drbd, render resource files, build drbdadm argv, classify its errors.

Everything DRBD-version specific lives here. The lab kernel's driver is DRBD 8.4 and
drbd-utils 9 hands over to its 8.4 tools by itself (recordings: tests/fixtures/outputs/drbd/).
On 8.4 /proc/drbd says everything a pass needs (connection state, roles, disk states, out of
sync KiB and the resync's progress), so observation costs no process. A DRBD 9 kernel's
/proc/drbd holds the version only: it is recognised and refused with a clear message (it
would need one ``drbdsetup status --json`` per pass, not written yet).

The resource file is rendered in drbd-utils' 8.4 syntax (``on <hostname>``) with a first line
that marks it as ours; a file under /etc/drbd.d/ without that line was written by someone else
and is never overwritten. The file carries a ``split-brain`` handler: when the kernel finds a
split brain it runs that handler (through ``/sbin/drbdadm split-brain minor-N``), which leaves
a marker under /run. /proc/drbd has no word for split brain (both ends just go StandAlone),
so the marker is how a later pass knows, without reading the kernel log.

Generation identifiers: ``drbdadm get-gi RES`` while the resource is up (drbdsetup's), and
``drbdmeta MINOR v08 DISK internal get-gi`` for a disk whose resource is down (needs no
resource file; drbdadm runs drbdmeta in this form, lab recording 19). Both print
``CURRENT:BITMAP:HISTORY1:HISTORY2:`` then flags (drbdsetup(8), drbdmeta(8); the flags are
not read). Not recorded in the lab yet.

The DRBD ledger (``state_drbd.DEFAULT_LEDGER``) records, per resource and node, the disk
(stable identity, as the md clone ledger identifies disks) on which the reconciler created
or adopted the metadata, and the generation identifiers read then; for fencing, spent
declarations and each node's last loss of its peer, under the ledger's random epoch (below).
It is written like the clone ledger (temporary file synced, renamed, directory synced, and
the directory's parent: a crash leaves the old or the new ledger).

Metadata is created without ``--force`` unless the spec says ``wipe``: drbdmeta then refuses
a disk holding a file system (rc 40, "Operation refused.") or DRBD metadata (stdin not a TTY:
"Operation cancelled."), a second guard behind the planner's own check of ``wipefs --no-act``.
"""

from __future__ import annotations

import json
import posixpath
import re

from reconciler import errors, paths
from reconciler.runner import Command, CommandResult
from reconciler.spec.drbd import DrbdResource, Role
from reconciler.state import drbd as state_drbd

PROC = "/proc/drbd"
CONF_DIR = paths.DRBD_CONF_DIR
MARK_DIR = paths.DRBD_MARK_DIR
MANAGED = "# managed by reconciler: do not edit, the spec is the source (drbd resource {name})"
DRBD_MAJOR = 147


def config_path(name: str) -> str:
    return f"{CONF_DIR}/{name}.res"


def split_brain_marker(name: str) -> str:
    return f"{MARK_DIR}/{name}.split-brain"


def device(minor: int) -> str:
    return f"/dev/drbd{minor}"


# -- /proc/drbd -----------------------------------------------------------------------------------

_VERSION = re.compile(r"^version: (\S+)", re.MULTILINE)
_DEV = re.compile(r"^\s*(\d+): cs:(\S+)(?: ro:(\S+)/(\S+) ds:(\S+)/(\S+)(?: ([ABC]))?)?")
_OOS = re.compile(r"\boos:(\d+)")
_NS = re.compile(r"\bns:(\d+)")
_NR = re.compile(r"\bnr:(\d+)")
_PCT = re.compile(r"sync'ed:\s*([0-9.]+)% \((\d+)/(\d+)\)K")
_FINISH = re.compile(r"finish: (\d+):(\d\d):(\d\d) speed: ([0-9,]+)")


class UnsupportedDrbd(ValueError):
    """A kernel whose /proc/drbd does not carry the resources (DRBD 9)."""


def parse_proc(text: str) -> tuple[str, dict[int, state_drbd.DrbdMinor]]:
    """/proc/drbd (8.4) -> (version, {minor: DrbdMinor}). Raises ValueError on a line it
    cannot read and UnsupportedDrbd for DRBD 9."""
    m = _VERSION.search(text)
    if m is None:
        raise ValueError("no 'version:' line")
    version = m.group(1)
    if not version.startswith("8."):
        raise UnsupportedDrbd(f"DRBD {version} kernel: its /proc/drbd does not list resources "
                              "(needs drbdsetup status, not supported yet)")
    minors: dict[int, state_drbd.DrbdMinor] = {}
    blocks: list[list[str]] = []
    for line in text.splitlines():
        if re.match(r"^\s*\d+: cs:", line):
            blocks.append([line])
        elif blocks and line.startswith((" ", "\t")):
            blocks[-1].append(line)
    for block in blocks:
        d = _DEV.match(block[0])
        if d is None:
            raise ValueError(f"cannot read {block[0]!r}")
        minor, cstate = int(d.group(1)), d.group(2)
        rest = "\n".join(block)
        oos = _OOS.search(rest)
        ns, nr = _NS.search(rest), _NR.search(rest)
        sync = None
        pct = _PCT.search(rest)
        if pct is not None:
            fin = _FINISH.search(rest)
            eta = speed = None
            if fin is not None:
                speed = int(fin.group(4).replace(",", ""))
                if speed:  # at speed 0 (the sync has not moved yet) "finish:" means nothing
                    eta = float(int(fin.group(1)) * 3600 + int(fin.group(2)) * 60 + int(fin.group(3)))
            sync = state_drbd.DrbdSync(percent=float(pct.group(1)), left_kib=int(pct.group(2)),
                                       total_kib=int(pct.group(3)), speed_kib=speed, eta=eta)
        minors[minor] = state_drbd.DrbdMinor(
            minor=minor, cstate=cstate, role=d.group(3) or "Unknown",
            peer_role=d.group(4) or "Unknown", disk=d.group(5) or "Unconfigured",
            peer_disk=d.group(6) or "DUnknown", protocol=d.group(7) or "",
            oos_kib=int(oos.group(1)) if oos else 0, sync=sync,
            ns_kib=int(ns.group(1)) if ns else None, nr_kib=int(nr.group(1)) if nr else None)
    return version, minors


def parse_mounts(text: str, minor: int) -> tuple[str, ...]:
    """Mount points of /dev/drbd<minor> in /proc/self/mountinfo (major:minor in field 3)."""
    out = []
    for line in text.splitlines():
        f = line.split(" ")
        if len(f) > 4 and f[2] == f"{DRBD_MAJOR}:{minor}":
            out.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), f[4]))
    return tuple(out)


def parse_wipefs(text: str) -> tuple[str, ...]:
    """``wipefs --no-act --json`` -> the signature types found (``drbd``, ``ext4``...)."""
    data = json.loads(text or "{}") if (text or "").strip() else {}
    return tuple(str(s.get("type", "?")) for s in data.get("signatures", []))


_GI = re.compile(r"^([0-9A-Fa-f]{16}):([0-9A-Fa-f]{16}):([0-9A-Fa-f]{16}):([0-9A-Fa-f]{16})(?::|$)")


def parse_gi(text: str) -> state_drbd.Gi:
    """get-gi's first line -> Gi. Raises ValueError when it is not four 64-bit UUIDs."""
    line = (text or "").strip().splitlines()[:1]
    m = _GI.match(line[0]) if line else None
    if m is None:
        raise ValueError(f"not DRBD generation identifiers: {text!r}")
    return state_drbd.Gi(*(g.upper() for g in m.groups()))


def get_gi(name: str, *, host: str = "local") -> Command:
    """The generation identifiers of a resource that is up (read only)."""
    return _cmd("drbdadm", "get-gi", name, host=host, mutates=False)


def get_gi_down(minor: int, disk: str, *, host: str = "local") -> Command:
    """The generation identifiers on ``disk`` while its resource is down (read only)."""
    return _cmd("drbdmeta", str(minor), "v08", disk, "internal", "get-gi", host=host,
                mutates=False)


# -- the DRBD ledger ------------------------------------------------------------------------------
#
# {"format": 2, "epoch": "8 HEX DIGITS",
#  "metadata": [{"resource": R, "node": N, "disk": {"id": ID, "path": P},
#   "gi": "CURRENT:BITMAP:H1:H2", "how": "created" | "adopted"}, ...],
#  "fences": [{"resource": R, "node": N, "fenced": "NODE@INCIDENT", "how": "used" | "connected"},
#   ...],   (spent fence declarations)
#  "losses": [{"resource": R, "node": N, "ordinal": 1, "generation": G, "open": true,
#              "boot_id": B, "ns": KIB, "nr": KIB}, ...]}
#           (the last loss of its peer each node recorded, with the boot and /proc/drbd's
#            ns:/nr: then)
# The epoch is drawn at random when the file is created and is part of every incident. Format 1
# (no epoch; losses without boot or counters) is read, and rewritten as format 2 with a new
# epoch: none of its incidents can be declared again. A version that knows format 1 only
# refuses format 2 (it would drop the epoch and the losses, reviving spent declarations).

LEDGER_FORMAT = 2
_EPOCH = re.compile(r"^[0-9A-F]{8}$")


def epoch_from_uuid(text: str | None) -> str | None:
    """A new ledger epoch from /proc/sys/kernel/random/uuid (a random UUID at each read): its
    first 8 hex digits, upper case. None when it cannot be read."""
    head = (text or "").strip()[:8].upper()
    return head if _EPOCH.match(head) else None


def parse_ledger(path: str, text: str | None) -> state_drbd.DrbdLedger:
    if text is None:
        return state_drbd.DrbdLedger(path)
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") not in (1, LEDGER_FORMAT):
            raise ValueError(f"not a format-{LEDGER_FORMAT} (or format-1) DRBD ledger")
        epoch = None
        if data["format"] == LEDGER_FORMAT:
            epoch = data["epoch"]
            if not isinstance(epoch, str) or not _EPOCH.match(epoch):
                raise ValueError(f"epoch {epoch!r} is not 8 hex digits")
        records: dict[tuple[str, str], state_drbd.DrbdMetaRecord] = {}
        for e in data["metadata"]:
            r = state_drbd.DrbdMetaRecord(resource=str(e["resource"]), node=str(e["node"]),
                                          disk_id=str(e["disk"]["id"]), disk=str(e["disk"]["path"]),
                                          gi=str(e["gi"]), how=str(e["how"]))
            if r.key in records:
                raise ValueError(f"two records for {r.resource} on {r.node}")
            records[r.key] = r
        spent: dict[tuple[str, str, str], state_drbd.DrbdSpentFence] = {}
        for e in data.get("fences", []):
            f = state_drbd.DrbdSpentFence(resource=str(e["resource"]), node=str(e["node"]),
                                          fenced=str(e["fenced"]), how=str(e["how"]))
            spent[f.key] = f
        losses: dict[tuple[str, str], state_drbd.DrbdLoss] = {}
        for e in data.get("losses", []):
            counters = (e["ns"], e["nr"]) if epoch is not None else (None, None)
            x = state_drbd.DrbdLoss(resource=str(e["resource"]), node=str(e["node"]),
                                    ordinal=e["ordinal"], generation=str(e["generation"]),
                                    open=e["open"], epoch=epoch or "",
                                    boot_id=str(e["boot_id"]) if epoch is not None else "",
                                    ns=counters[0], nr=counters[1])
            if type(x.ordinal) is not int or x.ordinal < 1 or type(x.open) is not bool:
                raise ValueError(f"a loss of {x.resource} on {x.node} with ordinal {x.ordinal!r}, "
                                 f"open {x.open!r}")
            if epoch is not None and any(type(c) is not int or c < 0 for c in counters):
                raise ValueError(f"a loss of {x.resource} on {x.node} with counters {counters!r}")
            if x.key in losses:
                raise ValueError(f"two losses for {x.resource} on {x.node}")
            losses[x.key] = x
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return state_drbd.DrbdLedger(path, problem=f"{path} cannot be read as the DRBD ledger "
                                     f"({exc.__class__.__name__}: {exc})")
    return state_drbd.DrbdLedger(path, records, spent, losses, epoch=epoch)


def ledger_text(records, spent=(), losses=(), *, epoch: str) -> str:
    """The ledger file (format 2): ``epoch`` is the ledger's (kept from the file read, or a
    new one for a file created or rewritten from format 1)."""
    if not _EPOCH.match(epoch or ""):
        raise ValueError(f"a DRBD ledger epoch is 8 hex digits, not {epoch!r}")
    body = [{"resource": r.resource, "node": r.node, "disk": {"id": r.disk_id, "path": r.disk},
             "gi": r.gi, "how": r.how} for r in sorted(records, key=lambda r: r.key)]
    doc: dict = {"format": LEDGER_FORMAT, "epoch": epoch, "metadata": body}
    if spent:
        doc["fences"] = [{"resource": f.resource, "node": f.node, "fenced": f.fenced,
                          "how": f.how} for f in sorted(spent, key=lambda f: f.key)]
    if losses:
        if any(x.epoch != epoch for x in losses):
            raise ValueError(f"a loss recorded under another epoch than {epoch}")
        doc["losses"] = [{"resource": x.resource, "node": x.node, "ordinal": x.ordinal,
                          "generation": x.generation, "open": x.open, "boot_id": x.boot_id,
                          "ns": x.ns, "nr": x.nr}
                         for x in sorted(losses, key=lambda x: x.key)]
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def write_ledger(path: str, text: str, *, host: str = "local") -> tuple[Command, ...]:
    """Written whole: a temporary file synced, renamed over the ledger, then its directory
    synced (the rename), and the directory's parent (the directory itself, which mkdir -p
    may just have created: without it a power loss can lose the ledger with its directory)."""
    directory = posixpath.dirname(path) or "/"
    tmp = posixpath.join(directory, f".{posixpath.basename(path)}.tmp")
    return (_cmd("mkdir", "-p", directory, host=host),
            _cmd("dd", f"of={tmp}", "conv=fsync", "status=none", host=host, input=text),
            _cmd("mv", "-f", tmp, path, host=host),
            _cmd("sync", directory, host=host),
            _cmd("sync", posixpath.dirname(directory) or "/", host=host))


# -- the resource file ----------------------------------------------------------------------------

def render(name: str, res: DrbdResource) -> str:
    """The resource file, identical on both nodes (drbd-utils 8.4 syntax)."""
    lines = [MANAGED.format(name=name), f"resource {name} {{", f"  protocol {res.protocol.value};"]
    net = res.net
    opts = []  # each only when declared: unset is DRBD's own default
    if net.connect_int is not None:
        opts.append(f"connect-int {net.connect_int};")
    if net.ping_int is not None:
        opts.append(f"ping-int {net.ping_int};")
    if net.ping_timeout is not None:
        opts.append(f"ping-timeout {round(net.ping_timeout * 10)};")  # tenths of a second
    if res.allow_two_primaries:
        opts.append("allow-two-primaries yes;")
    for n, policy in ((0, net.after_sb_0pri), (1, net.after_sb_1pri), (2, net.after_sb_2pri)):
        if policy is not None:
            opts.append(f"after-sb-{n}pri {policy};")
    if opts:
        lines += ["  net {", *(f"    {o}" for o in opts), "  }"]
    opts = []
    if res.disk.c_plan_ahead is not None:
        opts.append(f"c-plan-ahead {round(res.disk.c_plan_ahead * 10)};")
    if res.resync_rate is not None:
        opts.append(f"resync-rate {res.resync_rate // 1024}k;")
    if opts:
        lines += ["  disk {", *(f"    {o}" for o in opts), "  }"]
    lines += ["  handlers {",
              f"    split-brain \"mkdir -p {MARK_DIR} && touch {split_brain_marker(name)}\";",
              "  }"]
    for node in sorted(res.nodes):
        n = res.nodes[node]
        lines += [f"  on {node} {{", f"    device {device(n.minor)} minor {n.minor};",
                  f"    disk {n.disk};", f"    address ipv4 {n.address}:{n.port};",
                  "    meta-disk internal;", "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"


def config_disk(text: str | None, node: str) -> str | None:
    """The backing disk a resource file gives ``node`` (``on <node> { disk X; }``)."""
    m = re.search(rf"on {re.escape(node)} \{{[^}}]*?\bdisk (\S+);", text or "")
    return m.group(1) if m else None


def is_managed(text: str, name: str) -> bool:
    return text.splitlines()[:1] == [MANAGED.format(name=name)]


# -- commands -------------------------------------------------------------------------------------

def _cmd(*argv: str, host: str, mutates: bool = True, input: str | None = None,
         timeout: float = 60.0) -> Command:
    return Command(argv=tuple(argv), host=host, mutates=mutates, input=input, timeout=timeout)


def probe_disk(path: str, *, host: str = "local") -> Command:
    """What a disk holds, read-only (run only before metadata may be created on it)."""
    return _cmd("wipefs", "--no-act", "--json", path, host=host, mutates=False)


def write_config(name: str, text: str, *, host: str = "local") -> tuple[Command, ...]:
    path = config_path(name)
    tmp = posixpath.join(CONF_DIR, f".{name}.res.tmp")
    return (_cmd("mkdir", "-p", CONF_DIR, host=host),
            _cmd("dd", f"of={tmp}", "conv=fsync", "status=none", host=host, input=text),
            _cmd("mv", "-f", tmp, path, host=host))


def modprobe(*, host: str = "local") -> Command:
    return _cmd("modprobe", "drbd", host=host)


def create_md(name: str, *, force: bool, host: str = "local") -> Command:
    if force:
        return _cmd("drbdadm", "--", "--force", "create-md", name, host=host)
    return _cmd("drbdadm", "create-md", name, host=host, input="")  # stdin not a TTY: refuses


def drbdadm(verb: str, name: str, *, host: str = "local") -> Command:
    if verb not in ("up", "adjust", "primary", "secondary", "connect", "disconnect", "attach"):
        raise ValueError(f"drbdadm {verb}: not a verb the reconciler uses")
    return _cmd("drbdadm", verb, name, host=host)


def force_primary(name: str, *, host: str = "local") -> Command:
    """Promote with both disks Inconsistent: this node's data seeds the first full sync."""
    return _cmd("drbdadm", "primary", "--force", name, host=host)


def connect_discard(name: str, *, host: str = "local") -> Command:
    """Reconnect after a split brain, discarding this node's changes (the declared victim)."""
    return _cmd("drbdadm", "--", "--discard-my-data", "connect", name, host=host)


def clear_split_brain(name: str, *, host: str = "local") -> Command:
    return _cmd("rm", "-f", split_brain_marker(name), host=host)


# -- errors ---------------------------------------------------------------------------------------

_BUSY = re.compile(r"Device is held open by someone|Device or resource busy", re.IGNORECASE)
_NOT_FOUND = re.compile(r"No such file or directory|not defined in your config", re.IGNORECASE)
_REFUSED_MD = re.compile(r"Operation refused|Operation cancelled|Found \S+ filesystem|"
                         r"already in place", re.IGNORECASE)


def classify(result: CommandResult) -> errors.FailureKind:
    if result.timed_out:
        return errors.FailureKind.TIMEOUT
    if result.rc == 127:
        return errors.FailureKind.MISSING_TOOL
    text = result.stderr + "\n" + result.stdout
    if _BUSY.search(text):
        return errors.FailureKind.BUSY
    if _NOT_FOUND.search(text):
        return errors.FailureKind.NOT_FOUND
    return errors.FailureKind.FATAL


def failure(result: CommandResult) -> errors.CommandFailed:
    text = result.stderr
    if _REFUSED_MD.search(result.stdout + result.stderr):
        text = (result.stderr + "\n" + result.stdout).strip()
    return errors.CommandFailed(result.command.host, result.command.argv, result.rc, text,
                                classify(result))


def role_word(role: Role) -> str:
    return "Primary" if role is Role.PRIMARY else "Secondary"
