"""Running the reconciler inside a lab guest, and watching what it does there.

Used by ``test_lvm_e2e.py``. Stdlib plus the reconciler's own parser and argv builders (the
guest runs this very checkout over 9p, so host and guest parse alike).

- ``install_shims(g)`` puts a directory first in the reconciler's PATH whose ``pvmove``,
  ``lvconvert``, ... log their argv to ``CMD_LOG`` and exec the real tool: the ground truth of
  what a run executed, independent of the reconciler's own logging, and it survives a
  SIGKILL of the reconciler. ``lvconvert`` and ``pvmove`` calls also log ``dmsetup status``
  as it was just before the tool ran (so a test can prove a raid1 leg was in sync when the
  old one was dropped, or that no other move was running when a pvmove started).
- ``reconcile(g, ...)`` runs ``python3 -m reconciler --spec DIR --node NODE --once ...`` in
  the guest; ``spawn_reconcile`` starts it in the background with its pid in a file, so it
  can be SIGKILLed.
- ``Data`` makes an ext4 file system on an LV, writes files before a move, runs a
  background writer in the guest while data moves, and checks every md5 sum after
  umount / drop_caches / mount (plus ``e2fsck -fn``).
- ``observe(g)`` is the reconciler's own observation, run in the guest, parsed here;
  ``normalise``/``pe_maps``/``diff_dicts`` compare two observations (a guest's and a
  simulated host's) field by field.
"""

from __future__ import annotations

import concurrent.futures
import json
import shlex
import sys
import textwrap
import time
from dataclasses import dataclass, field

from harness import REPO_ROOT, Guest, LabError, Result

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from reconciler import state
from reconciler.adapters import lvm as lvm_adapter
from reconciler.adapters.lvm_report import FULLREPORT_ARGV

MiB = 1 << 20
NODE = "node-1"
SPEC_DIR = "/tmp/spec"
SHIM_DIR = "/tmp/lab-shim"
CMD_LOG = "/tmp/lab-cmds.log"
PID_FILE = "/tmp/reconciler.pid"
SHIMMED = ("pvcreate", "vgcreate", "vgextend", "vgreduce", "vgremove", "lvcreate", "lvextend",
           "lvreduce", "lvremove", "lvchange", "pvmove", "lvconvert", "vgsplit", "lvrename",
           "vgexport", "vgimport", "vgrename", "vgchange", "pvresize", "iscsiadm")

_SHIM = r"""#!/bin/sh
# lab shim: record the argv (and, for lvconvert and pvmove, the dm status just before), run the tool
n=${0##*/}
{
  printf 'cmd %s' "$n"; for a in "$@"; do printf ' %s' "$a"; done; printf '\n'
  case $n in lvconvert|pvmove) dmsetup status 2>/dev/null | sed 's/^/status /' ;; esac
} >> CMD_LOG
# hold(g, tool): the tool waits (before it runs) while HOLD_DIR/<tool> exists, so a test can
# kill the node at a known point between two commands
if [ -e HOLD_DIR/$n ]; then
  : > HOLD_DIR/$n.held
  while [ -e HOLD_DIR/$n ]; do sleep 0.2; done
fi
exec REAL_DIR/$n "$@"
"""
HOLD_DIR = "/tmp/lab-hold"


def hold(g: Guest, tool: str) -> None:
    """The next calls of the shimmed ``tool`` wait before running, until ``release``."""
    g.run(["sh", "-c", f'mkdir -p {HOLD_DIR} && : > {HOLD_DIR}/"$1"', "sh", tool])


def held(g: Guest, tool: str) -> bool:
    """True once a call of ``tool`` is waiting in its shim (it has not run)."""
    return g.run(["test", "-e", f"{HOLD_DIR}/{tool}.held"], check=False).ok


def release(g: Guest, tool: str) -> None:
    g.run(["rm", "-f", f"{HOLD_DIR}/{tool}"])


def install_shims(g: Guest) -> None:
    real = g.run("dirname \"$(PATH=/usr/sbin:/sbin:/usr/bin:/bin command -v pvmove)\"").out.strip()
    script = _SHIM.replace("CMD_LOG", CMD_LOG).replace("REAL_DIR", real).replace("HOLD_DIR", HOLD_DIR)
    g.run(["mkdir", "-p", SHIM_DIR])
    g.write_file(f"{SHIM_DIR}/.shim", script, mode="755")
    g.run(["sh", "-c", f'cd {SHIM_DIR} && for t in "$@"; do ln -sf .shim "$t"; done; : > {CMD_LOG}',
           "sh", *SHIMMED])


