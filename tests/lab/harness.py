"""Throw-away qemu guests (TCG) for real LVM / md / DRBD / iSCSI tests. Stdlib only.

A guest boots the Debian kernel prepared by ``tests/lab/setup.sh`` with the *host root*
mounted read-only over 9p, so it runs the host's own lvm2, mdadm, drbd-utils, ... and the
host's own Python (the interpreter running this module, with its site-packages), and sees
this checkout at its host path. Writable in the guest: /etc /var /root /tmp (overlays on
the host's: the guest sees what is there, its writes stay in the guest), /run /mnt (tmpfs).
Disks are sparse raw files in a per-guest work directory. The overlays of /etc /var /root
keep their upper layers on a small per-guest disk (serial ``lab-persist``, attached after
the test's disks), so ``Guest.reboot()`` keeps what a real host's reboot keeps (/etc/drbd.d,
/etc/iscsi, /etc/lvm/archive, /var/lib/...) and loses what it loses (/run, /tmp, memory).

    with Guest("a", disks=["140M", "808M"]) as g:
        g.run(["pvcreate", g.disk(0)])
        r = g.run("lvs --reportformat json", check=False)
        print(r.rc, r.out, r.err)

Teardown is guaranteed three ways: ``close()`` (context manager / fixture) closes the control
socket, the guest agent sees EOF and powers off, qemu exits, the work directory is removed;
qemu is started with a parent-death signal (SIGKILL) so it dies with the thread that started
it even when the runner is SIGKILLed; and work directories left by dead runners are swept
(with their qemu, by pid) when the next guest is created.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import itertools
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

LAB_SRC = Path(__file__).resolve().parent  # tests/lab
REPO_ROOT = LAB_SRC.parent.parent  # the checkout the harness lives in
LAB_DIR = Path(os.environ.get("LAB_DIR", "/opt/reconciler-lab"))
MANIFEST = LAB_DIR / "lab.json"
INITRAMFS_FORMAT = 1  # must match setup.sh
SETUP_HINT = "bash tests/lab/setup.sh"
QEMU = os.environ.get("LAB_QEMU", "qemu-system-x86_64")
PERSIST_SERIAL = "lab-persist"  # the disk holding the upper layers of /etc /var /root
PERSIST_SIZE = "64M"


class LabUnavailable(RuntimeError):
    """This machine cannot run guests; the message says what is missing and how to fix it."""


class LabError(RuntimeError):
    """A guest failed to boot, died, or its agent broke the protocol."""


# --------------------------------------------------------------------------------------------
# prerequisites


def lab_config() -> dict:
    """The manifest written by setup.sh, checked. Raises LabUnavailable with a fix."""
    problems = []
    if shutil.which(QEMU) is None:
        problems.append(f"{QEMU} is not installed")
    if not MANIFEST.is_file():
        problems.append(f"no lab kernel prepared ({MANIFEST} missing)")
        cfg = {}
    else:
        cfg = json.loads(MANIFEST.read_text())
        for key in ("vmlinux", "initramfs"):
            if not Path(cfg.get(key, "")).is_file():
                problems.append(f"{key} {cfg.get(key)!r} missing")
        if cfg.get("initramfs_format") != INITRAMFS_FORMAT:
            problems.append("the initramfs was built by another version of setup.sh")
        mods = Path(f"/lib/modules/{cfg.get('kver')}")
        if not (mods / "modules.dep").is_file():
            problems.append(f"{mods} is not visible on the host (guests load modules from there)")
    if any(c.isspace() for c in str(REPO_ROOT)) or any(c.isspace() for c in sys.executable):
        problems.append(f"the checkout ({REPO_ROOT}) or python ({sys.executable}) path has blanks; "
                        "it goes on the guest kernel command line")
    if os.geteuid() != 0:
        problems.append("not running as root (guest disks and module links need root)")
    if problems:
        raise LabUnavailable("; ".join(problems) + f". Fix: run `{SETUP_HINT}` as root.")
    return cfg


def size_bytes(size: int | str) -> int:
    if isinstance(size, int):
        return size
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)i?B?\s*", str(size), re.IGNORECASE)
    if not m:
        raise ValueError(f"bad size {size!r} (use bytes or e.g. '140M', '1G')")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2).upper()]


# --------------------------------------------------------------------------------------------
# work directories and the sweep of those left by dead runners


def _base_workdir() -> Path:
    base = Path(os.environ.get("LAB_WORKDIR") or Path(tempfile.gettempdir()) / "reconciler-lab")
    base.mkdir(parents=True, exist_ok=True)
    return base


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(base: Path | None = None) -> list[str]:
    """Remove work directories whose runner pid is dead; kill their qemu (by its pid file)."""
    base = base or _base_workdir()
    removed = []
    for d in base.iterdir():
        m = re.match(r"(\d+)-", d.name)
        if not d.is_dir() or not m or _pid_alive(int(m.group(1))):
            continue
        pidfile = d / "qemu.pid"
        try:
            qpid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{qpid}/cmdline").read_bytes()
            if str(d).encode() in cmdline:  # really our qemu, not a recycled pid
                os.kill(qpid, signal.SIGKILL)
        except (OSError, ValueError):
            pass
        shutil.rmtree(d, ignore_errors=True)
        removed.append(str(d))
    return removed


# --------------------------------------------------------------------------------------------
# disks and links


class Disk:
    """A sparse raw image. Pass the same ``Disk(shared=True)`` to two guests to share it.

    ``serial`` names it inside the guest (``/dev/lab/<serial>``, ``Guest.disk(serial)``).
    A disk made by the caller lives until ``remove()`` (the fixtures do that); disks given to
    ``Guest`` as plain sizes live in the guest's work directory and go with it.
    """

    _n = itertools.count()

    def __init__(self, size: int | str, serial: str | None = None, *, shared: bool = False,
                 path: str | os.PathLike | None = None):
        self.size = size_bytes(size)
        self.serial = serial or f"disk{next(self._n)}"
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,20}", self.serial):
            raise ValueError(f"serial {self.serial!r}: up to 20 of [A-Za-z0-9_.-]")
        self.shared = shared
        self._own_dir = None
        if path is None:
            sweep_stale()
            self._own_dir = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-disk-", dir=_base_workdir()))
            path = self._own_dir / f"{self.serial}.img"
        self.path = Path(path)
        if not self.path.exists():
            with open(self.path, "wb") as f:
                f.truncate(self.size)

    def drive_args(self, drive_id: str) -> list[str]:
        opts = f"file={self.path},if=none,id={drive_id},format=raw,cache=unsafe"
        dev = f"virtio-blk-pci,drive={drive_id},id={drive_id}-dev,serial={self.serial}"
        if self.shared:
            opts += ",file.locking=off"
            dev += ",share-rw=on"
        return ["-drive", opts, "-device", dev]

    def remove(self) -> None:
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
        else:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __repr__(self) -> str:
        return f"Disk({self.serial!r}, {self.size}, shared={self.shared}, path={str(self.path)!r})"


@dataclass(frozen=True)
class LinkEnd:
    link: Link
    side: int  # 0 or 1
    mac: str
    ip: str  # this end's address, e.g. 169.254.101.1
    peer_ip: str
    prefix: int = 24

    @property
    def cidr(self) -> str:
        return f"{self.ip}/{self.prefix}"

    def netdev_args(self, idx: int) -> list[str]:
        mine, peer = self.link.ports[self.side], self.link.ports[1 - self.side]
        return ["-netdev", f"socket,id=net{idx},udp=127.0.0.1:{peer},localaddr=127.0.0.1:{mine}",
                "-device", f"virtio-net-pci,netdev=net{idx},mac={self.mac}"]


class Link:
    """A point-to-point Ethernet between two guests: two qemu ``-netdev socket`` ends sending
    UDP datagrams to each other on 127.0.0.1 only. Inside the guests the ends get link-local
    ``169.254.<net>.1`` (``link.a``) and ``.2`` (``link.b``). Never multicast."""

    _net = itertools.count(random.randrange(0, 150))

    def __init__(self, net: int | None = None):
        self.net = 100 + (next(self._net) % 150 if net is None else net)
        self.ports = (_free_udp_port(), _free_udp_port())
        tag = random.randrange(0, 256)
        ips = (f"169.254.{self.net}.1", f"169.254.{self.net}.2")
        self.a = LinkEnd(self, 0, f"52:54:00:{tag:02x}:{self.net:02x}:01", ips[0], ips[1])
        self.b = LinkEnd(self, 1, f"52:54:00:{tag:02x}:{self.net:02x}:02", ips[1], ips[0])

    def __repr__(self) -> str:
        return f"Link({self.a.ip}<->{self.b.ip}, udp {self.ports})"


_handed_out: set[int] = set()


def _free_udp_port() -> int:
    """A UDP port on 127.0.0.1 free now, for a qemu ``-netdev socket`` end to bind later.

    Not an ephemeral port the kernel picks: two pytest-xdist workers booting pairs at the
    same moment could be handed the same one between this check and qemu's bind, and qemu
    binds with SO_REUSEADDR, so both would bind and datagrams go astray, silently. Each
    worker takes its ports from a range of its own below the ephemeral range (gw0 20000 to
    20999, gw1 21000 to 21999, ... gw9), never one it handed out before. A process outside
    xdist (a benchmark, a recording script, a test run by hand beside CI) takes one of ten
    ranges from 10000 by its pid, never one of the workers'."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker:
        n = int(worker[2:]) if worker[2:].isdigit() else -1
        if not 0 <= n < 10:
            raise LabError(f"xdist worker {worker!r}: lab links have port ranges for gw0 to "
                           f"gw9 only (run the lab with -n 10 or fewer)")
        base = 20000 + n * 1000
    else:
        base = 10000 + (os.getpid() % 10) * 1000
    for port in random.sample(range(base, base + 1000), 1000):
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise LabError(f"no free UDP port in {base}..{base + 999} for a lab link")


