"""iSCSI actions: build or remove a LIO target (rtslib-fb, in the applier process), log a
session in or out (iscsiadm). See ``adapters.iscsi`` for why rtslib runs as a process.

A login ``provides()`` the by-path names of the disks it makes appear, so planning orders
the ``pvcreate``/``vgextend`` that ``needs()`` them after it, in the same plan; a target
``needs()`` the devices it exports (an LV the same plan creates comes first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from reconciler import errors, state
from reconciler.actions.base import Action, Symbol
from reconciler.state.taking import Effect, Take
from reconciler.adapters import iscsi
from reconciler.runner import Command, CommandResult
from reconciler.spec.iscsi import disk_path


def _targets(st: state.HostState) -> dict:
    return (st.iscsi.targets or {}) if st.iscsi is not None else {}


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyTarget(Action):
    """Make the LIO target ``iqn`` export ``luns`` through ``portals`` to ``acls`` (CHAP from
    ``chap_file`` when set), removing ``remove_luns``; or remove the whole target
    (``delete``). Only what is named is touched."""

    name: str
    iqn: str
    portals: tuple[str, ...] = ()
    luns: tuple[tuple[int, str], ...] = ()
    remove_luns: tuple[int, ...] = ()
    acls: tuple[str, ...] = ()
    chap_file: str | None = None
    delete: bool = False
    released: tuple[str, ...] = ()  # devices no longer exported once applied
    exports: tuple[str, ...] = ()  # devices this step starts exporting (new LUNs)
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "rtslib"

    @property
    def key(self) -> str:
        return f"iscsi-target:{self.name}:" + ("delete" if self.delete else "apply")

    @property
    def object(self) -> str:
        return f"iscsi target {self.name}"

    def describe(self) -> str:
        if self.delete:
            return f"remove target {self.iqn} (rtslib)"
        parts = [f"LUN {n} = {d}" for n, d in self.luns]
        parts += [f"remove LUN {n}" for n in self.remove_luns]
        auth = ", CHAP" if self.chap_file else ""
        return (f"target {self.iqn} on {', '.join(self.portals)}: {'; '.join(parts) or 'no LUN'};"
                f" ACL {', '.join(self.acls)}{auth} (rtslib)")

    def commands(self) -> tuple[Command, ...]:
        desired = {"name": self.name, "iqn": self.iqn, "portals": list(self.portals),
                   "luns": {str(n): d for n, d in self.luns},
                   "remove_luns": list(self.remove_luns), "acls": list(self.acls),
                   "chap_file": self.chap_file, "delete": self.delete}
        return (iscsi.modprobe(iscsi.LIO_MODULES, host=self.host),
                iscsi.lio_apply(desired, host=self.host))

    def needs(self) -> tuple[str, ...]:
        return tuple(d for _, d in self.luns)

    def releases(self) -> tuple[str, ...]:
        return tuple(self.released)

    def takes_devices(self) -> tuple[Take, ...]:
        # LIO itself has an exported device open (an LV's open bit) and claimed (its iblock
        # backstore's exclusive claim, which leaves room for no other): its own uses. Its
        # backstores are this target's ("{name}_lunN", which the apply reuses or deletes),
        # one over a device to export too: a partial apply's leftover, reused by the retry.
        own = f"backstore:*/{self.name}_lun[0-9]*"
        return (*(Take(d, Effect.EXPORTS, "the device to export", allow=(own,))
                  for d in self.exports),
                *(Take(d, Effect.TAKES_AWAY, "the exported device",
                       allow=("open:", "claim:", own)) for d in self.released))

    def is_done(self, st: state.HostState) -> bool:
        t = _targets(st).get(self.iqn)
        if self.delete:
            return t is None
        if t is None or not t.enabled or t.authentication != bool(self.chap_file):
            return False
        if not set(self.portals) <= set(t.portals):
            return False
        if any(n in t.luns for n in self.remove_luns):
            return False
        if any(n not in t.luns or t.luns[n].device != d for n, d in self.luns):
            return False
        for initiator in self.acls:
            acl = t.acls.get(initiator)
            if acl is None or not {n for n, _ in self.luns} <= set(acl.mapped_luns):
                return False
            if self.chap_file and not acl.chap_userid:
                return False
            if st.iscsi.chap_differs(acl.chap, self.chap_file):
                return False
        return True

    def failure(self, result: CommandResult) -> errors.CommandFailed:
        last = result.stderr.strip().splitlines()[-1:] or ["no message"]
        return iscsi.failure(result, f"iscsi target {self.name}: {last[0]}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginSession(Action):
    """Discover ``portal``, put CHAP into the node record, log in to ``target``. Started when
    sysfs shows the session logged in with a disk for every LUN in ``luns``; done once udev
    has made the disks' by-path names too (a moment later: what needs them, a pvcreate, a
    clone, waits for the next pass instead of failing on a name that is not there yet).

    ``exported_by``: the other node(s) the spec declares export ``target``; a login that
    finds no such target or no portal then waits on them (``FailureKind.PEER``), since on a
    first bring-up this node may start before they do."""

    name: str
    portal: str
    target: str
    chap_file: str | None = None
    luns: tuple[int, ...] = (0,)
    exported_by: str = ""
    timeouts: tuple[tuple[str, int], ...] = ()  # written into the node record before login
    long: ClassVar[bool] = True
    symbol: ClassVar[Symbol] = Symbol.CREATE
    verb: ClassVar[str] = "iscsiadm"

    @property
    def key(self) -> str:
        return f"iscsi-session:{self.name}:login"

    @property
    def object(self) -> str:
        return f"iscsi session {self.name}"

    def describe(self) -> str:
        return (f"log in to {self.target} at {self.portal}" + (" with CHAP" if self.chap_file
                                                               else ""))

    def commands(self) -> tuple[Command, ...]:
        out = [iscsi.modprobe(iscsi.INITIATOR_MODULES, host=self.host),
               # a record left empty by a power cut is kept by discovery, and never logs in
               iscsi.node_clean(self.portal, self.target, host=self.host),
               iscsi.discover(self.portal, host=self.host)]
        if self.chap_file:
            out.append(iscsi.node_chap(self.portal, self.target, self.chap_file, host=self.host))
        if self.timeouts:
            out.append(iscsi.node_update(self.portal, self.target,
                                         {"timeouts": dict(self.timeouts)}, host=self.host))
        out.append(iscsi.login(self.portal, self.target, host=self.host))
        return tuple(out)

    def provides(self) -> tuple[str, ...]:
        return tuple(disk_path(self.portal, self.target, n) for n in self.luns)

    def is_started(self, st: state.HostState) -> bool:
        s = st.iscsi.session(self.portal, self.target) if st.iscsi is not None else None
        return (s is not None and s.state == "LOGGED_IN"
                and set(self.luns) <= {d.lun for d in s.disks})

    def is_done(self, st: state.HostState) -> bool:
        # A name missing from ``devices`` was not looked up (a runner without identities):
        # left to the tools. One looked up and not found is not there yet.
        return self.is_started(st) and all(st.devices.get(p, ()) is not None
                                           for p in self.provides())

    def failure(self, result: CommandResult) -> errors.CommandFailed:
        why = iscsi.explain(result, session=self.name, portal=self.portal, target=self.target)
        if self.exported_by and iscsi.not_offered(result):
            # Not there yet: the exporting node has not run (or is down). Waited for.
            must = (f"export {self.target} at {self.portal}; seen from here: "
                    f"{iscsi.reason(result, portal=self.portal, target=self.target)}")
            exc = errors.CommandFailed(result.command.host, result.command.argv, result.rc,
                                       f"{self.exported_by}: {must}\n{why}",
                                       errors.FailureKind.PEER)
            exc.peer = (self.exported_by, must)
            return exc
        return iscsi.failure(result, why)


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateSession(Action):
    """Bring the node record of a logged-in session to the spec: CHAP from ``chap_file``
    (rotated: the record holds other credentials) and the ``timeouts``; the replacement
    timeout also into the live session (sysfs ``recovery_tmo``, at once). The session is
    not logged out: the record's CHAP and noop timeouts serve its next login (LIO checks
    CHAP at login only, so the running session goes on)."""

    name: str
    portal: str
    target: str
    chap_file: str | None = None
    timeouts: tuple[tuple[str, int], ...] = ()
    symbol: ClassVar[Symbol] = Symbol.CHANGE
    verb: ClassVar[str] = "iscsiadm"

    @property
    def key(self) -> str:
        return f"iscsi-session:{self.name}:update"

    @property
    def object(self) -> str:
        return f"iscsi session {self.name}"

    def describe(self) -> str:
        what = (["CHAP from " + self.chap_file] if self.chap_file else []) + [
            f"{k} {v}s" for k, v in self.timeouts]
        return f"update the node record of {self.target} at {self.portal}: {', '.join(what)}"

    def commands(self) -> tuple[Command, ...]:
        settings: dict = {"timeouts": dict(self.timeouts)}
        if self.chap_file:
            settings["chap_file"] = self.chap_file
        return (iscsi.node_update(self.portal, self.target, settings, host=self.host),)

    def differences(self, st: state.HostState) -> list[str]:
        """What of the session differs from the spec, in words (empty: done)."""
        s = st.iscsi.session(self.portal, self.target) if st.iscsi is not None else None
        if s is None or s.record is None:
            return []  # no session (the login writes the record), or the record not read
        out = []
        if st.iscsi.chap_differs(s.record.chap, self.chap_file):
            out.append(f"the node record's CHAP credentials are not those of {self.chap_file} "
                       f"(rotated)")
        for k, v in self.timeouts:
            if s.record.timeouts.get(k) != v:
                out.append(f"{k} is {s.record.timeouts.get(k, 'unset')} in the node record, "
                           f"the spec says {v}")
        live = s.timeouts.get("replacement_timeout")
        want = dict(self.timeouts).get("replacement_timeout")
        if want is not None and live is not None and live != want:
            out.append(f"the live session's replacement timeout (recovery_tmo) is {live}s, "
                       f"the spec says {want}s")
        return out

    def is_done(self, st: state.HostState) -> bool:
        return not self.differences(st)

    def failure(self, result: CommandResult) -> errors.CommandFailed:
        return iscsi.failure(result, iscsi.explain(
            result, session=self.name, portal=self.portal, target=self.target))


@dataclass(frozen=True, slots=True, kw_only=True)
class LogoutSession(Action):
    """Log out of ``target`` at ``portal`` and delete its node record (which holds the CHAP
    secret and could log in again at boot). Planned only when no disk of it is in use."""

    name: str
    portal: str
    target: str
    disks: tuple[str, ...] = ()  # its disks' by-path names: free before it logs out
    symbol: ClassVar[Symbol] = Symbol.DELETE
    verb: ClassVar[str] = "iscsiadm"

    def needs_free(self) -> tuple[str, ...]:
        return self.disks

    def takes_devices(self) -> tuple[Take, ...]:
        return tuple(Take(d, Effect.TAKES_AWAY, "the disk") for d in self.disks)

    @property
    def key(self) -> str:
        return f"iscsi-session:{self.name}:logout"

    @property
    def object(self) -> str:
        return f"iscsi session {self.name}"

    def describe(self) -> str:
        return f"log out of {self.target} at {self.portal}"

    def commands(self) -> tuple[Command, ...]:
        return (iscsi.logout(self.portal, self.target, host=self.host),
                iscsi.forget_node(self.portal, self.target, host=self.host))

    def is_done(self, st: state.HostState) -> bool:
        return st.iscsi is None or st.iscsi.session(self.portal, self.target) is None

    def failure(self, result: CommandResult) -> errors.CommandFailed:
        """iscsid's refusal (exit 32, 9, 28) is said with its reason: a refusal (fatal for
        this pass, the next pass plans again from what it sees), never retried as busy."""
        return iscsi.failure(result, iscsi.explain_logout(
            result, session=self.name, portal=self.portal, target=self.target))
