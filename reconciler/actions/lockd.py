"""Cluster LVM (lvmlockd) transitions: create a shared VG, start its lockspace, activate or
deactivate an LV on this node in a lock mode, reload a node's dm table after a resize
elsewhere, remove a stale dm device.

Each is checked by observation, never by exit code alone: ``vgchange --lock-start`` can
exit 0 without a lockspace (a host_id another live node holds; lab), so its ``is_done``
asks lvmlockd's own list of lockspaces. A step that finds the lock held by another node
fails with ``FailureKind.PEER`` and is deferred (the executor's rule): that wait is how an
LV moves between nodes, with no lock or message of our own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from reconciler import errors, state
from reconciler.actions.base import Symbol
from reconciler.state.taking import Effect, Take
from reconciler.actions.lvm import CreateLv, CreateVg, LvmAction
from reconciler.adapters import lockd
from reconciler.runner import Command, CommandResult

MODE_WORDS = {"ex": "exclusive", "sh": "shared", "active": "active", "off": "inactive",
              "off-local": "inactive"}


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSharedVg(CreateVg):
    """``vgcreate --shared``: run by the VG's ``create_on`` node only (same key as CreateVg,
    so the steps that wait for the VG wait for this one)."""

    lock_type: str = "sanlock"
    verb: ClassVar[str] = "vgcreate --shared"

    def describe(self) -> str:
        return f"vgcreate --shared ({self.lock_type}) on {', '.join(self.devices)}"

    def commands(self) -> tuple[Command, ...]:
        return (lockd.vgcreate_shared(self.vg, self.devices, self.lock_type, self.extent_size,
                                      host=self.host),)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSharedLv(CreateLv):
    """``lvcreate --activate n`` in a shared VG: activation is the activation steps' job."""

    def describe(self) -> str:
        return CreateLv.describe(self) + ", inactive (shared VG)"

    def commands(self) -> tuple[Command, ...]:
        return (lockd.lvcreate_inactive(self.vg, self.lv, self.size, self.pvs, host=self.host),)


@dataclass(frozen=True, slots=True, kw_only=True)
class StartLockspace(LvmAction):
    """``vgchange --lock-start``. Done when lvmlockd lists the VG's lockspace on this node."""

    vg: str
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "vgchange --lock-start"

    @property
    def key(self) -> str:
        return f"vg:{self.vg}:lock-start"

    @property
    def object(self) -> str:
        return f"vg {self.vg}"

    def describe(self) -> str:
        return ("start the lockspace on this node (an exit 0 without a lockspace means this "
                "node's host_id is used by another live node)")

    def commands(self) -> tuple[Command, ...]:
        return (lockd.lock_start(self.vg, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        return st.lockd is not None and self.vg in st.lockd.lockspaces


def _lv(st: state.HostState, vg: str, lv: str) -> state.Lv | None:
    g = st.vgs.get(vg)
    return g.lvs.get(lv) if g else None


@dataclass(frozen=True, slots=True, kw_only=True)
class SetActivation(LvmAction):
    """``lvchange -aey | -asy | -ay | -aln | -an`` of ``vg/lv`` on this node."""

    vg: str
    lv: str
    mode: str  # "ex" | "sh" | "active" | "off" (-aln, shared VG) | "off-local" (-an)
    # The other nodes that may hold the lock, with what the spec declares there (lvmlockd's
    # "locked by other host" names none): a refusal is then a wait on them, named.
    holders: str = ""
    declared: str = ""  # what the spec declares on each of them ("node-a inactive; ...")
    verb: ClassVar[str] = "lvchange"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.lv}:{'deactivate' if self.mode.startswith('off') else 'activate'}"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.lv}"

    @property
    def symbol(self) -> Symbol:  # type: ignore[override]
        return Symbol.DELETE if self.mode.startswith("off") else Symbol.CREATE

    def describe(self) -> str:
        return f"lvchange {lockd.ACTIVATE_FLAG[self.mode]} ({MODE_WORDS[self.mode]} on this node)"

    def commands(self) -> tuple[Command, ...]:
        return (lockd.lvchange_activate(self.vg, self.lv, lockd.ACTIVATE_FLAG[self.mode],
                                        host=self.host),)

    def failure(self, result: CommandResult) -> errors.CommandFailed:
        exc = LvmAction.failure(self, result)  # slots=True: no zero-argument super()
        if exc.kind is errors.FailureKind.PEER and self.holders and exc.peer is None:
            exc.peer = (self.holders, f"release the lock on {self.vg}/{self.lv}: deactivate it "
                                      f"there, or a crashed holder's lease expires (the spec "
                                      f"declares {self.declared}; lvmlockd says another host "
                                      f"holds it, not which)")
        return exc

    def takes_devices(self) -> tuple[Take, ...]:
        if not self.mode.startswith("off"):
            return ()
        return (Take(f"/dev/{self.vg}/{self.lv}", Effect.TAKES_AWAY, "the LV"),)

    def is_done(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        if lv is None:
            return False
        here = state.activation_here(st, lv)
        if self.mode.startswith("off"):
            return here == "off"
        if self.mode == "active":
            return here != "off"
        return here == self.mode

    def waiting_for(self, st: state.HostState) -> str | None:
        lv = _lv(st, self.vg, self.lv)
        why = state.open_state(st, lv) if lv is not None else None
        if self.mode.startswith("off") and why:
            return f"the LV is {why} on this node; it is never deactivated"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshLv(LvmAction):
    """``lvchange --refresh``: reload this node's dm table from the metadata after another
    node resized the LV (lvmlockd does not do it with sanlock; lab). Done when the dm table
    (sysfs size) is as long as the LV."""

    vg: str
    lv: str
    verb: ClassVar[str] = "lvchange --refresh"

    @property
    def key(self) -> str:
        return f"lv:{self.vg}/{self.lv}:refresh"

    @property
    def object(self) -> str:
        return f"lv {self.vg}/{self.lv}"

    def describe(self) -> str:
        return "lvchange --refresh (this node's table is shorter than the LV)"

    def commands(self) -> tuple[Command, ...]:
        return (lockd.lvchange_refresh(self.vg, self.lv, host=self.host),)

    def is_done(self, st: state.HostState) -> bool:
        lv = _lv(st, self.vg, self.lv)
        dm = st.lockd.dm_for(self.vg, self.lv) if st.lockd else None
        return lv is None or dm is None or dm.size >= lv.size


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveStaleDm(LvmAction):
    """``dmsetup remove`` of a dm device named for an LV the metadata no longer has."""

    name: str
    vg: str
    symbol: ClassVar[Symbol] = Symbol.DELETE
    verb: ClassVar[str] = "dmsetup remove"

    @property
    def key(self) -> str:
        return f"dm:{self.name}:remove"

    @property
    def object(self) -> str:
        return f"dm {self.name}"

    def describe(self) -> str:
        return f"dmsetup remove (stale: VG {self.vg} no longer has this LV)"

    def commands(self) -> tuple[Command, ...]:
        return (lockd.dmsetup_remove(self.name, host=self.host),)

    def takes_devices(self) -> tuple[Take, ...]:
        return (Take(f"/dev/mapper/{self.name}", Effect.TAKES_AWAY),)

    def is_done(self, st: state.HostState) -> bool:
        return st.lockd is not None and self.name not in st.lockd.dm
