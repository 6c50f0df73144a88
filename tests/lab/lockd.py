"""Two lab guests sharing one disk under lvmlockd + sanlock (groundwork for issue 10).

Why a module of its own: every cluster-LVM test and recording needs the same fiddly setup,
and each piece of it was found the hard way (tests/lab/README.md, shared lab NOTES):

- udev runs in both guests (``Guest(udev=True)``). Without it libdm creates
  ``/dev/mapper/<vg>-lvmlock`` only at the end of the command and the second node's
  ``vgchange --lock-start`` fails ("invalid parameters for sanlock").
- The shared disks are raw images opened by both qemus with ``share-rw=on`` and
  ``file.locking=off`` (``Disk(shared=True)``); both qemus go through the host page cache, so
  the two guests see each other's writes.
- ``lvm.conf``: ``use_lvmlockd = 1`` (plus ``polling_interval = 1`` so pvmove notices its end
  quickly); ``lvmlocal.conf``: ``local { host_id = N }``, a different N per node.
- lvmpolld runs and ``use_lvmpolld = 1``: with lvmlockd, pvmove refuses to run without it
  ("Enable lvmpolld when using lvmlockd."), unlike the other lab guests (``use_lvmpolld = 0``).
- ``sanlock daemon -w 0 -U root -G root``: no wdmd/watchdog in a guest, and as user
  ``sanlock`` it gets EACCES on ``/dev/dm-*``.
- ``lvmlockd -g sanlock -o 3``: joining a lockspace costs about 2.5 x the sanlock I/O
  timeout; 3 s instead of 10 s brings a ``vgcreate --shared`` / ``--lock-start`` from ~25 s
  down to ~11 s under TCG.

The guests are named ``node-a`` and ``node-b`` (their hostnames), host_id 1 and 2.

    with lockd_pair() as p:                 # booted, daemons started on both
        p.a.run(["vgcreate", "--shared", "vgs", p.a.disk("shared0")])
    with lockd_pair(start=False) as p:      # configured, sanlock/lvmlockd NOT running
        p.start_daemons(p.b)

pytest fixtures (import them into a test module): ``lockd_nodes`` (module scope, daemons
running) and ``lockd_nodes_unstarted`` (module scope, daemons not started).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import REPO_ROOT, Disk, Guest, LabError, Result, boot

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from reconciler.adapters.lvm_report import (FULLREPORT_ARGV, LV_COLUMNS, PV_COLUMNS, PVSEG_COLUMNS,
                                            SEG_COLUMNS, VG_COLUMNS)

NODE_NAMES = ("node-a", "node-b")
HOST_IDS = {"node-a": 1, "node-b": 2}
SANLOCK_IO_TIMEOUT = 3
SANLOCK_ARGV = ("sanlock", "daemon", "-w", "0", "-U", "root", "-G", "root")
LVMLOCKD_ARGV = ("lvmlockd", "-g", "sanlock", "-o", str(SANLOCK_IO_TIMEOUT))
LVMPOLLD_ARGV = ("lvmpolld", "-t", "0")  # no idle exit (systemd socket activation elsewhere)
# The lvmlock LV that sanlock keeps its leases on is 256 MiB; the first shared disk must be
# larger than that plus the test LVs. The second one is a pvmove destination.
SHARED_DISKS = ("1G", "256M")
LVM_SETTINGS = {"use_lvmlockd": 1, "use_lvmpolld": 1, "polling_interval": 1}

# The project's fullreport plus the lock / activation / ownership fields of lvm2 2.03.16
# (checked with `lvs -o help`). Already in FULLREPORT_ARGV: vg_lock_type,
# lv_active_locally, lv_active_exclusively, lv_health_status, raid_sync_action.
# Not a field in 2.03.16: `lock_type` (it is vg_lock_type) and `lv_lock_args` (it is
# spelled lv_lockargs).
LOCKD_VG_EXTRA = ("vg_shared", "vg_lock_args", "vg_systemid")
LOCKD_LV_EXTRA = ("lv_lockargs", "lv_active_remotely")


def _with(base: Sequence[str], extra: Sequence[str]) -> str:
    return ",".join([*base, *[c for c in extra if c not in base]])


def _lockd_argv() -> tuple[str, ...]:
    """The pass's own fullreport argv with the lock columns added to its vg and lv lists."""
    vg, lv = ",".join(VG_COLUMNS), ",".join(LV_COLUMNS)
    return tuple(_with(VG_COLUMNS, LOCKD_VG_EXTRA) if a == vg else
                 _with(LV_COLUMNS, LOCKD_LV_EXTRA) if a == lv else a for a in FULLREPORT_ARGV)


