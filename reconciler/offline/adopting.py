"""``reconcile adopt``: the spec of what a host has now, so that its first pass plans nothing.

The host is observed as a pass observes it (one ``lvm fullreport``, md and iSCSI from the
kernel's files), with every object it can see as a target instead of the spec's, and what it has is written out as TOML, one file per kind
(``lvm.toml``, ``md.toml``, ``iscsi.toml``):

* each VG (``--vg`` picks some) with its PVs, each named by the most stable name the host
  gives its device (a /dev/mapper or /dev/md name as LVM reports it, else a
  /dev/disk/by-id, then a /dev/disk/by-path link, else the kernel name), its extent size,
  and, for a shared VG, scope, lock type and this node as ``create_on``;
* each LV with its exact size (a whole number of extents, written exactly: no ``lvextend``
  is ever planned from rounding) and where its extents are: ``placement`` for one copy,
  ``copies`` for a raid1;
* each md array built without superblock with two members (an online clone), as a
  ``mirrored`` clone of its first member onto its second;
* each LIO target (portals, ACLs, LUNs; a CHAP file named where its secret should be, as
  the secret cannot be read back) and each iSCSI session (portal, target, LUNs, initiator);
* each DRBD resource whose file the reconciler wrote, read back from that file (options,
  nodes, disks, addresses) with each node's role from /proc/drbd.

What it cannot say exactly is left out with a comment and a note (a VG exported or owned by
another host, a PV missing, a pvmove in flight, a DRBD resource file written by hand): the
operator decides. The
spec written is validated, and a dry pass is planned on the same host to prove it a no-op.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import errors, observing, state, units
from reconciler.adapters import drbd, iscsi, md
from reconciler.offline.capturing import (local_drbd_configs, local_inventory, optional_part,
                                          simulated_inventory)
from reconciler.offline.files import DRBD_DIR, Inventory
from reconciler.offline.seeding import simulated_host
from reconciler.runner import Runner
from reconciler.spec import writing

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Source:
    """The host to adopt: what runs its commands, its block devices, the node it is."""

    runner: Runner
    inventory: Inventory
    resolve: observing.Resolver
    node: str
    drbd_configs: list[str] = field(default_factory=list)  # /etc/drbd.d/*.res


@dataclass
class Adopted:
    files: dict[str, str] = field(default_factory=dict)  # file name -> TOML text
    notes: list[str] = field(default_factory=list)  # what was left out, and why
    counts: dict[str, int] = field(default_factory=dict)  # "VG" -> 2 ...


def source(simulate: str | None, node: str | None) -> Source:
    if simulate:
        sim = simulated_host(simulate, node=node)
        host = sim.host
        inventory = simulated_inventory(host) if hasattr(host, "model") else []
        files = getattr(getattr(host, "md", None), "files", {})
        configs = sorted(p for p in files if p.startswith(f"{DRBD_DIR}/") and p.endswith(".res"))
        return Source(host, inventory, host.resolve_device,
                      node or sim.node or socket.gethostname(), configs)
    from reconciler.runner import SubprocessRunner
    return Source(SubprocessRunner(), local_inventory(), observing.resolve_local,
                  node or socket.gethostname(), local_drbd_configs())


def check_directory(directory: str, force: bool) -> None:
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise errors.ReconcilerError(f"{directory} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise errors.ReconcilerError(
            f"{directory} is not empty: adopt writes a spec into an empty (or new) directory; "
            f"--force writes its files there anyway (lvm.toml, md.toml, drbd.toml, "
            f"iscsi.toml replace files of the same name; the others stay)")


def adopt(src: Source, vgs: Iterable[str] = ()) -> Adopted:
    """Observe the host and describe it as spec files (nothing is written here)."""
    wanted = tuple(vgs)
    result = Adopted()
    skipped: dict[str, str] = {}
    mdstat = optional_part("md", skipped, lambda: md.parse_mdstat(
        src.runner.read("/proc/mdstat") or "")) or {}
    targets = observing.MdTargets(arrays=tuple(f"/dev/{n}" for n in sorted(mdstat)),
                                  devices=tuple(d["path"] for d in src.inventory),
                                  ledger=observing.DEFAULT_LEDGER)
    st = observing.observe(src.runner, host="local", devices=(), resolve=src.resolve,
                           md_targets=targets if mdstat else None)
    name_of = _namer(src.inventory)
    missing = [n for n in wanted if n not in st.vgs]
    if missing:
        raise errors.ReconcilerError(
            f"no VG named {', '.join(missing)} on this host (it has: "
            f"{', '.join(sorted(st.vgs)) or 'none'})")
    doc: dict = {}
    notes: dict[tuple[str, ...], list[str]] = {}
    for name in sorted(st.vgs):
        if not wanted or name in wanted:
            _vg(doc, notes, result, st, st.vgs[name], src.node, name_of)
    if doc:
        result.files["lvm.toml"] = writing.dumps(doc, notes, _header(src.node, "LVM"))
    if not wanted:
        _md(result, st, src.node, name_of)
        seen = optional_part("iscsi", skipped, lambda: iscsi.observe(
            lambda p: src.runner.read(p), targets=True, sessions=True))
        if seen is not None:
            _iscsi(result, seen, src.node)
        optional_part("drbd", skipped, lambda: _drbd(result, src.runner, src.drbd_configs,
                                                  src.node))
    return result


def write(directory: str, adopted: Adopted) -> list[str]:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in adopted.files.items():
        (out / name).write_text(text)
        written.append(str(out / name))
    return written


def _header(node: str, what: str) -> list[str]:
    return [f"{what} of {node} as `reconcile adopt` found it: a pass with this spec changes "
            f"nothing; edit what must change"]


def _namer(inventory: Inventory) -> Callable[[str, tuple[int, int] | None], str]:
    """A device's most stable name: its /dev/mapper or /dev/md name, else a by-id link
    (not dm-name-, which is the mapper name again), else a by-path link, else as given."""
    by_devno = {tuple(d["devno"]): d for d in inventory}

    def name(path: str, devno: tuple[int, int] | None) -> str:
        if path.startswith(("/dev/mapper/", "/dev/md")):
            return path
        dev = by_devno.get(tuple(devno)) if devno else None
        if dev is None:
            return path
        names = [dev["path"], *dev["aliases"]]
        for prefix in ("/dev/mapper/", "/dev/md", "/dev/disk/by-id/", "/dev/disk/by-path/"):
            found = sorted(n for n in names if n.startswith(prefix)
                           and not n.startswith("/dev/disk/by-id/dm-name-"))
            if found:
                return found[0]
        return path
    return name


def _vg(doc: dict, notes: dict, result: Adopted, st: state.HostState, vg, node: str,
        name_of) -> None:
    why = ("it is exported (vgexport: handed over, waiting for vgimport)" if vg.exported else
           f"it belongs to host {vg.system_id!r} (LVM system ID)"
           if vg.system_id and st.lvm_system_id not in (None, vg.system_id) else
           f"{vg.missing_pv_count} of its PVs are missing" if vg.missing_pv_count else
           "a pvmove is in flight (adopt it again once the move ended)" if vg.pvmoves else "")
    if why:
        result.notes.append(f"VG {vg.name} left out: {why}")
        return
    pv_name = {p: name_of(p, st.pvs[p].devno if p in st.pvs else None) for p in vg.pvs}
    table: dict = {"nodes": [node]}
    if vg.lock_type in ("sanlock", "dlm"):
        table.update(scope="shared", lock_type=vg.lock_type, create_on=node)
        notes[("vg", vg.name)] = [
            "a shared VG: list every node that uses it, and choose create_on (the one node "
            "that creates, extends and reduces it)"]
    table["pvs"] = [pv_name[p] for p in vg.pvs]
    table["extent_size"] = units.format_size(vg.extent_size)
    lvs: dict = {}
    for lv_name in sorted(vg.lvs):
        lv = vg.lvs[lv_name]
        entry: dict = {"size": units.format_size(lv.size)}
        if lv.images and set(lv.segtypes) <= {"raid1"}:
            entry["copies"] = [sorted(pv_name.get(p, p) for p in img.pv_extents)
                               for img in lv.images]
        elif set(lv.segtypes) <= {"linear", "striped"} and lv.pv_extents:
            entry["placement"] = sorted(pv_name.get(p, p) for p in lv.pv_extents)
        else:
            notes.setdefault(("vg", vg.name, "lv", lv_name), []).append(
                f"{'/'.join(lv.segtypes) or 'no'} segments: placement left out")
        lvs[lv_name] = entry
    if lvs:
        table["lv"] = lvs
    doc.setdefault("vg", {})[vg.name] = table
    result.counts["VG"] = result.counts.get("VG", 0) + 1
    result.counts["LV"] = result.counts.get("LV", 0) + len(lvs)


def _md(result: Adopted, st: state.HostState, node: str, name_of) -> None:
    doc: dict = {}
    by_devno = {}
    for path, devno in st.devices.items():
        if devno is not None:
            by_devno.setdefault(devno, path)
    for arr in sorted(st.md.values(), key=lambda a: a.name):
        members = sorted((m for m in arr.members if m.slot is not None), key=lambda m: m.slot)
        if arr.metadata != "none" or arr.level != "raid1" or len(members) != 2:
            continue  # an array with a superblock, or not a clone's: left alone (unmanaged)
        devs = [name_of(by_devno.get(m.devno, f"/dev/{m.name}"), m.devno) for m in members]
        entry: dict = {"nodes": [node], "source": devs[0], "target": devs[1],
                       "md": f"/dev/{arr.name}", "state": "mirrored"}
        for key, limit in (("speed_limit_min", arr.speed_min), ("speed_limit_max", arr.speed_max)):
            if limit is not None and limit[1]:
                entry[key] = units.format_size(limit[0] * 1024)
        doc[arr.name] = entry
    if doc:
        result.files["md.toml"] = writing.dumps({"clone": doc}, header=_header(node, "md clones"))
        result.counts["clone"] = len(doc)


def _object_name(text: str, taken: set[str]) -> str:
    base = _NAME_CHARS.sub("-", text).strip("-.") or "x"
    base = base if base[0].isalnum() else f"x{base}"
    base = base[:60]
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _iscsi(result: Adopted, seen: state.IscsiState, node: str) -> None:
    doc: dict = {}
    notes: dict[tuple[str, ...], list[str]] = {}
    taken: set[str] = set()
    for iqn in sorted(seen.targets or {}):
        t = seen.targets[iqn]
        name = _object_name(iqn.rsplit(":", 1)[-1], taken)
        if not t.acls:
            result.notes.append(f"iSCSI target {iqn} left out: it admits no ACL (a spec "
                                f"target lists the initiators it admits)")
            continue
        entry: dict = {"nodes": [node], "iqn": iqn, "portals": list(t.portals),
                       "acls": sorted(t.acls)}
        if t.authentication:
            entry["chap_file"] = f"/etc/reconciler/{name}.chap"
            notes[("iscsi_target", name)] = [
                "CHAP is on: its secret cannot be read back; chap_file names where it should "
                "be kept (root-only, userid = ... and password = ... lines)"]
        entry["lun"] = {str(n): {"device": lun.device} for n, lun in sorted(t.luns.items())}
        doc.setdefault("iscsi_target", {})[name] = entry
    for s in sorted(seen.sessions, key=lambda s: (s.target, s.portal)):
        if s.state != "LOGGED_IN":
            continue
        name = _object_name(s.target.rsplit(":", 1)[-1], taken)
        entry = {"nodes": [node], "portal": s.portal, "target": s.target,
                 "luns": sorted(d.lun for d in s.disks) or [0]}
        if seen.initiator_name:
            entry["initiator"] = seen.initiator_name
        doc.setdefault("iscsi_session", {})[name] = entry
    if doc:
        result.files["iscsi.toml"] = writing.dumps(doc, notes, _header(node, "iSCSI"))
        for kind in doc:
            result.counts[kind.replace("_", " ")] = len(doc[kind])


_RESOURCE = re.compile(r"resource (\S+) \{")
_ON = re.compile(r"on (\S+) \{([^}]*)\}")
_OPTIONS = re.compile(r"\b(net|disk) \{([^}]*)\}")


def _drbd(result: Adopted, runner: Runner, configs: list[str], node: str) -> None:
    """Each DRBD resource whose file the reconciler wrote (``# managed by reconciler``), read
    back from that file and /proc/drbd; a resource up from a file written by hand is named in
    a note (its options may be anything drbd.conf allows: declare it by hand)."""
    proc = runner.read(drbd.PROC)
    minors = drbd.parse_proc(proc)[1] if proc else {}
    doc: dict = {}
    adopted_minors: set[int] = set()
    for path in configs:
        text = runner.read(path) or ""
        m = _RESOURCE.search(text)
        if not m:
            continue
        name = m.group(1)
        if not drbd.is_managed(text, name):
            result.notes.append(f"DRBD resource {name} ({path}) left out: the file was not "
                                f"written by the reconciler; declare the resource by hand")
            continue
        entry = _drbd_resource(text, node, minors)
        roles = _roles_unknown(entry, node, minors) if entry is not None else None
        if roles:
            result.notes.append(f"DRBD resource {name} ({path}) left out: {roles}; a role "
                                f"adopted as secondary could demote a real primary: declare "
                                f"the roles by hand once both nodes are seen")
            continue
        if entry is None:
            result.notes.append(f"DRBD resource {name} ({path}) left out: {node} is not one "
                                f"of its two nodes, or the file cannot be read back")
            continue
        adopted_minors.add(entry["nodes"][node]["minor"])
        doc[name] = entry
    up = sorted(set(minors) - adopted_minors)
    if up:
        result.notes.append(f"DRBD: minor {', '.join(map(str, up))} up in the kernel with no "
                            f"resource file the reconciler wrote: declare it by hand")
    if doc:
        result.files["drbd.toml"] = writing.dumps({"drbd": doc}, header=_header(node, "DRBD"))
        result.counts["DRBD resource"] = len(doc)


def _roles_unknown(entry: dict, node: str, minors: dict) -> str | None:
    """Why the two roles cannot be read from /proc/drbd (the resource is down here, or the
    peer is not connected: its role shows as Unknown), or None when both are known."""
    seen = minors.get(entry["nodes"][node]["minor"])
    if seen is None:
        return f"it is not up on {node}, so neither role can be seen"
    known = ("Primary", "Secondary")
    if seen.role not in known or seen.peer_role not in known:
        return f"its roles read {seen.role}/{seen.peer_role} ({seen.cstate})"
    return None


def _drbd_resource(text: str, node: str, minors: dict) -> dict | None:
    entry: dict = {}
    proto = re.search(r"\bprotocol ([ABC]);", text)
    if proto:
        entry["protocol"] = proto.group(1)
    net: dict = {}
    disk: dict = {}
    for section, body in _OPTIONS.findall(text):
        for opt, val in re.findall(r"([a-z0-9-]+) ([^;]+);", body):
            if section == "net" and opt in ("connect-int", "ping-int"):
                net[opt.replace("-", "_")] = int(val)
            elif section == "net" and opt == "ping-timeout":
                net["ping_timeout"] = int(val) / 10
            elif section == "net" and opt == "allow-two-primaries" and val == "yes":
                entry["allow_two_primaries"] = True
            elif section == "net" and re.fullmatch(r"after-sb-[012]pri", opt):
                net[opt.replace("-", "_")] = val
            elif section == "disk" and opt == "c-plan-ahead":
                tenths = int(val)
                disk["c_plan_ahead"] = tenths // 10 if tenths % 10 == 0 else tenths / 10
            elif section == "disk" and opt == "resync-rate" and val.endswith("k"):
                entry["resync_rate"] = units.format_size(int(val[:-1]) * 1024)
            else:
                return None  # an option the spec has no key for
    nodes: dict = {}
    for name, body in _ON.findall(text):
        dev = re.search(r"\bminor (\d+);", body)
        disk_m = re.search(r"\bdisk (\S+);", body)
        addr = re.search(r"\baddress ipv4 ([0-9.]+):(\d+);", body)
        if not (dev and disk_m and addr):
            return None
        nodes[name] = {"disk": disk_m.group(1), "address": addr.group(1),
                       "port": int(addr.group(2)), "minor": int(dev.group(1))}
    if node not in nodes or len(nodes) != 2:
        return None
    seen = minors.get(nodes[node]["minor"])
    peer = next(n for n in nodes if n != node)
    for who, role in ((node, seen.role if seen else ""), (peer, seen.peer_role if seen else "")):
        nodes[who]["role"] = "primary" if role == "Primary" else "secondary"
    entry["nodes"] = nodes
    if net:
        entry["net"] = net
    if disk:
        entry["disk"] = disk
    return entry


def first_pass(src: Source, directory: str) -> tuple[list[str], int]:
    """Plan a dry pass with the spec written at ``directory`` on the same host: what it
    would still do (empty when adopting worked) and its exit code."""
    from reconciler import controller
    from reconciler.spec import loading

    loaded = loading.load(directory)
    env = controller.Environment(runner=src.runner, node=src.node, resolve=src.resolve,
                                 clock=getattr(src.runner, "clock", None) or controller.Clock())
    result = controller.reconcile_once(loaded, env, dry_run=True)
    plan = result.plan
    left = [f"{s.action.describe()}  ({s.reason})" for s in plan.steps]
    left += [f"blocked: {b.object}: {b.reason}" for b in plan.blocked]
    return left, result.exit_code