# --------------------------------------------------------------------------------------------
# results


@dataclass
class Result:
    cmd: str | list[str]
    rc: int
    out: str
    err: str
    t: float = 0.0
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.timed_out

    @property
    def out_bytes(self) -> bytes:
        return self.out.encode("utf-8", "surrogateescape")

    def __iter__(self):  # rc, out, err = guest.run(...)
        return iter((self.rc, self.out, self.err))


class CommandFailed(LabError):
    def __init__(self, guest: str, result: Result):
        self.result = result
        cmd = result.cmd if isinstance(result.cmd, str) else shlex.join(result.cmd)
        what = "timed out" if result.timed_out else f"exited {result.rc}"
        super().__init__(
            f"[{guest}] command {what} after {result.t:.1f}s: {cmd}\n"
            f"--- stdout\n{_tail(result.out)}--- stderr\n{_tail(result.err)}")

    @property
    def rc(self) -> int:
        return self.result.rc


def _tail(text: str, n: int = 4000) -> str:
    text = text[-n:] if len(text) > n else text
    return text if text.endswith("\n") or not text else text + "\n"


# --------------------------------------------------------------------------------------------
# the guest


def _set_pdeathsig() -> None:
    # Runs in the child between fork and exec: die with the thread that started us.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


_live: set[Guest] = set()
_live_lock = threading.Lock()


