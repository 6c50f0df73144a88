"""``SimulatedHost``: a Runner that answers LVM and md commands from an in-memory model.

It stands in for a machine in tests and benchmarks. ``run`` never raises for a command
that fails (it returns the tool's exit code and messages) but raises ``UnsupportedCommand``
for any command or flag it does not model, so a planner change can never pass on a silent
success. Long operations (pvmove, raid1 resync, md recovery) advance with the virtual
``clock`` at ``rate_bytes_per_s`` (md's recovery also no faster than the array's
``sync_speed_max``). Fault injection: ``fail_next`` (one-shot failures),
``crash_after``/``recover`` (the host dies after n more mutating commands; after the
"reboot" pvmoves wait for a bare ``pvmove --background``, raid resync carries on, md arrays
built without superblock are gone, nothing is mounted, files are kept) and ``fail_device``
(every I/O to a device fails: md marks it faulty, lvm sees its PV missing and the VG
partial, as recorded in the lab with qemu's drive_del).

Its rooms: ``machine.Machine`` (the host's state, builder API, reboot, virtual time) with
``kernel.Kernel``, ``processes.Processes`` and ``faults.Faults``; the tools' handlers in
``lvm_tools``, ``md_tools``, ``drbd_tools`` and ``iscsi_tools`` work on a ``Machine``. This
module is the top: ``SimulatedHost`` adds the Runner (``run``, ``read``, ``read_bytes``),
dispatching each command to its tool.

``read`` answers the kernel files of the model (/proc/mdstat, /proc/self/mountinfo, md's
and block devices' sysfs) and the host's own files (the clone ledger); see
``md_tools.read``.
``read_bytes`` answers an active LV's first bytes: the superblock of the file system
``mkfs`` put there, at its current size (``fs_model``). ``fail_fsadm`` and ``crash_in_fsadm``
stop the next ``lvextend --resizefs`` after the LV grew and before its file system did.
"""

from __future__ import annotations

from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command, CommandResult, check_read_bounds

from . import drbd_tools, fs_model, iscsi_tools, lvm_tools, md_tools, pacemaker_tools
from .faults import Match
from .machine import Machine
from .tool import SimulatedCrash

__all__ = ["Match", "SimulatedCrash", "SimulatedHost"]


class SimulatedHost(Machine):
    """A host with block devices and lvm2 2.03; implements the Runner protocol."""

    def run(self, cmd: Command) -> CommandResult:
        if self.crashed:
            raise SimulatedCrash(f"host {self.name} is down; not running: {cmd}")
        if cmd.host != self.name:
            raise UnsupportedCommand(f"command for host {cmd.host!r} sent to simulated host "
                                     f"{self.name!r}: {cmd}")
        tool = ((iscsi_tools.lookup(cmd.argv) if self.iscsi is not None else None)
                or md_tools.lookup(cmd.argv) or drbd_tools.lookup(cmd.argv)
                or pacemaker_tools.lookup(cmd.argv) or lvm_tools.lookup(cmd.argv))
        if tool is None:
            raise UnsupportedCommand(f"command not modelled by the simulator: {' '.join(cmd.argv)}")
        if cmd.input is not None and not tool.stdin:
            raise UnsupportedCommand(f"stdin is not modelled for: {cmd}")
        self.calls.append(cmd)
        self.started += 1
        fault = self._take_fault(cmd)
        fabric = self.iscsi.fabric if self.iscsi is not None else None
        shared = fabric is not None and tool.mutates and tool.lvm
        if fault is not None:
            rc, stdout, stderr = fault[1], "", fault[2]
        else:
            before = fabric.views(self) if shared else {}
            out = tool.handler(self, cmd.argv, cmd.input)
            rc, stdout, stderr = out.rc, "".join(out.stdout), "".join(out.stderr)
            if shared:  # LVM metadata written on a disk another host sees
                fabric.share(self, before)
        if tool.mutates and self._crash_budget is not None:
            self._crash_budget -= 1
            if self._crash_budget <= 0:
                self._crash()
        # virtual time: a command takes none, so runs are deterministic
        return CommandResult(command=cmd, rc=rc, stdout=stdout, stderr=stderr, duration=0.0)

    def read(self, path: str, *, host: str = "local") -> str | None:
        """Kernel interface files the model knows (any other /proc or /sys path raises
        ``UnsupportedCommand``), directory listings for sysfs paths ending in '/', and the
        host's own files (None when absent)."""
        if self.crashed:
            raise SimulatedCrash(f"host {self.name} is down; cannot read {path}")
        if host != self.name:
            raise UnsupportedCommand(f"read for host {host!r} sent to simulated host "
                                     f"{self.name!r}: {path}")
        proc = self._proc_file(path)
        if proc is not None:
            return proc or None
        if self.iscsi is not None and iscsi_tools.handles(path):
            return iscsi_tools.read(self, path)
        if path == "/proc/sys/kernel/hostname":
            if self.hostname is None:
                raise UnsupportedCommand(f"host {self.name} has no hostname set (SimulatedHost.hostname)")
            return self.hostname + "\n"
        if path == "/proc/sys/kernel/random/boot_id":
            return self.boot_id + "\n"
        if path == "/proc/sys/kernel/random/uuid":
            return self.random_uuid() + "\n"
        if path == "/proc/drbd" or path.startswith("/sys/block/drbd"):
            return drbd_tools.read(self, path)
        if path == "/proc/self/mountinfo":
            return (md_tools.read(self, path) or "") + drbd_tools.mount_lines(self)
        return md_tools.read(self, path)

    def read_bytes(self, path: str, offset: int, length: int, *,
                   host: str = "local") -> bytes | None:
        """Bytes of an LV's device (``/dev/mapper/VG-LV``, ``/dev/VG/LV``): its file
        system's superblock as ``mkfs`` recorded it and grown since (``fs_model``), zeros
        elsewhere. None for an inactive LV (no device node) or no such path; EIO when its
        first extent is on a missing PV. Any other device's bytes are not modelled."""
        if self.crashed:
            raise SimulatedCrash(f"host {self.name} is down; cannot read {path}")
        if host != self.name:
            raise UnsupportedCommand(f"read_bytes for host {host!r} sent to simulated host "
                                     f"{self.name!r}: {path}")
        check_read_bounds(offset, length)
        lv = self.lv_by_path(path)
        if lv is None:
            if self.model.device(path) is not None or self.md.array(path) is not None:
                raise UnsupportedCommand(f"the bytes of {path} are not modelled (LVs only)")
            return None
        if not lv.is_active:
            return None
        first = lv.pvs()[:1]
        if first and first[0].missing:
            raise OSError(5, "Input/output error", path)
        size = lv.extents * lv.vg.extent_size
        data = fs_model.head(lv.fs, lv.fs_size, lv.fs_made)
        end = min(offset + length, size)
        if offset >= end:
            return b""
        return (data + bytes(max(0, end - len(data))))[offset:end]
