"""systemd's notify protocol (``sd_notify``), in the standard library only.

systemd gives a ``Type=notify`` service the address of a datagram socket in
``NOTIFY_SOCKET`` (a path, or an abstract name written ``@name``) and, when the unit has
``WatchdogSec=``, the interval in ``WATCHDOG_USEC``. The service sends newline-separated
``KEY=value`` assignments in single datagrams: ``READY=1`` once it is up, ``STATUS=…`` for
``systemctl status``, ``WATCHDOG=1`` as a keep-alive, ``STOPPING=1`` when it shuts down.

Why not a library: the protocol is one ``sendto`` and the packages that wrap it pull a C
extension or D-Bus for nothing. Outside systemd (no ``NOTIFY_SOCKET``) every call is a
no-op, so the daemon code never has to ask whether it runs under systemd.

``WATCHDOG_USEC=`` may also be *sent*: it overrides the unit's watchdog interval at run
time. The daemon uses it to cover a single command that may legitimately run longer than
the normal interval (a ``vgreduce`` on a slow SAN) and to restore the interval afterwards,
so every keep-alive still comes from the loop thread and a hung loop is still caught.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


def _address(value: str) -> str | bytes:
    # An abstract socket is written with a leading "@" and has a NUL byte on the wire.
    return b"\0" + value[1:].encode() if value.startswith("@") else value


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog interval systemd expects keep-alives within, in seconds, or None.

    ``WATCHDOG_PID``, when set, names the process the watchdog is meant for; a child that
    inherited the environment must not think the watchdog is its own.
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000


class Notifier:
    """Sends notify messages to systemd; silent and free when not run by systemd."""

    def __init__(self, address: str | None = None, *,
                 environ: Mapping[str, str] | None = None):
        env = os.environ if environ is None else environ
        self.address = address if address is not None else env.get("NOTIFY_SOCKET") or None
        self.watchdog_seconds = watchdog_interval(env)
        self._sock: socket.socket | None = None
        self.sent: list[str] = []  # every message, for logs and tests
        self.errors = 0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str | int) -> bool:
        """Send ``KEY=value`` lines in one datagram; False when not under systemd or lost.

        A failure to notify must never stop the reconciler, so errors are counted, not raised
        (systemd notices a missing READY or keep-alive by itself).
        """
        if not self.enabled or not fields:
            return False
        message = "\n".join(f"{k}={v}" for k, v in fields.items())
        self.sent.append(message)
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode(), _address(self.address))
            return True
        except OSError:
            self.errors += 1
            return False

    def ready(self, status: str) -> bool:
        return self.send(READY=1, STATUS=status, MAINPID=os.getpid())

    def status(self, text: str) -> bool:
        # STATUS is one line in ``systemctl status``; a newline would start a new assignment.
        return self.send(STATUS=" ".join(text.split()))

    def keepalive(self) -> bool:
        """``WATCHDOG=1``: the loop is alive. A no-op when the unit has no watchdog."""
        if self.watchdog_seconds is None:
            return False
        return self.send(WATCHDOG=1)

    def allow(self, seconds: float | None) -> bool:
        """A keep-alive that lets the next one come up to ``seconds`` later (never less
        than the unit's interval); ``None`` restores the unit's own interval."""
        if self.watchdog_seconds is None:
            return False
        interval = self.watchdog_seconds if seconds is None else max(seconds, self.watchdog_seconds)
        return self.send(WATCHDOG=1, WATCHDOG_USEC=int(interval * 1_000_000))

    def stopping(self, status: str) -> bool:
        return self.send(STOPPING=1, STATUS=status)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