def mark(g: Guest, label: str) -> None:
    """A line in the command log, to tell apart what each run executed."""
    g.run(["sh", "-c", f'echo "mark $1" >> {CMD_LOG}', "sh", label])


def commands(g: Guest) -> list[tuple[str, list[str]]]:
    """The command log as (section label, argv); section '' before the first mark."""
    section, out = "", []
    for line in g.read_file(CMD_LOG).splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "mark":
            section = rest
        elif kind == "cmd":
            out.append((section, rest.split()))
    return out


def dm_status_before(g: Guest, tool: str) -> list[tuple[list[str], list[str]]]:
    """Each ``tool`` call the shim saw (argv), with the ``dmsetup status`` lines taken just
    before it ran (``tool`` is lvconvert or pvmove)."""
    out: list[tuple[list[str], list[str]]] = []
    current = None
    for line in g.read_file(CMD_LOG).splitlines():
        if line.startswith("cmd "):
            current = None
            if line.split()[1] == tool:
                current = (line.split()[1:], [])
                out.append(current)
        elif line.startswith("status ") and current is not None:
            current[1].append(line[len("status "):])
    return out


def raid_in_sync(status_lines: list[str], dm_name: str) -> bool:
    """True when ``dm_name`` is a dm-raid device whose every leg is in sync (health all
    'A', sync ratio complete): ``name: 0 LEN raid raid1 2 AA 131072/131072 idle 0 0 -``."""
    for line in status_lines:
        f = line.split()
        if f and f[0] == f"{dm_name}:" and "raid" in f:
            k = f.index("raid")
            health, ratio = f[k + 3], f[k + 4].split("/")
            return set(health) == {"A"} and ratio[0] == ratio[1]
    return False


# -- specs and runs ------------------------------------------------------------------------


def put_spec(g: Guest, text: str, directory: str = SPEC_DIR) -> None:
    g.run(["sh", "-c", 'rm -rf "$1" && mkdir -p "$1"', "sh", directory])
    g.write_file(f"{directory}/spec.toml", textwrap.dedent(text))


def reconcile_argv(*args: str, spec: str = SPEC_DIR, node: str = NODE) -> list[str]:
    return ["python3", "-m", "reconciler", "--spec", spec, "--node", node, *args]


@dataclass
class Run:
    result: Result
    doc: dict | None = None

    @property
    def rc(self) -> int:
        return self.result.rc

    @property
    def log(self) -> str:
        return self.result.err

    def __str__(self) -> str:
        return (f"rc={self.rc} t={self.result.t:.1f}s\n--- stdout\n{self.result.out[-6000:]}"
                f"\n--- stderr\n{self.result.err[-6000:]}")


def _wrap(argv: list[str], shim: bool, pidfile: str | None = None, log: str | None = None) -> str:
    pre = f'PATH={SHIM_DIR}:"$PATH" ' if shim else ""
    pid = f"echo $$ > {pidfile}; " if pidfile else ""
    err = f" 2> {log}" if log else ""
    return f"{pid}cd / && {pre}exec {shlex.join(argv)}{err}"


def reconcile(g: Guest, *args: str, shim: bool = True, timeout: float = 300,
              spec: str = SPEC_DIR, node: str = NODE) -> Run:
    """``reconcile --once ARGS`` in the guest (``--output json`` is added); never raises
    for its exit code."""
    argv = reconcile_argv("--once", *args, "--output", "json", spec=spec, node=node)
    res = g.run(_wrap(argv, shim), timeout=timeout, check=False, env={"NO_COLOR": "1"})
    return Run(res, _json(res.out))


def spawn_reconcile(g: Guest, *args: str, shim: bool = True, timeout: float = 300,
                    log: str | None = None, spec: str = SPEC_DIR,
                    node: str = NODE) -> concurrent.futures.Future[Result]:
    """Start ``reconcile --once ARGS --output json`` in the background; its pid goes to
    PID_FILE (the process is exec'd, so it is the reconciler itself), its log lines to
    ``log`` in the guest when given (to follow them while it runs)."""
    g.run(["rm", "-f", PID_FILE])
    argv = reconcile_argv("--once", *args, "--output", "json", spec=spec, node=node)
    fut = g.spawn(_wrap(argv, shim, PID_FILE, log), timeout=timeout, env={"NO_COLOR": "1"})
    wait_for(lambda: g.run(["test", "-s", PID_FILE], check=False).ok, 30,
             "the reconciler's pid file")
    return fut


