"""Processes of a simulated host: the pvmove pollers and lvmpolld.

The pvmove pollers are processes in ``procs`` (pid → argv), listed in /proc and
shown by /proc/PID/comm and cmdline like the kernel does. A ``pvmove --background`` forks
one poller that keeps the command line it was started with, except its name, which lvm
overwrites with "(lvm2)" (comm still says ``pvmove``); with lvmpolld running and lvm.conf's
``use_lvmpolld = 1`` (``start_lvmpolld``) the poller is lvmpolld's child
``/sbin/lvm lvpoll --polloperation pvmove VG/pvmoveN``, one per move (a second request for a
move it already polls is ignored, as lvmpolld does). Each move counts its pollers
(``LV.pollers``): a test can assert that nobody ever started a second one. ``kill(pid)``
ends a poller (the move stops advancing); a reboot ends them all.

``Processes`` is a room of ``machine.Machine`` (its state: ``procs``, ``comms``,
``_next_pid``, ``lvmpolld_pid``, ``lvmpolld_socket``, ``max_pollers``).
"""

from __future__ import annotations

from reconciler.errors import UnsupportedCommand

from . import ops
from .model import LV


class Processes:
    """The host's processes: /proc, the pollers of pvmove, lvmpolld."""

    def _proc_file(self, path: str) -> str | None:
        """/proc/, /proc/PID/cmdline and /run/lvm/; "" for a missing one; None: not ours."""
        if path == "/proc/":
            return "".join(f"{pid}\n" for pid in sorted(self.procs, key=str)) + "self\n"
        if path == "/run/lvm/":
            return "lvmpolld.socket\n" if self.lvmpolld_socket else "\n"
        parts = path.split("/")
        if len(parts) == 4 and parts[1] == "proc" and parts[2].isdigit():
            pid = int(parts[2])
            if pid not in self.procs:
                return ""
            if parts[3] == "comm":
                return self.comms[pid] + "\n"
            if parts[3] != "cmdline":
                raise UnsupportedCommand(f"process file not modelled by the simulator: {path}")
            return "".join(f"{a}\0" for a in self.procs[pid])
        return None

    def _spawn(self, argv: tuple[str, ...], comm: str | None = None) -> int:
        pid = self._next_pid
        self._next_pid += 1
        self.procs[pid] = tuple(argv)
        self.comms[pid] = (comm or argv[0].rsplit("/", 1)[-1])[:15]
        return pid

    def _fork_poller(self, argv: tuple[str, ...]) -> int:
        """lvm's background poller: a fork of the command, which overwrites its name in
        place with "(lvm2)" (cut to the name's length, NUL-padded); comm keeps the name."""
        name = argv[0]
        renamed = "(lvm2)"[:len(name)] + "\0" * max(0, len(name) - 6)
        return self._spawn((renamed, *argv[1:]), comm=name.rsplit("/", 1)[-1])

    def start_lvmpolld(self) -> None:
        """lvm.conf says ``use_lvmpolld = 1`` and lvmpolld runs (its socket is there)."""
        self.md.files["/etc/lvm/lvm.conf"] = "global {\n\tuse_lvmpolld = 1\n}\n"
        if self.lvmpolld_pid is None:
            self.lvmpolld_pid = self._spawn(("/sbin/lvmpolld", "-t", "60", "-f"))
        self.lvmpolld_socket = True

    def stop_lvmpolld(self) -> None:
        """lvmpolld stops with its children (``systemctl stop``: the whole cgroup) and
        removes its socket; moves it polled are polled by nobody."""
        if self.lvmpolld_pid is not None:
            for pid, argv in list(self.procs.items()):
                if argv[1:2] == ("lvpoll",):
                    self.kill(pid)
            self.procs.pop(self.lvmpolld_pid, None)
            self.comms.pop(self.lvmpolld_pid, None)
        self.lvmpolld_pid = None
        self.lvmpolld_socket = False

    def _lvmpolld_in_use(self) -> bool:
        conf = self.md.files.get("/etc/lvm/lvm.conf") or ""
        return self.lvmpolld_pid is not None and "use_lvmpolld = 1" in conf

    def poll(self, mirrors: list[LV], argv: tuple[str, ...]) -> None:
        """What a ``pvmove`` run with ``argv`` does about polling ``mirrors``."""
        if not mirrors:
            return
        if self._lvmpolld_in_use():
            for m in mirrors:
                lvpoll = ("/sbin/lvm", "lvpoll", "--interval", "15", "--polloperation",
                          "pvmove", m.full_name, "-An")
                if not any(self.procs.get(p) == lvpoll for p in m.pollers):
                    m.pollers.append(self._spawn(lvpoll))
        else:
            pid = self._fork_poller(argv)
            for m in mirrors:
                m.pollers.append(pid)
        for m in mirrors:
            m.polling = True
            self.max_pollers = max(self.max_pollers, len(m.pollers))

    def kill(self, pid: int) -> None:
        """SIGKILL ``pid``: a poller's moves stop advancing (their metadata says where)."""
        if pid not in self.procs:
            raise ValueError(f"no process {pid}")
        del self.procs[pid]
        del self.comms[pid]
        if pid == self.lvmpolld_pid:
            self.lvmpolld_pid = None  # its children live on; its socket file stays
        for vg in self.model.vgs.values():
            for m in ops.pvmove_lvs(vg):
                if pid in m.pollers:
                    m.pollers.remove(pid)
                    # (the kernel would finish the segment it copies; the model stops)
                    m.polling = bool(m.pollers)

    def pollers(self, vg: str, name: str) -> list[int]:
        return list(self.model.vgs[vg].lvs[name].pollers)

    def _reap(self) -> None:
        """Pollers exit once every move they poll is finished."""
        busy = {p for vg in self.model.vgs.values() for m in ops.pvmove_lvs(vg)
                for p in m.pollers}
        for pid, argv in list(self.procs.items()):
            poller = self.comms[pid] == "pvmove" or argv[1:2] == ("lvpoll",)
            if poller and pid not in busy:
                del self.procs[pid], self.comms[pid]
