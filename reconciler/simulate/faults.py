"""Fault injection on a simulated host: one-shot command failures, crashes (``crash_after``,
the fsadm of ``lvextend --resizefs``) and failing devices.

``fail_device`` makes every I/O to a device fail (qemu's drive_del in the lab): md marks it
faulty, lvm sees its PV missing and the VG partial. ``recover`` (the reboot) is the
machine's, since every subsystem takes part in it.

``Faults`` is a room of ``machine.Machine`` (its state: ``_faults``, ``_crash_budget``,
``crashed``, ``fsadm_fault``).
"""

from __future__ import annotations

from collections.abc import Callable

from reconciler.runner import Command

from .model import RAID_NOTICE_DELAY

Match = Callable[[Command], bool] | tuple[str, ...]


class Faults:
    """What goes wrong on purpose: a command, the host, a device."""

    def fail_next(self, match: Match, rc: int, stderr: str) -> None:
        """The next command that ``match`` accepts (a predicate, or an argv prefix) fails
        with ``rc`` and ``stderr`` without touching the model. One-shot."""
        self._faults.append((match, rc, stderr))

    def _take_fault(self, cmd: Command) -> tuple[Match, int, str] | None:
        for i, fault in enumerate(self._faults):
            match = fault[0]
            hit = match(cmd) if callable(match) else cmd.argv[:len(match)] == tuple(match)
            if hit:
                return self._faults.pop(i)
        return None

    def fail_fsadm(self, stderr: str) -> None:
        """The next ``lvextend --resizefs`` grows the LV, then its fsadm fails with
        ``stderr`` (lvm then says "/sbin/fsadm failed: 1" and exits 5); the file system
        keeps its size. One-shot."""
        self.fsadm_fault = stderr

    def crash_in_fsadm(self) -> None:
        """The next ``lvextend --resizefs`` grows the LV (its metadata committed), then the
        host goes down before fsadm touches the file system. One-shot."""
        self.fsadm_fault = "crash"

    def crash_after(self, n: int) -> None:
        """After ``n`` more mutating commands, every further command raises SimulatedCrash."""
        if n < 0:
            raise ValueError("n must be >= 0")
        self._crash_budget = n
        if n == 0:
            self._crash()

    def _crash(self) -> None:
        self.crashed = True
        self._crash_budget = None

    def fail_device(self, path: str) -> None:
        """Every I/O to the device fails from now on (qemu's drive_del in the lab): as a
        member being recovered or written to, md marks it faulty; lvm cannot read its label,
        so a PV on it is missing ("[unknown]") and its VG partial; a raid1 image on it is
        seen out of sync once md notices (``RAID_NOTICE_DELAY`` later)."""
        dev = self._device(path)
        if dev.failed_at is None:
            dev.failed_at = self.clock.now()
        self.md.failed.add(dev)
        for array in self.md.arrays.values():
            for m in array.members:
                if m.device is dev and array.recovering is m:
                    self.md.fail_member(array, m)
        # an LVM raid1 image being recovered onto it fails at once and the recovery ends:
        # lvm then shows 100.00 and idle (lab: raid1_new_leg_failed_mid_sync, and the
        # issue-13 link cut), and the leg needs a refresh once the device is back
        pv = self.model.pvs.get(dev.path)
        if pv is not None and pv.vg is not None:
            for lv in pv.vg.lvs.values():
                if lv.kind != "raid1" or not lv.is_active:
                    continue
                for i in sorted(lv.recovering):
                    if pv in lv.images[i].pvs() or pv in lv.metas[i].pvs():
                        lv.recovering.discard(i)
                        lv.refresh.add(i)
                if not lv.recovering:
                    self.model.active.discard(lv)

    def restore_device(self, path: str) -> None:
        """A failed device works again (a transient failure: a dm table swapped back, a
        path restored): lvm finds its PV again. A raid1 leg on it that md had noticed
        failed (``RAID_NOTICE_DELAY`` after the failure) stays failed in the kernel until
        ``lvchange --refresh``: lv_health_status "refresh needed", as recorded in the lab
        (raid1_refresh_needed). The VG metadata written while the PV was missing marks it
        MISSING in lvm (vgextend --restoremissing): not modelled, refused."""
        dev = self._device(path)
        if dev.failed_at is None:
            raise ValueError(f"{path} has not failed")
        pv = self.model.pvs.get(dev.path)
        if pv is not None and pv.hint == "[unknown]":
            raise ValueError(f"{path}: VG metadata was written while its PV was missing; lvm "
                             f"then needs vgextend --restoremissing, which is not modelled")
        noticed = self.clock.now() - dev.failed_at >= RAID_NOTICE_DELAY
        if pv is not None and pv.vg is not None:
            for lv in pv.vg.lvs.values():
                if lv.kind != "raid1" or not lv.is_active:
                    continue
                for i, (img, meta) in enumerate(zip(lv.images, lv.metas)):
                    if (pv in img.pvs() or pv in meta.pvs()) and noticed:
                        lv.refresh.add(i)  # (one recovering when it failed is in already)
        dev.failed_at = None
        self.md.failed.discard(dev)
