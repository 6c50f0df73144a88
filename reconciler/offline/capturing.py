"""Capture: what a pass observes on a host (or on a simulated one), kept in a directory.

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

``reconcile capture DIR --simulate SOURCE`` captures a simulated host the same way (tests
capture one mid-operation with ``capture_simulated``); a node of the simulated lvmlockd
cluster is refused, as its capture could not be seeded back (``seeding``).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import stat as stat_mod
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler import errors, observing, paths, state
from reconciler.adapters import drbd, iscsi, lvm, md
from reconciler.offline.files import (BLOCK_DEVICES, COMMANDS_FILE, DRBD_DIR, FORMAT,
                                      FULLREPORT_FILE, HOSTNAME, KERNEL_FILES, MANIFEST_FILE,
                                      VERSION_FILE, Inventory)
from reconciler.offline.seeding import simulated_host
from reconciler.runner import CommandResult, Runner

if TYPE_CHECKING:
    from reconciler.simulate import SimulatedHost

# Where stable names of block devices live (udev's symlinks, device-mapper's names).
ALIAS_DIRS = ("/dev/disk/by-id", "/dev/disk/by-path", "/dev/disk/by-uuid",
              "/dev/disk/by-label", "/dev/disk/by-partuuid", "/dev/mapper")


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

    def read_bytes(self, path: str, offset: int, length: int, *,
                   host: str = "local") -> bytes | None:
        return self.inner.read_bytes(path, offset, length, host=host)

    def openers(self, paths, *, host: str = "local"):
        return self.inner.openers(paths, host=host)

    def claimed(self, paths, *, host: str = "local"):
        return self.inner.claimed(paths, host=host)


def optional_part(part: str, not_modelled: dict[str, str], observe):
    """Run one subsystem's observation; a simulated host that does not model that subsystem
    at all (``UnsupportedCommand``: nothing of it exists there) is noted, not fatal. A real
    host never raises it: an absent subsystem is an absent file or a failed command there."""
    try:
        return observe()
    except errors.UnsupportedCommand as exc:
        not_modelled[part] = str(exc)
        return None


def local_drbd_configs() -> list[str]:
    try:
        return [f"{DRBD_DIR}/{n}" for n in sorted(os.listdir(DRBD_DIR)) if n.endswith(".res")]
    except OSError:
        return []


def _observe_others(rec: "_Recorder", drbd_configs: list[str],
                    drbd_ledger: str = paths.DRBD_LEDGER) -> dict[str, str]:
    """lvmlockd, iSCSI and DRBD, every part enabled: what they read and ran is recorded."""
    skipped: dict[str, str] = {}
    optional_part("lvmlockd", skipped, lambda: observing.observe_lockd(rec, "local"))
    optional_part("iscsi targets", skipped,
              lambda: iscsi.observe(lambda p: rec.read(p), targets=True, sessions=False))
    optional_part("iscsi sessions", skipped,
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
    optional_part("drbd", skipped, drbd_part)
    # uname -n: a DRBD pass checks --node against it
    optional_part("hostname", skipped, lambda: rec.read(HOSTNAME))
    return skipped


def local_inventory() -> Inventory:
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


def simulated_inventory(host) -> Inventory:
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
        if sim.lockd_cluster:
            raise errors.ReconcilerError(
                f"--simulate {simulate} is a node of a simulated lvmlockd cluster; a capture "
                f"of it could not be replayed (the simulator cannot seed lvmlockd state from a "
                f"capture yet): run it with 'reconcile --simulate {simulate} ...' directly")
        return capture_simulated(directory, sim.host, name=simulate, node=sim.node,
                                 ledger=ledger)
    from reconciler.runner import SubprocessRunner
    return _capture(directory, SubprocessRunner(), local_inventory(), observing.resolve_local,
                    socket.gethostname(), ledger, drbd_configs=local_drbd_configs())


def capture_simulated(directory: str, host: SimulatedHost, *, name: str = "sim",
                      node: str | None = None, ledger: str = observing.DEFAULT_LEDGER) -> dict:
    """Capture a ``SimulatedHost`` as it is now (tests capture one mid-operation); ``node``
    is the node it plays, the default ``--node`` of a run from the capture."""
    configs = sorted(p for p in host.md.files
                     if p.startswith(f"{DRBD_DIR}/") and p.endswith(".res"))
    return _capture(directory, host, simulated_inventory(host), host.resolve_device,
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
    (out / VERSION_FILE).write_text(version.stdout, encoding="utf-8")
    (out / FULLREPORT_FILE).write_text(report.stdout, encoding="utf-8")
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

