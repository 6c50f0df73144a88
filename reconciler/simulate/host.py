"""``SimulatedHost``: a Runner that answers LVM commands from an in-memory model.

It stands in for a machine in tests and benchmarks. ``run`` never raises for a command
that fails (it returns lvm's exit code and messages) but raises ``UnsupportedCommand`` for
any command or flag it does not model, so a planner change can never pass on a silent
success. Long operations (pvmove, raid1 resync) advance with the virtual ``clock`` at
``rate_bytes_per_s``. Fault injection: ``fail_next`` (one-shot failures) and
``crash_after``/``recover`` (the host dies after n more mutating commands; after the
"reboot" pvmoves wait for a bare ``pvmove --background``, raid resync carries on).
"""

from __future__ import annotations

from collections.abc import Callable

from reconciler.errors import UnsupportedCommand
from reconciler.runner import Command, CommandResult

from . import lvm_tools, ops
from .clock import SimClock
from .model import DEFAULT_EXTENT_SIZE, LV, PV, VG, Model, NoSpace, pe_count_for

Match = Callable[[Command], bool] | tuple[str, ...]


class SimulatedCrash(BaseException):
    """The simulated host went down. A BaseException so that no ``except Exception`` in
    the code under test can swallow it: it must end the pass like a killed process."""