class Guest:
    """One qemu guest. Use as a context manager, or ``start()`` + ``wait_ready()`` + ``close()``.

    disks: sizes (``"140M"``, bytes) or ``Disk`` objects (shared ones for two guests); in the
    guest they are ``/dev/vda``, ``/dev/vdb``... in this order, also ``/dev/lab/<serial>``
    (serials default to ``d0``, ``d1``...). nics: ``LinkEnd`` objects (``link.a``/``link.b``).
    udev: run systemd-udevd in the guest (+~2.5 s boot; needed for lvmlockd).
    keep: keep the work directory (console log, qemu command) after close; also LAB_KEEP=1.
    lvm: extra lvm.conf settings by bare key (they must exist, commented or not, in the host's
    lvm.conf), e.g. ``{"polling_interval": 1}`` so pvmove/lvconvert pollers notice the end
    of a copy after 1 s instead of the default 15 s.
    systemd: the host's systemd runs as PID 1 (with udev, journald, the host's sysinit units)
    and the agent as its service ``lab-agent.service``; ``systemctl``/``journalctl`` work.
    """

    def __init__(self, name: str = "lab", disks: Iterable[int | str | Disk] = (), *,
                 nics: Iterable[LinkEnd] = (), udev: bool = False, mem: str = "1024M",
                 smp: int = 1, boot_timeout: float = 180.0, keep: bool | None = None,
                 append: str = "", qemu_args: Sequence[str] = (), python: str | None = None,
                 accel: str | None = None, lvm: dict[str, object] | None = None,
                 persist: bool = True, systemd: bool = False):
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", name):
            raise ValueError(f"guest name {name!r}: lowercase letters, digits, '-'")
        self.cfg = lab_config()
        self.name = name
        self.systemd = systemd
        self.udev = udev or systemd  # systemd's own systemd-udevd.service runs
        self.mem = mem
        self.smp = smp
        self.boot_timeout = boot_timeout
        self.keep = keep if keep is not None else os.environ.get("LAB_KEEP") == "1"
        self.append = append
        self.extra_qemu_args = list(qemu_args)
        self.python = python or sys.executable
        self.accel = accel or os.environ.get("LAB_ACCEL", "tcg")
        self.nics = list(nics)
        self.lvm = dict(lvm or {})
        for k, v in self.lvm.items():
            if not re.fullmatch(r"[a-z_]+", k) or not re.fullmatch(r"[A-Za-z0-9_./-]+", str(v)):
                raise ValueError(f"lvm setting {k}={v!r}: plain key and value only")
        sweep_stale()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{name}-", dir=_base_workdir()))
        if len(str(self.workdir / "ctl.sock")) > 100:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise LabError(f"work dir {self.workdir} too long for a unix socket; set LAB_WORKDIR to a short path")
        self.disks: list[Disk] = []
        for i, d in enumerate(disks):
            if isinstance(d, Disk):
                self.disks.append(d)
            else:
                self.disks.append(Disk(d, f"d{i}", path=self.workdir / f"d{i}.img"))
        serials = [d.serial for d in self.disks]
        if len(set(serials)) != len(serials):
            raise ValueError(f"duplicate disk serials {serials}")
        if PERSIST_SERIAL in serials:
            raise ValueError(f"disk serial {PERSIST_SERIAL!r} is the harness's own")
        # Attached after every test disk (and named by its serial in the guest), so the
        # test's disks keep /dev/vda, /dev/vdb, ... in their order.
        # (larger under systemd: /usr and /opt are kept there too, an install goes there)
        self.persist_disk = (Disk("512M" if systemd else PERSIST_SIZE, PERSIST_SERIAL,
                                  path=self.workdir / "persist.img")
                             if persist else None)
        self.boots = 0  # how many times qemu was started (reboot() adds one)
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}  # the agent's ready message
        self.boot_time: float | None = None
        self._sock: socket.socket | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[concurrent.futures.Future, str | list]] = {}
        self._plock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._dead: str | None = None
        self._qmp: socket.socket | None = None
        self._qmp_file = None
        self._qmp_lock = threading.Lock()
        self._closed = False
        self._t_start = 0.0

    # ---- lifecycle ---------------------------------------------------------------------

    def qemu_argv(self) -> list[str]:
        wd = self.workdir
        net = ",".join(f"{n.mac}={n.cidr}" for n in self.nics)
        append = " ".join(filter(None, [
            # no_timer_check: on a loaded host TCG is too slow for the kernel's IO-APIC timer
            # check ("..MP-BIOS bug: 8254 timer not connected to IO-APIC", then a panic at
            # boot; lab, 2026-12-05, load 15-19)
            "console=ttyS0 quiet loglevel=4 panic=-1 mitigations=off no_timer_check",
            f"lab.init={LAB_SRC / 'guest_init.sh'}", f"lab.agent={LAB_SRC / 'guest_agent.py'}",
            f"lab.python={self.python}", f"lab.repo={REPO_ROOT}",
            f"lab.hostname={self.name}", f"lab.udev={int(self.udev)}",
            f"lab.net={net}" if net else "",
            "lab.systemd=1 systemd.show_status=0" if self.systemd else "",
            "lab.lvm=" + ",".join(f"{k}={v}" for k, v in self.lvm.items()) if self.lvm else "",
            self.append,
        ]))
        argv = [
            QEMU, "-name", self.name, "-machine", "q35", "-accel", self.accel,
            "-smp", str(self.smp), "-m", self.mem,
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-kernel", self.cfg["vmlinux"], "-initrd", self.cfg["initramfs"], "-append", append,
            "-chardev", f"file,id=con,path={wd}/console.log,append=on", "-serial", "chardev:con",
            "-qmp", f"unix:{wd}/qmp.sock,server=on,wait=off",
            "-device", "virtio-serial-pci",
            "-chardev", f"socket,id=ctl,path={wd}/ctl.sock,server=on,wait=on",
            "-device", "virtserialport,chardev=ctl,name=lab.ctl",
            "-fsdev", "local,id=fs0,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=fs0,mount_tag=hostroot",
            "-pidfile", f"{wd}/qemu.pid",
        ]
        for i, d in enumerate(self.disks):
            argv += d.drive_args(f"d{i}")
        if self.persist_disk is not None:
            argv += self.persist_disk.drive_args("persist")
        for i, n in enumerate(self.nics):
            argv += n.netdev_args(i)
        return argv + self.extra_qemu_args

    def start(self) -> Guest:
        """Launch qemu (does not wait for the boot). Call from a long-lived thread: qemu is
        killed when the thread that started it ends."""
        if self.proc is not None:
            raise LabError("already started")
        if self._closed:
            raise LabError(f"[{self.name}] closed")
        argv = self.qemu_argv()
        self.boots += 1
        (self.workdir / "qemu.cmd").write_text(shlex.join(argv) + "\n")
        self._t_start = time.monotonic()
        with _live_lock:
            _live.add(self)
        with open(self.workdir / "qemu.out", "wb") as qout:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=qout, stderr=subprocess.STDOUT,
                preexec_fn=_set_pdeathsig, close_fds=True)
        return self

    def wait_ready(self) -> Guest:
        """Connect to the control socket (qemu waits for it before running the guest) and
        wait for the agent's ready line."""
        deadline = self._t_start + self.boot_timeout
        ctl = self.workdir / "ctl.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        while True:
            if self.proc.poll() is not None:
                raise LabError(self._boot_failure(f"qemu exited with {self.proc.returncode} before the guest ran"))
            try:
                sock.connect(str(ctl))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise LabError(self._boot_failure("qemu never opened its control socket"))
                time.sleep(0.02)
        self._sock = sock
        self._reader = threading.Thread(target=self._read_loop, name=f"lab-{self.name}-reader", daemon=True)
        self._reader.start()
        while not self._ready.wait(0.2):
            if self._dead:
                raise LabError(self._boot_failure(self._dead))
            if time.monotonic() > deadline:
                raise LabError(self._boot_failure(f"no agent after {self.boot_timeout:.0f}s"))
        self.boot_time = time.monotonic() - self._t_start
        return self

    def __enter__(self) -> Guest:
        try:
            self.start()
            self.wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self, timeout: float = 20.0) -> None:
        """Power the guest off (EOF on its control port), make sure qemu is gone, remove
        the work directory unless ``keep``. Idempotent; never raises."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._sock is not None:
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._sock.close()
            if self._qmp is not None:
                try:
                    self._qmp.close()
                except OSError:
                    pass
            if self.proc is not None:
                if not self._ready.is_set() and self.proc.poll() is None:
                    timeout = 0.5  # no agent to power off: qemu may still wait for us
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.terminate()
                    try:
                        self.proc.wait(5)
                    except subprocess.TimeoutExpired:
                        self.proc.kill()
                        self.proc.wait()
        finally:
            self._fail_pending("guest closed")
            with _live_lock:
                _live.discard(self)
            if not self.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """Pull the plug (SIGKILL qemu), e.g. to simulate a node crash. close() still needed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def reboot(self, *, hard: bool = True) -> Guest:
        """Reset the guest and boot it again: the same disks (contents as the crash left
        them), the same persistent disk (so /etc, /var and /root are as a real host's after
        a reset; the file system there is replayed from its journal), the same NICs and
        link addresses. /run, /tmp, /mnt, the page cache and every process are gone;
        nothing is remounted, no daemon restarted: that is the test's (or the host's) job.

        ``hard=True`` (the default) pulls the plug: qemu is SIGKILLed mid-whatever, like a
        power cut; what the guest had not written to its disks is lost. ``hard=False``
        resets from the outside too, after ``sync`` in the guest (a crash right after a
        sync). Commands still running fail with LabError. Waits until the agent is ready;
        call it from the thread that booted the guest (qemu dies with its starting thread).
        Returns ``self``; ``g.boots`` counts the boots."""
        if self._closed:
            raise LabError(f"[{self.name}] closed")
        if not hard and self.alive and self._ready.is_set() and not self._dead:
            self.run(["sync"], timeout=60)
        self.kill()
        self._disconnect("guest rebooted")
        self.proc = None
        for f in ("ctl.sock", "qmp.sock", "qemu.pid"):
            try:
                (self.workdir / f).unlink()
            except FileNotFoundError:
                pass
        with open(self.workdir / "console.log", "a") as con:
            con.write(f"\n===== lab: reboot {self.boots} -> {self.boots + 1} (hard={hard}) =====\n")
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _disconnect(self, why: str) -> None:
        """Forget the control and QMP connections of a qemu that is gone (before a reboot)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._reader is not None:
            self._reader.join(10)
            self._reader = None
        with self._qmp_lock:
            if self._qmp is not None:
                try:
                    self._qmp.close()
                except OSError:
                    pass
            self._qmp = self._qmp_file = None
        self._fail_pending(why)
        self._ready.clear()
        self._dead = None
        self.info = {}
        self.boot_time = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def console(self) -> str:
        try:
            return (self.workdir / "console.log").read_text(errors="replace")
        except OSError:
            return ""

    def _boot_failure(self, why: str) -> str:
        qout = ""
        try:
            qout = (self.workdir / "qemu.out").read_text(errors="replace")
        except OSError:
            pass
        return (f"[{self.name}] boot failed: {why}\n--- qemu output\n{_tail(qout, 2000)}"
                f"--- console (last 3000 chars)\n{_tail(self.console(), 3000)}"
                f"(work dir {self.workdir}; LAB_KEEP=1 keeps it)")

    # ---- control channel -----------------------------------------------------------------

    def _read_loop(self) -> None:
        sock = self._sock  # this boot's socket (reboot() replaces self._sock)
        buf = b""
        why = "guest agent closed the control channel (guest powered off or crashed)"
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self._dispatch(json.loads(line))
        except (OSError, ValueError) as exc:
            if not self._closed:
                why = f"control channel error: {exc}"
        self._dead = why
        self._fail_pending(why)

    def _dispatch(self, msg: dict) -> None:
        if msg.get("ready"):
            self.info = msg
            self._ready.set()
            return
        with self._plock:
            entry = self._pending.pop(msg.get("id"), None)
        if entry is None:
            return
        fut, cmd = entry
        res = Result(cmd=cmd, rc=msg["rc"], out=msg.get("out", ""), err=msg.get("err", ""),
                     t=msg.get("t", 0.0), timed_out=bool(msg.get("timeout")))
        if not fut.done():
            fut.set_result(res)

    def _fail_pending(self, why: str) -> None:
        with self._plock:
            pending, self._pending = self._pending, {}
        for fut, _cmd in pending.values():
            if not fut.done():
                fut.set_exception(LabError(f"[{self.name}] {why}"))

    def spawn(self, cmd: str | Sequence[str], timeout: float = 120.0, *,
              input: str | None = None, env: dict[str, str] | None = None,
              cwd: str | None = None) -> concurrent.futures.Future[Result]:
        """Start a command in the guest; the Future gives its Result (never raises for rc).

        ``cmd``: a bash script (str, run by ``bash -c``) or an argv list (no shell).
        ``timeout``: seconds, enforced in the guest (process group killed, rc 124)."""
        if not self._ready.is_set() or self._sock is None:
            raise LabError(f"[{self.name}] guest not running")
        if self._dead:
            raise LabError(f"[{self.name}] {self._dead}")
        cmd = cmd if isinstance(cmd, str) else [str(a) for a in cmd]
        rid = next(self._ids)
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._plock:
            self._pending[rid] = (fut, cmd)
        req = {"id": rid, "cmd": cmd, "timeout": timeout, "input": input, "env": env or {}, "cwd": cwd}
        try:
            self._sock.sendall((json.dumps(req) + "\n").encode())
        except OSError as exc:
            with self._plock:
                self._pending.pop(rid, None)
            raise LabError(f"[{self.name}] cannot send to the guest: {exc}") from exc
        fut.lab_timeout = timeout  # type: ignore[attr-defined]
        return fut

    def wait(self, fut: concurrent.futures.Future[Result], check: bool = False,
             timeout: float | None = None) -> Result:
        """Wait for a spawned command (host-side limit: its own timeout + 60 s)."""
        limit = timeout if timeout is not None else getattr(fut, "lab_timeout", 120.0) + 60.0
        try:
            res = fut.result(limit)
        except concurrent.futures.TimeoutError:
            raise LabError(f"[{self.name}] no answer from the guest within {limit:.0f}s") from None
        if check and not res.ok:
            raise CommandFailed(self.name, res)
        return res

    def run(self, cmd: str | Sequence[str], timeout: float = 120.0, check: bool = True, *,
            input: str | None = None, env: dict[str, str] | None = None,
            cwd: str | None = None) -> Result:
        """Run a command and wait. ``check``: raise CommandFailed unless rc == 0."""
        return self.wait(self.spawn(cmd, timeout, input=input, env=env, cwd=cwd), check=check)

    def sh(self, script: str, timeout: float = 120.0, check: bool = True, **kw) -> Result:
        """Run a bash script under ``set -euxo pipefail`` (the trace goes to stderr)."""
        return self.run("set -euxo pipefail\n" + script, timeout, check, **kw)

    def write_file(self, path: str, data: str | bytes, mode: str = "644") -> None:
        """Write a file in the guest (writes to the guest's /tmp never reach the host's)."""
        if isinstance(data, bytes):
            import base64
            self.run(['sh', '-c', 'base64 -d > "$1" && chmod "$2" "$1"', "sh", path, mode],
                     input=base64.b64encode(data).decode())
        else:
            self.run(['sh', '-c', 'cat > "$1" && chmod "$2" "$1"', "sh", path, mode], input=data)

    def read_file(self, path: str) -> str:
        return self.run(["cat", path]).out

    def disk(self, which: int | str) -> str:
        """Guest device path of a disk, by index in ``disks`` or by serial: '/dev/vdb'."""
        serial = self.disks[which].serial if isinstance(which, int) else which
        try:
            return self.info["disks"][serial]
        except KeyError:
            raise LabError(f"[{self.name}] no disk with serial {serial!r}; guest sees {self.info.get('disks')}") from None

    @property
    def kver(self) -> str:
        return self.info.get("kver", "")

    # ---- QMP (fault injection) -------------------------------------------------------------

    def qmp(self, execute: str, **arguments) -> object:
        """Run one QMP command, return its ``return`` value; raises LabError on ``error``."""
        with self._qmp_lock:
            if self._qmp is None:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(30)
                s.connect(str(self.workdir / "qmp.sock"))
                self._qmp, self._qmp_file = s, s.makefile("rwb")
                json.loads(self._qmp_file.readline())  # greeting
                self._qmp_send({"execute": "qmp_capabilities"})
            return self._qmp_send({"execute": execute, **({"arguments": arguments} if arguments else {})})

    def _qmp_send(self, msg: dict) -> object:
        self._qmp_file.write((json.dumps(msg) + "\n").encode())
        self._qmp_file.flush()
        while True:
            line = self._qmp_file.readline()
            if not line:
                raise LabError(f"[{self.name}] QMP connection closed")
            reply = json.loads(line)
            if "event" in reply:
                continue
            if "error" in reply:
                raise LabError(f"[{self.name}] QMP {msg.get('execute')}: {reply['error']}")
            return reply.get("return")

    def hmp(self, command_line: str) -> str:
        """A human-monitor command through QMP, e.g. ``drive_del d1``."""
        return str(self.qmp("human-monitor-command", **{"command-line": command_line}))

    def fail_disk(self, which: int | str) -> None:
        """Make every I/O to a disk fail with EIO (the device stays): ``drive_del``."""
        idx = which if isinstance(which, int) else [d.serial for d in self.disks].index(which)
        self.hmp(f"drive_del d{idx}")

    def throttle(self, which: int | str, *, write_bps: int = 0, read_bps: int = 0) -> None:
        """Limit a disk's bandwidth in qemu (bytes/s; 0 = unlimited). Slows a pvmove, a RAID
        resync or an md recovery down enough to observe it mid-way."""
        idx = which if isinstance(which, int) else [d.serial for d in self.disks].index(which)
        self.qmp("block_set_io_throttle", id=f"/machine/peripheral/d{idx}-dev/virtio-backend", bps=0, bps_rd=int(read_bps),
                 bps_wr=int(write_bps), iops=0, iops_rd=0, iops_wr=0)

    def __repr__(self) -> str:
        state = "running" if self.alive else "stopped"
        return f"Guest({self.name!r}, {state}, disks={[d.serial for d in self.disks]})"


def boot(*guests: Guest) -> tuple[Guest, ...]:
    """Boot several guests in parallel (all qemus started from this thread); on any failure
    every guest is closed and the error re-raised."""
    try:
        for g in guests:
            g.start()
        with concurrent.futures.ThreadPoolExecutor(len(guests)) as pool:
            for f in [pool.submit(g.wait_ready) for g in guests]:
                f.result()
    except BaseException:
        for g in guests:
            g.close()
        raise
    return guests


def close_all() -> None:
    """Close every guest of this process (atexit, fixtures' last resort)."""
    with _live_lock:
        guests = list(_live)
    for g in guests:
        g.close()


import atexit

atexit.register(close_all)
