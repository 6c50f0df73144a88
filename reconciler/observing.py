"""One observation of a host: exactly one ``lvm fullreport`` process, plus device identities.

A second process, ``lvm systemid``, runs only when some VG carries an LVM system ID: the
planner must then know whether that ID is this host's (the VG is ours) or another's (it is
foreign and never touched). Hosts without system IDs never pay for it.

Device identities (major:minor of each path the spec names) come from ``stat``, not from a
process, so a spec may say ``/dev/disk/by-id/...`` while LVM reports ``/dev/sdb`` and the two
are still recognised as the same disk.

When the spec declares clones, the md side is read from kernel files only (``Runner.read``,
no process): /proc/mdstat, the sysfs directory of each array a clone names, the size,
holders, partitions and stable identity of each clone device, the mount table, and the clone
ledger. The ledger is read even when the spec declares no clone: its records of clones that
left the spec are marked so, and keep protecting their targets. While a pvmove is in flight,
who polls it is read the same way (/proc/PID/comm and cmdline, lvmpolld's socket, lvm.conf).
A pass with nothing to change therefore still starts exactly one process.
"""

from __future__ import annotations

import dataclasses

import os
import posixpath
import stat as stat_mod
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reconciler import errors, paths, state
from reconciler.adapters import lvm, md
from reconciler.adapters import fs as fs_adapter
from reconciler.adapters import pacemaker as pcmk
from reconciler.runner import Runner

DEFAULT_LEDGER = md.DEFAULT_LEDGER

Resolver = Callable[[str], "tuple[int, int] | None"]


