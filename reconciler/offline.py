"""Offline planning: capture what a pass observes on a host, and seed a simulated host from it.

``reconcile capture DIR`` runs the pass's own observation (``observing.observe``) with every
block device of the host as a target, and keeps what it saw, untouched:

* ``lvm-fullreport.json`` and ``lvm-version.txt``: the raw stdout of the one LVM process;
* ``kernel-files.json``: every kernel file the observation read (/proc/mdstat, md's sysfs
  of every array, each block device's sysfs size/holders/partitions, the mount table) and
  the clone ledger, path -> text (``null``: absent);
* ``block-devices.json``: every block device with its device number, size and aliases
  (the /dev/disk/by-id, by-path, ... and /dev/mapper symlinks that point at it), so disks
  that are not PVs yet are known, and a spec's stable names resolve offline as on the host;
* ``commands.json`` (format 3): every command any part of the observation ran, argv, exit
  code, stdout and stderr; ``kernel-files.json`` then also holds what the lvmlockd (dm
  sysfs), iSCSI (configfs targets, sysfs sessions, the initiator name) and DRBD (/proc/drbd,
  the resource files, split-brain markers, holders) observations read, each run with every
  part enabled;
* ``manifest.json``: argv, exit codes, tool versions, host, time, a summary of the
  operations in flight (pvmoves, raid syncs, md recoveries), and the parts a simulated host
  being captured does not model (``not_modelled``: nothing of them exists there).

Formats 1 (fullreport only) and 2 (no ``commands.json``) are still read.

``--simulate DIR`` builds a ``SimulatedHost`` from that: the same devices, numbers and
aliases, PVs, VGs, LVs (linear and raid1, with their tags and placement), md arrays built
without superblock (the clones') with their members and progress, the mounts, and the
ledger. Operations in flight resume as after a reboot of the captured host: a pvmove is
interrupted at its last finished segment (the reconciler resumes it with bare ``pvmove``),
raid and md syncs carry on from the captured percentage. What the simulator does not model
(persistent md arrays, other LV types) is refused or, for arrays nobody manages, left out
and said so in ``SimulatedCapture.notes``. Of the other subsystems the simulator is seeded
with what it can represent (an iSCSI initiator's name, LIO loaded with no target) and refuses,
naming the subsystem and the object, what it cannot: a shared (lvmlockd) VG or lockspace, an
iSCSI session (its target is elsewhere), a DRBD resource or a loaded DRBD module. LIO targets
(backstores, LUNs, ACLs, portals) are seeded and observed again: what differs is refused. A plan from a capture never
silently lacks a subsystem the host has.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import stat as stat_mod
from dataclasses import dataclass, field
from pathlib import Path

from reconciler import errors, observing, state
from reconciler.adapters import drbd, iscsi, lvm, md
from reconciler.runner import CommandResult, Runner

FULLREPORT_FILE = "lvm-fullreport.json"
VERSION_FILE = "lvm-version.txt"
KERNEL_FILES = "kernel-files.json"
BLOCK_DEVICES = "block-devices.json"
MANIFEST_FILE = "manifest.json"
COMMANDS_FILE = "commands.json"
FORMAT = 3
DRBD_DIR = "/etc/drbd.d"

# Where stable names of block devices live (udev's symlinks, device-mapper's names).
ALIAS_DIRS = ("/dev/disk/by-id", "/dev/disk/by-path", "/dev/disk/by-uuid",
              "/dev/disk/by-label", "/dev/disk/by-partuuid", "/dev/mapper")

Inventory = list[dict]  # [{"path", "devno": [major, minor], "size", "aliases": [...]}]


class _Recorder:
    """A runner that keeps every command result and every file read."""

    def __init__(self, inner: Runner):
        self.inner = inner
        self.results: list[CommandResult] = []
        self.files: dict[str, str | None] = {}

    def run(self, cmd):
        res = self.inner.run(cmd)
        self.results.append(res)
        return res

    def read(self, path: str, *, host: str = "local") -> str | None:
        text = self.inner.read(path, host=host)
        self.files[path] = text
        return text

    def openers(self, paths, *, host: str = "local"):
        return self.inner.openers(paths, host=host)


def _optional(part: str, not_modelled: dict[str, str], observe):
    """Run one subsystem's observation; a simulated host that does not model that subsystem
    at all (``UnsupportedCommand``: nothing of it exists there) is noted, not fatal. A real
    host never raises it: an absent subsystem is an absent file or a failed command there."""
    try:
        return observe()
    except errors.UnsupportedCommand as exc:
        not_modelled[part] = str(exc)
        return None


HOSTNAME = "/proc/sys/kernel/hostname"


def _local_drbd_configs() -> list[str]:
    try:
        return [f"{DRBD_DIR}/{n}" for n in sorted(os.listdir(DRBD_DIR)) if n.endswith(".res")]
    except OSError:
        return []


def _observe_others(rec: "_Recorder", drbd_configs: list[str],
                    drbd_ledger: str = "/var/lib/reconciler/drbd.json") -> dict[str, str]:
    """lvmlockd, iSCSI and DRBD, every part enabled: what they read and ran is recorded."""
    skipped: dict[str, str] = {}
    _optional("lvmlockd", skipped, lambda: observing.observe_lockd(rec, "local"))
    _optional("iscsi targets", skipped,
              lambda: iscsi.observe(lambda p: rec.read(p), targets=True, sessions=False))
    _optional("iscsi sessions", skipped,
              lambda: iscsi.observe(lambda p: rec.read(p), targets=False, sessions=True))

    def drbd_part() -> None:
        rec.read(drbd_ledger)  # which metadata the reconciler created or adopted
        text = rec.read(drbd.PROC)
        minors = drbd.parse_proc(text)[1] if text else {}
        for minor in sorted(minors):
            rec.read(f"/sys/block/drbd{minor}/holders/")
        for path in drbd_configs:
            name = Path(path).name[:-len(".res")]
            rec.read(drbd.config_path(name))
            rec.read(drbd.split_brain_marker(name))
    _optional("drbd", skipped, drbd_part)
    # uname -n: a DRBD pass checks --node against it
    _optional("hostname", skipped, lambda: rec.read(HOSTNAME))
    return skipped


def _local_inventory() -> Inventory:
    """Every block device of this machine (/sys/class/block) with its aliases."""
    devices: dict[tuple[int, int], dict] = {}
    base = Path("/sys/class/block")
    for entry in sorted(base.iterdir()) if base.is_dir() else []:
        try:
            major, minor = (int(x) for x in (entry / "dev").read_text().split(":"))
            size = int((entry / "size").read_text()) * md.SECTOR
            dm_name = (entry / "dm" / "name").read_text().strip() if (entry / "dm").is_dir() else ""
        except (OSError, ValueError):
            continue
        path = f"/dev/mapper/{dm_name}" if dm_name else f"/dev/{entry.name}"
        devices[(major, minor)] = {"path": path, "devno": [major, minor], "size": size,
                                   "aliases": [] if not dm_name else [f"/dev/{entry.name}"]}
    for d in ALIAS_DIRS:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            link = f"{d}/{name}"
            try:
                st = os.stat(link)
            except OSError:
                continue
            if not stat_mod.S_ISBLK(st.st_mode):
                continue
            dev = devices.get((os.major(st.st_rdev), os.minor(st.st_rdev)))
            if dev is not None and link != dev["path"] and link not in dev["aliases"]:
                dev["aliases"].append(link)
    return sorted(devices.values(), key=lambda d: d["path"])


def _simulated_inventory(host) -> Inventory:
    return [{"path": d.path, "devno": [d.major, d.minor], "size": d.size,
             "aliases": list(d.aliases)}
            for d in sorted(host.model.devices.values(), key=lambda d: d.path)]


def _in_flight(st: state.HostState) -> list[dict]:
    out: list[dict] = []
    for vg in st.vgs.values():
        for mv in vg.pvmoves:
            out.append({"what": "pvmove", "vg": vg.name, "name": mv.name, "source": mv.source,
                        "lvs": list(mv.lvs), "percent": mv.copy_percent})
        for lv in vg.lvs.values():
            if lv.images and not lv.is_synced:
                out.append({"what": "raid sync", "lv": lv.key,
                            "percent": lv.sync_percent if lv.sync_percent is not None
                            else lv.copy_percent})
    for arr in st.md.values():
        if arr.sync_total:
            out.append({"what": f"md {arr.sync_action or 'sync'}", "md": f"/dev/{arr.name}",
                        "percent": arr.sync_percent})
    return out


def capture(directory: str, *, simulate: str | None = None,
            ledger: str = observing.DEFAULT_LEDGER) -> dict:
    """Observe the host as a pass does, every block device included, and write it out."""
    if simulate:
        sim = simulated_host(simulate)
        if not hasattr(sim.host, "md"):  # a node of the simulated lvmlockd cluster (seed001)
            raise errors.ReconcilerError(
                f"--simulate {simulate} is a node of a simulated lvmlockd cluster; a capture "
                f"of it could not be replayed (the simulator cannot seed lvmlockd state from a "
                f"capture yet): run it with 'reconcile --simulate {simulate} ...' directly")
        return capture_simulated(directory, sim.host, name=simulate, node=sim.node,
                                 ledger=ledger)
    from reconciler.runner import SubprocessRunner
    return _capture(directory, SubprocessRunner(), _local_inventory(), observing.resolve_local,
                    socket.gethostname(), ledger, drbd_configs=_local_drbd_configs())


def capture_simulated(directory: str, host, *, name: str = "sim", node: str | None = None,
                      ledger: str = observing.DEFAULT_LEDGER) -> dict:
    """Capture a ``SimulatedHost`` as it is now (tests capture one mid-operation); ``node``
    is the node it plays, the default ``--node`` of a run from the capture."""
    configs = sorted(p for p in host.md.files
                     if p.startswith(f"{DRBD_DIR}/") and p.endswith(".res"))
    return _capture(directory, host, _simulated_inventory(host), host.resolve_device,
                    f"simulated:{name}", ledger, node, drbd_configs=configs)


def _capture(directory: str, runner: Runner, inventory: Inventory,
             resolve: observing.Resolver, host_name: str, ledger: str,
             node: str | None = None, drbd_configs: list[str] = ()) -> dict:
    rec = _Recorder(runner)
    version = rec.run(lvm.version())
    if not version.ok:
        raise lvm.failure(version)
    # The md observation's targets: every array /proc/mdstat lists, every block device.
    mdstat = md.parse_mdstat(runner.read("/proc/mdstat") or "")
    targets = observing.MdTargets(arrays=tuple(f"/dev/{name}" for name in sorted(mdstat)),
                                  devices=tuple(d["path"] for d in inventory), ledger=ledger)
    st = observing.observe(rec, host="local", devices=(), resolve=resolve, md_targets=targets)
    report = next(r for r in reversed(rec.results) if r.command.argv[:2] == ("lvm", "fullreport"))
    not_modelled = _observe_others(rec, list(drbd_configs), observing.drbd_ledger_path(ledger))
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    (out / COMMANDS_FILE).write_text(json.dumps(
        [{"argv": list(r.command.argv), "rc": r.rc, "stdout": r.stdout, "stderr": r.stderr}
         for r in rec.results], indent=1) + "\n")
    (out / VERSION_FILE).write_text(version.stdout)
    (out / FULLREPORT_FILE).write_text(report.stdout)
    (out / KERNEL_FILES).write_text(json.dumps(rec.files, indent=1, sort_keys=True) + "\n")
    (out / BLOCK_DEVICES).write_text(json.dumps({"devices": inventory}, indent=1) + "\n")
    entries = [{"argv": list(r.command.argv), "rc": r.rc, "file": f,
                "stderr": r.stderr[-2000:]}
               for r, f in ((version, VERSION_FILE), (report, FULLREPORT_FILE))]
    manifest = {"format": FORMAT, "host": host_name, "node": node or host_name,
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                "versions": {"lvm2": lvm.parse_version(version.stdout)},
                "commands": entries, "all_commands": COMMANDS_FILE,
                "kernel_files": KERNEL_FILES,
                "block_devices": BLOCK_DEVICES, "ledger": ledger,
                "in_flight": _in_flight(st), "not_modelled": not_modelled}
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


@dataclass
class Capture:
    """A capture directory, read back."""

    manifest: dict
    fullreport: str
    devices: Inventory = field(default_factory=list)
    files: dict[str, str | None] = field(default_factory=dict)
    commands: list[dict] = field(default_factory=list)  # format 3: every command run

    def result(self, argv: tuple[str, ...]) -> dict | None:
        return next((c for c in self.commands if tuple(c["argv"]) == argv), None)

    @property
    def host(self) -> str:
        return self.manifest.get("host", "captured")


def read_capture(directory: str) -> Capture:
    path = Path(directory)
    if not path.is_dir():
        raise errors.ReconcilerError(
            f"--simulate {directory}: no such capture directory, and not an embedded "
            f"simulated host ({', '.join(_host_names())})")
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
        text = (path / FULLREPORT_FILE).read_text()
        fmt = manifest.get("format")
        if fmt not in (1, 2, FORMAT):
            raise errors.ReconcilerError(f"{directory}: unknown capture format {fmt!r}")
        devices = (json.loads((path / BLOCK_DEVICES).read_text())["devices"]
                   if fmt >= 2 else [])
        files = json.loads((path / KERNEL_FILES).read_text()) if fmt >= 2 else {}
        commands = json.loads((path / COMMANDS_FILE).read_text()) if fmt >= 3 else []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise errors.ReconcilerError(f"{directory} is not a capture written by "
                                     f"'reconcile capture' ({exc})") from None
    return Capture(manifest, text, devices, files, commands)


def load_capture(directory: str) -> state.HostState:
    cap = read_capture(directory)
    return lvm.parse_fullreport(cap.fullreport, host=cap.host)


@dataclass
class SimulatedSource:
    """What ``--simulate SOURCE`` gives: the host, the node it plays, what was left out."""

    host: object  # reconciler.simulate.SimulatedHost
    node: str | None
    notes: list[str] = field(default_factory=list)


def _host_names() -> list[str]:
    from reconciler.simulate import demo
    return sorted(demo.HOSTS)


def simulated_host(source: str, node: str | None = None) -> SimulatedSource:
    """An embedded host by name ('default', 'seed002', ...), or one seeded from a capture
    directory. ``node`` picks the node a multi-node embedded host plays."""
    from reconciler.simulate import demo
    example = demo.HOSTS.get(source)
    if example is not None and not Path(source).is_dir():
        try:
            host = example.build(node or example.node)
        except ValueError as exc:
            raise errors.ReconcilerError(f"--simulate {source}: {exc}") from None
        return SimulatedSource(host, example.node)
    cap = read_capture(source)
    try:
        host, notes = _seed(cap, source)
    except ValueError as exc:  # the simulator's builder refused part of the capture
        raise errors.ReconcilerError(f"cannot re-create the capture {source} in the "
                                     f"simulator: {exc}") from None
    node = cap.manifest.get("node") or cap.host
    return SimulatedSource(host, None if node.startswith("simulated:") else node, notes)


def _run(host, *argv: str) -> None:
    from reconciler.runner import Command
    res = host.run(Command(argv=argv))
    if not res.ok:
        raise errors.ReconcilerError(f"cannot re-create the capture in the simulator: "
                                     f"{' '.join(argv)}: {res.stderr.strip()}")


def _seed(cap: Capture, source: str):
    from reconciler import simulate
    st = lvm.parse_fullreport(cap.fullreport, host=cap.host)
    _refuse_unmodelled(cap, st)
    host = simulate.SimulatedHost()
    notes: list[str] = []
    if int(cap.manifest.get("format", 1)) < 3:
        notes.append(f"{source} is a capture of format {cap.manifest.get('format', 1)}: it "
                     f"holds no lvmlockd, iSCSI or DRBD state; the plan assumes there is none")
    _seed_iscsi(host, cap, notes)
    by_devno: dict[tuple[int, int], str] = {}
    built = {f"/dev/{n}" for n, a in _mdstat(cap).items() if _simulable(a)}
    for d in cap.devices:
        devno = (int(d["devno"][0]), int(d["devno"][1]))
        if d["path"] in built:  # an array the simulator re-creates below
            continue
        aliases = tuple(a for a in d.get("aliases", ()) if host.model.device(a) is None)
        if host.model.device(d["path"]) is not None:
            continue
        host.add_device(d["path"], int(d["size"]), aliases, major=devno[0], minor=devno[1])
        by_devno[devno] = d["path"]
    for pv in sorted(st.pvs.values(), key=lambda p: p.name):
        if host.model.device(pv.name) is None:
            if pv.devno is not None and pv.devno not in by_devno:
                host.add_device(pv.name, int(pv.dev_size or pv.size), major=pv.devno[0],
                                minor=pv.devno[1])
            else:
                host.add_device(pv.name, int(pv.dev_size or pv.size))
        host.add_pv(pv.name)
    for vg in sorted(st.vgs.values(), key=lambda v: v.name):
        host.add_vg(vg.name, list(vg.pvs), extent_size=int(vg.extent_size))
        _seed_lvs(host, vg)
    _seed_md(host, cap, by_devno, notes)
    return host, notes


def _cannot(subsystem: str, what: str) -> errors.ReconcilerError:
    return errors.ReconcilerError(
        f"this capture holds {what}; the simulator cannot seed {subsystem} state from a "
        f"capture yet, and planning without it would not be the host's plan")


def _refuse_unmodelled(cap: Capture, st: state.HostState) -> None:
    """Refuse, naming it, any lvmlockd, iSCSI or DRBD state the simulator cannot hold."""
    from reconciler.adapters import lockd as lockd_adapter
    for vg in sorted(st.vgs.values(), key=lambda v: v.name):
        if vg.lock_type and vg.lock_type != "none":
            raise _cannot("lvmlockd", f"the shared VG {vg.name} (lock type {vg.lock_type})")
    info = cap.result(lockd_adapter.lockctl_info("local").argv)
    if info is not None and info["rc"] == 0:
        try:
            spaces, locks = lockd_adapter.parse_info(info["stdout"])
        except ValueError:
            spaces, locks = {"(unreadable lvmlockctl --info)": None}, {}
        if spaces or locks:
            raise _cannot("lvmlockd", f"lvmlockd lockspaces {', '.join(sorted(spaces))}")
    files = cap.files
    proc = files.get(drbd.PROC)
    if proc is not None:
        try:
            _version, minors = drbd.parse_proc(proc)
        except ValueError:
            minors = {}
        seen = "; ".join(f"minor {m.minor} {m.cstate} {m.role}/{m.peer_role} "
                         f"{m.disk}/{m.peer_disk}" for m in sorted(minors.values(),
                                                                   key=lambda m: m.minor))
        raise _cannot("DRBD", f"the DRBD module loaded ({seen or 'no minor configured'})")
    for path, text in sorted(files.items()):
        if path.startswith(f"{DRBD_DIR}/") and path.endswith(".res") and text is not None:
            raise _cannot("DRBD", f"DRBD resource {Path(path).name[:-4]} (configured in {path})")
    seen = iscsi.observe(files.get, targets=True, sessions=True)
    for sess in seen.sessions:
        raise _cannot("iSCSI", f"the iSCSI session {sess.sid} to {sess.target} at {sess.portal} "
                               f"({sess.state}, {len(sess.disks)} disk(s)), whose target is not "
                               f"in the capture")


def _seed_iscsi(host, cap: Capture, notes: list[str]) -> None:
    """The initiator's name, and LIO with its backstores, targets, LUNs and ACLs (a session
    of this host was refused above: its target is elsewhere). The seeded host is observed
    again and must show what was captured, or the capture is refused."""
    seen = iscsi.observe(cap.files.get, targets=True, sessions=True)
    if not seen.initiator_name and seen.targets is None:
        return
    from reconciler.simulate.iscsi_model import Acl, Fabric, Target
    side = Fabric().join(host, initiator=seen.initiator_name)
    side.lio_loaded = seen.targets is not None
    side.backstores = dict(seen.backstores)
    for iqn, t in (seen.targets or {}).items():
        side.targets[iqn] = Target(
            iqn=iqn, portals=list(t.portals), enabled=t.enabled, auth=t.authentication,
            luns={n: lun.backstore for n, lun in t.luns.items()},
            acls={i: Acl(userid=a.chap_userid, mapped=set(a.mapped_luns))
                  for i, a in t.acls.items()},
            sessions={i for i, a in t.acls.items() if a.session})
        if t.authentication:
            notes.append(f"LIO target {iqn}: the CHAP secrets are not in the capture (configfs "
                         f"does not show them); a login to the seeded target is not simulated")
    again = iscsi.observe(host.read, targets=True, sessions=True)
    if again != seen:
        what = ", ".join(sorted(seen.targets or {})) or "LIO with no target"
        raise _cannot("iSCSI", f"the LIO state {what} (the simulator re-creates it as "
                               f"{sorted((again.targets or {}).values(), key=str)!r})")


def _seed_lvs(host, vg: state.Vg) -> None:
    es = int(vg.extent_size)
    moving = {lv: mv for mv in vg.pvmoves for lv in mv.lvs}
    for lv in sorted(vg.lvs.values(), key=lambda lv: lv.name):
        extents = -(-int(lv.size) // es)
        if lv.name in moving:
            mv = moving[lv.name]
            if mv.source is None:
                raise errors.ReconcilerError(f"LV {lv.key} is being moved by {mv.name}, whose "
                                             f"source PV the capture does not show")
            layout = dict(lv.pv_extents)
            left = extents - sum(layout.values())
            layout[mv.source] = layout.get(mv.source, 0) + left
            host.add_lv(vg.name, lv.name, int(lv.size),
                        layout=[(p, n) for p, n in layout.items() if n])
        elif lv.images:
            if len(lv.images) != 2 or "raid1" not in lv.segtypes:
                raise errors.ReconcilerError(
                    f"LV {lv.key} is {','.join(lv.layout)} with {len(lv.images)} images; only "
                    f"linear LVs and two-image raid1 LVs can be seeded into the simulator")
            first, second = lv.images
            host.add_lv(vg.name, lv.name, int(lv.size),
                        layout=_data_extents(first.pv_extents, extents))
            _run(host, "lvconvert", "--yes", "--type", "raid1", "--mirrors", "1",
                 f"{vg.name}/{lv.name}", *sorted(second.pv_extents))
            sim_lv = host.lv(vg.name, lv.name)
            pct = lv.sync_percent if lv.sync_percent is not None else lv.copy_percent
            sim_lv.synced = sim_lv.extents * min(100.0, pct or 0.0) / 100.0
            if lv.is_synced:
                sim_lv.recovering = set()
                host.model.active.discard(sim_lv)
        elif lv.is_linear:
            host.add_lv(vg.name, lv.name, int(lv.size), layout=sorted(lv.pv_extents.items()))
        else:
            raise errors.ReconcilerError(
                f"LV {lv.key} is {','.join(lv.layout)}; only linear and raid1 LVs can be "
                f"seeded into the simulator from a capture")
        for tag in lv.tags:
            _run(host, "lvchange", "--addtag", tag, f"{vg.name}/{lv.name}")
    for mv in vg.pvmoves:
        dests = [d for d in mv.destinations if d != mv.source]
        name = ["--name", f"{vg.name}/{mv.lvs[0]}"] if len(mv.lvs) == 1 else []
        _run(host, "pvmove", "--background", *name, str(mv.source), *dests)
        mirror = next(lv for lv in host.vg(vg.name).lvs.values()
                      if lv.kind == "pvmove" and lv.move_src is host.pv(str(mv.source)))
        mirror.moved = mirror.extents * min(100.0, mv.copy_percent or 0.0) / 100.0
        # As after a reboot of the captured host: no poller; bare pvmove resumes it.
        from reconciler.simulate import ops
        for pid in list(mirror.pollers):
            host.kill(pid)
        ops.interrupt_pvmove(mirror)


def _data_extents(pv_extents: dict[str, int], extents: int) -> list[tuple[str, int]]:
    """A raid image's extents per PV without its metadata LV's (one extent, on the image's
    PV with the most extents): the layout of the image's data."""
    counts = dict(pv_extents)
    excess = sum(counts.values()) - extents
    if excess > 0:
        biggest = max(counts, key=lambda p: counts[p])
        counts[biggest] -= excess
    return sorted((p, n) for p, n in counts.items() if n > 0)