class SimulatedHost:
    """A host with block devices and lvm2 2.03; implements the Runner protocol."""

    def __init__(self, name: str = "local", clock: SimClock | None = None,
                 rate_bytes_per_s: float = 64 * 2**20, seed: str = "sim"):
        self.name = name
        self.clock = clock or SimClock()
        self.rate_bytes_per_s = rate_bytes_per_s
        self.default_extent_size = DEFAULT_EXTENT_SIZE
        self.model = Model(seed)
        self.calls: list[Command] = []
        self.started = 0
        self._faults: list[tuple[Match, int, str]] = []
        self._crash_budget: int | None = None
        self.crashed = False
        self.clock.on_advance(self._progress)

    # -- Runner --------------------------------------------------------------------------

    def run(self, cmd: Command) -> CommandResult:
        if self.crashed:
            raise SimulatedCrash(f"host {self.name} is down; not running: {cmd}")
        if cmd.host != self.name:
            raise UnsupportedCommand(f"command for host {cmd.host!r} sent to simulated host "
                                     f"{self.name!r}: {cmd}")
        handler, mutates = lvm_tools.lookup(cmd.argv)
        self.calls.append(cmd)
        self.started += 1
        fault = self._take_fault(cmd)
        if fault is not None:
            rc, stdout, stderr = fault[1], "", fault[2]
        else:
            out = handler(self, cmd.argv)
            rc, stdout, stderr = out.rc, "".join(out.stdout), "".join(out.stderr)
        if mutates and self._crash_budget is not None:
            self._crash_budget -= 1
            if self._crash_budget <= 0:
                self._crash()
        # virtual time: a command takes none, so runs are deterministic
        return CommandResult(command=cmd, rc=rc, stdout=stdout, stderr=stderr, duration=0.0)

    def read(self, path: str, *, host: str = "local") -> str | None:
        """Kernel interface files. Only what the model knows is answered: /proc/mdstat
        (no md arrays are modelled, so none are listed); any other path raises."""
        if self.crashed:
            raise SimulatedCrash(f"host {self.name} is down; cannot read {path}")
        if host != self.name:
            raise UnsupportedCommand(f"read for host {host!r} sent to simulated host "
                                     f"{self.name!r}: {path}")
        if path == "/proc/mdstat":
            return "Personalities : \nunused devices: <none>\n"
        raise UnsupportedCommand(f"kernel file not modelled by the simulator: {path}")

    # -- fault injection -------------------------------------------------------------------

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

    def recover(self) -> None:
        """Reboot: commands run again; pvmove pollers are gone (the on-disk pvmove state
        stays, back to its last finished segment), raid resync resumes by itself."""
        self.crashed = False
        for vg in self.model.vgs.values():
            for mirror in ops.pvmove_lvs(vg):
                ops.interrupt_pvmove(mirror)

    # -- progress ----------------------------------------------------------------------------

    def _progress(self, before: float, now: float) -> None:
        if self.crashed or not self.model.active:
            return
        for lv in list(self.model.active):
            step = self.rate_bytes_per_s * (now - before) / lv.vg.extent_size
            if lv.kind == "pvmove":
                if lv.polling:
                    lv.moved = min(float(lv.extents), lv.moved + step)
                    if lv.moved >= lv.extents:
                        ops.finish_pvmove(self.model, lv)
            elif lv.kind == "raid1" and lv.recovering:
                lv.synced = min(float(lv.extents), lv.synced + step)
                if lv.synced >= lv.extents:
                    lv.recovering = set()
                    self.model.active.discard(lv)
            else:
                self.model.active.discard(lv)

    # -- builder API (tests and seeding) -------------------------------------------------------

    def add_device(self, path: str, size_bytes: int, aliases: tuple[str, ...] = (), *,
                   major: int | None = None, minor: int | None = None) -> None:
        self.model.add_device(path, size_bytes, tuple(aliases), major, minor)

    def resolve_device(self, path: str) -> tuple[int, int] | None:
        dev = self.model.device(path)
        return (dev.major, dev.minor) if dev else None

    def add_pv(self, path: str) -> None:
        dev = self.model.device(path)
        if dev is None:
            raise ValueError(f"no device {path}")
        if dev.path in self.model.pvs:
            raise ValueError(f"{path} is already a PV")
        self.model.pvs[dev.path] = PV(dev, self.model.new_uuid())

    def add_vg(self, name: str, pv_paths: list[str] | tuple[str, ...],
               extent_size: int = DEFAULT_EXTENT_SIZE, *, lock_type: str = "") -> None:
        if name in self.model.vgs:
            raise ValueError(f"VG {name} exists")
        if extent_size <= 0 or extent_size & (extent_size - 1):
            raise ValueError(f"extent size must be a power of two, got {extent_size}")
        vg = VG(name, self.model.new_uuid(), extent_size, lock_type)
        pvs = []
        for path in pv_paths:
            pv = self.model.pv(path)
            if pv is None:
                self.add_pv(path)
                pv = self.model.pv(path)
            if pv.vg is not None or pv in pvs:
                raise ValueError(f"{path} is already in VG {pv.vg.name if pv.vg else name}")
            if pe_count_for(pv.device.size, extent_size) < 1:
                raise ValueError(f"{path} is too small for a PV")
            pvs.append(pv)
        ops.join_vg(vg, pvs)
        self.model.vgs[name] = vg

    def add_lv(self, vg: str, name: str, size_bytes: int,
               pvs: list[str] | tuple[str, ...] | None = None, *,
               layout: list[tuple[str, int]] | None = None) -> None:
        """Create a linear LV, allocated like lvm (on ``pvs`` only, when given); ValueError
        when it cannot be placed. ``layout`` instead pins how many extents go on which PV,
        in that order (to re-create a captured host); its counts must add up to the size."""
        group = self.model.vgs.get(vg)
        if group is None:
            raise ValueError(f"no VG {vg}")
        if name in group.lvs:
            raise ValueError(f"LV {vg}/{name} exists")
        if size_bytes <= 0:
            raise ValueError("size must be positive")
        allowed = group.pvs if pvs is None else [self._vg_pv(group, p) for p in pvs]
        extents = -(-size_bytes // group.extent_size)
        if layout is not None:
            if (pvs is not None or sum(n for _, n in layout) != extents
                    or len({p for p, _ in layout}) != len(layout)):
                raise ValueError(f"layout {layout} does not hold the {extents} extents of "
                                 f"{vg}/{name} (and excludes pvs=)")
            try:
                ops.create_lv_on(self.model, group, name, [
                    (self._vg_pv(group, path), n) for path, n in layout])
            except NoSpace as e:
                raise ValueError(f"cannot allocate {vg}/{name}: {e}") from None
            return
        try:
            ops.create_lv(self.model, group, name, extents, allowed)
        except NoSpace as e:
            raise ValueError(f"cannot allocate {vg}/{name}: {e}") from None

    def _vg_pv(self, vg: VG, path: str) -> PV:
        pv = self.model.pv(path)
        if pv is None or pv.vg is not vg:
            raise ValueError(f"{path} is not a PV of {vg.name}")
        return pv

    # -- inspection helpers for tests ----------------------------------------------------------

    def lv(self, vg: str, name: str) -> LV:
        return self.model.vgs[vg].lvs[name]

    def vg(self, name: str) -> VG:
        return self.model.vgs[name]

    def pv(self, path: str) -> PV:
        pv = self.model.pv(path)
        if pv is None:
            raise KeyError(path)
        return pv