def kill9(g: Guest, fut: concurrent.futures.Future[Result]) -> Result:
    """SIGKILL the spawned reconciler; returns its Result (what it printed until then)."""
    pid = g.read_file(PID_FILE).strip()
    g.run(["kill", "-9", pid])
    res = g.wait(fut, timeout=60)
    if res.rc not in (-9, 137):
        raise LabError(f"reconciler {pid} was not killed by SIGKILL: rc {res.rc}\n"
                       f"{res.err[-3000:]}")
    return res


def _json(text: str) -> dict | None:
    try:
        return json.loads(text)
    except ValueError:
        return None


def assert_settled(g: Guest) -> Run:
    """A further ``--once`` pass exits 0, plans nothing, runs nothing."""
    r = reconcile(g)
    assert r.rc == 0, r
    assert r.doc is not None, r
    assert r.doc["plan"]["steps"] == [] and r.doc["plan"]["in_flight"] == [], r
    assert r.doc["plan"]["blocked"] == [] and r.doc["applied"] == [], r
    assert r.doc["final"]["converged"] is True, r
    return r


# -- observation ---------------------------------------------------------------------------


def observe(g: Guest) -> state.HostState:
    res = g.run(list(FULLREPORT_ARGV), timeout=120)
    return lvm_adapter.parse_fullreport(res.out)


def fullreport_text(g: Guest) -> str:
    return g.run(list(FULLREPORT_ARGV), timeout=120).out