def resolve_local(path: str) -> tuple[int, int] | None:
    """(major, minor) of a block device path on this machine, following symlinks."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat_mod.S_ISBLK(st.st_mode):
        return None
    return os.major(st.st_rdev), os.minor(st.st_rdev)


@dataclass(frozen=True)
class MdTargets:
    """What the clones of a spec ask observation to look at."""

    arrays: tuple[str, ...]  # md device paths
    devices: tuple[str, ...]  # the clones' sources and targets
    ledger: str


class ReportMemo:
    """The last ``lvm fullreport`` text one process parsed, and what it parsed to.

    The parser is a pure function of the text (and of the host's name), and what it builds
    is never mutated (``state.HostState``), so a report byte-identical to the previous one
    is not parsed again: its VGs and PVs are the same objects. The daemon's no-op passes
    (and a pass's re-observations after a step that changed nothing LVM reports) pay a
    string comparison instead of the parse; a changed byte anywhere parses it whole."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.parsed: state.HostState | None = None

    def parse(self, text: str, host: str) -> state.HostState:
        if self.parsed is not None and self.parsed.host == host and text == self.text:
            return self.parsed
        parsed = lvm.parse_fullreport(text, host=host)
        self.text, self.parsed = text, parsed
        return parsed


def observe(runner: Runner, *, host: str, devices: Iterable[str], resolve: Resolver,
            now: float = 0.0, md_targets: MdTargets | None = None,
            iscsi_parts: tuple[bool, bool] = (False, False),
            lockd: bool = False, quorum: bool = False,
            drbd_targets: DrbdTargets | None = None,
            lvm_targets: LvmTargets | None = None,
            exported: Iterable[str] = (), chap_files: Iterable[str] = (),
            pacemaker: bool | state.Pacemaker | None = False,
            reports: ReportMemo | None = None) -> state.HostState:
    """Observe ``host``. Raises ``CommandFailed`` or ``ObservationError`` when it cannot.

    ``reports``: the process's memo of the last report parsed (``ReportMemo``), if it keeps
    one: the same text is then not parsed again.

    ``exported``: devices this host's iSCSI targets export or are to export
    (``exported_devices``): their holders and mounts are read too (sysfs, the mount
    table), so that an export of a device in use here is refused at planning.

    ``iscsi_parts``: (targets, sessions) to read, from configfs and sysfs: no process.
    Their secrets (LIO's CHAP passwords, the node records) and ``chap_files`` (the spec's)
    are read too, and kept only as fingerprints (``adapters.iscsi``).
    ``lockd``: the spec has a shared VG on this node; lvmlockd's locks (``lvmlockctl
    --info``, the pass's second process) and the dm devices (sysfs) are read too.
    ``quorum``: one of them is a DLM VG: corosync's quorum too (``corosync-quorumtool -s``).
    ``pacemaker``: True when the spec declares anything Pacemaker could manage (a VG, an
    iSCSI target, a DRBD resource, an md clone's devices, an iSCSI session's disks, which a
    Filesystem or iSCSILogicalUnit primitive could mount or export): Pacemaker is read (``observe_pacemaker``: its CIB file,
    and only when that exists, two read-only processes); a ``state.Pacemaker`` (or None)
    already read in this pass is used as it is (Pacemaker is read once per pass: the
    reconciler changes nothing it manages); False: not read (unless DRBD resources are).
    ``lvm_targets``: the spec's PV devices (each one not a PV yet is probed with ``wipefs
    --no-act``, the one process DRBD's create-md probe uses) and its ``resize_fs`` LVs (the
    file system's superblock of each active one: ``Runner.read_bytes``, no process).
    """
    st = _observe(runner, host=host, devices=devices, resolve=resolve, now=now,
                  md_targets=md_targets, lockd=lockd, quorum=quorum, reports=reports)
    if lvm_targets is not None:
        st = dataclasses.replace(
            st, probes=_probe_new_pvs(runner, host, lvm_targets.pvs, st),
            filesystems=_read_filesystems(runner, host, lvm_targets.filesystems, st))
    drbd = drbd_targets is not None and bool(drbd_targets.resources)
    if drbd:
        st = dataclasses.replace(st, drbd=_observe_drbd(runner, host, drbd_targets, resolve))
    if pacemaker is True or (pacemaker is False and drbd):
        pacemaker = observe_pacemaker(runner, host)
    if pacemaker is not False and pacemaker is not None:
        # the device names of its Filesystem and iSCSILogicalUnit primitives, resolved as
        # the spec's paths are (stat, no process), at each observation
        st = dataclasses.replace(st, pacemaker=dataclasses.replace(
            pacemaker, devices={n: resolve(n) if n.startswith("/") else None
                                for n in pacemaker.device_names()}))
    st = _observe_used(runner, host, st, exported, resolve)
    if not any(iscsi_parts):
        return st
    from reconciler.adapters import iscsi  # read only for a spec with iSCSI tables (issue 22)
    seen = iscsi.observe(lambda p: runner.read(p, host=host), targets=iscsi_parts[0],
                         sessions=iscsi_parts[1], private=_private(runner, host),
                         chap_files=chap_files)
    return dataclasses.replace(st, iscsi=seen)


def _observe(runner: Runner, *, host: str, devices: Iterable[str], resolve: Resolver,
             now: float = 0.0, md_targets: MdTargets | None = None,
             lockd: bool = False, quorum: bool = False,
             reports: ReportMemo | None = None) -> state.HostState:
    result = runner.run(lvm.fullreport(host))
    if not result.ok:
        raise lvm.failure(result)
    # (The parse's own observed_at is not kept: the state below is stamped with ``now``.)
    parsed = (reports.parse(result.stdout, host) if reports is not None
              else lvm.parse_fullreport(result.stdout, host=host, observed_at=now))
    if lockd:
        parsed = dataclasses.replace(parsed, lockd=observe_lockd(runner, host, quorum))
    system_id = None
    if any(vg.system_id for vg in parsed.vgs.values()):
        sid = runner.run(lvm.systemid(host))
        if not sid.ok:
            raise lvm.failure(sid)
        system_id = lvm.parse_systemid(sid.stdout)
    devnos = {d: resolve(d) for d in devices}
    pollers = (observe_pollers(runner, host)
               if any(vg.pvmoves for vg in parsed.vgs.values()) else None)
    if md_targets is None:
        return state.HostState(host=host, vgs=parsed.vgs, pvs=parsed.pvs, devices=devnos,
                               observed_at=now, lvm_system_id=system_id, pollers=pollers,
                               lockd=parsed.lockd, vg_names_twice=parsed.vg_names_twice)
    for d in md_targets.devices:
        if d not in devnos:
            devnos[d] = resolve(d)
    arrays, blockdevs, ledger = _observe_md(runner, host, md_targets, devnos, resolve)
    return state.HostState(host=host, vgs=parsed.vgs, pvs=parsed.pvs, devices=devnos,
                           observed_at=now, md=arrays, blockdevs=blockdevs, ledger=ledger,
                           lvm_system_id=system_id, pollers=pollers, lockd=parsed.lockd,
                           vg_names_twice=parsed.vg_names_twice)


# -- LVM beyond the report: new PVs' signatures ---------------------------------------------


@dataclass(frozen=True)
class LvmTargets:
    """What the spec's VGs ask observation to look at beyond the one report."""

    # (VG, device) for each device a VG lists as a PV: probed while it is not a PV
    pvs: tuple[tuple[str, str], ...] = ()
    # (VG, LV) whose spec says resize_fs: the file system's superblock is read while active
    filesystems: tuple[tuple[str, str], ...] = ()


def lvm_targets(spec) -> LvmTargets:
    return LvmTargets(
        pvs=tuple(sorted({(n, d) for n, vg in spec.vg.items() for d in vg.pvs})),
        filesystems=tuple(sorted((n, lv_name) for n, vg in spec.vg.items()
                                 for lv_name, lv in vg.lv.items() if lv.resize_fs)))


def _read_filesystems(runner: Runner, host: str, lvs: tuple[tuple[str, str], ...],
                      st: state.HostState) -> dict[str, state.FileSystem]:
    """The superblock of each active ``resize_fs`` LV, read from its device (no process):
    whether a grow stopped between the LV and its file system. An inactive LV has no device
    to read, and nothing is planned for its file system."""
    out: dict[str, state.FileSystem] = {}
    for vg_name, lv_name in lvs:
        vg = st.vgs.get(vg_name)
        lv = vg.lvs.get(lv_name) if vg is not None else None
        if lv is None or not lv.attr.is_active or st.foreign_owner(vg) is not None:
            continue
        path = fs_adapter.device_path(vg_name, lv_name)
        try:
            data = runner.read_bytes(path, 0, fs_adapter.SPAN, host=host)
        except OSError as exc:
            out[lv.key] = state.FileSystem(kind="", error=f"{path}: {exc.strerror or exc}")
            continue
        if data is not None:
            out[lv.key] = fs_adapter.parse(data)
    return out


def _probe_new_pvs(runner: Runner, host: str, devices: tuple[tuple[str, str], ...],
                   st: state.HostState) -> dict[str, state.DiskProbe]:
    """``wipefs --no-act --json`` (the probe DRBD's create-md relies on, ``drbd.probe_disk``)
    of each device that exists and is not a PV: pvcreate is planned only on one found blank.
    A PV costs nothing here, so a settled host still starts one process per pass. Not in a
    VG with a missing PV: lvm shows that PV without its device ("[unknown]"), so the disk
    named may be it (a failed disk still exists); the VG waits for it whole anyway."""
    out: dict[str, state.DiskProbe] = {}
    for vg, dev in devices:
        if vg in st.vgs and st.vgs[vg].missing_pv_count:
            continue
        if dev in out or st.devices.get(dev) is None or st.pv_for(dev) is not None:
            continue  # not there (or not resolved: the tool judges), or a PV already
        from reconciler.adapters import drbd  # its wipefs probe: only for a PV to be made
        res = runner.run(drbd.probe_disk(dev, host=host))
        if not res.ok:
            why = (res.stderr.strip().splitlines() or [f"exit {res.rc}"])[-1]
            out[dev] = state.DiskProbe(dev, error=why)
            continue
        try:
            out[dev] = state.DiskProbe(dev, drbd.parse_wipefs(res.stdout))
        except ValueError as exc:
            raise errors.ObservationError(res.command.argv, str(exc), res.stdout) from None
    return out


# -- pvmove pollers: /proc only, and only while a pvmove is in flight -----------------------------


def observe_pollers(runner: Runner, host: str) -> state.Pollers | None:
    """Who polls pvmoves, from kernel files (no process): every /proc/PID/comm (and the
    cmdline of the pvmove, lvm and lvmpolld ones), the lvmpolld socket's directory and
    lvm.conf. None when /proc cannot be listed (a runner
    that has no /proc): then nobody is known to poll or not, and the loop judges by
    progress alone."""
    def read(path: str) -> str | None:
        try:
            return runner.read(path, host=host)
        except (PermissionError, ProcessLookupError):  # a process that went away, hidepid
            return None

    listing = read("/proc/")
    if not listing:
        return None
    processes: list[tuple[state.Process, str]] = []
    lvmpolld = None
    for entry in listing.split():
        if not entry.isdigit():
            continue
        comm = (read(f"/proc/{entry}/comm") or "").strip()
        if comm not in lvm.POLLER_COMMS:
            continue
        argv = lvm.parse_cmdline(read(f"/proc/{entry}/cmdline") or "")
        target = lvm.poller_target(comm, argv)
        if target is not None:
            processes.append((state.Process(int(entry), argv), target))
        elif lvm.is_lvmpolld(comm) and lvmpolld is None:
            lvmpolld = state.Process(int(entry), argv)
    sockets = (read(lvm.LVMPOLLD_SOCKET_DIR) or "").split()
    return state.Pollers(processes=tuple(processes), lvmpolld=lvmpolld,
                         lvmpolld_socket=lvm.LVMPOLLD_SOCKET in sockets,
                         use_lvmpolld=lvm.parse_use_lvmpolld(
                             [read(p) for p in lvm.LVM_CONF_FILES]))


def observe_lockd(runner: Runner, host: str, quorum: bool = False) -> state.Lockd:
    """lvmlockd's locks on this node (one process) and the dm devices (sysfs, no process:
    a table's length, holders, mounts). lvmlockd not reachable is a fact, not a failure:
    planning says what to start. ``quorum`` (a DLM VG is declared on this node): corosync's
    quorum too (``corosync-quorumtool -s``, read-only, a second process)."""
    from reconciler.adapters import lockd as lockd_adapter  # only for a shared VG (issue 22)
    info = runner.run(lockd_adapter.lockctl_info(host))
    if info.ok:
        spaces, locks = lockd_adapter.parse_info(info.stdout)
        running, problem = True, ""
    else:
        spaces, locks = {}, {}
        running = False
        problem = (info.stdout.strip() or info.stderr.strip() or f"exit {info.rc}").splitlines()[0]

    def read(path: str) -> str | None:
        return runner.read(path, host=host)

    mounts = md.parse_mountinfo(read("/proc/self/mountinfo") or "")
    dm: dict[str, state.DmDevice] = {}
    for kernel in md.parse_listing(read("/sys/block/")):
        if not kernel.startswith("dm-"):
            continue
        base = f"/sys/block/{kernel}"
        name, uuid, size, dev = (read(f"{base}/{f}") for f in ("dm/name", "dm/uuid", "size", "dev"))
        if name is None or size is None:
            continue  # removed between the listing and the read
        try:
            devno = md.parse_devno(dev) if dev else None
            dm[name.strip()] = state.DmDevice(
                kernel=kernel, name=name.strip(), uuid=(uuid or "").strip(),
                size=int(size) * md.SECTOR,
                holders=md.parse_listing(read(f"{base}/holders/")),
                mounts=mounts.get(devno, ()) if devno else ())
        except ValueError as exc:
            raise errors.ObservationError(("cat", f"{base}/..."), str(exc)) from None
    q = None
    if quorum:
        res = runner.run(lockd_adapter.quorum_status(host))
        q = lockd_adapter.parse_quorum(res.rc, res.stdout, res.stderr)
    return state.Lockd(running=running, lockspaces=spaces, locks=locks, dm=dm, problem=problem,
                       quorum=q)


def observe_pacemaker(runner: Runner, host: str) -> state.Pacemaker | None:
    """Pacemaker's configuration and status (issue 20), read-only, asked only on a host
    where its CIB file exists (a file read; no process otherwise): ``cibadmin --query`` (the
    live CIB; when it does not answer, the CIB file says what Pacemaker manages all the same)
    and ``crm_mon --output-as=xml`` (where each resource runs, in which role)."""
    try:
        cib_file = runner.read(pcmk.CIB_FILE, host=host)
    except OSError as exc:
        raise errors.ObservationError(("cat", pcmk.CIB_FILE), str(exc)) from None
    if cib_file is None:
        return None

    def said(res) -> str:
        return (res.stderr.strip().splitlines() or res.stdout.strip().splitlines()
                or [f"exit {res.rc}"])[-1]

    q = runner.run(pcmk.cib_query(host))
    text, source = ((q.stdout, "cibadmin --query") if q.ok else
                    (cib_file, f"{pcmk.CIB_FILE} (cibadmin --query: {said(q)})"))
    try:
        cib = pcmk.parse_cib(text)
    except ValueError as exc:
        raise errors.ObservationError(q.command.argv if q.ok else ("cat", pcmk.CIB_FILE),
                                      str(exc), text) from None
    mon = runner.run(pcmk.crm_mon(host))
    try:
        parsed = pcmk.parse_crm_mon(mon.stdout) if mon.stdout.strip() else None
    except ValueError:
        parsed = None
    if parsed is None or (not mon.ok and not parsed[2]):
        parsed = ({}, {}, f"crm_mon: {said(mon)} (rc {mon.rc})")
    return pcmk.pacemaker_state(cib, source, parsed)


def spec_devices(spec) -> list[str]:
    """Every device path a spec names (what ``observe`` must resolve)."""
    out: list[str] = []
    for vg in spec.vg.values():
        # (An LV's placement names none but its VG's pvs: ``spec.lvm.Vg``'s check refuses
        # any other device, and every ``Vg`` is validated; 10,000 LVs are not read here.)
        out.extend(vg.pvs)
        if vg.handover is not None:
            out.extend(vg.handover.pvs)
    for clone in spec.clone.values():
        out.extend((clone.source, clone.target))
    for target in getattr(spec, "iscsi_target", {}).values():
        out.extend(lun.device for lun in target.lun.values())
    for session in getattr(spec, "iscsi_session", {}).values():
        out.extend(session.disks())
    for res in getattr(spec, "drbd", {}).values():  # a backing disk, by device number too
        out.extend(me.disk for me in res.nodes.values())
    return sorted(set(out))


def exported_devices(spec) -> tuple[str, ...]:
    """The devices the spec's iSCSI targets name (what ``observe(exported=...)`` reads)."""
    return tuple(sorted({lun.device for target in getattr(spec, "iscsi_target", {}).values()
                         for lun in target.lun.values()}))


def _observe_used(runner: Runner, host: str, st: state.HostState, paths: Iterable[str],
                  resolve: Resolver) -> state.HostState:
    """``st`` with the holders and mounts of ``paths`` (kernel files only) in ``blockdevs``,
    for those it does not hold yet."""
    wanted = [p for p in paths if p not in st.blockdevs]
    if not wanted:
        return st

    def read(path: str) -> str | None:
        return runner.read(path, host=host)

    mounts = md.parse_mountinfo(read("/proc/self/mountinfo") or "")
    devnos = dict(st.devices)
    seen = dict(st.blockdevs)
    for p in wanted:
        if p not in devnos:
            devnos[p] = resolve(p)
        seen[p] = _block_device(read, p, devnos[p], mounts)
    return dataclasses.replace(st, devices=devnos, blockdevs=seen)


def _private(runner: Runner, host: str) -> Callable[[str], str | None]:
    """The reader of files that hold a secret: one this process may not read (a dry run as
    another user than root) is not known, never an error of the observation."""
    def read(path: str) -> str | None:
        try:
            return runner.read(path, host=host)
        except PermissionError:
            return None
    return read


def chap_files(spec) -> tuple[str, ...]:
    """The CHAP files the spec's iSCSI targets and sessions name."""
    return tuple(sorted({t.chap_file for table in ("iscsi_target", "iscsi_session")
                         for t in getattr(spec, table, {}).values() if t.chap_file}))


def iscsi_parts(spec) -> tuple[bool, bool]:
    """Which iSCSI sides the spec asks observation to read: (targets, sessions). A takeover
    reads the targets even when the spec has none: a VG is never taken over on a disk this
    host still exports, and a target table deleted from the spec does not end the export."""
    takeover = any(vg.takeover for vg in getattr(spec, "vg", {}).values())
    return (bool(getattr(spec, "iscsi_target", {})) or takeover,
            bool(getattr(spec, "iscsi_session", {})))


def md_targets(spec, ledger: str = DEFAULT_LEDGER) -> MdTargets:
    """What to read for the spec's clones. Without clones, the ledger alone (one file read,
    no md file): a record whose clone left the spec must be seen to be marked so."""
    clones = spec.clone
    if not clones:
        return MdTargets(arrays=(), devices=(), ledger=ledger)
    return MdTargets(arrays=tuple(sorted({c.md for c in clones.values()})),
                     devices=tuple(sorted({d for c in clones.values()
                                           for d in (c.source, c.target)})),
                     ledger=ledger)


# -- md: kernel files only ---------------------------------------------------------------------


def _observe_md(runner: Runner, host: str, targets: MdTargets,
                devnos: dict[str, tuple[int, int] | None], resolve: Resolver
                ) -> tuple[dict[str, state.MdArray], dict[str, state.BlockDevice], state.Ledger]:
    def read(path: str) -> str | None:
        return runner.read(path, host=host)

    ledger = _read_ledger(read, targets.ledger)
    # Records of a format-1 ledger name their devices by path only: identify those devices
    # too, so that planning can rewrite the records with identities.
    legacy = sorted({p for r in ledger.records.values() if not r.target_id
                     for p in (r.source, r.target)} - set(targets.devices))
    for p in legacy:
        if p not in devnos:
            devnos[p] = resolve(p)
    if not targets.arrays and not targets.devices:  # no clone declared: the ledger alone
        mounts: dict[tuple[int, int], tuple[str, ...]] = {}
        return {}, {p: _block_device(read, p, devnos.get(p), mounts) for p in legacy}, ledger
    text = read("/proc/mdstat")  # absent while the md module is not loaded: no arrays
    try:
        mdstat = md.parse_mdstat(text or "")
    except ValueError as exc:
        raise errors.ObservationError(("cat", "/proc/mdstat"), str(exc), text or "") from None
    mounts = md.parse_mountinfo(read("/proc/self/mountinfo") or "")
    wanted = {md.md_name(p): p for p in targets.arrays}
    arrays: dict[str, state.MdArray] = {}
    for name, seen in mdstat.items():
        if name in wanted:
            detailed = _md_array(read, wanted[name], seen, mounts)
            if detailed is not None:  # None: stopped between the two reads
                arrays[name] = detailed
        else:
            arrays[name] = state.MdArray(
                name=name, level=seen.level, metadata=seen.metadata, size=seen.blocks * md.KiB,
                members=tuple(state.MdMember(name=n, index=i) for n, i, _ in seen.members))
    blockdevs = {p: _block_device(read, p, devnos.get(p), mounts)
                 for p in (*targets.devices, *legacy)}
    return arrays, blockdevs, ledger


def _read_ledger(read: Callable[[str], str | None], path: str) -> state.Ledger:
    try:
        text = read(path)
    except OSError as exc:  # unreadable (permissions, I/O error): every clone is blocked
        return state.Ledger(path=path, problem=f"{path} cannot be read ({exc})")
    return md.parse_ledger(path, text)


def _md_array(read: Callable[[str], str | None], path: str, seen: md.MdstatArray,
              mounts: dict[tuple[int, int], tuple[str, ...]]) -> state.MdArray | None:
    attrs = {}
    for attr in ("array_state", "level", "raid_disks", "metadata_version", "sync_action",
                 "sync_completed", "degraded", "sync_speed", "sync_speed_min",
                 "sync_speed_max"):
        text = read(md.sysfs(path, attr))
        if text is None:
            return None
        attrs[attr] = text.strip()
    where = f"/sys/block/{seen.name}/md"
    try:
        members = []
        for name, index, _ in seen.members:
            flags, slot, devno = (read(md.sysfs(path, f"dev-{name}/{f}"))
                                  for f in ("state", "slot", "block/dev"))
            if flags is None or slot is None or devno is None:
                return None
            members.append(state.MdMember(name=name, index=index, devno=md.parse_devno(devno),
                                          slot=md.parse_slot(slot), flags=md.parse_flags(flags)))
        if seen.done_kib is not None and seen.total_kib:
            done, total = seen.done_kib * md.KiB, seen.total_kib * md.KiB
        else:
            done, total = md.parse_sync_completed(attrs["sync_completed"]) or (None, None)
        speed = md.parse_sync_speed(attrs["sync_speed"])
        if speed is None and seen.speed_kib is not None and done is not None:
            speed = float(seen.speed_kib * md.KiB)
        return state.MdArray(
            name=seen.name, level=attrs["level"], metadata=attrs["metadata_version"],
            size=seen.blocks * md.KiB, members=tuple(members),
            raid_disks=int(attrs["raid_disks"]), array_state=attrs["array_state"],
            sync_action=attrs["sync_action"], degraded=int(attrs["degraded"]),
            sync_done=done, sync_total=total, sync_speed=speed,
            speed_min=md.parse_speed_limit(attrs["sync_speed_min"]),
            speed_max=md.parse_speed_limit(attrs["sync_speed_max"]),
            holders=md.parse_listing(read(f"/sys/block/{seen.name}/holders/")),
            mounts=mounts.get(md.md_devno(path), ()))
    except ValueError as exc:
        raise errors.ObservationError(("cat", f"{where}/..."), str(exc),
                                      repr(attrs)) from None


def _block_device(read: Callable[[str], str | None], path: str,
                  devno: tuple[int, int] | None,
                  mounts: dict[tuple[int, int], tuple[str, ...]]) -> state.BlockDevice:
    """Size, holders, mounts and identity of a clone's device, its partitions' holders and
    mounts included (md refuses a disk whose partition is in use, but the reason is clearer
    said beforehand)."""
    if devno is None:
        return state.BlockDevice(path=path, devno=None)
    base = f"/sys/dev/block/{devno[0]}:{devno[1]}"
    try:
        name = md.parse_uevent(read(f"{base}/uevent") or "").get("DEVNAME", "")
        size_text = read(f"{base}/size")
        holders = list(md.parse_listing(read(f"{base}/holders/")))
        used = list(mounts.get(devno, ()))
        for part in md.partitions(name, md.parse_listing(read(f"{base}/"))):
            part_no = read(f"{base}/{part}/dev")
            holders += [f"{h} (on {part})" for h in
                        md.parse_listing(read(f"{base}/{part}/holders/"))]
            if part_no is not None:
                used += [f"{m} ({part})" for m in mounts.get(md.parse_devno(part_no), ())]
        size = int(size_text) * md.SECTOR if size_text is not None else None
    except ValueError as exc:
        raise errors.ObservationError(("cat", f"{base}/..."), str(exc)) from None
    return state.BlockDevice(path=path, devno=devno, name=name, size=size,
                             holders=tuple(holders), mounts=tuple(used),
                             identity=_identity(read, base, devno, size))


def _identity(read: Callable[[str], str | None], base: str, devno: tuple[int, int],
              size: int | None) -> str:
    """Who the device is (``state.BlockDevice.identity``), from sysfs: the first file of
    ``md.IDENTITY_FILES`` that says something; a partition by its disk's identity and its
    number (sysfs resolves ``M:m/..`` to the disk); device number and size as a last resort."""
    number = read(f"{base}/partition")
    if number is not None:
        disk = _stable_identity(read, f"{base}/..", devno[0])
        found = md.partition_identity(disk, number) if disk else None
    else:
        found = _stable_identity(read, base, devno[0])
    return found or md.fallback_identity(devno, size)


def _stable_identity(read: Callable[[str], str | None], base: str, major: int) -> str | None:
    if major == md.MD_MAJOR:
        found = md.md_identity(*(read(f"{base}/{f}") for f in md.MD_IDENTITY_FILES))
        if found:
            return found
    for rel, kind in md.IDENTITY_FILES:
        value = md.identity_value(read(f"{base}/{rel}"))
        if value:
            return f"{kind}:{value}"
    return None


# -- drbd: /proc/drbd, the resource files, the split-brain marker; wipefs only before create-md ---

@dataclass(frozen=True)
class DrbdTarget:
    name: str
    minor: int
    disk: str  # this node's declared backing disk
    primary: bool = False  # this node is declared primary (the fence incident is read then)


@dataclass(frozen=True)
class DrbdTargets:
    resources: tuple[DrbdTarget, ...] = ()
    node: str = ""  # --node: the ledger's records are this node's
    ledger: str = paths.DRBD_LEDGER


def drbd_ledger_path(clone_ledger: str) -> str:
    """The DRBD ledger lives next to the md clone ledger (/var/lib/reconciler/drbd.json)."""
    return posixpath.join(posixpath.dirname(clone_ledger) or "/", "drbd.json")


def drbd_targets(spec, node: str, ledger: str = paths.DRBD_LEDGER) -> DrbdTargets:
    """What to read for the DRBD resources this node takes part in."""
    return DrbdTargets(tuple(DrbdTarget(name, res.nodes[node].minor, res.nodes[node].disk,
                                        res.nodes[node].role == "primary")
                             for name, res in sorted(spec.drbd.items()) if node in res.nodes),
                       node=node, ledger=ledger)


def _observe_drbd(runner: Runner, host: str, targets: DrbdTargets,
                  resolve: Resolver) -> state.DrbdHost:
    """Kernel and config files only (the host name, /proc/drbd, the resource files, the
    DRBD ledger, the backing disks' identities from sysfs), except as below. Each resource
    file is parsed here, once: whether it carries the reconciler's marker and which disk it
    gives this node are in the state, so planning never parses it again. The exceptions:

    * one ``wipefs --no-act`` per backing disk whose resource is not attached in the kernel
      (down, or Diskless): what the disk holds decides whether metadata may be created on
      it, and is asked only then; when it holds DRBD metadata, one ``drbdmeta get-gi`` too
      (the refusal of metadata the reconciler cannot tie to the resource names them);
    * one ``drbdadm get-gi`` for a resource that is up while a split brain is seen (its
      incident identifier), while the ledger has no record of it on this disk (to
      record it), or while it is declared primary, is not, and has lost its peer (the
      incident a ``fenced`` declaration is bound to: the generation it holds, with the
      ledger's epoch and the ordinal of the loss it records).

    The boot id is read each pass (a loss of the peer is recorded with it and with
    /proc/drbd's counters), and /proc/sys/kernel/random/uuid once while the DRBD ledger has
    no epoch (the new ledger's)."""
    from reconciler.adapters import drbd  # read only for a spec with DRBD resources

    def read(path: str) -> str | None:
        try:
            return runner.read(path, host=host)
        except OSError as exc:
            raise errors.ObservationError(("cat", path), str(exc)) from None

    def gi_of(cmd) -> tuple[state.Gi | None, str | None]:
        res = runner.run(cmd)
        if not res.ok:
            return None, (res.stderr.strip().splitlines() or [f"exit {res.rc}"])[-1]
        try:
            return drbd.parse_gi(res.stdout), None
        except ValueError as exc:
            raise errors.ObservationError(res.command.argv, str(exc), res.stdout) from None

    def identity(path: str) -> str | None:
        """The stable identity of a backing disk, from sysfs (the md clone ledger's)."""
        devno = resolve(path)
        if devno is None:
            return None
        base = f"/sys/dev/block/{devno[0]}:{devno[1]}"
        try:
            size_text = read(f"{base}/size")
            size = int(size_text) * md.SECTOR if size_text is not None else None
        except ValueError as exc:
            raise errors.ObservationError(("cat", f"{base}/..."), str(exc)) from None
        return _identity(read, base, devno, size)

    hostname = read("/proc/sys/kernel/hostname")
    boot_id = (read("/proc/sys/kernel/random/boot_id") or "").strip() or None
    ledger = drbd.parse_ledger(targets.ledger, read(targets.ledger))
    if ledger.epoch is None and ledger.problem is None:
        # no ledger yet, or one of the earlier format: its next write carries a new epoch,
        # drawn here (the kernel's random UUID) so that planning stays pure
        text = read("/proc/sys/kernel/random/uuid")
        new_epoch = drbd.epoch_from_uuid(text)
        if new_epoch is None:
            raise errors.ObservationError(("cat", "/proc/sys/kernel/random/uuid"),
                                          "not a random UUID", text)
        ledger = dataclasses.replace(ledger, new_epoch=new_epoch)

    text = read(drbd.PROC)
    version, minors = "", {}
    if text is not None:
        try:
            version, minors = drbd.parse_proc(text)
        except ValueError as exc:
            raise errors.ObservationError(("cat", drbd.PROC), str(exc), text) from None
    mountinfo = read("/proc/self/mountinfo") or ""
    resources: dict[str, state.DrbdResourceState] = {}
    backing: dict[str, state.DrbdBacking] = {}
    for t in targets.resources:
        seen = minors.get(t.minor)
        attached = seen is not None and seen.disk not in ("Diskless", "Unconfigured")
        holders = read(f"/sys/block/drbd{t.minor}/holders/") if t.minor in minors else None
        split_brain = read(drbd.split_brain_marker(t.name)) is not None
        disk_id = identity(t.disk)
        gi = gi_error = None
        if attached:
            rec = ledger.records.get((t.name, targets.node))
            lost = t.primary and seen.role != "Primary" and not seen.connected
            if split_brain or lost or rec is None or rec.disk_id != disk_id:
                gi, gi_error = gi_of(drbd.get_gi(t.name, host=host))
        config = read(drbd.config_path(t.name))
        resources[t.name] = state.DrbdResourceState(
            name=t.name, config_path=drbd.config_path(t.name), config=config,
            managed=config is not None and drbd.is_managed(config, t.name),
            config_disk=drbd.config_disk(config, targets.node), split_brain=split_brain,
            holders=tuple((holders or "").split()), mounts=drbd.parse_mounts(mountinfo, t.minor),
            device=drbd.device(t.minor),
            devno=(drbd.DRBD_MAJOR, t.minor) if t.minor in minors else None,
            disk_id=disk_id, gi=gi, gi_error=gi_error)
        if not attached:
            res = runner.run(drbd.probe_disk(t.disk, host=host))
            if res.ok:
                try:
                    sigs = drbd.parse_wipefs(res.stdout)
                except ValueError as exc:
                    raise errors.ObservationError(res.command.argv, str(exc), res.stdout) from None
                b_gi = b_err = None
                if "drbd" in sigs:
                    b_gi, b_err = gi_of(drbd.get_gi_down(t.minor, t.disk, host=host))
                backing[t.disk] = state.DrbdBacking(t.disk, sigs, gi=b_gi, gi_error=b_err)
            else:
                why = (res.stderr.strip().splitlines() or [f"exit {res.rc}"])[-1]
                backing[t.disk] = state.DrbdBacking(t.disk, error=why)
    return state.DrbdHost(loaded=text is not None, version=version, minors=minors,
                          resources=resources, backing=backing,
                          hostname=(hostname or "").strip() or None, ledger=ledger,
                          boot_id=boot_id)