LOCKD_FULLREPORT_ARGV: tuple[str, ...] = _lockd_argv()


def lvmlocal_conf(host_id: int | None) -> str:
    body = f"\thost_id = {host_id}\n" if host_id is not None else ""
    return "# written by tests/lab/lockd.py\nlocal {\n" + body + "}\n"


@dataclass
class LockdPair:
    """Two booted guests, ``a`` (node-a, host_id 1) and ``b`` (node-b, host_id 2), with the
    same shared disks (serials ``shared0``, ``shared1``...)."""

    a: Guest
    b: Guest
    shared: list[Disk]
    boot_s: float = 0.0
    start_s: float = 0.0  # sanlock + lvmlockd on both (0 when not started)
    timings: dict[str, float] = field(default_factory=dict)
    lock_type = "sanlock"  # the lock manager (class attributes: dlm.DlmPair's are DLM's)
    lvmlockd_argv = LVMLOCKD_ARGV

    def __iter__(self):  # a, b = pair
        return iter((self.a, self.b))

    @property
    def nodes(self) -> tuple[Guest, Guest]:
        return self.a, self.b

    # -- configuration and daemons -------------------------------------------------------

    def set_host_id(self, g: Guest, host_id: int | None) -> None:
        """Write (or, with None, empty) the node's lvmlocal.conf ``local { host_id }``."""
        g.write_file("/etc/lvm/lvmlocal.conf", lvmlocal_conf(host_id))

    def _start(self, g: Guest, argv: Sequence[str], socket: str, what: str) -> Result:
        """Start a daemon (it forks) and wait for its socket."""
        return g.run(["sh", "-c", 'set -e; "$@" </dev/null >/dev/null 2>&1\n'
                      f"for i in $(seq 200); do [ -S {socket} ] && exit 0; sleep 0.05; done\n"
                      f"echo '{what} socket never appeared' >&2; exit 1", "sh", *argv], timeout=60)

    def start_sanlock(self, g: Guest) -> Result:
        return self._start(g, SANLOCK_ARGV, "/run/sanlock/sanlock.sock", "sanlock")

    def start_lvmlockd(self, g: Guest) -> Result:
        return self._start(g, self.lvmlockd_argv, "/run/lvm/lvmlockd.socket", "lvmlockd")

    def start_lvmpolld(self, g: Guest) -> Result:
        return self._start(g, LVMPOLLD_ARGV, "/run/lvm/lvmpolld.socket", "lvmpolld")

    def start_daemons(self, g: Guest) -> float:
        """lvmpolld, sanlock, lvmlockd (in that order); returns the seconds it took."""
        t0 = time.monotonic()
        self.start_lvmpolld(g)
        self.start_sanlock(g)
        self.start_lvmlockd(g)
        return time.monotonic() - t0

    def stop_daemons(self, g: Guest) -> None:
        """Stop lvmlockd then sanlock (by their pid files). Lockspaces must be stopped first
        (``vgchange --lock-stop``), or sanlock keeps leases it cannot release cleanly."""
        g.run(["sh", "-c", "for p in /run/lvmlockd.pid /run/sanlock/sanlock.pid /run/lvmpolld.pid; do "
               "[ -f $p ] && kill $(cat $p) 2>/dev/null; "
               "for i in $(seq 100); do [ -f $p ] && kill -0 $(cat $p) 2>/dev/null || break; sleep 0.05; done; "
               "done; true"], timeout=60)

    # -- helpers -----------------------------------------------------------------------

    def in_parallel(self, fn: Callable[[Guest], object]) -> None:
        """``fn(g)`` on both nodes at once (a thread each); raises the first error."""
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            for f in [pool.submit(fn, g) for g in self.nodes]:
                f.result()

    def both(self, cmd, timeout: float = 180, check: bool = True) -> tuple[Result, Result]:
        """Run the same command on both nodes at once."""
        fa, fb = self.a.spawn(cmd, timeout), self.b.spawn(cmd, timeout)
        return self.a.wait(fa, check=check), self.b.wait(fb, check=check)

    def close(self) -> None:
        for g in (self.a, self.b):
            g.close()
        for d in self.shared:
            d.remove()