def _mdstat(cap: Capture) -> dict:
    try:
        return md.parse_mdstat(cap.files.get("/proc/mdstat") or "")
    except ValueError as exc:
        raise errors.ReconcilerError(f"the captured /proc/mdstat cannot be read: {exc}") from None


def _simulable(seen) -> bool:
    return seen.metadata == "none" and seen.level == "raid1" and len(seen.members) <= 2


def _seed_md(host, cap: Capture, by_devno: dict[tuple[int, int], str],
             notes: list[str]) -> None:
    files = cap.files
    if not files:
        return
    mdstat = _mdstat(cap)
    mounts = md.parse_mountinfo(files.get("/proc/self/mountinfo") or "")
    ledger = cap.manifest.get("ledger", observing.DEFAULT_LEDGER)
    if files.get(ledger) is not None:
        host.md.files[ledger] = files[ledger]
    # the host name (a DRBD pass checks --node against it); absent from older captures,
    # where a DRBD pass then fails loudly rather than guess it
    if files.get(HOSTNAME):
        host.hostname = files[HOSTNAME].strip()
    drbd_ledger = observing.drbd_ledger_path(ledger)
    if files.get(drbd_ledger) is not None:
        host.md.files[drbd_ledger] = files[drbd_ledger]
    for name, seen in sorted(mdstat.items()):
        path = f"/dev/{name}"

        def attr(a: str, path: str = path) -> str:
            return (files.get(md.sysfs(path, a)) or "").strip()

        if not _simulable(seen):
            notes.append(f"{path} ({seen.level}, metadata {seen.metadata}) is not simulated: "
                         f"the simulator models only the clones' arrays (RAID1 built without "
                         f"superblock)")
            continue
        members = []
        for kname, _index, _flag in seen.members:
            try:
                devno = md.parse_devno(files.get(md.sysfs(path, f"dev-{kname}/block/dev")) or "")
            except ValueError:
                devno = None
            flags = md.parse_flags(files.get(md.sysfs(path, f"dev-{kname}/state")) or "")
            slot = md.parse_slot(files.get(md.sysfs(path, f"dev-{kname}/slot")) or "none")
            if devno not in by_devno:
                raise errors.ReconcilerError(f"{path}: member {kname} ({devno}) is not among "
                                             f"the captured block devices")
            members.append((slot if slot is not None else 99, by_devno[devno], flags))
        members.sort()
        source = next((p for _s, p, f in members if "in_sync" in f), None)
        if source is None:
            notes.append(f"{path} has no member in sync: not simulated")
            continue
        _run(host, "mdadm", "--build", path, "--level=1", "--raid-devices=2", source, "missing")
        array = host.md_array(path)
        for knob, field_name in (("sync_speed_min", "speed_min"), ("sync_speed_max", "speed_max")):
            text = attr(knob)
            if text.endswith("(local)"):
                setattr(array, field_name, int(text.split()[0]))
        for _slot, dev, flags in members:
            if dev == source or "faulty" in flags:
                continue
            _run(host, "mdadm", path, "--add", dev)
            if "in_sync" in flags:
                array.done = float(array.size)
                host.md.advance(0.0, 0.0)
            else:
                done = md.parse_sync_completed(attr("sync_completed"))
                if done is not None:
                    array.done = float(done[0])
        for mountpoint in mounts.get(array.devno, ()):
            host.md.mounts.append((array.devno, mountpoint, path))
    for devno, points in mounts.items():
        dev_path = by_devno.get(devno)
        if dev_path is not None:
            for mountpoint in points:
                host.md.mounts.append((devno, mountpoint, dev_path))