def wait_for(pred, timeout: float, what: str, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def dm_names(g: Guest) -> list[str]:
    out = g.run("dmsetup info -c --noheadings -o name 2>/dev/null || true").out
    return [line.strip() for line in out.splitlines() if line.strip() and "No devices" not in line]


# -- data on a file system -----------------------------------------------------------------

# Until $2/stop exists: write a 64 KiB random file on $1, fsync'ed, and its md5 to a manifest.
# A file counts as written "during" a copy when dm showed a mirror (pvmove) or raid leg not
# yet in sync both before and after it was written.
_WRITER = r"""#!/bin/bash
mnt=$1 st=$2 i=0
copying() {
  dmsetup status 2>/dev/null | awk '
    { for (k = 1; k <= NF; k++) {
        if ($k == "mirror") { n = $(k+1); split($(k+2+n), r, "/"); if (r[1]+0 < r[2]+0) b = 1 }
        if ($k == "raid")   { split($(k+4), r, "/"); if (r[1]+0 < r[2]+0) b = 1 } } }
    END { exit !b }'
}
while [ ! -e "$st/stop" ]; do
  i=$((i+1))
  head -c 65536 /dev/urandom > "$st/blob"
  before=0; copying && before=1
  if ! dd if="$st/blob" of="$mnt/w$i" bs=64k conv=fsync status=none; then
    echo "write w$i failed" >&2; exit 1
  fi
  echo "$(md5sum < "$st/blob" | cut -d' ' -f1)  w$i" >> "$st/writer.md5"
  if [ $before = 1 ] && copying; then echo "w$i" >> "$st/during"; fi
  sleep 0.4
done
echo "$i"
"""


@dataclass
class Data:
    """An ext4 file system on ``dev`` mounted at ``mnt``, with files whose md5 is known."""

    g: Guest
    dev: str
    mnt: str
    state_dir: str = ""
    writer: concurrent.futures.Future | None = None
    written_during: list[str] = field(default_factory=list)
    writer_files: int = 0

    def __post_init__(self) -> None:
        self.state_dir = self.state_dir or f"/tmp/data-{self.mnt.strip('/').replace('/', '-')}"

    def make(self, files: int = 4, size: str = "1M") -> Data:
        self.g.write_file("/tmp/lab-writer.sh", _WRITER, mode="755")
        self.g.sh(f"""
            mkdir -p {self.state_dir} {self.mnt}
            rm -f {self.state_dir}/*
            mkfs.ext4 -q -F {self.dev}
            mount {self.dev} {self.mnt}
            for i in $(seq 1 {files}); do
              head -c {size} /dev/urandom > {self.mnt}/before$i
            done
            sync
            (cd {self.mnt} && md5sum before*) > {self.state_dir}/before.md5
        """)
        return self

    def start_writer(self) -> None:
        self.writer = self.g.spawn(f"/tmp/lab-writer.sh {self.mnt} {self.state_dir} 2>&1",
                                   timeout=600)

    def stop_writer(self) -> int:
        """Stop the writer; returns how many files it wrote. Raises if it failed."""
        assert self.writer is not None
        self.g.run(["touch", f"{self.state_dir}/stop"])
        res = self.g.wait(self.writer, timeout=60)
        if not res.ok:
            raise LabError(f"background writer failed: rc {res.rc}: {res.out[-2000:]}")
        self.writer_files = int(res.out.split()[-1])
        during = self.g.run(f"cat {self.state_dir}/during 2>/dev/null || true")
        self.written_during = during.out.split()
        self.writer = None
        return self.writer_files

    def verify(self) -> None:
        """umount, e2fsck -fn, drop caches, mount, every md5 sum checked."""
        manifests = "before.md5" + (" writer.md5" if self.writer_files else "")
        self.g.sh(f"""
            umount {self.mnt}
            e2fsck -fn {self.dev}
            echo 3 > /proc/sys/vm/drop_caches
            mount {self.dev} {self.mnt}
            cd {self.mnt}
            for m in {manifests}; do md5sum --quiet -c {self.state_dir}/$m; done
        """, timeout=180)


# -- comparing observed states (the simulator's differential check) ---------------------------


def normalise(st: state.HostState, names: dict[str, str]) -> dict:
    """The parts of an observation that two hosts given the same disks and the same spec
    must agree on, with device paths replaced by ``names`` (path → disk label), sizes in
    extents, and no UUIDs."""
    def dev(path: str) -> str:
        return names.get(path, path)

    out: dict = {"vgs": {}, "pvs": {}, "lvs": {}}
    for pv in st.pvs.values():
        out["pvs"][dev(pv.name)] = {"vg": pv.vg, "pe_count": pv.pe_count,
                                    "pe_alloc_count": pv.pe_alloc_count,
                                    "allocatable": pv.allocatable, "missing": pv.missing}
    for vg in st.vgs.values():
        es = int(vg.extent_size)
        out["vgs"][vg.name] = {"extent_size": es, "extent_count": vg.extent_count,
                               "free_count": vg.free_count, "lock_type": vg.lock_type,
                               "pvs": sorted(dev(p) for p in vg.pvs),
                               "pvmoves": len(vg.pvmoves)}
        for lv in vg.lvs.values():
            out["lvs"][lv.key] = {
                "size_extents": int(lv.size) // es, "size_remainder": int(lv.size) % es,
                "attr": lv.attr.raw, "layout": list(lv.layout), "segtypes": list(lv.segtypes),
                "pv_extents": {dev(p): n for p, n in sorted(lv.pv_extents.items())},
                "tags": sorted(lv.tags),
                "images": [{dev(p): n for p, n in sorted(img.pv_extents.items())}
                           for img in lv.images]}
    return out


def pe_maps(text: str, names: dict[str, str]) -> dict[str, list[tuple[int, int, str]]]:
    """Per PV, its extent map from the pvseg section: (first PE, length, LV or '')."""
    doc = json.loads(text)
    out: dict[str, list[tuple[int, int, str]]] = {}
    for rep in doc["report"]:
        lvs = {row["lv_uuid"]: row["lv_name"].strip("[]") for row in rep.get("lv", [])}
        pvs = {row["pv_uuid"]: names.get(row["pv_name"], row["pv_name"])
               for row in rep.get("pv", [])}
        for row in rep.get("pvseg", []):
            pv = pvs.get(row["pv_uuid"], row["pv_uuid"])
            out.setdefault(pv, []).append((int(row["pvseg_start"]), int(row["pvseg_size"]),
                                           lvs.get(row.get("lv_uuid", ""), "")))
    return {pv: sorted(segs) for pv, segs in sorted(out.items())}


def diff_dicts(a, b, path: str = "") -> list[str]:
    """Every leaf where two nested dicts/lists differ, as 'path: a != b'."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            if k not in a or k not in b:
                out.append(f"{path}/{k}: {a.get(k, '<absent>')!r} != {b.get(k, '<absent>')!r}")
            else:
                out.extend(diff_dicts(a[k], b[k], f"{path}/{k}"))
        return out
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