def report(g: Guest, argv: Sequence[str] = LOCKD_FULLREPORT_ARGV) -> dict:
    res = g.run(list(argv), timeout=120)
    return json.loads(res.out)


def lv_of(data: dict, name: str) -> dict | None:
    for vg in data["report"]:
        for lv in vg.get("lv", []):
            if lv["lv_name"] == name:
                return lv
    return None


def vg_of(data: dict, name: str) -> dict | None:
    for vg in data["report"]:
        for v in vg.get("vg", []):
            if v["vg_name"] == name:
                return v
    return None


@contextlib.contextmanager
def booted(pair: LockdPair) -> Iterator[LockdPair]:
    """Boot the pair's two guests (``boot_s``, the seconds it took) and always tear them and
    the shared disks down: the body of ``lockd_pair`` and ``dlm.dlm_pair``."""
    try:
        t0 = time.monotonic()
        boot(*pair.nodes)
        pair.boot_s = time.monotonic() - t0
        yield pair
    finally:
        pair.close()


@contextlib.contextmanager
def lockd_pair(start: bool = True, shared: Sequence[str] = SHARED_DISKS, mem: str = "768M",
               verbose: bool = True) -> Iterator[LockdPair]:
    """Boot node-a and node-b with udev and the shared disks, configure lvm for lvmlockd,
    and (``start``) start sanlock and lvmlockd on both. Always tears down."""
    disks = [Disk(s, f"shared{i}", shared=True) for i, s in enumerate(shared)]
    guests = [Guest(n, disks, udev=True, mem=mem, lvm=LVM_SETTINGS) for n in NODE_NAMES]
    with booted(LockdPair(guests[0], guests[1], disks)) as pair:
        for g in guests:
            pair.set_host_id(g, HOST_IDS[g.name])
        if start:
            t1 = time.monotonic()
            pair.in_parallel(pair.start_daemons)
            pair.start_s = time.monotonic() - t1
        for g in guests:
            got = g.run(["sh", "-c", "hostname; lvmconfig --type full global/use_lvmlockd "
                         "global/use_lvmpolld local/host_id"]).out.split()
            want = [g.name, "use_lvmlockd=1", "use_lvmpolld=1", f"host_id={HOST_IDS[g.name]}"]
            if sorted(got) != sorted(want):
                raise LabError(f"[{g.name}] not configured for lvmlockd: {got} (want {want})")
        if verbose:
            what = (f", lvmpolld+sanlock+lvmlockd started on both in {pair.start_s:.1f}s" if start
                    else " (daemons not started)")
            print(f"lockd pair: booted in {pair.boot_s:.1f}s (udev){what}", flush=True)
        yield pair


# -- pytest fixtures (module scope: one boot per test module) ------------------------------

try:
    import pytest
except ImportError:  # a recorder runs without pytest
    pytest = None


def module_fixture(name: str, pairing: Callable[..., contextlib.AbstractContextManager[LockdPair]],
                   doc: str, **kwargs):
    """A module-scope pytest fixture ``name`` (on the ``lab`` fixture) yielding the pair
    ``pairing(**kwargs)`` boots, torn down after the module's last test; None without pytest
    (a recorder imports this module too). Import it into the test module."""
    if pytest is None:
        return None

    def fixture(lab) -> Iterator[LockdPair]:
        with pairing(**kwargs) as p:
            yield p
    fixture.__doc__ = doc
    return pytest.fixture(scope="module", name=name)(fixture)


lockd_nodes = module_fixture("lockd_nodes", lockd_pair,
                             "node-a and node-b, booted, lvmpolld + sanlock + lvmlockd running on both.",
                             start=True)
lockd_nodes_unstarted = module_fixture(
    "lockd_nodes_unstarted", lockd_pair,
    "node-a and node-b, booted and configured, lvmpolld, sanlock and lvmlockd NOT running.", start=False)
