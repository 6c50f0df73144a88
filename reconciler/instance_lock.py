"""One reconciler acting on a host at a time: ``flock`` on a lock file under /run.

Taken by the daemon for its whole life and by a ``--once`` pass that may change the host, so
two loops never act at once. The lock is held on an open file (closed on exec, so a command's
children never inherit it) and dies with the process; the holder writes its PID into the
file so that a refused second instance can name it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from reconciler import errors


class AlreadyRunning(errors.ReconcilerError):
    """Another reconciler holds the per-host lock."""


class InstanceLock:
    """``flock`` on a file; the holder writes its PID there so a refusal can name it."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another reconciler is already running on this host (PID {holder} holds "
                f"{self.path}); two loops must never act at once — stop it first "
                f"(systemctl stop reconciler), or use `reconcile status` to read what it "
                f"is doing") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            # The file stays: unlinking it would let a third instance lock a new inode
            # while a second one still waits on the old.
            os.close(self.fd)
            self.fd = None
