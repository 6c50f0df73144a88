"""Seeding: a simulated host to run passes against, embedded or re-created from a capture.

``--simulate NAME`` builds one of the embedded hosts (``simulate.demo.HOSTS``).
``--simulate DIR`` (a capture directory) builds a ``SimulatedHost`` from the capture: the
same devices, numbers and aliases, PVs, VGs, LVs (linear and raid1, with their tags and
placement), md arrays built without superblock (the clones') with their members and
progress, the mounts, and the ledger. Operations in flight resume as after a reboot of the
captured host: a pvmove is interrupted at its last finished segment (the reconciler resumes
it with bare ``pvmove``), raid and md syncs carry on from the captured percentage. What the
simulator does not model (persistent md arrays, other LV types) is refused or, for arrays
nobody manages, left out and said so in ``SimulatedSource.notes``. Of the other subsystems
the simulator is seeded with what it can represent (an iSCSI initiator's name, LIO loaded
with no target) and refuses, naming the subsystem and the object, what it cannot: a shared
(lvmlockd) VG or lockspace, an iSCSI session (its target is elsewhere), a DRBD resource or a
loaded DRBD module. LIO targets (backstores, LUNs, ACLs, portals) are seeded and observed
again: what differs is refused. A plan from a capture never silently lacks a subsystem the
host has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from reconciler import errors, observing, state
from reconciler.adapters import drbd, iscsi, lvm, md
from reconciler.offline.files import DRBD_DIR, HOSTNAME, Capture, read_capture


@dataclass
class SimulatedSource:
    """What ``--simulate SOURCE`` gives: the host, the node it plays, what was left out."""

    host: object  # a SimulatedHost, or a node of the simulated lvmlockd cluster (LockdNode)
    node: str | None
    notes: list[str] = field(default_factory=list)
    # A node of the simulated lvmlockd cluster (seed001) rather than a SimulatedHost: its
    # lvmlockd state could not be seeded back from a capture, so it is not captured.
    lockd_cluster: bool = False


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
        from reconciler.simulate.lockd_tools import LockdNode
        return SimulatedSource(host, example.node, lockd_cluster=isinstance(host, LockdNode))
    if not Path(source).is_dir():
        raise errors.ReconcilerError(
            f"--simulate {source}: no such capture directory, and not an embedded "
            f"simulated host ({', '.join(_host_names())})")
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
    """Re-create a VG's LVs with their placement and tags, and its pvmoves.

    Decides per LV how the simulator can hold what the capture shows: a linear LV at its
    extents per PV; a two-image raid1 LV as a linear LV on its first image's PVs converted
    with ``lvconvert`` (as the reconciler adds a leg), carrying the captured sync
    percentage; an LV being moved at its layout before the move, then the pvmove started
    again and set to its captured progress. Anything else (other LV types, a move whose
    source PV the capture does not show) is refused, because a plan from a host the
    simulator only approximates would not be the host's plan. A pvmove resumes as after a
    reboot: interrupted, with no poller, so the reconciler sees what it sees on a host that
    restarted mid-move and resumes it with bare ``pvmove``.
    """
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
    """Re-create the clones' md arrays, the ledgers, the host name and the mounts.

    Decides which arrays the simulator can hold: only the clones' kind (RAID1 built without
    superblock, at most two members), each rebuilt with ``mdadm --build`` from its member in
    sync, the other member added back at its captured recovery position, with the array's
    own speed limits; other arrays, and one with no member in sync, are left out and said so
    in ``notes`` (a run from the capture prints them as warnings: what it lacks is said). A
    member that is not among the captured block devices is refused: its identity would be a
    guess. The clone ledger and the DRBD ledger are copied as captured (they say which
    metadata the reconciler created or adopted), and every mount is kept by device number,
    so a spec's mounted devices are as busy offline as on the host.
    """
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
